//! `switchboard-mcp`: [`RmcpClient`], the [`McpClient`] of agent MCP servers
//! (runtime-semantics §7.10), over the official Rust MCP SDK ([`rmcp`]) and its
//! streamable-HTTP client transport. It depends on `switchboard-runtime` (the trait), `rmcp`
//! and `switchboard-http` (the HTTP client); it must not depend on another adapter crate or
//! the CLI, and the model, the validator and the runtime must never depend on it.
//!
//! # Connections
//!
//! Every [`McpClient::list_tools`] and [`McpClient::call_tool`] opens its own MCP session:
//! connect to [`McpServer::url`] with the rendered headers, `initialize`, send the one request
//! (`tools/list`, following `nextCursor` until the last page, or `tools/call`), then close the
//! session. Sessions are not cached: tools are listed once per activation and a session
//! per call keeps servers that restart or expire sessions working without recovery logic. The
//! underlying HTTP connection pool ([`reqwest::Client`](switchboard_http::reqwest::Client),
//! built by `switchboard-http`'s [`Transport`]) *is* shared by all calls.
//!
//! # Tool results
//!
//! A `tools/call` result becomes the tool result returned to the model as follows:
//!
//! 1. `isError: true` → an error of kind `adapter` whose message is the text content items
//!    joined with `"\n"` (or the JSON of `structuredContent` when there is no text).
//! 2. `structuredContent` present → that JSON value, as is.
//! 3. Every content item is text (or there are none) → the texts joined with `"\n"`, as a JSON
//!    string.
//! 4. Otherwise (images, audio, resources, …) → a JSON array of the content parts as MCP
//!    sends them (`[{"type": "text", "text": …}, {"type": "image", "data": …, "mimeType": …}]`).
//!
//! # Errors
//!
//! * The server cannot be reached, refuses the session (e.g. `401` without the right
//!   `Authorization`), or the connection drops → `transport`.
//! * A JSON-RPC error answered by the server (unknown tool, invalid arguments, …) → `adapter`.
//! * A header that HTTP cannot carry → `invalid_request` (naming the header, never its value).
//! * Connecting, initializing and the request together take longer than
//!   [`McpClientConfig::timeout`] → `timeout`.
//!
//! Error messages name the server ([`McpServer::name`]) and never contain header values.

use std::collections::HashMap;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool};
use rmcp::service::{RoleClient, RunningService, ServiceError, ServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;
use switchboard_http::reqwest::header::{HeaderName, HeaderValue};
use switchboard_http::transport::{Transport, TransportConfig};
use switchboard_runtime::adapters::{AdapterError, AdapterResult, McpClient, McpServer, ToolSpec};

/// Default bound on one MCP call (connect, initialize and the request): 30 s.
pub const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time allowed to establish the TCP/TLS connection: 10 s.
pub const DEFAULT_MCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers the streamable-HTTP transport sets itself; rendered headers with these names are
/// ignored (rmcp refuses to override them).
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// How an [`RmcpClient`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpClientConfig {
    /// Bound on one [`McpClient`] call, session setup included (default 30 s); exceeding it
    /// is a `timeout` failure.
    pub timeout: Duration,
    /// Time allowed to establish a connection (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for McpClientConfig {
    fn default() -> Self {
        McpClientConfig {
            timeout: DEFAULT_MCP_TIMEOUT,
            connect_timeout: DEFAULT_MCP_CONNECT_TIMEOUT,
        }
    }
}

/// An [`McpClient`] over [`rmcp`]'s streamable-HTTP client (see the [module docs](self) for
/// sessions, result mapping and errors).
///
/// Cloning is cheap and shares the HTTP connection pool.
#[derive(Clone, Debug)]
pub struct RmcpClient {
    http: Transport,
    config: McpClientConfig,
}

impl RmcpClient {
    /// A client with the default configuration (30 s per call, 10 s to connect).
    ///
    /// Fails (kind `adapter`) only if the TLS backend cannot be initialised.
    pub fn new() -> AdapterResult<RmcpClient> {
        RmcpClient::with_config(McpClientConfig::default())
    }

