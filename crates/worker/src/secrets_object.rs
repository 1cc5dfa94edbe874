//! The `Secrets` Durable Object: one per principal, holding that principal's sealed secrets in SQLite.
//! Values are sealed and opened by core's vault inside the object; only ciphertext is stored.

use std::rc::Rc;

use async_trait::async_trait;
use edgeclaw_core::api::ApiError;
use edgeclaw_core::auth::Principal;
use edgeclaw_core::security::{
    Credentials, NewSecret, SecretError, SecretMeta, SecretRecord, SecretStore, SecretValue, Secrets as OwnerSecrets,
    Vault,
};
use edgeclaw_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use crate::{config, http, ports};

/// Durable Object binding of the `Secrets` class.
const SECRETS_BINDING: &str = "SECRETS";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, record TEXT NOT NULL)";

/// What is asked of a principal's secrets.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SecretsCommand {
    /// Names and metadata.
    List,
    /// Store or replace `name` (the body of `PUT /api/secrets/{name}`).
    Put {
        /// The secret's name.
        name: String,
        /// The request body.
        secret: serde_json::Value,
    },
    /// Delete `name`.
    Delete {
        /// The secret's name.
        name: String,
    },
    /// Re-seal records of the previous master key.
    Rotate,
    /// One secret's metadata and value, for the egress gate of one of the owner's sessions. No route
    /// of the API leads here: only Durable Objects of this Worker can ask.
    Reveal {
        /// The secret's name.
        name: String,
    },
    /// Every secret's name and value, for the leak scanner of one of the owner's sessions (likewise
    /// never reachable from the API).
    Values,
}

#[derive(Serialize, Deserialize)]
struct SecretsRequest {
    owner: Principal,
    command: SecretsCommand,
}

/// Sends `command` to `owner`'s secrets object and returns its response.
pub async fn call(env: &Env, owner: &Principal, command: SecretsCommand) -> std::result::Result<Response, ApiError> {
    let request = SecretsRequest { owner: owner.clone(), command };
    http::ask_object(env, SECRETS_BINDING, owner.as_str(), &request).await.map_err(http::internal)
}

/// A principal's secrets as one of their sessions uses them: each call asks their `Secrets` object.
pub struct RemoteCredentials {
    env: Env,
    owner: Principal,
}

impl RemoteCredentials {
    /// `owner`'s credentials.
    pub fn new(env: &Env, owner: &Principal) -> Self {
        Self { env: env.clone(), owner: owner.clone() }
    }

    async fn ask(&self, command: SecretsCommand) -> std::result::Result<serde_json::Value, SecretError> {
        let unavailable = |e: String| SecretError::Store(format!("the secrets store is unavailable: {e}"));
        let mut response = call(&self.env, &self.owner, command).await.map_err(|e| unavailable(e.message))?;
        let body: serde_json::Value = response.json().await.map_err(|e| unavailable(e.to_string()))?;
        match response.status_code() {
            200 => Ok(body),
            404 => Err(SecretError::NotFound(body["error"]["message"].as_str().unwrap_or_default().to_string())),
            _ => Err(unavailable(body["error"]["message"].as_str().unwrap_or_default().to_string())),
        }
    }
}

#[derive(Deserialize)]
struct NamedValue {
    name: String,
    value: String,
}

#[async_trait(?Send)]
impl Credentials for RemoteCredentials {
    async fn reveal(&self, name: &str) -> std::result::Result<(SecretMeta, SecretValue), SecretError> {
        let body = self.ask(SecretsCommand::Reveal { name: name.to_string() }).await.map_err(|e| match e {
            SecretError::NotFound(_) => SecretError::NotFound(name.to_string()),
            other => other,
        })?;
        let meta: SecretMeta =
            serde_json::from_value(body["meta"].clone()).map_err(|e| SecretError::Store(e.to_string()))?;
        let value = body["value"].as_str().unwrap_or_default().to_string();
        Ok((meta, SecretValue::from(value)))
    }

    async fn values(&self) -> std::result::Result<Vec<(String, SecretValue)>, SecretError> {
        let body = self.ask(SecretsCommand::Values).await?;
        let values: Vec<NamedValue> =
            serde_json::from_value(body["values"].clone()).map_err(|e| SecretError::Store(e.to_string()))?;
        Ok(values.into_iter().map(|v| (v.name, SecretValue::from(v.value))).collect())
    }
}

