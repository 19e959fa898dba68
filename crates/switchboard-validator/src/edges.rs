//! Edges and routing (validation-rules §3 and the label checks of §4).

use rustc_hash::FxHashSet as HashSet;

use switchboard_model::NodeKind;
use switchboard_model::config::NodeConfig;

use crate::context::Ctx;
use crate::rules;

pub(crate) fn check(cx: &mut Ctx) {
    let flow = cx.flow;
    for (k, e) in flow.edges.iter().enumerate() {
        if !e.is_object() {
            continue;
        }
        for (end, value, known) in [
            ("source", e.source(), cx.source_of(k).is_some()),
            ("target", e.target(), cx.target_of(k).is_some()),
        ] {
            match value {
                Some(_) if known => {}
                Some(id) => cx.at_edge(
                    rules::UNKNOWN_EDGE_ENDPOINT,
                    k,
                    &format!("/{end}"),
                    format!("edge {end} `{}` is not a node id", crate::util::excerpt(id)),
                    "point the edge at an existing node id (ids are case-sensitive)",
                ),
                None if e.raw().get(end).is_some_and(|v| !v.is_null()) => {} // wrong type: reported
                None => cx.at_edge(
                    rules::UNKNOWN_EDGE_ENDPOINT,
                    k,
                    "",
                    format!("edge has no `{end}`"),
                    format!("set `{end}` to a node id"),
                ),
            }
        }
        // `label()` reads an absent or `null` label as `next`: empty means written as `""`.
        if e.label().is_empty() {
            cx.at_edge(
                rules::EMPTY_EDGE_LABEL,
                k,
                "/label",
                "edge label is empty".into(),
                "use `next` (or leave the label out), a condition label on a decide node, or `error`",
            );
        }
    }

    for i in 0..flow.nodes.len() {
        let node = cx.node(i);
        let Some(kind) = node.kind() else { continue };
        if cx.out_edges[i].is_empty() && kind != NodeKind::Decide {
            continue;
        }
        // Borrowed out of the context for the loop body, then put back.
        let outs = std::mem::take(&mut cx.out_edges[i]);
        node_edges(cx, i, kind, &outs);
        cx.out_edges[i] = outs;
    }
}

