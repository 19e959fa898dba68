//! Execution and conversation state: plain serializable values (runtime-semantics §1, §2, §5).
//!
//! An execution's whole state is one [`Execution`] value; a conversation's is one
//! [`Conversation`]. The engine loads them, runs a turn, and commits them back, so a turn can run
//! in any process that reaches the store.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// JSON object used for the `vars`, `context` and `metadata` namespaces.
pub type Object = Map<String, Value>;

/// Execution status (runtime-semantics §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A turn is running.
    Running,
    /// Paused until input (see [`WaitingReason`]).
    Waiting,
    /// Handed to a human; inbound messages are recorded, not processed.
    Handoff,
    /// Finished (terminal).
    Ended,
    /// Failed (terminal).
    Failed,
}

impl Status {
    /// `running`, `waiting` or `handoff`.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Waiting | Status::Handoff)
    }

    /// `ended` or `failed`.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// The spelling used in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Handoff => "handoff",
            Status::Ended => "ended",
            Status::Failed => "failed",
        }
    }
}

/// Why a waiting execution waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingReason {
    /// At a `wait_for_response` node.
    WaitForResponse,
    /// Between agent turns.
    Agent,
    /// Suspended on a `call` node while the child runs.
    Call,
    /// Resumed by an operator after a handoff node.
    HandoffResumed,
}

impl WaitingReason {
    /// The spelling used in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingReason::WaitForResponse => "wait_for_response",
            WaitingReason::Agent => "agent",
            WaitingReason::Call => "call",
            WaitingReason::HandoffResumed => "handoff_resumed",
        }
    }
}

/// How an execution was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    /// An inbound WhatsApp message on the trigger's number.
    InboundMessage,
    /// The start operation of the API.
    ApiCall,
}

impl TriggerType {
    /// The spelling used in `system.trigger_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::InboundMessage => "inbound_message",
            TriggerType::ApiCall => "api_call",
        }
    }
}

/// The contact of a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// WhatsApp id (the number without `+`).
    pub wa_id: String,
    /// Name as saved by the business, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// WhatsApp profile name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

/// Direction of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the contact.
    Inbound,
    /// From the business.
    Outbound,
}

/// One message of a conversation's history: what prompts, agents and the `whatsapp_context`
/// of function requests need of it (type, content, reply id and title, media flag, delivery
/// status). Fields added after the first release default when a stored message lacks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// WhatsApp message id.
    pub id: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Message type as WhatsApp names it (`text`, `interactive`, `button`, `template`,
    /// `image`, `location`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its text (runtime-semantics §4.3): the body, a caption, a tapped reply's title,
    /// `"lat,lng"`, or an outbound message's text.
    pub text: String,
    /// When it was sent or received.
    pub at: Timestamp,
    /// A tapped button's or list row's id (a template quick reply: its payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<String>,
    /// A tapped button's or list row's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_title: Option<String>,
    /// Inbound: `button_reply`, `list_reply` or `nfm_reply`; outbound: the interactive
    /// message's type (`button`, `list`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_type: Option<String>,
    /// The reply object as WhatsApp sent it (`{id, title, description}` of a list row, a
    /// WhatsApp Flow's `nfm_reply`), when the message came through a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_data: Option<Value>,
    /// The message carries media (image, video, audio, document, sticker).
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_media: bool,
    /// Delivery status: `received` (inbound); `sent`, then what WhatsApp reports (`delivered`,
    /// `read`, `failed`) for outbound messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_at: Option<Timestamp>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl HistoryMessage {
    /// A message with its id, direction, type, text and time (and nothing else known).
    pub fn new(
        id: impl Into<String>,
        direction: Direction,
        kind: impl Into<String>,
        text: impl Into<String>,
        at: Timestamp,
    ) -> HistoryMessage {
        HistoryMessage {
            id: id.into(),
            direction,
            kind: kind.into(),
            text: text.into(),
            at,
            reply_id: None,
            reply_title: None,
            interactive_type: None,
            interactive_data: None,
            has_media: false,
            status: None,
            status_at: None,
        }
    }
}

/// A conversation: one contact talking to one business number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Conversation id.
    pub id: String,
    /// The contact's number, E.164 with `+`.
    pub phone_number: String,
    /// The business number (Meta phone-number id).
    pub phone_number_id: String,
    /// The contact.
    pub contact: Contact,
    /// The most recent messages (bounded by the engine's history window), oldest first. Each
    /// is shared (`Arc`): copying a conversation copies no message (change one with
    /// [`Arc::make_mut`]); stored as plain JSON objects all the same.
    pub messages: Vec<Arc<HistoryMessage>>,
    /// When the contact last wrote.
    pub last_inbound_at: Option<Timestamp>,
    /// The innermost active execution, if any.
    pub active_execution_id: Option<String>,
    /// When the conversation was first stored (unknown for conversations stored before this
    /// field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Optimistic-concurrency version (0: never stored).
    pub version: u64,
}

impl Conversation {
    /// A new conversation.
    pub fn new(
        id: String,
        phone_number: String,
        phone_number_id: String,
        contact: Contact,
    ) -> Conversation {
        Conversation {
            id,
            phone_number,
            phone_number_id,
            contact,
            messages: Vec::new(),
            last_inbound_at: None,
            active_execution_id: None,
            created_at: None,
            version: 0,
        }
    }

