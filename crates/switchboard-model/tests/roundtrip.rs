//! load → write → load is the identity: a property test over generated flows, and every fixture.
//!
//! Flows are built with the builder from a generated spec: every node type, optional keys
//! (unknown keys, explicit `null`s, numeric strings such as `"0.3"`, JSON-string headers and
//! bodies, nested objects, unicode and YAML-hostile strings, `1` versus `1.0`), edges (`error`,
//! condition labels, absent labels, backend keys), top-level `metadata`/`settings`/unknown keys,
//! and every shape, encoding and envelope. Properties:
//!
//! * (a) in its own format, `load(flow.to_text())` equals the flow after one normalising load,
//!   and writing is idempotent (JSON and YAML);
//! * (b) converting to any shape/encoding and back keeps node ids, typed configs, edge
//!   source/target/label, `metadata()` and `settings()`;
//! * (c) the typed projection of the loaded flow equals that of the builder flow.
//!
//! Model bugs found by these properties are kept as minimal `#[ignore]`d regression tests at the
//! end of this file.
//!
//! YAML is one of the encodings every property goes through, so the file needs the `yaml`
//! feature (`tests/without_yaml.rs` covers the JSON-only build).

#![cfg(feature = "yaml")]

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::Config;
use switchboard_model::json::Style;
use switchboard_model::{
    Edge, Encoding, Envelope, Flow, Format, IssueKind, LoadOptions, Loaded, Map, Node, Shape,
    Value, WriteOptions, builder, json, load, load_bytes, load_str, yaml,
};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Strings that YAML (1.1 or 1.2) or JSON writers must quote or escape, numeric strings,
/// templates and unicode.
const TRICKY: &[&str] = &[
    "",
    " ",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "~",
    "null",
    "Null",
    "NULL",
    "true",
    "False",
    "0",
    "-1",
    "0.3",
    "1.0",
    ".5",
    "5.",
    "+1",
    "1e3",
    "1E-3",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "12:30",
    "1:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    ".inf",
    "-.Inf",
    ".NaN",
    "nan",
    "=",
    "<<",
    "-",
    "- a",
    "-a",
    "?",
    "? a",
    ":",
    ": a",
    "a: b",
    "a:b",
    "a #b",
    "#a",
    "'a'",
    "\"a\"",
    "|",
    ">",
    "&a",
    "*a",
    "!a",
    "!!str",
    "%a",
    "@a",
    "`a",
    "{a}",
    "[a]",
    "a, b",
    "---",
    "...",
    "--- a",
    "a\tb",
    "\t",
    "a\n",
    "\na",
    "a\nb",
    "a\r\nb",
    "\r",
    "a ",
    " a",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "a\u{feff}b",
    "\u{0}",
    "\u{1b}[0m",
    "\u{7f}",
    "\u{9f}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{10ffff}",
    "é",
    "日本語",
    "😀👍🏽",
    "\u{202e}rtl",
    "back\\slash",
    "{{ vars.name }}",
    "{% if x %}y{% endif %}",
    "${ENV:API_KEY}",
    "$ai",
    "https://example.com/a?b=c#d",
    "{\"a\": 1}",
    "[1, 2]",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(TRICKY).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9 _.-]{0,12}",
        2 => "\\PC{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
    .boxed()
}

/// Keys for unknown entries (never the structural top-level ones).
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "[a-z_]{1,10}",
        1 => text(),
        1 => Just("k".repeat(140)),
    ]
    .boxed()
}

fn float() -> BoxedStrategy<f64> {
    prop_oneof![
        prop::sample::select(
            &[
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.3,
                0.1,
                2.5,
                1e21,
                1e-7,
                123_456_789.0,
                5e-324,
                f64::MAX,
                f64::MIN_POSITIVE,
                9_007_199_254_740_993.0,
            ][..]
        ),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
    .boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            any::<i64>(),
            Just(0i64),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::Int),
        float().prop_map(Value::Float),
        text().prop_map(Value::from),
    ]
    .boxed()
}

fn object_of(entries: Vec<(String, Value)>) -> Value {
    Value::Object(entries.into_iter().collect())
}

/// Any JSON value, nested up to 4 levels.
fn value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4).prop_map(object_of),
            ]
        })
        .boxed()
}

fn object() -> BoxedStrategy<Value> {
    prop::collection::vec((key(), value()), 0..4)
        .prop_map(object_of)
        .boxed()
}

