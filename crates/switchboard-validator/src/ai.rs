//! AI fields (validation-rules §5, flow-format §6): markers, their prompts, where they may stand,
//! and the model they need.

use switchboard_model::config::NodeConfig;
use switchboard_model::{Map, NodeKind, Value};

use crate::context::Ctx;
use crate::rules;
use crate::util::tok;

/// A marker found in a config: its dot path and JSON-pointer suffix.
struct Marker {
    path: String,
    pointer: String,
}

pub(crate) fn check(cx: &mut Ctx) {
    for i in 0..cx.flow.nodes.len() {
        let node = cx.node(i);
        let Some(kind) = node.kind() else { continue };
        let Some(config) = cx.config_map(i) else {
            continue;
        };
        let mut markers = Vec::new();
        for e in config.entries() {
            if e.key == "ai_field_config" || !has_marker(&e.value, 0) {
                continue;
            }
            collect(
                &e.value,
                &e.key,
                &format!("/{}", tok(&e.key)),
                0,
                &mut markers,
            );
        }
        let entries = config.get("ai_field_config").and_then(Value::as_object);
        if markers.is_empty() && entries.is_none_or(Map::is_empty) {
            continue;
        }
        for m in &markers {
            if !allowed(kind, &m.path) {
                cx.at_config(
                    rules::UNSUPPORTED_AI_FIELD,
                    i,
                    &m.pointer,
                    format!("`{}` cannot be an AI field on a {} node", m.path, kind.as_str()),
                    "AI fields are allowed in send_text.message, send_template.parameters, send_interactive body/header/footer text, and webhook url/headers/body",
                );
                continue;
            }
            let prompt = entries.and_then(|e| entry_for(e, &m.path));
            let has_prompt = prompt
                .and_then(|p| p.as_object())
                .and_then(|p| p.get("prompt"))
                .and_then(Value::as_str)
                .is_some_and(|p| !p.trim().is_empty());
            if !has_prompt {
                let what = if prompt.is_some() {
                    "an empty prompt"
                } else {
                    "no `ai_field_config` entry"
                };
                cx.at_config(
                    rules::AI_FIELD_WITHOUT_PROMPT,
                    i,
                    &m.pointer,
                    format!("AI field `{}` has {what}", m.path),
                    format!("add `\"ai_field_config\": {{\"{}\": {{\"mode\": \"prompt\", \"prompt\": \"…\"}}}}`", m.path),
                );
            }
        }
        if let Some(entries) = entries {
            for e in entries.entries() {
                let target = resolve(config, &e.key)
                    .or_else(|| alias_path(&e.key).and_then(|p| resolve(config, &p)));
                if !target.is_some_and(Value::is_ai_marker) {
                    cx.at_config(
                        rules::ORPHAN_AI_FIELD_CONFIG,
                        i,
                        &format!("/ai_field_config/{}", tok(&e.key)),
                        format!(
                            "`ai_field_config` entry `{}` does not point at an AI field marker",
                            e.key
                        ),
                        format!("set `{}` to {{\"$ai\": {{}}}} or remove the entry", e.key),
                    );
                }
            }
        }
        let needs_model = !markers.is_empty();
        let has_model = match node.config() {
            NodeConfig::SendText(c) => c.sender.model.is_set(),
            NodeConfig::SendTemplate(c) => c.sender.model.is_set(),
            NodeConfig::SendInteractive(c) => c.sender.model.is_set(),
            NodeConfig::Webhook(c) => c.model.is_set(),
            NodeConfig::Pipedream(c) => c.model.is_set(),
            // Agents and AI decides are checked with their own configuration.
            NodeConfig::Agent(_) | NodeConfig::Decide(_) => true,
            NodeConfig::Start
            | NodeConfig::WaitForResponse(_)
            | NodeConfig::Function(_)
            | NodeConfig::SetVariable(_)
            | NodeConfig::Call(_)
            | NodeConfig::Handoff(_)
            | NodeConfig::EmitEvent(_)
            | NodeConfig::Unknown => ["provider_model_id", "provider_model_name"]
                .iter()
                .any(|k| {
                    config
                        .get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                }),
        };
        if needs_model && !has_model {
            cx.at_config(
                rules::MISSING_MODEL,
                i,
                &markers[0].pointer,
                format!("AI field `{}` needs a model, but the node has no `provider_model_name` or `provider_model_id`", markers[0].path),
                "set `provider_model_name` (e.g. \"gpt-4o-mini\") on the node",
            );
        }
    }
}

