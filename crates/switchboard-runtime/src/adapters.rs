//! The adapter traits: the only way the engine reaches the world, and [`Adapters`], the set an
//! engine is built with.
//!
//! Every trait is small, `Send + Sync` and object safe (`Arc<dyn Messenger>`), and has an
//! offline implementation in [`crate::offline`], used only when asked for
//! ([`Adapters::offline`](crate::offline), `EngineBuilder::offline`). A family nobody
//! configured is [`Unconfigured`]: its calls fail. The production clock, secrets and ids live
//! here ([`SystemClock`], [`EnvSecrets`], [`UniqueIds`]); real network implementations
//! (WhatsApp Cloud API, LLM providers, HTTP, MCP, databases) live in their own crates.

mod ids;
mod system;
mod unconfigured;

pub use ids::{IdGenerator, SequentialIds, UniqueIds};
pub use system::{EnvSecrets, SystemClock};
pub use unconfigured::{Family, Unconfigured};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::{Failure, FailureKind};
use crate::state::{ChatMessage, ToolCall};
use crate::time::Timestamp;

/// What went wrong in an adapter. The kinds are the failure kinds of runtime-semantics §6.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind}: {message}")]
pub struct AdapterError {
    /// Usually [`FailureKind::Transport`], [`FailureKind::Timeout`],
    /// [`FailureKind::HttpStatus`], [`FailureKind::InvalidJson`],
    /// [`FailureKind::InvalidRequest`], [`FailureKind::NotFound`] or [`FailureKind::Adapter`].
    pub kind: FailureKind,
    /// What happened (no secrets).
    pub message: String,
    /// The HTTP status, for `http_status`.
    pub status: Option<u16>,
}

impl AdapterError {
    /// An error of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> AdapterError {
        AdapterError {
            kind,
            message: message.into(),
            status: None,
        }
    }

    /// A non-2xx HTTP status.
    pub fn http_status(status: u16, message: impl Into<String>) -> AdapterError {
        AdapterError {
            kind: FailureKind::HttpStatus,
            message: message.into(),
            status: Some(status),
        }
    }
}

impl From<AdapterError> for Failure {
    fn from(e: AdapterError) -> Self {
        Failure {
            kind: e.kind,
            message: e.message,
            status: e.status,
        }
    }
}

/// Result of an adapter call.
pub type AdapterResult<T> = Result<T, AdapterError>;

// --- Messaging -------------------------------------------------------------------------------

/// A message to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Sending business number (`phone_number_id`, else `whatsapp_config_id`, else the
    /// conversation's).
    pub from: String,
    /// Recipient, E.164.
    pub to: String,
    /// The execution sending it.
    pub execution_id: String,
    /// The node sending it.
    pub node_id: String,
    /// What to send.
    pub body: OutboundBody,
    /// The outbox record it carries out (`<execution id>.<n>`): a messenger passes it along
    /// (WhatsApp echoes it in delivery statuses as `biz_opaque_callback_data`) so a status can
    /// name the record even when the send's answer was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The content of an outbound message.
// Messages are built once per send and moved to the messenger, never stored in bulk: boxing the
// large interactive variant would only add an allocation per send.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundBody {
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
    /// A template message.
    Template {
        /// Template id or name.
        template_id: String,
        /// Rendered parameters (object or array of strings).
        parameters: Value,
    },
    /// An interactive message.
    Interactive(Interactive),
    /// A media message (agent `send_media`).
    Media {
        /// `image`, `video`, `audio` or `document`.
        media_type: String,
        /// Absolute URL.
        url: String,
        /// Caption.
        caption: Option<String>,
    },
}

/// An interactive message, rendered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interactive {
    /// `button`, `list`, `cta_url`, `flow` or `location_request_message`.
    pub interactive_type: String,
    /// Body text.
    pub body: String,
    /// Header: `text`, `image`, `video` or `document`, with text or media URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    /// Footer text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Reply buttons `(id, title)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Choice>,
    /// List button text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_button_text: Option<String>,
    /// List sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<ListSection>,
    /// CTA button text and URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta: Option<Cta>,
    /// WhatsApp Flow parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowParameters>,
}

