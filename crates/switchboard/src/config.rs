//! `switchboard.toml`: the deployment configuration the CLI reads with `--config`.
//!
//! Every section is optional. Secrets (API keys, tokens, the app secret) are never in the file:
//! it names the environment variables that hold them. In `chat` and `test`, each section present
//! replaces one offline adapter with a real one: `[llm]` the language model, `[http]` (even
//! empty) the HTTP client of webhook nodes and agent webhook tools, `[mcp]` (even empty) the MCP
//! client, `[functions]` the function invoker (HTTP endpoints, then local JavaScript functions);
//! what no section covers stays offline. `serve` builds every family explicitly (see
//! `serve.rs`): `[whatsapp]` is its messenger, `[api]` opens the executions API, `[server]` sets
//! its limits and worker. `[templates]` is not an adapter: it bounds every template evaluation
//! of `chat`, `test` and `serve`. The full reference is `docs/configuration.md`.
//!
//! ```toml
//! [[llm.providers]]
//! name = "openai"
//! kind = "openai"                 # OpenAI-compatible: also vLLM, llama.cpp server, Ollama, LiteLLM
//! api_key_env = "OPENAI_API_KEY"
//!
//! [[llm.providers]]
//! name = "anthropic"
//! kind = "anthropic"
//! api_key_env = "ANTHROPIC_API_KEY"
//!
//! [[llm.routes]]
//! match = "claude-*"
//! provider = "anthropic"
//!
//! [[llm.routes]]
//! match = "*"
//! provider = "openai"
//!
//! [llm.models]                    # a Kapso model id (provider_model_id) → the name to use
//! "198e0c41-7a4f-4c9b-9c1e-5d2b8f0a6e31" = "gpt-4o-mini"
//!
//! [whatsapp]
//! phone_number_id = "106540352242922"
//! access_token_env = "WHATSAPP_ACCESS_TOKEN"
//! app_secret_env = "WHATSAPP_APP_SECRET"
//! verify_token_env = "WHATSAPP_VERIFY_TOKEN"
//!
//! [whatsapp.templates]            # a Kapso template id → Meta's template name and language
//! "7f3c9a10-2b44-4d0e-9c55-1a2b3c4d5e6f" = { name = "order_update", language = "es" }
//!
//! [http]
//! connect_timeout_seconds = 10
//! max_redirects = 5
//! max_response_bytes = 1048576
//!
//! [mcp]
//! timeout_seconds = 30
//!
//! [functions]
//! timeout_seconds = 30
//! dir = "functions"               # local JavaScript functions, relative to this file
//! env = ["STRIPE_KEY"]            # variables they see as env.NAME
//!
//! [[functions.endpoints]]
//! slug = "lookup-order"
//! url = "https://functions.example.com/lookup-order"
//! api_key_header = "X-Api-Key"
//! api_key_env = "FUNCTIONS_API_KEY"
//!
//! [api]
//! token_envs = ["SWITCHBOARD_API_TOKEN"]
//! phone_number_ids = ["106540352242922"]
//!
//! [server]
//! worker_concurrency = 32
//! lease_seconds = 30
//!
//! [templates]
//! fuel = 500000
//! max_output_bytes = 1048576
//! recursion_limit = 500
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use switchboard_http::{FunctionConfig, HttpClientConfig, HttpFunctionInvoker, ReqwestHttpClient};
use switchboard_js::{JsFunctionInvoker, JsOptions};
use switchboard_llm::{LlmConfig, ModelRouter};
use switchboard_mcp::{McpClientConfig, RmcpClient};
use switchboard_runtime::adapters::{FunctionInvoker, LanguageModel};
use switchboard_runtime::store::ExecutionStore;
use switchboard_runtime::{Adapters, TemplateLimits};
use switchboard_whatsapp::{CloudApiConfig, CloudApiMessenger};

