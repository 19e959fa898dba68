//! Agent tools and events (validation-rules §8).
//!
//! For `agent` nodes: tool argument schemas (`invalid-json-schema`: `body_schema` of webhook
//! tools and `input_schema` of function tools must be JSON Schema draft 2020-12 documents whose
//! top-level `type` is `object`), webhook-tool `jmespath_query` compilation (`invalid-jmespath`),
//! tool names (`invalid-tool-name`, and `duplicate-tool-name` across webhook tools, function
//! tools, knowledge bases and the offered built-in tools; an MCP server's `name` is a display
//! name of at most 128 characters), and an agent that can
//! never take its outgoing edge because `complete_task` is not offered (`agent-cannot-complete`).
//!
//! For `emit_event` nodes: the event name (`invalid-event-name`), the properties
//! (`invalid-event-properties`) and the counting part of `emit-event-budget` (more than 10
//! `emit_event` nodes, more than 3 with one name). The "on a cycle" part is the graph module's.
//!
//! Missing names, URLs and texts are `missing-required-field`'s; values of the wrong type and
//! JSON strings that do not parse are reported by the model decoder. Both are skipped here.

use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;

use switchboard_model::config::{Agent, BuiltinTool, EmitEvent};
use switchboard_model::json::{MAX_DEPTH, Style};
use switchboard_model::{Map, NodeConfig, Value};

use crate::context::Ctx;
use crate::rules;
use crate::util::{char_len, excerpt, tok};

/// Longest tool name.
const TOOL_NAME_MAX: usize = 64;
/// Longest MCP server display name.
const MCP_SERVER_NAME_MAX: usize = 128;
/// Longest event name.
const EVENT_NAME_MAX: usize = 128;
/// Most event properties.
const PROPERTIES_MAX: usize = 25;
/// Largest properties object, in bytes of compact JSON.
const PROPERTIES_BYTES_MAX: usize = 8 * 1024;
/// Longest property key.
const PROPERTY_KEY_MAX: usize = 64;
/// Largest string property value, in bytes.
const PROPERTY_STRING_BYTES_MAX: usize = 1024;
/// Most `emit_event` nodes in a flow (an execution emits at most 10 events).
const EMITS_MAX: usize = 10;
/// Most `emit_event` nodes with one event name (an execution emits a name at most 3 times).
const EMITS_PER_NAME_MAX: usize = 3;
/// Longest `jmespath_query` compiled (the parser recurses; this bounds its stack use).
const JMESPATH_BYTES_MAX: usize = 4096;
/// Most nesting tokens (`(`, `[`, `{`, `!`, `*`, `?`) in a compiled `jmespath_query`.
const JMESPATH_NESTING_MAX: usize = 100;

pub(crate) fn check(cx: &mut Ctx) {
    let flow = cx.flow;
    let events: Vec<(usize, &EmitEvent)> = flow
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.config() {
            NodeConfig::EmitEvent(e) => Some((i, e)),
            NodeConfig::Start
            | NodeConfig::SendText(_)
            | NodeConfig::SendTemplate(_)
            | NodeConfig::SendInteractive(_)
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Decide(_)
            | NodeConfig::Function(_)
            | NodeConfig::Webhook(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Agent(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::Pipedream(_)
            | NodeConfig::Unknown => None,
        })
        .collect();
    for (i, node) in flow.nodes.iter().enumerate() {
        if let NodeConfig::Agent(a) = node.config() {
            let empty = Map::new();
            agent(cx, i, a, cx.config_map(i).unwrap_or(&empty));
        }
    }
    for &(i, e) in &events {
        event_name(cx, i, e);
        if let Some(props) = &e.properties {
            properties(cx, i, props);
        }
    }
    event_budget(cx, &events);
}

// ---------------------------------------------------------------------------------------------
// Agents

/// A named tool of an agent, for the duplicate check.
struct Named<'a> {
    name: &'a str,
    /// Config path of its `name` (`""` for a built-in).
    ptr: String,
    /// How messages refer to it.
    what: String,
    /// Source offset, to report the later one of two duplicates.
    offset: usize,
}

