//! The `[llm]` section of `switchboard.toml`: providers and the routing table.

use serde::{Deserialize, Serialize};

/// The `[llm]` configuration: providers and routes.
///
/// ```toml
/// [[llm.providers]]
/// name = "openai"
/// kind = "openai"
/// base_url = "https://api.openai.com/v1"
/// api_key_env = "OPENAI_API_KEY"
///
/// [[llm.providers]]
/// name = "anthropic"
/// kind = "anthropic"
/// api_key_env = "ANTHROPIC_API_KEY"
/// timeout_seconds = 120
/// max_retries = 3
///
/// [[llm.routes]]
/// match = "claude-*"
/// provider = "anthropic"
///
/// [[llm.routes]]
/// match = "*"
/// provider = "openai"
/// model = "gpt-4o-mini"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// The providers, by name.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// The routing table: exact names first, then patterns in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The model map: a Kapso model id (`provider_model_id`, a uuid) → the model name to use
    /// for a node that names its model only by that id (`[llm] models = { "<uuid>" =
    /// "gpt-4o-mini" }`). The engine applies it (`EngineConfig::model_ids`); the name then
    /// goes through the routes like any other.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub models: std::collections::BTreeMap<String, String>,
}

/// One provider (`[[llm.providers]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name routes refer to.
    pub name: String,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// Base URL. Defaults to `https://api.openai.com/v1` (`openai`; the adapter posts to
    /// `{base_url}/chat/completions`) or `https://api.anthropic.com` (`anthropic`; the adapter
    /// posts to `{base_url}/v1/messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the API key. None: no key is sent (local servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Per-request timeout in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt on 429, 5xx and connection failures (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// The API a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions (OpenAI, vLLM, llama.cpp server, Ollama, LiteLLM, …).
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

/// One route (`[[llm.routes]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// An exact model name, or a pattern where `*` matches any run of characters
    /// (`claude-*`, `*`).
    #[serde(rename = "match")]
    pub pattern: String,
    /// The provider's name.
    pub provider: String,
    /// The model name to send instead of the requested one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl RouteConfig {
    /// A route from `pattern` to `provider`, sending the requested model name unchanged.
    pub fn new(pattern: impl Into<String>, provider: impl Into<String>) -> RouteConfig {
        RouteConfig {
            pattern: pattern.into(),
            provider: provider.into(),
            model: None,
        }
    }

    /// The same route, sending `model` instead of the requested model name.
    pub fn rewrite(mut self, model: impl Into<String>) -> RouteConfig {
        self.model = Some(model.into());
        self
    }
}
