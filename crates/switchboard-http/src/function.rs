//! [`HttpFunctionInvoker`]: the [`FunctionInvoker`] of function nodes (runtime-semantics §7.5,
//! §8), POSTing to a registry of endpoints.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_runtime::adapters::EnvSecrets;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, FunctionCall, FunctionInvoker, HttpClient, HttpRequest, Secrets,
};

use crate::DEFAULT_FUNCTION_TIMEOUT;
use crate::client::{ReqwestHttpClient, parse_url};
use switchboard_runtime::function_answer::{excerpt, judge, unresolved};

/// One `[[functions]]` entry of `switchboard.toml`: where a function lives.
///
/// ```toml
/// [[functions]]
/// id = "3f6c…"                 # the flow's `function_id` (optional if `slug` is set)
/// slug = "lookup-order"        # the flow's `function_slug` (optional if `id` is set)
/// url = "https://functions.example.com/lookup-order"
/// api_key_header = "X-Api-Key" # optional, with api_key_env
/// api_key_env = "LOOKUP_API_KEY"
/// timeout_seconds = 10         # optional, default 30
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// The function id (matched against a node's `function_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function slug (matched against a node's `function_slug`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// The endpoint: an absolute `http`/`https` URL.
    pub url: String,
    /// The header carrying the API key (set together with `api_key_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// The environment variable (secret) holding the API key. Its value is read at each call
    /// and never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Total timeout of a call, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

impl FunctionConfig {
    /// An entry for `url` known by `id` (builder style; see [`FunctionConfig::slug`]).
    pub fn with_id(id: impl Into<String>, url: impl Into<String>) -> FunctionConfig {
        FunctionConfig {
            id: Some(id.into()),
            slug: None,
            url: url.into(),
            api_key_header: None,
            api_key_env: None,
            timeout_seconds: None,
        }
    }

    /// An entry for `url` known by `slug`.
    pub fn with_slug(slug: impl Into<String>, url: impl Into<String>) -> FunctionConfig {
        FunctionConfig {
            id: None,
            slug: Some(slug.into()),
            url: url.into(),
            api_key_header: None,
            api_key_env: None,
            timeout_seconds: None,
        }
    }

    /// Also known by `slug` (builder style).
    pub fn slug(mut self, slug: impl Into<String>) -> FunctionConfig {
        self.slug = Some(slug.into());
        self
    }

    /// Sends the secret `env` in header `header` (builder style).
    pub fn api_key(mut self, header: impl Into<String>, env: impl Into<String>) -> FunctionConfig {
        self.api_key_header = Some(header.into());
        self.api_key_env = Some(env.into());
        self
    }

    /// Total timeout in seconds (builder style).
    pub fn timeout_seconds(mut self, seconds: f64) -> FunctionConfig {
        self.timeout_seconds = Some(seconds);
        self
    }
}

/// A `[[functions]]` entry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionConfigError {
    /// The entry's position in the list.
    pub index: usize,
    /// What is wrong (no secret values).
    pub message: String,
}

impl fmt::Display for FunctionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "functions[{}]: {}", self.index, self.message)
    }
}

impl std::error::Error for FunctionConfigError {}

/// A registry entry, validated.
#[derive(Clone, Debug)]
struct Endpoint {
    /// The id or slug, for messages.
    name: String,
    url: String,
    /// `(header, secret name)`.
    api_key: Option<(String, String)>,
    timeout: Option<Duration>,
}

/// A [`FunctionInvoker`] that POSTs the §8 payload ([`FunctionCall::payload`]) to the endpoint
/// registered for the call's `function_id`, else its `function_slug` (neither: `not_found`).
///
/// * Headers: `Content-Type: application/json`, `X-Switchboard-Execution-Id`,
///   `X-Switchboard-Node-Id` and, when configured, the API key header with the value of its
///   secret (read through [`Secrets`] at each call; missing: `secret_missing`).
/// * Timeout 30 s in total unless the entry or [`HttpFunctionInvoker::with_default_timeout`]
///   says otherwise; connecting, redirects and the body cap are the client's
///   ([`HttpClientConfig`](crate::HttpClientConfig)).
/// * A 2xx whose body parses as a JSON object (whatever the content type) is the result; any
///   other status is `http_status`; any other body is `invalid_json`.
///
/// Ids and slugs share one namespace: a registry can not hold the same string twice.
pub struct HttpFunctionInvoker {
    client: ReqwestHttpClient,
    endpoints: Vec<Endpoint>,
    index: HashMap<String, usize>,
    secrets: Arc<dyn Secrets>,
    default_timeout: Duration,
}