/// A number as JSON allows it or as platform exports write it (`"0.3"`).
fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        (0i64..1000).prop_map(Value::Int),
        prop::sample::select(&[0.0, 0.3, 1.0, 1.5, 2.0][..]).prop_map(Value::Float),
        prop::sample::select(&["0.3", "1", "1.0", "2", " 0.5 ", "x"][..]).prop_map(Value::from),
        Just(Value::Null),
    ]
    .boxed()
}

/// An object or its JSON text (compact or pretty), or `""`.
fn obj_or_json_string() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => object(),
        3 => (object(), any::<bool>()).prop_map(|(o, pretty)| {
            let style = if pretty { Style::Pretty } else { Style::Compact };
            Value::from(json::to_string(&o, style))
        }),
        1 => Just(Value::from("")),
        1 => Just(Value::from("{not json")),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn pair(key: &'static str, v: BoxedStrategy<Value>) -> BoxedStrategy<(String, Value)> {
    v.prop_map(move |v| (key.to_owned(), v)).boxed()
}

fn webhook_tool() -> BoxedStrategy<Value> {
    (
        text(),
        text(),
        prop::sample::select(&["http_method", "method"][..]),
        obj_or_json_string(),
        obj_or_json_string(),
        obj_or_json_string(),
        prop::option::of(text()),
    )
        .prop_map(|(name, url, method_key, headers, body, schema, jq)| {
            let mut m = Map::new();
            m.insert("name", name);
            m.insert("url", url);
            m.insert(method_key, "POST");
            m.insert("headers", headers);
            m.insert("body", body);
            m.insert("body_schema", schema);
            m.insert("jmespath_query", jq);
            Value::Object(m)
        })
        .boxed()
}

fn mcp_server() -> BoxedStrategy<Value> {
    (text(), text(), obj_or_json_string())
        .prop_map(|(name, url, headers)| {
            let mut m = Map::new();
            m.insert("name", name);
            m.insert("url", url);
            m.insert("headers", headers);
            Value::Object(m)
        })
        .boxed()
}

