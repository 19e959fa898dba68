// Uses a secret without revealing it: answers whether it was set and its length.
async function handler(request, env) {
  const key = env.API_KEY;
  return { vars: { has_key: typeof key === "string", key_length: key.length, same_in_deno: Deno.env.get("API_KEY") === key } };
}