impl fmt::Debug for HttpFunctionInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.index.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("HttpFunctionInvoker")
            .field("functions", &names)
            .field("default_timeout", &self.default_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpFunctionInvoker {
    /// A registry of `functions` called through `client`, reading API keys from the process
    /// environment ([`EnvSecrets`]).
    ///
    /// Each entry needs an `id` or a `slug` (non-empty, unique across ids and slugs), an
    /// absolute `http`/`https` `url`, both or neither of `api_key_header` (a valid header name)
    /// and `api_key_env`, and a positive, finite `timeout_seconds` if any.
    pub fn new(
        client: ReqwestHttpClient,
        functions: &[FunctionConfig],
    ) -> Result<HttpFunctionInvoker, FunctionConfigError> {
        let mut endpoints = Vec::with_capacity(functions.len());
        let mut index = HashMap::new();
        for (i, f) in functions.iter().enumerate() {
            let error = |message: String| FunctionConfigError { index: i, message };
            let keys: Vec<&String> = f.id.iter().chain(f.slug.iter()).collect();
            if keys.is_empty() {
                return Err(error("needs an `id` or a `slug`".to_owned()));
            }
            if keys.iter().any(|k| k.is_empty()) {
                return Err(error("`id` and `slug` must not be empty".to_owned()));
            }
            parse_url(&f.url).map_err(|e| error(format!("`url`: {}", e.message)))?;
            let api_key = match (&f.api_key_header, &f.api_key_env) {
                (None, None) => None,
                (Some(header), Some(env)) => {
                    HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                        error(format!(
                            "`api_key_header`: `{}` is not a valid header name",
                            excerpt(header)
                        ))
                    })?;
                    if env.is_empty() {
                        return Err(error("`api_key_env` must not be empty".to_owned()));
                    }
                    Some((header.clone(), env.clone()))
                }
                _ => {
                    return Err(error(
                        "`api_key_header` and `api_key_env` go together".to_owned(),
                    ));
                }
            };
            let timeout = match f.timeout_seconds {
                None => None,
                Some(s) if s.is_finite() && s > 0.0 => Some(
                    Duration::try_from_secs_f64(s)
                        .map_err(|_| error("`timeout_seconds` is too large".to_owned()))?,
                ),
                Some(_) => {
                    return Err(error(
                        "`timeout_seconds` must be a positive number".to_owned(),
                    ));
                }
            };
            let at = endpoints.len();
            for key in &keys {
                if index.insert((*key).clone(), at).is_some() {
                    return Err(error(format!(
                        "`{}` is registered twice (ids and slugs share one namespace)",
                        excerpt(key)
                    )));
                }
            }
            endpoints.push(Endpoint {
                name: keys[0].clone(),
                url: f.url.clone(),
                api_key,
                timeout,
            });
        }
        Ok(HttpFunctionInvoker {
            client,
            endpoints,
            index,
            secrets: Arc::new(EnvSecrets),
            default_timeout: DEFAULT_FUNCTION_TIMEOUT,
        })
    }

    /// Reads API keys from `secrets` instead of the process environment (builder style).
    pub fn with_secrets(mut self, secrets: Arc<dyn Secrets>) -> HttpFunctionInvoker {
        self.secrets = secrets;
        self
    }

    /// The total timeout of entries without `timeout_seconds` (default 30 s; builder style).
    pub fn with_default_timeout(mut self, timeout: Duration) -> HttpFunctionInvoker {
        self.default_timeout = timeout;
        self
    }

    /// The endpoint URL registered for a call, if any (tries `function_id`, then
    /// `function_slug`).
    pub fn endpoint_url(&self, call: &FunctionCall<'_>) -> Option<&str> {
        self.resolve(call).map(|e| e.url.as_str())
    }

    fn resolve(&self, call: &FunctionCall<'_>) -> Option<&Endpoint> {
        [call.function_id, call.function_slug]
            .into_iter()
            .flatten()
            .find_map(|key| self.index.get(key))
            .and_then(|&i| self.endpoints.get(i))
    }
}

