//! The LLM clients against a real HTTP server on 127.0.0.1 (wiremock): the exact JSON each
//! provider receives, tool calls both ways, error bodies, retries, timeouts, the routing table,
//! that the API key never leaks, and an engine whose AI decide is answered over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_llm::{
    Anthropic, ApiKey, LlmConfig, ModelRouter, OpenAiCompatible, ProviderSettings, Resolved,
};
use switchboard_runtime::adapters::{
    AdapterError, ChatRequest, ChatResponse, LanguageModel, Purpose, ToolSpec,
};
use switchboard_runtime::state::{ChatMessage, ToolCall};
use switchboard_runtime::store::MemoryStore;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OPENAI_KEY: &str = "sk-proj-Zq3VtX9wLm2Rk7pQa1Bc4De5Fg6Hi8Jk";
const ANTHROPIC_KEY: &str = "sk-ant-api03-Yx7Wv6Ut5Sr4Qp3On2Ml1Kj0Ih9Gf8Ed";

// --- helpers ---------------------------------------------------------------------------------

/// Settings for `server` with `key`, fast retries and a short timeout.
fn settings(base_url: String, key: &str) -> ProviderSettings {
    let mut s = ProviderSettings::new(base_url).with_api_key(ApiKey::new(key));
    s.retry_base_delay = Duration::from_millis(10);
    s.max_retry_delay = Duration::from_millis(300);
    s.timeout = Duration::from_secs(5);
    s
}

fn openai(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::new(settings(format!("{}/v1", server.uri()), OPENAI_KEY)).unwrap()
}

fn anthropic(server: &MockServer) -> Anthropic {
    Anthropic::new(settings(server.uri(), ANTHROPIC_KEY)).unwrap()
}

/// Answers every POST to `at` with `status` and `body`.
async fn answer(server: &MockServer, at: &str, status: u16, body: Value) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

/// The bodies the server received, in order.
async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Runs `request` on `model` and checks the body the server got last against `sent`.
async fn check(
    model: &dyn LanguageModel,
    server: &MockServer,
    request: ChatRequest,
    sent: Value,
) -> Result<ChatResponse, AdapterError> {
    let result = model.complete(request).await;
    let bodies = bodies(server).await;
    assert_eq!(bodies.last(), Some(&sent), "the JSON sent");
    result
}

fn request(model: &str, messages: Vec<ChatMessage>) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        purpose: Purpose::Agent {
            node_id: "agent".into(),
        },
        messages,
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
        reasoning_effort: None,
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_order_status".into(),
        description: "Look up the status of an order".into(),
        parameters: json!({
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"]
        }),
    }
}

/// The first round of an agent turn: system prompt, a user message, one tool.
fn agent_first_round(model: &str) -> ChatRequest {
    let mut r = request(
        model,
        vec![
            ChatMessage::new("system", "You are a helpful shop assistant."),
            ChatMessage::new("user", "Where is my order A-123?"),
        ],
    );
    r.tools = vec![weather_tool()];
    r.temperature = Some(0.2);
    r.max_tokens = Some(512);
    r
}

/// The second round: the tool call and its result appended.
fn agent_second_round(model: &str) -> ChatRequest {
    let mut r = agent_first_round(model);
    r.messages.push(ChatMessage {
        role: "assistant".into(),
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_7f3a".into(),
            name: "get_order_status".into(),
            arguments: json!({"order_id": "A-123"}),
        }],
        tool_call_id: None,
    });
    r.messages.push(ChatMessage {
        role: "tool".into(),
        content: r#"{"status":"shipped","eta":"2026-11-24"}"#.into(),
        tool_calls: Vec::new(),
        tool_call_id: Some("call_7f3a".into()),
    });
    r
}

fn assert_no_key(text: &str) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!text.contains(key), "the key leaked: {text}");
        assert!(!text.contains(&key[..12]), "a key prefix leaked: {text}");
    }
}

// --- OpenAI-compatible -----------------------------------------------------------------------

