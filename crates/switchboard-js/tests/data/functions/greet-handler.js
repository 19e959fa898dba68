// Form 1: a global `handler(request, env)` returning a Response.
async function handler(request, env) {
  const payload = await request.json();
  const vars = payload.execution_context.vars;
  return new Response(
    JSON.stringify({
      vars: {
        greeting: "Hello, " + vars.customer_name + "!",
        name_length: vars.customer_name.length,
        method: request.method,
        url: request.url,
        content_type: request.headers.get("Content-Type"),
        execution_id: request.headers.get("X-Switchboard-Execution-Id"),
        node_id: request.headers.get("x-switchboard-node-id"),
        step_id: payload.flow_info.step_id,
      },
    }),
    { status: 200, headers: { "Content-Type": "application/json" } },
  );
}