#[async_trait]
impl FunctionInvoker for HttpFunctionInvoker {
    async fn invoke(&self, call: &FunctionCall<'_>) -> AdapterResult<Value> {
        let Some(endpoint) = self.resolve(call) else {
            return Err(unresolved(call, "function registered"));
        };
        let name = excerpt(&endpoint.name);
        let body = serde_json::to_vec(&call.payload()).map_err(|e| {
            AdapterError::new(
                FailureKind::InvalidRequest,
                format!("function `{name}`: cannot encode the request ({e})"),
            )
        })?;
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "X-Switchboard-Execution-Id".to_owned(),
                call.execution_id.to_owned(),
            ),
            ("X-Switchboard-Node-Id".to_owned(), call.node_id.to_owned()),
        ];
        if let Some((header, env)) = &endpoint.api_key {
            let Some(value) = self.secrets.get(env) else {
                return Err(AdapterError::new(
                    FailureKind::SecretMissing,
                    format!("function `{name}`: the API key secret `{env}` is not set"),
                ));
            };
            headers.push((header.clone(), value));
        }
        let request = HttpRequest {
            method: "POST".to_owned(),
            url: endpoint.url.clone(),
            headers,
            body: Some(body),
            timeout: endpoint.timeout.unwrap_or(self.default_timeout),
        };
        let response = self.client.send(request).await.map_err(|mut e| {
            e.message = format!("function `{name}`: {}", e.message);
            e
        })?;
        judge(&name, response.status, &response.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ReqwestHttpClient {
        ReqwestHttpClient::new().unwrap()
    }

    #[test]
    fn config_is_validated() {
        let bad = [
            FunctionConfig {
                id: None,
                ..FunctionConfig::with_id("x", "http://h/")
            },
            FunctionConfig::with_id("", "http://h/"),
            FunctionConfig::with_id("x", "ftp://h/"),
            FunctionConfig::with_id("x", "not a url"),
            FunctionConfig {
                api_key_header: Some("X-Key".into()),
                ..FunctionConfig::with_id("x", "http://h/")
            },
            FunctionConfig::with_id("x", "http://h/").api_key("bad header", "ENV"),
            FunctionConfig::with_id("x", "http://h/").api_key("X-Key", ""),
            FunctionConfig::with_id("x", "http://h/").timeout_seconds(0.0),
            FunctionConfig::with_id("x", "http://h/").timeout_seconds(-1.0),
            FunctionConfig::with_id("x", "http://h/").timeout_seconds(f64::NAN),
            FunctionConfig::with_id("x", "http://h/").timeout_seconds(f64::INFINITY),
            FunctionConfig::with_id("x", "http://h/").timeout_seconds(1e300),
        ];
        for f in bad {
            assert!(
                HttpFunctionInvoker::new(client(), std::slice::from_ref(&f)).is_err(),
                "{f:?}"
            );
        }
        let dup = [
            FunctionConfig::with_id("a", "http://h/"),
            FunctionConfig::with_slug("a", "http://h/"),
        ];
        let e = HttpFunctionInvoker::new(client(), &dup).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().starts_with("functions[1]: "));
        let ok = HttpFunctionInvoker::new(
            client(),
            &[FunctionConfig::with_id("a", "http://h/")
                .slug("b")
                .api_key("X-Key", "KEY")
                .timeout_seconds(0.5)],
        )
        .unwrap();
        assert!(format!("{ok:?}").contains("\"a\", \"b\""));
    }

    #[test]
    fn config_from_toml_like_json() {
        let f: FunctionConfig = serde_json::from_value(serde_json::json!({
            "slug": "lookup", "url": "https://h/x", "api_key_header": "X-Key",
            "api_key_env": "KEY", "timeout_seconds": 5
        }))
        .unwrap();
        assert_eq!(f.slug.as_deref(), Some("lookup"));
        assert_eq!(f.timeout_seconds, Some(5.0));
        let unknown = serde_json::from_value::<FunctionConfig>(serde_json::json!({
            "id": "x", "url": "https://h/", "api_key": "oops"
        }));
        assert!(unknown.is_err());
    }
}
