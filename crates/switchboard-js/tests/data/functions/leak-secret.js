// Throws an error carrying a secret: the invoker must redact it.
async function handler(request, env) {
  console.log("the key is", env.API_KEY);
  throw new Error("key=" + env.API_KEY);
}
