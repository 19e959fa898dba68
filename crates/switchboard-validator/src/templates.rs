//! Templates and variables (validation-rules §6): Jinja syntax of every templated field, `${ENV:…}`
//! secret references, secrets that would reach the user or the model, bare names that belong to
//! another namespace, and the variable reads and writes the dataflow analysis (§9.3) needs.

use std::borrow::Cow;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use switchboard_model::config::{NodeConfig, TextField};
use switchboard_model::{Map, Node, Value};

use crate::context::Ctx;
use crate::rules;
use crate::util::tok;

/// Bare names that belong to `context` or `system` (validation-rules §6, `wrong-namespace`).
const CONTEXT_KEYS: &[&str] = &["phone_number", "channel", "conversation_id", "contact"];
const SYSTEM_KEYS: &[&str] = &[
    "flow_id",
    "workflow_id",
    "flow_name",
    "started_at",
    "trigger_type",
    "tracking_id",
    "execution_id",
    "last_resume",
    "whatsapp_config",
];
/// Functions and globals of the template engine: never variable reads.
const ENGINE_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// One templated string of a node config.
pub(crate) struct Field<'a> {
    /// Pointer suffix below the node's config.
    pub ptr: String,
    pub text: &'a str,
    /// A `send_*` field, an AI prompt or an agent system prompt (reaches the user or the model).
    pub outbound: bool,
    /// Agent webhook-tool fields see the tool arguments as `args` and as bare names.
    pub tool_args: bool,
}

/// Variable reads and writes per node, for the dataflow analysis.
pub(crate) struct Analysis {
    /// Node index → variables read (name, pointer suffix of the first field reading it).
    pub reads: Vec<Vec<(String, String)>>,
    /// Names already reported by `wrong-namespace` (not reported again as undefined).
    pub wrong_namespace: HashSet<(usize, String)>,
}

pub(crate) fn check(cx: &mut Ctx) -> Analysis {
    let n = cx.flow.nodes.len();
    let mut analysis = Analysis {
        reads: vec![Vec::new(); n],
        wrong_namespace: HashSet::default(),
    };
    let declared: HashSet<String> = cx.flow.metadata().input_variables.into_iter().collect();
    let written: HashSet<String> = cx
        .flow
        .nodes
        .iter()
        .flat_map(|node| writes(node).0)
        .collect();
    let env = minijinja::Environment::new();
    let mut cache: HashMap<String, Result<Vec<String>, String>> = HashMap::default();

    for i in 0..n {
        let node = cx.node(i);
        let mut seen: HashSet<String> = HashSet::default();
        for f in fields(node, cx.config_map(i)) {
            secrets(cx, i, &f);
            if !crate::util::has_template_or_comment(f.text) {
                continue;
            }
            // Names read by a simple template borrow from the flow; those of the parser's cache
            // are copied (the cache grows while a node's names are held).
            let names: Vec<Cow<str>> = match simple_reads(f.text) {
                Some(names) => names.into_iter().map(Cow::Borrowed).collect(),
                None => {
                    let parsed = cache
                        .entry(f.text.to_owned())
                        .or_insert_with(|| parse(&env, f.text));
                    match parsed {
                        Ok(names) => {
                            let names = names.iter().map(|n| Cow::Owned(n.clone())).collect();
                            if let Some(found) = expensive(f.text) {
                                cx.at_config(
                                    rules::EXPENSIVE_TEMPLATE,
                                    i,
                                    &f.ptr,
                                    found.message(),
                                    "iterate over the data itself, not over large literal ranges: \
                                     at run time a template that runs out of fuel or output \
                                     fails its node with template_error",
                                );
                            }
                            names
                        }
                        Err(msg) => {
                            let msg = msg.clone();
                            cx.at_config(
                                rules::INVALID_TEMPLATE,
                                i,
                                &f.ptr,
                                format!("template syntax error: {msg}"),
                                "fix the Jinja syntax; write literal braces as {{ \"{{\" }}",
                            );
                            continue;
                        }
                    }
                }
            };
            for path in &names {
                let mut segs = path.split('.');
                let first = segs.next().unwrap_or_default();
                let var = match first {
                    "vars" => match segs.next() {
                        Some(v) => v,
                        None => continue,
                    },
                    "system" | "context" | "metadata" => continue,
                    "args" if f.tool_args => continue,
                    // In agent webhook-tool templates a bare name is first a tool argument
                    // (filled by the model), then a variable: never undefined there.
                    _ if f.tool_args => continue,
                    _ if ENGINE_GLOBALS.contains(&first) => continue,
                    bare => {
                        let ns = if CONTEXT_KEYS.contains(&bare) {
                            Some("context")
                        } else if SYSTEM_KEYS.contains(&bare) {
                            Some("system")
                        } else {
                            None
                        };
                        if let Some(ns) = ns
                            && !declared.contains(bare)
                            && !written.contains(bare)
                        {
                            if analysis.wrong_namespace.insert((i, bare.to_owned())) {
                                cx.at_config(
                                    rules::WRONG_NAMESPACE,
                                    i,
                                    &f.ptr,
                                    format!(
                                        "`{bare}` is read as a variable, but it lives in `{ns}`"
                                    ),
                                    format!("write `{{{{{ns}.{bare}}}}}`"),
                                );
                            }
                            continue;
                        }
                        bare
                    }
                };
                if !seen.contains(var) {
                    seen.insert(var.to_owned());
                    analysis.reads[i].push((var.to_owned(), f.ptr.clone()));
                }
            }
        }
    }
    analysis
}

