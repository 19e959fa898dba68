// Parses each file given with the real Mermaid parser (mermaid.parse, in jsdom): prints
// `ok <file> <diagram type>` or `FAIL <file> <error>`; exits 1 when any fails.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const r = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(`ok ${file} ${r.diagramType}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${file} ${String((e && e.message) || e)}`);
  }
}
// The parser must reject a broken chart, or the checks above prove nothing.
try {
  await mermaid.parse("flowchart LR\n  a -->|b");
  console.log("FAIL the parser accepted a broken chart");
  failed++;
} catch {
  console.log("ok a broken chart is rejected");
}
process.exit(failed ? 1 : 0);
