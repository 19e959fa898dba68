//! Checks that every decoder reads exactly the keys it declares, and that each declared key list
//! is the one its unknown-key check uses.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use super::agent::{FUNCTION_TOOL_KEYS, KNOWLEDGE_BASE_KEYS, MCP_SERVER_KEYS, WEBHOOK_TOOL_KEYS};
use super::control::CONDITION_KEYS;
use super::messages::{BUTTON_KEYS, LIST_ROW_KEYS, LIST_SECTION_KEYS};
use super::{AI_FIELD_KEYS, NodeKind, decode};
use crate::decode::{Cx, Obj, reads};
use crate::issue::{Issue, IssueKind};
use crate::value::{Map, Value};

/// The nested objects that have their own key list (and unknown-key check), by field path
/// (array indices written `[]`, `ai_field_config` entries `ai_field_config.*`).
const NESTED: &[(&str, &[&str])] = &[
    ("ai_field_config.*", AI_FIELD_KEYS),
    ("buttons[]", BUTTON_KEYS),
    ("list_sections[]", LIST_SECTION_KEYS),
    ("list_sections[].rows[]", LIST_ROW_KEYS),
    ("conditions[]", CONDITION_KEYS),
    ("flow_agent_webhooks[]", WEBHOOK_TOOL_KEYS),
    ("flow_agent_function_tools[]", FUNCTION_TOOL_KEYS),
    ("flow_agent_mcp_servers[]", MCP_SERVER_KEYS),
    ("flow_agent_knowledge_bases[]", KNOWLEDGE_BASE_KEYS),
];

/// The nested objects that are kept open (no key list, no unknown-key check) and the keys the
/// decoders read from them.
const OPEN: &[(&str, &[&str])] = &[
    ("flow_action_payload", &["screen", "data"]),
    ("llm_configuration", &["instructions"]),
];

/// The key that no decoder declares.
const UNDECLARED: &str = "x_undeclared";

/// Builds config objects: every declared key present (as `null`, unless overridden), and, when
/// `extra` is set, one undeclared key in every object.
struct Sample {
    extra: bool,
}

impl Sample {
    fn object(&self, keys: &[&str], nested: Vec<(&str, Value)>) -> Value {
        let mut m = Map::new();
        for k in keys {
            m.insert(*k, Value::Null);
        }
        for (k, v) in nested {
            assert!(keys.contains(&k), "{k} is not a declared key");
            m.insert(k, v);
        }
        if self.extra {
            m.insert(UNDECLARED, Value::Int(1));
        }
        Value::Object(m)
    }

    fn open(&self) -> Value {
        let mut m = Map::new();
        if self.extra {
            m.insert(UNDECLARED, Value::Int(1));
        }
        Value::Object(m)
    }

    fn ai_fields(&self, field: &str) -> Value {
        let mut m = Map::new();
        m.insert(field, self.object(AI_FIELD_KEYS, vec![]));
        Value::Object(m)
    }

    /// A config of `kind` that leads its decoder into every nested object it reads.
    fn config(&self, kind: NodeKind) -> Value {
        let list = |v: Value| Value::Array(vec![v]);
        let nested = match kind {
            NodeKind::SendText => vec![("ai_field_config", self.ai_fields("message"))],
            NodeKind::SendTemplate => vec![("ai_field_config", self.ai_fields("parameters"))],
            NodeKind::SendInteractive => vec![
                ("buttons", list(self.object(BUTTON_KEYS, vec![]))),
                (
                    "list_sections",
                    list(self.object(
                        LIST_SECTION_KEYS,
                        vec![("rows", list(self.object(LIST_ROW_KEYS, vec![])))],
                    )),
                ),
                ("flow_action_payload", self.open()),
                ("ai_field_config", self.ai_fields("body_text")),
            ],
            NodeKind::Decide => vec![
                ("conditions", list(self.object(CONDITION_KEYS, vec![]))),
                ("llm_configuration", self.open()),
            ],
            NodeKind::Webhook => vec![("ai_field_config", self.ai_fields("url"))],
            NodeKind::Pipedream => vec![("ai_field_config", self.ai_fields("configured_props"))],
            NodeKind::Agent => vec![
                (
                    "flow_agent_webhooks",
                    list(self.object(WEBHOOK_TOOL_KEYS, vec![])),
                ),
                (
                    "flow_agent_function_tools",
                    list(self.object(FUNCTION_TOOL_KEYS, vec![])),
                ),
                (
                    "flow_agent_mcp_servers",
                    list(self.object(MCP_SERVER_KEYS, vec![])),
                ),
                (
                    "flow_agent_knowledge_bases",
                    list(self.object(KNOWLEDGE_BASE_KEYS, vec![])),
                ),
            ],
            NodeKind::Start
            | NodeKind::WaitForResponse
            | NodeKind::Function
            | NodeKind::SetVariable
            | NodeKind::Call
            | NodeKind::Handoff
            | NodeKind::EmitEvent => vec![],
        };
        self.object(kind.known_keys(), nested)
    }
}