#[tokio::test]
async fn openai_tool_call_round_trip() {
    let server = MockServer::start().await;
    let model = openai(&server);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {OPENAI_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-9x1",
            "object": "chat.completion",
            "created": 1_763_700_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "call_7f3a",
                        "type": "function",
                        "function": {"name": "get_order_status", "arguments": "{\"order_id\":\"A-123\"}"}
                    }]
                },
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 80, "completion_tokens": 18, "total_tokens": 98}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_order_status",
            "description": "Look up the status of an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"]
            }
        }
    }]);
    let first = check(
        &model,
        &server,
        agent_first_round("gpt-4o-mini"),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful shop assistant."},
                {"role": "user", "content": "Where is my order A-123?"}
            ],
            "tools": tools,
            "temperature": 0.2,
            "max_tokens": 512
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        first,
        ChatResponse {
            text: None,
            tool_calls: vec![ToolCall {
                id: "call_7f3a".into(),
                name: "get_order_status".into(),
                arguments: json!({"order_id": "A-123"}),
            }],
        }
    );

    answer(
        &server,
        "/v1/chat/completions",
        200,
        json!({
            "id": "chatcmpl-9x2",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Your order A-123 has shipped and arrives on 24 November."},
                "finish_reason": "stop"
            }]
        }),
    )
    .await;
    let second = check(
        &model,
        &server,
        agent_second_round("gpt-4o-mini"),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful shop assistant."},
                {"role": "user", "content": "Where is my order A-123?"},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_7f3a",
                    "type": "function",
                    "function": {"name": "get_order_status", "arguments": "{\"order_id\":\"A-123\"}"}
                }]},
                {"role": "tool", "tool_call_id": "call_7f3a", "content": "{\"status\":\"shipped\",\"eta\":\"2026-11-24\"}"}
            ],
            "tools": tools,
            "temperature": 0.2,
            "max_tokens": 512
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        second.text.as_deref(),
        Some("Your order A-123 has shipped and arrives on 24 November.")
    );
    assert!(second.tool_calls.is_empty());
}

#[tokio::test]
async fn openai_optional_fields_and_max_completion_tokens() {
    let server = MockServer::start().await;
    answer(
        &server,
        "/v1/chat/completions",
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "support"}, "finish_reason": "stop"}]}),
    )
    .await;
    // Nothing optional set: only model and messages.
    let plain = openai(&server);
    let answer = check(
        &plain,
        &server,
        request("llama3.1", vec![ChatMessage::new("user", "hi")]),
        json!({"model": "llama3.1", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(answer.text.as_deref(), Some("support"));

    // reasoning_effort passed through when set; the reasoning-model token field.
    let reasoning = openai(&server).max_completion_tokens(true);
    let mut r = request("o4-mini", vec![ChatMessage::new("user", "hi")]);
    r.reasoning_effort = Some("low".into());
    r.max_tokens = Some(2000);
    check(
        &reasoning,
        &server,
        r,
        json!({
            "model": "o4-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 2000,
            "reasoning_effort": "low"
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization() {
    let server = MockServer::start().await;
    answer(
        &server,
        "/v1/chat/completions",
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}),
    )
    .await;
    let local =
        OpenAiCompatible::new(ProviderSettings::new(format!("{}/v1/", server.uri()))).unwrap();
    let answer = local
        .complete(request("qwen2.5", vec![ChatMessage::new("user", "hi")]))
        .await
        .unwrap();
    assert_eq!(answer.text.as_deref(), Some("ok"));
    let received = server.received_requests().await.unwrap();
    assert!(received[0].headers.get("authorization").is_none());
    assert_eq!(received[0].url.path(), "/v1/chat/completions");
}

// --- Anthropic -------------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_tool_use_round_trip() {
    let server = MockServer::start().await;
    let model = anthropic(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::header("x-api-key", ANTHROPIC_KEY))
        .and(wiremock::matchers::header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "Let me look that up."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_order_status", "input": {"order_id": "A-123"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 120, "output_tokens": 40}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let tools = json!([{
        "name": "get_order_status",
        "description": "Look up the status of an order",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"]
        }
    }]);
    let first = check(
        &model,
        &server,
        agent_first_round("claude-sonnet-4-5"),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 512,
            "system": "You are a helpful shop assistant.",
            "messages": [{"role": "user", "content": "Where is my order A-123?"}],
            "tools": tools,
            "temperature": 0.2
        }),
    )
    .await
    .unwrap();
    assert_eq!(first.text.as_deref(), Some("Let me look that up."));
    assert_eq!(
        first.tool_calls,
        vec![ToolCall {
            id: "toolu_01A09q90qw90lq917835lq9".into(),
            name: "get_order_status".into(),
            arguments: json!({"order_id": "A-123"}),
        }]
    );

    answer(
        &server,
        "/v1/messages",
        200,
        json!({
            "id": "msg_02",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Your order A-123 has shipped."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 180, "output_tokens": 12}
        }),
    )
    .await;
    let mut second_round = agent_second_round("claude-sonnet-4-5");
    second_round.messages[2].content = "Let me look that up.".into();
    second_round.messages[2].tool_calls[0].id = "toolu_01A09q90qw90lq917835lq9".into();
    second_round.messages[3].tool_call_id = Some("toolu_01A09q90qw90lq917835lq9".into());
    second_round
        .messages
        .push(ChatMessage::new("user", "Thanks!"));
    let second = check(
        &model,
        &server,
        second_round,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 512,
            "system": "You are a helpful shop assistant.",
            "messages": [
                {"role": "user", "content": "Where is my order A-123?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look that up."},
                    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_order_status", "input": {"order_id": "A-123"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "{\"status\":\"shipped\",\"eta\":\"2026-11-24\"}"},
                    {"type": "text", "text": "Thanks!"}
                ]}
            ],
            "tools": tools,
            "temperature": 0.2
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        second,
        ChatResponse {
            text: Some("Your order A-123 has shipped.".into()),
            tool_calls: Vec::new(),
        }
    );
}