/// Optional config entries for node kind `kind` (an index into [`KINDS`]).
fn extra_for(kind: usize) -> BoxedStrategy<(String, Value)> {
    let sender = || -> Vec<BoxedStrategy<(String, Value)>> {
        vec![
            pair("phone_number_id", text().prop_map(Value::from).boxed()),
            pair("whatsapp_config_id", text().prop_map(Value::from).boxed()),
            pair("to_phone_number", text().prop_map(Value::from).boxed()),
            pair("provider_model_name", text().prop_map(Value::from).boxed()),
            pair("provider_model_id", scalar()),
        ]
    };
    let mut options: Vec<BoxedStrategy<(String, Value)>> = match KINDS[kind] {
        "send_text" => {
            let mut v = sender();
            v.push(pair("delay_seconds", number()));
            v
        }
        "send_template" => {
            let mut v = sender();
            v.push(pair("template_params", value()));
            v.push(pair("parameters", value()));
            v
        }
        "send_buttons" => {
            let mut v = sender();
            v.push(pair("header_text", text().prop_map(Value::from).boxed()));
            v.push(pair("footer_text", text().prop_map(Value::from).boxed()));
            v.push(pair(
                "header_type",
                prop::sample::select(&["none", "text", "image", "bogus"][..])
                    .prop_map(Value::from)
                    .boxed(),
            ));
            v
        }
        "wait_for_response" => vec![
            pair(
                "timeout_seconds",
                prop_oneof![
                    (0i64..700_000).prop_map(Value::Int),
                    Just(Value::Float(300.0)),
                    Just(Value::Null),
                    Just(Value::from("600")),
                ]
                .boxed(),
            ),
            pair(
                "has_timeout",
                prop_oneof![any::<bool>().prop_map(Value::Bool), Just(Value::Null)].boxed(),
            ),
            pair(
                "save_response_to",
                prop_oneof![text().prop_map(Value::from), Just(Value::Null)].boxed(),
            ),
        ],
        "decide_ai" => vec![
            pair("llm_temperature", number()),
            pair("llm_max_tokens", number()),
            pair("llm_configuration", object()),
            pair("provider_model_id", text().prop_map(Value::from).boxed()),
        ],
        "decide_function" => vec![
            pair("function_slug", text().prop_map(Value::from).boxed()),
            pair("function_name", text().prop_map(Value::from).boxed()),
        ],
        "function" => vec![
            pair("function_slug", text().prop_map(Value::from).boxed()),
            pair("function_name", text().prop_map(Value::from).boxed()),
            pair("save_response_to", text().prop_map(Value::from).boxed()),
        ],
        "webhook" => vec![
            pair(
                "method",
                prop::sample::select(&["GET", "post", "PUT", "fetch"][..])
                    .prop_map(Value::from)
                    .boxed(),
            ),
            pair(
                "http_method",
                prop::sample::select(&["GET", "POST"][..])
                    .prop_map(Value::from)
                    .boxed(),
            ),
            pair("headers", obj_or_json_string()),
            pair("body_template", obj_or_json_string()),
            pair("body", value()),
            pair("save_response_to", text().prop_map(Value::from).boxed()),
        ],
        "set_variable" => vec![
            pair(
                "value_type",
                prop::sample::select(&["string", "number", "boolean", "json", "date"][..])
                    .prop_map(Value::from)
                    .boxed(),
            ),
            pair("variable_value", value()),
        ],
        "call" => vec![
            pair("workflow_id", text().prop_map(Value::from).boxed()),
            pair("workflow_name", text().prop_map(Value::from).boxed()),
            pair("save_error_to", text().prop_map(Value::from).boxed()),
        ],
        "agent" => vec![
            pair("temperature", number()),
            pair("max_iterations", number()),
            pair("max_tokens", number()),
            pair(
                "reasoning_effort",
                prop_oneof![
                    prop::sample::select(&["none", "low", "xhigh", "extreme"][..])
                        .prop_map(Value::from),
                    Just(Value::Null),
                ]
                .boxed(),
            ),
            pair(
                "enabled_default_tools",
                prop::collection::vec(
                    prop::sample::select(
                        &["complete_task", "get_variable", "send_media", "bogus"][..],
                    )
                    .prop_map(Value::from),
                    0..4,
                )
                .prop_map(Value::Array)
                .boxed(),
            ),
            pair(
                "flow_agent_webhooks",
                prop::collection::vec(webhook_tool(), 0..3)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            pair(
                "flow_agent_mcp_servers",
                prop::collection::vec(mcp_server(), 0..2)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            pair("default_tool_configs", object()),
            pair(
                "sandbox_enabled",
                any::<bool>().prop_map(Value::Bool).boxed(),
            ),
            pair("flow_agent_resources", value()),
        ],
        "handoff" => vec![
            pair("reason", text().prop_map(Value::from).boxed()),
            pair(
                "context_data",
                prop_oneof![object(), text().prop_map(Value::from)].boxed(),
            ),
        ],
        "emit_event" => vec![
            pair(
                "properties",
                prop::collection::vec((key(), scalar()), 0..4)
                    .prop_map(object_of)
                    .boxed(),
            ),
            pair("occurred_at", text().prop_map(Value::from).boxed()),
        ],
        _ => Vec::new(),
    };
    // Everywhere: unknown keys, and explicit nulls.
    options.push((key(), value()).boxed());
    options.push(key().prop_map(|k| (k, Value::Null)).boxed());
    prop::strategy::Union::new(options).boxed()
}

/// The builder constructors used, by index.
const KINDS: &[&str] = &[
    "start",
    "send_text",
    "send_template",
    "send_buttons",
    "wait_for_response",
    "decide_ai",
    "decide_function",
    "function",
    "webhook",
    "set_variable",
    "call",
    "agent",
    "handoff",
    "emit_event",
];

#[derive(Clone, Debug)]
struct NodeSpec {
    kind: usize,
    /// Free texts for the constructor's arguments.
    a: String,
    b: String,
    c: String,
    /// Labels (decide conditions) or button ids.
    labels: Vec<String>,
    /// `send_template` parameters / `set_variable` value.
    value: Value,
    /// Optional config entries, in order.
    extras: Vec<(String, Value)>,
    /// An AI field (`send_text.message`) with this prompt.
    ai_prompt: Option<String>,
    /// Keys on the node object itself (`position`, `width`, …) and on `data`.
    node_keys: Vec<(String, Value)>,
    display_name: Option<String>,
}

fn node_spec() -> BoxedStrategy<NodeSpec> {
    (0..KINDS.len())
        .prop_flat_map(|kind| {
            (
                Just(kind),
                (text(), text(), text()),
                prop::collection::vec(text(), 0..4),
                value(),
                prop::collection::vec(extra_for(kind), 0..5),
                prop::option::weighted(0.2, text()),
                prop::collection::vec(
                    prop_oneof![
                        (0i64..2000, float()).prop_map(|(x, y)| {
                            let mut p = Map::new();
                            p.insert("x", x);
                            p.insert("y", y);
                            ("position".to_owned(), Value::Object(p))
                        }),
                        (0i64..500).prop_map(|w| ("width".to_owned(), Value::Int(w))),
                        any::<bool>().prop_map(|b| ("selected".to_owned(), Value::Bool(b))),
                        (key(), value()),
                    ],
                    0..3,
                ),
                prop::option::of(text()),
            )
        })
        .prop_map(
            |(kind, (a, b, c), labels, value, extras, ai_prompt, node_keys, display_name)| {
                NodeSpec {
                    kind,
                    a,
                    b,
                    c,
                    labels,
                    value,
                    extras,
                    ai_prompt,
                    node_keys,
                    display_name,
                }
            },
        )
        .boxed()
}

/// Node keys the builder must not overwrite with a random value (they define the node).
const STRUCTURAL_NODE_KEYS: &[&str] = &["id", "data"];

fn build_node(id: &str, s: &NodeSpec) -> Node {
    let conditions = || {
        s.labels
            .iter()
            .map(|l| builder::condition(l, &s.c))
            .collect::<Vec<_>>()
    };
    let mut node = match KINDS[s.kind] {
        "start" => Node::start(id),
        "send_text" => Node::send_text(id, &s.a),
        "send_template" => Node::send_template(id, &s.a, s.value.clone()),
        "send_buttons" => {
            let buttons: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|l| (l.as_str(), s.b.as_str()))
                .collect();
            Node::send_buttons(id, &s.a, &buttons)
        }
        "wait_for_response" => Node::wait_for_response(id),
        "decide_ai" => Node::decide_ai(id, &s.a, conditions()),
        "decide_function" => Node::decide_function(id, &s.a, conditions()),
        "function" => Node::function(id, &s.a),
        "webhook" => Node::webhook(id, &s.a),
        "set_variable" => Node::set_variable(id, &s.a, s.value.clone()),
        "call" => Node::call(id, &s.a),
        "agent" => Node::agent(id, &s.a, &s.b),
        "handoff" => Node::handoff(id),
        "emit_event" => Node::emit_event(id, &s.a),
        other => unreachable!("unknown kind {other}"),
    };
    for (k, v) in &s.extras {
        node = node.with(k, v.clone());
    }
    if let Some(prompt) = &s.ai_prompt {
        node = node
            .with_ai_field("message", prompt)
            .with("provider_model_name", "gpt-4o-mini");
    }
    for (k, v) in &s.node_keys {
        if !STRUCTURAL_NODE_KEYS.contains(&k.as_str()) {
            node = node.with_node_key(k, v.clone());
        }
    }
    if let Some(name) = &s.display_name {
        let mut raw = node.raw().clone();
        raw.object_entry("data")
            .insert("display_name", name.as_str());
        node = Node::from_raw(raw);
    }
    node
}

#[derive(Clone, Debug)]
struct EdgeSpec {
    /// Ends: a node of the flow, or (1 in 5 or so) an id no node has.
    from: prop::sample::Index,
    to: prop::sample::Index,
    /// `None`: no `label` key.
    label: Option<String>,
    /// Backend keys (`id`, `type`, `flow_condition_id`) and unknown keys.
    extras: Vec<(String, Value)>,
}

fn edge_spec() -> BoxedStrategy<EdgeSpec> {
    (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::option::weighted(
            0.9,
            prop_oneof![
                3 => prop::sample::select(&["next", "error", "response", "yes", "no", ""][..])
                    .prop_map(str::to_owned),
                1 => text(),
            ],
        ),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(&["id", "type", "flow_condition_id"][..]).prop_flat_map(|k| {
                    prop_oneof![text().prop_map(Value::from), Just(Value::Null)]
                        .prop_map(move |v| (k.to_owned(), v))
                }),
                (key(), value()),
            ],
            0..3,
        ),
    )
        .prop_map(|(from, to, label, extras)| EdgeSpec {
            from,
            to,
            label,
            extras,
        })
        .boxed()
}

