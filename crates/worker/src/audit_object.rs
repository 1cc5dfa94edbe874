//! The `Audit` Durable Object: one per principal, holding that principal's append-only audit log in
//! SQLite. It answers two commands, append and query; nothing updates or deletes an entry.

use async_trait::async_trait;
use edgeclaw_core::api::ApiError;
use edgeclaw_core::auth::Principal;
use edgeclaw_core::security::{AuditEntry, AuditQuery, AuditStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use crate::http;

/// Durable Object binding of the `Audit` class.
const AUDIT_BINDING: &str = "AUDIT";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    tool TEXT NOT NULL,
    session TEXT,
    entry TEXT NOT NULL
)";

/// What is asked of a principal's audit log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AuditCommand {
    /// Append entries, in order.
    Append {
        /// The entries.
        entries: Vec<AuditEntry>,
    },
    /// Entries matching a query, newest first.
    Query {
        /// The query.
        query: AuditQuery,
    },
}

/// Sends `command` to `owner`'s audit object and returns its response.
pub async fn call(env: &Env, owner: &Principal, command: &AuditCommand) -> std::result::Result<Response, ApiError> {
    http::ask_object(env, AUDIT_BINDING, owner.as_str(), command).await.map_err(http::internal)
}

/// A principal's audit log as seen from elsewhere (a Session object): each call is a command to the
/// principal's `Audit` object.
pub struct RemoteAudit {
    env: Env,
    owner: Principal,
}

impl RemoteAudit {
    /// `owner`'s audit log.
    pub fn new(env: &Env, owner: &Principal) -> Self {
        Self { env: env.clone(), owner: owner.clone() }
    }

    async fn ask(&self, command: &AuditCommand) -> std::result::Result<serde_json::Value, String> {
        let mut response = call(&self.env, &self.owner, command).await.map_err(|e| e.message)?;
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        match response.status_code() {
            200 => Ok(body),
            status => Err(format!("the audit log answered {status}: {body}")),
        }
    }
}

#[async_trait(?Send)]
impl AuditStore for RemoteAudit {
    async fn append(&self, entries: &[AuditEntry]) -> std::result::Result<(), String> {
        self.ask(&AuditCommand::Append { entries: entries.to_vec() }).await.map(|_| ())
    }

    async fn query(&self, query: &AuditQuery) -> std::result::Result<Vec<AuditEntry>, String> {
        let body = self.ask(&AuditCommand::Query { query: query.clone() }).await?;
        serde_json::from_value(body["entries"].clone()).map_err(|e| e.to_string())
    }
}

/// One principal's audit log, as a Durable Object.
#[durable_object]
pub struct Audit {
    state: State,
}

impl DurableObject for Audit {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: AuditCommand = match serde_json::from_slice(&req.bytes().await?) {
            Ok(command) => command,
            Err(e) => return http::error(&ApiError::new(400, "invalid_request", format!("bad audit command: {e}"))),
        };
        let store = SqliteAudit::open(self.state.storage().sql())?;
        let answer = match command {
            AuditCommand::Append { entries } => {
                store.append(&entries).await.map(|()| json!({"appended": entries.len()}))
            }
            AuditCommand::Query { query } => store.query(&query).await.map(|entries| json!({"entries": entries})),
        };
        match answer {
            Ok(body) => http::json(200, &body),
            Err(message) => http::error(&ApiError::new(503, "audit_unavailable", message)),
        }
    }
}

/// Audit entries in the object's SQLite, one row each.
struct SqliteAudit {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct EntryRow {
    seq: f64,
    entry: String,
}

impl SqliteAudit {
    fn open(sql: SqlStorage) -> Result<Self> {
        sql.exec(SCHEMA, None)?;
        Ok(Self { sql })
    }
}

#[async_trait(?Send)]
impl AuditStore for SqliteAudit {
    async fn append(&self, entries: &[AuditEntry]) -> std::result::Result<(), String> {
        for entry in entries {
            let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
            let kind = serde_json::to_value(entry.kind).map_err(|e| e.to_string())?;
            let values: Vec<SqlStorageValue> = vec![
                kind.as_str().unwrap_or_default().into(),
                entry.tool.as_str().into(),
                entry.session.clone().map_or(SqlStorageValue::Null, Into::into),
                text.into(),
            ];
            self.sql
                .exec("INSERT INTO audit (kind, tool, session, entry) VALUES (?, ?, ?, ?)", values)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> std::result::Result<Vec<AuditEntry>, String> {
        let mut sql = String::from("SELECT seq, entry FROM audit WHERE 1 = 1");
        let mut values: Vec<SqlStorageValue> = Vec::new();
        if let Some(before) = query.before {
            sql.push_str(" AND seq < ?");
            values.push((before as i64).into());
        }
        if let Some(kind) = query.kind {
            sql.push_str(" AND kind = ?");
            let kind = serde_json::to_value(kind).map_err(|e| e.to_string())?;
            values.push(kind.as_str().unwrap_or_default().into());
        }
        if let Some(tool) = &query.tool {
            sql.push_str(" AND tool = ?");
            values.push(tool.as_str().into());
        }
        if let Some(session) = &query.session {
            sql.push_str(" AND session = ?");
            values.push(session.as_str().into());
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        values.push((query.page_size() as i64).into());
        let rows: Vec<EntryRow> = self.sql.exec(&sql, values).and_then(|c| c.to_array()).map_err(|e| e.to_string())?;
        rows.into_iter()
            .map(|row| {
                let mut entry: AuditEntry =
                    serde_json::from_str(&row.entry).map_err(|e| format!("corrupt audit entry: {e}"))?;
                entry.seq = row.seq as u64;
                Ok(entry)
            })
            .collect()
    }
}
