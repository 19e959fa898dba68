// Form 2: Deno.serve with Deno.env.
Deno.serve(async (req) => {
  const body = await req.json();
  return Response.json({
    vars: {
      served_by: "deno",
      region: Deno.env.get("REGION"),
      missing: Deno.env.get("NOT_SET") === undefined,
      customer: body.execution_context.vars.customer_name,
    },
  });
});
