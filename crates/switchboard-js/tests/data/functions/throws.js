// Throws a TypeError on line 4.
async function handler(request) {
  const payload = await request.json();
  throw new TypeError("order " + payload.flow_info.step_id + " is not valid");
}