/// The contents of `switchboard.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Language-model providers and routes.
    #[serde(default)]
    pub llm: Option<LlmConfig>,
    /// The WhatsApp Cloud API (`serve` only).
    #[serde(default)]
    pub whatsapp: Option<WhatsAppSection>,
    /// The HTTP client of webhook nodes and agent webhook tools.
    #[serde(default)]
    pub http: Option<HttpSection>,
    /// The MCP client of agent MCP tools.
    #[serde(default)]
    pub mcp: Option<McpSection>,
    /// Functions: HTTP endpoints.
    #[serde(default)]
    pub functions: Option<FunctionsSection>,
    /// The executions API of `serve` (off without it).
    #[serde(default)]
    pub api: Option<ApiSection>,
    /// Limits and workers of `serve`.
    #[serde(default)]
    pub server: Option<ServerSection>,
    /// The PostgreSQL store's pool (`--store postgres://…`).
    #[serde(default)]
    pub postgres: Option<PostgresSection>,
    /// Bounds on template evaluation.
    #[serde(default)]
    pub templates: Option<TemplatesSection>,
    /// The directory of the file (relative paths in it are relative to it).
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[whatsapp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppSection {
    /// The business number (`phone_number_id`) inbound triggers listen on and messages are
    /// sent from (a flow's own `phone_number_id` wins). `--phone-number-id` overrides it.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// The variable holding the access token (default `WHATSAPP_ACCESS_TOKEN`).
    #[serde(default)]
    pub access_token_env: Option<String>,
    /// The variable holding the app secret that signs webhooks (default
    /// `WHATSAPP_APP_SECRET`).
    #[serde(default)]
    pub app_secret_env: Option<String>,
    /// The variable holding the verify token of the subscription handshake (default
    /// `WHATSAPP_VERIFY_TOKEN`).
    #[serde(default)]
    pub verify_token_env: Option<String>,
    /// Graph API base URL (default `https://graph.facebook.com`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Graph API version (default `v21.0`).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Template language code (default `en_US`).
    #[serde(default)]
    pub language_code: Option<String>,
    /// Timeout of one send attempt in seconds (default 15).
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Retries after a 429, a 5xx or a failed connection (default 3).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Kapso template ids (`send_template.template_id`) → Meta's template name and language.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, switchboard_whatsapp::TemplateName>,
}

/// `[api]`: who may use the executions API of `serve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// The variables holding the bearer tokens (each opens the API; at least one must be set,
    /// or `serve` refuses to start).
    pub token_envs: Vec<String>,
    /// The business numbers an API start may use (default: only the server's own number).
    #[serde(default)]
    pub phone_number_ids: Vec<String>,
}

/// `[server]`: the limits and the worker of `serve`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Largest webhook body in bytes (default 1 MiB).
    #[serde(default)]
    pub webhook_body_bytes: Option<usize>,
    /// Largest API request body in bytes (default 64 KiB).
    #[serde(default)]
    pub api_body_bytes: Option<usize>,
    /// Largest `variables` + `context` of an API start (or `variables` of a resume) as JSON,
    /// in bytes (default 16 KiB).
    #[serde(default)]
    pub variables_bytes: Option<usize>,
    /// Seconds a client has to send its headers (default 10).
    #[serde(default)]
    pub header_read_timeout_seconds: Option<f64>,
    /// Seconds a request may take (default 60).
    #[serde(default)]
    pub request_timeout_seconds: Option<f64>,
    /// Connections served at once (default 1024).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Conversations processed at once (default 32).
    #[serde(default)]
    pub worker_concurrency: Option<usize>,
    /// Seconds a worker's lease on a conversation lasts (default 30).
    #[serde(default)]
    pub lease_seconds: Option<f64>,
    /// Seconds after which a send interrupted by a crash is tried again, unless a delivery
    /// status settles it first (default 60).
    #[serde(default)]
    pub resend_after_seconds: Option<f64>,
}

/// `[postgres]`: the connection pool of a PostgreSQL store.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    /// Connections per process at most (default 16).
    #[serde(default)]
    pub pool_size: Option<usize>,
    /// Seconds a caller waits for a free connection (default 10).
    #[serde(default)]
    pub pool_wait_seconds: Option<f64>,
    /// Seconds opening a connection may take (default 10).
    #[serde(default)]
    pub connect_timeout_seconds: Option<f64>,
    /// Seconds one statement may run (default 30).
    #[serde(default)]
    pub statement_timeout_seconds: Option<f64>,
    /// The schema the tables live in (default: the server's `search_path`).
    #[serde(default)]
    pub schema: Option<String>,
}

