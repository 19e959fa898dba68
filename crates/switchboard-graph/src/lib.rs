//! Diagrams of Switchboard flows: the graph of a loaded flow with the validator's diagnostics on
//! its nodes ([`extract`]), written as Mermaid ([`mermaid`]), Graphviz DOT ([`dot`]) or an SVG
//! that this crate lays out itself ([`svg`]: layered, few crossings, deterministic), so no
//! external program is needed. Used by `switchboard graph` and the playground.
//!
//! The crate is pure: it takes a flow (or bytes) and returns text. It **must not** do I/O, be
//! async, or depend on the runtime, an HTTP stack or anything below the validator besides the
//! model.

mod dot;
mod layout;
mod mermaid;
mod svg;
mod text;

use std::collections::{BTreeMap, VecDeque};

use switchboard_model::config::{InteractiveType, TextField};
use switchboard_model::{Flow, LoadOptions, NodeConfig};
use switchboard_validator::{Diagnostic, Options as ValidatorOptions, Severity};

pub use dot::dot;
pub use layout::{Layout, Placed, layout};
pub use mermaid::mermaid;
pub use svg::svg;

/// Why a diagram could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The bytes are not a flow document at all.
    #[error("not a flow: {0}")]
    NotAFlow(#[from] switchboard_model::LoadError),
    /// An output format name that is not `mermaid`, `dot` or `svg`.
    #[error("unknown format `{0}` (expected mermaid, dot or svg)")]
    UnknownFormat(String),
}

/// The three output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Mermaid `flowchart` text.
    Mermaid,
    /// Graphviz DOT text.
    Dot,
    /// A standalone SVG document laid out by this crate.
    Svg,
}

impl std::str::FromStr for Format {
    type Err = GraphError;
    fn from_str(s: &str) -> Result<Format, GraphError> {
        match s {
            "mermaid" | "mmd" => Ok(Format::Mermaid),
            "dot" | "gv" => Ok(Format::Dot),
            "svg" => Ok(Format::Svg),
            other => Err(GraphError::UnknownFormat(other.to_owned())),
        }
    }
}

/// Which way the layers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Left to right (the default).
    #[default]
    LeftRight,
    /// Top down.
    TopDown,
}

/// How a diagram is drawn.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Which way the layers run.
    pub direction: Direction,
    /// Links for `call` nodes: a called workflow reference (id, slug or name) → a URL (in a
    /// project, the called workflow's own diagram).
    pub links: BTreeMap<String, String>,
}

/// What kind of box a node is drawn as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A node of the flow, by its `node_type` (`None`: missing or unknown).
    Node(Option<switchboard_model::NodeKind>),
    /// A condition of a decide node that has no edge: a dangling stub.
    Stub,
    /// The target of an edge that names a node the flow does not have.
    Missing,
}

impl Kind {
    /// The CSS/DOT class name: the node type, `unknown`, `stub` or `missing`.
    pub fn class(self) -> &'static str {
        match self {
            Kind::Node(Some(k)) => k.as_str(),
            Kind::Node(None) => "unknown",
            Kind::Stub => "stub",
            Kind::Missing => "missing",
        }
    }
}

/// One box of the diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    /// The node id (for stubs and missing targets, a made-up id that no flow node can have).
    pub id: String,
    /// The text shown as the box's title (the node id, or what a stub stands for).
    pub title: String,
    /// What it is.
    pub kind: Kind,
    /// Short lines under the title: message text, function slug, condition labels, timeout, …
    pub summary: Vec<String>,
    /// Reachable from the start node (stubs and missing targets: as their source).
    pub reachable: bool,
    /// For a `call` node: the called workflow and, in a project, its link.
    pub call: Option<(String, Option<String>)>,
    /// The worst severity of the diagnostics on this node.
    pub severity: Option<Severity>,
    /// The diagnostics on this node: `rule: message`.
    pub diagnostics: Vec<String>,
}

