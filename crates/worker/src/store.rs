//! The session transcript in the Durable Object's SQLite storage: one row per message, one per turn,
//! one per approval request of the paused turn.

use async_trait::async_trait;
use edgeclaw_core::llm::{Message, Usage};
use edgeclaw_core::security::ApprovalRequest;
use edgeclaw_core::session::{SessionStore, StoredMessage, Transcript, TurnRecord, TurnStatus};
use edgeclaw_core::{Error, Result};
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    error TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

/// A [`SessionStore`] over Durable Object SQLite.
pub struct SqliteStore {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct TurnRow {
    id: String,
    status: String,
    error: Option<String>,
    started_at: f64,
    finished_at: Option<f64>,
    input_tokens: f64,
    output_tokens: f64,
    cost_usd: Option<f64>,
}

#[derive(Deserialize)]
struct BodyRow {
    body: String,
}

#[derive(Deserialize)]
struct MessageRow {
    seq: f64,
    turn_id: String,
    created_at: f64,
    body: String,
}

impl TurnRow {
    fn into_record(self) -> Result<TurnRecord> {
        Ok(TurnRecord {
            status: TurnStatus::parse(&self.status)
                .ok_or_else(|| store_error(format!("unknown turn status {}", self.status)))?,
            id: self.id,
            error: self.error,
            started_at: self.started_at as u64,
            finished_at: self.finished_at.map(|t| t as u64),
            usage: Usage { input_tokens: self.input_tokens as u64, output_tokens: self.output_tokens as u64 },
            cost_usd: self.cost_usd,
        })
    }
}

impl MessageRow {
    fn into_stored(self) -> Result<StoredMessage> {
        Ok(StoredMessage {
            seq: self.seq as u64,
            turn_id: self.turn_id,
            created_at: self.created_at as u64,
            message: serde_json::from_str(&self.body).map_err(store_error)?,
        })
    }
}

fn store_error(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// SQLite integers arrive as JS numbers; values used here stay far below 2^53.
fn int(value: u64) -> SqlStorageValue {
    SqlStorageValue::from(value as f64)
}

impl SqliteStore {
    /// Opens the store, creating its tables on first use.
    pub fn open(sql: SqlStorage) -> Result<Self> {
        sql.exec(SCHEMA, None).map_err(store_error)?;
        Ok(Self { sql })
    }

    fn exec(&self, query: &str, values: Vec<SqlStorageValue>) -> Result<worker::SqlCursor> {
        self.sql.exec(query, values).map_err(store_error)
    }
}

#[async_trait(?Send)]
impl SessionStore for SqliteStore {
    async fn start_turn(&self, turn: &TurnRecord) -> Result<()> {
        self.exec(
            "INSERT INTO turns (id, status, started_at, cost_usd) VALUES (?, ?, ?, ?)",
            vec![turn.id.as_str().into(), turn.status.as_str().into(), int(turn.started_at), turn.cost_usd.into()],
        )?;
        Ok(())
    }

    async fn append(&self, turn_id: &str, message: &Message, at_ms: u64) -> Result<()> {
        let body = serde_json::to_string(message).map_err(store_error)?;
        self.exec(
            "INSERT INTO messages (turn_id, created_at, body) VALUES (?, ?, ?)",
            vec![turn_id.into(), int(at_ms), body.into()],
        )?;
        Ok(())
    }

    async fn update_turn(&self, turn: &TurnRecord) -> Result<()> {
        self.exec(
            "UPDATE turns SET status = ?, error = ?, finished_at = ?, input_tokens = ?, output_tokens = ?, cost_usd = ? WHERE id = ?",
            vec![
                turn.status.as_str().into(),
                turn.error.clone().into(),
                turn.finished_at.map(|t| t as f64).into(),
                int(turn.usage.input_tokens),
                int(turn.usage.output_tokens),
                turn.cost_usd.into(),
                turn.id.as_str().into(),
            ],
        )?;
        Ok(())
    }

    async fn recent_messages(&self, limit: usize) -> Result<Vec<Message>> {
        let rows: Vec<MessageRow> = self
            .exec(
                "SELECT * FROM (SELECT * FROM messages ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                vec![int(limit as u64)],
            )?
            .to_array()
            .map_err(store_error)?;
        rows.into_iter().map(|row| Ok(row.into_stored()?.message)).collect()
    }

    async fn last_turn(&self) -> Result<Option<TurnRecord>> {
        let rows: Vec<TurnRow> =
            self.exec("SELECT * FROM turns ORDER BY rowid DESC LIMIT 1", vec![])?.to_array().map_err(store_error)?;
        rows.into_iter().next().map(TurnRow::into_record).transpose()
    }

    async fn transcript(&self) -> Result<Transcript> {
        let turns: Vec<TurnRow> =
            self.exec("SELECT * FROM turns ORDER BY rowid", vec![])?.to_array().map_err(store_error)?;
        let messages: Vec<MessageRow> =
            self.exec("SELECT * FROM messages ORDER BY seq", vec![])?.to_array().map_err(store_error)?;
        Ok(Transcript {
            messages: messages.into_iter().map(MessageRow::into_stored).collect::<Result<_>>()?,
            turns: turns.into_iter().map(TurnRow::into_record).collect::<Result<_>>()?,
        })
    }

    async fn save_approvals(&self, requests: &[ApprovalRequest]) -> Result<()> {
        for request in requests {
            let body = serde_json::to_string(request).map_err(store_error)?;
            self.exec(
                "INSERT INTO approvals (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                vec![request.approval.id.as_str().into(), body.into()],
            )?;
        }
        Ok(())
    }

    async fn approvals(&self) -> Result<Vec<ApprovalRequest>> {
        let rows: Vec<BodyRow> =
            self.exec("SELECT body FROM approvals ORDER BY rowid", vec![])?.to_array().map_err(store_error)?;
        rows.iter().map(|row| serde_json::from_str(&row.body).map_err(store_error)).collect()
    }

    async fn clear_approvals(&self) -> Result<()> {
        self.exec("DELETE FROM approvals", vec![])?;
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        self.exec("DELETE FROM messages", vec![])?;
        self.exec("DELETE FROM turns", vec![])?;
        self.clear_approvals().await
    }
}
