//! `switchboard-llm`: the LLM clients of the Switchboard runtime —
//! [`LanguageModel`](switchboard_runtime::adapters::LanguageModel)s that reach model providers
//! over HTTP, and a [`ModelRouter`] that picks one by model name. It depends on
//! `switchboard-runtime` (the trait) and `switchboard-http` (the transport); it must not depend
//! on another adapter crate or the CLI, and the model, the validator and the runtime must never
//! depend on it.
//!
//! - [`OpenAiCompatible`] speaks the Chat Completions API (`POST {base_url}/chat/completions`):
//!   OpenAI, vLLM, the llama.cpp server, Ollama, LiteLLM and other compatible servers.
//! - [`Anthropic`] speaks the Messages API (`POST {base_url}/v1/messages`).
//! - [`ModelRouter`] routes a request by its `model` (a flow's `provider_model_name` or
//!   `provider_model_id`) through a routing table of exact names and `*` patterns, optionally
//!   rewriting the model name sent.
//!
//! Both clients share one transport ([`ProviderSettings`]): rustls, a per-request timeout
//! (default 60 s) and a connect timeout (10 s), both reported as `timeout`; retries with
//! exponential backoff on 429, 5xx and connection failures (honouring `Retry-After`, capped);
//! other non-2xx statuses as `http_status` carrying the provider's `error.message`; bodies
//! that are not the expected JSON as `invalid_json`; a response size limit (8 MiB). The API
//! key is an [`ApiKey`]: it is sent only in its header, never logged, never printed by
//! `Debug`, and scrubbed from provider error messages.
//!
//! The provider wire types are private to this crate.

mod anthropic;
mod config;
mod openai;
mod router;
mod transport;

pub use anthropic::Anthropic;
pub use config::{LlmConfig, ProviderConfig, ProviderKind, RouteConfig};
pub use openai::OpenAiCompatible;
pub use router::{ModelRouter, Resolved};
pub use transport::{ApiKey, ProviderSettings};
