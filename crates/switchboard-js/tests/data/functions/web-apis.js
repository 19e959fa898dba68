// The Web-ish surface of the prelude.
async function handler(request) {
  const h = new Headers({ "X-One": "1" });
  h.append("x-one", "2");
  h.set("Two", "b");
  const seen = [];
  h.forEach((value, name) => seen.push(name + "=" + value));
  const bytes = new TextEncoder().encode("héllo €");
  const back = new TextDecoder().decode(bytes);
  const uuid = crypto.randomUUID();
  const r = new Response("plain text", { status: 201, statusText: "Created" });
  let fetchError = null;
  try {
    await fetch("https://example.com");
  } catch (e) {
    fetchError = e.message;
  }
  return {
    vars: {
      headers: seen,
      has: h.has("TWO"),
      entries: [...h.entries()].length,
      byte_length: bytes.length,
      round_trip: back,
      uuid_ok: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
      text_status: r.status,
      text_ok: r.ok,
      text_type: r.headers.get("content-type"),
      text_body: await r.text(),
      fetch_error: fetchError,
    },
  };
}