/// One principal's secrets, as a Durable Object.
#[durable_object]
pub struct Secrets {
    state: State,
    env: Env,
}

impl Secrets {
    async fn answer(&self, request: SecretsRequest) -> std::result::Result<Response, ApiError> {
        let config = config::load(&self.env).map_err(|e| ApiError::from(Error::Config(e)))?;
        let master_key = config.master_key.ok_or_else(|| {
            ApiError::new(
                503,
                "vault_not_configured",
                "secrets need a master key: set EDGECLAW_MASTER_KEY (32 bytes of base64) as a Worker secret",
            )
        })?;
        let ports = ports::ports();
        let vault = |key| Rc::new(Vault::new(key, ports.random.clone()));
        let store = SqliteSecretStore::open(self.state.storage().sql()).map_err(http::internal)?;
        let secrets = OwnerSecrets::new(vault(master_key), Rc::new(store), request.owner.as_str(), ports.clock.clone())
            .with_previous(config.previous_master_key.map(vault));
        let body = match request.command {
            SecretsCommand::List => json!({ "secrets": secrets.list().await? }),
            SecretsCommand::Put { name, secret } => {
                let secret: NewSecret = serde_json::from_value(secret)
                    .map_err(|e| ApiError::new(400, "invalid_secret", format!("invalid secret: {e}")))?;
                json!(secrets.set(&name, secret).await?)
            }
            SecretsCommand::Delete { name } => {
                secrets.delete(&name).await?;
                json!({ "deleted": true })
            }
            SecretsCommand::Rotate => json!(secrets.rotate().await?),
            SecretsCommand::Reveal { name } => {
                let (meta, value) = secrets.reveal(&name).await?;
                json!({ "meta": meta, "value": value.expose() })
            }
            SecretsCommand::Values => {
                let values = secrets.values().await?;
                let values: Vec<_> =
                    values.iter().map(|(name, value)| json!({"name": name, "value": value.expose()})).collect();
                json!({ "values": values })
            }
        };
        http::json(200, &body).map_err(http::internal)
    }
}

impl DurableObject for Secrets {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: SecretsRequest = match serde_json::from_slice(&req.bytes().await?) {
            Ok(request) => request,
            Err(e) => return http::error(&ApiError::new(400, "invalid_request", format!("bad secrets command: {e}"))),
        };
        self.answer(request).await.or_else(|error| http::error(&error))
    }
}

/// Secret records in the object's SQLite, one row each.
struct SqliteSecretStore {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
}

impl SqliteSecretStore {
    fn open(sql: SqlStorage) -> Result<Self> {
        sql.exec(SCHEMA, None)?;
        Ok(Self { sql })
    }

    fn records(
        &self,
        query: &str,
        values: Vec<worker::SqlStorageValue>,
    ) -> std::result::Result<Vec<SecretRecord>, String> {
        let rows: Vec<RecordRow> =
            self.sql.exec(query, values).and_then(|c| c.to_array()).map_err(|e| e.to_string())?;
        rows.iter().map(|row| serde_json::from_str(&row.record).map_err(|e| format!("corrupt record: {e}"))).collect()
    }
}

#[async_trait(?Send)]
impl SecretStore for SqliteSecretStore {
    async fn get(&self, name: &str) -> std::result::Result<Option<SecretRecord>, String> {
        Ok(self.records("SELECT record FROM secrets WHERE name = ?", vec![name.into()])?.pop())
    }

    async fn list(&self) -> std::result::Result<Vec<SecretRecord>, String> {
        self.records("SELECT record FROM secrets ORDER BY name", vec![])
    }

    async fn put(&self, record: &SecretRecord) -> std::result::Result<(), String> {
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        self.sql
            .exec(
                "INSERT INTO secrets (name, record) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                vec![record.meta.name.as_str().into(), text.into()],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> std::result::Result<bool, String> {
        let existed = self.get(name).await?.is_some();
        self.sql.exec("DELETE FROM secrets WHERE name = ?", vec![name.into()]).map_err(|e| e.to_string())?;
        Ok(existed)
    }
}
