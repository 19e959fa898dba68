// A 200 whose body is not JSON.
async function handler() {
  return new Response("<html>oops</html>", { status: 200, headers: { "content-type": "text/html" } });
}