    /// A client with this configuration.
    ///
    /// Fails (kind `adapter`) only if the TLS backend cannot be initialised.
    pub fn with_config(config: McpClientConfig) -> AdapterResult<RmcpClient> {
        let http = Transport::new(TransportConfig {
            label: "mcp",
            connect_timeout: Some(config.connect_timeout),
            ..TransportConfig::default()
        })
        .map_err(|e| AdapterError::new(FailureKind::Adapter, format!("MCP HTTP client: {e}")))?;
        Ok(RmcpClient { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &McpClientConfig {
        &self.config
    }

    async fn connect(&self, server: &McpServer) -> AdapterResult<RunningService<RoleClient, ()>> {
        let mut headers = HashMap::with_capacity(server.headers.len());
        for (name, value) in &server.headers {
            if RESERVED_HEADERS
                .iter()
                .any(|r| name.trim().eq_ignore_ascii_case(r))
            {
                continue;
            }
            let header_name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                AdapterError::new(
                    FailureKind::InvalidRequest,
                    format!("MCP server `{}`: invalid header name `{name}`", server.name),
                )
            })?;
            let header_value = HeaderValue::from_str(value).map_err(|_| {
                AdapterError::new(
                    FailureKind::InvalidRequest,
                    format!(
                        "MCP server `{}`: invalid value for header `{name}`",
                        server.name
                    ),
                )
            })?;
            headers.insert(header_name, header_value);
        }
        let transport = StreamableHttpClientTransport::with_client(
            self.http.client().clone(),
            StreamableHttpClientTransportConfig::with_uri(server.url.as_str())
                .custom_headers(headers),
        );
        ().serve(transport).await.map_err(|e| {
            AdapterError::new(
                FailureKind::Transport,
                format!("MCP server `{}`: session not initialized: {e}", server.name),
            )
        })
    }

    async fn bounded<T>(
        &self,
        server: &McpServer,
        what: &str,
        call: impl Future<Output = AdapterResult<T>>,
    ) -> AdapterResult<T> {
        match tokio::time::timeout(self.config.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(AdapterError::new(
                FailureKind::Timeout,
                format!(
                    "MCP server `{}`: {what} took longer than {} ms",
                    server.name,
                    self.config.timeout.as_millis()
                ),
            )),
        }
    }
}

/// Closes a session, ignoring failures (the result is already known).
async fn close(session: RunningService<RoleClient, ()>) {
    let _ = session.cancel().await;
}

fn service_error(server: &McpServer, what: &str, error: ServiceError) -> AdapterError {
    match error {
        ServiceError::McpError(data) => AdapterError::new(
            FailureKind::Adapter,
            format!(
                "MCP server `{}`: {what}: error {}: {}",
                server.name, data.code.0, data.message
            ),
        ),
        ServiceError::Timeout { .. } => AdapterError::new(
            FailureKind::Timeout,
            format!("MCP server `{}`: {what}: {error}", server.name),
        ),
        other => AdapterError::new(
            FailureKind::Transport,
            format!("MCP server `{}`: {what}: {other}", server.name),
        ),
    }
}

fn tool_spec(tool: Tool) -> ToolSpec {
    ToolSpec {
        name: tool.name.into_owned(),
        description: tool.description.map(|d| d.into_owned()).unwrap_or_default(),
        parameters: Value::Object((*tool.input_schema).clone()),
    }
}

fn joined_text(content: &[ContentBlock]) -> Option<String> {
    let mut texts = Vec::with_capacity(content.len());
    for block in content {
        texts.push(block.as_text()?.text.as_str());
    }
    Some(texts.join("\n"))
}

/// Maps a `tools/call` result to the tool result (see the [module docs](self)).
fn tool_result(server: &McpServer, tool: &str, result: CallToolResult) -> AdapterResult<Value> {
    if result.is_error == Some(true) {
        let text: Vec<&str> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect();
        let message = if text.is_empty() {
            result
                .structured_content
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "tool reported an error".to_owned())
        } else {
            text.join("\n")
        };
        return Err(AdapterError::new(
            FailureKind::Adapter,
            format!("MCP server `{}`: tool `{tool}`: {message}", server.name),
        ));
    }
    if let Some(structured) = result.structured_content {
        return Ok(structured);
    }
    if let Some(text) = joined_text(&result.content) {
        return Ok(Value::String(text));
    }
    serde_json::to_value(&result.content).map_err(|e| {
        AdapterError::new(
            FailureKind::InvalidJson,
            format!("MCP server `{}`: tool `{tool}` content: {e}", server.name),
        )
    })
}

#[async_trait]
impl McpClient for RmcpClient {
    async fn list_tools(&self, server: &McpServer) -> AdapterResult<Vec<ToolSpec>> {
        self.bounded(server, "tools/list", async {
            let session = self.connect(server).await?;
            let listed = session.list_all_tools().await;
            close(session).await;
            let tools = listed.map_err(|e| service_error(server, "tools/list", e))?;
            Ok(tools.into_iter().map(tool_spec).collect())
        })
        .await
    }

    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        arguments: Value,
    ) -> AdapterResult<Value> {
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                return Err(AdapterError::new(
                    FailureKind::InvalidRequest,
                    format!(
                        "MCP server `{}`: tool `{tool}`: arguments must be a JSON object, not {}",
                        server.name,
                        json_type(&other)
                    ),
                ));
            }
        };
        let what = format!("tools/call `{tool}`");
        self.bounded(server, &what, async {
            let session = self.connect(server).await?;
            let mut params = CallToolRequestParams::new(tool.to_owned());
            if let Some(arguments) = arguments {
                params = params.with_arguments(arguments);
            }
            let called = session.call_tool(params).await;
            close(session).await;
            let result = called.map_err(|e| service_error(server, &what, e))?;
            tool_result(server, tool, result)
        })
        .await
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
