//! What the LLM clients share on top of [`switchboard_http::Transport`] (which does the
//! timeouts, retries with backoff and the response size limit): the provider settings, error
//! mapping and the API key that never leaks.

use std::fmt;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use serde_json::Value;
use switchboard_http::reqwest::StatusCode;
use switchboard_http::reqwest::header::{self, HeaderMap, HeaderValue};
use switchboard_http::transport::{BodyError, RetryPolicy, TransportConfig};
use switchboard_runtime::adapters::{AdapterError, AdapterResult};

use crate::config::{ProviderConfig, ProviderKind};

/// Default per-request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of retries after the first attempt.
const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default first backoff delay (doubled on each retry).
const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(200);
/// Default cap on a backoff delay, `Retry-After` included.
const DEFAULT_MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// Default response size limit.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// The longest provider error message kept in an [`AdapterError`].
const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// An API key. Its `Debug` output is redacted; it is only ever written into the request
/// header that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, for the header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `value` as a sensitive header value (`prefix` + key).
    pub(crate) fn header_value(&self, prefix: &str) -> AdapterResult<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0)).map_err(|_| {
            AdapterError::new(
                FailureKind::Adapter,
                "the API key contains characters not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How an LLM client reaches its provider.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// Base URL (a trailing `/` is ignored).
    pub base_url: String,
    /// The API key, if the provider wants one.
    pub api_key: Option<ApiKey>,
    /// Timeout of one attempt, from connecting to the end of the response body (default 60 s).
    pub timeout: Duration,
    /// Connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and connection failures (default 2).
    pub max_retries: u32,
    /// First backoff delay, doubled on each retry (default 200 ms).
    pub retry_base_delay: Duration,
    /// Cap on any delay between attempts, a `Retry-After` included (default 10 s).
    pub max_retry_delay: Duration,
    /// The largest response body accepted (default 8 MiB).
    pub max_response_bytes: usize,
}

impl ProviderSettings {
    /// Defaults for a provider at `base_url`, without an API key.
    pub fn new(base_url: impl Into<String>) -> ProviderSettings {
        ProviderSettings {
            base_url: base_url.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
            max_retry_delay: DEFAULT_MAX_RETRY_DELAY,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The same settings with an API key.
    pub fn with_api_key(mut self, key: ApiKey) -> ProviderSettings {
        self.api_key = Some(key);
        self
    }

    /// Settings from a provider's configuration, looking the API key up with `env` (the
    /// process environment in [`ModelRouter::from_env`](crate::ModelRouter::from_env)). A
    /// configured `api_key_env` that `env` does not know is an `adapter` error naming the
    /// variable.
    pub fn from_config(
        config: &ProviderConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> AdapterResult<ProviderSettings> {
        let base_url = config.base_url.clone().unwrap_or_else(|| {
            match config.kind {
                ProviderKind::Openai => "https://api.openai.com/v1",
                ProviderKind::Anthropic => "https://api.anthropic.com",
            }
            .to_owned()
        });
        let mut settings = ProviderSettings::new(base_url);
        if let Some(var) = &config.api_key_env {
            let key = env(var).filter(|k| !k.is_empty()).ok_or_else(|| {
                AdapterError::new(
                    FailureKind::Adapter,
                    format!(
                        "provider `{}`: environment variable `{var}` is not set",
                        config.name
                    ),
                )
            })?;
            settings.api_key = Some(ApiKey::new(key));
        }
        if let Some(seconds) = config.timeout_seconds {
            settings.timeout = Duration::from_secs(seconds);
        }
        if let Some(retries) = config.max_retries {
            settings.max_retries = retries;
        }
        Ok(settings)
    }
}

/// A configured HTTP client for one provider: a [`switchboard_http::Transport`] with the
/// provider's timeouts, size limit and retry policy, and the provider's error mapping.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Names the provider in error messages (`openai`, `anthropic`).
    label: &'static str,
    http: switchboard_http::Transport,
    settings: ProviderSettings,
}

impl Transport {
    /// A transport with `settings`.
    pub(crate) fn new(label: &'static str, settings: ProviderSettings) -> AdapterResult<Transport> {
        let http = switchboard_http::Transport::new(TransportConfig {
            label,
            connect_timeout: Some(settings.connect_timeout),
            timeout: Some(settings.timeout),
            user_agent: true,
            max_response_bytes: Some(settings.max_response_bytes),
            retry: RetryPolicy {
                max_retries: settings.max_retries,
                base_delay: settings.retry_base_delay,
                max_delay: settings.max_retry_delay,
            },
            ..TransportConfig::default()
        })
        .map_err(|e| {
            AdapterError::new(
                FailureKind::Adapter,
                format!("{label}: cannot build the HTTP client: {}", chain(&e)),
            )
        })?;
        Ok(Transport {
            label,
            http,
            settings,
        })
    }

    /// The API key, if any.
    pub(crate) fn api_key(&self) -> Option<&ApiKey> {
        self.settings.api_key.as_ref()
    }

    /// `{base_url}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// Posts `body` as JSON to `url` with `headers`, retrying as configured (on 429, 5xx and
    /// connection failures, honouring `Retry-After`), and parses the JSON answer.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> AdapterResult<Value> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!("{}: cannot encode the request: {e}", self.label),
            )
        })?;
        let answer = self
            .http
            .send(|client| {
                client
                    .post(url)
                    .headers(headers.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json")
                    .body(bytes.clone())
            })
            .await
            .map_err(|e| self.map_reqwest(&e))?;
        let status = answer.status;
        if status.is_success() {
            let body = answer.body.map_err(|e| self.body_error(e))?;
            return serde_json::from_slice(&body).map_err(|e| {
                AdapterError::new(
                    FailureKind::InvalidJson,
                    format!(
                        "{}: the response body (HTTP {}) is not JSON: {e}",
                        self.label,
                        status.as_u16()
                    ),
                )
            });
        }
        let body = answer.body.unwrap_or_default();
        Err(self.status_error(status, &body))
    }

    /// A body that could not be read: over the size limit (`adapter`), or a transport failure.
    fn body_error(&self, error: BodyError) -> AdapterError {
        match error {
            BodyError::TooLarge { limit } => AdapterError::new(
                FailureKind::Adapter,
                format!(
                    "{}: the response body exceeds the limit of {limit} bytes",
                    self.label
                ),
            ),
            BodyError::Read(e) => self.map_reqwest(&e),
        }
    }

    /// A non-2xx status as an `http_status` error with the provider's message, scrubbed.
    fn status_error(&self, status: StatusCode, body: &[u8]) -> AdapterError {
        let detail = match provider_message(body) {
            Some(message) => truncate(&redact(&message, self.api_key())),
            None if body.is_empty() => "empty body".to_owned(),
            None => format!("a non-JSON error body of {} bytes", body.len()),
        };
        AdapterError::http_status(
            status.as_u16(),
            format!("{} returned HTTP {}: {detail}", self.label, status.as_u16()),
        )
    }

    /// A transport failure as `timeout` or `transport`, without the URL.
    fn map_reqwest(&self, e: &switchboard_http::reqwest::Error) -> AdapterError {
        if e.is_timeout() {
            let what = if e.is_connect() {
                format!(
                    "connecting timed out after {:?}",
                    self.settings.connect_timeout
                )
            } else {
                format!("the request timed out after {:?}", self.settings.timeout)
            };
            return AdapterError::new(FailureKind::Timeout, format!("{}: {what}", self.label));
        }
        let what = if e.is_connect() {
            "could not connect"
        } else {
            "the request failed"
        };
        AdapterError::new(
            FailureKind::Transport,
            redact(
                &format!("{}: {what}: {}", self.label, chain(e)),
                self.api_key(),
            ),
        )
    }
}

/// An error and its sources, `: `-separated, without reqwest's URL.
fn chain(e: &switchboard_http::reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = String::from("error");
    let mut source = e.source();
    let mut first = true;
    while let Some(s) = source {
        if first {
            out.clear();
            first = false;
        } else {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
        source = s.source();
    }
    if first {
        // No source: reqwest's own message, which may carry the URL; keep only its kind.
        out = if e.is_builder() {
            "invalid request".to_owned()
        } else if e.is_body() || e.is_decode() {
            "error reading the response body".to_owned()
        } else {
            "error".to_owned()
        };
    }
    out
}

/// The provider's error message: `error.message` (OpenAI, Anthropic, most compatible servers),
/// else `error` as a string (Ollama), else `message` or `detail`.
fn provider_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = match value.get("error") {
        Some(Value::Object(error)) => error.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .or_else(|| value.get("message").and_then(Value::as_str))
    .or_else(|| value.get("detail").and_then(Value::as_str))?;
    Some(text.to_owned())
}

/// `message` with the key, and words that look like a masked copy of it (sharing its first six
/// or last four characters, as providers echo `sk-abc…wxyz`), replaced by `[redacted]`.
pub(crate) fn redact(message: &str, key: Option<&ApiKey>) -> String {
    let Some(key) = key.map(ApiKey::expose).filter(|k| !k.is_empty()) else {
        return message.to_owned();
    };
    let message = message.replace(key, "[redacted]");
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return message;
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    message
        .split(' ')
        .map(|word| {
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '*');
            if bare.len() >= 8 && (bare.starts_with(&head) || bare.ends_with(&tail)) {
                word.replace(bare, "[redacted]")
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most [`MAX_ERROR_MESSAGE_CHARS`] characters.
fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_key_and_masked_copies() {
        let key = ApiKey::new("sk-test-0123456789abcdef");
        assert_eq!(
            redact(
                "Incorrect API key provided: sk-tes**********cdef. See docs.",
                Some(&key)
            ),
            "Incorrect API key provided: [redacted]. See docs."
        );
        assert_eq!(
            redact("bad key sk-test-0123456789abcdef!", Some(&key)),
            "bad key [redacted]!"
        );
        assert_eq!(redact("nothing here", Some(&key)), "nothing here");
    }

    #[test]
    fn provider_messages() {
        assert_eq!(
            provider_message(br#"{"error":{"message":"m","type":"t"}}"#).as_deref(),
            Some("m")
        );
        assert_eq!(
            provider_message(br#"{"error":"model not found"}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(provider_message(b"<html>").as_deref(), None);
        assert_eq!(truncate(&"é".repeat(2000)).chars().count(), 1001);
    }
}