/// Keys whose presence decides the shape or the envelope: never random top-level keys.
const STRUCTURAL_TOP_KEYS: &[&str] = &[
    "nodes",
    "edges",
    "definition",
    "name",
    "description",
    "flow",
    "workflow",
    "metadata",
    "settings",
];

type SettingsSpec = (Value, Value, Vec<(String, Value)>);

#[derive(Clone, Debug)]
struct FlowSpec {
    name: String,
    description: Option<String>,
    /// Id stem; node `i` is `{stem}{i}`, except a first `start` node called `start`.
    stem: String,
    start_first: bool,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    input_variables: Option<Vec<String>>,
    metadata_extra: Vec<(String, Value)>,
    /// `message_debounce_seconds`, `max_steps_per_turn`, other keys.
    settings: Option<SettingsSpec>,
    top_extras: Vec<(String, Value)>,
}

fn flow_spec() -> BoxedStrategy<FlowSpec> {
    (
        (text(), prop::option::of(text())),
        (prop_oneof!["[a-z][a-z0-9_-]{0,6}", text()], any::<bool>()),
        prop::collection::vec(node_spec(), 0..9),
        prop::collection::vec(edge_spec(), 0..12),
        (
            prop::option::of(prop::collection::vec(text(), 0..3)),
            prop::collection::vec((key(), value()), 0..2),
        ),
        prop::option::weighted(
            0.4,
            (
                prop_oneof![number(), float().prop_map(Value::Float)],
                prop_oneof![(1i64..5000).prop_map(Value::Int), Just(Value::Float(50.0))],
                prop::collection::vec((key(), value()), 0..2),
            ),
        ),
        prop::collection::vec((key(), value()), 0..3),
    )
        .prop_map(
            |(
                (name, description),
                (stem, start_first),
                nodes,
                edges,
                (input_variables, metadata_extra),
                settings,
                top_extras,
            )| FlowSpec {
                name,
                description,
                stem,
                start_first,
                nodes,
                edges,
                input_variables,
                metadata_extra,
                settings,
                top_extras,
            },
        )
        .boxed()
}