#[tokio::test]
async fn anthropic_defaults_max_tokens_and_skips_reasoning_effort() {
    let server = MockServer::start().await;
    answer(
        &server,
        "/v1/messages",
        200,
        json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "sales"}], "stop_reason": "end_turn"}),
    )
    .await;
    let mut r = request(
        "claude-haiku-4-5",
        vec![ChatMessage::new("user", "prices?")],
    );
    r.reasoning_effort = Some("high".into());
    let answer = check(
        &anthropic(&server),
        &server,
        r,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 8192,
            "messages": [{"role": "user", "content": "prices?"}]
        }),
    )
    .await
    .unwrap();
    assert_eq!(answer.text.as_deref(), Some("sales"));
}

// --- errors ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_400_carries_the_provider_message() {
    let server = MockServer::start().await;
    answer(
        &server,
        "/v1/chat/completions",
        400,
        json!({"error": {
            "message": "Invalid value for 'temperature': must be between 0 and 2.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value"
        }}),
    )
    .await;
    answer(
        &server,
        "/v1/messages",
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}),
    )
    .await;
    let req = || request("m", vec![ChatMessage::new("user", "hi")]);
    let e = openai(&server).complete(req()).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.status), ("http_status", Some(400)));
    assert!(
        e.message
            .contains("Invalid value for 'temperature': must be between 0 and 2."),
        "{e}"
    );
    let e = anthropic(&server).complete(req()).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.status), ("http_status", Some(400)));
    assert!(e.message.contains("max_tokens: Field required"), "{e}");
    // A 400 is not retried.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_401_does_not_leak_the_key() {
    let server = MockServer::start().await;
    // OpenAI echoes a masked key; a careless proxy might echo the whole of it.
    let masked = format!(
        "Incorrect API key provided: {}{}{}. You can find your API key at https://platform.openai.com/account/api-keys.",
        &OPENAI_KEY[..8],
        "*".repeat(28),
        &OPENAI_KEY[OPENAI_KEY.len() - 4..]
    );
    answer(
        &server,
        "/v1/chat/completions",
        401,
        json!({"error": {"message": masked, "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    )
    .await;
    answer(
        &server,
        "/v1/messages",
        401,
        json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key: {ANTHROPIC_KEY}")}}),
    )
    .await;
    let req = || request("m", vec![ChatMessage::new("user", "hi")]);
    let e = openai(&server).complete(req()).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.status), ("http_status", Some(401)));
    assert!(e.message.contains("Incorrect API key provided"), "{e}");
    assert_no_key(&e.to_string());
    assert_no_key(&format!("{e:?}"));
    assert!(
        !e.message.contains(&OPENAI_KEY[OPENAI_KEY.len() - 4..]),
        "{e}"
    );

    let e = anthropic(&server).complete(req()).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.status), ("http_status", Some(401)));
    assert!(e.message.contains("invalid x-api-key"), "{e}");
    assert_no_key(&e.to_string());
    assert_no_key(&format!("{e:?}"));
}