/// The default variables of the WhatsApp secrets.
pub const DEFAULT_ACCESS_TOKEN_ENV: &str = "WHATSAPP_ACCESS_TOKEN";
/// See [`DEFAULT_ACCESS_TOKEN_ENV`].
pub const DEFAULT_APP_SECRET_ENV: &str = "WHATSAPP_APP_SECRET";
/// See [`DEFAULT_ACCESS_TOKEN_ENV`].
pub const DEFAULT_VERIFY_TOKEN_ENV: &str = "WHATSAPP_VERIFY_TOKEN";

impl WhatsAppSection {
    /// The variable of the access token.
    pub fn access_token_env(&self) -> &str {
        self.access_token_env
            .as_deref()
            .unwrap_or(DEFAULT_ACCESS_TOKEN_ENV)
    }

    /// The variable of the app secret.
    pub fn app_secret_env(&self) -> &str {
        self.app_secret_env
            .as_deref()
            .unwrap_or(DEFAULT_APP_SECRET_ENV)
    }

    /// The variable of the verify token.
    pub fn verify_token_env(&self) -> &str {
        self.verify_token_env
            .as_deref()
            .unwrap_or(DEFAULT_VERIFY_TOKEN_ENV)
    }

    fn cloud_api(&self) -> anyhow::Result<CloudApiConfig> {
        let mut c = CloudApiConfig {
            token_env: self.access_token_env().to_owned(),
            ..CloudApiConfig::default()
        };
        if let Some(v) = &self.base_url {
            c.base_url = v.trim_end_matches('/').to_owned();
        }
        if let Some(v) = &self.api_version {
            c.api_version = v.clone();
        }
        if let Some(v) = &self.language_code {
            c.language_code = v.clone();
        }
        if let Some(s) = self.timeout_seconds {
            c.timeout = seconds("[whatsapp] timeout_seconds", s)?;
        }
        if let Some(n) = self.max_retries {
            c.max_retries = n;
        }
        c.templates = self.templates.clone();
        Ok(c)
    }
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Time allowed to connect, in seconds (default 10).
    #[serde(default)]
    pub connect_timeout_seconds: Option<f64>,
    /// Redirects followed per request, to `http`/`https` only (default 10).
    #[serde(default)]
    pub max_redirects: Option<usize>,
    /// Largest response body in bytes (default 5 MiB).
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
}

/// `[mcp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSection {
    /// Bound on one MCP call, session setup included, in seconds (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Time allowed to connect, in seconds (default 10).
    #[serde(default)]
    pub connect_timeout_seconds: Option<f64>,
}

/// `[functions]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionsSection {
    /// Default timeout of a function call in seconds (default 30), local or HTTP.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// A directory of local JavaScript functions (`<slug>.js`, `<slug>/index.js`; relative to
    /// the configuration file), run in embedded QuickJS (docs/functions.md).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Environment variables the local functions see as `env.NAME` (and `Deno.env.get`). Their
    /// values are secrets: redacted from errors and logs.
    #[serde(default)]
    pub env: Vec<String>,
    /// Memory limit of one local function call in MiB (default 64).
    #[serde(default)]
    pub memory_limit_mb: Option<usize>,
    /// A flow's `function_id` → a local function's slug.
    #[serde(default)]
    pub ids: std::collections::HashMap<String, String>,
    /// Functions reached over HTTP (`[[functions.endpoints]]`, see
    /// [`FunctionConfig`]); they are looked up before the local ones.
    #[serde(default)]
    pub endpoints: Vec<FunctionConfig>,
}

/// `[templates]`: bounds on every template evaluation (see [`TemplateLimits`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesSection {
    /// minijinja fuel per render: instructions, and about one per 64 bytes of data the
    /// template creates (default 500 000).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// The largest text one field renders to, in bytes (default 1 MiB).
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// How deeply a render may nest loops, macro calls and includes (default and maximum 500).
    #[serde(default)]
    pub recursion_limit: Option<usize>,
}

