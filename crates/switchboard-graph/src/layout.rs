//! The layered layout behind the SVG (the Sugiyama method, kept small and deterministic):
//!
//! 1. cycles broken by a depth-first search from the start node (back edges are laid out
//!    reversed, then drawn the right way round);
//! 2. layers by longest path, so every edge points to a later layer;
//! 3. edges longer than one layer get a dummy vertex per layer they cross;
//! 4. the order within each layer by barycenter sweeps (down, then up), keeping the order with
//!    the fewest crossings seen;
//! 5. coordinates: layers side by side, each vertex pulled towards its neighbours' average
//!    without overlapping, then the edges as polylines through their dummies.
//!
//! Every tie is broken by document order, so the same flow always gives the same picture.

use crate::{Direction, Graph, GraphNode};

/// Width of a node box.
pub const NODE_WIDTH: f64 = 220.0;
/// Height of one text line in a node box.
pub const LINE_HEIGHT: f64 = 15.0;
const DUMMY: f64 = 12.0;
const LAYER_GAP: f64 = 70.0;
const NODE_GAP: f64 = 26.0;
const MARGIN: f64 = 20.0;
/// Above this many edges, sweeps stop counting crossings (quadratic) and run a fixed number.
const COUNT_LIMIT: usize = 3_000;

/// Where one node box goes (top-left corner and size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placed {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// A laid-out graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// One box per graph node, same order.
    pub nodes: Vec<Placed>,
    /// One polyline per graph edge, same order, from source to target.
    pub edges: Vec<Vec<(f64, f64)>>,
    /// The drawing's width.
    pub width: f64,
    /// The drawing's height.
    pub height: f64,
    /// The layer of each node.
    pub layers: Vec<usize>,
    /// The edge crossings left between adjacent layers (counted on straight segments).
    pub crossings: usize,
}

/// The size of a node box: fixed width, a line for the title, the kind and each summary line.
pub fn node_size(node: &GraphNode) -> (f64, f64) {
    let lines = 1 + usize::from(matches!(node.kind, crate::Kind::Node(_))) + node.summary.len();
    (NODE_WIDTH, 14.0 + LINE_HEIGHT * lines as f64)
}

