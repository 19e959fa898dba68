// A local function (run in embedded QuickJS by `[functions] dir`): the same request and
// response as a Kapso function deployed on Cloudflare Workers. See docs/functions.md.
async function handler(request, env) {
  const { execution_context } = await request.json();
  const number = String(execution_context.vars.order_number ?? "").trim();
  // A stand-in for a call to your order system (`fetch` works here too).
  const late = number.endsWith("7");
  return {
    status: late ? "delayed" : "on its way",
    eta: late ? "next week" : "tomorrow",
  };
}