fn agent(cx: &mut Ctx, i: usize, a: &Agent, raw: &Map) {
    let mut named: Vec<Named> = Vec::new();
    let webhooks = object_indices(raw, "flow_agent_webhooks");
    for (t, j) in a.webhooks.iter().zip(webhooks) {
        let base = format!("/flow_agent_webhooks/{j}");
        if let Some(schema) = &t.body_schema {
            let as_object = raw_is_object(raw, "flow_agent_webhooks", j, "body_schema");
            json_schema(
                cx,
                i,
                &format!("{base}/body_schema"),
                "body_schema",
                schema,
                as_object,
            );
        }
        if let Some(q) = t.jmespath_query.as_deref().filter(|q| !q.trim().is_empty()) {
            jmespath(cx, i, &format!("{base}/jmespath_query"), q);
        }
        add_name(cx, i, &mut named, t.name.as_deref(), base, "webhook tool");
    }
    let functions = object_indices(raw, "flow_agent_function_tools");
    for (t, j) in a.function_tools.iter().zip(functions) {
        let base = format!("/flow_agent_function_tools/{j}");
        if let Some(schema) = &t.input_schema {
            let as_object = raw_is_object(raw, "flow_agent_function_tools", j, "input_schema");
            json_schema(
                cx,
                i,
                &format!("{base}/input_schema"),
                "input_schema",
                schema,
                as_object,
            );
        }
        add_name(cx, i, &mut named, t.name.as_deref(), base, "function tool");
    }
    // An MCP server's `name` is a display name ("Documentation Server"), not a tool name: the
    // server names its tools, offered as `<server>__<tool>`. Only its length is bounded.
    let servers = object_indices(raw, "flow_agent_mcp_servers");
    for (t, j) in a.mcp_servers.iter().zip(servers) {
        if let Some(name) = t.name.as_deref()
            && char_len(name) > MCP_SERVER_NAME_MAX
        {
            cx.at_config(
                rules::INVALID_TOOL_NAME,
                i,
                &format!("/flow_agent_mcp_servers/{j}/name"),
                format!(
                    "MCP server name `{}` is {} characters, more than {MCP_SERVER_NAME_MAX}",
                    shown(name),
                    char_len(name)
                ),
                format!(
                    "shorten the server's display name to at most {MCP_SERVER_NAME_MAX} characters"
                ),
            );
        }
    }
    let bases = object_indices(raw, "flow_agent_knowledge_bases");
    for (t, j) in a.knowledge_bases.iter().zip(bases) {
        let base = format!("/flow_agent_knowledge_bases/{j}");
        add_name(cx, i, &mut named, t.name.as_deref(), base, "knowledge base");
    }
    duplicate_names(cx, i, a, named);
    cannot_complete(cx, i, a);
}

/// Checks a tool name and records it for the duplicate check.
fn add_name<'a>(
    cx: &mut Ctx,
    i: usize,
    named: &mut Vec<Named<'a>>,
    name: Option<&'a str>,
    base: String,
    kind: &str,
) {
    // Absent or empty: `missing-required-field`.
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return;
    };
    let ptr = format!("{base}/name");
    if let Some(problem) = tool_name_problem(name) {
        cx.at_config(
            rules::INVALID_TOOL_NAME,
            i,
            &ptr,
            format!("tool name `{}` {problem}", shown(name)),
            "use 1 to 64 letters, digits, `_` or `-`, e.g. `check_order`",
        );
    }
    let offset = cx
        .flow
        .pos_at(&cx.config_ptr(i, &ptr))
        .offset()
        .unwrap_or(usize::MAX);
    let what = format!(
        "{kind} {}",
        base.trim_start_matches('/').replacen('/', "[", 1) + "]"
    );
    named.push(Named {
        name,
        ptr,
        what,
        offset,
    });
}

/// Why a tool name does not match `^[A-Za-z0-9_-]{1,64}$`, if it does not.
fn tool_name_problem(name: &str) -> Option<String> {
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        let c = if c.is_whitespace() || c.is_control() {
            format!("{:?}", c)
        } else {
            format!("`{c}`")
        };
        return Some(format!(
            "contains {c}; names may only hold letters, digits, `_` and `-`"
        ));
    }
    // All ASCII here: bytes are characters.
    (name.len() > TOOL_NAME_MAX)
        .then(|| format!("is {} characters, more than {TOOL_NAME_MAX}", name.len()))
}

fn duplicate_names(cx: &mut Ctx, i: usize, a: &Agent, mut named: Vec<Named>) {
    // Built-in tools that are not offered cannot clash: the model never sees them.
    let builtins = a.builtin_tools();
    let mut seen: HashMap<&str, String> = builtins
        .iter()
        .map(|t| (t.as_str(), format!("the built-in tool {}", t.as_str())))
        .collect();
    named.sort_by_key(|n| n.offset);
    for n in named {
        match seen.entry(n.name) {
            Entry::Occupied(first) => cx.at_config(
                rules::DUPLICATE_TOOL_NAME,
                i,
                &n.ptr,
                format!(
                    "{} is named `{}`, like {}",
                    n.what,
                    shown(n.name),
                    first.get()
                ),
                if first.get().starts_with("the built-in") {
                    "rename the tool, or leave the built-in out of `enabled_default_tools`"
                } else {
                    "give every tool of the agent its own name: the model calls tools by name"
                },
            ),
            Entry::Vacant(v) => {
                v.insert(n.what);
            }
        }
    }
}

