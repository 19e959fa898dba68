//! Loading, typed projection, writing and round trips of the flow model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use switchboard_model::config::{
    BuiltinTool, DecisionType, HeaderType, InteractiveType, NodeConfig, TextField, ValueType,
};
#[cfg(feature = "yaml")]
use switchboard_model::{Encoding, Envelope, LoadError};
use switchboard_model::{
    Flow, IssueKind, LoadOptions, Loaded, Node, NodeKind, Shape, Value, WriteOptions, builder,
    load, load_bytes,
};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows/valid")
}

fn check(text: &str) -> Loaded {
    load(text).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn config_of<'a>(l: &'a Loaded, id: &str) -> &'a NodeConfig {
    l.flow
        .get_node(id)
        .unwrap_or_else(|| panic!("no node {id}"))
        .config()
}

#[test]
#[cfg(feature = "yaml")]
fn every_example_file_loads_and_round_trips() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("fixtures/flows/valid exists") {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !(name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let loaded = load_bytes(&bytes, Some(&name), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!loaded.flow.nodes.is_empty(), "{name}: no nodes");
        let text = loaded.flow.to_text();
        let again = load_bytes(text.as_bytes(), Some(&name), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: rewritten text does not load: {e}\n{text}"));
        assert_eq!(
            again.flow, loaded.flow,
            "{name}: round trip changed the model"
        );
        assert_eq!(
            again.flow.to_text(),
            text,
            "{name}: writing is not idempotent"
        );
        // Every shape conversion keeps nodes and edges.
        for shape in [Shape::Compiled, Shape::SdkDict, Shape::Definition] {
            for encoding in [Encoding::Json, Encoding::Yaml] {
                let opts = WriteOptions {
                    shape: Some(shape),
                    encoding: Some(encoding),
                    ..Default::default()
                };
                let text = loaded.flow.write(&opts);
                let back = switchboard_model::load_str(&text, encoding, &LoadOptions::default())
                    .unwrap_or_else(|e| panic!("{name} as {shape:?}/{encoding:?}: {e}\n{text}"));
                assert_eq!(back.flow.format().shape, shape, "{name}: {text}");
                assert_eq!(back.flow.nodes.len(), loaded.flow.nodes.len());
                assert_eq!(back.flow.edges, loaded.flow.edges);
                for (a, b) in back.flow.nodes.iter().zip(&loaded.flow.nodes) {
                    assert_eq!(a.config(), b.config());
                    assert_eq!(a.id(), b.id());
                }
            }
        }
        seen += 1;
    }
    assert!(
        seen >= 5,
        "expected the shared examples in fixtures/flows/valid, saw {seen}"
    );
}

#[test]
#[cfg(feature = "yaml")]
fn shapes_and_envelopes_are_detected() {
    let a = check(r#"{"name": "a", "definition": {"nodes": [], "edges": []}}"#);
    assert_eq!(a.flow.format().shape, Shape::Compiled);
    let b = check("name: b\nnodes: []\n");
    assert_eq!(b.flow.format().shape, Shape::SdkDict);
    assert_eq!(b.flow.format().encoding, Encoding::Yaml);
    let c = check(r#"{"nodes": [{"id": "start", "data": {"node_type": "start"}}]}"#);
    assert_eq!(c.flow.format().shape, Shape::Definition);
    let env = check(r#"{"workflow": {"name": "w", "definition": {"nodes": []}}}"#);
    assert_eq!(env.flow.format().envelope, Some(Envelope::Workflow));
    assert_eq!(env.flow.name(), Some("w"));
    assert_eq!(env.flow.nodes_pointer(), "/workflow/definition/nodes");
    // Two keys: not an envelope.
    let err = load(r#"{"flow": {"nodes": []}, "x": 1}"#).unwrap_err();
    assert_eq!(err.rule(), "unknown-shape");
    let err = load(r#"{"name": "x", "definition": "definition.json"}"#).unwrap_err();
    assert!(matches!(err, LoadError::UnknownShape { .. }));
    assert!(err.to_string().contains("definition.json"), "{err}");
    let err = load("[1, 2]").unwrap_err();
    assert_eq!(err.rule(), "invalid-document");
}

#[test]
fn nodes_that_are_not_an_array_are_a_type_error_not_a_shape_error() {
    let l = check(r#"{"nodes": {}, "edges": []}"#);
    assert_eq!(l.issues.len(), 1);
    assert_eq!(l.issues[0].rule(), "invalid-field-type");
    assert_eq!(l.issues[0].pointer, "/nodes");
    // The original value is kept for writing.
    assert!(l.flow.to_text().contains("\"nodes\": {}"));
}

#[test]
fn aliases_and_json_strings_are_resolved() {
    let l = check(
        r#"{"nodes": [
        {"id": "start", "data": {"node_type": "start", "config": {}}},
        {"id": "hook", "data": {"node_type": "webhook", "config": {"url": "https://x.io", "http_method": "get",
            "headers": "{\"A\": \"b\"}", "body": "[1, 2]"}}},
        {"id": "fn", "data": {"node_type": "function", "config": {"function_slug": "lookup", "function_name": "Lookup"}}},
        {"id": "ag", "data": {"node_type": "agent", "config": {"system_prompt": "hi", "provider_model_id": "m-1",
            "temperature": "0.3", "max_iterations": 5, "enabled_default_tools": ["complete_task", "bogus"],
            "flow_agent_webhooks": [{"name": "t", "url": "https://x.io", "method": "PUT", "body_template": {"a": 1},
               "body_schema": "{\"type\": \"object\"}"}]}}},
        {"id": "tpl", "data": {"node_type": "send_template", "config": {"template_id": "t",
            "parameters": ["a"], "template_params": ["b"]}}}
    ]}"#,
    );
    let NodeConfig::Webhook(w) = config_of(&l, "hook") else {
        panic!()
    };
    assert_eq!(w.method.as_deref(), Some("get"));
    assert_eq!(
        w.headers.as_ref().and_then(|h| h.pointer("/A")),
        Some(&Value::from("b"))
    );
    assert_eq!(
        w.body_template,
        Some(Value::Array(vec![Value::Int(1), Value::Int(2)]))
    );
    let NodeConfig::Function(f) = config_of(&l, "fn") else {
        panic!()
    };
    assert_eq!(f.function.candidates().collect::<Vec<_>>(), ["lookup"]);
    let NodeConfig::Agent(a) = config_of(&l, "ag") else {
        panic!()
    };
    assert_eq!(a.temperature, Some(0.3));
    assert_eq!(a.model.candidates().collect::<Vec<_>>(), ["m-1"]);
    assert_eq!(
        a.enabled_default_tools,
        Some(vec![BuiltinTool::CompleteTask])
    );
    assert_eq!(a.webhooks[0].http_method.as_deref(), Some("PUT"));
    assert_eq!(
        a.webhooks[0].body.as_ref().and_then(|b| b.pointer("/a")),
        Some(&Value::Int(1))
    );
    let NodeConfig::SendTemplate(t) = config_of(&l, "tpl") else {
        panic!()
    };
    assert_eq!(t.parameters, Some(Value::Array(vec!["a".into()])));
    let rules: Vec<_> = l
        .issues
        .iter()
        .map(|i| (i.rule(), i.pointer.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "invalid-enum-value",
                "/nodes/3/data/config/enabled_default_tools/1"
            ),
            ("conflicting-alias", "/nodes/4/data/config/template_params"),
        ]
    );
    // Spellings survive a round trip.
    let text = l.flow.to_text();
    for spelling in [
        "http_method",
        "\"body\"",
        "function_slug",
        "\"0.3\"",
        "\"{\\\"A\\\": \\\"b\\\"}\"",
        "template_params",
    ] {
        assert!(text.contains(spelling), "{spelling} missing from\n{text}");
    }
}

#[test]
fn wrong_types_are_reported_with_positions_and_read_as_absent() {
    let text = "{\"nodes\": [\n {\"id\": \"w\", \"data\": {\"node_type\": \"wait_for_response\",\n  \"config\": {\"timeout_seconds\": \"soon\", \"save_response_to\": 7}}}]}";
    let l = check(text);
    let NodeConfig::WaitForResponse(w) = config_of(&l, "w") else {
        panic!()
    };
    assert_eq!(w.timeout_seconds, None);
    assert_eq!(w.save_response_to, None);
    assert_eq!(l.issues.len(), 2);
    let first = &l.issues[0];
    assert_eq!(first.rule(), "invalid-field-type");
    assert_eq!(first.pointer, "/nodes/0/data/config/timeout_seconds");
    assert_eq!(first.node, Some(0));
    let lc = l.source.line_col(first.pos).unwrap();
    assert_eq!((lc.line, lc.column), (3, 33));
    assert_eq!(
        first.message(),
        "`timeout_seconds` must be a number, found string"
    );
}

#[test]
fn unknown_node_types_and_keys_are_reported() {
    let l = check(
        r#"{"nodes": [{"id": "p", "data": {"node_type": "send_reaction", "config": {}}},
        {"id": "q", "data": {"config": {}}},
        {"id": "s", "data": {"node_type": "send_text", "config": {"message": "hi", "colour": "red"}}},
        {"id": "i", "data": {"node_type": "send_interactive", "config": {"interactive_type": "button",
            "body_text": "b", "buttons": [{"id": "a", "title": "A", "emoji": "x"}], "flow_id": "kept-silently"}}}]}"#,
    );
    let kinds: Vec<_> = l.issues.iter().map(|i| &i.kind).collect();
    assert!(
        matches!(kinds[0], IssueKind::UnknownNodeType { found: Some(t) } if t == "send_reaction")
    );
    assert!(matches!(
        kinds[1],
        IssueKind::UnknownNodeType { found: None }
    ));
    assert!(matches!(kinds[2], IssueKind::UnknownConfigKey { key, .. } if key == "colour"));
    assert!(
        matches!(kinds[3], IssueKind::UnknownConfigKey { key, within: "button" } if key == "emoji")
    );
    assert_eq!(kinds.len(), 4);
    assert_eq!(l.flow.nodes[0].kind(), None);
}

#[test]
fn typed_configs_cover_the_examples() {
    let text = std::fs::read_to_string(examples_dir().join("all_sdk_nodes.json")).unwrap();
    let l = check(&text);
    assert!(l.issues.is_empty(), "{:?}", l.issues);
    let NodeConfig::SendText(greet) = config_of(&l, "greet") else {
        panic!()
    };
    assert_eq!(greet.message, Some(TextField::Ai));
    assert_eq!(
        greet.sender.ai_fields[0].prompt.as_deref(),
        Some("Greet {{vars.name}}")
    );
    let NodeConfig::SendInteractive(menu) = config_of(&l, "menu") else {
        panic!()
    };
    assert_eq!(menu.interactive_type, Some(InteractiveType::Button));
    assert_eq!(menu.effective_header_type(), HeaderType::Text);
    assert_eq!(menu.buttons.as_ref().map(Vec::len), Some(2));
    let NodeConfig::Decide(route_fn) = config_of(&l, "route_fn") else {
        panic!()
    };
    assert_eq!(route_fn.mode(), DecisionType::Function);
    assert_eq!(route_fn.labels().collect::<Vec<_>>(), ["yes", "no"]);
    let NodeConfig::WaitForResponse(wait) = config_of(&l, "wait") else {
        panic!()
    };
    assert_eq!(wait.armed_timeout(), Some(300.0));
    let NodeConfig::Agent(agent) = config_of(&l, "agent") else {
        panic!()
    };
    assert_eq!(
        agent.webhooks[0].jmespath_query.as_deref(),
        Some("data.status")
    );
    assert_eq!(
        agent.mcp_servers[0]
            .headers
            .as_ref()
            .and_then(|h| h.pointer("/Authorization")),
        Some(&Value::from("Bearer t"))
    );
    assert_eq!(
        agent.knowledge_bases[0].knowledge_base_text.as_deref(),
        Some("Policies...")
    );
    assert_eq!(agent.builtin_tools().len(), 11);

    let text =
        std::fs::read_to_string(examples_dir().join("current_generation_definition.json")).unwrap();
    let l = check(&text);
    assert!(l.issues.is_empty(), "{:?}", l.issues);
    let NodeConfig::SetVariable(flag) = config_of(&l, "flag") else {
        panic!()
    };
    assert_eq!(flag.value_type, Some(ValueType::Boolean));
    let NodeConfig::Call(call) = config_of(&l, "onboard") else {
        panic!()
    };
    assert_eq!(
        call.workflow.candidates().collect::<Vec<_>>(),
        ["onboarding"]
    );
    assert_eq!(call.error_variable(), "subworkflow_error");
}

#[test]
fn canonical_shape_c_sorts_keys_and_adds_positions() {
    let flow = Flow::new("x")
        .node(Node::send_text("hello", "Hi"))
        .node(Node::start("start"))
        .edge("start", "hello");
    let text = flow.write(&WriteOptions::canonical());
    assert!(text.ends_with("}\n"));
    assert!(!text.contains("\"name\""));
    let l = check(&text);
    assert_eq!(l.flow.format().shape, Shape::Definition);
    let x = |id: &str| {
        l.flow
            .get_node(id)
            .unwrap()
            .raw()
            .get("position")
            .and_then(|p| p.pointer("/x"))
            .cloned()
    };
    assert_eq!(x("start"), Some(Value::Int(0)));
    assert_eq!(x("hello"), Some(Value::Int(240)));
    // Keys sorted at every level.
    let edges_at = text.find("\"edges\"").unwrap();
    let nodes_at = text.find("\"nodes\"").unwrap();
    assert!(edges_at < nodes_at);
    assert!(text.find("\"data\"").unwrap() < text.find("\"id\"").unwrap());
}

#[test]
fn switchboard_extensions_can_be_left_out_for_kapso() {
    let flow = Flow::new("x")
        .input_variables(["a"])
        .node(Node::start("start"));
    assert!(flow.to_text().contains("input_variables"));
    let text = flow.write(&WriteOptions {
        drop_extensions: true,
        ..Default::default()
    });
    assert!(!text.contains("metadata"), "{text}");
    assert!(check(&text).flow.metadata().input_variables.is_empty());
}

#[test]
fn builder_output_is_a_valid_sdk_shaped_flow() {
    let flow = Flow::new("Lead Capture")
        .with_description("demo")
        .input_variables(["order_id"])
        .node(Node::start("start"))
        .node(
            Node::send_text("greet", "Hi")
                .with_ai_field("message", "Say hi to {{order_id}}")
                .with("provider_model_name", "m"),
        )
        .node(Node::decide_ai(
            "route",
            "m",
            [builder::condition("a", "A"), builder::condition("b", "B")],
        ))
        .edge("start", "greet")
        .edge("greet", "route");
    assert_eq!(flow.metadata().input_variables, ["order_id"]);
    let NodeConfig::SendText(t) = flow.nodes[1].config() else {
        panic!()
    };
    assert_eq!(t.message, Some(TextField::Ai));
    assert_eq!(flow.nodes[2].kind(), Some(NodeKind::Decide));
    let l = check(&flow.to_text());
    assert_eq!(l.flow, flow);
    assert!(l.issues.is_empty(), "{:?}", l.issues);
}

#[test]
fn explicit_nulls_key_order_and_number_kinds_survive() {
    let text = r#"{"nodes": [{"data": {"config": {"timeout_seconds": null, "has_timeout": false, "save_response_to": null}, "node_type": "wait_for_response"}, "id": "w", "position": {"x": 1.5, "y": 0}, "width": 10}], "edges": [], "zeta": [1, 2.0]}"#;
    let l = check(text);
    let out = l.flow.write(&WriteOptions {
        compact: true,
        ..Default::default()
    });
    assert_eq!(out.trim_end(), text.replace(": ", ":").replace(", ", ","));
}

#[test]
fn huge_and_hostile_inputs_fail_cleanly() {
    let opts = LoadOptions {
        max_bytes: 10,
        ..Default::default()
    };
    let err = load_bytes(b"{\"nodes\": []}", None, &opts).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = load_bytes(b"{\"nodes\": [\"\xff\"]}", None, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.rule(), "invalid-document");
    assert_eq!(err.pos().offset(), Some(12));
    let deep = format!(
        "{{\"nodes\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(load(&deep).unwrap_err().rule(), "invalid-document");
}

/// A build without the `yaml` feature writes JSON when asked for YAML (tests/without_yaml.rs):
/// that text must read back as YAML, to the same flow, where YAML is available.
#[test]
#[cfg(feature = "yaml")]
fn json_text_reads_back_as_yaml() {
    for entry in std::fs::read_dir(examples_dir()).expect("fixtures/flows/valid exists") {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let loaded = load_bytes(&bytes, Some(&name), &LoadOptions::default()).unwrap();
        for compact in [false, true] {
            let json = loaded.flow.write(&WriteOptions {
                encoding: Some(Encoding::Json),
                compact,
                ..WriteOptions::default()
            });
            let as_yaml =
                switchboard_model::load_str(&json, Encoding::Yaml, &LoadOptions::default())
                    .unwrap_or_else(|e| panic!("{name} (compact: {compact}) as YAML: {e}"));
            let as_json = load(&json).unwrap();
            assert_eq!(as_yaml.flow.nodes, as_json.flow.nodes, "{name}");
            assert_eq!(as_yaml.flow.edges, as_json.flow.edges, "{name}");
            let shape = as_json.flow.format().shape;
            assert_eq!(
                as_yaml.flow.to_document(shape),
                as_json.flow.to_document(shape),
                "{name}"
            );
        }
    }
}

#[test]
fn pipedream_nodes_load_with_their_keys() {
    // Kapso still builds `pipedream` nodes: they load (typed, not unknown) so the validator can
    // warn and the runtime can fail them with `unsupported_node` when reached.
    let l = check(
        r#"{"nodes": [{"id": "p", "data": {"node_type": "pipedream", "config": {
            "app_slug": "hubspot", "action_id": "hubspot-create-contact", "account_id": null,
            "configured_props": "{\"email\": \"{{email}}\"}", "save_response_to": "contact",
            "colour": "red"}}}]}"#,
    );
    let node = &l.flow.nodes[0];
    assert_eq!(node.kind(), Some(NodeKind::Pipedream));
    assert!(!NodeKind::Pipedream.is_supported());
    assert!(NodeKind::SendText.is_supported());
    assert!(!NodeKind::SUPPORTED_NAMES.contains(&"pipedream"));
    assert_eq!(NodeKind::SUPPORTED_NAMES.len(), 13);
    let NodeConfig::Pipedream(p) = node.config() else {
        panic!("{:?}", node.config())
    };
    assert_eq!(p.app_slug.as_deref(), Some("hubspot"));
    assert_eq!(p.action_id.as_deref(), Some("hubspot-create-contact"));
    assert_eq!(p.save_response_to.as_deref(), Some("contact"));
    assert!(matches!(&p.configured_props, Some(Value::Object(m)) if m.get("email").is_some()));
    let kinds: Vec<_> = l.issues.iter().map(|i| &i.kind).collect();
    assert!(
        matches!(kinds.as_slice(), [IssueKind::UnknownConfigKey { key, within: "pipedream config" }] if key == "colour"),
        "{kinds:?}"
    );
}

#[test]
fn request_body_is_a_third_spelling_of_the_webhook_body() {
    let l = check(
        r#"{"nodes": [{"id": "w", "data": {"node_type": "webhook", "config": {
            "url": "https://x.io", "request_body": "{\"a\": 1}"}}},
          {"id": "v", "data": {"node_type": "webhook", "config": {
            "url": "https://x.io", "body_template": {"a": 1}, "request_body": {"a": 2}}}}]}"#,
    );
    let NodeConfig::Webhook(w) = l.flow.nodes[0].config() else {
        panic!()
    };
    assert!(
        matches!(&w.body_template, Some(Value::Object(m)) if m.get("a") == Some(&Value::Int(1)))
    );
    let NodeConfig::Webhook(v) = l.flow.nodes[1].config() else {
        panic!()
    };
    // The canonical key wins; the differing alias is reported.
    assert!(
        matches!(&v.body_template, Some(Value::Object(m)) if m.get("a") == Some(&Value::Int(1)))
    );
    let kinds: Vec<_> = l.issues.iter().map(|i| &i.kind).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [IssueKind::ConflictingAlias {
                canonical: "body_template",
                alias: "request_body"
            }]
        ),
        "{kinds:?}"
    );
}