fn build_flow(s: &FlowSpec) -> Flow {
    let mut flow = Flow::new(s.name.as_str());
    if let Some(d) = &s.description {
        flow = flow.with_description(d.as_str());
    }
    let ids: Vec<String> = (0..s.nodes.len())
        .map(|i| {
            if i == 0 && s.start_first {
                "start".to_owned()
            } else {
                format!("{}{i}", s.stem)
            }
        })
        .collect();
    for (i, spec) in s.nodes.iter().enumerate() {
        let mut spec = spec.clone();
        if i == 0 && s.start_first {
            spec.kind = 0;
        }
        flow = flow.node(build_node(&ids[i], &spec));
    }
    let id_of = |end: &prop::sample::Index| {
        let i = end.index(ids.len() + ids.len() / 4 + 1);
        ids.get(i)
            .cloned()
            .unwrap_or_else(|| format!("missing_{i}"))
    };
    for e in &s.edges {
        let (from, to) = (id_of(&e.from), id_of(&e.to));
        let mut edge = match &e.label {
            Some(label) => Edge::new(from, to, label.as_str()),
            None => {
                let mut raw = Map::new();
                raw.insert("source", from);
                raw.insert("target", to);
                Edge::from_raw(raw)
            }
        };
        if !e.extras.is_empty() {
            let mut raw = edge.raw().clone();
            for (k, v) in &e.extras {
                if !matches!(k.as_str(), "source" | "target" | "label") {
                    raw.insert(k.as_str(), v.clone());
                }
            }
            edge = Edge::from_raw(raw);
        }
        flow.edges.push(edge);
    }
    if let Some(vars) = &s.input_variables {
        flow = flow.input_variables(vars.iter().cloned());
    }
    let extras_ok = |k: &str| !STRUCTURAL_TOP_KEYS.contains(&k);
    flow.edit_body(|b| {
        if !s.metadata_extra.is_empty() {
            let m = b.object_entry("metadata");
            for (k, v) in &s.metadata_extra {
                if k != "input_variables" {
                    m.insert(k.as_str(), v.clone());
                }
            }
        }
        if let Some((debounce, max_steps, extra)) = &s.settings {
            let m = b.object_entry("settings");
            m.insert("message_debounce_seconds", debounce.clone());
            m.insert("max_steps_per_turn", max_steps.clone());
            for (k, v) in extra {
                m.insert(k.as_str(), v.clone());
            }
        }
        for (k, v) in &s.top_extras {
            if extras_ok(k) {
                b.insert(k.as_str(), v.clone());
            }
        }
    });
    flow
}

/// How the generated flow is written before the first load.
#[derive(Clone, Copy, Debug)]
struct Layout {
    shape: Shape,
    encoding: Encoding,
    envelope: Option<Envelope>,
    compact: bool,
    sort_keys: bool,
    /// Pick the encoding with `Flow::set_format` instead of `WriteOptions::encoding`.
    via_set_format: bool,
}

fn shape() -> BoxedStrategy<Shape> {
    prop::sample::select(&[Shape::Compiled, Shape::SdkDict, Shape::Definition][..]).boxed()
}

fn encoding() -> BoxedStrategy<Encoding> {
    prop::sample::select(&[Encoding::Json, Encoding::Yaml][..]).boxed()
}

