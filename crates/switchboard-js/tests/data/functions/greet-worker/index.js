// Form 3: an ES module in the Cloudflare Workers style (functions/<slug>/index.js).
const prefix = "Hi";

export default {
  async fetch(request, env) {
    const payload = await request.json();
    return Response.json({
      vars: { greeting: `${prefix} ${payload.execution_context.vars.customer_name}`, region: env.REGION },
    });
  },
};
