//! The API's error: an HTTP status and the JSON body `{"error": {"code", "message"}}`.

use serde_json::{json, Value};

use crate::llm::LlmError;
use crate::memory::MemoryError;
use crate::routine::RoutineError;
use crate::security::{SecretError, VaultError};
use crate::Error;

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 401 for a missing or unknown token.
    pub fn unauthorized(tokens_configured: bool) -> Self {
        let message = if tokens_configured {
            "a valid `Authorization: Bearer <token>` header is required"
        } else {
            "no API tokens are configured: set EDGECLAW_API_TOKENS to principal:token pairs"
        };
        Self::new(401, "unauthorized", message)
    }

    /// 400 for a malformed session id.
    pub fn invalid_session_id() -> Self {
        Self::new(400, "invalid_session_id", "session ids are 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Config(_) => Self::new(500, "config_error", message),
            Error::Skill(_) => Self::new(500, "skill_error", message),
            Error::Store(_) => Self::new(500, "storage_error", message),
            Error::NothingToRetry => Self::new(409, "nothing_to_retry", message),
            Error::AwaitingApproval => Self::new(409, "approval_pending", message),
            Error::NotPaused => Self::new(409, "not_paused", message),
            Error::ApprovalNotFound(_) => Self::new(404, "approval_not_found", message),
            Error::ApprovalDecided(..) => Self::new(409, "approval_decided", message),
            Error::Llm(LlmError::NotConfigured(_)) => Self::new(503, "llm_not_configured", message),
            Error::Llm(LlmError::StreamBroken(_)) => Self::new(502, "llm_stream_broken", message),
            Error::Llm(_) => Self::new(502, "llm_unavailable", message),
            Error::Memory(error) => error.into(),
            Error::Secret(error) => error.into(),
            Error::Audit(_) => Self::new(503, "audit_unavailable", message),
        }
    }
}

impl From<MemoryError> for ApiError {
    fn from(error: MemoryError) -> Self {
        let message = error.to_string();
        match error {
            MemoryError::Invalid(_) => Self::new(400, "invalid_request", message),
            MemoryError::TooLarge(_) => Self::new(413, "payload_too_large", message),
            MemoryError::NamespaceNotFound(_) => Self::new(404, "namespace_not_found", message),
            MemoryError::DocumentNotFound(_) => Self::new(404, "document_not_found", message),
            MemoryError::DimensionMismatch(_) => Self::new(500, "dimension_mismatch", message),
            MemoryError::Embedding(_) => Self::new(502, "embedding_unavailable", message),
            MemoryError::NoEmbedder => Self::new(503, "embedding_not_configured", message),
            MemoryError::Unavailable(_) => Self::new(503, "memory_unavailable", message),
        }
    }
}

impl From<RoutineError> for ApiError {
    fn from(error: RoutineError) -> Self {
        let message = error.to_string();
        match error {
            RoutineError::NotFound(_) => Self::new(404, "routine_not_found", message),
            RoutineError::HookNotFound(_) => Self::new(404, "hook_not_found", message),
            RoutineError::Invalid(_) => Self::new(400, "invalid_routine", message),
            RoutineError::TooMany => Self::new(409, "routine_limit", message),
            RoutineError::HookTaken(_) => Self::new(409, "hook_taken", message),
            RoutineError::Unauthorized(_) => Self::new(401, "bad_signature", message),
            RoutineError::RateLimited(_) => Self::new(429, "rate_limited", message),
            RoutineError::PayloadTooLarge => Self::new(413, "payload_too_large", message),
            RoutineError::Store(_) => Self::new(503, "storage_unavailable", message),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> Self {
        let message = error.to_string();
        match error {
            SecretError::Invalid(_) | SecretError::Vault(VaultError::Name(_) | VaultError::Value(_)) => {
                Self::new(400, "invalid_secret", message)
            }
            SecretError::NotFound(_) => Self::new(404, "secret_not_found", message),
            SecretError::TooMany => Self::new(409, "secret_limit", message),
            SecretError::Vault(_) => Self::new(500, "vault_error", message),
            SecretError::Store(_) => Self::new(503, "storage_unavailable", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_statuses_and_codes() {
        let cases = [
            (Error::NothingToRetry, 409, "nothing_to_retry"),
            (Error::Llm(LlmError::NotConfigured("set OPENAI_API_KEY".into())), 503, "llm_not_configured"),
            (Error::Llm(LlmError::StreamBroken("cut".into())), 502, "llm_stream_broken"),
            (Error::Llm(LlmError::Unavailable("all down".into())), 502, "llm_unavailable"),
            (Error::Store("disk".into()), 500, "storage_error"),
            (Error::Memory(MemoryError::NamespaceNotFound("x".into())), 404, "namespace_not_found"),
            (Error::Memory(MemoryError::Unavailable("pg down".into())), 503, "memory_unavailable"),
            (Error::Memory(MemoryError::TooLarge("big".into())), 413, "payload_too_large"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!((api.status, api.code), (status, code));
        }
        let body = ApiError::new(404, "not_found", "nope").body();
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "nope"}}));
    }
}
