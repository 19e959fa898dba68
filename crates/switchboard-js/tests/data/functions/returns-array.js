// Returns JSON that is not an object.
async function handler() {
  return Response.json([1, 2, 3]);
}