/// Steps above which a template is reported as `expensive-template`.
pub(crate) const EXPENSIVE_STEPS: u64 = 10_000;

/// What makes a template visibly expensive.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expensive {
    /// Nested loops over literal counts multiply to this many iterations.
    Loops(u64),
    /// `range(n)` or `* n` builds a sequence or string of this many items, this many times.
    Items {
        what: String,
        items: u64,
        times: u64,
    },
}

impl Expensive {
    fn message(&self) -> String {
        match self {
            Expensive::Loops(n) => format!(
                "template runs about {n} loop iterations (nested loops over literal ranges; \
                 more than {EXPENSIVE_STEPS})"
            ),
            Expensive::Items { what, items, times } if *times > 1 => format!(
                "template builds `{what}` ({items} items) {times} times over (more than \
                 {EXPENSIVE_STEPS} items)"
            ),
            Expensive::Items { what, items, .. } => {
                format!("template builds `{what}` ({items} items, more than {EXPENSIVE_STEPS})")
            }
        }
    }

    fn steps(&self) -> u64 {
        match self {
            Expensive::Loops(n) => *n,
            Expensive::Items { items, times, .. } => items.saturating_mul(*times),
        }
    }
}

/// A token of a template block or expression, as far as [`expensive`] cares.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Int(i128),
    Str,
    Punct(char),
    Pow,
}

/// Splits a template into its blocks (`{% … %}` and `{{ … }}`, tokenized), skipping comments,
/// raw blocks and literal text. Total: a block left open ends the template.
fn blocks(text: &str) -> Vec<Vec<Tok>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' {
            i += 1;
            continue;
        }
        let close: &[u8] = match b[i + 1] {
            b'#' => {
                i = find(b, i + 2, b"#}").map_or(b.len(), |e| e + 2);
                continue;
            }
            b'%' => b"%}",
            b'{' => b"}}",
            _ => {
                i += 1;
                continue;
            }
        };
        let (mut toks, end) = tokenize(b, i + 2, close);
        i = end;
        // Whitespace control: `{%-`, `{%+`, `{{-`.
        if matches!(toks.first(), Some(Tok::Punct('-' | '+'))) {
            toks.remove(0);
        }
        if matches!(toks.first(), Some(Tok::Ident(k)) if k == "raw") {
            // Everything up to `{% endraw %}` is text.
            let mut j = i;
            loop {
                let Some(open) = find(b, j, b"{%") else {
                    i = b.len();
                    break;
                };
                let (t, e) = tokenize(b, open + 2, b"%}");
                j = e;
                if matches!(t.first(), Some(Tok::Ident(k)) if k == "endraw") {
                    i = e;
                    break;
                }
            }
            continue;
        }
        out.push(toks);
    }
    out
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// Tokens from `start` up to `close` (outside string literals); returns them and the index
/// after `close` (or the end of the text).
fn tokenize(b: &[u8], start: usize, close: &[u8]) -> (Vec<Tok>, usize) {
    let mut toks = Vec::new();
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if b[i..].starts_with(close) {
            return (toks, i + close.len());
        }
        if c == b'-' && b[i + 1..].starts_with(close) {
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                toks.push(Tok::Str);
            }
            b'0'..=b'9' => {
                let mut n: i128 = 0;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    if b[i] != b'_' {
                        n = n.saturating_mul(10).saturating_add(i128::from(b[i] - b'0'));
                    }
                    i += 1;
                }
                toks.push(Tok::Int(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(String::from_utf8_lossy(&b[s..i]).into_owned()));
            }
            b'*' if b.get(i + 1) == Some(&b'*') => {
                toks.push(Tok::Pow);
                i += 2;
            }
            c if c.is_ascii_whitespace() => i += 1,
            c if c.is_ascii() => {
                toks.push(Tok::Punct(char::from(c)));
                i += 1;
            }
            _ => i += 1,
        }
    }
    (toks, b.len())
}

