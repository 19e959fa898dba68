//! Parsing of the WhatsApp Business Account webhook payload (pure, no I/O).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_runtime::store::DeliveryStatus;
use switchboard_runtime::{InboundMessage, Reply, Timestamp};

/// What a webhook delivery carries, in payload order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvents {
    /// Inbound messages, normalised (text per runtime-semantics §4.3).
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses of messages the business sent.
    pub statuses: Vec<Status>,
    /// Messages or statuses dropped because they lacked what identifies them (a message without
    /// `id` or `from`, a change without `metadata.phone_number_id`, a status without `id` or
    /// `status`, or an entry that is not an object).
    pub skipped: usize,
}

/// A delivery status of a sent message (`statuses[]` of a `messages` change).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The WhatsApp message id (`wamid…`) the status is about.
    pub message_id: String,
    /// The business number that sent it.
    pub phone_number_id: String,
    /// The recipient (`recipient_id`, a WhatsApp id without `+`).
    pub recipient_id: String,
    /// `sent`, `delivered`, `read`, `failed` (or whatever else Meta sends, verbatim).
    pub status: String,
    /// When it happened.
    pub timestamp: Option<Timestamp>,
    /// The conversation id (`conversation.id`), when given.
    pub conversation_id: Option<String>,
    /// Errors of a `failed` status.
    pub errors: Vec<StatusError>,
    /// What the message carried as `biz_opaque_callback_data` (Switchboard sends its outbox
    /// record id there).
    pub biz_opaque_callback_data: Option<String>,
}

impl Status {
    /// The runtime's view of the status (what the engine records on the outbox record).
    pub fn to_delivery_status(&self, received_at: Timestamp) -> DeliveryStatus {
        DeliveryStatus {
            message_id: self.message_id.clone(),
            status: self.status.clone(),
            at: self.timestamp.unwrap_or(received_at),
            recipient_id: self.recipient_id.clone(),
            phone_number_id: self.phone_number_id.clone(),
            outbox_id: self.biz_opaque_callback_data.clone(),
            errors: self
                .errors
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect(),
        }
    }
}

/// An error of a `failed` status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    /// Graph error code, e.g. `131047`.
    pub code: Option<i64>,
    /// Short title.
    pub title: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
}

/// Why a webhook body was rejected as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookError {
    /// The body is not JSON.
    InvalidJson(String),
    /// `object` is not `whatsapp_business_account`.
    WrongObject(String),
    /// The JSON does not have the webhook shape (no `entry` array, …).
    Malformed(String),
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookError::InvalidJson(e) => write!(f, "webhook body is not JSON: {e}"),
            WebhookError::WrongObject(o) => {
                write!(
                    f,
                    "webhook object is `{o}`, not `whatsapp_business_account`"
                )
            }
            WebhookError::Malformed(e) => write!(f, "webhook payload is malformed: {e}"),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Parses a WhatsApp Business Account webhook body.
///
/// Every `entry[].changes[]` with `field: "messages"` contributes its `messages` and `statuses`;
/// other fields (account updates, template status, …) are ignored. Each message becomes an
/// [`InboundMessage`] with `kind` = its `type` verbatim, `phone_number_id` from the change's
/// metadata, `profile_name` from the contact whose `wa_id` is the sender (else the only contact),
/// and `text`:
///
/// | type | text | reply |
/// |---|---|---|
/// | `text` | `text.body` | — |
/// | `interactive` `button_reply` / `list_reply` | the title | `{button_reply|list_reply, id, title}` |
/// | `interactive`, other (e.g. `nfm_reply`) | `""` | — |
/// | `button` (template quick reply) | `button.text` | `{button, id: payload, title: text}` |
/// | `image`, `video`, `audio`, `document`, `sticker` | the caption or `""` | — |
/// | `location` | `"<latitude>,<longitude>"` (JSON number text) | — |
/// | `reaction` | `""`: a reaction is not user input (runtime-semantics §4.3 "otherwise") | — |
/// | `contacts`, `order`, `system`, `unsupported`, unknown | `""` | — |
///
/// `timestamp` (unix seconds, a string or a number) becomes a [`Timestamp`]; an unreadable one is
/// `None`. Items lacking their identity are counted in [`WebhookEvents::skipped`]; a body that is
/// not JSON, not a WhatsApp Business Account object or without an `entry` array is an error.
/// Never panics.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvents, WebhookError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidJson(e.to_string()))?;
    let Some(root) = root.as_object() else {
        return Err(WebhookError::Malformed(
            "the body is not a JSON object".into(),
        ));
    };
    match root.get("object") {
        Some(Value::String(o)) if o == "whatsapp_business_account" => {}
        Some(Value::String(o)) => return Err(WebhookError::WrongObject(o.clone())),
        Some(_) => return Err(WebhookError::Malformed("`object` is not a string".into())),
        None => return Err(WebhookError::Malformed("no `object`".into())),
    }
    let Some(entries) = root.get("entry").and_then(Value::as_array) else {
        return Err(WebhookError::Malformed("no `entry` array".into()));
    };
    let mut events = WebhookEvents::default();
    for entry in entries {
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            events.skipped += 1;
            continue;
        };
        for change in changes {
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                continue;
            }
            let Some(value) = change.get("value").and_then(Value::as_object) else {
                events.skipped += 1;
                continue;
            };
            parse_change(value, &mut events);
        }
    }
    Ok(events)
}

