//! Security: the secrets vault, the egress gate, leak detection, prompt-injection detection and the
//! audit log and human approval of risky calls — the defences every tool and channel uses.

mod approval;
mod audit;
mod egress;
mod guard;
mod hosts;
mod injection;
mod leak;
mod redact_stream;
mod secrets;
mod untrusted;
mod vault;
pub use approval::{
    Approval, ApprovalKind, ApprovalPolicy, ApprovalRequest, ApprovalStatus, Effect, Risk, Ruling,
    MAX_APPROVAL_TIMEOUT_MS,
};
pub use audit::{AuditEntry, AuditKind, AuditLog, AuditQuery, AuditStore, Decision, InMemoryAudit, MAX_AUDIT_PAGE};
pub use egress::{Egress, EgressError, EgressPolicy, TextResponse};
pub use guard::Guard;
pub use hosts::{is_internal, HostPattern};
pub use injection::{detect, Detection, Severity};
pub use leak::{builtin_rules, Finding, Hit, LeakAction, LeakError, LeakScanner, Redacted, RequestPart, Rule, Verdict};
pub use redact_stream::StreamRedactor;
pub use secrets::{
    Credentials, Injection, NewSecret, RotationReport, SecretError, SecretMeta, SecretRecord, SecretStore, Secrets,
    MAX_SECRETS_PER_OWNER,
};
pub use untrusted::{screen, wrap, InjectionAction, InjectionPolicy, Screened, Source};
pub use vault::{MasterKey, SealedSecret, SecretValue, Vault, VaultError};