/// The number of items of `range(…)` when its arguments are integer literals.
fn range_len(args: &[Tok]) -> Option<u64> {
    let mut nums = Vec::new();
    let mut neg = false;
    for t in args {
        match t {
            Tok::Punct('-') => neg = !neg,
            Tok::Int(n) => {
                nums.push(if neg { n.saturating_neg() } else { *n });
                neg = false;
            }
            Tok::Punct(',') => {}
            _ => return None,
        }
    }
    let (start, stop, step) = match nums[..] {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step] if step != 0 => (start, stop, step),
        _ => return None,
    };
    let span = if step > 0 {
        stop.saturating_sub(start)
    } else {
        start.saturating_sub(stop)
    };
    let step = step.saturating_abs();
    (span > 0).then(|| {
        let n = span.saturating_add(step - 1) / step;
        u64::try_from(n).unwrap_or(u64::MAX)
    })
}

/// Literal sizes in an expression: `range(n…)` (the sequence built) and `* n` next to a string
/// or list literal (the repetition built). Returns the largest, with its text.
fn literal_sizes(toks: &[Tok]) -> Option<(String, u64)> {
    let mut best: Option<(String, u64)> = None;
    let mut keep = |what: String, n: u64| {
        if best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((what, n));
        }
    };
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Ident(name) if name == "range" && toks.get(k + 1) == Some(&Tok::Punct('(')) => {
                let args = &toks[k + 2..];
                let end = args
                    .iter()
                    .position(|t| *t == Tok::Punct(')'))
                    .unwrap_or(args.len());
                if let Some(n) = range_len(&args[..end]) {
                    let shown: Vec<String> = args[..end]
                        .iter()
                        .map(|t| match t {
                            Tok::Int(n) => n.to_string(),
                            Tok::Punct(c) => c.to_string(),
                            _ => String::new(),
                        })
                        .collect();
                    keep(format!("range({})", shown.join("").replace(',', ", ")), n);
                }
            }
            Tok::Punct('*') => {
                let before = k.checked_sub(1).and_then(|p| toks.get(p));
                let after = toks.get(k + 1);
                let literal = |t: Option<&Tok>| matches!(t, Some(Tok::Str | Tok::Punct(']')));
                let count = |t: Option<&Tok>| match t {
                    Some(Tok::Int(n)) => u64::try_from(*n).ok(),
                    _ => None,
                };
                if let Some(n) = count(after).filter(|_| literal(before)) {
                    keep(format!("… * {n}"), n);
                } else if let Some(n) = count(before).filter(|_| literal(after)) {
                    keep(format!("{n} * …"), n);
                }
            }
            _ => {}
        }
    }
    best
}

/// What makes a template visibly expensive, if anything: the worst of its loops (the product of
/// the literal counts of nested `for` loops) and of the sequences and strings it builds from
/// literal counts (times the loops around them).
pub(crate) fn expensive(text: &str) -> Option<Expensive> {
    let mut loops: Vec<u64> = Vec::new();
    let mut worst: Option<Expensive> = None;
    let mut keep = |e: Expensive| {
        if e.steps() > EXPENSIVE_STEPS && worst.as_ref().is_none_or(|w| e.steps() > w.steps()) {
            worst = Some(e);
        }
    };
    for toks in blocks(text) {
        let around = loops.iter().fold(1u64, |a, n| a.saturating_mul(*n));
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        // A loop's own sequence is counted as its iterations (below).
        if keyword != "for"
            && let Some((what, items)) = literal_sizes(&toks)
        {
            keep(Expensive::Items {
                what,
                items,
                times: around,
            });
        }
        match keyword {
            "for" => {
                let iterable = toks
                    .iter()
                    .position(|t| matches!(t, Tok::Ident(k) if k == "in"))
                    .map_or(&toks[..0], |p| &toks[p + 1..]);
                let end = iterable
                    .iter()
                    .position(|t| matches!(t, Tok::Ident(k) if k == "if" || k == "recursive"))
                    .unwrap_or(iterable.len());
                let n = literal_sizes(&iterable[..end]).map_or(1, |(_, n)| n.max(1));
                loops.push(n);
                keep(Expensive::Loops(around.saturating_mul(n)));
            }
            "endfor" => {
                loops.pop();
            }
            _ => {}
        }
    }
    worst
}

