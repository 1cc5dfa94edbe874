//! Model routes: which provider, model, endpoint and key a model call goes to, and the table of known
//! providers that turns `provider:model` specs and environment variables into routes.

use crate::config::ConfigError;
use crate::ports::HttpRequest;

use super::reply::StreamDecoder;
use super::{anthropic, gemini, openai, LlmError, ModelReply, ModelRequest};

/// A wire format spoken by a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions (also DeepSeek, Groq, Together, OpenRouter, Fireworks, Mistral, vLLM, Ollama…).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini generateContent.
    Gemini,
}

impl Wire {
    /// Builds the HTTP request for one model call on `route`.
    pub fn build_request(self, route: &ModelRoute, request: &ModelRequest<'_>) -> HttpRequest {
        match self {
            Wire::OpenAi => openai::build_request(route, request),
            Wire::Anthropic => anthropic::build_request(route, request),
            Wire::Gemini => gemini::build_request(route, request),
        }
    }

    /// Parses a complete (non-streamed) reply body.
    pub fn parse_reply(self, body: &[u8]) -> Result<ModelReply, LlmError> {
        match self {
            Wire::OpenAi => openai::parse_reply(body),
            Wire::Anthropic => anthropic::parse_reply(body),
            Wire::Gemini => gemini::parse_reply(body),
        }
    }

    pub(crate) fn stream_decoder(self) -> Box<dyn StreamDecoder> {
        match self {
            Wire::OpenAi => Box::<openai::Decoder>::default(),
            Wire::Anthropic => Box::<anthropic::Decoder>::default(),
            Wire::Gemini => Box::<gemini::Decoder>::default(),
        }
    }
}

/// Where one model call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// Provider name from the table, e.g. `openai`.
    pub provider: &'static str,
    /// Model name as the provider knows it.
    pub model: String,
    /// Wire format.
    pub wire: Wire,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// API key, when the provider needs one.
    pub api_key: Option<String>,
}

impl ModelRoute {
    /// `provider:model`, as configured and as reported to users.
    pub fn label(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }

    /// A route to the model `spec` names that a platform binding serves (no endpoint, no key), e.g. a
    /// Workers AI model through the Worker's `AI` binding.
    pub fn through_binding(var: &'static str, spec: &str) -> Result<ModelRoute, ConfigError> {
        let (provider, model) = lookup_provider(var, spec)?;
        Ok(ModelRoute {
            provider: provider.name,
            model: model.to_string(),
            wire: provider.wire,
            base_url: String::new(),
            api_key: None,
        })
    }

    /// Adds the route's API key to `request` the way its wire format expects (no key, no header).
    pub fn authorize(&self, request: HttpRequest) -> HttpRequest {
        let Some(key) = &self.api_key else { return request };
        match self.wire {
            Wire::OpenAi => request.header("authorization", format!("Bearer {key}")),
            Wire::Anthropic => request.header("x-api-key", key.clone()),
            Wire::Gemini => request.header("x-goog-api-key", key.clone()),
        }
    }
}

struct Provider {
    name: &'static str,
    wire: Wire,
    default_base_url: Option<&'static str>,
    key_var: &'static str,
    key_required: bool,
    base_var: &'static str,
}

const fn provider(
    name: &'static str,
    wire: Wire,
    default_base_url: Option<&'static str>,
    key_var: &'static str,
    key_required: bool,
    base_var: &'static str,
) -> Provider {
    Provider { name, wire, default_base_url, key_var, key_required, base_var }
}

const PROVIDERS: &[Provider] = &[
    provider("openai", Wire::OpenAi, Some("https://api.openai.com/v1"), "OPENAI_API_KEY", true, "OPENAI_BASE_URL"),
    provider(
        "anthropic",
        Wire::Anthropic,
        Some("https://api.anthropic.com"),
        "ANTHROPIC_API_KEY",
        true,
        "ANTHROPIC_BASE_URL",
    ),
    provider(
        "gemini",
        Wire::Gemini,
        Some("https://generativelanguage.googleapis.com"),
        "GEMINI_API_KEY",
        true,
        "GEMINI_BASE_URL",
    ),
    provider(
        "deepseek",
        Wire::OpenAi,
        Some("https://api.deepseek.com/v1"),
        "DEEPSEEK_API_KEY",
        true,
        "DEEPSEEK_BASE_URL",
    ),
    provider("groq", Wire::OpenAi, Some("https://api.groq.com/openai/v1"), "GROQ_API_KEY", true, "GROQ_BASE_URL"),
    provider(
        "together",
        Wire::OpenAi,
        Some("https://api.together.xyz/v1"),
        "TOGETHER_API_KEY",
        true,
        "TOGETHER_BASE_URL",
    ),
    provider(
        "openrouter",
        Wire::OpenAi,
        Some("https://openrouter.ai/api/v1"),
        "OPENROUTER_API_KEY",
        true,
        "OPENROUTER_BASE_URL",
    ),
    provider(
        "fireworks",
        Wire::OpenAi,
        Some("https://api.fireworks.ai/inference/v1"),
        "FIREWORKS_API_KEY",
        true,
        "FIREWORKS_BASE_URL",
    ),
    provider("mistral", Wire::OpenAi, Some("https://api.mistral.ai/v1"), "MISTRAL_API_KEY", true, "MISTRAL_BASE_URL"),
    provider("ollama", Wire::OpenAi, Some("http://localhost:11434/v1"), "OLLAMA_API_KEY", false, "OLLAMA_BASE_URL"),
    provider("vllm", Wire::OpenAi, None, "VLLM_API_KEY", false, "VLLM_BASE_URL"),
    // Cloudflare Workers AI's OpenAI-compatible endpoint: https://api.cloudflare.com/client/v4/accounts/<id>/ai/v1
    provider("workers-ai", Wire::OpenAi, None, "WORKERS_AI_API_KEY", true, "WORKERS_AI_BASE_URL"),
];