fn node_edges(cx: &mut Ctx, i: usize, kind: NodeKind, outs: &[usize]) {
    let flow = cx.flow;
    let node = cx.node(i);
    {
        // duplicate-edge-label (a set only for nodes with many edges)
        let mut by_label: HashSet<&str> = HashSet::default();
        for (n, &k) in outs.iter().enumerate() {
            let label = flow.edges[k].label();
            if label.is_empty() {
                continue;
            }
            let dup = if outs.len() <= 8 {
                outs[..n].iter().any(|&j| flow.edges[j].label() == label)
            } else {
                !by_label.insert(label)
            };
            if dup {
                cx.at_edge(
                    rules::DUPLICATE_EDGE_LABEL,
                    k,
                    "/label",
                    format!(
                        "node `{}` already has an edge labelled `{label}`",
                        node.id()
                    ),
                    "each label may leave a node once: remove or relabel one of the edges",
                );
            }
        }
        match kind {
            NodeKind::Handoff => {
                for &k in outs {
                    cx.at_edge(
                        rules::HANDOFF_HAS_EDGES,
                        k,
                        "",
                        format!(
                            "handoff node `{}` has an outgoing edge, which is never followed",
                            node.id()
                        ),
                        "remove the edge: after a handoff, a human continues the conversation",
                    );
                }
            }
            NodeKind::Decide => decide(cx, i, outs),
            NodeKind::Start
            | NodeKind::SendText
            | NodeKind::SendTemplate
            | NodeKind::SendInteractive
            | NodeKind::WaitForResponse
            | NodeKind::Function
            | NodeKind::Webhook
            | NodeKind::SetVariable
            | NodeKind::Call
            | NodeKind::Agent
            | NodeKind::EmitEvent
            | NodeKind::Pipedream => {
                let non_error: Vec<usize> = outs
                    .iter()
                    .copied()
                    .filter(|&k| !flow.edges[k].is_error())
                    .collect();
                if non_error.len() > 1 {
                    for &k in &non_error[1..] {
                        cx.at_edge(
                            rules::AMBIGUOUS_NEXT,
                            k,
                            "",
                            format!(
                                "{} node `{}` has {} outgoing edges besides `error`; only one can be followed",
                                kind.as_str(),
                                node.id(),
                                non_error.len()
                            ),
                            "keep one `next` edge (route with a decide node to branch)",
                        );
                    }
                }
                for &k in outs {
                    let label = flow.edges[k].label();
                    if label != "next" && label != "error" && !label.is_empty() {
                        cx.at_edge(
                            rules::UNEXPECTED_EDGE_LABEL,
                            k,
                            "/label",
                            format!(
                                "edge label `{label}` on a {} node is followed like `next`",
                                kind.as_str()
                            ),
                            "label it `next` (labels only choose a branch on decide nodes)",
                        );
                    }
                    if label == "error"
                        && matches!(
                            kind,
                            NodeKind::Start
                                | NodeKind::WaitForResponse
                                | NodeKind::SetVariable
                                | NodeKind::EmitEvent
                        )
                    {
                        cx.at_edge(
                            rules::USELESS_ERROR_EDGE,
                            k,
                            "/label",
                            format!("a {} node never takes an `error` edge", kind.as_str()),
                            "remove the edge: only sending, function, webhook, call and agent nodes fail onto `error`",
                        );
                    }
                }
            }
        }
        // invalid-flow-condition-id (any source)
        let ids: HashSet<&str> = match node.config() {
            NodeConfig::Decide(d) => d
                .conditions
                .iter()
                .flatten()
                .filter_map(|c| c.id.as_deref())
                .collect(),
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendTemplate(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Agent(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Pipedream(_)
            | NodeConfig::Unknown => HashSet::default(),
        };
        for &k in outs {
            if let Some(fc) = flow.edges[k].flow_condition_id()
                && !ids.contains(fc)
            {
                cx.at_edge(
                    rules::INVALID_FLOW_CONDITION_ID,
                    k,
                    "/flow_condition_id",
                    format!("`flow_condition_id` `{fc}` names no condition of node `{}`", node.id()),
                    "routing uses labels; remove the stale `flow_condition_id` or re-export the flow",
                );
            }
        }
    }
}

fn decide(cx: &mut Ctx, i: usize, outs: &[usize]) {
    let flow = cx.flow;
    let node = cx.node(i);
    let NodeConfig::Decide(d) = node.config() else {
        return;
    };
    let labels: Vec<&str> = d.labels().collect();
    for &k in outs {
        let label = flow.edges[k].label();
        if !label.is_empty() && !labels.contains(&label) {
            cx.at_edge(
                rules::DECIDE_LABEL_MISMATCH,
                k,
                "/label",
                format!(
                    "edge label `{label}` is not a condition of decide node `{}`",
                    node.id()
                ),
                format!("use one of the condition labels: {}", quoted(&labels)),
            );
        }
    }
    for (c, cond) in d.conditions.iter().flatten().enumerate() {
        let Some(label) = cond.label.as_deref().filter(|l| !l.is_empty()) else {
            continue;
        };
        if !outs.iter().any(|&k| flow.edges[k].label() == label) {
            cx.at_config(
                rules::CONDITION_WITHOUT_EDGE,
                i,
                &format!("/conditions/{c}"),
                format!("condition `{label}` of decide node `{}` has no edge: choosing it ends the execution", node.id()),
                format!("add an edge from `{}` labelled `{label}`", node.id()),
            );
        }
    }
}

fn quoted(items: &[&str]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
