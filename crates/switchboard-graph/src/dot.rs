//! Graphviz DOT text: shapes and colours per node kind, dashed `error` edges, dotted stubs,
//! grey unreachable nodes, `URL` links for called workflows.

use std::fmt::Write;

use switchboard_model::NodeKind;
use switchboard_validator::Severity;

use crate::mermaid::family;
use crate::{Direction, EdgeStyle, Graph, Kind, Options, call_link, text};

fn colours(family: &str) -> (&'static str, &'static str) {
    match family {
        "start" => ("#d1fae5", "#047857"),
        "message" => ("#dbeafe", "#1d4ed8"),
        "wait" => ("#fef3c7", "#b45309"),
        "decide" => ("#ede9fe", "#6d28d9"),
        "code" => ("#e0f2fe", "#0369a1"),
        "call" => ("#fce7f3", "#be185d"),
        "agent" => ("#f3e8ff", "#7e22ce"),
        "handoff" => ("#fee2e2", "#b91c1c"),
        "stub" | "missing" => ("#ffffff", "#b91c1c"),
        _ => ("#f1f5f9", "#475569"),
    }
}

fn shape(kind: Kind) -> &'static str {
    match kind {
        Kind::Node(Some(k)) => match k {
            NodeKind::Start => "oval",
            NodeKind::WaitForResponse => "parallelogram",
            NodeKind::Decide => "diamond",
            NodeKind::Function | NodeKind::Webhook | NodeKind::Call | NodeKind::Pipedream => {
                "component"
            }
            NodeKind::Agent => "hexagon",
            NodeKind::Handoff => "invtrapezium",
            NodeKind::SetVariable | NodeKind::EmitEvent => "cylinder",
            NodeKind::SendText | NodeKind::SendTemplate | NodeKind::SendInteractive => "box",
        },
        Kind::Node(None) | Kind::Missing => "box",
        Kind::Stub => "circle",
    }
}

/// The flow as a Graphviz `digraph`.
pub fn dot(graph: &Graph, options: &Options) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "digraph \"{}\" {{",
        text::dot(graph.name.as_deref().unwrap_or("flow"))
    );
    let rank = match options.direction {
        Direction::LeftRight => "LR",
        Direction::TopDown => "TB",
    };
    let _ = writeln!(s, "  rankdir={rank};");
    let _ = writeln!(
        s,
        "  node [fontname=\"Helvetica\", fontsize=11, style=\"filled\"];\n  edge [fontname=\"Helvetica\", fontsize=10];"
    );
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut label = text::dot(&text::clip(&node.title, 40));
        if let Kind::Node(_) = node.kind {
            let _ = write!(label, "\\n({})", node.kind.class());
        }
        for line in &node.summary {
            let _ = write!(label, "\\n{}", text::dot(line));
        }
        let (mut fill, mut stroke) = colours(family(node.kind));
        let mut font = "#111827";
        let mut style = "filled".to_owned();
        if !node.reachable && matches!(node.kind, Kind::Node(_)) {
            (fill, stroke, font) = ("#e5e7eb", "#9ca3af", "#6b7280");
        }
        if matches!(node.kind, Kind::Stub | Kind::Missing) {
            style.push_str(",dashed");
        }
        let mut pen = "1";
        match node.severity {
            Some(Severity::Error) => (stroke, pen) = ("#dc2626", "3"),
            Some(Severity::Warning) => (stroke, pen) = ("#d97706", "2"),
            None => {}
        }
        let _ = write!(
            s,
            "  n{i} [id=\"{}\", label=\"{label}\", shape={}, style=\"{style}\", fillcolor=\"{fill}\", color=\"{stroke}\", fontcolor=\"{font}\", penwidth={pen}",
            text::dot(&node.id),
            shape(node.kind)
        );
        if !node.diagnostics.is_empty() {
            let _ = write!(
                s,
                ", tooltip=\"{}\"",
                text::dot(&node.diagnostics.join("\n"))
            );
        }
        if let Some(url) = call_link(node, options) {
            let _ = write!(s, ", URL=\"{}\"", text::dot(url));
        }
        let _ = writeln!(s, "];");
    }
    for e in &graph.edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!(
                "label=\"{}\"",
                text::dot(&text::clip(&e.label, 30))
            ));
        }
        match e.style {
            EdgeStyle::Normal => {}
            EdgeStyle::Error => {
                attrs.push("style=dashed, color=\"#dc2626\", fontcolor=\"#dc2626\"".into())
            }
            EdgeStyle::Dangling => {
                attrs.push("style=dotted, color=\"#b91c1c\", arrowhead=tee".into())
            }
        }
        if attrs.is_empty() {
            let _ = writeln!(s, "  n{} -> n{};", e.from, e.to);
        } else {
            let _ = writeln!(s, "  n{} -> n{} [{}];", e.from, e.to, attrs.join(", "));
        }
    }
    let _ = writeln!(s, "}}");
    s
}
