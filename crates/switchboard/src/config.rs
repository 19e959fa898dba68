//! `switchboard.toml`: the deployment configuration the CLI reads with `--config`.
//!
//! Today it configures the language models (`[llm]`: providers and a routing table from the
//! flows' `provider_model_name`/`provider_model_id` to them; API keys come from environment
//! variables named here, never from the file). Sections for the WhatsApp Cloud API, functions
//! and stores come with their adapters.
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
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use switchboard_adapters::llm::{LlmConfig, ModelRouter};
use switchboard_runtime::adapters::LanguageModel;

/// The contents of `switchboard.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Language-model providers and routes.
    #[serde(default)]
    pub llm: Option<LlmConfig>,
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("invalid configuration {}", path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(&example).unwrap();
        let llm = c.llm.unwrap();
        assert_eq!(llm.providers.len(), 2);
        assert_eq!(llm.routes.len(), 2);
    }

    #[test]
    fn unknown_sections_and_keys_are_refused() {
        assert!(Config::parse("[whatever]\nx = 1\n").is_err());
        assert!(
            Config::parse("[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\ncolour = 1\n")
                .is_err()
        );
        assert!(Config::parse("").unwrap().llm.is_none());
    }

    #[test]
    fn a_missing_key_variable_is_an_error_naming_it() {
        let c = Config::parse(
            "[[llm.providers]]\nname = \"a\"\nkind = \"openai\"\napi_key_env = \"SWITCHBOARD_TEST_UNSET_KEY_1\"\n[[llm.routes]]\nmatch = \"*\"\nprovider = \"a\"\n",
        )
        .unwrap();
        let err = c.language_model().err().unwrap().to_string();
        assert!(err.contains("SWITCHBOARD_TEST_UNSET_KEY_1"), "{err}");
    }
}
