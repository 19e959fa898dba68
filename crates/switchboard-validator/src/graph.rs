//! Graph analysis (validation-rules §9, and the cycle part of `emit-event-budget`): reachability,
//! dead ends, loops without a wait (strongly connected components), and the def-use dataflow
//! behind `possibly-undefined-variable`.
//!
//! The analysis graph (§9.1) has every node and every edge with known endpoints, except the
//! outgoing edges of `handoff` nodes; `error` edges are included.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef};

use switchboard_model::NodeKind;
use switchboard_model::config::NodeConfig;

use crate::Severity;
use crate::context::Ctx;
use crate::rules;
use crate::templates::{Analysis, writes};

/// Reads never reported (validation-rules §9.3).
const ALWAYS_DEFINED: &[&str] = &["last_user_input", "last_user_reply", "last_error"];

pub(crate) fn check(cx: &mut Ctx, analysis: &Analysis) {
    let flow = cx.flow;
    let n = flow.nodes.len();
    let Some(start) = flow
        .nodes
        .iter()
        .position(|node| node.kind() == Some(NodeKind::Start) && cx.index_of(node.id()).is_some())
    else {
        return;
    };

    // The analysis graph. Node weights are flow node indices; edge weights say "is error edge".
    let mut g: DiGraph<usize, bool> = DiGraph::with_capacity(n, flow.edges.len());
    for i in 0..n {
        g.add_node(i);
    }
    for (k, e) in flow.edges.iter().enumerate() {
        let (Some(s), Some(t)) = (cx.source_of(k), cx.target_of(k)) else {
            continue;
        };
        if flow.nodes[s].kind() == Some(NodeKind::Handoff) {
            continue;
        }
        g.add_edge(NodeIndex::new(s), NodeIndex::new(t), e.is_error());
    }

    let mut reachable = vec![false; n];
    let mut bfs = Bfs::new(&g, NodeIndex::new(start));
    while let Some(v) = bfs.next(&g) {
        reachable[v.index()] = true;
    }

    for (i, node) in flow.nodes.iter().enumerate() {
        // Nodes that are not objects, or repeat an id, were reported already.
        if !cx.is_first(i) {
            continue;
        }
        if !reachable[i] {
            cx.at_node(
                rules::UNREACHABLE_NODE,
                i,
                "/id",
                format!("node `{}` cannot be reached from the start node", node.id()),
                "add an edge to it, or remove it",
            );
            continue;
        }
        if !cx.out_edges[i].iter().any(|&k| !flow.edges[k].is_error())
            && let Some((what, help)) = thrown_away(node.config())
        {
            cx.at_node(
                rules::DEAD_END,
                i,
                "/id",
                format!(
                    "node `{}` has no outgoing edge: the execution ends right after it, so {what}",
                    node.id()
                ),
                help,
            );
        }
    }

    loops(cx, &g, &reachable);
    dataflow(cx, &g, &reachable, start, analysis);
}

/// For a node whose work is lost when the execution ends right after it (validation-rules
/// §9, `dead-end`), what is lost and the fix; `None` for nodes that are normal last steps —
/// messages, `handoff`, `agent`, `call`, `emit_event`, and functions or webhooks that save
/// nothing.
fn thrown_away(config: &NodeConfig) -> Option<(&'static str, &'static str)> {
    let saves = |to: &Option<String>| to.as_deref().is_some_and(|s| !s.trim().is_empty());
    match config {
        NodeConfig::WaitForResponse(_) => Some((
            "it waits for a reply that nothing reads",
            "add an edge from it to the step that uses the reply, or remove it",
        )),
        NodeConfig::SetVariable(_) => Some((
            "the variable it sets is never read",
            "add an edge from it to the step that uses the variable, or remove it",
        )),
        NodeConfig::Function(f) if saves(&f.save_response_to) => Some((
            "the response it saves is never read",
            "add an edge to the step that uses the response, or drop `save_response_to`",
        )),
        NodeConfig::Webhook(w) if saves(&w.save_response_to) => Some((
            "the response it saves is never read",
            "add an edge to the step that uses the response, or drop `save_response_to`",
        )),
        _ => None,
    }
}

