//! The Graph API JSON of each outbound message kind (pure functions).

use serde_json::{Map, Value, json};
use switchboard_runtime::FailureKind;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, Interactive, InteractiveHeader, OutboundBody, OutboundMessage,
};

/// Media types a media message or an interactive header may carry.
const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// The JSON body of `POST /{phone_number_id}/messages` for `message`.
///
/// * The recipient is sent without a leading `+` (and without surrounding spaces).
/// * Text messages carry `preview_url: false`.
/// * Templates use `language_code` (the messenger's configured code, e.g. `en_US`) and the
///   parameter mapping of [`template_parameters`]; a template without parameters has no
///   `components`.
/// * Interactive messages omit absent headers and footers; a `location_request_message` carries
///   only its body and the `send_location` action (the Graph API accepts nothing else there).
/// * Media captions are sent for `image`, `video` and `document` only (the Graph API rejects
///   captions on `audio` and `sticker`).
///
/// Errors (`invalid_request`): an unknown interactive type or media type, or an interactive
/// message missing what its type needs (list button text or sections, CTA, flow parameters,
/// buttons).
pub fn message_payload(message: &OutboundMessage, language_code: &str) -> AdapterResult<Value> {
    let to = message.to.trim().trim_start_matches('+');
    if to.is_empty() {
        return Err(invalid("the recipient (`to`) is empty"));
    }
    let (kind, content) = match &message.body {
        OutboundBody::Text { text } => ("text", json!({"body": text, "preview_url": false})),
        OutboundBody::Template {
            template_id,
            parameters,
        } => (
            "template",
            template(template_id, parameters, language_code)?,
        ),
        OutboundBody::Interactive(interactive) => ("interactive", self::interactive(interactive)?),
        OutboundBody::Media {
            media_type,
            url,
            caption,
        } => {
            let media_type = media_kind(media_type)?;
            let mut object = Map::new();
            object.insert("link".to_owned(), Value::from(url.as_str()));
            if let Some(caption) = caption
                && matches!(media_type, "image" | "video" | "document")
            {
                object.insert("caption".to_owned(), Value::from(caption.as_str()));
            }
            (media_type, Value::Object(object))
        }
    };
    let mut body = Map::new();
    body.insert("messaging_product".to_owned(), json!("whatsapp"));
    body.insert("recipient_type".to_owned(), json!("individual"));
    body.insert("to".to_owned(), Value::from(to));
    body.insert("type".to_owned(), Value::from(kind));
    body.insert(kind.to_owned(), content);
    Ok(Value::Object(body))
}

/// Maps rendered template parameters to body parameters (runtime-semantics §11 Open 1).
///
/// * An array: positional parameters, in order.
/// * An object: keys `"1"`, `"2"`, … (positive integers) are positional, ordered by number;
///   every other key is a named parameter (`parameter_name`), in the object's order, after the
///   positional ones.
/// * `null` or an empty array/object: no parameters. Any other scalar: one positional parameter.
///
/// Values become text: strings as they are, `null` as `""`, numbers and booleans as JSON text,
/// arrays and objects as compact JSON.
pub fn template_parameters(parameters: &Value) -> Vec<Value> {
    match parameters {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(positional).collect(),
        Value::Object(map) => {
            let mut numbered: Vec<(u64, &Value)> = Vec::new();
            let mut named: Vec<(&String, &Value)> = Vec::new();
            for (key, value) in map {
                match key.parse::<u64>() {
                    Ok(n) if n > 0 && !key.starts_with('+') => numbered.push((n, value)),
                    _ => named.push((key, value)),
                }
            }
            numbered.sort_by_key(|(n, _)| *n);
            numbered
                .into_iter()
                .map(|(_, v)| positional(v))
                .chain(named.into_iter().map(|(k, v)| {
                    json!({"type": "text", "parameter_name": k, "text": parameter_text(v)})
                }))
                .collect()
        }
        other => vec![positional(other)],
    }
}

fn positional(value: &Value) -> Value {
    json!({"type": "text", "text": parameter_text(value)})
}

fn parameter_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn template(name: &str, parameters: &Value, language_code: &str) -> AdapterResult<Value> {
    if name.trim().is_empty() {
        return Err(invalid("the template name is empty"));
    }
    let mut object = Map::new();
    object.insert("name".to_owned(), Value::from(name));
    object.insert("language".to_owned(), json!({ "code": language_code }));
    let parameters = template_parameters(parameters);
    if !parameters.is_empty() {
        object.insert(
            "components".to_owned(),
            json!([{"type": "body", "parameters": parameters}]),
        );
    }
    Ok(Value::Object(object))
}