#[tokio::test]
async fn a_429_is_retried_after_a_capped_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(
                    json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer(
        &server,
        "/v1/chat/completions",
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": "done"}}]}),
    )
    .await;
    let started = Instant::now();
    let answer = openai(&server)
        .complete(request("gpt-4o", vec![ChatMessage::new("user", "hi")]))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(answer.text.as_deref(), Some("done"));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // Retry-After (30 s) beats the 10 ms backoff but is capped at 300 ms.
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn a_503_three_times_is_an_http_status_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .expect(3)
        .mount(&server)
        .await;
    let e = anthropic(&server)
        .complete(request(
            "claude-sonnet-4-5",
            vec![ChatMessage::new("user", "hi")],
        ))
        .await
        .unwrap_err();
    assert_eq!((e.kind.as_str(), e.status), ("http_status", Some(503)));
    assert!(e.message.contains("Overloaded"), "{e}");
    server.verify().await;
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({"choices": []})),
        )
        .mount(&server)
        .await;
    let mut s = settings(format!("{}/v1", server.uri()), OPENAI_KEY);
    s.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let e = OpenAiCompatible::new(s)
        .unwrap()
        .complete(request("gpt-4o", vec![ChatMessage::new("user", "hi")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "timeout", "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A timeout is not retried.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bodies_that_are_not_the_expected_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/html/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/nochoices/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/badargs/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": [{"message": {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]
        }}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/huge/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"choices": [{"message": {
                "role": "assistant", "content": "x".repeat(4096)
            }}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/weird/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"content": "not blocks"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/gateway/chat/completions"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>not found</html>"))
        .mount(&server)
        .await;
    let req = || request("m", vec![ChatMessage::new("user", "hi")]);
    let at = |prefix: &str| {
        let mut s = settings(format!("{}/{prefix}", server.uri()), OPENAI_KEY);
        s.max_response_bytes = 1024;
        OpenAiCompatible::new(s).unwrap()
    };
    for (prefix, kind) in [
        ("html", "invalid_json"),
        ("nochoices", "invalid_json"),
        ("badargs", "invalid_json"),
        ("huge", "adapter"),
        ("gateway", "http_status"),
    ] {
        let e = at(prefix).complete(req()).await.unwrap_err();
        assert_eq!(e.kind, kind, "{prefix}: {e}");
    }
    let weird = Anthropic::new(settings(format!("{}/weird", server.uri()), ANTHROPIC_KEY))
        .unwrap()
        .complete(req())
        .await
        .unwrap_err();
    assert_eq!(weird.kind, "invalid_json", "{weird}");
}

#[tokio::test]
async fn odd_bodies_are_errors_or_answers_never_panics() {
    let server = MockServer::start().await;
    let openai_bodies = [
        json!(null),
        json!([]),
        json!(42),
        json!("text"),
        json!({"choices": null}),
        json!({"choices": [null]}),
        json!({"choices": [{"message": null}]}),
        json!({"choices": [{"message": {"tool_calls": [{"function": {"name": 1}}]}}]}),
        json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "[1,"}}]}}]}),
    ];
    let anthropic_bodies = [
        json!(null),
        json!({"content": null}),
        json!({"content": [{"type": "tool_use"}]}),
        json!({"content": [{"type": "text"}]}),
        json!({"content": [{}]}),
    ];
    for (i, body) in openai_bodies.iter().enumerate() {
        answer(
            &server,
            &format!("/o{i}/chat/completions"),
            200,
            body.clone(),
        )
        .await;
    }
    for (i, body) in anthropic_bodies.iter().enumerate() {
        answer(&server, &format!("/a{i}/v1/messages"), 200, body.clone()).await;
    }
    // Shapes that are fine: content parts, object arguments, unknown blocks.
    answer(
        &server,
        "/parts/chat/completions",
        200,
        json!({"choices": [{"message": {
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]
        }}]}),
    )
    .await;
    answer(
        &server,
        "/thinking/v1/messages",
        200,
        json!({"content": [
            {"type": "thinking", "thinking": "…", "signature": "abc"},
            {"type": "text", "text": "support"}
        ]}),
    )
    .await;
    let req = || request("m", vec![ChatMessage::new("user", "hi")]);
    for i in 0..openai_bodies.len() {
        let e = OpenAiCompatible::new(settings(format!("{}/o{i}", server.uri()), OPENAI_KEY))
            .unwrap()
            .complete(req())
            .await
            .unwrap_err();
        assert_eq!(e.kind, "invalid_json", "openai body {i}: {e}");
    }
    for i in 0..anthropic_bodies.len() {
        let e = Anthropic::new(settings(format!("{}/a{i}", server.uri()), ANTHROPIC_KEY))
            .unwrap()
            .complete(req())
            .await
            .unwrap_err();
        assert_eq!(e.kind, "invalid_json", "anthropic body {i}: {e}");
    }
    let parts = OpenAiCompatible::new(settings(format!("{}/parts", server.uri()), OPENAI_KEY))
        .unwrap()
        .complete(req())
        .await
        .unwrap();
    assert_eq!(parts.text.as_deref(), Some("ab"));
    assert_eq!(parts.tool_calls[0].arguments, json!({"x": 1}));
    let thinking = Anthropic::new(settings(
        format!("{}/thinking", server.uri()),
        ANTHROPIC_KEY,
    ))
    .unwrap()
    .complete(req())
    .await
    .unwrap();
    assert_eq!(thinking.text.as_deref(), Some("support"));

    // A tool message without the call it answers is refused before anything is sent.
    let before = server.received_requests().await.unwrap().len();
    let mut orphan = req();
    orphan.messages.push(ChatMessage::new("tool", "{}"));
    let e = openai(&server).complete(orphan.clone()).await.unwrap_err();
    assert_eq!(e.kind, "invalid_request");
    let e = anthropic(&server).complete(orphan).await.unwrap_err();
    assert_eq!(e.kind, "invalid_request");
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = OpenAiCompatible::new(settings(format!("http://127.0.0.1:{port}/v1"), OPENAI_KEY))
        .unwrap()
        .complete(request("m", vec![ChatMessage::new("user", "hi")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "transport", "{e}");
    assert_no_key(&e.to_string());
}

#[test]
fn the_key_never_appears_in_debug_output() {
    let s = settings("http://127.0.0.1:9/v1".into(), OPENAI_KEY);
    assert_no_key(&format!("{s:?}"));
    assert_no_key(&format!("{:?}", ApiKey::new(OPENAI_KEY)));
    let client = OpenAiCompatible::new(s).unwrap();
    assert_no_key(&format!("{client:?}"));
    let client = Anthropic::new(settings("http://127.0.0.1:9".into(), ANTHROPIC_KEY)).unwrap();
    assert_no_key(&format!("{client:?}"));
    let router = ModelRouter::from_config(&config("http://127.0.0.1:9"), &env).unwrap();
    assert_no_key(&format!("{router:?}"));
}

// --- routing ---------------------------------------------------------------------------------

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some(OPENAI_KEY.into()),
        "ANTHROPIC_API_KEY" => Some(ANTHROPIC_KEY.into()),
        _ => None,
    }
}

