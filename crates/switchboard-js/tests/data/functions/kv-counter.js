// A counter kept in env.KV across calls of the same invoker.
export default {
  async fetch(request, env) {
    const current = (await env.KV.get("counter", "json")) ?? { n: 0 };
    const next = { n: current.n + 1 };
    await env.KV.put("counter", JSON.stringify(next));
    await env.KV.put("seen:" + next.n, "yes");
    const listed = await env.KV.list({ prefix: "seen:" });
    const text = await env.KV.get("counter");
    const missing = await env.KV.get("nope");
    return Response.json({
      vars: { count: next.n, listed: listed.keys.map((k) => k.name), complete: listed.list_complete, text, missing },
    });
  },
};
