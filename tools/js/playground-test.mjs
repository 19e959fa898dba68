// Browser test of `switchboard playground`, driven by playwright-core over Debian's Chromium.
// Usage: node playground-test.mjs <json>, where <json> is
//   {"url": …, "nodes": N, "errorUrl": …, "errorNode": ID, "screenshots": DIR, "chromium": PATH}
// Prints one line per check and exits 1 at the first failure.
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const consoleErrors = [];
let step = "launch";
const check = (cond, what) => {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok ${what}`);
};

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(15000);

  step = "load the page";
  await page.goto(cfg.url);
  await page.waitForSelector("#diagram g.node");
  const nodes = await page.locator("#diagram g.node:not(.stub):not(.missing)").count();
  check(nodes === cfg.nodes, `the diagram has ${cfg.nodes} nodes (saw ${nodes})`);

  step = "type a message";
  await page.locator("#text").fill("hi");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#chat .msg.bot .choice");
  const first = await page.locator("#diagram g.node.current").getAttribute("data-node-id");
  check(first === "wait_service", `after "hi" the highlighted node is wait_service (saw ${first})`);
  await page.screenshot({ path: `${cfg.screenshots}/1-after-hi.png` });

  step = "click a reply button";
  const bots = await page.locator("#chat .msg.bot").count();
  await page.locator('#chat .msg.bot .choice[data-id="haircut"]').click();
  await page.waitForFunction((n) => document.querySelectorAll("#chat .msg.bot").length > n, bots);
  const answer = await page.locator("#chat .msg.bot").last().innerText();
  check(/stylist|book/i.test(answer), `the bot answered the button (${JSON.stringify(answer.slice(0, 60))})`);
  await page.waitForFunction(() => {
    const g = document.querySelector("#diagram g.node.current");
    return g && g.getAttribute("data-node-id") !== "wait_service";
  });
  const second = await page.locator("#diagram g.node.current").getAttribute("data-node-id");
  check(second === "wait_booking", `the highlighted node moved to wait_booking (saw ${second})`);
  const visited = await page.locator("#diagram g.node.visited").count();
  check(visited >= 5, `the path taken is marked (${visited} nodes)`);

  step = "the Events tab";
  await page.locator("#tab-events").click();
  const inputs = await page.locator('#events li[data-type="user_input_received"]').count();
  check(inputs >= 1, `the Events tab lists user_input_received (${inputs})`);
  await page.locator("#event-filter").selectOption("user_input_received");
  const filtered = await page.locator("#events li").count();
  check(filtered === inputs, "the Events tab filters by type");
  await page.locator('#events li[data-type="user_input_received"] summary').first().click();
  const json = await page.locator('#events li[data-type="user_input_received"] pre').first().innerText();
  check(json.includes("\"event_type\""), "an event expands to its JSON");
  await page.screenshot({ path: `${cfg.screenshots}/2-events.png` });

  step = "the Variables tab (keyboard)";
  await page.locator("#tab-events").focus();
  await page.keyboard.press("ArrowRight");
  const selected = await page.locator("#tab-variables").getAttribute("aria-selected");
  check(selected === "true", "ArrowRight moves to the Variables tab");
  const vars = await page.locator('#variables li[data-path="vars.service"]').innerText();
  check(vars.includes("Haircut"), `the Variables tab shows the saved reply (${JSON.stringify(vars)})`);
  await page.screenshot({ path: `${cfg.screenshots}/3-variables.png` });

  step = "phone width";
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = overflow <= 1 ? [] : await page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 8)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")} (${Math.round(e.getBoundingClientRect().right)}px)`));
  check(overflow <= 1, `no sideways scrolling at phone width (overflow ${overflow}px${wide.length ? "; past the edge: " + wide.join(", ") : ""})`);
  await page.screenshot({ path: `${cfg.screenshots}/4-phone.png`, fullPage: true });

  step = "a flow with an error";
  const bad = await context.newPage();
  bad.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  bad.on("pageerror", (e) => consoleErrors.push(String(e)));
  await bad.goto(cfg.errorUrl);
  const id = cfg.errorNode;
  await bad.waitForSelector(`#diagram g.node.has-error[data-node-id="${id}"]`);
  check(true, `the diagram marks node ${id} with its error`);
  const item = await bad.locator(`#diagnostics li.error[data-node="${id}"]`).innerText();
  check(item.length > 0, `the diagnostics list names ${id}: ${JSON.stringify(item)}`);
  const disabled = await bad.locator("#text").isDisabled();
  check(disabled, "a flow with errors cannot be chatted with");
  await bad.screenshot({ path: `${cfg.screenshots}/5-error-flow.png` });

  await page.close();
  await bad.close();
  check(consoleErrors.length === 0, `no console errors ${JSON.stringify(consoleErrors)}`);
} catch (e) {
  console.log(`FAIL at "${step}": ${e.message}`);
  if (consoleErrors.length) console.log(`console errors: ${JSON.stringify(consoleErrors)}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