/// The routing table the tests use, as `switchboard.toml`'s `[llm]` would give it.
fn config(base: &str) -> LlmConfig {
    serde_json::from_value(json!({
        "providers": [
            {"name": "openai", "kind": "openai", "base_url": format!("{base}/v1"), "api_key_env": "OPENAI_API_KEY", "timeout_seconds": 5, "max_retries": 1},
            {"name": "anthropic", "kind": "anthropic", "base_url": base, "api_key_env": "ANTHROPIC_API_KEY"},
            {"name": "local", "kind": "openai", "base_url": format!("{base}/local/v1")}
        ],
        "routes": [
            {"match": "claude-*", "provider": "anthropic"},
            {"match": "claude-legacy", "provider": "anthropic", "model": "claude-3-5-haiku-latest"},
            {"match": "gpt-*", "provider": "openai"},
            {"match": "o*", "provider": "openai"},
            {"match": "llama*", "provider": "local", "model": "llama3.1:8b"}
        ]
    }))
    .unwrap()
}

#[test]
fn the_routing_table() {
    let mut cfg = config("http://127.0.0.1:9");
    let router = ModelRouter::from_config(&cfg, &env).unwrap();
    let to = |model: &str| {
        router.resolve(model).map(
            |Resolved {
                 provider, model, ..
             }| (provider.to_owned(), model),
        )
    };
    let route = |p: &str, m: &str| Some((p.to_owned(), m.to_owned()));
    assert_eq!(
        to("claude-sonnet-4-5"),
        route("anthropic", "claude-sonnet-4-5")
    );
    // An exact route beats an earlier pattern.
    assert_eq!(
        to("claude-legacy"),
        route("anthropic", "claude-3-5-haiku-latest")
    );
    assert_eq!(to("gpt-4o-mini"), route("openai", "gpt-4o-mini"));
    assert_eq!(to("o4-mini"), route("openai", "o4-mini"));
    assert_eq!(to("llama-3.1-8b"), route("local", "llama3.1:8b"));
    assert_eq!(to("mistral-large"), None);
    assert_eq!(to(""), None);

    // A catch-all default.
    cfg.routes.push(
        serde_json::from_value(json!({"match": "*", "provider": "local", "model": "qwen2.5:7b"}))
            .unwrap(),
    );
    let router = ModelRouter::from_config(&cfg, &env).unwrap();
    assert_eq!(
        router
            .resolve("mistral-large")
            .map(|r| (r.provider, r.model, r.pattern)),
        Some(("local", "qwen2.5:7b".to_owned(), "*"))
    );
    assert_eq!(router.resolve("gpt-4o").map(|r| r.provider), Some("openai"));
}

