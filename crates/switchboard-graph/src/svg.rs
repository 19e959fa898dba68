//! A standalone SVG drawn from [`crate::layout`]: one `<g class="node …" data-node-id="…">`
//! per node (so a page can highlight it), one `<g class="edge …">` per edge, a style sheet
//! inside, no script and no external reference.

use std::fmt::Write;

use switchboard_model::NodeKind;
use switchboard_validator::Severity;

use crate::layout::{LINE_HEIGHT, Placed, layout};
use crate::mermaid::family;
use crate::{Direction, EdgeStyle, Graph, Kind, Options, call_link, text};

const STYLE: &str = "
.sb-graph{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:12px}
.sb-graph .node .box{stroke-width:1.5}
.sb-graph .node text{fill:#111827}
.sb-graph .node .title{font-weight:600}
.sb-graph .node .kind{font-style:italic;fill:#4b5563;font-size:11px}
.sb-graph .start .box{fill:#d1fae5;stroke:#047857}
.sb-graph .message .box{fill:#dbeafe;stroke:#1d4ed8}
.sb-graph .wait .box{fill:#fef3c7;stroke:#b45309}
.sb-graph .decide .box{fill:#ede9fe;stroke:#6d28d9}
.sb-graph .code .box{fill:#e0f2fe;stroke:#0369a1}
.sb-graph .call .box{fill:#fce7f3;stroke:#be185d}
.sb-graph .agent .box{fill:#f3e8ff;stroke:#7e22ce}
.sb-graph .handoff .box{fill:#fee2e2;stroke:#b91c1c;stroke-width:3}
.sb-graph .other .box{fill:#f1f5f9;stroke:#475569}
.sb-graph .stub .box,.sb-graph .missing .box{fill:#fff;stroke:#b91c1c;stroke-dasharray:4 3}
.sb-graph .stub text,.sb-graph .missing text{fill:#b91c1c}
.sb-graph .unreachable .box{fill:#e5e7eb;stroke:#9ca3af}
.sb-graph .unreachable text{fill:#6b7280}
.sb-graph .has-error .box{stroke:#dc2626;stroke-width:3}
.sb-graph .has-warning .box{stroke:#d97706;stroke-width:2.5}
.sb-graph .badge circle{fill:#dc2626}
.sb-graph .has-warning .badge circle{fill:#d97706}
.sb-graph .badge text{fill:#fff;font-weight:700;text-anchor:middle}
.sb-graph .edge path{fill:none;stroke:#374151;stroke-width:1.4}
.sb-graph .edge.error path{stroke:#dc2626;stroke-dasharray:6 4}
.sb-graph .edge.dangling path{stroke:#b91c1c;stroke-dasharray:2 3}
.sb-graph .edge .label rect{fill:#fff;opacity:.9}
.sb-graph .edge .label text{fill:#374151;font-size:11px;text-anchor:middle}
.sb-graph .edge.error .label text{fill:#dc2626}
";

/// The flow as a standalone SVG document, laid out by [`crate::layout`].
pub fn svg(graph: &Graph, options: &Options) -> String {
    let lay = layout(graph, options.direction);
    let mut s = String::new();
    let (w, h) = (lay.width.ceil(), lay.height.ceil());
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sb-graph\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        text::xml(&format!(
            "Flow diagram{}: {} nodes, {} edges",
            graph
                .name
                .as_deref()
                .map(|n| format!(" of {n}"))
                .unwrap_or_default(),
            graph
                .nodes
                .iter()
                .filter(|n| matches!(n.kind, Kind::Node(_)))
                .count(),
            graph.edges.len()
        ))
    );
    if let Some(name) = &graph.name {
        let _ = writeln!(s, "<title>{}</title>", text::xml(name));
    }
    let _ = writeln!(s, "<style>{STYLE}</style>");
    let _ = writeln!(
        s,
        "<defs><marker id=\"sb-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#374151\"/></marker><marker id=\"sb-arrow-red\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#dc2626\"/></marker></defs>"
    );
    // Edges first, so the boxes sit on top of them.
    for (k, e) in graph.edges.iter().enumerate() {
        let pts = &lay.edges[k];
        if pts.len() < 2 {
            continue;
        }
        let class = match e.style {
            EdgeStyle::Normal => "edge",
            EdgeStyle::Error => "edge error",
            EdgeStyle::Dangling => "edge dangling",
        };
        let marker = match e.style {
            EdgeStyle::Normal => "sb-arrow",
            _ => "sb-arrow-red",
        };
        let _ = writeln!(
            s,
            "<g class=\"{class}\" data-source=\"{}\" data-target=\"{}\" data-label=\"{}\">",
            text::xml(&graph.nodes[e.from].id),
            text::xml(&graph.nodes[e.to].id),
            text::xml(&e.label)
        );
        let _ = writeln!(
            s,
            "<path d=\"{}\" marker-end=\"url(#{marker})\"/>",
            curve(pts, options.direction)
        );
        if !e.label.is_empty() {
            let (lx, ly) = label_point(pts);
            let label = text::clip(&e.label, 30);
            let lw = label.chars().count() as f64 * 6.4 + 8.0;
            let _ = writeln!(
                s,
                "<g class=\"label\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"15\" rx=\"3\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                r(lx - lw / 2.0),
                r(ly - 8.0),
                r(lw),
                r(lx),
                r(ly + 4.0),
                text::xml(&label)
            );
        }
        let _ = writeln!(s, "</g>");
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let b = lay.nodes[i];
        let mut class = format!("node {} kind-{}", family(node.kind), node.kind.class());
        if !node.reachable && matches!(node.kind, Kind::Node(_)) {
            class.push_str(" unreachable");
        }
        match node.severity {
            Some(Severity::Error) => class.push_str(" has-error"),
            Some(Severity::Warning) => class.push_str(" has-warning"),
            None => {}
        }
        let link = call_link(node, options);
        if let Some(url) = link {
            let _ = writeln!(s, "<a href=\"{}\">", text::xml(url));
        }
        let _ = writeln!(
            s,
            "<g class=\"{class}\" data-node-id=\"{}\" data-layer=\"{}\">",
            text::xml(&node.id),
            lay.layers.get(i).copied().unwrap_or(0)
        );
        let mut tip = node.title.clone();
        for d in &node.diagnostics {
            tip.push('\n');
            tip.push_str(d);
        }
        let _ = writeln!(s, "<title>{}</title>", text::xml(&tip));
        let _ = writeln!(s, "{}", shape(node.kind, &b));
        let mut y = b.y + 18.0;
        let x = b.x + 12.0;
        let _ = writeln!(
            s,
            "<text class=\"title\" x=\"{}\" y=\"{}\">{}</text>",
            r(x),
            r(y),
            text::xml(&text::clip(&node.title, 28))
        );
        if let Kind::Node(_) = node.kind {
            y += LINE_HEIGHT;
            let _ = writeln!(
                s,
                "<text class=\"kind\" x=\"{}\" y=\"{}\">{}</text>",
                r(x),
                r(y),
                node.kind.class()
            );
        }
        for line in &node.summary {
            y += LINE_HEIGHT;
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                r(x),
                r(y),
                text::xml(&text::clip(line, 30))
            );
        }
        if !node.diagnostics.is_empty() {
            let (cx, cy) = (b.x + b.w - 4.0, b.y + 4.0);
            let _ = writeln!(
                s,
                "<g class=\"badge\"><circle cx=\"{}\" cy=\"{}\" r=\"9\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                r(cx),
                r(cy),
                r(cx),
                r(cy + 4.0),
                node.diagnostics.len()
            );
        }
        let _ = writeln!(s, "</g>");
        if link.is_some() {
            let _ = writeln!(s, "</a>");
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// The box of a node kind.
fn shape(kind: Kind, b: &Placed) -> String {
    let (x, y, w, h) = (b.x, b.y, b.w, b.h);
    let rect = |rx: f64| {
        format!(
            "<rect class=\"box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\"/>",
            r(x),
            r(y),
            r(w),
            r(h),
            r(rx)
        )
    };
    let poly = |pts: &[(f64, f64)]| {
        let p: Vec<String> = pts
            .iter()
            .map(|(a, c)| format!("{},{}", r(*a), r(*c)))
            .collect();
        format!("<polygon class=\"box\" points=\"{}\"/>", p.join(" "))
    };
    match kind {
        Kind::Node(Some(NodeKind::Start)) => rect(h / 2.0),
        Kind::Node(Some(NodeKind::Decide)) | Kind::Node(Some(NodeKind::Agent)) => poly(&[
            (x + 8.0, y),
            (x + w - 8.0, y),
            (x + w, y + h / 2.0),
            (x + w - 8.0, y + h),
            (x + 8.0, y + h),
            (x, y + h / 2.0),
        ]),
        Kind::Node(Some(NodeKind::WaitForResponse)) => {
            poly(&[(x + 8.0, y), (x + w, y), (x + w - 8.0, y + h), (x, y + h)])
        }
        Kind::Node(Some(NodeKind::Function | NodeKind::Webhook | NodeKind::Call)) => format!(
            "{}<path class=\"box\" d=\"M{},{} V{} M{},{} V{}\"/>",
            rect(2.0),
            r(x + 5.0),
            r(y),
            r(y + h),
            r(x + w - 5.0),
            r(y),
            r(y + h)
        ),
        Kind::Stub => rect(h / 2.0),
        _ => rect(6.0),
    }
}

/// A smooth path through the points: a cubic per segment, with control points halfway along
/// the layer axis.
fn curve(pts: &[(f64, f64)], direction: Direction) -> String {
    let mut d = format!("M{},{}", r(pts[0].0), r(pts[0].1));
    for w in pts.windows(2) {
        let ((x1, y1), (x2, y2)) = (w[0], w[1]);
        let (c1, c2) = match direction {
            Direction::LeftRight => {
                let m = (x1 + x2) / 2.0;
                ((m, y1), (m, y2))
            }
            Direction::TopDown => {
                let m = (y1 + y2) / 2.0;
                ((x1, m), (x2, m))
            }
        };
        let _ = write!(
            d,
            " C{},{} {},{} {},{}",
            r(c1.0),
            r(c1.1),
            r(c2.0),
            r(c2.1),
            r(x2),
            r(y2)
        );
    }
    d
}

/// Where an edge's label goes: the middle of its middle segment.
fn label_point(pts: &[(f64, f64)]) -> (f64, f64) {
    let i = (pts.len() - 1) / 2;
    let (a, b) = (pts[i], pts[i + 1]);
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}

/// A coordinate with at most one decimal (stable, short text).
fn r(v: f64) -> String {
    let v = (v * 10.0).round() / 10.0;
    if v == 0.0 {
        "0".into()
    } else {
        text::number(v)
    }
}
