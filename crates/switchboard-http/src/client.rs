//! [`ReqwestHttpClient`]: the [`HttpClient`] of webhook nodes (runtime-semantics §7.6).

use std::error::Error as StdError;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, HttpClient, HttpRequest, HttpResponse,
};
use switchboard_runtime::function_answer::excerpt;

use crate::transport::{BodyError, RedirectRefused, Redirects, Transport, TransportConfig};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REDIRECTS, DEFAULT_MAX_RESPONSE_BYTES};

/// How a [`ReqwestHttpClient`] behaves beyond each request's own total timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// Time allowed to establish a connection (default 10 s). A connection not made in time
    /// is a `timeout` failure.
    pub connect_timeout: Duration,
    /// Redirects followed per request (default 10); one more is a `transport` failure.
    pub max_redirects: usize,
    /// Largest response body accepted, in bytes (default 5 MiB); a larger one is a
    /// `transport` failure.
    pub max_response_bytes: usize,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// An [`HttpClient`] over [`reqwest`] (rustls, HTTP/1.1), for webhook nodes and agent webhook
/// tools.
///
/// * Only absolute `http`/`https` URLs are sent; anything else is `invalid_request`, and so is
///   a method or header that HTTP cannot carry.
/// * [`HttpRequest::timeout`] bounds the whole exchange, body included (`timeout`); connecting
///   is bounded by [`HttpClientConfig::connect_timeout`].
/// * Redirects are followed up to [`HttpClientConfig::max_redirects`] times and only to
///   `http`/`https` URLs; past that, or elsewhere, the request fails with `transport`.
/// * The response body is read in chunks and abandoned as soon as it exceeds
///   [`HttpClientConfig::max_response_bytes`] (`transport`, "response larger than …").
/// * Response header names are lowercased and repeated headers joined with `", "`; values
///   that are not UTF-8 are decoded lossily.
/// * Every status is a response (non-2xx included); only transport problems are errors.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct ReqwestHttpClient {
    transport: Transport,
    config: HttpClientConfig,
}

impl ReqwestHttpClient {
    /// A client with the default configuration (10 s to connect, 10 redirects, 5 MiB bodies).
    ///
    /// Fails (kind `adapter`) only if the TLS backend cannot be initialised.
    pub fn new() -> AdapterResult<ReqwestHttpClient> {
        ReqwestHttpClient::with_config(HttpClientConfig::default())
    }

    /// A client with this configuration.
    ///
    /// Fails (kind `adapter`) only if the TLS backend cannot be initialised.
    pub fn with_config(config: HttpClientConfig) -> AdapterResult<ReqwestHttpClient> {
        let transport = Transport::new(TransportConfig {
            label: "http",
            connect_timeout: Some(config.connect_timeout),
            redirects: Redirects::HttpOnly {
                max: config.max_redirects,
            },
            user_agent: true,
            max_response_bytes: Some(config.max_response_bytes),
            ..TransportConfig::default()
        })
        .map_err(|e| {
            AdapterError::new(
                FailureKind::Adapter,
                format!("cannot build the HTTP client: {}", describe(e)),
            )
        })?;
        Ok(ReqwestHttpClient { transport, config })
    }

    /// The configuration in force.
    pub fn config(&self) -> &HttpClientConfig {
        &self.config
    }

    /// Sends the request and reads the capped body; the caller bounds it in time.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> AdapterResult<HttpResponse> {
        let mut builder = self
            .transport
            .client()
            .request(method, url)
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(map_error)?;
        let status = response.status().as_u16();
        // reqwest hands back, unfollowed, a redirect to a scheme it cannot fetch (`file:`, …)
        // without asking the policy: refuse it the same way.
        if matches!(status, 301 | 302 | 303 | 307 | 308)
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            && let Ok(location) = location.to_str()
            && let Ok(target) = response.url().join(location)
            && !matches!(target.scheme(), "http" | "https")
        {
            return Err(AdapterError::new(
                FailureKind::Transport,
                format!(
                    "redirect to a `{}` URL refused (only http and https)",
                    excerpt(target.scheme())
                ),
            ));
        }
        let headers = join_headers(response.headers());
        let body = self
            .transport
            .read_body(&mut response)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => AdapterError::new(
                    FailureKind::Transport,
                    format!("response larger than {}", format_size(limit)),
                ),
                BodyError::Read(e) => map_error(e),
            })?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn send(&self, request: HttpRequest) -> AdapterResult<HttpResponse> {
        let HttpRequest {
            method,
            url,
            headers,
            body,
            timeout,
        } = request;
        let url = parse_url(&url)?;
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!("`{}` is not an HTTP method", excerpt(&method)),
            )
        })?;
        let headers = header_map(&headers)?;
        // reqwest bounds the request too; this also bounds reading the body in chunks.
        match tokio::time::timeout(timeout, self.exchange(method, url, headers, body, timeout))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(timed_out(timeout)),
        }
    }
}