#[test]
fn configuration_errors() {
    // Unknown keys are refused.
    let unknown = serde_json::from_value::<LlmConfig>(json!({
        "providers": [{"name": "openai", "kind": "openai", "api_key": "sk-inline"}]
    }));
    assert!(unknown.is_err());
    let bad_kind = serde_json::from_value::<LlmConfig>(json!({
        "providers": [{"name": "g", "kind": "gemini"}]
    }));
    assert!(bad_kind.is_err());

    // A key variable that is not set names the variable.
    let mut cfg = config("http://127.0.0.1:9");
    cfg.providers[0].api_key_env = Some("MISSING_KEY_VAR".into());
    let e = ModelRouter::from_config(&cfg, &env).unwrap_err();
    assert_eq!(e.kind, "adapter");
    assert!(e.message.contains("MISSING_KEY_VAR"), "{e}");

    // A route to an unknown provider.
    let mut cfg = config("http://127.0.0.1:9");
    cfg.routes[0].provider = "azure".into();
    let e = ModelRouter::from_config(&cfg, &env).unwrap_err();
    assert!(e.message.contains("azure"), "{e}");

    // Two providers with one name.
    let mut cfg = config("http://127.0.0.1:9");
    cfg.providers[2].name = "openai".into();
    assert!(ModelRouter::from_config(&cfg, &env).is_err());
}

#[tokio::test]
async fn the_router_sends_each_model_to_its_provider() {
    let server = MockServer::start().await;
    answer(
        &server,
        "/v1/messages",
        200,
        json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "from claude"}]}),
    )
    .await;
    answer(
        &server,
        "/v1/chat/completions",
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": "from gpt"}}]}),
    )
    .await;
    answer(
        &server,
        "/local/v1/chat/completions",
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": "from llama"}}]}),
    )
    .await;
    let router = ModelRouter::from_config(&config(&server.uri()), &env).unwrap();
    let ask = |model: &str| request(model, vec![ChatMessage::new("user", "hi")]);
    let text = |r: ChatResponse| r.text.unwrap();
    assert_eq!(
        text(router.complete(ask("claude-opus-4-1")).await.unwrap()),
        "from claude"
    );
    assert_eq!(
        text(router.complete(ask("gpt-4.1")).await.unwrap()),
        "from gpt"
    );
    assert_eq!(
        text(router.complete(ask("llama-3")).await.unwrap()),
        "from llama"
    );
    let e = router.complete(ask("gemini-2.5-pro")).await.unwrap_err();
    assert_eq!(e.kind, "not_found");
    assert!(e.message.contains("gemini-2.5-pro"), "{e}");

    let received = server.received_requests().await.unwrap();
    let sent: Vec<(String, String, Option<String>)> = received
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (
                r.url.path().to_owned(),
                body["model"].as_str().unwrap().to_owned(),
                r.headers
                    .get("authorization")
                    .or_else(|| r.headers.get("x-api-key"))
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            (
                "/v1/messages".into(),
                "claude-opus-4-1".into(),
                Some(ANTHROPIC_KEY.into())
            ),
            (
                "/v1/chat/completions".into(),
                "gpt-4.1".into(),
                Some(format!("Bearer {OPENAI_KEY}"))
            ),
            (
                "/local/v1/chat/completions".into(),
                "llama3.1:8b".into(),
                None
            ),
        ]
    );
}

// --- end to end ------------------------------------------------------------------------------

