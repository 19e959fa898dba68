//! Mermaid `flowchart` text: one shape per node kind, classes for colours, dashed `error`
//! edges, dotted stubs for conditions without an edge, `click` links for called workflows.

use std::fmt::Write;

use switchboard_model::NodeKind;
use switchboard_validator::Severity;

use crate::{Direction, EdgeStyle, Graph, GraphNode, Kind, Options, call_link, text};

/// The class definitions: fill and stroke per kind, then the overlays.
const CLASSES: &[(&str, &str)] = &[
    ("start", "fill:#d1fae5,stroke:#047857"),
    ("message", "fill:#dbeafe,stroke:#1d4ed8"),
    ("wait", "fill:#fef3c7,stroke:#b45309"),
    ("decide", "fill:#ede9fe,stroke:#6d28d9"),
    ("code", "fill:#e0f2fe,stroke:#0369a1"),
    ("call", "fill:#fce7f3,stroke:#be185d"),
    ("agent", "fill:#f3e8ff,stroke:#7e22ce"),
    ("handoff", "fill:#fee2e2,stroke:#b91c1c"),
    ("other", "fill:#f1f5f9,stroke:#475569"),
    (
        "stub",
        "fill:#fff,stroke:#b91c1c,stroke-dasharray:3 3,color:#b91c1c",
    ),
    (
        "missing",
        "fill:#fff,stroke:#b91c1c,stroke-dasharray:3 3,color:#b91c1c",
    ),
    ("unreachable", "fill:#e5e7eb,stroke:#9ca3af,color:#6b7280"),
    ("error", "stroke:#dc2626,stroke-width:3px"),
    ("warning", "stroke:#d97706,stroke-width:2px"),
];

/// The colour family of a node kind (shared by the three formats).
pub(crate) fn family(kind: Kind) -> &'static str {
    match kind {
        Kind::Node(Some(k)) => match k {
            NodeKind::Start => "start",
            NodeKind::SendText | NodeKind::SendTemplate | NodeKind::SendInteractive => "message",
            NodeKind::WaitForResponse => "wait",
            NodeKind::Decide => "decide",
            NodeKind::Function | NodeKind::Webhook | NodeKind::Pipedream => "code",
            NodeKind::Call => "call",
            NodeKind::Agent => "agent",
            NodeKind::Handoff => "handoff",
            NodeKind::SetVariable | NodeKind::EmitEvent => "other",
        },
        Kind::Node(None) => "other",
        Kind::Stub => "stub",
        Kind::Missing => "missing",
    }
}

/// The node's label: title, then kind, then summary lines.
fn label(node: &GraphNode) -> String {
    let mut s = format!("<b>{}</b>", text::mermaid(&text::clip(&node.title, 40)));
    if let Kind::Node(_) = node.kind {
        let _ = write!(s, "<br/><i>{}</i>", node.kind.class());
    }
    for line in &node.summary {
        let _ = write!(s, "<br/>{}", text::mermaid(line));
    }
    if !node.diagnostics.is_empty() {
        let mark = match node.severity {
            Some(Severity::Error) => "error",
            _ => "warning",
        };
        let _ = write!(s, "<br/>⚠ {} {mark}(s)", node.diagnostics.len());
    }
    s
}

/// Wraps a label in the shape of its kind.
fn shaped(kind: Kind, label: &str) -> String {
    let (open, close) = match kind {
        Kind::Node(Some(k)) => match k {
            NodeKind::Start => ("([", "])"),
            NodeKind::WaitForResponse => ("[/", "/]"),
            NodeKind::Decide => ("{", "}"),
            NodeKind::Function | NodeKind::Webhook | NodeKind::Call | NodeKind::Pipedream => {
                ("[[", "]]")
            }
            NodeKind::Agent => ("{{", "}}"),
            NodeKind::Handoff => ("[\\", "/]"),
            NodeKind::SetVariable | NodeKind::EmitEvent => ("[(", ")]"),
            NodeKind::SendText | NodeKind::SendTemplate | NodeKind::SendInteractive => ("[", "]"),
        },
        Kind::Node(None) => ("[", "]"),
        Kind::Stub => ("((", "))"),
        Kind::Missing => ("[", "]"),
    };
    format!("{open}\"{label}\"{close}")
}

/// The flow as a Mermaid flowchart. Node ids are `n0`, `n1`, … (flow ids can be anything);
/// each node's id is its label's first line.
pub fn mermaid(graph: &Graph, options: &Options) -> String {
    let mut s = String::new();
    if let Some(name) = &graph.name {
        // A front-matter title: accepted by Mermaid ≥ 9.4.
        let _ = writeln!(s, "---\ntitle: \"{}\"\n---", title(name));
    }
    let dir = match options.direction {
        Direction::LeftRight => "LR",
        Direction::TopDown => "TD",
    };
    let _ = writeln!(s, "flowchart {dir}");
    for (i, node) in graph.nodes.iter().enumerate() {
        let _ = writeln!(s, "    n{i}{}", shaped(node.kind, &label(node)));
    }
    for (k, e) in graph.edges.iter().enumerate() {
        let arrow = match e.style {
            EdgeStyle::Normal => "-->",
            EdgeStyle::Error | EdgeStyle::Dangling => "-.->",
        };
        if e.label.is_empty() {
            let _ = writeln!(s, "    n{} {arrow} n{}", e.from, e.to);
        } else {
            let _ = writeln!(
                s,
                "    n{} {arrow}|\"{}\"| n{}",
                e.from,
                text::mermaid(&text::clip(&e.label, 30)),
                e.to
            );
        }
        if e.style == EdgeStyle::Error {
            let _ = writeln!(s, "    linkStyle {k} stroke:#dc2626,color:#dc2626");
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(url) = call_link(node, options) {
            let _ = writeln!(s, "    click n{i} href \"{}\"", text::mermaid(url));
        }
    }
    // Class names carry a prefix: `call`, `click`, `style`, … are Mermaid keywords.
    for (name, style) in CLASSES {
        let _ = writeln!(s, "    classDef sb_{name} {style}");
    }
    let mut classes: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |class: &str, i: usize| match classes.iter_mut().find(|(c, _)| c == class) {
        Some((_, v)) => v.push(i),
        None => classes.push((class.to_owned(), vec![i])),
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.reachable || !matches!(node.kind, Kind::Node(_)) {
            add(family(node.kind), i);
        } else {
            add("unreachable", i);
        }
        match node.severity {
            Some(Severity::Error) => add("error", i),
            Some(Severity::Warning) => add("warning", i),
            None => {}
        }
    }
    for (class, ids) in classes {
        let ids: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        let _ = writeln!(s, "    class {} sb_{class}", ids.join(","));
    }
    s
}

/// A front-matter title: YAML double-quoted.
fn title(name: &str) -> String {
    let mut out = String::new();
    for c in text::clip(name, 80).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