/// How an edge is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeStyle {
    /// A normal edge.
    Normal,
    /// An `error` edge: dashed.
    Error,
    /// From a decide node to the stub of a condition without an edge: dotted.
    Dangling,
}

/// One arrow of the diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEdge {
    /// Index of the source in [`Graph::nodes`].
    pub from: usize,
    /// Index of the target in [`Graph::nodes`].
    pub to: usize,
    /// The label shown (`next` is left out; conditions and `error` are shown).
    pub label: String,
    /// How it is drawn.
    pub style: EdgeStyle,
}

/// A flow as a diagram: boxes, arrows, and the diagnostics that concern no single node.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The flow's name, when it has one.
    pub name: Option<String>,
    /// The boxes, flow nodes first in document order, then stubs and missing targets.
    pub nodes: Vec<GraphNode>,
    /// The arrows, in document order, then the dangling stubs.
    pub edges: Vec<GraphEdge>,
    /// Diagnostics not attached to any node: `rule: message`.
    pub flow_diagnostics: Vec<String>,
    /// Every diagnostic's severity count: (errors, warnings).
    pub counts: (usize, usize),
}

/// Loads and validates `bytes` (named `path` for messages) and extracts its graph.
pub fn from_bytes(
    path: &str,
    bytes: &[u8],
    options: &ValidatorOptions,
) -> Result<Graph, GraphError> {
    let loaded = switchboard_model::load_bytes(bytes, Some(path), &LoadOptions::default())?;
    let diagnostics = switchboard_validator::validate_loaded(&loaded, options);
    Ok(extract(&loaded.flow, &diagnostics))
}

/// Renders `graph` in `format`.
pub fn render(graph: &Graph, format: Format, options: &Options) -> String {
    match format {
        Format::Mermaid => mermaid(graph, options),
        Format::Dot => dot(graph, options),
        Format::Svg => svg(graph, options),
    }
}

