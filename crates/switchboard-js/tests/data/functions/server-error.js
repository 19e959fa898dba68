// A 500 answer.
export default {
  fetch() {
    return Response.json({ error: "database down" }, { status: 500 });
  },
};
