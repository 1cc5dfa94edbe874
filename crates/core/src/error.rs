//! The one error type of the core crate.

use crate::{config::ConfigError, llm::LlmError, memory::MemoryError, security::SecretError, skills::SkillError};

/// Everything that can go wrong inside core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The deployment's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Every configured model route failed.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A memory operation failed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A bundled skill could not be loaded.
    #[error(transparent)]
    Skill(#[from] SkillError),
    /// The owner's secrets could not be read (for leak scanning or a credential).
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The audit log could not be written.
    #[error("the audit log could not be written: {0}")]
    Audit(String),
    /// The session store failed.
    #[error("session storage failed: {0}")]
    Store(String),
    /// The session's last turn waits for the owner's approval: nothing else runs until it is answered.
    #[error("the last turn is waiting for approval of a tool call; approve or deny it first")]
    AwaitingApproval,
    /// The paused turn was asked to go on, but the last turn is not paused.
    #[error("the last turn is not waiting for approval")]
    NotPaused,
    /// No approval request with this id waits in the session.
    #[error("no approval request `{0}` in this session")]
    ApprovalNotFound(String),
    /// The approval request was already answered (or expired).
    #[error("approval request `{0}` was already {1}")]
    ApprovalDecided(String, &'static str),
    /// A retry was asked for but the last turn did not fail.
    #[error("the last turn did not fail; there is nothing to retry")]
    NothingToRetry,
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