fn loops(cx: &mut Ctx, g: &DiGraph<usize, bool>, reachable: &[bool]) {
    let flow = cx.flow;
    let mut comp_of = vec![usize::MAX; g.node_count()];
    let sccs = petgraph::algo::tarjan_scc(g);
    for (c, scc) in sccs.iter().enumerate() {
        for v in scc {
            comp_of[v.index()] = c;
        }
    }
    for (c, scc) in sccs.iter().enumerate() {
        let first = scc.iter().map(|v| v.index()).min().unwrap_or(0);
        if !reachable.get(first).copied().unwrap_or(false) {
            continue;
        }
        let cyclic = scc.len() > 1 || g.edges(scc[0]).any(|e| e.target() == scc[0]);
        if !cyclic {
            continue;
        }
        let mut members: Vec<usize> = scc.iter().map(|v| v.index()).collect();
        members.sort_unstable();
        for &m in &members {
            if flow.nodes[m].kind() == Some(NodeKind::EmitEvent) {
                cx.at_node(
                    rules::EMIT_EVENT_BUDGET,
                    m,
                    "/id",
                    format!("emit_event node `{}` is on a cycle; an execution may emit at most 10 events (3 per name)", flow.nodes[m].id()),
                    "move the emit out of the loop, or make sure the loop runs only a few times",
                );
            }
        }
        let waits = members.iter().any(|&m| {
            matches!(
                flow.nodes[m].kind(),
                Some(NodeKind::WaitForResponse | NodeKind::Agent)
            )
        });
        if waits {
            continue;
        }
        let has_call = members
            .iter()
            .any(|&m| flow.nodes[m].kind() == Some(NodeKind::Call));
        let has_exit = members.iter().any(|&m| {
            let node = &flow.nodes[m];
            let leaves = |k: usize| cx.target_of(k).is_none_or(|t| comp_of[t] != c);
            let decide_exit = match node.config() {
                NodeConfig::Decide(d) => d.labels().any(|label| {
                    let edges: Vec<usize> = cx.out_edges[m]
                        .iter()
                        .copied()
                        .filter(|&k| flow.edges[k].label() == label)
                        .collect();
                    edges.is_empty() || edges.iter().any(|&k| leaves(k))
                }),
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
                | NodeConfig::Unknown => false,
            };
            decide_exit
                || cx.out_edges[m]
                    .iter()
                    .any(|&k| flow.edges[k].is_error() && leaves(k))
        });
        let path: Vec<&str> = members
            .iter()
            .take(6)
            .map(|&m| flow.nodes[m].id())
            .collect();
        let shown = if members.len() > 6 {
            format!("{} …", path.join(", "))
        } else {
            path.join(", ")
        };
        let (severity, message, help) = if !has_exit && !has_call {
            (
                Severity::Error,
                format!(
                    "nodes {shown} form a loop with no wait_for_response or agent node and no way out: it can only stop at the step limit"
                ),
                "add a wait_for_response inside the loop, or a decide condition that leaves it",
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "nodes {shown} form a loop with no wait_for_response or agent node: it may spin without user input"
                ),
                "make sure the loop's exit is taken, or wait for the user inside it",
            )
        };
        let pointer = cx.node_ptr(first, "/id");
        cx.at_node_ptr(
            rules::LOOP_WITHOUT_WAIT,
            severity,
            first,
            pointer,
            message,
            help.into(),
        );
    }
}

/// A fixed-size bit set over interned variable names.
#[derive(Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn empty(words: usize) -> Bits {
        Bits(vec![0; words])
    }
    fn full(words: usize) -> Bits {
        Bits(vec![u64::MAX; words])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn and_with(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }
}

fn dataflow(
    cx: &mut Ctx,
    g: &DiGraph<usize, bool>,
    reachable: &[bool],
    start: usize,
    analysis: &Analysis,
) {
    let flow = cx.flow;
    let declared: rustc_hash::FxHashSet<String> =
        flow.metadata().input_variables.into_iter().collect();
    let exempt = |name: &str| ALWAYS_DEFINED.contains(&name) || declared.contains(name);
    // Only names that are read somewhere matter.
    let mut names: rustc_hash::FxHashMap<&str, usize> = rustc_hash::FxHashMap::default();
    for (i, reads) in analysis.reads.iter().enumerate() {
        if !reachable[i] {
            continue;
        }
        for (name, _) in reads {
            if !exempt(name) && !analysis.wrong_namespace.contains(&(i, name.clone())) {
                let next = names.len();
                names.entry(name.as_str()).or_insert(next);
            }
        }
    }
    if names.is_empty() {
        return;
    }
    let words = names.len().div_ceil(64);
    let n = flow.nodes.len();
    let mut gen_bits: Vec<Option<Bits>> = Vec::with_capacity(n); // None = wildcard writer
    for node in &flow.nodes {
        let (w, wild) = writes(node);
        if wild {
            gen_bits.push(None);
        } else {
            let mut b = Bits::empty(words);
            for name in w {
                if let Some(&k) = names.get(name.as_str()) {
                    b.set(k);
                }
            }
            gen_bits.push(Some(b));
        }
    }
    let out_of = |i: usize, inb: &Bits| -> Bits {
        match &gen_bits[i] {
            None => Bits::full(words),
            Some(gb) => {
                let mut o = inb.clone();
                for (a, b) in o.0.iter_mut().zip(&gb.0) {
                    *a |= b;
                }
                o
            }
        }
    };
    let mut inb: Vec<Bits> = (0..n)
        .map(|i| {
            if i == start {
                Bits::empty(words)
            } else {
                Bits::full(words)
            }
        })
        .collect();
    let mut queued = vec![false; n];
    let mut work: std::collections::VecDeque<usize> = (0..n).filter(|&i| reachable[i]).collect();
    for &i in &work {
        queued[i] = true;
    }
    while let Some(v) = work.pop_front() {
        queued[v] = false;
        let new_in = if v == start {
            Bits::empty(words)
        } else {
            let mut acc = Bits::full(words);
            for e in g.edges_directed(NodeIndex::new(v), petgraph::Direction::Incoming) {
                let p = e.source().index();
                if !reachable[p] {
                    continue;
                }
                if *e.weight() {
                    acc.and_with(&inb[p]);
                } else {
                    acc.and_with(&out_of(p, &inb[p]));
                }
            }
            acc
        };
        if new_in != inb[v] {
            inb[v] = new_in;
            for e in g.edges(NodeIndex::new(v)) {
                let t = e.target().index();
                if !queued[t] && reachable[t] {
                    queued[t] = true;
                    work.push_back(t);
                }
            }
        }
    }
    for i in 0..n {
        if !reachable[i] {
            continue;
        }
        for (name, ptr) in &analysis.reads[i] {
            let Some(&k) = names.get(name.as_str()) else {
                continue;
            };
            if !inb[i].has(k) {
                cx.at_config(
                    rules::POSSIBLY_UNDEFINED_VARIABLE,
                    i,
                    ptr,
                    format!("`{name}` may be undefined here: not every path from start to `{}` sets it", flow.nodes[i].id()),
                    format!("set `{name}` on every path before this node, or declare it in `metadata.input_variables`"),
                );
            }
        }
    }
}
