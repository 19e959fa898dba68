//! The state rule modules share: the flow, the options, an id index, and the diagnostics found.

use rustc_hash::FxHashMap as HashMap;

use switchboard_model::{Edge, Flow, Issue, Node, Pos};

use crate::rules::Rule;
use crate::{Diagnostic, EdgeRef, Options, Severity};

pub(crate) struct Ctx<'a> {
    pub flow: &'a Flow,
    pub opts: &'a Options,
    /// Node id → index of its first occurrence.
    pub ids: HashMap<&'a str, usize>,
    /// Node index → indices of the edges leaving it whose target is a known node or not.
    pub out_edges: Vec<Vec<usize>>,
    nodes_ptr: String,
    edges_ptr: String,
    out: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(flow: &'a Flow, opts: &'a Options) -> Ctx<'a> {
        let mut ids = HashMap::with_capacity_and_hasher(flow.nodes.len(), Default::default());
        for (i, n) in flow.nodes.iter().enumerate() {
            if n.is_object() {
                ids.entry(n.id()).or_insert(i);
            }
        }
        let mut out_edges = vec![Vec::new(); flow.nodes.len()];
        for (k, e) in flow.edges.iter().enumerate() {
            if let Some(&i) = e.source().and_then(|s| ids.get(s)) {
                out_edges[i].push(k);
            }
        }
        Ctx {
            flow,
            opts,
            ids,
            out_edges,
            nodes_ptr: flow.nodes_pointer(),
            edges_ptr: flow.edges_pointer(),
            out: Vec::new(),
        }
    }

    pub fn finish(self) -> Vec<Diagnostic> {
        self.out
    }

    /// The index of the node with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    pub fn node(&self, i: usize) -> &'a Node {
        &self.flow.nodes[i]
    }

    /// Pointer of node `i` plus `suffix` (`""`, `/id`, `/data/config/x`, …).
    pub fn node_ptr(&self, i: usize, suffix: &str) -> String {
        format!("{}/{i}{suffix}", self.nodes_ptr)
    }

    /// Pointer of a config path of node `i` (`suffix` like `/buttons/0/title`, or `""`).
    pub fn config_ptr(&self, i: usize, suffix: &str) -> String {
        format!("{}/{i}/data/config{suffix}", self.nodes_ptr)
    }

    pub fn edge_ptr(&self, i: usize, suffix: &str) -> String {
        format!("{}/{i}{suffix}", self.edges_ptr)
    }

    /// A diagnostic at a config path of node `i`.
    pub fn at_config(
        &mut self,
        rule: Rule,
        i: usize,
        suffix: &str,
        message: String,
        help: impl Into<String>,
    ) {
        let pointer = self.config_ptr(i, suffix);
        self.at_node_ptr(rule, rule.severity, i, pointer, message, help.into());
    }

    /// A diagnostic at a pointer below node `i` (`suffix` relative to the node object).
    pub fn at_node(
        &mut self,
        rule: Rule,
        i: usize,
        suffix: &str,
        message: String,
        help: impl Into<String>,
    ) {
        let pointer = self.node_ptr(i, suffix);
        self.at_node_ptr(rule, rule.severity, i, pointer, message, help.into());
    }

    pub fn at_node_ptr(
        &mut self,
        rule: Rule,
        severity: Severity,
        i: usize,
        pointer: String,
        message: String,
        help: String,
    ) {
        let pos = self.flow.pos_at(&pointer);
        self.out.push(Diagnostic {
            rule: rule.name,
            severity,
            message,
            node: Some(self.node(i).id().to_owned()),
            edge: None,
            pointer,
            line: None,
            column: None,
            help: Some(help),
            pos,
        });
    }

    /// A diagnostic on edge `i` (`suffix` relative to the edge object).
    pub fn at_edge(
        &mut self,
        rule: Rule,
        i: usize,
        suffix: &str,
        message: String,
        help: impl Into<String>,
    ) {
        let pointer = self.edge_ptr(i, suffix);
        let pos = self.flow.pos_at(&pointer);
        let edge = &self.flow.edges[i];
        let node = edge
            .source()
            .filter(|s| self.ids.contains_key(s))
            .map(str::to_owned);
        self.out.push(Diagnostic {
            rule: rule.name,
            severity: rule.severity,
            message,
            node,
            edge: Some(edge_ref(edge)),
            pointer,
            line: None,
            column: None,
            help: Some(help.into()),
            pos,
        });
    }

    /// A diagnostic about the flow as a whole, at `pointer`.
    pub fn at_flow(
        &mut self,
        rule: Rule,
        pointer: String,
        message: String,
        help: impl Into<String>,
    ) {
        let pos = self.flow.pos_at(&pointer).or(Pos::new(0));
        self.out.push(Diagnostic {
            rule: rule.name,
            severity: rule.severity,
            message,
            node: None,
            edge: None,
            pointer,
            line: None,
            column: None,
            help: Some(help.into()),
            pos,
        });
    }
}

pub(crate) fn edge_ref(edge: &Edge) -> EdgeRef {
    EdgeRef {
        source: edge.source().unwrap_or_default().to_owned(),
        label: edge.label().to_owned(),
        target: edge.target().unwrap_or_default().to_owned(),
    }
}

/// A model decoding issue as a diagnostic.
pub(crate) fn issue_to_diagnostic(flow: &Flow, issue: &Issue) -> Diagnostic {
    let rule = crate::rules::by_name(issue.rule())
        .copied()
        .unwrap_or(crate::rules::INVALID_FIELD_TYPE);
    let node = issue
        .node
        .and_then(|i| flow.nodes.get(i))
        .map(|n| n.id().to_owned())
        .filter(|s| !s.is_empty());
    let edge = issue.edge.and_then(|i| flow.edges.get(i)).map(edge_ref);
    let pos = if issue.pos == Pos::NONE {
        flow.pos_at(&issue.pointer)
    } else {
        issue.pos
    };
    Diagnostic {
        rule: rule.name,
        severity: rule.severity,
        message: issue.message(),
        node,
        edge,
        pointer: issue.pointer.clone(),
        line: None,
        column: None,
        help: Some(issue.help()),
        pos,
    }
}
