//! The Cloud API messenger: `POST {base_url}/{api_version}/{phone_number_id}/messages`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_http::reqwest;
use switchboard_http::transport::{BodyError, RetryPolicy, Transport, TransportConfig};
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, Messenger, OutboundBody, OutboundMessage, Secrets, SendReceipt,
};

use crate::payload::message_payload;

/// Longest wait between two attempts, whatever the backoff or `Retry-After` says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Longest response body excerpt kept in an error message.
const MAX_BODY_EXCERPT: usize = 300;

/// Configuration of a [`CloudApiMessenger`].
#[derive(Clone, Debug, PartialEq)]
pub struct CloudApiConfig {
    /// Graph API base URL, without a trailing slash. Default `https://graph.facebook.com`.
    pub base_url: String,
    /// Graph API version. Default `v21.0`.
    pub api_version: String,
    /// Name of the secret (environment variable) holding the access token. Default
    /// `WHATSAPP_ACCESS_TOKEN`. The token itself is never logged, printed or put in errors.
    pub token_env: String,
    /// Template language code. Default `en_US`.
    pub language_code: String,
    /// Total timeout of one attempt. Default 15 s.
    pub timeout: Duration,
    /// Retries after a 429 or 5xx answer (or a failed connection). Default 3.
    pub max_retries: u32,
    /// First retry delay, doubled at each retry (a `Retry-After` header wins), capped at 30 s.
    /// Default 500 ms.
    pub retry_base_delay: Duration,
    /// The template map: a flow's `send_template.template_id` (a Kapso id) → the Meta template
    /// name and language to send. A template id without an entry is sent as the template name
    /// with [`CloudApiConfig::language_code`]. Default: empty.
    pub templates: BTreeMap<String, TemplateName>,
}

/// A Meta template as the Cloud API names it (an entry of [`CloudApiConfig::templates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateName {
    /// The template's name in the WhatsApp Business account (`order_update`).
    pub name: String,
    /// Its language code (default: [`CloudApiConfig::language_code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Default for CloudApiConfig {
    fn default() -> CloudApiConfig {
        CloudApiConfig {
            base_url: "https://graph.facebook.com".to_owned(),
            api_version: "v21.0".to_owned(),
            token_env: "WHATSAPP_ACCESS_TOKEN".to_owned(),
            language_code: "en_US".to_owned(),
            timeout: Duration::from_secs(15),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(500),
            templates: BTreeMap::new(),
        }
    }
}

/// The access token; its `Debug` never shows it.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A [`Messenger`] over the WhatsApp Cloud API.
///
/// The sending number is [`OutboundMessage::from`] (the `phone_number_id`). A 2xx answer
/// `{"messages":[{"id":"wamid…"}]}` is a [`SendReceipt`]. Failures:
/// * a non-2xx answer → `http_status` (with the status), its message `Graph API error <code>
///   (subcode <subcode>): <message> (fbtrace_id <id>)` when the body is a Graph error, else an
///   excerpt of the body; 429 and 5xx are retried first, with exponential backoff, at most
///   [`CloudApiConfig::max_retries`] times;
/// * no answer within [`CloudApiConfig::timeout`] → `timeout` (not retried: the message may
///   have been sent);
/// * a connection failure → `transport` (retried like a 5xx: nothing was sent);
/// * a 2xx answer without a message id → `invalid_json`;
/// * an unsendable message → `invalid_request` (see [`message_payload`]).
#[derive(Clone, Debug)]
pub struct CloudApiMessenger {
    config: CloudApiConfig,
    token: Token,
    http: Transport,
}

impl CloudApiMessenger {
    /// A messenger reading its token from the environment variable named by
    /// [`CloudApiConfig::token_env`].
    pub fn from_env(config: CloudApiConfig) -> AdapterResult<CloudApiMessenger> {
        let token = std::env::var(&config.token_env).ok();
        CloudApiMessenger::build(config, token)
    }

    /// A messenger reading its token from `secrets` under [`CloudApiConfig::token_env`].
    pub fn with_secrets(
        config: CloudApiConfig,
        secrets: &dyn Secrets,
    ) -> AdapterResult<CloudApiMessenger> {
        let token = secrets.get(&config.token_env);
        CloudApiMessenger::build(config, token)
    }

