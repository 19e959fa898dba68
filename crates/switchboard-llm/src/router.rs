//! Routing requests to providers by model name.

use std::fmt;
use std::sync::Arc;
use switchboard_runtime::FailureKind;

use async_trait::async_trait;
use switchboard_runtime::adapters::{
    AdapterError, AdapterResult, ChatRequest, ChatResponse, LanguageModel,
};

use crate::anthropic::Anthropic;
use crate::config::{LlmConfig, ProviderKind, RouteConfig};
use crate::openai::OpenAiCompatible;
use crate::transport::ProviderSettings;

/// A [`LanguageModel`] that sends each request to a provider chosen by its `model` through a
/// routing table.
///
/// A route whose pattern has no `*` matches that model name exactly; exact routes are tried
/// first, then pattern routes in order (`*` matches any run of characters, so `claude-*`
/// matches every Claude model and `*` anything). A route may rewrite the model name sent. A
/// model no route matches is a `not_found` error.
pub struct ModelRouter {
    providers: Vec<(String, Arc<dyn LanguageModel>)>,
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    pattern: String,
    provider: usize,
    model: Option<String>,
}

/// Where a model name is routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The provider's name.
    pub provider: &'a str,
    /// The model name sent to it.
    pub model: String,
    /// The route's pattern.
    pub pattern: &'a str,
}

impl ModelRouter {
    /// A router over named `providers` with `routes`. A route naming an unknown provider, or
    /// two providers with one name, is an `adapter` error.
    pub fn new(
        providers: Vec<(String, Arc<dyn LanguageModel>)>,
        routes: Vec<RouteConfig>,
    ) -> AdapterResult<ModelRouter> {
        for (i, (name, _)) in providers.iter().enumerate() {
            if providers[..i].iter().any(|(other, _)| other == name) {
                return Err(AdapterError::new(
                    FailureKind::Adapter,
                    format!("llm: provider `{name}` is configured twice"),
                ));
            }
        }
        let routes = routes
            .into_iter()
            .map(|r| {
                let provider = providers
                    .iter()
                    .position(|(name, _)| *name == r.provider)
                    .ok_or_else(|| {
                        AdapterError::new(
                            FailureKind::Adapter,
                            format!(
                                "llm: route `{}` names unknown provider `{}`",
                                r.pattern, r.provider
                            ),
                        )
                    })?;
                Ok(Route {
                    pattern: r.pattern,
                    provider,
                    model: r.model,
                })
            })
            .collect::<AdapterResult<Vec<_>>>()?;
        Ok(ModelRouter { providers, routes })
    }

    /// A router built from `config`, looking API keys up with `env`.
    pub fn from_config(
        config: &LlmConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> AdapterResult<ModelRouter> {
        let mut providers: Vec<(String, Arc<dyn LanguageModel>)> = Vec::new();
        for p in &config.providers {
            let settings = ProviderSettings::from_config(p, env)?;
            let model: Arc<dyn LanguageModel> = match p.kind {
                ProviderKind::Openai => Arc::new(OpenAiCompatible::new(settings)?),
                ProviderKind::Anthropic => Arc::new(Anthropic::new(settings)?),
            };
            providers.push((p.name.clone(), model));
        }
        ModelRouter::new(providers, config.routes.clone())
    }

    /// A router built from `config`, reading API keys from the process environment.
    pub fn from_env(config: &LlmConfig) -> AdapterResult<ModelRouter> {
        ModelRouter::from_config(config, &|name| std::env::var(name).ok())
    }

    /// Where `model` goes, if anywhere.
    pub fn resolve(&self, model: &str) -> Option<Resolved<'_>> {
        let route = self
            .routes
            .iter()
            .find(|r| !r.pattern.contains('*') && r.pattern == model)
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| r.pattern.contains('*') && glob(&r.pattern, model))
            })?;
        let (provider, _) = self.providers.get(route.provider)?;
        Some(Resolved {
            provider,
            model: route.model.clone().unwrap_or_else(|| model.to_owned()),
            pattern: &route.pattern,
        })
    }
}

impl fmt::Debug for ModelRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let providers: Vec<&str> = self.providers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ModelRouter")
            .field("providers", &providers)
            .field("routes", &self.routes)
            .finish()
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[async_trait]
impl LanguageModel for ModelRouter {
    async fn complete(&self, mut request: ChatRequest) -> AdapterResult<ChatResponse> {
        let (provider, model) = {
            let resolved = self.resolve(&request.model).ok_or_else(|| {
                AdapterError::new(
                    FailureKind::NotFound,
                    format!("llm: no route for model `{}`", request.model),
                )
            })?;
            let provider = self
                .providers
                .iter()
                .find(|(name, _)| name == resolved.provider)
                .map(|(_, p)| Arc::clone(p))
                .ok_or_else(|| {
                    AdapterError::new(FailureKind::Adapter, "llm: route to a missing provider")
                })?;
            (provider, resolved.model)
        };
        request.model = model;
        provider.complete(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*", "gpt-4o"));
        assert!(glob("claude-*", "claude-sonnet-4-5"));
        assert!(!glob("claude-*", "gpt-4o"));
        assert!(glob("gpt-*-mini", "gpt-4o-mini"));
        assert!(!glob("gpt-*-mini", "gpt-4o"));
        assert!(glob("*/llama*", "meta/llama-3.1-8b"));
        assert!(!glob("a*a", "a"));
        assert!(glob("a*a", "aa"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}