/// A header of an interactive message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InteractiveHeader {
    /// `text`, `image`, `video` or `document`.
    pub kind: String,
    /// Text (text header) or media URL.
    pub value: String,
}

/// A button or list row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Id returned in the reply.
    pub id: String,
    /// Title shown.
    pub title: String,
    /// Row description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A list section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Rows.
    pub rows: Vec<Choice>,
}

/// A call-to-action URL button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cta {
    /// Button text.
    pub display_text: String,
    /// URL.
    pub url: String,
}

/// WhatsApp Flow parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowParameters {
    /// Meta flow id.
    pub flow_id: String,
    /// Button label.
    pub flow_cta: String,
    /// Token.
    pub flow_token: String,
    /// `navigate` or `data_exchange`.
    pub flow_action: String,
    /// `{screen, data?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_action_payload: Option<Value>,
}

/// What a messenger returns for a sent message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The WhatsApp message id.
    pub message_id: String,
}

/// Sends WhatsApp messages.
#[async_trait]
pub trait Messenger: Send + Sync {
    /// Sends one message.
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt>;
}

// --- Language models -------------------------------------------------------------------------

/// Why the engine calls a model (lets offline models answer by purpose).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// A decide node choosing among labels.
    Decide {
        /// The node.
        node_id: String,
        /// Condition labels, in order.
        labels: Vec<String>,
        /// `label: description` lines.
        conditions: Vec<(String, String)>,
        /// The user's last input.
        last_user_input: String,
        /// The id of the last interactive reply (`vars.last_user_reply.id`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_reply_id: Option<String>,
    },
    /// An AI field.
    AiField {
        /// The node.
        node_id: String,
        /// The field path.
        path: String,
        /// The rendered prompt.
        prompt: String,
    },
    /// An agent turn.
    Agent {
        /// The node.
        node_id: String,
    },
    /// The agent's `ask_about_file` tool.
    AskAboutFile {
        /// The node.
        node_id: String,
    },
}

/// A tool offered to a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// A request to a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// `provider_model_id` or `provider_model_name`.
    pub model: String,
    /// Why.
    pub purpose: Purpose,
    /// The conversation with the model.
    pub messages: Vec<ChatMessage>,
    /// Tools offered.
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Maximum tokens of the answer.
    pub max_tokens: Option<i64>,
    /// Reasoning effort hint.
    pub reasoning_effort: Option<String>,
}

/// A model's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Text, if any.
    pub text: Option<String>,
    /// Tool calls, in order.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
}

/// A chat-completion model with tool calling.
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// One completion.
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse>;
}

// --- Functions, HTTP, MCP ------------------------------------------------------------------------

/// A function call (runtime-semantics §8). It borrows the execution's state: the JSON request
/// body of §8 is built only when an invoker asks for it ([`FunctionCall::payload`]), so an
/// in-process function reading `vars` costs no serialization.
pub struct FunctionCall<'a> {
    /// `function_id`, if set.
    pub function_id: Option<&'a str>,
    /// `function_slug`, if set.
    pub function_slug: Option<&'a str>,
    /// The execution (sent as `X-Switchboard-Execution-Id`).
    pub execution_id: &'a str,
    /// The node (sent as `X-Switchboard-Node-Id`).
    pub node_id: &'a str,
    /// The execution's `vars` (not redacted: in-process functions only).
    pub vars: &'a serde_json::Map<String, Value>,
    /// `available_edges` (decide in function mode).
    pub available_edges: Option<&'a [String]>,
    /// `input` (agent function tools).
    pub input: Option<&'a Value>,
    payload: &'a (dyn Fn() -> Value + Sync),
}

impl<'a> FunctionCall<'a> {
    /// A call whose JSON payload `payload` builds on demand.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        function_id: Option<&'a str>,
        function_slug: Option<&'a str>,
        execution_id: &'a str,
        node_id: &'a str,
        vars: &'a serde_json::Map<String, Value>,
        available_edges: Option<&'a [String]>,
        input: Option<&'a Value>,
        payload: &'a (dyn Fn() -> Value + Sync),
    ) -> FunctionCall<'a> {
        FunctionCall {
            function_id,
            function_slug,
            execution_id,
            node_id,
            vars,
            available_edges,
            input,
            payload,
        }
    }

    /// The JSON request body of runtime-semantics §8 (redacted).
    pub fn payload(&self) -> Value {
        (self.payload)()
    }
}

