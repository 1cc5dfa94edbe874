//! The security state one agent works with: the leak scanner that knows its owner's secret values,
//! where credentials come from, and the audit log its actions are written to.

use std::cell::RefCell;
use std::rc::Rc;

use super::{builtin_rules, AuditLog, Credentials, LeakScanner, Redacted, SecretError, SecretMeta, SecretValue};

/// One agent's leak scanner, credentials and audit log.
pub struct Guard {
    scanner: RefCell<Rc<LeakScanner>>,
    credentials: Option<Rc<dyn Credentials>>,
    audit: AuditLog,
}

impl Default for Guard {
    /// No credentials, the built-in leak rules only, and no audit log (stateless requests).
    fn default() -> Self {
        Guard::new(None, AuditLog::disabled())
    }
}

impl Guard {
    /// A guard over the owner's credentials (if any) that records to `audit`.
    pub fn new(credentials: Option<Rc<dyn Credentials>>, audit: AuditLog) -> Guard {
        let scanner = LeakScanner::new(builtin_rules(), &[]).expect("the built-in rules compile");
        Guard { scanner: RefCell::new(Rc::new(scanner)), credentials, audit }
    }

    /// Reloads the owner's secret values into the leak scanner, so that a secret stored since the last
    /// turn is caught too. Called at the start of each turn.
    pub async fn refresh(&self) -> Result<(), SecretError> {
        let Some(credentials) = &self.credentials else { return Ok(()) };
        let values = credentials.values().await?;
        let known: Vec<(&str, &str)> = values.iter().map(|(name, value)| (name.as_str(), value.expose())).collect();
        let scanner = LeakScanner::new(builtin_rules(), &known).map_err(|e| SecretError::Store(e.to_string()))?;
        *self.scanner.borrow_mut() = Rc::new(scanner);
        Ok(())
    }

    /// The current leak scanner.
    pub fn scanner(&self) -> Rc<LeakScanner> {
        self.scanner.borrow().clone()
    }

    /// `text` with every credential the scanner knows replaced.
    pub fn redact(&self, text: &str) -> Redacted {
        self.scanner().redact(text)
    }

    /// A stored credential, for the egress gate to inject; `None` when the agent has no secrets.
    pub async fn credential(&self, name: &str) -> Option<Result<(SecretMeta, SecretValue), SecretError>> {
        Some(self.credentials.as_ref()?.reveal(name).await)
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
}
