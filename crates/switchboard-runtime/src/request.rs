//! The values of the engine's operations (runtime-semantics §10): start and resume requests, a
//! normalised inbound message, what a dispatch did, and the API view of an execution. Plain
//! serializable data; the engine and the turn both use them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::state::{Status, WaitingReason};
use crate::time::Timestamp;

/// A request to start an execution (API trigger).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Flow id or slug.
    pub flow: String,
    /// The contact's number, E.164.
    pub phone_number: String,
    /// The business number.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// Initial `vars`.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Extra `context` keys.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Request metadata (`metadata.request`).
    #[serde(default)]
    pub request: Option<Value>,
    /// Repeating the key within 24 h returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// An inbound WhatsApp message, normalised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// WhatsApp message id (deduplication key).
    pub id: String,
    /// The business number it arrived on.
    pub phone_number_id: String,
    /// The sender, E.164 (`+` optional).
    pub from: String,
    /// The sender's profile name.
    #[serde(default)]
    pub profile_name: Option<String>,
    /// `text`, `interactive`, `button`, `image`, `location`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Text (§4.3).
    #[serde(default)]
    pub text: String,
    /// For interactive replies: `{type, id, title}`.
    #[serde(default)]
    pub reply: Option<Reply>,
    /// For interactive messages: the `interactive` object as WhatsApp sent it
    /// (`{type: "nfm_reply", nfm_reply: {…}}`), kept for the function payload's
    /// `interactive_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Value>,
    /// When it was sent.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

/// An interactive reply (`vars.last_user_reply`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `button_reply`, `list_reply` or `button` (template quick reply).
    #[serde(rename = "type")]
    pub kind: String,
    /// Button/row id (template quick reply: its payload).
    pub id: String,
    /// Title.
    pub title: String,
}

/// A resume request (API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// The execution.
    pub execution_id: String,
    /// `{kind: "payload", data}`: a string is the text; an object is stored as is.
    #[serde(default)]
    pub message: Option<Value>,
    /// Merged into `vars` first.
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// What an operation returns about an execution (runtime-semantics §10 `get_execution`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// Id.
    pub id: String,
    /// `{id, name, version}`.
    pub flow: Value,
    /// Status.
    pub status: Status,
    /// Waiting reason.
    pub waiting_reason: Option<WaitingReason>,
    /// Current node.
    pub current_node_id: Option<String>,
    /// Tracking id.
    pub tracking_id: String,
    /// Conversation.
    pub conversation_id: String,
    /// Parent.
    pub parent_execution_id: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Last event (RFC 3339).
    pub last_event_at: String,
    /// End (RFC 3339).
    pub ended_at: Option<String>,
    /// Failure.
    pub error_details: Option<Value>,
    /// `{vars, system, context, metadata}` (redacted).
    pub execution_context: Value,
}

/// What happened in one inbound dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatch {
    /// The message id was seen before: dropped.
    Duplicate,
    /// A new execution was started.
    Started(String),
    /// A waiting execution was resumed.
    Resumed(String),
    /// The execution is in handoff: recorded as `inbound_ignored`.
    Ignored(String),
    /// No execution and no active trigger: dropped.
    Dropped,
}

/// The conversation id of a contact on a business number.
pub fn conversation_id(phone_number_id: &str, phone_number: &str) -> String {
    format!("{phone_number_id}:{}", phone_number.trim_start_matches('+'))
}

/// Normalises a phone number to E.164 with `+` (digits only, 7–15 of them).
pub fn normalise_phone(s: &str) -> Option<String> {
    let t = s.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    (digits.len() >= 7 && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}
