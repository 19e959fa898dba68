//! What an engine uses for an adapter family nobody configured: every call fails with a clear
//! `adapter` failure naming the family and the builder method to call, so a forgotten family
//! never runs an offline fake in production (construction fails closed).

use async_trait::async_trait;
use serde_json::Value;

use super::{
    AdapterError, AdapterResult, ChatRequest, ChatResponse, FunctionCall, FunctionInvoker,
    HttpClient, HttpRequest, HttpResponse, LanguageModel, McpClient, McpServer, Messenger,
    OutboundMessage, ProjectEvent, ProjectEventSink, Secrets, SendReceipt, ToolSpec,
};
use crate::failure::FailureKind;

/// An adapter family: one trait the engine reaches the world through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// [`Messenger`]: WhatsApp messages.
    Messenger,
    /// [`LanguageModel`]: AI decides, AI fields, agents.
    Model,
    /// [`FunctionInvoker`]: function nodes, function decides, agent function tools.
    Functions,
    /// [`HttpClient`]: webhook nodes and agent webhook tools.
    Http,
    /// [`McpClient`]: agent MCP servers.
    Mcp,
    /// [`ProjectEventSink`]: `emit_event` nodes.
    ProjectEvents,
    /// [`Secrets`]: `${ENV:NAME}` references.
    Secrets,
}

impl Family {
    /// Every family an engine needs besides its clock and ids.
    pub const ALL: [Family; 7] = [
        Family::Messenger,
        Family::Model,
        Family::Functions,
        Family::Http,
        Family::Mcp,
        Family::ProjectEvents,
        Family::Secrets,
    ];

    /// What the family's adapter is, in words (`messenger`, `language model`, …).
    pub fn noun(self) -> &'static str {
        match self {
            Family::Messenger => "messenger",
            Family::Model => "language model",
            Family::Functions => "function invoker",
            Family::Http => "HTTP client",
            Family::Mcp => "MCP client",
            Family::ProjectEvents => "project-event sink",
            Family::Secrets => "secrets provider",
        }
    }

    /// The `EngineBuilder` method that sets it.
    pub fn setter(self) -> &'static str {
        match self {
            Family::Messenger => "messenger",
            Family::Model => "model",
            Family::Functions => "functions",
            Family::Http => "http",
            Family::Mcp => "mcp",
            Family::ProjectEvents => "project_events",
            Family::Secrets => "secrets",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.setter())
    }
}

/// The adapter of a family nobody configured: every call fails (secrets: none is set, so a
/// `${ENV:NAME}` reference fails with `secret_missing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unconfigured(pub Family);

impl Unconfigured {
    fn error(self) -> AdapterError {
        AdapterError::new(
            FailureKind::Adapter,
            format!(
                "no {} is configured for this engine (set one with EngineBuilder::{}, or build \
                 it with offline adapters)",
                self.0.noun(),
                self.0.setter()
            ),
        )
    }
}

#[async_trait]
impl Messenger for Unconfigured {
    async fn send(&self, _: OutboundMessage) -> AdapterResult<SendReceipt> {
        Err(self.error())
    }
}

#[async_trait]
impl LanguageModel for Unconfigured {
    async fn complete(&self, _: ChatRequest) -> AdapterResult<ChatResponse> {
        Err(self.error())
    }
}

#[async_trait]
impl FunctionInvoker for Unconfigured {
    async fn invoke(&self, _: &FunctionCall<'_>) -> AdapterResult<Value> {
        Err(self.error())
    }
}

#[async_trait]
impl HttpClient for Unconfigured {
    async fn send(&self, _: HttpRequest) -> AdapterResult<HttpResponse> {
        Err(self.error())
    }
}

#[async_trait]
impl McpClient for Unconfigured {
    async fn list_tools(&self, _: &McpServer) -> AdapterResult<Vec<ToolSpec>> {
        Err(self.error())
    }

    async fn call_tool(&self, _: &McpServer, _: &str, _: Value) -> AdapterResult<Value> {
        Err(self.error())
    }
}

#[async_trait]
impl ProjectEventSink for Unconfigured {
    async fn emit(&self, _: ProjectEvent) -> AdapterResult<()> {
        Err(self.error())
    }
}

impl Secrets for Unconfigured {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}
