//! The Anthropic Messages client.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_http::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchboard_runtime::FailureKind;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, ChatRequest, ChatResponse, LanguageModel,
};
use switchboard_runtime::state::ToolCall;

use crate::transport::{ProviderSettings, Transport};

/// The `max_tokens` sent when a request sets none (the API requires one).
const DEFAULT_MAX_TOKENS: i64 = 8192;

/// A [`LanguageModel`] speaking the Anthropic Messages API (`POST {base_url}/v1/messages`,
/// `x-api-key`, `anthropic-version: 2023-06-01`).
///
/// System messages are joined into the top-level `system`; assistant tool calls become
/// `tool_use` blocks and `tool` messages `tool_result` blocks in a user turn (consecutive
/// turns of one role are merged, as the API wants tool results together); `tool_use` blocks
/// in the answer become tool calls and its `text` blocks the text. `max_tokens` defaults to
/// 8192; `reasoning_effort` has no equivalent here and is not sent.
#[derive(Debug)]
pub struct Anthropic {
    transport: Transport,
    headers: HeaderMap,
    default_max_tokens: i64,
}

impl Anthropic {
    /// A client with `settings`. Fails (`adapter`) if the HTTP client cannot be built or the
    /// key cannot be a header value.
    pub fn new(settings: ProviderSettings) -> AdapterResult<Anthropic> {
        let transport = Transport::new("anthropic", settings)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static("2023-06-01"),
        );
        if let Some(key) = transport.api_key() {
            headers.insert(HeaderName::from_static("x-api-key"), key.header_value("")?);
        }
        Ok(Anthropic {
            transport,
            headers,
            default_max_tokens: DEFAULT_MAX_TOKENS,
        })
    }

    /// Sends `max_tokens` when a request sets none (default 8192).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Anthropic {
        self.default_max_tokens = i64::from(max_tokens);
        self
    }

    /// The JSON body sent for `request`.
    fn body(&self, request: &ChatRequest) -> AdapterResult<Value> {
        let mut system: Vec<&str> = Vec::new();
        let mut messages: Vec<(String, Vec<Value>)> = Vec::new();
        for m in &request.messages {
            let (role, blocks) = match m.role.as_str() {
                "system" => {
                    system.push(&m.content);
                    continue;
                }
                "tool" => {
                    let id = m.tool_call_id.as_deref().ok_or_else(|| {
                        AdapterError::new(
                            FailureKind::InvalidRequest,
                            "anthropic: a tool message has no tool_call_id",
                        )
                    })?;
                    (
                        "user",
                        vec![
                            json!({"type": "tool_result", "tool_use_id": id, "content": m.content}),
                        ],
                    )
                }
                "assistant" => {
                    let mut blocks = Vec::new();
                    if !m.content.is_empty() {
                        blocks.push(json!({"type": "text", "text": m.content}));
                    }
                    for c in &m.tool_calls {
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": c.id,
                            "name": c.name,
                            "input": c.arguments,
                        }));
                    }
                    ("assistant", blocks)
                }
                _ => ("user", vec![json!({"type": "text", "text": m.content})]),
            };
            match messages.last_mut() {
                Some((last, existing)) if last == role => existing.extend(blocks),
                _ => messages.push((role.to_owned(), blocks)),
            }
        }
        let messages: Vec<Value> = messages
            .into_iter()
            .map(|(role, blocks)| {
                // A lone text block is sent as a plain string.
                let content = match blocks.as_slice() {
                    [only] if only["type"] == "text" => only["text"].clone(),
                    _ => Value::Array(blocks),
                };
                json!({"role": role, "content": content})
            })
            .collect();

        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        let max_tokens = request
            .max_tokens
            .filter(|n| *n > 0)
            .unwrap_or(self.default_max_tokens);
        body.insert("max_tokens".into(), json!(max_tokens));
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "description": t.description,
                        "input_schema": t.parameters,
                    })
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(t) = request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        Ok(Value::Object(body))
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    content: Vec<WireBlock>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// The answer in `body`.
fn parse(body: Value) -> AdapterResult<ChatResponse> {
    let wire: WireResponse = serde_json::from_value(body).map_err(|e| {
        AdapterError::new(
            FailureKind::InvalidJson,
            format!("anthropic: unexpected response shape: {e}"),
        )
    })?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in wire.content {
        match block {
            WireBlock::Text { text: t } => text.push_str(&t),
            WireBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: if input.is_null() { json!({}) } else { input },
            }),
            WireBlock::Other => {}
        }
    }
    Ok(ChatResponse {
        text: (!text.is_empty()).then_some(text),
        tool_calls,
    })
}

#[async_trait]
impl LanguageModel for Anthropic {
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse> {
        let url = self.transport.url("/v1/messages");
        let body = self
            .transport
            .post_json(&url, &self.headers, &self.body(&request)?)
            .await?;
        parse(body)
    }
}
