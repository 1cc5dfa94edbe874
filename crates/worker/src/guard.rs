//! The security guard of one principal's agent on Workers: credentials from their `Secrets` object
//! (when a master key is configured) and the audit log in their `Audit` object.

use std::rc::Rc;

use edgeclaw_core::auth::Principal;
use edgeclaw_core::config::Config;
use edgeclaw_core::security::{AuditLog, Credentials, Guard};
use edgeclaw_core::session::SessionId;
use worker::Env;

use crate::audit_object::RemoteAudit;
use crate::secrets_object::RemoteCredentials;

/// The guard for `principal`'s agent in `session` (none for a stateless request).
pub fn for_principal(env: &Env, config: &Config, principal: &Principal, session: Option<&SessionId>) -> Rc<Guard> {
    let credentials =
        config.master_key.is_some().then(|| Rc::new(RemoteCredentials::new(env, principal)) as Rc<dyn Credentials>);
    let audit =
        AuditLog::new(principal.as_str(), session.map(SessionId::as_str), Rc::new(RemoteAudit::new(env, principal)));
    Rc::new(Guard::new(credentials, audit))
}
