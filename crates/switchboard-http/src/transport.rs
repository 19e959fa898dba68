//! [`Transport`]: the one way Switchboard builds and drives a [`reqwest::Client`] — connect and
//! total timeouts, the redirect policy, the response size cap, and retries with exponential
//! backoff that honour `Retry-After` (capped).
//!
//! Every adapter that speaks HTTP goes through it: [`ReqwestHttpClient`](crate::ReqwestHttpClient)
//! and [`HttpFunctionInvoker`](crate::HttpFunctionInvoker) here, the LLM providers
//! (`switchboard-llm`), the WhatsApp Cloud API messenger (`switchboard-whatsapp`) and the MCP
//! client (`switchboard-mcp`). Each keeps its own error messages: failures are handed back as
//! [`reqwest::Error`]s and [`BodyError`]s for the caller to map to the failure kinds of
//! runtime-semantics §6.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode, redirect};

/// The `User-Agent` of a transport with [`TransportConfig::user_agent`]:
/// `switchboard/<version>`.
pub const USER_AGENT: &str = concat!("switchboard/", env!("CARGO_PKG_VERSION"));

/// The most a body buffer is given before the first chunk arrives: 1 MiB.
const MAX_PREALLOCATION: usize = 1024 * 1024;

/// How a [`Transport`] follows redirects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Redirects {
    /// reqwest's own policy: at most 10 redirects.
    #[default]
    Reqwest,
    /// At most `max` redirects, each to an `http` or `https` URL. A refused redirect fails the
    /// request with a [`RedirectRefused`] in the error's source chain.
    HttpOnly {
        /// Redirects followed per request; one more is refused.
        max: usize,
    },
}

/// Why a redirect was refused ([`Redirects::HttpOnly`]): "too many redirects (more than N)" or
/// "redirect to a \`ftp\` URL refused (only http and https)". Found in the source chain of the
/// request's [`reqwest::Error`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedirectRefused(pub String);

/// When and how long a [`Transport::send`] waits before trying again.
///
/// A request is retried when connecting failed (nothing was sent) or when the answer is 429 or
/// 5xx (the server did not act on it), at most [`max_retries`](Self::max_retries) times. Other
/// failures, a timeout included (the request may have been acted on), are not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before the first retry, doubled at each further retry.
    pub base_delay: Duration,
    /// The cap on any delay between attempts, a `Retry-After` included.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// No retries.
    pub const NEVER: RetryPolicy = RetryPolicy {
        max_retries: 0,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The delay before retry `attempt + 1` (`attempt` counts from 0): the server's
    /// `Retry-After` if it sent one, else `base_delay × 2^attempt`; either capped at
    /// `max_delay`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self.base_delay.saturating_mul(2u32.saturating_pow(attempt));
        retry_after.unwrap_or(exponential).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::NEVER
    }
}

/// Whether an answer with `status` is worth retrying: 429 and every 5xx.
pub fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The `Retry-After` header as a delay: a number of seconds (fractions accepted); an HTTP date,
/// a negative number or anything else is ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// How a [`Transport`] is built and behaves. The default has no timeouts, reqwest's redirect
/// policy, no `User-Agent`, no size cap and no retries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportConfig {
    /// Names the peer in log records (`openai`, `whatsapp`, …).
    pub label: &'static str,
    /// Time allowed to establish a connection; `None`: bounded only by the total timeout.
    pub connect_timeout: Option<Duration>,
    /// Bound on one attempt, from sending to the end of the response body; `None`: none, unless
    /// the request sets one ([`RequestBuilder::timeout`]).
    pub timeout: Option<Duration>,
    /// Which redirects are followed.
    pub redirects: Redirects,
    /// Whether requests carry `User-Agent: switchboard/<version>` ([`USER_AGENT`]).
    pub user_agent: bool,
    /// The largest response body read, in bytes; `None`: no cap.
    pub max_response_bytes: Option<usize>,
    /// Retries of [`Transport::send`].
    pub retry: RetryPolicy,
}

/// A response body that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than [`TransportConfig::max_response_bytes`] (declared or received);
    /// reading stopped there.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// Reading failed (the connection dropped, the timeout ran out, …).
    #[error("cannot read the response body")]
    Read(#[source] reqwest::Error),
}

/// The answer that ended a [`Transport::send`]: a status that is not retried (or the last
/// attempt's), its headers, and its body as far as it could be read.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`TransportConfig::max_response_bytes`]), or why it could not be read.
    pub body: Result<Vec<u8>, BodyError>,
}

