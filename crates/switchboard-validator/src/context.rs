//! The state rule modules share: the flow, the options, an id index, and the diagnostics found.

use rustc_hash::FxHashMap as HashMap;

use switchboard_model::{Edge, Flow, Issue, Map, Node, Pos};

use crate::rules::Rule;
use crate::{Diagnostic, EdgeRef, Options, Severity};

pub(crate) struct Ctx<'a> {
    pub flow: &'a Flow,
    pub opts: &'a Options,
    /// Node id → index of its first occurrence.
    pub ids: HashMap<&'a str, usize>,
    /// Node index → indices of the edges leaving it whose target is a known node or not.
    pub out_edges: Vec<Vec<usize>>,
    /// Edge index → the node indices of its source and target (`None`: missing or unknown).
    /// Looked up once here; the rules read them from this table.
    ends: Vec<(Option<u32>, Option<u32>)>,
    /// Node index → `true` for an object node whose id no earlier object node has.
    first: Vec<bool>,
    /// Node index → its `data.config` object, as written (`None`: absent or not an object).
    configs: Vec<Option<&'a Map>>,
    nodes_ptr: String,
    edges_ptr: String,
    out: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(flow: &'a Flow, opts: &'a Options) -> Ctx<'a> {
        let n = flow.nodes.len();
        let mut ids: HashMap<&str, usize> =
            HashMap::with_capacity_and_hasher(n, Default::default());
        let mut first = vec![false; n];
        let mut configs = Vec::with_capacity(n);
        for (i, node) in flow.nodes.iter().enumerate() {
            if node.is_object() {
                let entry = ids.entry(node.id());
                first[i] = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
                entry.or_insert(i);
            }
            configs.push(node.config_map());
        }
        let index = |id: Option<&str>| {
            id.and_then(|id| ids.get(id))
                .and_then(|&i| u32::try_from(i).ok())
        };
        let ends: Vec<(Option<u32>, Option<u32>)> = flow
            .edges
            .iter()
            .map(|e| (index(e.source()), index(e.target())))
            .collect();
        let mut out_edges = vec![Vec::new(); n];
        for (k, &(s, _)) in ends.iter().enumerate() {
            if let Some(i) = s {
                out_edges[i as usize].push(k);
            }
        }
        Ctx {
            flow,
            opts,
            ids,
            out_edges,
            ends,
            first,
            configs,
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

    /// The index of edge `k`'s source node (`None`: missing or not a node id).
    pub fn source_of(&self, k: usize) -> Option<usize> {
        self.ends[k].0.map(|i| i as usize)
    }

    /// The index of edge `k`'s target node (`None`: missing or not a node id).
    pub fn target_of(&self, k: usize) -> Option<usize> {
        self.ends[k].1.map(|i| i as usize)
    }

    /// `true` when node `i` is an object and the first node with its id.
    pub fn is_first(&self, i: usize) -> bool {
        self.first[i]
    }

    /// Node `i`'s `data.config` object as written (same as `Node::config_map`).
    pub fn config_map(&self, i: usize) -> Option<&'a Map> {
        self.configs[i]
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
        let node = self.source_of(i).and(edge.source()).map(str::to_owned);
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