/// What `[functions]` sets for a Kapso project's own functions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionDefaults {
    /// The call timeout when a `function.yaml` gives none.
    pub timeout: Option<Duration>,
    /// The memory limit in bytes when a `function.yaml` gives none.
    pub memory_limit: Option<usize>,
    /// The only variables the functions see (`[functions] env`); `None`: every one.
    pub only: Option<Vec<String>>,
}

/// A positive number of seconds from the configuration, or an error naming the key.
pub fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        bail!("{what} must be a positive number of seconds");
    }
    Duration::try_from_secs_f64(s).with_context(|| format!("{what} is too large"))
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config = Config::parse(&text)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        config.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// The model map of `[llm] models` (a Kapso model id → the model name), for
    /// `EngineConfig::model_ids` and the validator's `model-id-unmapped`.
    pub fn model_ids(&self) -> std::collections::BTreeMap<String, String> {
        self.llm
            .as_ref()
            .map(|l| l.models.clone())
            .unwrap_or_default()
    }

    /// The defaults `[functions]` gives a project's functions.
    pub fn project_function_defaults(&self) -> anyhow::Result<FunctionDefaults> {
        let Some(f) = &self.functions else {
            return Ok(FunctionDefaults::default());
        };
        let timeout = f
            .timeout_seconds
            .map(|s| seconds("[functions] timeout_seconds", s))
            .transpose()?;
        let memory_limit = match f.memory_limit_mb {
            Some(0) => bail!("[functions] memory_limit_mb must be positive"),
            Some(mb) => Some(mb.saturating_mul(1024 * 1024)),
            None => None,
        };
        let only = (!f.env.is_empty()).then(|| f.env.clone());
        Ok(FunctionDefaults {
            timeout,
            memory_limit,
            only,
        })
    }

    /// The template limits: `[templates]` over the defaults (a zero, or a recursion limit above
    /// 500, is an error naming the key).
    pub fn template_limits(&self) -> anyhow::Result<TemplateLimits> {
        let mut limits = TemplateLimits::default();
        let Some(t) = &self.templates else {
            return Ok(limits);
        };
        if let Some(n) = t.fuel {
            if n == 0 {
                bail!("[templates] fuel must be positive");
            }
            limits.fuel = n;
        }
        if let Some(n) = t.max_output_bytes {
            if n == 0 {
                bail!("[templates] max_output_bytes must be positive");
            }
            limits.max_output_bytes = n;
        }
        if let Some(n) = t.recursion_limit {
            if !(1..=TemplateLimits::MAX_RECURSION_LIMIT).contains(&n) {
                bail!(
                    "[templates] recursion_limit must be between 1 and {}",
                    TemplateLimits::MAX_RECURSION_LIMIT
                );
            }
            limits.recursion_limit = n;
        }
        Ok(limits)
    }

    /// The language model to use, when `[llm]` is configured (keys read from the environment).
    pub fn language_model(&self) -> anyhow::Result<Option<Arc<dyn LanguageModel>>> {
        match &self.llm {
            None => Ok(None),
            Some(llm) => {
                let router =
                    ModelRouter::from_env(llm).map_err(|e| anyhow::anyhow!("[llm]: {e}"))?;
                Ok(Some(Arc::new(router)))
            }
        }
    }

    /// The HTTP client of webhook nodes (`[http]`, else the defaults).
    pub fn http_client(&self) -> anyhow::Result<ReqwestHttpClient> {
        let mut c = HttpClientConfig::default();
        if let Some(h) = &self.http {
            if let Some(s) = h.connect_timeout_seconds {
                c.connect_timeout = seconds("[http] connect_timeout_seconds", s)?;
            }
            if let Some(n) = h.max_redirects {
                c.max_redirects = n;
            }
            if let Some(n) = h.max_response_bytes {
                if n == 0 {
                    bail!("[http] max_response_bytes must be positive");
                }
                c.max_response_bytes = n;
            }
        }
        ReqwestHttpClient::with_config(c).map_err(|e| anyhow::anyhow!("[http]: {e}"))
    }

    /// The MCP client (`[mcp]`, else the defaults).
    pub fn mcp_client(&self) -> anyhow::Result<RmcpClient> {
        let mut c = McpClientConfig::default();
        if let Some(m) = &self.mcp {
            if let Some(s) = m.timeout_seconds {
                c.timeout = seconds("[mcp] timeout_seconds", s)?;
            }
            if let Some(s) = m.connect_timeout_seconds {
                c.connect_timeout = seconds("[mcp] connect_timeout_seconds", s)?;
            }
        }
        RmcpClient::with_config(c).map_err(|e| anyhow::anyhow!("[mcp]: {e}"))
    }

    /// The function invoker of `[functions]`: HTTP endpoints first, then the local JavaScript
    /// functions of `dir` (loaded and checked now: a broken file is an error naming it).
    /// `None` when neither is configured.
    pub fn function_invoker(
        &self,
        http: &ReqwestHttpClient,
    ) -> anyhow::Result<Option<Arc<dyn FunctionInvoker>>> {
        self.function_invoker_with(http, None)
    }

    /// [`Config::function_invoker`], with the local functions' `env.KV` in `kv_store` (the
    /// engine's store: it then survives restarts) instead of in memory.
    pub fn function_invoker_with(
        &self,
        http: &ReqwestHttpClient,
        kv_store: Option<Arc<dyn ExecutionStore>>,
    ) -> anyhow::Result<Option<Arc<dyn FunctionInvoker>>> {
        let Some(f) = &self.functions else {
            return Ok(None);
        };
        let timeout = f
            .timeout_seconds
            .map(|s| seconds("[functions] timeout_seconds", s))
            .transpose()?;
        let mut chain: Vec<Arc<dyn FunctionInvoker>> = Vec::new();
        if !f.endpoints.is_empty() {
            let mut invoker = HttpFunctionInvoker::new(http.clone(), &f.endpoints)
                .map_err(|e| anyhow::anyhow!("[[functions.endpoints]]: {e}"))?;
            if let Some(t) = timeout {
                invoker = invoker.with_default_timeout(t);
            }
            chain.push(Arc::new(invoker));
        }
        if let Some(dir) = &f.dir {
            let dir = self.base.join(dir);
            // `fetch` goes through the same client as webhook nodes (the `[http]` limits).
            let mut options = JsOptions {
                ids: f.ids.clone(),
                http: Some(Arc::new(http.clone())),
                kv_store,
                ..JsOptions::default()
            };
            if let Some(t) = timeout {
                options.timeout = t;
            }
            if let Some(mb) = f.memory_limit_mb {
                if mb == 0 {
                    bail!("[functions] memory_limit_mb must be positive");
                }
                options.memory_limit = mb.saturating_mul(1024 * 1024);
            }
            for name in &f.env {
                let value = std::env::var(name).map_err(|_| {
                    anyhow::anyhow!("[functions] env: the variable `{name}` is not set")
                })?;
                options.env.insert(name.clone(), value);
            }
            let local = JsFunctionInvoker::from_dir(&dir, options)
                .map_err(|e| anyhow::anyhow!("[functions] dir {}: {e}", dir.display()))?;
            chain.push(Arc::new(local));
        }
        Ok(match chain.len() {
            0 => None,
            1 => chain.pop(),
            _ => Some(Arc::new(switchboard_project::FunctionChain(chain))),
        })
    }

    /// The Cloud API messenger of `[whatsapp]` (its access token read now; a missing one is an
    /// error naming the variable).
    pub fn messenger(&self) -> anyhow::Result<Option<CloudApiMessenger>> {
        let Some(w) = &self.whatsapp else {
            return Ok(None);
        };
        let messenger = CloudApiMessenger::from_env(w.cloud_api()?)
            .map_err(|e| anyhow::anyhow!("[whatsapp]: {}", e.message))?;
        Ok(Some(messenger))
    }

    /// Replaces the offline adapter of each family whose section is present: the language
    /// model (`[llm]`), HTTP (`[http]`, even empty), MCP (`[mcp]`, even empty) and functions
    /// (`[functions]` with endpoints). The messenger is left alone (see
    /// [`Config::messenger`]).
    pub fn apply(&self, adapters: &mut Adapters) -> anyhow::Result<()> {
        if let Some(model) = self.language_model()? {
            adapters.model = model;
        }
        let http = self.http_client()?;
        if let Some(functions) = self.function_invoker(&http)? {
            adapters.functions = functions;
        }
        if self.http.is_some() {
            adapters.http = Arc::new(http);
        }
        if self.mcp.is_some() {
            adapters.mcp = Arc::new(self.mcp_client()?);
        }
        Ok(())
    }

    /// The environment variables the configuration names as holding secrets (their values
    /// are kept out of logs).
    pub fn secret_variables(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(llm) = &self.llm {
            names.extend(llm.providers.iter().filter_map(|p| p.api_key_env.clone()));
        }
        if let Some(w) = &self.whatsapp {
            names.extend(
                [
                    w.access_token_env(),
                    w.app_secret_env(),
                    w.verify_token_env(),
                ]
                .map(str::to_owned),
            );
        }
        if let Some(f) = &self.functions {
            names.extend(f.endpoints.iter().filter_map(|e| e.api_key_env.clone()));
            names.extend(f.env.iter().cloned());
        }
        if let Some(a) = &self.api {
            names.extend(a.token_envs.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented_example() -> String {
        include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn parses_the_documented_example() {
        let c = Config::parse(&documented_example()).unwrap();
        let llm = c.llm.as_ref().unwrap();
        assert_eq!(llm.providers.len(), 2);
        assert_eq!(llm.routes.len(), 2);
        let w = c.whatsapp.as_ref().unwrap();
        assert_eq!(w.phone_number_id.as_deref(), Some("106540352242922"));
        assert_eq!(w.app_secret_env(), "WHATSAPP_APP_SECRET");
        let http = c.http_client().unwrap();
        assert_eq!(http.config().max_redirects, 5);
        assert_eq!(http.config().max_response_bytes, 1_048_576);
        assert_eq!(
            c.mcp_client().unwrap().config().timeout,
            Duration::from_secs(30)
        );
        let f = c.functions.as_ref().unwrap();
        assert_eq!(f.endpoints[0].slug.as_deref(), Some("lookup-order"));
        let api = c.api.as_ref().unwrap();
        assert_eq!(api.token_envs, ["SWITCHBOARD_API_TOKEN"]);
        assert_eq!(c.server.as_ref().unwrap().worker_concurrency, Some(32));
        assert_eq!(c.template_limits().unwrap(), TemplateLimits::default());
        assert_eq!(f.dir.as_deref(), Some(Path::new("functions")));
        assert_eq!(
            c.secret_variables(),
            [
                "ANTHROPIC_API_KEY",
                "FUNCTIONS_API_KEY",
                "OPENAI_API_KEY",
                "STRIPE_KEY",
                "SWITCHBOARD_API_TOKEN",
                "WHATSAPP_ACCESS_TOKEN",
                "WHATSAPP_APP_SECRET",
                "WHATSAPP_VERIFY_TOKEN"
            ]
        );
    }

    #[test]
    fn local_functions_load_relative_to_the_file_and_need_their_variables() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-config-js-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("functions")).unwrap();
        std::fs::write(
            dir.join("functions/greet.js"),
            "async function handler(request, env) { return {vars: {hi: 1}}; }",
        )
        .unwrap();
        let file = dir.join("switchboard.toml");
        std::fs::write(&file, "[functions]\ndir = \"functions\"\n").unwrap();
        let c = Config::read(&file).unwrap();
        let http = c.http_client().unwrap();
        assert!(c.function_invoker(&http).unwrap().is_some());

        std::fs::write(
            &file,
            "[functions]\ndir = \"functions\"\nenv = [\"SWITCHBOARD_TEST_UNSET_FN_ENV\"]\n",
        )
        .unwrap();
        let c = Config::read(&file).unwrap();
        let err = c.function_invoker(&http).err().unwrap().to_string();
        assert!(err.contains("SWITCHBOARD_TEST_UNSET_FN_ENV"), "{err}");

        std::fs::write(dir.join("functions/broken.js"), "function handler( {").unwrap();
        std::fs::write(&file, "[functions]\ndir = \"functions\"\n").unwrap();
        let c = Config::read(&file).unwrap();
        let err = format!("{:#}", c.function_invoker(&http).err().unwrap());
        assert!(err.contains("broken.js"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_toml_block_of_the_configuration_reference_parses() {
        let doc = include_str!("../../../docs/configuration.md");
        let mut blocks = 0;
        let mut rest = doc;
        while let Some(at) = rest.find("```toml\n") {
            rest = &rest[at + 8..];
            let end = rest.find("```").unwrap();
            if let Err(e) = Config::parse(&rest[..end]) {
                panic!(
                    "docs/configuration.md block {}: {e:#}\n{}",
                    blocks + 1,
                    &rest[..end]
                );
            }
            blocks += 1;
            rest = &rest[end..];
        }
        assert!(blocks >= 5, "only {blocks} toml blocks found");
    }

    #[test]
    fn unknown_sections_and_keys_are_refused() {
        assert!(Config::parse("[whatever]\nx = 1\n").is_err());
        assert!(
            Config::parse("[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\ncolour = 1\n")
                .is_err()
        );
        assert!(Config::parse("[whatsapp]\ntoken = \"x\"\n").is_err());
        assert!(Config::parse("[http]\ntimeout = 1\n").is_err());
        assert!(Config::parse("[functions]\ndirectory = \"f\"\n").is_err());
        assert!(Config::parse("").unwrap().llm.is_none());
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let c = Config::parse("[http]\nconnect_timeout_seconds = -1\n").unwrap();
        let err = c.http_client().err().unwrap().to_string();
        assert!(err.contains("[http] connect_timeout_seconds"), "{err}");
        let c =
            Config::parse("[[functions.endpoints]]\nslug = \"a\"\nurl = \"ftp://x\"\n").unwrap();
        let http = c.http_client().unwrap();
        let err = c.function_invoker(&http).err().unwrap().to_string();
        assert!(err.contains("[[functions.endpoints]]"), "{err}");
    }

    #[test]
    fn template_limits_come_from_the_templates_section() {
        assert_eq!(
            Config::parse("").unwrap().template_limits().unwrap(),
            TemplateLimits::default()
        );
        let c = Config::parse("[templates]\nfuel = 1000\nmax_output_bytes = 4096\n").unwrap();
        let limits = c.template_limits().unwrap();
        assert_eq!(limits.fuel, 1000);
        assert_eq!(limits.max_output_bytes, 4096);
        assert_eq!(limits.recursion_limit, 500);
        for (text, key) in [
            ("[templates]\nfuel = 0\n", "[templates] fuel"),
            (
                "[templates]\nmax_output_bytes = 0\n",
                "[templates] max_output_bytes",
            ),
            (
                "[templates]\nrecursion_limit = 501\n",
                "[templates] recursion_limit",
            ),
            (
                "[templates]\nrecursion_limit = 0\n",
                "[templates] recursion_limit",
            ),
        ] {
            let err = Config::parse(text).unwrap().template_limits().unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        assert!(Config::parse("[templates]\nfuel = -1\n").is_err());
        assert!(Config::parse("[templates]\ntimeout = 1\n").is_err());
    }

    #[test]
    fn a_missing_key_variable_is_an_error_naming_it() {
        let c = Config::parse(
            "[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\napi_key_env = \"SWITCHBOARD_TEST_UNSET_KEY_1\"\n[[llm.routes]]\nmatch = \"*\"\nprovider = \"a\"\n",
        )
        .unwrap();
        let err = c.language_model().err().unwrap().to_string();
        assert!(err.contains("SWITCHBOARD_TEST_UNSET_KEY_1"), "{err}");
        let c =
            Config::parse("[whatsapp]\naccess_token_env = \"SWITCHBOARD_TEST_UNSET_TOKEN_2\"\n")
                .unwrap();
        let err = c.messenger().err().unwrap().to_string();
        assert!(err.contains("SWITCHBOARD_TEST_UNSET_TOKEN_2"), "{err}");
    }
}
