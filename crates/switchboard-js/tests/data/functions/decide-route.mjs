// A decide function: picks one of `available_edges` (an .mjs module).
export default {
  async fetch(request) {
    const { execution_context, available_edges } = await request.json();
    const text = String(execution_context.vars.last_user_input || "").toLowerCase();
    const next_edge = text.includes("buy") && available_edges.includes("sales") ? "sales" : available_edges[available_edges.length - 1];
    return Response.json({ next_edge, vars: { decision_reason: `matched ${next_edge}`, edges_seen: available_edges.length } });
  },
};
