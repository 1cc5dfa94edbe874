//! The one typed configuration, read once from the platform's variables and secrets.

use std::rc::Rc;

use crate::auth::ApiTokens;
use crate::llm::route::Routes;
use crate::llm::ModelRoute;
use crate::llm::{RetryPolicy, Wire};
use crate::memory::{ChunkOptions, EmbeddingRoute, MemoryOptions};
use crate::security::{ApprovalPolicy, EgressPolicy, InjectionPolicy, MasterKey, MAX_APPROVAL_TIMEOUT_MS};

/// A configuration variable has an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {var}: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// An error about `var`.
    pub fn invalid(var: &str, reason: impl Into<String>) -> Self {
        Self { var: var.to_string(), reason: reason.into() }
    }
}

/// Model used when `EDGECLAW_MODEL` is not set.
pub const DEFAULT_MODEL: &str = "openai:gpt-4o-mini";

/// Everything an edgeclaw deployment is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Who may call the API.
    pub api_tokens: ApiTokens,
    /// Model routes in fallback order (`EDGECLAW_MODEL`, then `EDGECLAW_FALLBACK_MODELS`).
    pub routes: Routes,
    /// Retry and timeout policy for model calls.
    pub retry: RetryPolicy,
    /// Model calls per turn before the turn stops (`EDGECLAW_MAX_ITERATIONS`).
    pub max_iterations: u32,
    /// Upper bound on tokens generated per model call.
    pub max_output_tokens: u32,
    /// Budget for conversation history sent to the model, in tokens.
    pub history_budget_tokens: usize,
    /// Budget for skill instructions injected per turn, in tokens.
    pub skills_budget_tokens: usize,
    /// Time allowed for one tool call.
    pub tool_timeout_ms: u64,
    /// What tools may reach and the limits of each outbound exchange.
    pub egress: EgressPolicy,
    /// What is done with untrusted content that looks like a prompt-injection attempt, per source.
    pub injection: InjectionPolicy,
    /// Which tool calls run, wait for the owner's approval, or are refused (`EDGECLAW_APPROVALS`).
    pub approvals: ApprovalPolicy,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Replaces the built-in system prompt when set.
    pub system_prompt: Option<String>,
    /// The embedding model for memory (`EDGECLAW_EMBEDDING_MODEL`); without one memory is keyword-only.
    pub embedding: Option<EmbeddingRoute>,
    /// Chunking, size limits and recall of memory.
    pub memory: MemoryOptions,
    /// The key that seals stored secrets (`EDGECLAW_MASTER_KEY`, 32 bytes of base64); without it the
    /// secrets API is unavailable.
    pub master_key: Option<Rc<MasterKey>>,
    /// The master key being rotated away from (`EDGECLAW_MASTER_KEY_PREVIOUS`): records it sealed stay
    /// readable until `POST /api/secrets/rotate` re-seals them.
    pub previous_master_key: Option<Rc<MasterKey>>,
}