/// An agent with an outgoing non-error edge that cannot call `complete_task`.
fn cannot_complete(cx: &mut Ctx, i: usize, a: &Agent) {
    let Some(enabled) = &a.enabled_default_tools else {
        return;
    };
    if enabled.contains(&BuiltinTool::CompleteTask) {
        return;
    }
    let flow = cx.flow;
    let id = flow.nodes.get(i).map_or("", |n| n.id());
    if id.is_empty() {
        return;
    }
    let Some(edge) = flow.outgoing(id).find(|e| !e.is_error()) else {
        return;
    };
    cx.at_config(
        rules::AGENT_CANNOT_COMPLETE,
        i,
        "/enabled_default_tools",
        format!(
            "the agent has a `{}` edge but enabled_default_tools does not offer complete_task, so \
             it can never take it",
            edge.label()
        ),
        "add `complete_task` to enabled_default_tools, or remove the outgoing edge",
    );
}

/// The indices of the object entries of the array `key` (the typed tool lists skip non-objects).
fn object_indices(raw: &Map, key: &str) -> Vec<usize> {
    match raw.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v, Value::Object(_)))
            .map(|(j, _)| j)
            .collect(),
        _ => Vec::new(),
    }
}

/// `true` when `raw[list][j][key]` is written as an object (not as a JSON string).
fn raw_is_object(raw: &Map, list: &str, j: usize, key: &str) -> bool {
    raw.get(list)
        .and_then(Value::as_array)
        .and_then(|a| a.get(j))
        .and_then(Value::as_object)
        .and_then(|t| t.get(key))
        .is_some_and(|v| matches!(v, Value::Object(_)))
}

/// `invalid-json-schema`: a draft 2020-12 schema with top-level `type: object`. An empty schema
/// (`{}`, also what `""` decodes to) stands for the default empty object schema.
fn json_schema(cx: &mut Ctx, i: usize, ptr: &str, field: &str, schema: &Value, as_object: bool) {
    let help = "write a JSON Schema (draft 2020-12) object schema, e.g. \
                `{\"type\": \"object\", \"properties\": {…}, \"required\": […]}`";
    let Value::Object(map) = schema else { return };
    if map.is_empty() {
        return;
    }
    // Loaded documents are never deeper; this keeps the recursion of the conversion and of the
    // meta-schema validation bounded for flows built in code.
    if depth_exceeds(schema, MAX_DEPTH) {
        let message = format!("{field} is nested deeper than {MAX_DEPTH} levels");
        cx.at_config(rules::INVALID_JSON_SCHEMA, i, ptr, message, help);
        return;
    }
    let json = schema.to_json();
    if let Err(e) = jsonschema::draft202012::meta::validate(&json) {
        let at = e.instance_path().as_str().to_owned();
        let reason = shown_long(&e.to_string());
        let (message, ptr) = if at.is_empty() {
            (
                format!("{field} is not a valid JSON Schema: {reason}"),
                ptr.to_owned(),
            )
        } else if as_object {
            (
                format!("{field} is not a valid JSON Schema: {reason}"),
                format!("{ptr}{at}"),
            )
        } else {
            (
                format!("{field} is not a valid JSON Schema: at `{at}`, {reason}"),
                ptr.to_owned(),
            )
        };
        cx.at_config(rules::INVALID_JSON_SCHEMA, i, &ptr, message, help);
        return;
    }
    let problem = match map.get("type") {
        Some(Value::String(t)) if t == "object" => return,
        None => format!("{field} has no top-level `type`; tool arguments must be an object"),
        Some(Value::String(t)) => {
            format!(
                "{field} has top-level type `{}`; tool arguments must be an object",
                shown(t)
            )
        }
        Some(other) => format!(
            "{field} has a top-level type that is {}, not `object`; tool arguments must be an object",
            other.type_name()
        ),
    };
    let ptr = if as_object && map.contains_key("type") {
        format!("{ptr}/type")
    } else {
        ptr.to_owned()
    };
    cx.at_config(
        rules::INVALID_JSON_SCHEMA,
        i,
        &ptr,
        problem,
        "set the schema's top-level `type` to `object`",
    );
}

/// `true` when `v` nests arrays/objects more than `max` levels deep (iterative: no recursion).
fn depth_exceeds(v: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 1)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if d > max => return true,
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(m) => stack.extend(m.iter().map(|(_, c)| (c, d + 1))),
            _ => {}
        }
    }
    false
}