/// A [`reqwest::Client`] built from a [`TransportConfig`], and the ways to use it: reading a
/// capped body ([`Transport::read_body`]) and sending with retries ([`Transport::send`]).
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
    config: TransportConfig,
}

impl Transport {
    /// The client `config` describes (rustls, HTTP/1.1). Fails only if the TLS backend cannot
    /// be initialised.
    pub fn new(config: TransportConfig) -> Result<Transport, reqwest::Error> {
        let mut builder = reqwest::Client::builder();
        if let Some(timeout) = config.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = config.timeout {
            builder = builder.timeout(timeout);
        }
        if let Redirects::HttpOnly { max } = config.redirects {
            builder = builder.redirect(http_only(max));
        }
        if config.user_agent {
            builder = builder.user_agent(USER_AGENT);
        }
        let client = builder.build()?;
        Ok(Transport { client, config })
    }

    /// The client, for requests built by hand (and for libraries that take a
    /// [`reqwest::Client`], such as `rmcp`).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Reads `response`'s body in chunks, giving up as soon as it exceeds
    /// [`TransportConfig::max_response_bytes`] (at once when the declared length does).
    pub async fn read_body(&self, response: &mut Response) -> Result<Vec<u8>, BodyError> {
        let cap = self.config.max_response_bytes.unwrap_or(usize::MAX);
        let too_large = || BodyError::TooLarge { limit: cap };
        let declared = response.content_length();
        if declared.is_some_and(|n| n > cap as u64) {
            return Err(too_large());
        }
        // Trust a declared length for the first allocation, within reason.
        let first = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut body = Vec::with_capacity(first.min(cap).min(MAX_PREALLOCATION));
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
            if body.len().saturating_add(chunk.len()) > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Sends the request `build` makes (once per attempt), retrying as
    /// [`TransportConfig::retry`] says: after a failure to connect, and after a 429 or 5xx
    /// answer (whose body is drained first, errors ignored), waiting
    /// [`RetryPolicy::backoff`] — the answer's `Retry-After` if any — in between.
    ///
    /// The result is the first answer that is not retried, or the last one, with its body read
    /// ([`Transport::read_body`]); or the error of the last attempt that got no answer.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, reqwest::Error> {
        let retry = self.config.retry;
        let mut attempt: u32 = 0;
        loop {
            let retries_left = attempt < retry.max_retries;
            let mut response = match build(&self.client).send().await {
                Ok(response) => response,
                Err(e) if e.is_connect() && retries_left => {
                    tokio::time::sleep(retry.backoff(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = response.status();
            if is_retryable(status) && retries_left {
                let delay = retry.backoff(attempt, retry_after(response.headers()));
                // Drain what arrives of the body so the connection can be reused; its content
                // does not matter.
                let _ = self.read_body(&mut response).await;
                tracing::warn!(
                    peer = %self.config.label,
                    status = status.as_u16(),
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "answered with a retryable status"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            let headers = response.headers().clone();
            let body = self.read_body(&mut response).await;
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
    }
}

/// The [`Redirects::HttpOnly`] policy.
fn http_only(max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let scheme = attempt.url().scheme();
        if scheme != "http" && scheme != "https" {
            let message = format!("redirect to a `{scheme}` URL refused (only http and https)");
            attempt.error(RedirectRefused(message))
        } else if attempt.previous().len() > max {
            let message = format!("too many redirects (more than {max})");
            attempt.error(RedirectRefused(message))
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(policy.backoff(0, None), Duration::from_millis(200));
        assert_eq!(policy.backoff(1, None), Duration::from_millis(400));
        assert_eq!(policy.backoff(2, None), Duration::from_millis(800));
        assert_eq!(policy.backoff(3, None), Duration::from_secs(1));
        assert_eq!(policy.backoff(40, None), Duration::from_secs(1));
        assert_eq!(
            policy.backoff(0, Some(Duration::from_millis(50))),
            Duration::from_millis(50)
        );
        assert_eq!(
            policy.backoff(0, Some(Duration::from_secs(30))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn retry_after_is_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        for (text, expected) in [
            ("3", Some(Duration::from_secs(3))),
            (" 1.5 ", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("-1", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ] {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(text));
            assert_eq!(retry_after(&headers), expected, "{text}");
        }
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_retryable(StatusCode::BAD_REQUEST));
        assert!(!is_retryable(StatusCode::OK));
    }
}