fn interactive(message: &Interactive) -> AdapterResult<Value> {
    let kind = message.interactive_type.as_str();
    let action = match kind {
        "button" => {
            if message.buttons.is_empty() {
                return Err(invalid("a button message without buttons"));
            }
            let buttons: Vec<Value> = message
                .buttons
                .iter()
                .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                .collect();
            json!({ "buttons": buttons })
        }
        "list" => {
            let Some(button) = &message.list_button_text else {
                return Err(invalid("a list message without list_button_text"));
            };
            if message.sections.is_empty() {
                return Err(invalid("a list message without sections"));
            }
            let sections: Vec<Value> = message
                .sections
                .iter()
                .map(|section| {
                    let mut object = Map::new();
                    if let Some(title) = &section.title {
                        object.insert("title".to_owned(), Value::from(title.as_str()));
                    }
                    let rows: Vec<Value> = section
                        .rows
                        .iter()
                        .map(|row| {
                            let mut r = Map::new();
                            r.insert("id".to_owned(), Value::from(row.id.as_str()));
                            r.insert("title".to_owned(), Value::from(row.title.as_str()));
                            if let Some(description) = &row.description {
                                r.insert(
                                    "description".to_owned(),
                                    Value::from(description.as_str()),
                                );
                            }
                            Value::Object(r)
                        })
                        .collect();
                    object.insert("rows".to_owned(), Value::Array(rows));
                    Value::Object(object)
                })
                .collect();
            json!({"button": button, "sections": sections})
        }
        "cta_url" => {
            let Some(cta) = &message.cta else {
                return Err(invalid("a cta_url message without cta"));
            };
            json!({
                "name": "cta_url",
                "parameters": {"display_text": cta.display_text, "url": cta.url}
            })
        }
        "flow" => {
            let Some(flow) = &message.flow else {
                return Err(invalid("a flow message without flow parameters"));
            };
            let mut parameters = Map::new();
            parameters.insert("flow_message_version".to_owned(), json!("3"));
            parameters.insert(
                "flow_token".to_owned(),
                Value::from(flow.flow_token.as_str()),
            );
            parameters.insert("flow_id".to_owned(), Value::from(flow.flow_id.as_str()));
            parameters.insert("flow_cta".to_owned(), Value::from(flow.flow_cta.as_str()));
            parameters.insert(
                "flow_action".to_owned(),
                Value::from(flow.flow_action.as_str()),
            );
            if let Some(payload) = &flow.flow_action_payload {
                parameters.insert("flow_action_payload".to_owned(), payload.clone());
            }
            json!({"name": "flow", "parameters": parameters})
        }
        "location_request_message" => {
            return Ok(json!({
                "type": "location_request_message",
                "body": {"text": message.body},
                "action": {"name": "send_location"}
            }));
        }
        other => {
            return Err(invalid(format!("unknown interactive type `{other}`")));
        }
    };
    let mut object = Map::new();
    object.insert("type".to_owned(), Value::from(kind));
    if let Some(header) = &message.header {
        object.insert("header".to_owned(), self::header(header)?);
    }
    object.insert("body".to_owned(), json!({ "text": message.body }));
    if let Some(footer) = &message.footer {
        object.insert("footer".to_owned(), json!({ "text": footer }));
    }
    object.insert("action".to_owned(), action);
    Ok(Value::Object(object))
}

fn header(header: &InteractiveHeader) -> AdapterResult<Value> {
    match header.kind.as_str() {
        "text" => Ok(json!({"type": "text", "text": header.value})),
        kind @ ("image" | "video" | "document") => {
            let mut object = Map::new();
            object.insert("type".to_owned(), Value::from(kind));
            object.insert(kind.to_owned(), json!({ "link": header.value }));
            Ok(Value::Object(object))
        }
        other => Err(invalid(format!(
            "unknown interactive header type `{other}`"
        ))),
    }
}

fn media_kind(media_type: &str) -> AdapterResult<&'static str> {
    MEDIA_TYPES
        .iter()
        .copied()
        .find(|t| *t == media_type)
        .ok_or_else(|| invalid(format!("unknown media type `{media_type}`")))
}

fn invalid(message: impl Into<String>) -> AdapterError {
    AdapterError::new(FailureKind::InvalidRequest, message)
}
