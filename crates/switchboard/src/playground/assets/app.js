// The Switchboard playground page: long-polls GET /api/state and renders it; the controls
// POST to /api/*. Every text from the flow or the user goes through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
let version = 0;
let state = null;
let shownSvg = null;
let previousVars = {};
let seenEvents = 0;
let shownCurrent = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

async function post(path, body) {
  try {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await r.json();
    if (!r.ok) {
      banner(data.error || r.statusText, true);
      return;
    }
    render(data);
  } catch (e) {
    banner("request failed: " + e, true);
  }
}

function banner(text, bad, actions) {
  const b = $("banner");
  b.textContent = "";
  if (!text) {
    b.hidden = true;
    return;
  }
  b.hidden = false;
  b.className = bad ? "bad" : "";
  b.append(el("span", null, text));
  for (const [label, fn, id] of actions || []) {
    const btn = el("button", null, label);
    btn.type = "button";
    if (id) btn.id = id;
    btn.addEventListener("click", fn);
    b.append(btn);
  }
}

function time(at) {
  if (!at) return "";
  const d = new Date(at);
  return isNaN(d) ? String(at) : d.toISOString().slice(11, 16);
}

// ---- diagram

function renderDiagram(s) {
  const box = $("diagram");
  if (s.diagram.svg !== shownSvg) {
    box.innerHTML = s.diagram.svg || "<p>No diagram: the file is not a flow.</p>";
    shownSvg = s.diagram.svg;
  }
  const current = s.execution && s.execution.current_node_id;
  const visited = new Set(s.path || []);
  for (const g of box.querySelectorAll("g.node")) {
    const id = g.getAttribute("data-node-id");
    g.classList.toggle("visited", visited.has(id));
    g.classList.toggle("current", id === current);
  }
  if (current && current !== shownCurrent) reveal(nodeElement(current));
  shownCurrent = current;
  const c = s.counts;
  $("counts").textContent = `${s.diagram.nodes.length} nodes, ${c.errors} errors, ${c.warnings} warnings`;
}

function nodeElement(id) {
  return $("diagram").querySelector(`g.node[data-node-id="${CSS.escape(id)}"]`);
}

// Scrolls the diagram box (only it, not the page) so the node is in the middle.
function reveal(g) {
  if (!g) return;
  const box = $("diagram");
  const r = g.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  box.scrollTo({
    left: box.scrollLeft + r.left - b.left - (b.width - r.width) / 2,
    top: box.scrollTop + r.top - b.top - (b.height - r.height) / 2,
    behavior: "smooth",
  });
}

function focusNode(id) {
  const g = nodeElement(id);
  if (!g) return;
  reveal(g);
  g.classList.add("flash");
  setTimeout(() => g.classList.remove("flash"), 1200);
}

function renderDiagnostics(s) {
  const ul = $("diagnostics");
  ul.textContent = "";
  if (!s.diagnostics.length) ul.append(el("li", "ok", "No diagnostics."));
  for (const d of s.diagnostics) {
    const li = el("li", d.severity === "error" ? "error" : "warning");
    li.tabIndex = 0;
    li.dataset.rule = d.rule;
    if (d.node) li.dataset.node = d.node;
    li.append(el("code", null, `${d.severity}[${d.rule}]`), " ");
    if (d.node) li.append(el("strong", null, d.node), " ");
    li.append(el("span", null, d.message));
    if (d.line) li.append(el("span", "muted", ` (line ${d.line})`));
    if (d.help) li.title = d.help;
    const go = () => d.node && focusNode(d.node);
    li.addEventListener("click", go);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    ul.append(li);
  }
}

// ---- chat