fn layout(sorting: bool) -> BoxedStrategy<Layout> {
    (
        shape(),
        encoding(),
        prop::sample::select(&[None, None, Some(Envelope::Flow), Some(Envelope::Workflow)][..]),
        any::<bool>(),
        if sorting {
            any::<bool>().boxed()
        } else {
            Just(false).boxed()
        },
        any::<bool>(),
    )
        .prop_map(
            |(shape, encoding, envelope, compact, sort_keys, via_set_format)| Layout {
                shape,
                encoding,
                envelope,
                compact,
                sort_keys,
                via_set_format,
            },
        )
        .boxed()
}

/// The text of `flow` in `layout`.
fn render(flow: &Flow, layout: Layout) -> String {
    let options = WriteOptions {
        shape: Some(layout.shape),
        encoding: Some(layout.encoding),
        compact: layout.compact,
        sort_keys: layout.sort_keys,
        ..WriteOptions::default()
    };
    match layout.envelope {
        None if layout.via_set_format => {
            // The encoding comes from the flow's format, the shape from the options.
            let mut f = flow.clone();
            f.set_format(Format {
                encoding: layout.encoding,
                ..f.format()
            });
            f.write(&WriteOptions {
                encoding: None,
                ..options
            })
        }
        None => flow.write(&options),
        Some(envelope) => {
            let mut doc = flow.to_document(layout.shape);
            if layout.sort_keys
                && let Value::Object(m) = &mut doc
            {
                m.sort_keys(true);
            }
            let mut root = Map::new();
            root.insert(envelope.key(), doc);
            let root = Value::Object(root);
            match layout.encoding {
                Encoding::Json => {
                    let style = if layout.compact {
                        Style::Compact
                    } else {
                        Style::Pretty
                    };
                    json::to_string(&root, style)
                }
                Encoding::Yaml => yaml::to_string(&root),
            }
        }
    }
}

