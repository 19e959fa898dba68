//! The model built without its `yaml` feature (`cargo test -p switchboard-model
//! --no-default-features`): JSON loads and writes as usual, a YAML document is a clear
//! `invalid-document` error, and a YAML write writes JSON.

#![cfg(not(feature = "yaml"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use switchboard_model::{
    Encoding, LoadError, LoadOptions, Shape, WriteOptions, detect_encoding, load, load_bytes,
    load_str,
};

#[test]
fn a_yaml_document_is_an_invalid_document_that_names_the_feature() {
    for err in [
        load("name: b\nnodes: []\n").unwrap_err(),
        load_str(r#"{"nodes": []}"#, Encoding::Yaml, &LoadOptions::default()).unwrap_err(),
        // The extension picks the encoding, as with the feature.
        load_bytes(
            br#"{"nodes": []}"#,
            Some("flow.yaml"),
            &LoadOptions::default(),
        )
        .unwrap_err(),
    ] {
        assert!(matches!(err, LoadError::InvalidDocument { .. }), "{err:?}");
        assert_eq!(err.rule(), "invalid-document");
        assert!(err.message().contains("`yaml` feature"), "{err}");
    }
    // Detection itself is unchanged.
    assert_eq!(detect_encoding(None, "name: b"), Encoding::Yaml);
}

#[test]
fn a_yaml_write_writes_json() {
    let loaded = load(
        r#"{"name": "n", "nodes": [{"id": "start", "data": {"node_type": "start"}}], "edges": []}"#,
    )
    .unwrap();
    for compact in [false, true] {
        let as_yaml = loaded.flow.write(&WriteOptions {
            encoding: Some(Encoding::Yaml),
            compact,
            ..WriteOptions::default()
        });
        let as_json = loaded.flow.write(&WriteOptions {
            encoding: Some(Encoding::Json),
            compact,
            ..WriteOptions::default()
        });
        assert_eq!(as_yaml, as_json);
        assert_eq!(load(&as_yaml).unwrap().flow, loaded.flow);
    }
}

#[test]
fn every_json_example_loads_round_trips_and_converts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures/flows/valid exists") {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let loaded = load_bytes(&bytes, Some(&name), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = loaded.flow.to_text();
        let again = load_bytes(text.as_bytes(), Some(&name), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: rewritten text does not load: {e}"));
        assert_eq!(
            again.flow, loaded.flow,
            "{name}: round trip changed the model"
        );
        for shape in [Shape::Compiled, Shape::SdkDict, Shape::Definition] {
            let text = loaded.flow.write(&WriteOptions {
                shape: Some(shape),
                encoding: Some(Encoding::Json),
                ..WriteOptions::default()
            });
            let back = load_str(&text, Encoding::Json, &LoadOptions::default())
                .unwrap_or_else(|e| panic!("{name} as {shape:?}: {e}"));
            assert_eq!(back.flow.format().shape, shape);
            assert_eq!(back.flow.edges, loaded.flow.edges);
            for (a, b) in back.flow.nodes.iter().zip(&loaded.flow.nodes) {
                assert_eq!(a.config(), b.config());
            }
        }
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected JSON examples in fixtures/flows/valid, saw {seen}"
    );
}