mod engine {
    use super::*;
    use switchboard_runtime::adapters::OutboundBody;
    use switchboard_runtime::offline::OfflineAdapters;
    use switchboard_runtime::state::TriggerType;
    use switchboard_runtime::{
        Dispatch, Engine, EventType, FlowDefinition, InboundMessage, Status, Trigger,
    };

    const PNID: &str = "15550001111";
    const ANA: &str = "+14155550100";

    const FLOW: &str = r#"
name: triage
description: Ask, then let a model route the answer
nodes:
- id: start
  type: flow-node
  data: {node_type: start, config: {}}
- id: ask
  type: flow-node
  data: {node_type: send_text, config: {message: How can we help?}}
- id: wait
  type: flow-node
  data: {node_type: wait_for_response, config: {timeout_seconds: 600}}
- id: route
  type: flow-node
  data:
    node_type: decide
    config:
      decision_type: ai
      provider_model_name: gpt-4o-mini
      llm_temperature: 0.0
      llm_max_tokens: 50
      conditions:
      - {label: sales, description: Wants to buy or asks about prices}
      - {label: support, description: Has a problem with an order}
- id: sales
  type: flow-node
  data: {node_type: send_text, config: {message: Connecting you with sales.}}
- id: support
  type: flow-node
  data: {node_type: send_text, config: {message: Connecting you with support.}}
edges:
- {source: start, target: ask, label: next}
- {source: ask, target: wait, label: next}
- {source: wait, target: route, label: next}
- {source: route, target: sales, label: sales}
- {source: route, target: support, label: support}
"#;

    fn text(id: &str, body: &str) -> InboundMessage {
        InboundMessage {
            id: id.into(),
            phone_number_id: PNID.into(),
            from: ANA.into(),
            profile_name: None,
            kind: "text".into(),
            text: body.into(),
            reply: None,
            timestamp: None,
            interactive: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ai_decide_is_answered_over_http() {
        let server = MockServer::start().await;
        answer(
            &server,
            "/v1/chat/completions",
            200,
            json!({
                "id": "chatcmpl-e2e",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "support"}, "finish_reason": "stop"}]
            }),
        )
        .await;
        let router = ModelRouter::from_config(&config(&server.uri()), &env).unwrap();

        let offline = OfflineAdapters::default();
        let mut adapters = offline.adapters();
        adapters.model = Arc::new(router);
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .adapters(adapters)
            .build();
        let loaded = switchboard_model::load_bytes(
            FLOW.as_bytes(),
            Some("triage.yaml"),
            &Default::default(),
        )
        .unwrap();
        engine
            .register_flow(FlowDefinition {
                id: "triage".into(),
                slug: None,
                version: "1".into(),
                flow: loaded.flow,
            })
            .unwrap();
        engine
            .add_trigger(Trigger {
                flow_id: "triage".into(),
                trigger_type: TriggerType::InboundMessage,
                phone_number_id: Some(PNID.into()),
                active: true,
            })
            .unwrap();

        let Dispatch::Started(id) = engine
            .handle_inbound(vec![text("wamid.1", "hi")])
            .await
            .unwrap()
        else {
            panic!("the first message starts an execution");
        };
        assert_eq!(
            engine
                .handle_inbound(vec![text("wamid.2", "My order arrived broken")])
                .await
                .unwrap(),
            Dispatch::Resumed(id.clone())
        );

        let sent: Vec<String> = offline
            .messenger
            .take()
            .into_iter()
            .map(|m| match m.body {
                OutboundBody::Text { text } => text,
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(sent, ["How can we help?", "Connecting you with support."]);
        assert_eq!(
            engine.get_execution(&id).await.unwrap().status,
            Status::Ended
        );

        let decisions = engine
            .list_events(&id, Some(EventType::DecisionEvaluated), 10, 0)
            .await
            .unwrap();
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].payload["chosen_label"], "support");
        assert_eq!(decisions[0].payload["fallback"], false);

        // The model got the request over HTTP, routed by `gpt-*` to the openai provider.
        let bodies = bodies(&server).await;
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0]["model"], "gpt-4o-mini");
        assert_eq!(bodies[0]["temperature"], 0.0);
        assert_eq!(bodies[0]["max_tokens"], 50);
        assert_eq!(bodies[0]["messages"][0]["role"], "system");
        let transcript = bodies[0]["messages"].to_string();
        assert!(
            transcript.contains("My order arrived broken"),
            "{transcript}"
        );
    }
}