    fn build(config: CloudApiConfig, token: Option<String>) -> AdapterResult<CloudApiMessenger> {
        let token = match token {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                return Err(AdapterError::new(
                    FailureKind::Adapter,
                    format!(
                        "the WhatsApp access token secret `{}` is not set",
                        config.token_env
                    ),
                ));
            }
        };
        if token.chars().any(|c| c.is_control()) {
            return Err(AdapterError::new(
                FailureKind::Adapter,
                format!(
                    "the WhatsApp access token secret `{}` holds control characters",
                    config.token_env
                ),
            ));
        }
        let http = Transport::new(TransportConfig {
            label: "whatsapp",
            timeout: Some(config.timeout),
            retry: RetryPolicy {
                max_retries: config.max_retries,
                base_delay: config.retry_base_delay,
                max_delay: MAX_RETRY_DELAY,
            },
            ..TransportConfig::default()
        })
        .map_err(|e| {
            AdapterError::new(
                FailureKind::Adapter,
                format!("cannot build the HTTP client: {e}"),
            )
        })?;
        Ok(CloudApiMessenger {
            config,
            token: Token(token),
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CloudApiConfig {
        &self.config
    }

    fn url(&self, phone_number_id: &str) -> AdapterResult<String> {
        let id = phone_number_id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(AdapterError::new(
                FailureKind::InvalidRequest,
                format!("invalid sending phone_number_id `{id}`"),
            ));
        }
        Ok(format!(
            "{}/{}/{}/messages",
            self.config.base_url.trim_end_matches('/'),
            self.config.api_version.trim_matches('/'),
            id
        ))
    }

    /// Removes the token from a text bound for an error message.
    fn scrub(&self, text: &str) -> String {
        text.replace(self.token.0.as_str(), "<redacted>")
    }

    /// A request that got no complete answer: `timeout` (not retried: the message may have
    /// been sent), else `transport`.
    fn request_error(&self, e: reqwest::Error) -> AdapterError {
        if e.is_timeout() {
            return AdapterError::new(
                FailureKind::Timeout,
                format!(
                    "WhatsApp Cloud API: no answer within {:?}",
                    self.config.timeout
                ),
            );
        }
        AdapterError::new(
            FailureKind::Transport,
            self.scrub(&format!("WhatsApp Cloud API: {}", e.without_url())),
        )
    }
}

#[async_trait]
impl Messenger for CloudApiMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        let url = self.url(&message.from)?;
        let mut message = message;
        let mut language = self.config.language_code.as_str();
        if let OutboundBody::Template { template_id, .. } = &mut message.body
            && let Some(t) = self.config.templates.get(template_id.as_str())
        {
            // A Kapso template id: Meta knows the template by its name and language.
            template_id.clone_from(&t.name);
            if let Some(l) = &t.language {
                language = l;
            }
        }
        let body = message_payload(&message, language)?;
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| AdapterError::new(FailureKind::InvalidRequest, e.to_string()))?;
        // Retries (429, 5xx, failed connections) and their backoff are the transport's.
        let answer = self
            .http
            .send(|client| {
                client
                    .post(&url)
                    .bearer_auth(&self.token.0)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone())
            })
            .await
            .map_err(|e| self.request_error(e))?;
        let body = answer.body.map_err(|e| match e {
            BodyError::Read(e) => self.request_error(e),
            too_large @ BodyError::TooLarge { .. } => AdapterError::new(
                FailureKind::Transport,
                format!("WhatsApp Cloud API: {too_large}"),
            ),
        })?;
        if answer.status.is_success() {
            return parse_receipt(&body);
        }
        let code = answer.status.as_u16();
        Err(AdapterError::http_status(
            code,
            self.scrub(&error_message(code, &body)),
        ))
    }
}

fn parse_receipt(body: &[u8]) -> AdapterResult<SendReceipt> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        AdapterError::new(
            FailureKind::InvalidJson,
            format!("WhatsApp Cloud API answer is not JSON: {e}"),
        )
    })?;
    value
        .get("messages")
        .and_then(|m| m.get(0))
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(|id| SendReceipt {
            message_id: id.to_owned(),
        })
        .ok_or_else(|| {
            AdapterError::new(
                FailureKind::InvalidJson,
                "WhatsApp Cloud API answer has no messages[0].id",
            )
        })
}

/// The message of a non-2xx answer: the Graph error when the body is one, else an excerpt.
fn error_message(status: u16, body: &[u8]) -> String {
    let graph = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .filter(Value::is_object);
    if let Some(error) = graph {
        let mut text = String::from("Graph API error");
        match error.get("code") {
            Some(Value::Number(n)) => text.push_str(&format!(" {n}")),
            Some(Value::String(s)) => text.push_str(&format!(" {s}")),
            _ => {}
        }
        match error.get("error_subcode") {
            Some(Value::Number(n)) => text.push_str(&format!(" (subcode {n})")),
            Some(Value::String(s)) => text.push_str(&format!(" (subcode {s})")),
            _ => {}
        }
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)");
        text.push_str(&format!(": {}", excerpt(message)));
        if let Some(trace) = error.get("fbtrace_id").and_then(Value::as_str) {
            text.push_str(&format!(" (fbtrace_id {})", excerpt(trace)));
        }
        return format!("HTTP {status}: {text}");
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", excerpt(text.trim()))
    }
}

fn excerpt(text: &str) -> String {
    if text.chars().count() <= MAX_BODY_EXCERPT {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_BODY_EXCERPT).collect();
    out.push('…');
    out
}
