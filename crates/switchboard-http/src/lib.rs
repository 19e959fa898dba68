//! `switchboard-http`: the one HTTP transport of Switchboard's adapters, and the HTTP adapters
//! of the runtime. It depends on `switchboard-runtime` (the traits it implements) and `reqwest`;
//! it must not depend on another adapter crate or the CLI, and the model, the validator and the
//! runtime must never depend on it.
//!
//! * [`transport`]: [`Transport`], the single way a `reqwest::Client` is built and driven
//!   (connect and total timeouts, the redirect policy, the response size cap, retries with
//!   backoff honouring `Retry-After`). The LLM providers, the WhatsApp Cloud API messenger and
//!   the MCP client use it too.
//! * [`ReqwestHttpClient`]: the [`HttpClient`] of webhook nodes and agent webhook tools
//!   (runtime-semantics §7.6).
//! * [`HttpFunctionInvoker`]: the [`FunctionInvoker`] of function nodes (§7.5, §8) that POSTs
//!   to a registry of endpoints.
//!
//! The two adapters speak HTTP/1.1 over plain TCP or TLS (rustls) with [`reqwest`], and map every failure
//! to the failure kinds of runtime-semantics §6:
//!
//! | what happened | kind |
//! |---|---|
//! | the URL is not absolute `http`/`https`, a bad method or header | `invalid_request` |
//! | the request (or connecting) took too long | `timeout` |
//! | connection refused or reset, TLS failure, more than 10 redirects, a redirect to a non-http(s) URL, a response body over the cap | `transport` |
//! | function: no endpoint for the id or slug | `not_found` |
//! | function: a non-2xx status | `http_status` (with `status`) |
//! | function: a 2xx body that is not a JSON object | `invalid_json` |
//!
//! Error messages never contain request header values (they may hold secrets such as API
//! keys), request bodies or URLs (which may carry tokens in the query string).
//!
//! [`HttpClient`]: switchboard_runtime::adapters::HttpClient
//! [`FunctionInvoker`]: switchboard_runtime::adapters::FunctionInvoker

mod client;
mod function;
pub mod transport;

pub use client::{HttpClientConfig, ReqwestHttpClient};
pub use function::{FunctionConfig, FunctionConfigError, HttpFunctionInvoker};
pub use transport::{Transport, TransportConfig};

/// The `reqwest` every Switchboard HTTP adapter is built on, for the types a [`Transport`]'s
/// callers need (headers, status codes, errors) without a second declaration of the crate.
pub use reqwest;

/// The default cap on a response body: 5 MiB (runtime-semantics §7.6).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

/// The default time allowed to establish a connection: 10 s (runtime-semantics §7.5, §7.6).
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The default number of redirects followed: 10 (runtime-semantics §7.6).
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The default total timeout of a function call: 30 s (runtime-semantics §7.5).
pub const DEFAULT_FUNCTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
