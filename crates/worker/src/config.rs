//! Reading core's configuration from Worker variables and secrets.

use edgeclaw_core::config::{Config, ConfigError};
use worker::Env;

/// The configuration from this Worker's `[vars]` and secrets (a secret wins over a var of the same name).
pub fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_env(&|name| {
        env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
    })
}