fn config() -> Config {
    Config {
        // `cases` stays the default: 256, or `PROPTEST_CASES`.
        // Do not write `proptest-regressions/` files into the crate: failures print their
        // minimal input, and real bugs become `#[ignore]`d regression tests below.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

/// `map` with its keys sorted at every level when `sort` is set (what `sort_keys` writes).
fn sorted(map: &Map, sort: bool) -> Map {
    let mut m = map.clone();
    if sort {
        m.sort_keys(true);
    }
    m
}

/// The typed projection of a flow: per node its id, kind and typed config (nodes as written
/// with sorted keys when `sort`), per edge source/target/label, `metadata()`, `settings()`.
fn assert_same_projection(
    what: &str,
    got: &Flow,
    want: &Flow,
    sort: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.nodes.len(), want.nodes.len(), "{}: node count", what);
    for (i, (g, w)) in got.nodes.iter().zip(&want.nodes).enumerate() {
        let w = Node::from_raw(sorted(w.raw(), sort));
        prop_assert_eq!(g.id(), w.id(), "{}: node {} id", what, i);
        prop_assert_eq!(g.kind(), w.kind(), "{}: node {} kind", what, i);
        prop_assert_eq!(g.config(), w.config(), "{}: node {} typed config", what, i);
    }
    prop_assert_eq!(got.edges.len(), want.edges.len(), "{}: edge count", what);
    for (i, (g, w)) in got.edges.iter().zip(&want.edges).enumerate() {
        prop_assert_eq!(
            (g.source(), g.target(), g.label()),
            (w.source(), w.target(), w.label()),
            "{}: edge {}",
            what,
            i
        );
    }
    prop_assert_eq!(got.metadata(), want.metadata(), "{}: metadata()", what);
    prop_assert_eq!(got.settings(), want.settings(), "{}: settings()", what);
    Ok(())
}

/// The decoding issues without their source positions (the texts compared differ in layout).
fn issues(l: &Loaded) -> Vec<(IssueKind, String, Option<usize>, Option<usize>)> {
    l.issues
        .iter()
        .map(|i| (i.kind.clone(), i.pointer.clone(), i.node, i.edge))
        .collect()
}

fn load_ok(what: &str, text: &str) -> Result<Loaded, TestCaseError> {
    load(text).map_err(|e| TestCaseError::fail(format!("{what}: does not load: {e}\n{text}")))
}

fn load_as(what: &str, text: &str, encoding: Encoding) -> Result<Loaded, TestCaseError> {
    load_str(text, encoding, &LoadOptions::default())
        .map_err(|e| TestCaseError::fail(format!("{what}: does not load: {e}\n{text}")))
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// (a) load → write → load is the identity in the flow's own format (JSON and YAML),
    /// after one normalising load; writing is idempotent.
    #[test]
    fn own_format_round_trip_is_the_identity(spec in flow_spec(), layout in layout(true)) {
        let flow = build_flow(&spec);
        let text0 = render(&flow, layout);
        let a = load_ok("generated text", &text0)?;
        prop_assert_eq!(a.flow.format().encoding, layout.encoding, "encoding detection");
        prop_assert_eq!(a.flow.format().envelope, layout.envelope);
        prop_assert_eq!(a.flow.format().shape, layout.shape);
        let text1 = a.flow.to_text();
        let b = load_as("to_text()", &text1, a.flow.format().encoding)?;
        prop_assert_eq!(&a.flow, &b.flow, "load(to_text()) differs\n{}", text1);
        prop_assert_eq!(b.flow.to_text(), text1, "writing is not idempotent");
        prop_assert_eq!(issues(&a), issues(&b), "decoding issues differ");
    }

    /// (b) Converting to every shape and encoding, and back, keeps node ids, typed configs,
    /// edge source/target/label, `metadata()` and `settings()`.
    #[test]
    fn conversions_keep_the_typed_flow(spec in flow_spec(), layout in layout(false)) {
        let flow = build_flow(&spec);
        let a = load_ok("generated text", &render(&flow, layout))?;
        let home = a.flow.format();
        for shape in [Shape::Compiled, Shape::SdkDict, Shape::Definition] {
            for encoding in [Encoding::Json, Encoding::Yaml] {
                let what = format!("{home:?} → {shape:?}/{encoding:?}");
                let text = a.flow.write(&WriteOptions {
                    shape: Some(shape),
                    encoding: Some(encoding),
                    ..WriteOptions::default()
                });
                let c = load_as(&what, &text, encoding)?;
                prop_assert_eq!(c.flow.format().shape, shape, "{}: shape read back", what);
                prop_assert_eq!(c.flow.format().envelope, home.envelope, "{}: envelope", what);
                assert_same_projection(&what, &c.flow, &a.flow, false)?;
                if shape != Shape::Definition {
                    prop_assert_eq!(c.flow.description(), a.flow.description(), "{}", what);
                    if home.shape != Shape::Definition {
                        prop_assert_eq!(c.flow.name(), a.flow.name(), "{}", what);
                    }
                }
                // And back to where it came from.
                let back = c.flow.write(&WriteOptions {
                    shape: Some(home.shape),
                    encoding: Some(home.encoding),
                    ..WriteOptions::default()
                });
                let what = format!("{what} → back");
                let d = load_as(&what, &back, home.encoding)?;
                prop_assert_eq!(d.flow.format(), home, "{}: format", what);
                assert_same_projection(&what, &d.flow, &a.flow, false)?;
            }
        }
    }

    /// (c) The typed projection of the loaded flow is the builder flow's.
    #[test]
    fn loaded_flow_projects_like_the_builder_flow(spec in flow_spec(), layout in layout(true)) {
        let flow = build_flow(&spec);
        let a = load_ok("generated text", &render(&flow, layout))?;
        assert_same_projection("loaded vs builder", &a.flow, &flow, layout.sort_keys)?;
        if layout.shape != Shape::Definition {
            prop_assert_eq!(a.flow.name(), flow.name());
            prop_assert_eq!(a.flow.description(), flow.description());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn fixture_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flows");
    let mut out = Vec::new();
    for dir in ["valid", "invalid"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("fixture directory exists") {
            let path = entry.expect("directory entry").path();
            let name = path.to_string_lossy().to_string();
            if (name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml"))
                && !name.ends_with(".registries.json")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_that_loads_round_trips_in_its_own_format() {
    let mut loaded_count = 0;
    let mut failures = Vec::new();
    for path in fixture_files() {
        let name = path
            .strip_prefix(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .unwrap_or(&path)
            .to_string_lossy()
            .to_string();
        let bytes = std::fs::read(&path).expect("readable fixture");
        let Ok(a) = load_bytes(&bytes, Some(&name), &LoadOptions::default()) else {
            continue;
        };
        loaded_count += 1;
        let text = a.flow.to_text();
        match load_str(&text, a.flow.format().encoding, &LoadOptions::default()) {
            Err(e) => failures.push(format!("{name}: to_text() does not load: {e}")),
            Ok(b) if b.flow != a.flow => {
                failures.push(format!("{name}: load(to_text()) differs from the flow"));
            }
            Ok(b) if b.flow.to_text() != text => {
                failures.push(format!("{name}: writing is not idempotent"));
            }
            Ok(b) if issues(&b) != issues(&a) => {
                failures.push(format!("{name}: the decoding issues differ"));
            }
            Ok(_) => {}
        }
    }
    assert!(
        loaded_count >= 100,
        "expected the fixtures of fixtures/flows, {loaded_count} loaded"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Regression tests for model bugs found by these properties and by the validator's robustness
// test (`crates/switchboard-validator/tests/robustness.rs`). Each asserts the behaviour the spec
// requires; run them with `cargo test -p switchboard-model --test roundtrip -- --ignored`.
// ---------------------------------------------------------------------------------------------

/// Loads `text` and checks load(to_text()) == flow and that no key is lost.
fn assert_own_format_round_trip(text: &str) {
    let a = load(text).expect("the document loads");
    let written = a.flow.to_text();
    let b = load_str(&written, a.flow.format().encoding, &LoadOptions::default())
        .expect("to_text() loads");
    assert_eq!(
        json::parse(&written).ok().map(|v| v.to_json()),
        json::parse(text).ok().map(|v| v.to_json()),
        "the written document differs from the one read\nread:    {text}\nwritten: {written}"
    );
    assert!(
        b.flow == a.flow,
        "load(to_text()) differs from the flow\nwritten: {written}"
    );
}

#[test]
fn shape_c_keeps_its_description_in_its_own_format() {
    // flow-format §1: read → write → read keeps every key. (Only *converting* to shape C drops
    // `name`/`description`.)
    assert_own_format_round_trip(
        r#"{"description": "d", "nodes": [{"id": "start", "data": {"node_type": "start"}}]}"#,
    );
}

#[test]
fn shape_a_without_nodes_round_trips() {
    assert_own_format_round_trip(r#"{"name": "x", "definition": {"edges": []}}"#);
}

#[test]
fn non_object_definition_does_not_duplicate_in_shape_a() {
    let a = load(
        r#"{"name": "x", "nodes": [{"id": "start", "data": {"node_type": "start"}}], "definition": "definition.json"}"#,
    )
    .expect("loads as shape B");
    assert_eq!(a.flow.format().shape, Shape::SdkDict);
    let text = a.flow.write(&WriteOptions {
        shape: Some(Shape::Compiled),
        ..WriteOptions::default()
    });
    let b = load(&text).unwrap_or_else(|e| panic!("shape-A text does not load: {e}\n{text}"));
    assert_eq!(b.flow.nodes.len(), 1);
}

#[test]
fn flow_at_the_nesting_limit_converts_to_every_shape() {
    // A flow may nest `MAX_FLOW_DEPTH` (254) levels below its envelope and `definition`
    // wrappers, so every shape (at most 2 wrapper levels more) stays within the parsers' 256.
    // root, nodes, node, data, config: 5 levels, plus 249 arrays = 254.
    let deep = format!("{}1{}", "[".repeat(249), "]".repeat(249));
    let text = format!(
        r#"{{"name": "x", "nodes": [{{"id": "s", "data": {{"node_type": "start", "config": {{"k": {deep}}}}}}}]}}"#
    );
    let a = load(&text).expect("254 levels load");
    for shape in [Shape::Compiled, Shape::SdkDict, Shape::Definition] {
        let out = a.flow.write(&WriteOptions {
            shape: Some(shape),
            ..WriteOptions::default()
        });
        if let Err(e) = load(&out) {
            panic!("{shape:?}: the written flow does not load: {e}");
        }
    }
    // One level more is refused when loading, with a clear error.
    let deeper = text.replace("[1]", "[[1]]");
    let err = load(&deeper).expect_err("255 levels below the root are refused");
    assert_eq!(err.rule(), "invalid-document");
    assert!(err.to_string().contains("nesting deeper than 254"), "{err}");
}

#[test]
fn set_format_changes_the_written_shape() {
    for format in [
        Format {
            shape: Shape::Definition,
            encoding: Encoding::Json,
            envelope: None,
        },
        Format {
            shape: Shape::SdkDict,
            encoding: Encoding::Yaml,
            envelope: None,
        },
        Format {
            shape: Shape::Compiled,
            encoding: Encoding::Json,
            envelope: Some(Envelope::Flow),
        },
    ] {
        let mut flow = Flow::new("x")
            .node(Node::start("start"))
            .node(Node::send_text("hi", "Hi"))
            .edge("start", "hi");
        flow.set_format(format);
        let text = flow.to_text();
        let back = load(&text).unwrap_or_else(|e| panic!("{format:?}: {e}\n{text}"));
        assert_eq!(back.flow.format(), format, "{text}");
        assert_eq!(back.flow.nodes.len(), 2, "{format:?}: nodes lost\n{text}");
        assert_eq!(back.flow.edges.len(), 1, "{format:?}: edges lost\n{text}");
    }
}