fn parse_change(value: &Map<String, Value>, events: &mut WebhookEvents) {
    let messages = array(value.get("messages"));
    let statuses = array(value.get("statuses"));
    let phone_number_id = value
        .get("metadata")
        .and_then(|m| m.get("phone_number_id"))
        .and_then(string)
        .filter(|s| !s.is_empty());
    let Some(phone_number_id) = phone_number_id else {
        events.skipped += messages.len() + statuses.len();
        return;
    };
    let contacts = array(value.get("contacts"));
    for message in messages {
        match parse_message(message, &phone_number_id, contacts) {
            Some(m) => events.messages.push(m),
            None => events.skipped += 1,
        }
    }
    for status in statuses {
        match parse_status(status, &phone_number_id) {
            Some(s) => events.statuses.push(s),
            None => events.skipped += 1,
        }
    }
}

fn parse_message(
    message: &Value,
    phone_number_id: &str,
    contacts: &[Value],
) -> Option<InboundMessage> {
    let id = message
        .get("id")
        .and_then(string)
        .filter(|s| !s.is_empty())?;
    let from = message
        .get("from")
        .and_then(string)
        .filter(|s| !s.is_empty())?;
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (text, reply) = message_text(message, &kind);
    let profile_name = profile_name(contacts, &from);
    // The interactive object (button, list and WhatsApp Flow replies) as sent, for the
    // `interactive_data` of function requests.
    let interactive = (kind == "interactive")
        .then(|| {
            message
                .get("interactive")
                .filter(|i| i.is_object())
                .cloned()
        })
        .flatten();
    Some(InboundMessage {
        id,
        phone_number_id: phone_number_id.to_owned(),
        from,
        profile_name,
        kind,
        text,
        reply,
        timestamp: message.get("timestamp").and_then(timestamp),
        interactive,
    })
}

/// The text (runtime-semantics §4.3) and interactive reply of a message of type `kind`.
fn message_text(message: &Value, kind: &str) -> (String, Option<Reply>) {
    let field = |a: &str, b: &str| -> Option<String> {
        message.get(a).and_then(|o| o.get(b)).and_then(string)
    };
    match kind {
        "text" => (field("text", "body").unwrap_or_default(), None),
        "interactive" => {
            let interactive = message.get("interactive");
            let reply_type = interactive
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !matches!(reply_type, "button_reply" | "list_reply") {
                return (String::new(), None);
            }
            let Some(object) = interactive
                .and_then(|i| i.get(reply_type))
                .filter(|o| o.is_object())
            else {
                return (String::new(), None);
            };
            let get = |k: &str| object.get(k).and_then(string).unwrap_or_default();
            let title = get("title");
            let reply = Reply {
                kind: reply_type.to_owned(),
                id: get("id"),
                title: title.clone(),
            };
            (title, Some(reply))
        }
        "button" => {
            let text = field("button", "text").unwrap_or_default();
            let reply = Reply {
                kind: "button".to_owned(),
                id: field("button", "payload").unwrap_or_default(),
                title: text.clone(),
            };
            (text, Some(reply))
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            (field(kind, "caption").unwrap_or_default(), None)
        }
        "location" => {
            let location = message.get("location");
            let coordinate = |k: &str| match location.and_then(|l| l.get(k)) {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            };
            let text = match (coordinate("latitude"), coordinate("longitude")) {
                (Some(lat), Some(lon)) => format!("{lat},{lon}"),
                _ => String::new(),
            };
            (text, None)
        }
        _ => (String::new(), None),
    }
}

fn profile_name(contacts: &[Value], from: &str) -> Option<String> {
    let name = |c: &Value| {
        c.get("profile")
            .and_then(|p| p.get("name"))
            .and_then(string)
    };
    contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(string).as_deref() == Some(from))
        .and_then(name)
        .or_else(|| match contacts {
            [only] => name(only),
            _ => None,
        })
}

fn parse_status(status: &Value, phone_number_id: &str) -> Option<Status> {
    let message_id = status
        .get("id")
        .and_then(string)
        .filter(|s| !s.is_empty())?;
    let kind = status
        .get("status")
        .and_then(string)
        .filter(|s| !s.is_empty())?;
    let errors = array(status.get("errors"))
        .iter()
        .map(|e| StatusError {
            code: e.get("code").and_then(|c| match c {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }),
            title: e.get("title").and_then(string),
            message: e.get("message").and_then(string),
            details: e
                .get("error_data")
                .and_then(|d| d.get("details"))
                .and_then(string),
        })
        .collect();
    Some(Status {
        message_id,
        phone_number_id: phone_number_id.to_owned(),
        recipient_id: status
            .get("recipient_id")
            .and_then(string)
            .unwrap_or_default(),
        status: kind,
        timestamp: status.get("timestamp").and_then(timestamp),
        conversation_id: status
            .get("conversation")
            .and_then(|c| c.get("id"))
            .and_then(string),
        errors,
        biz_opaque_callback_data: status.get("biz_opaque_callback_data").and_then(string),
    })
}

fn array(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// A string, or a number's text (ids sometimes arrive as numbers).
fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Unix seconds (string or integer) → milliseconds, `None` when unreadable or out of range.
fn timestamp(value: &Value) -> Option<Timestamp> {
    let seconds = match value {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    seconds.checked_mul(1000).map(Timestamp)
}