    /// The same conversation, first stored at `at`.
    pub fn created(mut self, at: Timestamp) -> Conversation {
        self.created_at = Some(at);
        self
    }

    /// Appends a message, keeping at most `window` messages.
    pub fn record(&mut self, message: HistoryMessage, window: usize) {
        if message.direction == Direction::Inbound {
            self.last_inbound_at = Some(message.at);
        }
        if window == 0 {
            return;
        }
        if self.messages.len() >= window {
            let excess = self.messages.len() + 1 - window;
            self.messages.drain(..excess);
        }
        self.messages.push(Arc::new(message));
    }
}

/// A pending wait timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The wait node.
    pub node_id: String,
    /// When it fires.
    pub due_at: Timestamp,
    /// The activation of the wait node it belongs to: a timer firing after the activation ended
    /// is ignored.
    pub activation: u64,
    /// The configured timeout.
    pub timeout_seconds: u64,
}

/// `system.last_resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResume {
    /// `user_input`, `timeout`, `api`, `child`, `operator`.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A message of an agent transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text content.
    #[serde(default)]
    pub content: String,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with a role and text.
    pub fn new(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.to_owned(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool call requested by a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id (echoed in the tool result).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments (a JSON object).
    pub arguments: Value,
}

/// The state of an agent activation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    /// The agent node.
    pub node_id: String,
    /// The transcript (system prompt first).
    pub transcript: Vec<ChatMessage>,
    /// MCP tools listed when the activation started: `(server index, tool)`.
    #[serde(default)]
    pub mcp_tools: Vec<(usize, String, String, Value)>,
}

/// One run of one flow on one conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Execution id.
    pub id: String,
    /// The flow's id.
    pub flow_id: String,
    /// The flow's name.
    pub flow_name: String,
    /// The flow version it runs (an execution stays on it).
    pub flow_version: String,
    /// The conversation.
    pub conversation_id: String,
    /// Status.
    pub status: Status,
    /// Why it waits.
    pub waiting_reason: Option<WaitingReason>,
    /// The node running or waited on.
    pub current_node_id: Option<String>,
    /// `vars`
    pub vars: Object,
    /// `context`
    pub context: Object,
    /// `metadata`
    pub metadata: Object,
    /// How it started.
    pub trigger_type: TriggerType,
    /// Tracking id.
    pub tracking_id: String,
    /// The parent, for a child started by `call`.
    pub parent_execution_id: Option<String>,
    /// The running child, while waiting on a `call`.
    pub child_execution_id: Option<String>,
    /// Flow ids of the callers, outermost first.
    pub call_stack: Vec<String>,
    /// 0 for a top-level execution.
    pub call_depth: u32,
    /// Start time.
    pub started_at: Timestamp,
    /// Time of the last event.
    pub last_event_at: Timestamp,
    /// End time (ended or failed).
    pub ended_at: Option<Timestamp>,
    /// `system.last_resume`
    pub last_resume: Option<LastResume>,
    /// The failure, when failed.
    pub error_details: Option<Value>,
    /// The pending wait timeout.
    pub timer: Option<Timer>,
    /// Counts node activations (binds timers to the activation that set them).
    pub activation: u64,
    /// The current agent activation.
    pub agent: Option<AgentState>,
    /// Events emitted by `emit_event`, by name (limits: 10 in all, 3 per name).
    pub emitted: Vec<(String, u32)>,
    /// A status change requested while running, applied when the current node finishes.
    pub pending_status: Option<Status>,
    /// Names of the secrets used, for redaction.
    pub secrets_used: Vec<String>,
    /// Sequence number of the last event.
    pub event_seq: u64,
    /// An effect (a message, a project event) committed but not yet carried out: the turn
    /// continues once it is (after a crash, or when a scheduled send is due, another turn
    /// picks it up from the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_effect: Option<PendingEffect>,
    /// Effects created so far (numbers the outbox records `<execution id>.<n>`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub effects: u64,
    /// Optimistic-concurrency version (0: never stored).
    pub version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a pending effect is for: how the turn continues once it is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// A `send_text`, `send_template` or `send_interactive` node's message.
    Send,
    /// An agent's message (assistant text or `send_media`): the agent loop goes on.
    AgentMessage,
    /// An `emit_event` node's project event.
    Emit,
}

/// An effect committed as an outbox record and not yet carried out (runtime invariant: nothing
/// leaves the process before the state that produced it is committed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEffect {
    /// The outbox record (`<execution id>.<n>`).
    pub outbox_id: String,
    /// The node producing it.
    pub node_id: String,
    /// What the turn does once it is carried out.
    pub kind: EffectKind,
    /// The action name of its events (`send_text`, `send_media`, `emit_event`, …).
    pub action: String,
    /// When a worker may take the effect up: the end of a scheduled delay, or — for an effect
    /// being carried out — when to try again if a crash interrupted it and no delivery status
    /// has settled it.
    pub due_at: Timestamp,
    /// The agent tool call it answers, if an agent tool sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}