/// Parses a template; returns the variables it reads (nested dotted paths) or the error text.
fn parse(env: &minijinja::Environment<'_>, text: &str) -> Result<Vec<String>, String> {
    match env.template_from_str(text) {
        Ok(t) => {
            let mut v: Vec<String> = t.undeclared_variables(true).into_iter().collect();
            v.sort();
            Ok(v)
        }
        Err(e) => {
            let detail = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_owned);
            Err(match e.line() {
                Some(line) if text.contains('\n') => {
                    format!("{detail} (line {line} of the template)")
                }
                _ => detail,
            })
        }
    }
}

/// Fast path: a template whose only blocks are `{{ a.b.c }}` reads exactly those paths.
/// Returns `None` when the template needs the real parser.
/// The offset of the first `pair` in `s`: `str::find` sets up a two-way searcher at each call,
/// which costs more than the search in the short texts of a flow.
fn find2(s: &str, pair: &[u8; 2]) -> Option<usize> {
    let b = s.as_bytes();
    memchr::memchr_iter(pair[0], b).find(|&i| b.get(i + 1) == Some(&pair[1]))
}

fn simple_reads(text: &str) -> Option<Vec<&str>> {
    if find2(text, b"{%").is_some() || find2(text, b"{#").is_some() {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = find2(rest, b"{{") {
        let after = &rest[open + 2..];
        let close = find2(after, b"}}")?;
        let expr = after[..close].trim();
        let ok = !expr.is_empty()
            && expr.split('.').all(|seg| {
                let mut b = seg.bytes();
                matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
                    && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
            });
        if !ok {
            return None;
        }
        out.push(expr);
        rest = &after[close + 2..];
    }
    // A stray `}}` or `{{` left over is the parser's business.
    if find2(rest, b"{{").is_some() {
        return None;
    }
    Some(out)
}

fn secrets(cx: &mut Ctx, i: usize, f: &Field) {
    let mut reported_outbound = false;
    for r in switchboard_model::secrets::references(f.text) {
        if !r.well_formed {
            let shown: String = f.text[r.start..].chars().take(24).collect();
            cx.at_config(
                rules::INVALID_SECRET_REFERENCE,
                i,
                &f.ptr,
                format!("malformed secret reference `{shown}`"),
                "write `${ENV:NAME}` with NAME made of letters, digits and `_`, not starting with a digit",
            );
        } else if f.outbound && !reported_outbound {
            reported_outbound = true;
            cx.at_config(
                rules::SECRET_IN_OUTBOUND_MESSAGE,
                i,
                &f.ptr,
                format!(
                    "secret `${{ENV:{}}}` would be sent to the user or the model",
                    r.name
                ),
                "use secrets only in webhook URLs, headers and bodies",
            );
        }
    }
}

/// The variables a node writes, and whether it may write any name (a wildcard writer).
pub(crate) fn writes(node: &Node) -> (Vec<String>, bool) {
    match node.config() {
        NodeConfig::WaitForResponse(c) => (c.save_response_to.iter().cloned().collect(), false),
        NodeConfig::Function(c) => (c.save_response_to.iter().cloned().collect(), true),
        NodeConfig::Webhook(c) => (c.save_response_to.iter().cloned().collect(), false),
        NodeConfig::Pipedream(c) => (c.save_response_to.iter().cloned().collect(), false),
        NodeConfig::SetVariable(c) => (c.variable_name.iter().cloned().collect(), false),
        NodeConfig::Call(c) => (vec![c.error_variable().to_owned()], true),
        NodeConfig::Decide(c) => (
            Vec::new(),
            c.mode() == switchboard_model::config::DecisionType::Function,
        ),
        NodeConfig::Agent(c) => {
            let tools = c.builtin_tools();
            let wild = tools.contains(&switchboard_model::config::BuiltinTool::SaveVariable)
                || !c.function_tools.is_empty();
            (Vec::new(), wild)
        }
        NodeConfig::Start
        | NodeConfig::SendText(_)
        | NodeConfig::SendTemplate(_)
        | NodeConfig::SendInteractive(_)
        | NodeConfig::Handoff(_)
        | NodeConfig::EmitEvent(_)
        | NodeConfig::Unknown => (Vec::new(), false),
    }
}

/// Every templated string of a node config, with its pointer suffix.
/// `config` is the node's `data.config` object as written ([`Ctx::config_map`]).
pub(crate) fn fields<'a>(node: &'a Node, config: Option<&'a Map>) -> Vec<Field<'a>> {
    let mut out = Vec::new();
    let Some(raw) = config else {
        return out;
    };
    let leaves = collect_leaves;
    let s = |k: &str| raw.get(k).and_then(Value::as_str);
    // AI prompts (every node kind that has them).
    if let Some(cfg) = raw.get("ai_field_config").and_then(Value::as_object) {
        for e in cfg.entries() {
            if let Some(p) = e
                .value
                .as_object()
                .and_then(|m| m.get("prompt"))
                .and_then(Value::as_str)
            {
                out.push(Field {
                    ptr: format!("/ai_field_config/{}/prompt", tok(&e.key)),
                    text: p,
                    outbound: true,
                    tool_args: false,
                });
            }
        }
    }
    match node.config() {
        NodeConfig::SendText(_) | NodeConfig::SendTemplate(_) | NodeConfig::SendInteractive(_) => {
            push_str(&mut out, "to_phone_number", s("to_phone_number"), false);
        }
        NodeConfig::Start
        | NodeConfig::WaitForResponse(_)
        | NodeConfig::Decide(_)
        | NodeConfig::Function(_)
        | NodeConfig::Webhook(_)
        | NodeConfig::SetVariable(_)
        | NodeConfig::Call(_)
        | NodeConfig::Agent(_)
        | NodeConfig::Handoff(_)
        | NodeConfig::EmitEvent(_)
        | NodeConfig::Pipedream(_)
        | NodeConfig::Unknown => {}
    }
    match node.config() {
        NodeConfig::SendText(c) => {
            if let Some(TextField::Text(m)) = &c.message {
                push_str(&mut out, "message", Some(m), true);
            }
        }
        NodeConfig::SendTemplate(_) => {
            let key = if raw.get("parameters").is_some_and(|v| !v.is_null()) {
                "parameters"
            } else {
                "template_params"
            };
            if let Some(v) = raw.get(key) {
                leaves(v, format!("/{key}"), true, false, 0, &mut out);
            }
        }
        NodeConfig::SendInteractive(_) => {
            for key in [
                "body_text",
                "header_text",
                "header_media_url",
                "footer_text",
                "list_button_text",
                "cta_display_text",
                "cta_url",
                "flow_cta",
                "flow_token",
            ] {
                push_str(&mut out, key, s(key), true);
            }
            if let Some(buttons) = raw.get("buttons").and_then(Value::as_array) {
                for (k, b) in buttons.iter().enumerate() {
                    if let Some(t) = b
                        .as_object()
                        .and_then(|m| m.get("title"))
                        .and_then(Value::as_str)
                    {
                        out.push(Field {
                            ptr: format!("/buttons/{k}/title"),
                            text: t,
                            outbound: true,
                            tool_args: false,
                        });
                    }
                }
            }
            if let Some(sections) = raw.get("list_sections").and_then(Value::as_array) {
                for (k, sec) in sections.iter().enumerate() {
                    let Some(sm) = sec.as_object() else { continue };
                    if let Some(t) = sm.get("title").and_then(Value::as_str) {
                        out.push(Field {
                            ptr: format!("/list_sections/{k}/title"),
                            text: t,
                            outbound: true,
                            tool_args: false,
                        });
                    }
                    for (r, row) in sm
                        .get("rows")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let Some(rm) = row.as_object() else { continue };
                        for key in ["title", "description"] {
                            if let Some(t) = rm.get(key).and_then(Value::as_str) {
                                out.push(Field {
                                    ptr: format!("/list_sections/{k}/rows/{r}/{key}"),
                                    text: t,
                                    outbound: true,
                                    tool_args: false,
                                });
                            }
                        }
                    }
                }
            }
            if let Some(data) = raw
                .get("flow_action_payload")
                .and_then(Value::as_object)
                .and_then(|m| m.get("data"))
            {
                leaves(
                    data,
                    "/flow_action_payload/data".into(),
                    true,
                    false,
                    0,
                    &mut out,
                );
            }
        }
        NodeConfig::Decide(_) => {
            if let Some(instr) = raw
                .get("llm_configuration")
                .and_then(Value::as_object)
                .and_then(|m| m.get("instructions"))
                .and_then(Value::as_str)
            {
                out.push(Field {
                    ptr: "/llm_configuration/instructions".into(),
                    text: instr,
                    outbound: true,
                    tool_args: false,
                });
            }
        }
        NodeConfig::Webhook(c) => {
            push_str(&mut out, "url", s("url"), false);
            let _ = c;
            let body = ["body_template", "body", "request_body"]
                .into_iter()
                .find(|k| raw.get(k).is_some_and(|v| !v.is_null()))
                .unwrap_or("body_template");
            for key in ["headers", body] {
                // A JSON-string field is scanned as one text (its position is the string's).
                if let Some(v) = raw.get(key) {
                    leaves(v, format!("/{key}"), false, false, 0, &mut out);
                }
            }
        }
        NodeConfig::SetVariable(_) => {
            if let Some(v) = raw.get("variable_value") {
                leaves(v, "/variable_value".into(), false, false, 0, &mut out);
            }
        }
        NodeConfig::Agent(_) => {
            push_str(&mut out, "system_prompt", s("system_prompt"), true);
            for (list, args) in [
                ("flow_agent_webhooks", true),
                ("flow_agent_mcp_servers", false),
            ] {
                let Some(items) = raw.get(list).and_then(Value::as_array) else {
                    continue;
                };
                for (k, item) in items.iter().enumerate() {
                    let Some(m) = item.as_object() else { continue };
                    let base = format!("/{list}/{k}");
                    if let Some(u) = m.get("url").and_then(Value::as_str) {
                        out.push(Field {
                            ptr: format!("{base}/url"),
                            text: u,
                            outbound: false,
                            tool_args: args,
                        });
                    }
                    for key in ["headers", "body", "body_template"] {
                        // A JSON-string field is scanned as one text (its position is the string's).
                        if let Some(v) = m.get(key) {
                            leaves(v, format!("{base}/{key}"), false, args, 0, &mut out);
                        }
                    }
                }
            }
        }
        NodeConfig::Handoff(_) => {
            push_str(&mut out, "reason", s("reason"), false);
            if let Some(v) = raw.get("context_data") {
                leaves(v, "/context_data".into(), false, false, 0, &mut out);
            }
        }
        NodeConfig::EmitEvent(_) => {
            if let Some(v) = raw.get("properties").and_then(Value::as_object) {
                for e in v.entries() {
                    if let Value::String(s) = &e.value {
                        out.push(Field {
                            ptr: format!("/properties/{}", tok(&e.key)),
                            text: s,
                            outbound: false,
                            tool_args: false,
                        });
                    }
                }
            }
            push_str(&mut out, "occurred_at", s("occurred_at"), false);
        }
        NodeConfig::Pipedream(_) => {
            if let Some(v) = raw.get("configured_props") {
                leaves(v, "/configured_props".into(), false, false, 0, &mut out);
            }
        }
        NodeConfig::Start
        | NodeConfig::WaitForResponse(_)
        | NodeConfig::Function(_)
        | NodeConfig::Call(_)
        | NodeConfig::Unknown => {}
    }
    out
}