/// The provider and model named by `spec` (`provider:model`, read from variable `var`).
fn lookup_provider<'a>(var: &'static str, spec: &'a str) -> Result<(&'static Provider, &'a str), ConfigError> {
    let (name, model) = spec
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        .ok_or_else(|| ConfigError::invalid(var, format!("`{spec}` is not of the form provider:model")))?;
    let provider = PROVIDERS.iter().find(|p| p.name == name).ok_or_else(|| {
        ConfigError::invalid(var, format!("unknown provider `{name}` (known: {})", provider_names().join(", ")))
    })?;
    Ok((provider, model))
}

/// Names of every known provider, for error messages and docs.
pub fn provider_names() -> Vec<&'static str> {
    PROVIDERS.iter().map(|p| p.name).collect()
}

/// The configured routes, in fallback order, and what keeps the unusable ones from working.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Usable routes, primary first.
    pub usable: Vec<ModelRoute>,
    /// For each configured route that cannot be used: what to set (e.g. `set OPENAI_API_KEY for openai:gpt-4o`).
    pub missing: Vec<String>,
}

impl Routes {
    /// Resolves `specs` (`provider:model`, each read from variable `var`) against the environment.
    pub fn resolve(
        specs: &[(&'static str, String)],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Routes, ConfigError> {
        let mut routes = Routes::default();
        for (var, spec) in specs {
            let (provider, model) = lookup_provider(var, spec)?;
            let name = provider.name;
            let api_key = lookup(provider.key_var).filter(|k| !k.trim().is_empty());
            let base_url = lookup(provider.base_var)
                .filter(|b| !b.trim().is_empty())
                .or(provider.default_base_url.map(String::from));
            let label = format!("{name}:{model}");
            match (base_url, api_key.is_some() || !provider.key_required) {
                (None, _) => routes.missing.push(format!("set {} for {label}", provider.base_var)),
                (Some(_), false) => routes.missing.push(format!("set {} for {label}", provider.key_var)),
                (Some(base), true) => routes.usable.push(ModelRoute {
                    provider: provider.name,
                    model: model.to_string(),
                    wire: provider.wire,
                    base_url: base.trim_end_matches('/').to_string(),
                    api_key,
                }),
            }
        }
        Ok(routes)
    }

    /// The error to report when no route is usable.
    pub fn not_configured(&self) -> LlmError {
        LlmError::NotConfigured(format!(
            "no LLM provider is configured: {} (as a Worker secret: `npx wrangler secret put NAME`; locally: a line NAME=value in .dev.vars)",
            self.missing.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(specs: &[&str], vars: &[(&str, &str)]) -> Result<Routes, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let specs: Vec<(&'static str, String)> = specs.iter().map(|s| ("EDGECLAW_MODEL", s.to_string())).collect();
        Routes::resolve(&specs, &|k| vars.get(k).cloned())
    }

    #[test]
    fn routes_take_keys_and_base_urls_from_the_environment() {
        let routes = resolve(
            &["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "ollama:llama3:8b"],
            &[("OPENAI_API_KEY", "k1"), ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"), ("ANTHROPIC_API_KEY", "k2")],
        )
        .unwrap();
        assert_eq!(routes.usable.len(), 3);
        assert_eq!(routes.usable[0].base_url, "http://127.0.0.1:9/v1");
        assert_eq!(routes.usable[1].base_url, "https://api.anthropic.com");
        assert_eq!(routes.usable[2].model, "llama3:8b");
        assert_eq!(routes.usable[2].api_key, None);
    }

    #[test]
    fn a_route_without_its_key_is_reported_with_the_variable_to_set() {
        let routes = resolve(&["gemini:gemini-2.0-flash"], &[]).unwrap();
        assert!(routes.usable.is_empty());
        let message = routes.not_configured().to_string();
        assert!(message.contains("GEMINI_API_KEY"), "{message}");
    }

    #[test]
    fn bad_specs_name_the_variable() {
        let err = resolve(&["gpt-4o"], &[]).unwrap_err().to_string();
        assert!(err.contains("EDGECLAW_MODEL") && err.contains("provider:model"), "{err}");
        let err = resolve(&["nosuch:model"], &[]).unwrap_err().to_string();
        assert!(err.contains("unknown provider `nosuch`"), "{err}");
    }

    #[test]
    fn each_wire_sends_its_key_in_its_own_header() {
        let route = |wire, api_key: Option<&str>| ModelRoute {
            provider: "p",
            model: "m".into(),
            wire,
            base_url: "https://x.test".into(),
            api_key: api_key.map(String::from),
        };
        let headers = |wire, key| {
            route(wire, key).authorize(HttpRequest::post_json("https://x.test", &serde_json::json!({}))).headers
        };
        let auth = |wire| headers(wire, Some("k")).into_iter().skip(1).collect::<Vec<_>>();
        assert_eq!(auth(Wire::OpenAi), [("authorization".to_string(), "Bearer k".to_string())]);
        assert_eq!(auth(Wire::Anthropic), [("x-api-key".to_string(), "k".to_string())]);
        assert_eq!(auth(Wire::Gemini), [("x-goog-api-key".to_string(), "k".to_string())]);
        assert_eq!(headers(Wire::OpenAi, None).len(), 1, "no key, no auth header");
    }

    #[test]
    fn vllm_needs_a_base_url() {
        let routes = resolve(&["vllm:qwen"], &[]).unwrap();
        assert_eq!(routes.missing, vec!["set VLLM_BASE_URL for vllm:qwen".to_string()]);
    }
}