/// Lays `graph` out.
pub fn layout(graph: &Graph, direction: Direction) -> Layout {
    let n = graph.nodes.len();
    let sizes: Vec<(f64, f64)> = graph.nodes.iter().map(node_size).collect();
    // Edges as (from, to) without self-loops.
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &graph.edges {
        if e.from != e.to && e.from < n && e.to < n {
            out[e.from].push(e.to);
        }
    }
    // 1. Depth-first search from the start nodes, then from every node left, in document
    // order: an edge to a vertex on the stack is a back edge.
    let starts = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.kind == crate::Kind::Node(Some(switchboard_model::NodeKind::Start)))
        .map(|(i, _)| i);
    let roots: Vec<usize> = starts.chain(0..n).collect();
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut discovery = vec![usize::MAX; n];
    let mut back = std::collections::BTreeSet::new();
    let mut seen = 0;
    for root in roots {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        discovery[root] = seen;
        seen += 1;
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if let Some(&w) = out[v].get(*k) {
                *k += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        discovery[w] = seen;
                        seen += 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    // The oriented edges (a DAG), one per graph edge (self-loops: none).
    let oriented: Vec<Option<(usize, usize, bool)>> = graph
        .edges
        .iter()
        .map(|e| {
            if e.from == e.to || e.from >= n || e.to >= n {
                None
            } else if back.contains(&(e.from, e.to)) {
                Some((e.to, e.from, true))
            } else {
                Some((e.from, e.to, false))
            }
        })
        .collect();
    // 2. Longest-path layers, in a topological order that prefers document order.
    let mut indegree = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b, _) in oriented.iter().flatten() {
        succ[a].push(b);
        indegree[b] += 1;
    }
    let mut ready: std::collections::BTreeSet<(usize, usize)> = (0..n)
        .filter(|&v| indegree[v] == 0)
        .map(|v| (discovery[v], v))
        .collect();
    let mut layer = vec![0usize; n];
    while let Some((d, v)) = ready.iter().next().copied() {
        ready.remove(&(d, v));
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.insert((discovery[w], w));
            }
        }
    }
    // 3. Dummies: vertices n.. with their layer; each oriented edge becomes a chain.
    let mut vlayer = layer.clone();
    let mut vsize: Vec<(f64, f64)> = sizes.clone();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(graph.edges.len());
    for o in &oriented {
        let Some((a, b, _)) = *o else {
            chains.push(Vec::new());
            continue;
        };
        let mut chain = vec![a];
        for l in layer[a] + 1..layer[b] {
            vlayer.push(l);
            vsize.push((DUMMY, DUMMY));
            chain.push(vlayer.len() - 1);
        }
        chain.push(b);
        chains.push(chain);
    }
    let total = vlayer.len();
    let depth = vlayer.iter().max().map_or(0, |m| m + 1);
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut segments = 0usize;
    for chain in &chains {
        for w in chain.windows(2) {
            down[w[0]].push(w[1]);
            up[w[1]].push(w[0]);
            segments += 1;
        }
    }
    // 4. Initial order: real vertices by discovery, dummies after in creation order.
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    let mut keyed: Vec<(usize, usize)> = (0..total)
        .map(|v| (if v < n { discovery[v] } else { v + n }, v))
        .collect();
    keyed.sort_unstable();
    for (_, v) in keyed {
        layers[vlayer[v]].push(v);
    }
    let mut pos = vec![0usize; total];
    let index = |layers: &Vec<Vec<usize>>, pos: &mut Vec<usize>| {
        for l in layers {
            for (i, &v) in l.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    index(&layers, &mut pos);
    let count = segments <= COUNT_LIMIT;
    let mut best = layers.clone();
    let mut best_crossings = if count {
        crossings(&layers, &pos, &down)
    } else {
        0
    };
    for round in 0..12 {
        let downward = round % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..depth).collect()
        } else {
            (0..depth.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let neighbours = if downward { &up } else { &down };
            let mut keyed: Vec<(f64, usize, usize)> = layers[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let bary = if ns.is_empty() {
                        pos[v] as f64
                    } else {
                        ns.iter().map(|&u| pos[u] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (bary, pos[v], v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[l] = keyed.into_iter().map(|k| k.2).collect();
            for (i, &v) in layers[l].iter().enumerate() {
                pos[v] = i;
            }
        }
        if count {
            let c = crossings(&layers, &pos, &down);
            if c < best_crossings {
                best_crossings = c;
                best = layers.clone();
            }
        } else {
            best = layers.clone();
        }
    }
    let layers = best;
    index(&layers, &mut pos);
    let left_right = direction == Direction::LeftRight;
    // Along the layer axis (primary) and across it (secondary).
    let primary = |s: (f64, f64)| if left_right { s.0 } else { s.1 };
    let secondary = |s: (f64, f64)| if left_right { s.1 } else { s.0 };
    // 5. Primary coordinate: layer by layer.
    let mut layer_start = Vec::with_capacity(depth);
    let mut at = MARGIN;
    for l in &layers {
        layer_start.push(at);
        let extent = l.iter().map(|&v| primary(vsize[v])).fold(0.0, f64::max);
        at += extent + LAYER_GAP;
    }
    let primary_total = at - LAYER_GAP + MARGIN;
    // Secondary: centres packed, then pulled towards the neighbours' average a few times.
    let mut centre = vec![0.0f64; total];
    for l in &layers {
        let mut c = MARGIN;
        for &v in l {
            let s = secondary(vsize[v]);
            centre[v] = c + s / 2.0;
            c += s + NODE_GAP;
        }
    }
    for round in 0..8 {
        let downward = round % 2 == 0;
        let order: Vec<usize> = if downward {
            (0..depth).collect()
        } else {
            (0..depth).rev().collect()
        };
        for l in order {
            let neighbours = if downward { &up } else { &down };
            let wanted: Vec<f64> = layers[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    if ns.is_empty() {
                        centre[v]
                    } else {
                        ns.iter().map(|&u| centre[u]).sum::<f64>() / ns.len() as f64
                    }
                })
                .collect();
            place(&layers[l], &wanted, &vsize, &secondary, &mut centre);
        }
    }
    // Shift so the smallest edge sits at the margin.
    let min = (0..total)
        .map(|v| centre[v] - secondary(vsize[v]) / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = if min.is_finite() { MARGIN - min } else { 0.0 };
    let mut secondary_total: f64 = 2.0 * MARGIN;
    for v in 0..total {
        centre[v] += shift;
        secondary_total = secondary_total.max(centre[v] + secondary(vsize[v]) / 2.0 + MARGIN);
    }
    // Boxes.
    let point = |p: f64, s: f64| if left_right { (p, s) } else { (s, p) };
    let mut boxes = Vec::with_capacity(total);
    for v in 0..total {
        let (w, h) = vsize[v];
        let p0 = layer_start[vlayer[v]];
        let s0 = centre[v] - secondary(vsize[v]) / 2.0;
        let (x, y) = point(p0, s0);
        boxes.push(Placed { x, y, w, h });
    }
    // Edges: from the source's far side, through the dummies' centres, to the target's near side.
    let far = |b: &Placed| {
        if left_right {
            (b.x + b.w, b.y + b.h / 2.0)
        } else {
            (b.x + b.w / 2.0, b.y + b.h)
        }
    };
    let near = |b: &Placed| {
        if left_right {
            (b.x, b.y + b.h / 2.0)
        } else {
            (b.x + b.w / 2.0, b.y)
        }
    };
    let mut edges = Vec::with_capacity(graph.edges.len());
    for (k, e) in graph.edges.iter().enumerate() {
        if e.from >= n || e.to >= n {
            edges.push(Vec::new());
            continue;
        }
        let Some((_, _, reversed)) = oriented[k] else {
            // A self-loop: out of the far side and back in from above (or the left).
            let b = boxes[e.from];
            let (fx, fy) = far(&b);
            let pts = if left_right {
                vec![
                    (fx, fy),
                    (fx + 24.0, fy),
                    (fx + 24.0, b.y - 14.0),
                    (b.x + b.w / 2.0, b.y - 14.0),
                    (b.x + b.w / 2.0, b.y),
                ]
            } else {
                vec![
                    (fx, fy),
                    (fx, fy + 24.0),
                    (b.x + b.w + 14.0, fy + 24.0),
                    (b.x + b.w + 14.0, b.y + b.h / 2.0),
                    (b.x + b.w, b.y + b.h / 2.0),
                ]
            };
            edges.push(pts);
            continue;
        };
        let chain = &chains[k];
        let mut pts = Vec::with_capacity(chain.len());
        for (i, &v) in chain.iter().enumerate() {
            let b = &boxes[v];
            if i == 0 {
                pts.push(far(b));
            } else if i == chain.len() - 1 {
                pts.push(near(b));
            } else {
                pts.push((b.x + b.w / 2.0, b.y + b.h / 2.0));
            }
        }
        if reversed {
            pts.reverse();
        }
        edges.push(pts);
    }
    let (width, height) = point(primary_total, secondary_total);
    boxes.truncate(n);
    Layout {
        nodes: boxes,
        edges,
        width,
        height,
        layers: layer,
        crossings: if count {
            crossings(&layers, &pos, &down)
        } else {
            0
        },
    }
}

/// Places the vertices of one layer, in their order, as near their wanted centres as the
/// gaps allow: a forward pass pushes overlapping vertices down, a backward pass pulls the
/// layer back up towards the wishes where there is room.
fn place(
    layer: &[usize],
    wanted: &[f64],
    size: &[(f64, f64)],
    secondary: &dyn Fn((f64, f64)) -> f64,
    centre: &mut [f64],
) {
    let mut c: Vec<f64> = wanted.to_vec();
    for i in 1..layer.len() {
        let min = c[i - 1]
            + secondary(size[layer[i - 1]]) / 2.0
            + NODE_GAP
            + secondary(size[layer[i]]) / 2.0;
        if c[i] < min {
            c[i] = min;
        }
    }
    for i in (0..layer.len().saturating_sub(1)).rev() {
        let max = c[i + 1]
            - secondary(size[layer[i + 1]]) / 2.0
            - NODE_GAP
            - secondary(size[layer[i]]) / 2.0;
        if c[i] > max {
            c[i] = max;
        } else if c[i] < wanted[i] {
            c[i] = wanted[i].min(max);
        }
    }
    for (i, &v) in layer.iter().enumerate() {
        centre[v] = c[i];
    }
}

/// Crossings between every pair of adjacent layers (pairs of segments whose ends are in
/// opposite orders).
fn crossings(layers: &[Vec<usize>], pos: &[usize], down: &[Vec<usize>]) -> usize {
    let mut total = 0;
    for l in layers {
        let segs: Vec<(usize, usize)> = l
            .iter()
            .flat_map(|&v| down[v].iter().map(move |&w| (v, w)))
            .map(|(v, w)| (pos[v], pos[w]))
            .collect();
        for i in 0..segs.len() {
            for j in i + 1..segs.len() {
                let (a, b) = (segs[i], segs[j]);
                if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                    total += 1;
                }
            }
        }
    }
    total
}