fn push_str<'a>(out: &mut Vec<Field<'a>>, key: &str, v: Option<&'a str>, outbound: bool) {
    if let Some(s) = v {
        out.push(Field {
            ptr: format!("/{}", tok(key)),
            text: s,
            outbound,
            tool_args: false,
        });
    }
}

/// Every string leaf of a value, with its pointer.
fn collect_leaves<'v>(
    v: &'v Value,
    ptr: String,
    outbound: bool,
    tool_args: bool,
    depth: usize,
    out: &mut Vec<Field<'v>>,
) {
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => out.push(Field {
            ptr,
            text: s,
            outbound,
            tool_args,
        }),
        Value::Array(a) => {
            for (k, item) in a.iter().enumerate() {
                collect_leaves(
                    item,
                    format!("{ptr}/{k}"),
                    outbound,
                    tool_args,
                    depth + 1,
                    out,
                );
            }
        }
        Value::Object(m) => {
            for e in m.entries() {
                collect_leaves(
                    &e.value,
                    format!("{ptr}/{}", tok(&e.key)),
                    outbound,
                    tool_args,
                    depth + 1,
                    out,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod expensive_tests {
    use super::*;

    #[test]
    fn the_two_templates_of_issue_15_are_expensive() {
        assert_eq!(
            expensive(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            ),
            Some(Expensive::Loops(10_000_000_000))
        );
        let e = expensive(
            "{% set a = range(100000)|join %}{% for i in range(100000) %}{{ a }}{% endfor %}",
        )
        .unwrap();
        assert_eq!(e.steps(), 100_000);
        assert!(e.message().contains("range(100000)"), "{}", e.message());
    }

    #[test]
    fn loops_multiply_and_literals_count() {
        assert_eq!(
            expensive(
                "{% for i in range(200) %}{% for j in range(0, 100, 2) %}x{% endfor %}{% endfor %}"
            ),
            None,
            "200 * 50 = 10 000 is not more than 10 000"
        );
        assert_eq!(
            expensive(
                "{% for i in range(201) %}{% for j in range(0, 100, 2) %}x{% endfor %}{% endfor %}"
            ),
            Some(Expensive::Loops(10_050))
        );
        // Sequential loops do not multiply; a loop closed before the next one opens.
        assert_eq!(
            expensive(
                "{% for i in range(5000) %}{% endfor %}{% for j in range(5000) %}{% endfor %}"
            ),
            None
        );
        // Repetition next to a string or list literal, inside a loop.
        let e = expensive("{% for i in range(10) %}{{ '-' * 2000 }}{% endfor %}").unwrap();
        assert_eq!(e.steps(), 20_000);
        assert!(e.message().contains("… * 2000"), "{}", e.message());
        assert!(expensive("{{ [0] * 100001 }}").is_some());
        assert!(expensive("{{ 100001 * 'x' }}").is_some());
        // Arithmetic, unknown counts, negative and empty ranges are not.
        assert_eq!(expensive("{{ price * 100000 }}"), None);
        assert_eq!(
            expensive("{% for x in items %}{% for y in x %}{% endfor %}{% endfor %}"),
            None
        );
        assert_eq!(
            expensive("{{ range(-100000) }}{{ range(5, 100000, -1) }}"),
            None
        );
        assert_eq!(expensive("{% for i in range(n) %}{% endfor %}"), None);
    }

    #[test]
    fn text_comments_raw_blocks_and_strings_are_not_code() {
        assert_eq!(expensive("range(100000) in the text"), None);
        assert_eq!(expensive("{# {% for i in range(100000) %} #}"), None);
        assert_eq!(
            expensive("{% raw %}{% for i in range(100000) %}{% endraw %}"),
            None
        );
        assert_eq!(expensive("{{ 'range(100000)' }}"), None);
        assert_eq!(
            expensive("{{ \"%}\" }}{%- for i in range(100001) -%}{% endfor %}"),
            Some(Expensive::Loops(100_001))
        );
    }

    #[test]
    fn hostile_text_does_not_panic() {
        for t in [
            "{%",
            "{{",
            "{#",
            "{% for",
            "{% for i in range(",
            "{% for i in range(1,",
            "{{ '",
            "{% raw %}",
            "{% endfor %}{% endfor %}",
            "{{ * }}",
            "{{ 'x' * }}",
            "{{ * 5 }}",
            "{% for i in range(99999999999999999999999999999999999999999) %}{% for j in range(99999999999999999999999) %}",
            "{{ range(-170141183460469231731687303715884105728, 170141183460469231731687303715884105727) }}",
            "{{ range(0, 10, -170141183460469231731687303715884105728) }}",
            "{% \u{e9}\u{1F600} %}{{ \"\\\" }}",
        ] {
            let _ = expensive(t);
        }
    }
}