/// The graph of `flow`, with `diagnostics` (from the validator) attached to their nodes.
pub fn extract(flow: &Flow, diagnostics: &[Diagnostic]) -> Graph {
    let mut nodes: Vec<GraphNode> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for node in &flow.nodes {
        let id = node.id().to_owned();
        let i = nodes.len();
        // A duplicate id keeps its own box; edges go to the first one.
        index.entry(id.clone()).or_insert(i);
        let call = match node.config() {
            NodeConfig::Call(c) => c.workflow.candidates().next().map(|w| (w.to_owned(), None)),
            _ => None,
        };
        nodes.push(GraphNode {
            title: if id.is_empty() {
                "(no id)".into()
            } else {
                id.clone()
            },
            id,
            kind: Kind::Node(node.kind()),
            summary: summary(node.config(), node.node_type()),
            reachable: false,
            call,
            severity: None,
            diagnostics: Vec::new(),
        });
    }
    let mut edges = Vec::new();
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut target_of = |name: &str, nodes: &mut Vec<GraphNode>| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        *missing.entry(name.to_owned()).or_insert_with(|| {
            nodes.push(GraphNode {
                id: format!("missing:{name}"),
                title: if name.is_empty() {
                    "(no target)".into()
                } else {
                    name.to_owned()
                },
                kind: Kind::Missing,
                summary: vec!["no such node".into()],
                reachable: false,
                call: None,
                severity: None,
                diagnostics: Vec::new(),
            });
            nodes.len() - 1
        })
    };
    for edge in &flow.edges {
        let from = target_of(edge.source().unwrap_or(""), &mut nodes);
        let to = target_of(edge.target().unwrap_or(""), &mut nodes);
        let label = edge.label();
        edges.push(GraphEdge {
            from,
            to,
            label: if label == "next" {
                String::new()
            } else {
                label.to_owned()
            },
            style: if edge.is_error() {
                EdgeStyle::Error
            } else {
                EdgeStyle::Normal
            },
        });
    }
    // Decide conditions without an edge: a dangling stub each.
    for (i, node) in flow.nodes.iter().enumerate() {
        if index.get(node.id()) != Some(&i) {
            continue;
        }
        let NodeConfig::Decide(d) = node.config() else {
            continue;
        };
        for c in d.conditions.iter().flatten() {
            let Some(label) = c.label.as_deref().filter(|l| !l.is_empty()) else {
                continue;
            };
            if flow.outgoing(node.id()).any(|e| e.label() == label) {
                continue;
            }
            nodes.push(GraphNode {
                id: format!("stub:{}:{label}", node.id()),
                title: "no edge".into(),
                kind: Kind::Stub,
                summary: vec![format!("`{}` goes nowhere", text::clip(label, 20))],
                reachable: false,
                call: None,
                severity: None,
                diagnostics: Vec::new(),
            });
            edges.push(GraphEdge {
                from: i,
                to: nodes.len() - 1,
                label: label.to_owned(),
                style: EdgeStyle::Dangling,
            });
        }
    }
    // Reachability from the start node(s).
    let mut queue: VecDeque<usize> = flow
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind() == Some(switchboard_model::NodeKind::Start))
        .map(|(i, _)| i)
        .collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for e in &edges {
        out[e.from].push(e.to);
    }
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut nodes[i].reachable, true) {
            continue;
        }
        queue.extend(out[i].iter().copied().filter(|&j| !nodes[j].reachable));
    }
    // Diagnostics on their nodes.
    let mut flow_diagnostics = Vec::new();
    let mut counts = (0, 0);
    for d in diagnostics {
        match d.severity {
            Severity::Error => counts.0 += 1,
            Severity::Warning => counts.1 += 1,
        }
        let line = format!("{}: {}", d.rule, d.message);
        let node = d
            .node
            .as_deref()
            .or(d.edge.as_ref().map(|e| e.source.as_str()))
            .and_then(|n| index.get(n).copied());
        match node {
            Some(i) => {
                let n = &mut nodes[i];
                n.severity = Some(match (n.severity, d.severity) {
                    (Some(Severity::Error), _) | (_, Severity::Error) => Severity::Error,
                    _ => Severity::Warning,
                });
                n.diagnostics.push(line);
            }
            None => flow_diagnostics.push(line),
        }
    }
    Graph {
        name: flow.name().map(str::to_owned),
        nodes,
        edges,
        flow_diagnostics,
        counts,
    }
}

/// The link of a `call` node: its own, else the one `options.links` has for its workflow.
pub(crate) fn call_link<'a>(node: &'a GraphNode, options: &'a Options) -> Option<&'a str> {
    let (w, link) = node.call.as_ref()?;
    link.as_deref()
        .or_else(|| options.links.get(w).map(String::as_str))
}

fn text_field(f: Option<&TextField>) -> Option<String> {
    match f? {
        TextField::Text(s) => Some(text::clip(&text::one_line(s), 30)),
        TextField::Ai => Some("(AI-generated)".into()),
    }
}

fn resource(r: &switchboard_model::config::ResourceRef) -> String {
    r.slug
        .as_deref()
        .or(r.name.as_deref())
        .or(r.id.as_deref())
        .map_or_else(|| "?".to_owned(), |s| text::clip(s, 26))
}

