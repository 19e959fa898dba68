//! `RmcpClient` against a real MCP server: an `rmcp` server defined here, served over
//! streamable HTTP on 127.0.0.1 (no network needed).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use switchboard_mcp::{McpClientConfig, RmcpClient};
use switchboard_runtime::adapters::{McpClient, McpServer};
use switchboard_runtime::store::MemoryStore;

// --- the server ------------------------------------------------------------------------------

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to echo.
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// First addend.
    a: i64,
    /// Second addend.
    b: i64,
}

#[derive(Debug, Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TestServer {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Echo the text back")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        format!("echo: {text}")
    }

    #[tool(description = "Add two integers")]
    fn add(
        &self,
        Parameters(AddArgs { a, b }): Parameters<AddArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::structured(json!({"sum": a + b})))
    }

    #[tool(description = "Always fails")]
    fn fail(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(
            "the tool broke",
        )]))
    }

    #[tool(description = "Returns text and an image")]
    fn mixed(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![
            ContentBlock::text("a picture"),
            ContentBlock::image("aGVsbG8=", "image/png"),
        ]))
    }

    #[tool(description = "Takes five seconds")]
    async fn slow(&self) -> String {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// Refuses requests without `Authorization: Bearer t`.
async fn require_token(request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == b"Bearer t");
    if authorized {
        next.run(request).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// Serves the test server on 127.0.0.1 and returns its MCP URL.
async fn serve() -> String {
    let service: StreamableHttpService<TestServer, LocalSessionManager> =
        StreamableHttpService::new(
            || Ok(TestServer::new()),
            Arc::default(),
            StreamableHttpServerConfig::default().with_sse_keep_alive(None),
        );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(require_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/mcp")
}

fn server(url: &str) -> McpServer {
    McpServer {
        name: "local".into(),
        url: url.into(),
        headers: vec![("Authorization".into(), "Bearer t".into())],
    }
}

fn client() -> RmcpClient {
    RmcpClient::with_config(McpClientConfig {
        timeout: Duration::from_secs(10),
        ..McpClientConfig::default()
    })
    .unwrap()
}

// --- the client ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_tools_with_descriptions_and_schemas() {
    let url = serve().await;
    let mut tools = client().list_tools(&server(&url)).await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["add", "echo", "fail", "mixed", "slow"]);

    let echo = &tools[1];
    assert_eq!(echo.description, "Echo the text back");
    assert_eq!(echo.parameters["type"], "object");
    assert_eq!(echo.parameters["properties"]["text"]["type"], "string");
    assert_eq!(echo.parameters["required"], json!(["text"]));

    let add = &tools[0];
    assert_eq!(add.description, "Add two integers");
    assert_eq!(add.parameters["properties"]["a"]["type"], "integer");
    assert_eq!(add.parameters["properties"]["b"]["type"], "integer");

    assert_eq!(tools[2].parameters["type"], "object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_tools_and_maps_results() {
    let url = serve().await;
    let c = client();
    let s = server(&url);

    // Text content → the joined text.
    let echoed = c
        .call_tool(&s, "echo", json!({"text": "hola"}))
        .await
        .unwrap();
    assert_eq!(echoed, json!("echo: hola"));

    // `structuredContent` → as is.
    let added = c
        .call_tool(&s, "add", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(added, json!({"sum": 42}));

    // Non-text content → the content parts.
    let mixed = c.call_tool(&s, "mixed", Value::Null).await.unwrap();
    assert_eq!(mixed[0], json!({"type": "text", "text": "a picture"}));
    assert_eq!(mixed[1]["type"], "image");
    assert_eq!(mixed[1]["mimeType"], "image/png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_errors_are_adapter_errors() {
    let url = serve().await;
    let c = client();
    let s = server(&url);

    let e = c.call_tool(&s, "fail", json!({})).await.unwrap_err();
    assert_eq!(e.kind, "adapter");
    assert!(e.message.contains("the tool broke"), "{e}");

    // A JSON-RPC error (unknown tool) is an adapter error too.
    let e = c.call_tool(&s, "nope", json!({})).await.unwrap_err();
    assert_eq!(e.kind, "adapter", "{e}");

    // Arguments must be an object.
    let e = c.call_tool(&s, "echo", json!([1])).await.unwrap_err();
    assert_eq!(e.kind, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_required_header_is_sent_and_never_leaked() {
    let url = serve().await;
    let c = client();

    let mut anonymous = server(&url);
    anonymous.headers.clear();
    let e = c.list_tools(&anonymous).await.unwrap_err();
    assert_eq!(e.kind, "transport", "{e}");

    let mut wrong = server(&url);
    wrong.headers = vec![("Authorization".into(), "Bearer s3cr3t-wrong".into())];
    let e = c
        .call_tool(&wrong, "echo", json!({"text": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "transport", "{e}");
    assert!(!e.message.contains("s3cr3t"), "{e}");

    let mut bad_value = server(&url);
    bad_value.headers = vec![("X-Key".into(), "line\nbreak-s3cr3t".into())];
    let e = c.list_tools(&bad_value).await.unwrap_err();
    assert_eq!(e.kind, "invalid_request");
    assert!(!e.message.contains("s3cr3t"), "{e}");
    assert!(e.message.contains("X-Key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = client()
        .list_tools(&server(&format!("http://{addr}/mcp")))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "transport", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tool_times_out() {
    let url = serve().await;
    let c = RmcpClient::with_config(McpClientConfig {
        timeout: Duration::from_millis(500),
        ..McpClientConfig::default()
    })
    .unwrap();
    let e = c
        .call_tool(&server(&url), "slow", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "timeout", "{e}");
}

// --- end to end ------------------------------------------------------------------------------

mod engine {
    use super::*;
    use switchboard_runtime::adapters::ChatResponse;
    use switchboard_runtime::offline::{MapSecrets, OfflineAdapters};
    use switchboard_runtime::state::{ToolCall, TriggerType};
    use switchboard_runtime::{
        Dispatch, Engine, EventType, FlowDefinition, InboundMessage, Status, Trigger,
    };

    const PNID: &str = "15550001111";

    fn flow(url: &str) -> String {
        format!(
            r#"
name: mcp_agent
description: An agent calling an MCP tool
nodes:
- id: start
  data: {{node_type: start, config: {{}}}}
- id: assistant
  data:
    node_type: agent
    config:
      system_prompt: You echo things.
      provider_model_name: gpt-4o-mini
      max_iterations: 5
      message_delivery_mode: tool_only
      flow_agent_mcp_servers:
      - name: local
        description: The test server
        url: {url}
        headers: {{Authorization: 'Bearer ${{ENV:SWITCHBOARD_TEST_MCP_TOKEN}}'}}
edges:
- {{source: start, target: assistant}}
"#
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_calls_an_mcp_tool_over_http() {
        let url = serve().await;
        let secrets = MapSecrets::default();
        secrets.set("SWITCHBOARD_TEST_MCP_TOKEN", "t");
        let offline = OfflineAdapters {
            secrets: Arc::new(secrets),
            ..OfflineAdapters::default()
        };
        offline.model.push(Ok(ChatResponse {
            text: None,
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "local__echo".into(),
                arguments: json!({"text": "ping"}),
            }],
        }));
        offline.model.push(Ok(ChatResponse {
            text: Some("Done.".into()),
            tool_calls: Vec::new(),
        }));
        let mut adapters = offline.adapters();
        adapters.mcp = Arc::new(client());
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(adapters)
            .build();
        let loaded = switchboard_model::load_bytes(
            flow(&url).as_bytes(),
            Some("mcp.yaml"),
            &Default::default(),
        )
        .unwrap();
        engine
            .register_flow(FlowDefinition {
                id: "mcp_agent".into(),
                slug: None,
                version: "1".into(),
                flow: loaded.flow,
            })
            .unwrap();
        engine
            .add_trigger(Trigger {
                flow_id: "mcp_agent".into(),
                trigger_type: TriggerType::InboundMessage,
                phone_number_id: Some(PNID.into()),
                active: true,
            })
            .unwrap();

        let Dispatch::Started(id) = engine
            .handle_inbound(vec![InboundMessage {
                id: "wamid.1".into(),
                phone_number_id: PNID.into(),
                from: "+14155550100".into(),
                kind: "text".into(),
                text: "echo ping please".into(),
                ..InboundMessage::default()
            }])
            .await
            .unwrap()
        else {
            panic!("the first message starts an execution");
        };
        assert_eq!(
            engine.get_execution(&id).await.unwrap().status,
            Status::Waiting
        );

        // The tools offered to the model came from the server, prefixed with its name.
        let requests = offline.model.requests();
        assert_eq!(requests.len(), 2);
        let offered: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
        assert!(offered.contains(&"local__echo"), "{offered:?}");
        assert!(offered.contains(&"local__add"), "{offered:?}");
        let echo = requests[0]
            .tools
            .iter()
            .find(|t| t.name == "local__echo")
            .unwrap();
        assert_eq!(echo.description, "Echo the text back");

        // The tool result reached the transcript…
        let tool_message = requests[1]
            .messages
            .iter()
            .find(|m| m.role == "tool")
            .unwrap();
        assert_eq!(tool_message.tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(tool_message.content, json!("echo: ping").to_string());

        // …and the event log.
        let calls = engine
            .list_events(&id, Some(EventType::AgentToolCalled), 10, 0)
            .await
            .unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].payload["tool"], "local__echo");
        assert_eq!(calls[0].payload["arguments"], json!({"text": "ping"}));
        assert_eq!(calls[0].payload["result"], "echo: ping");
    }
}