/// `invalid-jmespath`: the query must compile.
fn jmespath(cx: &mut Ctx, i: usize, ptr: &str, q: &str) {
    let help =
        "fix the JMESPath expression (https://jmespath.org), e.g. `data.items[?status == 'open']`";
    let message = if q.len() > JMESPATH_BYTES_MAX {
        format!(
            "jmespath_query is {} bytes, more than the {JMESPATH_BYTES_MAX} accepted",
            q.len()
        )
    } else if nesting_tokens(q) > JMESPATH_NESTING_MAX {
        format!(
            "jmespath_query `{}` has more than {JMESPATH_NESTING_MAX} brackets, projections and \
             negations",
            shown(q)
        )
    } else {
        match jmespath::compile(q) {
            Ok(_) => return,
            Err(e) => {
                let mut reason = shown_long(&e.reason.to_string());
                if let Some(first) = reason.get(..1) {
                    reason = first.to_ascii_lowercase() + reason.get(1..).unwrap_or("");
                }
                format!(
                    "jmespath_query `{}` does not compile: {reason} (at character {})",
                    shown(q),
                    e.offset
                )
            }
        }
    };
    cx.at_config(rules::INVALID_JMESPATH, i, ptr, message, help);
}

/// Counts the tokens that make the JMESPath parser recurse, outside quoted text.
fn nesting_tokens(q: &str) -> usize {
    let mut n = 0;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for b in q.bytes() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if b == b'\\' => escaped = true,
            Some(qb) if b == qb => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'(' | b'[' | b'{' | b'!' | b'*' | b'?' => n += 1,
                _ => {}
            },
        }
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Events

