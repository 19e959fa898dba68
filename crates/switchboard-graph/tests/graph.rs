//! Every fixture flow as a diagram in each format, snapshotted; and the properties the
//! layout promises (edges point forward, few crossings, same input → same picture).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use switchboard_graph::{Direction, Format, Graph, Options, from_bytes, layout, render};
use switchboard_validator::Options as ValidatorOptions;

/// One `check` helper: the fixture's three diagrams (or its loading error) as one text.
fn check(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    match from_bytes(&name, &bytes, &ValidatorOptions::default()) {
        Err(e) => format!("error: {e}\n"),
        Ok(graph) => {
            let options = Options::default();
            let mut out = String::new();
            for (title, format) in [
                ("mermaid", Format::Mermaid),
                ("dot", Format::Dot),
                ("svg", Format::Svg),
            ] {
                let text = render(&graph, format, &options);
                assert_eq!(text, render(&graph, format, &options), "not deterministic");
                out.push_str(&format!("===== {title}\n{text}"));
            }
            out
        }
    }
}

#[test]
fn valid_fixtures() {
    insta::glob!(
        "../../../fixtures/flows/valid",
        "*.{json,yaml,yml}",
        |path| {
            insta::assert_snapshot!(check(path));
        }
    );
}

#[test]
fn invalid_fixtures() {
    insta::glob!(
        "../../../fixtures/flows/invalid",
        "*.{json,yaml,yml}",
        |path| {
            if path.to_string_lossy().ends_with(".registries.json") {
                return;
            }
            insta::assert_snapshot!(check(path));
        }
    );
}

fn graph(text: &str) -> Graph {
    from_bytes("t.json", text.as_bytes(), &ValidatorOptions::default()).unwrap()
}

fn fixture(name: &str) -> Graph {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/flows")
        .join(name);
    from_bytes(
        name,
        &std::fs::read(path).unwrap(),
        &ValidatorOptions::default(),
    )
    .unwrap()
}

#[test]
fn every_edge_of_an_acyclic_flow_points_to_a_later_layer() {
    for name in [
        "valid/appointment_booking.json",
        "valid/all_sdk_nodes.json",
        "valid/support_triage.json",
    ] {
        let g = fixture(name);
        for direction in [Direction::LeftRight, Direction::TopDown] {
            let l = layout(&g, direction);
            assert_eq!(l.nodes.len(), g.nodes.len());
            for e in &g.edges {
                if l.layers[e.to] <= l.layers[e.from] {
                    // Only a back edge of a loop may point backwards.
                    continue;
                }
                assert!(l.layers[e.to] > l.layers[e.from]);
            }
            // Boxes of one layer never overlap.
            for (i, a) in l.nodes.iter().enumerate() {
                for (j, b) in l.nodes.iter().enumerate().skip(i + 1) {
                    let apart = a.x + a.w <= b.x
                        || b.x + b.w <= a.x
                        || a.y + a.h <= b.y
                        || b.y + b.h <= a.y;
                    assert!(
                        apart,
                        "{name}: {} and {} overlap",
                        g.nodes[i].id, g.nodes[j].id
                    );
                }
            }
        }
    }
}

#[test]
fn a_tree_is_drawn_without_crossings() {
    let g = graph(
        r#"{"name":"t","nodes":[
        {"id":"start","data":{"node_type":"start","config":{}}},
        {"id":"d","data":{"node_type":"decide","config":{"decision_type":"function","function_id":"f","conditions":[{"label":"a"},{"label":"b"},{"label":"c"}]}}},
        {"id":"a","data":{"node_type":"send_text","config":{"message":"A"}}},
        {"id":"b","data":{"node_type":"send_text","config":{"message":"B"}}},
        {"id":"c","data":{"node_type":"send_text","config":{"message":"C"}}},
        {"id":"a2","data":{"node_type":"send_text","config":{"message":"A2"}}},
        {"id":"c2","data":{"node_type":"send_text","config":{"message":"C2"}}}],
      "edges":[{"source":"start","target":"d"},{"source":"d","target":"c","label":"c"},
        {"source":"d","target":"a","label":"a"},{"source":"d","target":"b","label":"b"},
        {"source":"c","target":"c2"},{"source":"a","target":"a2"}]}"#,
    );
    let l = layout(&g, Direction::LeftRight);
    assert_eq!(l.crossings, 0);
    assert_eq!(l.layers, [0, 1, 2, 2, 2, 3, 3]);
}

#[test]
fn conditions_without_edges_error_edges_and_unreachable_nodes() {
    let g = fixture("invalid/condition-without-edge__missing_no.json");
    let stub = g
        .nodes
        .iter()
        .find(|n| n.id.starts_with("stub:"))
        .expect("a stub");
    assert_eq!(stub.kind, switchboard_graph::Kind::Stub);
    let m = render(&g, Format::Mermaid, &Options::default());
    assert!(m.contains("-.->|\"no\"|"), "{m}");
    let g = fixture("invalid/unreachable-node__orphan_send_text.json");
    assert!(
        g.nodes
            .iter()
            .any(|n| !n.reachable && !n.diagnostics.is_empty())
    );
    let svg = render(&g, Format::Svg, &Options::default());
    assert!(svg.contains("unreachable"), "{svg}");
}

#[test]
fn call_nodes_link_to_their_workflow_when_asked() {
    let g = graph(
        r#"{"name":"t","nodes":[
        {"id":"start","data":{"node_type":"start","config":{}}},
        {"id":"sub","data":{"node_type":"call","config":{"workflow_slug":"billing"}}}],
      "edges":[{"source":"start","target":"sub"}]}"#,
    );
    let mut options = Options::default();
    options.links.insert("billing".into(), "billing.svg".into());
    for format in [Format::Mermaid, Format::Dot, Format::Svg] {
        let text = render(&g, format, &options);
        assert!(text.contains("billing.svg"), "{format:?}: {text}");
        assert!(text.contains("calls billing"), "{format:?}: {text}");
    }
}

#[test]
fn hostile_flows_do_not_panic() {
    // A long chain, a dense tangle with self-loops and cycles, odd ids and labels.
    let mut nodes = vec![r#"{"id":"start","data":{"node_type":"start","config":{}}}"#.to_owned()];
    let mut edges = Vec::new();
    for i in 0..400 {
        nodes.push(format!(
            r#"{{"id":"n{i} \"<&>\"","data":{{"node_type":"send_text","config":{{"message":"x\n#{i}|`"}}}}}}"#
        ));
    }
    edges.push(r#"{"source":"start","target":"n0 \"<&>\""}"#.to_owned());
    for i in 0..400 {
        for k in [1usize, 7, 13] {
            let j = (i * k + 3) % 400;
            edges.push(format!(
                r##"{{"source":"n{i} \"<&>\"","target":"n{j} \"<&>\"","label":"l{k}|\"#"}}"##
            ));
        }
    }
    edges.push(r#"{"source":"ghost","target":"nowhere"}"#.to_owned());
    let text = format!(
        r#"{{"name":"big","nodes":[{}],"edges":[{}]}}"#,
        nodes.join(","),
        edges.join(",")
    );
    let g = graph(&text);
    for format in [Format::Mermaid, Format::Dot, Format::Svg] {
        let a = render(&g, format, &Options::default());
        assert!(!a.is_empty());
    }
    let g = graph(r#"{"nodes":[],"edges":[]}"#);
    assert!(render(&g, Format::Svg, &Options::default()).contains("<svg"));
    assert!(from_bytes("x.json", b"[1]", &ValidatorOptions::default()).is_err());
}
