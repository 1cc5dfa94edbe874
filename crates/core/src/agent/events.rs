//! What a turn reports while it runs, and its outcome.

use serde::Serialize;
use serde_json::Value;

use crate::llm::Usage;
use crate::security::Approval;
use crate::session::{TurnRecord, TurnStatus};

/// The result of one tool call, as shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallReport {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON object.
    pub arguments: Value,
    /// Output (or error text) given to the model.
    pub output: String,
    /// Whether the tool failed.
    pub is_error: bool,
    /// Wall time of the call.
    pub duration_ms: u64,
}

/// Progress of a running turn, streamed to clients (e.g. as SSE events named after the variant).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum TurnEvent {
    /// The turn began.
    TurnStarted {
        /// Its id.
        turn_id: String,
    },
    /// A piece of the model's answer.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A tool call is starting.
    ToolCallStarted {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        arguments: Value,
    },
    /// A tool call finished.
    ToolCallFinished(ToolCallReport),
    /// A tool call waits for the owner's approval; the turn pauses once the batch is done.
    ApprovalRequired(Approval),
    /// Tokens used by one model call.
    Usage {
        /// Prompt tokens.
        input_tokens: u64,
        /// Generated tokens.
        output_tokens: u64,
        /// `provider:model` that answered.
        model: String,
    },
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnReport {
    /// Turn id.
    pub turn_id: String,
    /// `completed`, `limit_reached` or `awaiting_approval`.
    pub status: TurnStatus,
    /// The final answer (or the limit notice).
    pub reply: String,
    /// Every tool call of the turn, in order.
    pub tool_calls: Vec<ToolCallReport>,
    /// Tokens used by the whole turn.
    pub usage: Usage,
    /// Cost of the turn in USD, when every model's price is known.
    pub cost_usd: Option<f64>,
    /// `provider:model` that gave the last answer.
    pub model: String,
    /// Model calls made.
    pub iterations: u32,
    /// What the paused turn waits for (only when `awaiting_approval`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

impl TurnReport {
    pub(super) fn new(
        turn: &TurnRecord,
        status: TurnStatus,
        reply: String,
        tool_calls: Vec<ToolCallReport>,
        model: String,
        iterations: u32,
    ) -> Self {
        Self {
            turn_id: turn.id.clone(),
            status,
            reply,
            tool_calls,
            usage: turn.usage,
            cost_usd: turn.cost_usd,
            model,
            iterations,
            approvals: Vec::new(),
        }
    }
}