/// `invalid-event-name`: `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, at most 128 characters.
fn event_name(cx: &mut Ctx, i: usize, e: &EmitEvent) {
    // Absent or empty: `missing-required-field`.
    let Some(name) = e.event_name.as_deref().filter(|n| !n.is_empty()) else {
        return;
    };
    let problem = if !is_event_name(name) {
        "must be lowercase dot-separated words of `a-z`, `0-9` and `_`, each starting with a letter"
            .to_owned()
    } else if name.len() > EVENT_NAME_MAX {
        // All ASCII here: bytes are characters.
        format!("is {} characters, more than {EVENT_NAME_MAX}", name.len())
    } else {
        return;
    };
    cx.at_config(
        rules::INVALID_EVENT_NAME,
        i,
        "/event_name",
        format!("event name `{}` {problem}", shown(name)),
        "use a name like `order.placed` or `lead_qualified` (at most 128 characters)",
    );
}

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`
fn is_event_name(s: &str) -> bool {
    s.split('.').all(|seg| {
        let mut b = seg.bytes();
        matches!(b.next(), Some(c) if c.is_ascii_lowercase())
            && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    })
}

/// `invalid-event-properties`.
fn properties(cx: &mut Ctx, i: usize, props: &Map) {
    let rule = rules::INVALID_EVENT_PROPERTIES;
    if props.len() > PROPERTIES_MAX {
        let key = props
            .entries()
            .get(PROPERTIES_MAX)
            .map_or(String::new(), |e| tok(&e.key));
        cx.at_config(
            rule,
            i,
            &format!("/properties/{key}"),
            format!(
                "properties has {} keys, more than {PROPERTIES_MAX}",
                props.len()
            ),
            "keep at most 25 properties; group related values into fewer keys",
        );
    }
    if let Some(size) = oversize(props) {
        cx.at_config(
            rule,
            i,
            "/properties",
            format!("properties is {size} as JSON, more than 8 KiB"),
            "send less data with the event: keep large payloads elsewhere and reference them",
        );
    }
    for (k, v) in props.iter() {
        let ptr = format!("/properties/{}", tok(k));
        if k.is_empty() {
            cx.at_config(
                rule,
                i,
                &ptr,
                "a property key is empty".to_owned(),
                "give the property a name",
            );
        } else {
            let n = char_len(k);
            if n > PROPERTY_KEY_MAX {
                cx.at_config(
                    rule,
                    i,
                    &ptr,
                    format!(
                        "property key `{}` is {n} characters, more than {PROPERTY_KEY_MAX}",
                        shown(k)
                    ),
                    "use a property key of at most 64 characters",
                );
            }
        }
        let problem = match v {
            Value::Array(_) | Value::Object(_) => format!("is {}", article_type(v)),
            Value::Float(f) if !f.is_finite() => "is not a finite number".to_owned(),
            Value::String(s) if s.len() > PROPERTY_STRING_BYTES_MAX => {
                format!(
                    "is {} bytes, more than {PROPERTY_STRING_BYTES_MAX}",
                    s.len()
                )
            }
            _ => continue,
        };
        let help = match v {
            Value::String(_) => "shorten the value to at most 1024 bytes",
            _ => "use a string, number, boolean or null; flatten nested data into several keys",
        };
        cx.at_config(
            rule,
            i,
            &ptr,
            format!("the value of property `{}` {problem}", shown(k)),
            help,
        );
    }
}

fn article_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        _ => "an object",
    }
}

/// The compact JSON size of `props`, when it exceeds 8 KiB (as `"N bytes"` or `"over N bytes"`).
fn oversize(props: &Map) -> Option<String> {
    // Stop writing once far over the limit: values may be huge.
    let cap = PROPERTIES_BYTES_MAX * 4;
    let mut out = String::from("{");
    for (n, (k, v)) in props.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        switchboard_model::json::write_string(k, &mut out);
        out.push(':');
        match v {
            Value::String(s) if s.len() > cap => return Some(format!("over {cap} bytes")),
            _ => switchboard_model::json::write(v, Style::Compact, &mut out),
        }
        if out.len() > cap {
            return Some(format!("over {cap} bytes"));
        }
    }
    out.push('}');
    (out.len() > PROPERTIES_BYTES_MAX).then(|| format!("{} bytes", out.len()))
}

/// `emit-event-budget` (counting part): more than 10 `emit_event` nodes, reported at the 11th;
/// more than 3 with one `event_name`, reported at the 4th.
fn event_budget(cx: &mut Ctx, events: &[(usize, &EmitEvent)]) {
    let rule = rules::EMIT_EVENT_BUDGET;
    if let Some(&(i, _)) = events.get(EMITS_MAX) {
        cx.at_node(
            rule,
            i,
            "",
            format!(
                "the flow has {} emit_event nodes; an execution emits at most {EMITS_MAX} events",
                events.len()
            ),
            "emit fewer events: merge related events and carry details in properties",
        );
    }
    let mut per_name: HashMap<&str, usize> = HashMap::default();
    for (_, e) in events {
        if let Some(name) = e.event_name.as_deref().filter(|n| !n.is_empty()) {
            *per_name.entry(name).or_default() += 1;
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::default();
    for &(i, e) in events {
        let Some(name) = e.event_name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let n = seen.entry(name).or_default();
        *n += 1;
        if *n == EMITS_PER_NAME_MAX + 1 {
            let total = per_name.get(name).copied().unwrap_or(*n);
            cx.at_config(
                rule,
                i,
                "/event_name",
                format!(
                    "{total} emit_event nodes emit `{}`; an execution emits one name at most \
                     {EMITS_PER_NAME_MAX} times",
                    shown(name)
                ),
                "emit this event from fewer places, or distinguish the occurrences in properties",
            );
        }
    }
}

/// A short one-line excerpt for messages.
fn shown(s: &str) -> String {
    excerpt(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A longer one-line excerpt (library error texts), at most 200 characters.
fn shown_long(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(200).is_some() {
        out.push('…');
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    /// The rules of this module.
    const MINE: &[&str] = &[
        "invalid-json-schema",
        "invalid-jmespath",
        "invalid-tool-name",
        "duplicate-tool-name",
        "agent-cannot-complete",
        "invalid-event-name",
        "invalid-event-properties",
        "emit-event-budget",
    ];

    /// This module's diagnostics for a document, as `(rule, pointer)`.
    fn run(doc: &Json) -> Vec<(&'static str, String)> {
        let loaded = switchboard_model::load(&doc.to_string()).expect("loads");
        crate::validate(&loaded.flow, &crate::Options::default())
            .into_iter()
            .filter(|d| MINE.contains(&d.rule))
            .map(|d| {
                assert!(!d.message.ends_with('.'), "{}", d.message);
                assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()));
                (d.rule, d.pointer)
            })
            .collect()
    }

    /// `start → n`, `n` a `node_type` node with `config`; diagnostics with pointers relative to
    /// `n`'s config.
    fn diags(node_type: &str, config: Json) -> Vec<(&'static str, String)> {
        let doc = json!({
            "nodes": [
                {"id": "start", "data": {"node_type": "start", "config": {}}},
                {"id": "n", "data": {"node_type": node_type, "config": config}}
            ],
            "edges": [{"source": "start", "target": "n"}]
        });
        run(&doc)
            .into_iter()
            .map(|(r, p)| {
                (
                    r,
                    p.strip_prefix("/nodes/1/data/config")
                        .unwrap_or(&p)
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The rule names reported for one node.
    fn check(node_type: &str, config: Json) -> Vec<&'static str> {
        diags(node_type, config)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// An agent config with the given extra keys.
    fn agent(extra: Json) -> Json {
        let mut c = json!({"system_prompt": "help", "provider_model_name": "m"});
        if let (Some(c), Json::Object(e)) = (c.as_object_mut(), extra) {
            c.extend(e);
        }
        c
    }

    fn webhook_tool(extra: Json) -> Json {
        let mut t = json!({"name": "lookup", "url": "https://x.io"});
        if let (Some(t), Json::Object(e)) = (t.as_object_mut(), extra) {
            t.extend(e);
        }
        agent(json!({"flow_agent_webhooks": [t]}))
    }

    #[test]
    fn body_schema() {
        let c = |s: Json| diags("agent", webhook_tool(json!({"body_schema": s})));
        let good =
            json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
        assert!(c(good.clone()).is_empty());
        // As a JSON string (the SDK's spelling), and the empty forms.
        assert!(c(json!(good.to_string())).is_empty());
        assert!(c(json!("")).is_empty());
        assert!(c(json!({})).is_empty());
        let base = "/flow_agent_webhooks/0/body_schema";
        assert_eq!(
            c(json!({"type": "objekt"})),
            [("invalid-json-schema", format!("{base}/type"))]
        );
        assert_eq!(
            c(json!({"type": "object", "properties": {"a": {"type": "strin"}}})),
            [("invalid-json-schema", format!("{base}/properties/a/type"))]
        );
        assert_eq!(
            c(json!("{\"type\": \"objekt\"}")),
            [("invalid-json-schema", base.to_owned())]
        );
        assert_eq!(
            c(json!({"type": "array"})),
            [("invalid-json-schema", format!("{base}/type"))]
        );
        assert_eq!(
            c(json!({"properties": {}})),
            [("invalid-json-schema", base.to_owned())]
        );
        // A string that is not JSON is invalid-json-string, not ours.
        assert!(c(json!("{not json")).is_empty());
    }

    #[test]
    fn input_schema() {
        let c = |s: Json| {
            check(
                "agent",
                agent(
                    json!({"flow_agent_function_tools": [{"name": "f", "function_id": "fn", "input_schema": s}]}),
                ),
            )
        };
        assert!(c(json!({"type": "object"})).is_empty());
        assert_eq!(
            c(json!({"type": "object", "required": "id"})),
            ["invalid-json-schema"]
        );
        assert_eq!(c(json!({"type": "string"})), ["invalid-json-schema"]);
    }

    #[test]
    fn deep_schema_does_not_overflow() {
        // As deep as the loader allows, inside a JSON string.
        let deep = |inner: &str| {
            let mut s = inner.to_owned();
            for _ in 0..(MAX_DEPTH / 2 - 1) {
                s = format!("{{\"type\": \"object\", \"properties\": {{\"a\": {s}}}}}");
            }
            check("agent", webhook_tool(json!({"body_schema": s})))
        };
        assert!(deep("{\"type\": \"object\"}").is_empty());
        assert_eq!(deep("{\"type\": \"strin\"}"), ["invalid-json-schema"]);
        let mut v = Value::Object(Map::new());
        for _ in 0..(MAX_DEPTH + 1) {
            let mut m = Map::new();
            m.insert("a", v);
            v = Value::Object(m);
        }
        assert!(depth_exceeds(&v, MAX_DEPTH));
        assert!(!depth_exceeds(&Value::Int(1), 0));
    }

    #[test]
    fn jmespath_query() {
        let c = |q: Json| diags("agent", webhook_tool(json!({"jmespath_query": q})));
        assert!(c(json!("data.items[?status == 'open'].{id: id, name: name}")).is_empty());
        assert!(c(json!(null)).is_empty());
        assert!(c(json!("")).is_empty());
        assert_eq!(
            c(json!("data.[status")),
            [(
                "invalid-jmespath",
                "/flow_agent_webhooks/0/jmespath_query".to_owned()
            )]
        );
        // Queries that would exhaust the parser's stack are rejected before compiling.
        assert_eq!(
            check(
                "agent",
                webhook_tool(json!({"jmespath_query": "(".repeat(100_000)}))
            ),
            ["invalid-jmespath"]
        );
        assert_eq!(
            check(
                "agent",
                webhook_tool(json!({"jmespath_query": "!".repeat(3000) + "a"}))
            ),
            ["invalid-jmespath"]
        );
        assert_eq!(
            check(
                "agent",
                webhook_tool(json!({"jmespath_query": "a".to_owned() + &"[*]".repeat(1000)}))
            ),
            ["invalid-jmespath"]
        );
        let chain = vec!["a"; 2000].join(".");
        assert!(check("agent", webhook_tool(json!({"jmespath_query": chain}))).is_empty());
        // Quoted text does not count.
        let quoted = format!("a == '{}'", "(".repeat(500));
        assert!(check("agent", webhook_tool(json!({"jmespath_query": quoted}))).is_empty());
        let nested = "(".repeat(50) + "a" + &")".repeat(50);
        assert!(check("agent", webhook_tool(json!({"jmespath_query": nested}))).is_empty());
    }

    #[test]
    fn tool_names() {
        let c = |name: Json| check("agent", webhook_tool(json!({"name": name})));
        assert!(c(json!("check_order-2")).is_empty());
        assert!(c(json!("a".repeat(64))).is_empty());
        assert_eq!(c(json!("a".repeat(65))), ["invalid-tool-name"]);
        assert_eq!(c(json!("check order")), ["invalid-tool-name"]);
        assert_eq!(c(json!("café")), ["invalid-tool-name"]);
        assert_eq!(c(json!("a.b")), ["invalid-tool-name"]);
        // Missing or empty names are missing-required-field.
        assert!(c(json!("")).is_empty());
        // An MCP server's name is a display name (kapso-project §4.6): any text up to 128
        // characters, so only the other tools' names are checked here.
        let kinds = agent(json!({
            "flow_agent_function_tools": [{"name": "f n", "function_id": "x"}],
            "flow_agent_mcp_servers": [{"name": "Documentation Server", "url": "https://x.io"},
                                       {"name": "m".repeat(129), "url": "https://x.io"}],
            "flow_agent_knowledge_bases": [{"name": "k n", "knowledge_base_text": "t"}]
        }));
        assert_eq!(
            diags("agent", kinds),
            [
                (
                    "invalid-tool-name",
                    "/flow_agent_function_tools/0/name".to_owned()
                ),
                (
                    "invalid-tool-name",
                    "/flow_agent_mcp_servers/1/name".to_owned()
                ),
                (
                    "invalid-tool-name",
                    "/flow_agent_knowledge_bases/0/name".to_owned()
                ),
            ]
        );
        let server = |name: Json| {
            check(
                "agent",
                agent(json!({"flow_agent_mcp_servers": [{"name": name, "url": "https://x.io"}]})),
            )
        };
        assert!(server(json!("Documentation Server")).is_empty());
        assert!(server(json!("m".repeat(128))).is_empty());
        assert_eq!(server(json!("m".repeat(129))), ["invalid-tool-name"]);
    }

    #[test]
    fn duplicate_tool_names() {
        let tools = json!({
            "flow_agent_webhooks": ["not an object", {"name": "lookup", "url": "https://x.io"}],
            "flow_agent_knowledge_bases": [{"name": "faq", "knowledge_base_text": "t"}, {"name": "lookup", "knowledge_base_text": "t"}]
        });
        assert_eq!(
            diags("agent", agent(tools)),
            [(
                "duplicate-tool-name",
                "/flow_agent_knowledge_bases/1/name".to_owned()
            )]
        );
        let distinct = json!({"flow_agent_webhooks": [{"name": "a", "url": "https://x.io"}, {"name": "A", "url": "https://x.io"}]});
        assert!(check("agent", agent(distinct)).is_empty());
        // A built-in name clashes when the built-in is offered (all 11 by default) …
        assert_eq!(
            check("agent", webhook_tool(json!({"name": "get_variable"}))),
            ["duplicate-tool-name"]
        );
        let mut c = webhook_tool(json!({"name": "get_variable"}));
        c["enabled_default_tools"] = json!(["get_variable", "complete_task"]);
        assert_eq!(check("agent", c.clone()), ["duplicate-tool-name"]);
        // … but not when it is not offered.
        c["enabled_default_tools"] = json!(["complete_task"]);
        assert!(check("agent", c).is_empty());
    }

    fn agent_flow(tools: Option<Json>, label: Option<&str>) -> Vec<&'static str> {
        let mut config = agent(json!({}));
        if let Some(t) = tools {
            config["enabled_default_tools"] = t;
        }
        let mut edge = json!({"source": "a", "target": "bye"});
        if let Some(l) = label {
            edge["label"] = json!(l);
        }
        let doc = json!({
            "nodes": [
                {"id": "start", "data": {"node_type": "start", "config": {}}},
                {"id": "a", "data": {"node_type": "agent", "config": config}},
                {"id": "bye", "data": {"node_type": "send_text", "config": {"message": "bye"}}}
            ],
            "edges": [{"source": "start", "target": "a"}, edge]
        });
        run(&doc).into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn agent_cannot_complete() {
        assert_eq!(
            agent_flow(Some(json!(["send_media"])), None),
            ["agent-cannot-complete"]
        );
        assert_eq!(
            agent_flow(Some(json!([])), Some("next")),
            ["agent-cannot-complete"]
        );
        assert!(agent_flow(Some(json!(["send_media", "complete_task"])), None).is_empty());
        // All built-ins are offered by default.
        assert!(agent_flow(None, None).is_empty());
        // An error edge is taken on failure, not through complete_task.
        assert!(agent_flow(Some(json!(["send_media"])), Some("error")).is_empty());
        assert_eq!(
            crate::rules::AGENT_CANNOT_COMPLETE.severity,
            crate::Severity::Warning
        );
    }

    #[test]
    fn event_names() {
        let c = |name: Json| check("emit_event", json!({"event_name": name}));
        for ok in ["a", "order.placed", "lead_qualified.v2", "a1_.b_2"] {
            assert!(c(json!(ok)).is_empty(), "{ok}");
        }
        for bad in [
            "Order Placed",
            "order..placed",
            ".a",
            "a.",
            "1a",
            "a.1b",
            "_a",
            "a-b",
            "é",
            "order.Placed",
        ] {
            assert_eq!(c(json!(bad)), ["invalid-event-name"], "{bad}");
        }
        let long = format!("{}.{}", "a".repeat(63), "b".repeat(64));
        assert_eq!(long.len(), 128);
        assert!(c(json!(long)).is_empty());
        assert_eq!(c(json!(long + "c")), ["invalid-event-name"]);
        assert!(c(json!("")).is_empty());
    }

    #[test]
    fn event_properties() {
        let c = |p: Json| diags("emit_event", json!({"event_name": "e", "properties": p}));
        assert!(
            c(json!({"a": 1, "b": "x", "c": null, "d": true, "e": 1.5, "f": "{{ vars.x }}"}))
                .is_empty()
        );
        assert_eq!(
            c(json!({"items": [1, 2]})),
            [("invalid-event-properties", "/properties/items".to_owned())]
        );
        assert_eq!(
            c(json!({"o": {}})),
            [("invalid-event-properties", "/properties/o".to_owned())]
        );
        assert_eq!(
            c(json!({"": 1})),
            [("invalid-event-properties", "/properties/".to_owned())]
        );
        assert!(c(json!({"k".repeat(64): 1})).is_empty());
        assert_eq!(c(json!({"é".repeat(65): 1})).len(), 1);
        assert!(c(json!({"s": "x".repeat(1024)})).is_empty());
        assert_eq!(
            c(json!({"s": "é".repeat(513)})),
            [("invalid-event-properties", "/properties/s".to_owned())]
        );
        // Templated values count as written.
        let t = format!("{{{{ vars.a }}}}{}", "x".repeat(1020));
        assert_eq!(c(json!({"s": t})).len(), 1);
        let many = |n: usize| Json::Object((0..n).map(|k| (format!("k{k}"), json!(k))).collect());
        assert!(c(many(25)).is_empty());
        assert_eq!(
            c(many(26)),
            [("invalid-event-properties", "/properties/k25".to_owned())]
        );
        // 8 values of 1024 bytes: {"kN":"…"} is 1031 bytes each, 8 × 1031 + 7 + 2 = 8257 > 8192.
        let big = Json::Object(
            (0..8)
                .map(|k| (format!("k{k}"), json!("x".repeat(1024))))
                .collect(),
        );
        assert_eq!(
            c(big),
            [("invalid-event-properties", "/properties".to_owned())]
        );
        let fits = Json::Object(
            (0..7)
                .map(|k| (format!("k{k}"), json!("x".repeat(1024))))
                .collect(),
        );
        assert!(c(fits).is_empty());
        // A huge value stops the size computation early.
        assert_eq!(c(json!({"s": "x".repeat(1 << 20)})).len(), 2);
    }

    fn emits(names: &[&str]) -> Vec<(&'static str, String)> {
        let mut nodes = vec![json!({"id": "start", "data": {"node_type": "start", "config": {}}})];
        let mut edges = Vec::new();
        let mut prev = "start".to_owned();
        for (k, name) in names.iter().enumerate() {
            let id = format!("e{k}");
            nodes.push(json!({"id": id, "data": {"node_type": "emit_event", "config": {"event_name": name}}}));
            edges.push(json!({"source": prev, "target": id}));
            prev = id;
        }
        run(&json!({"nodes": nodes, "edges": edges}))
    }

    #[test]
    fn event_budget() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        assert!(emits(&names).is_empty());
        let mut eleven = names.to_vec();
        eleven.push("k");
        eleven.push("l");
        assert_eq!(
            emits(&eleven),
            [("emit-event-budget", "/nodes/11".to_owned())]
        );
        assert!(emits(&["a", "b", "a", "a"]).is_empty());
        assert_eq!(
            emits(&["a", "b", "a", "a", "a", "a", "b", "b", "b"]),
            [
                (
                    "emit-event-budget",
                    "/nodes/5/data/config/event_name".to_owned()
                ),
                (
                    "emit-event-budget",
                    "/nodes/9/data/config/event_name".to_owned()
                ),
            ]
        );
        assert_eq!(
            crate::rules::EMIT_EVENT_BUDGET.severity,
            crate::Severity::Warning
        );
    }

    #[test]
    fn helpers() {
        assert!(tool_name_problem("a-b_C9").is_none());
        assert!(tool_name_problem("a\nb").is_some_and(|p| p.contains("'\\n'")));
        assert!(is_event_name("a.b"));
        assert!(!is_event_name(""));
        assert_eq!(nesting_tokens("a[?b == '[(']"), 2);
        assert_eq!(nesting_tokens(r#""a\"(" && `[1]`"#), 0);
    }
}