impl std::fmt::Debug for FunctionCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCall")
            .field("function_id", &self.function_id)
            .field("function_slug", &self.function_slug)
            .field("execution_id", &self.execution_id)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Calls functions. Resolution tries `function_id`, then `function_slug`; neither resolving is
/// a `not_found` error. A success is the parsed JSON response body.
#[async_trait]
pub trait FunctionInvoker: Send + Sync {
    /// Invokes the function.
    async fn invoke(&self, call: &FunctionCall<'_>) -> AdapterResult<Value>;
}

/// An HTTP request (webhook nodes and agent webhook tools).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Upper-case method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Option<Vec<u8>>,
    /// Total timeout.
    pub timeout: Duration,
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, repeated ones joined with `", "`.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Sends HTTP requests.
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends one request. Transport problems are errors; any status is a response.
    async fn send(&self, request: HttpRequest) -> AdapterResult<HttpResponse>;
}

/// An MCP server as configured on an agent (headers rendered).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    /// Server name (tools are offered as `<name>__<tool>`).
    pub name: String,
    /// Streamable-HTTP URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// Reaches MCP servers.
#[async_trait]
pub trait McpClient: Send + Sync {
    /// Lists a server's tools.
    async fn list_tools(&self, server: &McpServer) -> AdapterResult<Vec<ToolSpec>>;
    /// Calls one tool.
    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        arguments: Value,
    ) -> AdapterResult<Value>;
}

// --- Events, secrets, time -------------------------------------------------------------------

/// A project event from an `emit_event` node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectEvent {
    /// Event name.
    pub event_name: String,
    /// Properties (rendered, redacted).
    pub properties: Value,
    /// RFC 3339 time.
    pub occurred_at: String,
    /// The execution.
    pub execution_id: String,
    /// The flow.
    pub flow_id: String,
}

/// Receives project events.
#[async_trait]
pub trait ProjectEventSink: Send + Sync {
    /// Accepts one event.
    async fn emit(&self, event: ProjectEvent) -> AdapterResult<()>;
}

/// Looks up `${ENV:NAME}` secrets.
pub trait Secrets: Send + Sync {
    /// The value of secret `name`.
    fn get(&self, name: &str) -> Option<String>;
}

/// The clock (an adapter too: turns are deterministic given its answers).
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
    /// Waits (a manual clock advances instead).
    async fn sleep(&self, duration: Duration);
}

// --- The set an engine uses ------------------------------------------------------------------

/// The adapters an engine uses.
#[derive(Clone)]
pub struct Adapters {
    /// Sends WhatsApp messages.
    pub messenger: Arc<dyn Messenger>,
    /// Language models.
    pub model: Arc<dyn LanguageModel>,
    /// Functions.
    pub functions: Arc<dyn FunctionInvoker>,
    /// HTTP (webhooks).
    pub http: Arc<dyn HttpClient>,
    /// MCP servers.
    pub mcp: Arc<dyn McpClient>,
    /// Project events.
    pub project_events: Arc<dyn ProjectEventSink>,
    /// Secrets.
    pub secrets: Arc<dyn Secrets>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

impl Adapters {
    /// Every family [`Unconfigured`] (each call fails), with the production clock and ids:
    /// the starting point of an engine that must name each adapter it uses.
    pub fn unconfigured() -> Adapters {
        Adapters {
            messenger: Arc::new(Unconfigured(Family::Messenger)),
            model: Arc::new(Unconfigured(Family::Model)),
            functions: Arc::new(Unconfigured(Family::Functions)),
            http: Arc::new(Unconfigured(Family::Http)),
            mcp: Arc::new(Unconfigured(Family::Mcp)),
            project_events: Arc::new(Unconfigured(Family::ProjectEvents)),
            secrets: Arc::new(Unconfigured(Family::Secrets)),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UniqueIds::default()),
        }
    }
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters").finish_non_exhaustive()
    }
}
