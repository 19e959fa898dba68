// Form 2 with options first: Deno.serve(options, handler).
Deno.serve({ port: 8000 }, (req) => Response.json({ vars: { form: "options-handler", method: req.method } }));