/// Parses an absolute `http`/`https` URL (`invalid_request` otherwise). The URL itself is not
/// quoted in errors: it may carry a token.
pub(crate) fn parse_url(url: &str) -> AdapterResult<Url> {
    let parsed = Url::parse(url).map_err(|e| {
        AdapterError::new(
            FailureKind::InvalidRequest,
            format!("the request URL is not an absolute URL ({e})"),
        )
    })?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(AdapterError::new(
            FailureKind::InvalidRequest,
            format!(
                "the request URL has the scheme `{}` (only http and https are supported)",
                excerpt(other)
            ),
        )),
    }
}

/// The request headers as a [`HeaderMap`], repeated names kept. Errors name the header, never
/// its value.
fn header_map(headers: &[(String, String)]) -> AdapterResult<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!("`{}` is not a valid header name", excerpt(name)),
            )
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!(
                    "the value of header `{}` is not a valid header value",
                    header.as_str()
                ),
            )
        })?;
        map.append(header, value);
    }
    Ok(map)
}

/// Response headers: names lowercased (the `http` crate stores them so), repeated headers
/// joined with `", "` in the order received.
fn join_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .keys()
        .map(|name| {
            let joined = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            (name.as_str().to_ascii_lowercase(), joined)
        })
        .collect()
}

/// A `timeout` failure after `after`.
fn timed_out(after: Duration) -> AdapterError {
    AdapterError::new(
        FailureKind::Timeout,
        format!("no complete response within {}", format_duration(after)),
    )
}

/// Maps a reqwest error to a failure kind. The URL is left out of the message.
fn map_error(e: reqwest::Error) -> AdapterError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RedirectRefused>() {
            return AdapterError::new(FailureKind::Transport, refused.0.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        AdapterError::new(
            FailureKind::Timeout,
            format!("the request timed out ({})", describe(e)),
        )
    } else if e.is_builder() {
        AdapterError::new(FailureKind::InvalidRequest, describe(e))
    } else if e.is_redirect() {
        AdapterError::new(
            FailureKind::Transport,
            format!("cannot follow a redirect ({})", describe(e)),
        )
    } else if e.is_connect() {
        AdapterError::new(
            FailureKind::Transport,
            format!("cannot connect ({})", describe(e)),
        )
    } else {
        AdapterError::new(FailureKind::Transport, describe(e))
    }
}

/// The error and its sources, `": "`-separated, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `5 MiB`, `1 KiB` or `1000 bytes`.
pub(crate) fn format_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `30 s` or `250 ms`.
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(format_size(5 * 1024 * 1024), "5 MiB");
        assert_eq!(format_size(2048), "2 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
        assert_eq!(format_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 65);
    }

    #[test]
    fn bad_headers_name_the_header_not_the_value() {
        let e = header_map(&[("authorization".into(), "Bearer s3cret\n".into())]).unwrap_err();
        assert_eq!(e.kind, "invalid_request");
        assert!(e.message.contains("authorization"));
        assert!(!e.message.contains("s3cret"));
        let e = header_map(&[("bad name".into(), "v".into())]).unwrap_err();
        assert_eq!(e.kind, "invalid_request");
    }

    #[test]
    fn only_http_urls() {
        assert!(parse_url("http://127.0.0.1/").is_ok());
        assert!(parse_url("https://example.com/x?y=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "/relative",
            "",
            "mailto:a@b",
        ] {
            assert_eq!(parse_url(bad).unwrap_err().kind, "invalid_request", "{bad}");
        }
    }
}
