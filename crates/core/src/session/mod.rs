//! Sessions: their identity, the transcript store port, and the queue that runs one turn at a time.

mod memory_store;
mod queue;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::llm::{Message, Usage};
use crate::security::ApprovalRequest;
use crate::Result;

pub use memory_store::InMemoryStore;
pub use queue::{TurnQueue, TurnSlot};

/// A session name chosen by the client: 1–128 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct SessionId(String);

impl TryFrom<String> for SessionId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        SessionId::parse(&id).ok_or_else(|| format!("`{id}` is not a valid session id"))
    }
}

impl SessionId {
    /// Parses a client-supplied session id.
    pub fn parse(id: &str) -> Option<SessionId> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then(|| SessionId(id.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The globally unique key of a session: `agent:<principal>:<channel>:<peer>`. Principals never share
/// a key, so one principal can never reach another's session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    /// The key of `principal`'s session `id` on `channel` (e.g. `api`).
    pub fn new(principal: &Principal, channel: &str, id: &SessionId) -> SessionKey {
        SessionKey(format!("agent:{principal}:{channel}:{}", id.as_str()))
    }

    /// The key as text (e.g. a Durable Object name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a turn stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    /// In progress (or interrupted, if found so by a fresh instance).
    Running,
    /// The model gave a final answer.
    Completed,
    /// The turn stopped at the iteration limit.
    LimitReached,
    /// The turn ended in an error; it can be retried.
    Failed,
    /// The turn is paused until the owner answers its approval requests.
    AwaitingApproval,
}

impl TurnStatus {
    /// The status name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Running => "running",
            TurnStatus::Completed => "completed",
            TurnStatus::LimitReached => "limit_reached",
            TurnStatus::Failed => "failed",
            TurnStatus::AwaitingApproval => "awaiting_approval",
        }
    }

    /// Parses a stored status name.
    pub fn parse(text: &str) -> Option<TurnStatus> {
        [
            TurnStatus::Running,
            TurnStatus::Completed,
            TurnStatus::LimitReached,
            TurnStatus::Failed,
            TurnStatus::AwaitingApproval,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One turn's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Turn id.
    pub id: String,
    /// Status.
    pub status: TurnStatus,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start time, ms since the epoch.
    pub started_at: u64,
    /// End time, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Tokens used.
    pub usage: Usage,
    /// Cost in USD, when the model's price is known.
    pub cost_usd: Option<f64>,
}

/// One stored transcript entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Position in the transcript (increasing).
    pub seq: u64,
    /// The turn that produced it.
    pub turn_id: String,
    /// When it was stored, ms since the epoch.
    pub created_at: u64,
    /// The message.
    #[serde(flatten)]
    pub message: Message,
}

/// A session's whole transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transcript {
    /// Messages in order.
    pub messages: Vec<StoredMessage>,
    /// Turns in order.
    pub turns: Vec<TurnRecord>,
}

/// Durable storage of one session's transcript (Durable Object SQLite, Postgres, memory…).
#[async_trait(?Send)]
pub trait SessionStore {
    /// Records a new turn.
    async fn start_turn(&self, turn: &TurnRecord) -> Result<()>;
    /// Appends a message of `turn_id`.
    async fn append(&self, turn_id: &str, message: &Message, at_ms: u64) -> Result<()>;
    /// Replaces a turn's record (status, error, usage, finish time).
    async fn update_turn(&self, turn: &TurnRecord) -> Result<()>;
    /// The last `limit` messages, oldest first (what a turn's context is built from).
    async fn recent_messages(&self, limit: usize) -> Result<Vec<Message>>;
    /// The most recent turn.
    async fn last_turn(&self) -> Result<Option<TurnRecord>>;
    /// The whole transcript.
    async fn transcript(&self) -> Result<Transcript>;
    /// Stores approval requests, replacing any with the same id.
    async fn save_approvals(&self, requests: &[ApprovalRequest]) -> Result<()>;
    /// The stored approval requests (those of the paused turn), oldest first.
    async fn approvals(&self) -> Result<Vec<ApprovalRequest>>;
    /// Forgets the approval requests (once the paused turn has gone on).
    async fn clear_approvals(&self) -> Result<()>;
    /// Deletes everything, approval requests included.
    async fn clear(&self) -> Result<()>;
}