impl Config {
    /// Reads the configuration through `lookup` (the platform's variables and secrets).
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |var: &str| lookup(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let number = |var: &str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(ConfigError::invalid(var, format!("`{text}` is not a whole number from {min} to {max}"))),
                },
            }
        };
        let flag = |var: &str| -> Result<bool, ConfigError> {
            match get(var).as_deref() {
                None | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(other) => Err(ConfigError::invalid(var, format!("`{other}` is not true or false"))),
            }
        };

        let mut specs = vec![("EDGECLAW_MODEL", get("EDGECLAW_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_string()))];
        if let Some(fallbacks) = get("EDGECLAW_FALLBACK_MODELS") {
            specs.extend(
                fallbacks
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| ("EDGECLAW_FALLBACK_MODELS", s.to_string())),
            );
        }
        let routes = Routes::resolve(&specs, &get)?;

        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            max_retries: number("EDGECLAW_LLM_MAX_RETRIES", defaults.max_retries.into(), 0, 10)? as u32,
            base_delay_ms: number("EDGECLAW_LLM_RETRY_BASE_MS", defaults.base_delay_ms, 1, 60_000)?,
            max_delay_ms: defaults.max_delay_ms,
            request_timeout_ms: number("EDGECLAW_LLM_TIMEOUT_MS", defaults.request_timeout_ms, 1_000, 600_000)?,
            idle_timeout_ms: number("EDGECLAW_LLM_IDLE_TIMEOUT_MS", defaults.idle_timeout_ms, 1_000, 600_000)?,
        };
        let egress_defaults = EgressPolicy::default();
        let egress = EgressPolicy {
            allow: match get("EDGECLAW_EGRESS_ALLOW") {
                Some(text) => {
                    EgressPolicy::parse_allow(&text).map_err(|e| ConfigError::invalid("EDGECLAW_EGRESS_ALLOW", e))?
                }
                None => egress_defaults.allow,
            },
            allow_http: flag("EDGECLAW_EGRESS_ALLOW_HTTP")?,
            allow_private: flag("EDGECLAW_ALLOW_PRIVATE_EGRESS")?,
            max_body_bytes: number("EDGECLAW_FETCH_MAX_BYTES", 64 * 1024, 1_024, 4 * 1024 * 1024)? as usize,
            timeout_ms: number("EDGECLAW_FETCH_TIMEOUT_MS", 15_000, 100, 120_000)?,
            requests_per_minute: number("EDGECLAW_EGRESS_PER_MINUTE", 60, 1, 10_000)? as u32,
        };
        let injection = InjectionPolicy::parse(get("EDGECLAW_INJECTION_POLICY").as_deref().unwrap_or(""))
            .map_err(|e| ConfigError::invalid("EDGECLAW_INJECTION_POLICY", e))?;
        let approval_timeout = number("EDGECLAW_APPROVAL_TIMEOUT_MS", 15 * 60 * 1000, 1_000, MAX_APPROVAL_TIMEOUT_MS)?;
        let approvals = ApprovalPolicy::parse(get("EDGECLAW_APPROVALS").as_deref().unwrap_or(""), approval_timeout)
            .map_err(|e| ConfigError::invalid("EDGECLAW_APPROVALS", e))?;

        let embedding = match get("EDGECLAW_EMBEDDING_MODEL") {
            None => None,
            Some(spec) => {
                let var = "EDGECLAW_EMBEDDING_MODEL";
                let binding = get("EDGECLAW_EMBEDDING_BINDING").filter(|b| !b.trim().is_empty());
                let route = if binding.is_some() {
                    let route = ModelRoute::through_binding(var, &spec)?;
                    if route.provider != "workers-ai" {
                        return Err(ConfigError::invalid(
                            "EDGECLAW_EMBEDDING_BINDING",
                            format!("only workers-ai models are served through a binding, not `{spec}`"),
                        ));
                    }
                    route
                } else {
                    let resolved = Routes::resolve(&[(var, spec.clone())], &get)?;
                    match (resolved.usable.into_iter().next(), resolved.missing.first()) {
                        (Some(route), _) => route,
                        (None, Some(missing)) => {
                            return Err(ConfigError::invalid(var, format!("`{spec}` cannot be used: {missing}")))
                        }
                        (None, None) => return Err(ConfigError::invalid(var, format!("`{spec}` cannot be used"))),
                    }
                };
                if route.wire == Wire::Anthropic {
                    return Err(ConfigError::invalid(
                        var,
                        "Anthropic has no embeddings API; use an OpenAI-compatible or Gemini model",
                    ));
                }
                let explicit = get("EDGECLAW_EMBEDDING_DIMENSIONS").is_some();
                let dimensions = number("EDGECLAW_EMBEDDING_DIMENSIONS", 1_536, 8, 4_096)? as usize;
                Some(EmbeddingRoute { route, dimensions, request_dimensions: explicit, binding })
            }
        };
        let memory_defaults = MemoryOptions::default();
        let memory = MemoryOptions {
            chunking: ChunkOptions {
                target_chars: number("EDGECLAW_CHUNK_CHARS", 1_200, 200, 20_000)? as usize,
                overlap_chars: number("EDGECLAW_CHUNK_OVERLAP", 150, 0, 2_000)? as usize,
            },
            max_document_bytes: number(
                "EDGECLAW_MAX_DOCUMENT_BYTES",
                memory_defaults.max_document_bytes as u64,
                1_024,
                8 * 1024 * 1024,
            )? as usize,
            recall_k: number("EDGECLAW_MEMORY_RECALL", memory_defaults.recall_k.into(), 0, 20)? as u32,
            recall_tokens: number("EDGECLAW_MEMORY_RECALL_TOKENS", memory_defaults.recall_tokens as u64, 50, 20_000)?
                as usize,
        };

        let master_key = |var: &'static str| {
            get(var)
                .map(|key| MasterKey::from_base64(&key).map(Rc::new))
                .transpose()
                .map_err(|e| ConfigError::invalid(var, e.to_string()))
        };
        Ok(Config {
            api_tokens: ApiTokens::parse(get("EDGECLAW_API_TOKENS").as_deref().unwrap_or(""))
                .map_err(|reason| ConfigError::invalid("EDGECLAW_API_TOKENS", reason))?,
            routes,
            retry,
            max_iterations: number("EDGECLAW_MAX_ITERATIONS", 16, 1, 100)? as u32,
            max_output_tokens: number("EDGECLAW_MAX_OUTPUT_TOKENS", 4_096, 16, 200_000)? as u32,
            history_budget_tokens: number("EDGECLAW_HISTORY_TOKENS", 24_000, 500, 1_000_000)? as usize,
            skills_budget_tokens: number("EDGECLAW_SKILLS_TOKENS", 2_000, 0, 100_000)? as usize,
            tool_timeout_ms: number("EDGECLAW_TOOL_TIMEOUT_MS", 30_000, 100, 300_000)?,
            egress,
            injection,
            approvals,
            max_body_bytes: number("EDGECLAW_MAX_BODY_BYTES", 1024 * 1024, 1_024, 32 * 1024 * 1024)? as usize,
            system_prompt: get("EDGECLAW_SYSTEM_PROMPT"),
            embedding,
            memory,
            master_key: master_key("EDGECLAW_MASTER_KEY")?,
            previous_master_key: master_key("EDGECLAW_MASTER_KEY_PREVIOUS")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_env(&|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.max_iterations, 16);
        assert!(c.routes.usable.is_empty());
        assert_eq!(c.routes.missing, vec!["set OPENAI_API_KEY for openai:gpt-4o-mini".to_string()]);
        assert!(!c.egress.allow_private && !c.egress.allow_http);
        assert_eq!(c.egress.allow, EgressPolicy::default().allow);
    }

    #[test]
    fn fallbacks_follow_the_primary_in_order() {
        let c = config(&[
            ("EDGECLAW_MODEL", "anthropic:claude-3-5-haiku-latest"),
            ("EDGECLAW_FALLBACK_MODELS", " gemini:gemini-2.0-flash , openai:gpt-4o"),
            ("ANTHROPIC_API_KEY", "a"),
            ("GEMINI_API_KEY", "g"),
            ("OPENAI_API_KEY", "o"),
        ])
        .unwrap();
        let labels: Vec<String> = c.routes.usable.iter().map(|r| r.label()).collect();
        assert_eq!(labels, ["anthropic:claude-3-5-haiku-latest", "gemini:gemini-2.0-flash", "openai:gpt-4o"]);
    }

    #[test]
    fn embeddings_are_optional_and_checked_when_set() {
        assert_eq!(config(&[]).unwrap().embedding, None);
        let c = config(&[
            ("EDGECLAW_EMBEDDING_MODEL", "openai:text-embedding-3-small"),
            ("OPENAI_API_KEY", "k"),
            ("EDGECLAW_EMBEDDING_DIMENSIONS", "256"),
        ])
        .unwrap();
        let embedding = c.embedding.unwrap();
        assert_eq!((embedding.dimensions, embedding.request_dimensions), (256, true));
        let err = config(&[("EDGECLAW_EMBEDDING_MODEL", "openai:text-embedding-3-small")]).unwrap_err();
        assert!(err.var == "EDGECLAW_EMBEDDING_MODEL" && err.reason.contains("OPENAI_API_KEY"), "{err}");
        let err = config(&[("EDGECLAW_EMBEDDING_MODEL", "anthropic:x"), ("ANTHROPIC_API_KEY", "k")]).unwrap_err();
        assert!(err.reason.contains("no embeddings"), "{err}");
    }

    #[test]
    fn workers_ai_embeddings_go_through_a_binding_or_the_rest_endpoint() {
        let c = config(&[
            ("EDGECLAW_EMBEDDING_MODEL", "workers-ai:@cf/baai/bge-base-en-v1.5"),
            ("EDGECLAW_EMBEDDING_BINDING", "AI"),
            ("EDGECLAW_EMBEDDING_DIMENSIONS", "768"),
        ])
        .unwrap();
        let embedding = c.embedding.unwrap();
        assert_eq!(
            (embedding.binding.as_deref(), embedding.route.label().as_str()),
            (Some("AI"), "workers-ai:@cf/baai/bge-base-en-v1.5")
        );
        let err = config(&[("EDGECLAW_EMBEDDING_MODEL", "workers-ai:@cf/m")]).unwrap_err();
        assert!(err.reason.contains("WORKERS_AI_BASE_URL"), "{err}");
        let err =
            config(&[("EDGECLAW_EMBEDDING_MODEL", "openai:m"), ("EDGECLAW_EMBEDDING_BINDING", "AI")]).unwrap_err();
        assert_eq!(err.var, "EDGECLAW_EMBEDDING_BINDING");
    }

    #[test]
    fn the_master_key_is_checked_and_never_echoed() {
        assert!(config(&[]).unwrap().master_key.is_none());
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        assert!(config(&[("EDGECLAW_MASTER_KEY", key)]).unwrap().master_key.is_some());
        let err = config(&[("EDGECLAW_MASTER_KEY", "c2hvcnQta2V5")]).unwrap_err();
        assert!(err.var == "EDGECLAW_MASTER_KEY" && err.reason.contains("32 bytes"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQta2V5"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("EDGECLAW_MAX_ITERATIONS", "zero"),
            ("EDGECLAW_MAX_ITERATIONS", "0"),
            ("EDGECLAW_ALLOW_PRIVATE_EGRESS", "maybe"),
            ("EDGECLAW_API_TOKENS", "no-colon-here"),
            ("EDGECLAW_EGRESS_ALLOW", "http_fetch=not a host"),
            ("EDGECLAW_EGRESS_ALLOW_HTTP", "yes"),
            ("EDGECLAW_INJECTION_POLICY", "web=ignore"),
            ("EDGECLAW_APPROVALS", "[{\"effect\": \"perhaps\"}]"),
            ("EDGECLAW_APPROVAL_TIMEOUT_MS", "10"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }
}