/// `true` when a marker stands anywhere in `v` (no allocation: most configs have none).
fn has_marker(v: &Value, depth: usize) -> bool {
    match v {
        _ if depth > 64 => false,
        Value::Object(m) => v.is_ai_marker() || m.iter().any(|(_, v)| has_marker(v, depth + 1)),
        Value::Array(a) => a.iter().any(|v| has_marker(v, depth + 1)),
        _ => false,
    }
}

fn collect(v: &Value, path: &str, ptr: &str, depth: usize, out: &mut Vec<Marker>) {
    if depth > 64 {
        return;
    }
    if v.is_ai_marker() {
        out.push(Marker {
            path: path.to_owned(),
            pointer: ptr.to_owned(),
        });
        return;
    }
    match v {
        Value::Object(m) => {
            for e in m.entries() {
                collect(
                    &e.value,
                    &format!("{path}.{}", e.key),
                    &format!("{ptr}/{}", tok(&e.key)),
                    depth + 1,
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (k, item) in a.iter().enumerate() {
                collect(
                    item,
                    &format!("{path}.{k}"),
                    &format!("{ptr}/{k}"),
                    depth + 1,
                    out,
                );
            }
        }
        _ => {}
    }
}

/// flow-format §6: where markers may stand.
fn allowed(kind: NodeKind, path: &str) -> bool {
    let head = path.split('.').next().unwrap_or("");
    match kind {
        NodeKind::SendText => path == "message",
        NodeKind::SendTemplate => head == "parameters" || head == "template_params",
        NodeKind::SendInteractive => matches!(path, "body_text" | "header_text" | "footer_text"),
        NodeKind::Webhook => {
            path == "url"
                || (path.contains('.')
                    && matches!(head, "headers" | "body_template" | "body" | "request_body"))
        }
        NodeKind::Pipedream => path.contains('.') && head == "configured_props",
        NodeKind::Start
        | NodeKind::WaitForResponse
        | NodeKind::Decide
        | NodeKind::Function
        | NodeKind::SetVariable
        | NodeKind::Call
        | NodeKind::Agent
        | NodeKind::Handoff
        | NodeKind::EmitEvent => false,
    }
}

/// The `ai_field_config` entry for a marker path (`template_params.*` and `parameters.*` are
/// aliases; so are the webhook body spellings, `request_body` looked up as `body_template`).
fn entry_for<'a>(entries: &'a Map, path: &str) -> Option<&'a Value> {
    entries
        .get(path)
        .or_else(|| alias_path(path).and_then(|p| entries.get(&p)))
}

fn alias_path(path: &str) -> Option<String> {
    let (head, rest) = path
        .split_once('.')
        .map_or((path, None), |(h, r)| (h, Some(r)));
    let other = match head {
        "parameters" => "template_params",
        "template_params" => "parameters",
        "body_template" => "body",
        "body" | "request_body" => "body_template",
        _ => return None,
    };
    Some(match rest {
        Some(r) => format!("{other}.{r}"),
        None => other.to_owned(),
    })
}

/// Follows a dot path from the config root (segments are keys or array indices).
fn resolve<'a>(config: &'a Map, path: &str) -> Option<&'a Value> {
    let mut segs = path.split('.');
    let mut cur = config.get(segs.next()?)?;
    for s in segs {
        cur = match cur {
            Value::Object(m) => m.get(s)?,
            Value::Array(a) => a.get(s.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}
