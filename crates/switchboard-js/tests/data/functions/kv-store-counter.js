// A counter in env.KV: counts calls (per function; the store keeps it across restarts).
async function handler(request, env) {
  const count = Number((await env.KV.get("count")) ?? 0) + 1;
  await env.KV.put("count", String(count));
  let tooBig = null;
  try {
    await env.KV.put("big", "x".repeat(1024 * 1024 + 1));
  } catch (e) {
    tooBig = e.message;
  }
  return { vars: { count, too_big: tooBig, keys: (await env.KV.list()).keys.map((k) => k.name) } };
}
