//! Security: the secrets vault, leak detection, and the other defences every tool and channel uses.

mod injection;
mod leak;
mod secrets;
mod vault;
pub use injection::{detect, Detection, Severity};
pub use leak::{builtin_rules, Finding, Hit, LeakAction, LeakError, LeakScanner, Redacted, RequestPart, Rule, Verdict};
pub use secrets::{
    Injection, NewSecret, SecretError, SecretMeta, SecretRecord, SecretStore, Secrets, MAX_SECRETS_PER_OWNER,
};
pub use vault::{MasterKey, SealedSecret, SecretValue, Vault, VaultError};
