//! The OpenAI-compatible Chat Completions client.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_http::reqwest::header::{self, HeaderMap};
use switchboard_runtime::FailureKind;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, ChatRequest, ChatResponse, LanguageModel,
};
use switchboard_runtime::state::{ChatMessage, ToolCall};

use crate::transport::{ProviderSettings, Transport};

/// A [`LanguageModel`] speaking OpenAI Chat Completions (`POST {base_url}/chat/completions`):
/// OpenAI (`https://api.openai.com/v1`), vLLM and the llama.cpp server (`http://host:8000/v1`),
/// Ollama (`http://localhost:11434/v1`), LiteLLM and other compatible servers.
///
/// The API key, if any, goes in `Authorization: Bearer`. Tools are sent as
/// `{"type": "function", "function": {name, description, parameters}}`; assistant tool calls
/// and `tool` messages are mapped both ways, arguments being a JSON string on the wire.
/// `temperature` and `max_tokens` are sent when set (`max_tokens` by default, understood by
/// every compatible server; [`OpenAiCompatible::max_completion_tokens`] switches to the field
/// OpenAI's reasoning models require), `reasoning_effort` only when set.
#[derive(Debug)]
pub struct OpenAiCompatible {
    transport: Transport,
    headers: HeaderMap,
    max_completion_tokens: bool,
}

impl OpenAiCompatible {
    /// A client with `settings`. Fails (`adapter`) if the HTTP client cannot be built or the
    /// key cannot be a header value.
    pub fn new(settings: ProviderSettings) -> AdapterResult<OpenAiCompatible> {
        let transport = Transport::new("openai", settings)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = transport.api_key() {
            headers.insert(header::AUTHORIZATION, key.header_value("Bearer ")?);
        }
        Ok(OpenAiCompatible {
            transport,
            headers,
            max_completion_tokens: false,
        })
    }

    /// Sends the token limit as `max_completion_tokens` instead of `max_tokens`.
    pub fn max_completion_tokens(mut self, yes: bool) -> OpenAiCompatible {
        self.max_completion_tokens = yes;
        self
    }

    /// The JSON body sent for `request`.
    fn body(&self, request: &ChatRequest) -> AdapterResult<Value> {
        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        let messages = request
            .messages
            .iter()
            .map(message)
            .collect::<AdapterResult<Vec<_>>>()?;
        body.insert("messages".into(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.parameters,
                        }
                    })
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(t) = request.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = request.max_tokens.filter(|n| *n > 0) {
            let field = if self.max_completion_tokens {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            body.insert(field.into(), json!(n));
        }
        if let Some(effort) = &request.reasoning_effort {
            body.insert("reasoning_effort".into(), json!(effort));
        }
        Ok(Value::Object(body))
    }
}

/// One message on the wire.
fn message(m: &ChatMessage) -> AdapterResult<Value> {
    Ok(match m.role.as_str() {
        "assistant" if !m.tool_calls.is_empty() => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()},
                    })
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        "tool" => {
            let id = m.tool_call_id.as_deref().ok_or_else(|| {
                AdapterError::new(
                    FailureKind::InvalidRequest,
                    "openai: a tool message has no tool_call_id",
                )
            })?;
            json!({"role": "tool", "tool_call_id": id, "content": m.content})
        }
        role => json!({"role": role, "content": m.content}),
    })
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Vec<WireChoice>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// The answer in `body`.
fn parse(body: Value) -> AdapterResult<ChatResponse> {
    let invalid =
        |what: String| AdapterError::new(FailureKind::InvalidJson, format!("openai: {what}"));
    let wire: WireResponse = serde_json::from_value(body)
        .map_err(|e| invalid(format!("unexpected response shape: {e}")))?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the response has no choices".to_owned()))?;
    let text = match choice.message.content {
        Value::String(s) => s,
        // Some servers answer with content parts.
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    let mut tool_calls = Vec::new();
    for call in choice.message.tool_calls.unwrap_or_default() {
        let arguments = match call.function.arguments {
            Value::String(s) if s.trim().is_empty() => json!({}),
            Value::String(s) => serde_json::from_str(&s).map_err(|e| {
                invalid(format!(
                    "the arguments of tool call `{}` are not JSON: {e}",
                    call.function.name
                ))
            })?,
            Value::Null => json!({}),
            // Some servers send the arguments as an object.
            other => other,
        };
        tool_calls.push(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments,
        });
    }
    Ok(ChatResponse {
        text: (!text.is_empty()).then_some(text),
        tool_calls,
    })
}

#[async_trait]
impl LanguageModel for OpenAiCompatible {
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse> {
        let url = self.transport.url("/chat/completions");
        let body = self
            .transport
            .post_json(&url, &self.headers, &self.body(&request)?)
            .await?;
        parse(body)
    }
}
