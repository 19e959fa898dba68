// Stores an object without JSON.stringify: an error.
async function handler(request, env) {
  await env.KV.put("obj", { a: 1 });
  return { vars: {} };
}
