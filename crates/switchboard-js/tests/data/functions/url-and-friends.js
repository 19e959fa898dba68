// URL, URLSearchParams, atob/btoa, AbortController: the Web APIs Kapso's runtime offers.
async function handler(request) {
  const u = new URL("HTTPS://Shop.Example.com:443/a/./b/../cakes?q=carrot cake&size=2#top");
  u.searchParams.append("note", "über & more");
  u.searchParams.set("size", "3");
  const rel = new URL("../orders/42?x=1", "https://api.example.com/v1/cakes/list");
  const p = new URLSearchParams({ a: "1", b: "two words" });
  p.append("a", "3");
  const sorted = new URLSearchParams("z=1&a=2&a=1");
  sorted.sort();
  let invalid = null;
  try {
    new URL("not a url");
  } catch (e) {
    invalid = e.constructor.name;
  }
  const controller = new AbortController();
  let heard = null;
  controller.signal.addEventListener("abort", () => (heard = "abort"));
  controller.abort();
  let aborted = null;
  try {
    await fetch("https://api.example.com", { signal: controller.signal });
  } catch (e) {
    aborted = e.name;
  }
  let badAtob = null;
  try {
    atob("***");
  } catch (e) {
    badAtob = e.message.split(":")[0];
  }
  return {
    vars: {
      href: u.href,
      host: u.host,
      origin: u.origin,
      pathname: u.pathname,
      search: u.search,
      q: u.searchParams.get("q"),
      note: u.searchParams.get("note"),
      hash: u.hash,
      relative: rel.toString(),
      params: p.toString(),
      all_a: p.getAll("a"),
      sorted: sorted.toString(),
      can_parse: [URL.canParse("mailto:ana@example.com"), URL.canParse("/only/a/path")],
      invalid,
      btoa: btoa("héllo"),
      atob: atob("aGVsbG8gd29ybGQ="),
      bad_atob: badAtob,
      heard,
      aborted,
      signal_aborted: controller.signal.aborted,
      uuid: typeof crypto.randomUUID(),
      json: JSON.stringify({ u: new URL("https://x.io/p") }),
    },
  };
}