/// Decodes `config` as a `kind` config; returns the issues and the keys read, by field path.
fn decode_recorded(
    kind: NodeKind,
    config: &Value,
) -> (Vec<Issue>, BTreeMap<String, BTreeSet<String>>) {
    let Value::Object(map) = config else {
        panic!("a config is an object")
    };
    let mut issues = Vec::new();
    let ((), raw) = reads::recorded(|| {
        let mut cx = Cx {
            issues: &mut issues,
            node: None,
            edge: None,
        };
        decode(kind, Obj::root(map, ""), &mut cx);
    });
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, key) in raw {
        by_path.entry(normalize(&path)).or_default().insert(key);
    }
    (issues, by_path)
}

/// `list_sections[0].rows[1]` → `list_sections[].rows[]`; `ai_field_config.message` →
/// `ai_field_config.*`.
fn normalize(path: &str) -> String {
    if path.starts_with("ai_field_config.") {
        return "ai_field_config.*".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if in_index => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[test]
fn every_decoder_reads_exactly_the_keys_it_declares() {
    for kind in NodeKind::ALL {
        let config = Sample { extra: false }.config(kind);
        let (_, mut reads) = decode_recorded(kind, &config);
        let root = reads.remove("").unwrap_or_default();
        assert_eq!(
            root,
            set(kind.known_keys()),
            "{} config: the keys read (left) differ from NodeKind::known_keys (right)",
            kind.as_str()
        );
        for (path, keys) in reads {
            let declared = NESTED
                .iter()
                .chain(OPEN)
                .find(|(p, _)| *p == path)
                .unwrap_or_else(|| {
                    panic!(
                        "{} config: the decoder reads {keys:?} from `{path}`, which has no key list \
                         (declare one beside the decoder and add it to NESTED, or to OPEN)",
                        kind.as_str()
                    )
                })
                .1;
            assert_eq!(
                keys,
                set(declared),
                "{} config, `{path}`: the keys read (left) differ from the declared list (right)",
                kind.as_str()
            );
        }
    }
}

#[test]
fn every_nested_key_list_is_read_by_some_decoder() {
    let mut seen = BTreeSet::new();
    for kind in NodeKind::ALL {
        let (_, reads) = decode_recorded(kind, &Sample { extra: false }.config(kind));
        seen.extend(reads.into_keys());
    }
    for (path, _) in NESTED.iter().chain(OPEN) {
        assert!(
            seen.contains(*path),
            "no decoder read `{path}`: the samples do not reach it, or the list is stale"
        );
    }
}

#[test]
fn unknown_key_checks_use_the_declared_lists() {
    for kind in NodeKind::ALL {
        // Exactly the declared keys: nothing is unknown (and `null` is never a wrong type).
        let (issues, _) = decode_recorded(kind, &Sample { extra: false }.config(kind));
        assert!(issues.is_empty(), "{}: {issues:?}", kind.as_str());
        // One undeclared key in every object: reported once per object with a key list.
        let (issues, reads) = decode_recorded(kind, &Sample { extra: true }.config(kind));
        let with_list = 1 + reads
            .keys()
            .filter(|p| NESTED.iter().any(|(n, _)| n == p))
            .count();
        let unknown: Vec<&Issue> = issues
            .iter()
            .filter(
                |i| matches!(&i.kind, IssueKind::UnknownConfigKey { key, .. } if key == UNDECLARED),
            )
            .collect();
        assert_eq!(unknown.len(), with_list, "{}: {issues:?}", kind.as_str());
        assert_eq!(unknown.len(), issues.len(), "{}: {issues:?}", kind.as_str());
    }
}

#[test]
fn key_lists_have_no_duplicates() {
    let lists = NodeKind::ALL
        .iter()
        .map(|k| (k.as_str(), k.known_keys()))
        .chain(NESTED.iter().copied());
    for (name, keys) in lists {
        let unique = set(keys);
        assert_eq!(unique.len(), keys.len(), "{name}: {keys:?}");
    }
}