/// A few short lines saying what a node does.
fn summary(config: &NodeConfig, node_type: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    match config {
        NodeConfig::Start => {}
        NodeConfig::SendText(t) => {
            out.extend(text_field(t.message.as_ref()));
            if let Some(d) = t.delay_seconds.filter(|d| *d > 0.0) {
                out.push(format!("after {}s", text::number(d)));
            }
        }
        NodeConfig::SendTemplate(t) => out.push(format!(
            "template {}",
            text::clip(t.template_id.as_deref().unwrap_or("?"), 24)
        )),
        NodeConfig::SendInteractive(i) => {
            out.extend(text_field(i.body_text.as_ref()));
            match i.interactive_type {
                Some(InteractiveType::Button) => {
                    let titles: Vec<String> = i
                        .buttons
                        .iter()
                        .flatten()
                        .map(|b| format!("[{}]", b.title.as_deref().unwrap_or("?")))
                        .collect();
                    out.push(text::clip(&titles.join(" "), 30));
                }
                Some(InteractiveType::List) => {
                    let rows = i
                        .list_sections
                        .iter()
                        .flatten()
                        .map(|s| s.rows.len())
                        .sum::<usize>();
                    out.push(format!("list: {rows} rows"));
                }
                Some(InteractiveType::CtaUrl) => out.push(format!(
                    "link: {}",
                    text::clip(i.cta_display_text.as_deref().unwrap_or("?"), 24)
                )),
                Some(InteractiveType::Flow) => out.push(format!(
                    "WhatsApp Flow: {}",
                    text::clip(i.flow_cta.as_deref().unwrap_or("?"), 16)
                )),
                Some(other) => out.push(format!("{other:?}").to_lowercase()),
                None => {}
            }
        }
        NodeConfig::WaitForResponse(w) => {
            let timeout = match (w.timeout_seconds, w.has_timeout) {
                (_, Some(false)) => "no timeout".to_owned(),
                (Some(t), _) => format!("timeout {}", text::duration(t)),
                (None, _) => "default timeout".to_owned(),
            };
            out.push(timeout);
            if let Some(v) = &w.save_response_to {
                out.push(format!("→ vars.{}", text::clip(v, 22)));
            }
        }
        NodeConfig::Decide(d) => {
            let how: &str = match d.decision_type {
                Some(switchboard_model::config::DecisionType::Function) => "function",
                Some(switchboard_model::config::DecisionType::Ai) | None => "ai",
            };
            let labels: Vec<&str> = d
                .conditions
                .iter()
                .flatten()
                .filter_map(|c| c.label.as_deref())
                .collect();
            out.push(format!("{how}: {}", text::clip(&labels.join(" | "), 24)));
            if d.function.is_set() {
                out.push(format!("fn {}", resource(&d.function)));
            }
        }
        NodeConfig::Function(f) => {
            out.push(format!("fn {}", resource(&f.function)));
            if let Some(v) = &f.save_response_to {
                out.push(format!("→ vars.{}", text::clip(v, 22)));
            }
        }
        NodeConfig::Pipedream(p) => {
            out.push(format!(
                "pipedream {}",
                text::clip(p.app_slug.as_deref().unwrap_or("?"), 22)
            ));
            out.push("not run by Switchboard".to_owned());
        }
        NodeConfig::Webhook(w) => {
            let method = w.method.as_deref().unwrap_or("POST").to_uppercase();
            let url = w.url.as_ref().and_then(TextField::as_text).unwrap_or("?");
            out.push(format!("{method} {}", text::clip(url, 24)));
        }
        NodeConfig::SetVariable(s) => out.push(format!(
            "{} = …",
            text::clip(s.variable_name.as_deref().unwrap_or("?"), 24)
        )),
        NodeConfig::Call(c) => out.push(format!("calls {}", resource(&c.workflow))),
        NodeConfig::Agent(a) => {
            let model = a
                .model
                .name
                .as_deref()
                .or(a.model.id.as_deref())
                .unwrap_or("?");
            out.push(format!("agent ({})", text::clip(model, 20)));
            let tools = a.webhooks.len()
                + a.function_tools.len()
                + a.mcp_servers.len()
                + a.knowledge_bases.len();
            if tools > 0 {
                out.push(format!("{tools} tools"));
            }
        }
        NodeConfig::Handoff(_) => out.push("to a human: no way out".into()),
        NodeConfig::EmitEvent(e) => out.push(format!(
            "event {}",
            text::clip(e.event_name.as_deref().unwrap_or("?"), 24)
        )),
        NodeConfig::Unknown => out.push(match node_type {
            Some(t) => format!("unknown type {}", text::clip(t, 16)),
            None => "no node_type".into(),
        }),
    }
    out
}
