//! Document structure (validation-rules §1): node ids, the start node and its edge.
//!
//! `invalid-document`, `unknown-shape`, `invalid-field-type` and `unknown-node-type` come from
//! loading (see `switchboard_model::Issue`); this module checks what needs the whole node list.

use switchboard_model::NodeKind;

use crate::context::Ctx;
use crate::rules;

pub(crate) fn check(cx: &mut Ctx) {
    let flow = cx.flow;
    if flow.nodes.is_empty() {
        cx.at_flow(
            rules::EMPTY_FLOW,
            flow.nodes_pointer(),
            "the flow has no nodes".into(),
            "add a `start` node and at least one node after it",
        );
        return;
    }

    for (i, node) in flow.nodes.iter().enumerate() {
        if !node.is_object() {
            continue;
        }
        let id = node.id();
        let id_is_string = matches!(
            node.raw().get("id"),
            Some(switchboard_model::Value::String(_))
        );
        if id.is_empty() {
            // A non-string id was reported as invalid-field-type already.
            if id_is_string || !node.raw().contains_key("id") {
                cx.at_node(
                    rules::INVALID_NODE_ID,
                    i,
                    "/id",
                    if id_is_string {
                        "node id is empty".into()
                    } else {
                        "node has no `id`".into()
                    },
                    "give the node an id matching ^[A-Za-z][A-Za-z0-9_-]*$",
                );
            }
            continue;
        }
        if !valid_node_id(id) {
            cx.at_node(
                rules::INVALID_NODE_ID,
                i,
                "/id",
                format!(
                    "node id `{}` does not match ^[A-Za-z][A-Za-z0-9_-]*$",
                    crate::util::excerpt(id)
                ),
                "start the id with a letter and use only letters, digits, `_` and `-`",
            );
        }
        if !cx.is_first(i) {
            let first = cx.index_of(id).unwrap_or(0);
            cx.at_node(
                rules::DUPLICATE_NODE_ID,
                i,
                "/id",
                format!("node id `{id}` is already used by node #{first}"),
                "node ids must be unique: rename one of them (and its edges)",
            );
        }
    }

    let starts: Vec<usize> = flow
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind() == Some(NodeKind::Start))
        .map(|(i, _)| i)
        .collect();
    match starts.as_slice() {
        [] => cx.at_flow(
            rules::MISSING_START,
            flow.nodes_pointer(),
            "the flow has no `start` node".into(),
            "add a node `{\"id\": \"start\", \"data\": {\"node_type\": \"start\", \"config\": {}}}` and an edge from it",
        ),
        [first, rest @ ..] => {
            for &i in rest {
                cx.at_node(
                    rules::MULTIPLE_STARTS,
                    i,
                    "/data/node_type",
                    format!(
                        "node `{}` is a second `start` node (the first is `{}`)",
                        cx.node(i).id(),
                        cx.node(*first).id()
                    ),
                    "a flow has exactly one start node: change this node's type or remove it",
                );
            }
            let start = cx.node(*first);
            if start.id() != "start" && !start.id().is_empty() {
                cx.at_node(
                    rules::START_ID_NOT_START,
                    *first,
                    "/id",
                    format!("the start node's id is `{}`, not `start`", start.id()),
                    "current Kapso tooling requires the id `start`: rename it (and its edges)",
                );
            }
            if !start.id().is_empty() && flow.outgoing(start.id()).next().is_none() {
                cx.at_node(
                    rules::START_HAS_NO_EDGE,
                    *first,
                    "/id",
                    format!("the start node `{}` has no outgoing edge", start.id()),
                    "add an edge from the start node to the first step",
                );
            }
        }
    }
}

/// `^[A-Za-z][A-Za-z0-9_-]*$`
pub(crate) fn valid_node_id(id: &str) -> bool {
    let mut b = id.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}
