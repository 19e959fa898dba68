// Form 1, returning a plain object: a JSON 200 body.
async function handler(request) {
  const { execution_context } = await request.json();
  return { vars: { doubled: execution_context.vars.points * 2 } };
}