function choiceButton(text, cls, onClick) {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function renderBot(m, last, li) {
  if (m.type === "text") {
    li.append(el("span", null, m.text));
  } else if (m.type === "media") {
    li.append(el("span", "media", `[${m.media_type}] ${m.url}`));
    if (m.caption) li.append(el("span", null, m.caption));
  } else if (m.type === "template") {
    li.append(el("div", "header", "Template " + m.template_id));
    li.append(el("div", "template", JSON.stringify(m.parameters)));
  } else if (m.type === "interactive") {
    if (m.header) {
      if (m.header.kind === "text") li.append(el("div", "header", m.header.value));
      else li.append(el("span", "media", `[${m.header.kind}] ${m.header.value}`));
    }
    li.append(el("span", null, m.body));
    if (m.footer) li.append(el("div", "footer", m.footer));
    const card = el("div", "card");
    for (const b of m.buttons || []) {
      const btn = choiceButton(b.title, "choice", () => post("/api/reply", { id: b.id, kind: "button_reply" }));
      btn.dataset.id = b.id;
      btn.disabled = !last;
      card.append(btn);
    }
    for (const s of m.sections || []) {
      if (s.title) card.append(el("div", "muted small", s.title));
      for (const r of s.rows || []) {
        const btn = choiceButton(r.title, "choice", () => post("/api/reply", { id: r.id, kind: "list_reply" }));
        btn.dataset.id = r.id;
        btn.disabled = !last;
        if (r.description) btn.append(el("span", "row-desc", r.description));
        card.append(btn);
      }
    }
    if (m.cta) {
      const a = el("a", "cta", "↗ " + m.cta.display_text);
      a.href = m.cta.url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      card.append(a);
    }
    if (m.flow) {
      // A WhatsApp Flow opens only in WhatsApp: shown as its button, with what it would open.
      const f = el("span", "cta", "▤ " + m.flow.flow_cta);
      f.title = `WhatsApp Flow ${m.flow.flow_id} (${m.flow.flow_action}${m.flow.flow_action_payload && m.flow.flow_action_payload.screen ? ": " + m.flow.flow_action_payload.screen : ""})`;
      card.append(f, el("span", "muted small", "WhatsApp Flow " + m.flow.flow_id + ": answer it by typing"));
    }
    if (card.childNodes.length) li.append(card);
  } else {
    li.append(el("pre", null, JSON.stringify(m, null, 2)));
  }
}

function renderChat(s) {
  const ol = $("chat");
  ol.textContent = "";
  let lastBot = -1;
  s.chat.forEach((c, i) => { if (c.from === "bot") lastBot = i; });
  s.chat.forEach((c, i) => {
    const li = el("li", "msg " + c.from);
    if (c.from === "user") li.append(el("span", null, c.text));
    else if (c.from === "bot") {
      li.dataset.node = c.message.node || "";
      renderBot(c.message, i === lastBot, li);
    } else if (c.from === "clock") li.append(el("span", null, `⏩ clock advanced ${c.seconds} s`));
    else if (c.from === "delay") li.append(el("span", null, `⏱ ${c.seconds} s of delays`));
    else li.append(el("span", null, c.text));
    li.append(el("span", "time", time(c.at)));
    ol.append(li);
  });
  ol.scrollTop = ol.scrollHeight;
  const x = s.execution;
  $("status").textContent = x ? x.status + (x.waiting_reason ? ` (${x.waiting_reason})` : "") : "not started";
  const w = s.window;
  if (w && s.clock) {
    const left = (new Date(w.closes_at) - new Date(s.clock)) / 3600000;
    $("window").textContent = left > 0
      ? `24-hour window open: ${left.toFixed(1)} h left (clock ${time(s.clock)})`
      : `24-hour window closed: only templates may be sent (clock ${time(s.clock)})`;
  } else {
    $("window").textContent = s.clock ? `No message yet; clock ${time(s.clock)}` : "";
  }
  $("text").disabled = !s.runnable;
  $("send").disabled = !s.runnable;
}

// ---- tabs

function renderEvents(s) {
  const filter = $("event-filter");
  const types = [...new Set(s.events.map((e) => e.event_type))].sort();
  const chosen = filter.value;
  filter.textContent = "";
  filter.append(new Option("all", ""));
  for (const t of types) filter.append(new Option(t, t));
  filter.value = types.includes(chosen) ? chosen : "";
  const ol = $("events");
  ol.textContent = "";
  s.events.forEach((e, i) => {
    if (filter.value && e.event_type !== filter.value) return;
    const li = el("li", i >= seenEvents ? "new" : "");
    li.dataset.type = e.event_type;
    const d = el("details");
    d.append(el("summary", null, `${e.seq} ${e.event_type}${e.node_id ? " · " + e.node_id : ""}${e.edge_label ? " → " + e.edge_label : ""}`));
    d.append(el("pre", null, JSON.stringify(e, null, 2)));
    li.append(d);
    ol.append(li);
  });
  seenEvents = s.events.length;
}

function flatten(v, prefix, out) {
  if (v && typeof v === "object" && Object.keys(v).length) {
    for (const k of Object.keys(v)) flatten(v[k], prefix + "." + k, out);
  } else out[prefix] = JSON.stringify(v);
  return out;
}

function tree(v, path, flat) {
  if (v && typeof v === "object" && Object.keys(v).length) {
    const ul = el("ul");
    for (const k of Object.keys(v)) {
      const li = el("li");
      const p = path + "." + k;
      li.dataset.path = p.slice(1);
      if (v[k] && typeof v[k] === "object" && Object.keys(v[k]).length) {
        const d = el("details");
        d.open = true;
        d.append(el("summary", "key", k));
        d.append(tree(v[k], p, flat));
        li.append(d);
      } else {
        li.append(el("span", "key", k + ": "));
        const shown = JSON.stringify(v[k]);
        const val = el("span", "val", shown);
        if (previousVars[p] !== undefined && previousVars[p] !== shown) val.classList.add("changed");
        if (previousVars[p] === undefined && Object.keys(previousVars).length) val.classList.add("changed");
        li.append(val);
      }
      ul.append(li);
    }
    return ul;
  }
  return el("span", "val muted", JSON.stringify(v));
}

function renderVariables(s) {
  const box = $("variables");
  box.textContent = "";
  box.append(tree(s.variables, "", null));
  previousVars = flatten(s.variables, "", {});
}

function renderErrors(s) {
  const ol = $("errors");
  ol.textContent = "";
  $("error-count").textContent = s.errors.length ? `(${s.errors.length})` : "";
  if (!s.errors.length) ol.append(el("li", "muted", "No failures."));
  for (const e of s.errors) {
    const li = el("li");
    li.dataset.type = e.type;
    li.append(el("span", "kind", e.kind || e.type), " ");
    if (e.node) li.append(el("strong", null, e.node), " ");
    li.append(el("span", null, e.message || ""));
    const d = el("details");
    d.append(el("summary", null, "JSON"));
    d.append(el("pre", null, JSON.stringify(e, null, 2)));
    li.append(d);
    ol.append(li);
  }
}

function selectTab(tab) {
  for (const t of document.querySelectorAll("[role=tab]")) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
}

// ---- the whole page

function render(s) {
  state = s;
  version = s.version;
  const wf = $("workflow");
  if (wf.options.length !== s.workflows.length) {
    wf.textContent = "";
    for (const w of s.workflows) wf.append(new Option(w, w));
  }
  wf.value = s.workflow;
  wf.disabled = s.workflows.length < 2;
  $("file").textContent = s.file;
  $("mode").textContent = s.mode === "offline" ? "offline adapters" : "configured adapters";
  if (document.activeElement !== $("phone")) $("phone").value = s.contact.phone;
  if (document.activeElement !== $("name")) $("name").value = s.contact.name;
  renderDiagram(s);
  renderDiagnostics(s);
  renderChat(s);
  renderEvents(s);
  renderVariables(s);
  renderErrors(s);
  if (s.changed) {
    banner("The flow file changed on disk: the diagram shows the new version.", false, [
      ["Replay the conversation on it", () => post("/api/reload", { keep: true }), "reload-keep"],
      ["Restart", () => post("/api/reload", { keep: false }), "reload-restart"],
    ]);
  } else if (!s.runnable && s.refusal) {
    banner(s.refusal, true);
  } else {
    banner(null);
  }
}

async function poll() {
  for (;;) {
    try {
      const r = await fetch("/api/state?since=" + version);
      if (r.ok) {
        const s = await r.json();
        if (s.version !== version || !state) render(s);
      } else {
        await new Promise((ok) => setTimeout(ok, 1000));
      }
    } catch (e) {
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }
}

function init() {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    post("/api/message", { text });
  });
  $("contact").addEventListener("submit", (e) => {
    e.preventDefault();
    post("/api/restart", { phone: $("phone").value, name: $("name").value });
  });
  $("clock").addEventListener("submit", (e) => {
    e.preventDefault();
    post("/api/clock", { seconds: Number($("clock-seconds").value) });
  });
  $("workflow").addEventListener("change", () => post("/api/workflow", { name: $("workflow").value }));
  $("event-filter").addEventListener("change", () => state && renderEvents(state));
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const t of tabs) {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(t);
      const next = e.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : e.key === "ArrowLeft" ? tabs[(i + tabs.length - 1) % tabs.length] : null;
      if (next) { e.preventDefault(); selectTab(next); next.focus(); }
    });
  }
  $("diagram").addEventListener("click", (e) => {
    const a = e.target.closest("a");
    const href = a && (a.getAttribute("href") || a.getAttribute("xlink:href"));
    if (href && href.startsWith("#workflow=")) {
      e.preventDefault();
      post("/api/workflow", { name: decodeURIComponent(href.slice(10)) });
    }
  });
  poll();
}

init();
