//! Talking to language models: the provider-neutral conversation, the three wire formats
//! (OpenAI Chat Completions, Anthropic Messages, Gemini generateContent), SSE decoding, pricing, and the
//! resilient client that retries, trips circuit breakers and falls back along an ordered route list.

pub mod anthropic;
pub mod client;
pub mod gemini;
pub mod openai;
pub mod pricing;
mod reply;
pub mod route;
pub mod sse;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::HttpError;

pub use client::{Completion, LlmClient, RetryPolicy};
pub use route::{ModelRoute, Wire};

/// One model-requested tool invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned (or, for Gemini, locally assigned) call id that pairs the call with its result.
    pub id: String,
    /// Name of the tool.
    pub name: String,
    /// The arguments exactly as the model produced them: JSON text, possibly malformed.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as a JSON object; malformed or non-object arguments become an empty object.
    pub fn arguments_object(&self) -> Value {
        match serde_json::from_str::<Value>(&self.arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::Object(Default::default()),
        }
    }
}

/// One entry of a conversation, independent of any provider's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the user said.
    User {
        /// The text.
        content: String,
    },
    /// What the model said, with any tool calls it asked for.
    Assistant {
        /// The text (may be empty when the model only calls tools).
        content: String,
        /// Requested tool calls, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool {
        /// The id of the call this answers.
        tool_call_id: String,
        /// The tool's name (Gemini pairs results by name).
        name: String,
        /// The output (or error text) given to the model.
        content: String,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: bool,
    },
}

impl Message {
    /// Rough size of the message in characters, for context budgeting.
    pub fn size_chars(&self) -> usize {
        match self {
            Message::User { content } => content.len(),
            Message::Assistant { content, tool_calls } => {
                content.len() + tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
            }
            Message::Tool { content, .. } => content.len(),
        }
    }
}

/// A tool as advertised to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// Everything one model call needs, independent of the wire format.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The conversation so far.
    pub messages: &'a [Message],
    /// Tools the model may call.
    pub tools: &'a [ToolSpec],
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Whether to stream the answer.
    pub stream: bool,
}

/// Token counts of one or more model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// The model's answer to one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReply {
    /// Generated text.
    pub text: String,
    /// Requested tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage reported by the provider.
    pub usage: Usage,
}

/// Why a model call (or every route of it) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// No route is usable; says which variables to set.
    #[error("{0}")]
    NotConfigured(String),
    /// The provider answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The provider's error message.
        message: String,
        /// How long the provider asked us to wait (Retry-After), in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// The exchange failed at the transport level.
    #[error(transparent)]
    Transport(#[from] HttpError),
    /// The provider's answer could not be understood.
    #[error("malformed response: {0}")]
    Decode(String),
    /// The answer broke off after text had already been streamed to the user.
    #[error("the model's stream broke off midway ({0})")]
    StreamBroken(String),
    /// Every route failed; lists the last error of each.
    #[error("every model route failed: {0}")]
    Unavailable(String),
}

impl LlmError {
    /// Whether trying the same route again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => matches!(status, 408 | 409 | 425 | 429 | 500..=599),
            LlmError::Transport(e) => !matches!(e, HttpError::InvalidRequest(_) | HttpError::TooLarge(_)),
            _ => false,
        }
    }
}

/// Extracts the human-readable message from a provider's error body. All three formats nest it as
/// `{"error": {"message": …}}`; anything else is shown raw (truncated).
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(msg) = parsed.as_ref().and_then(|v| v.pointer("/error/message")).and_then(Value::as_str) {
        return msg.to_string();
    }
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        "no error details".to_string()
    } else {
        trimmed.chars().take(300).collect()
    }
}

/// Parses a JSON body, turning failure into [`LlmError::Decode`].
fn decode_json(body: &[u8]) -> Result<Value, LlmError> {
    serde_json::from_slice(body).map_err(|e| LlmError::Decode(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_json_with_role_tags() {
        let msg = Message::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "calculator".into(),
                arguments: "{\"expression\":\"1\"}".into(),
            }],
        };
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["role"], "assistant");
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), msg);
    }

    #[test]
    fn malformed_arguments_become_an_empty_object() {
        let call = ToolCall { id: "c".into(), name: "t".into(), arguments: "{not json".into() };
        assert_eq!(call.arguments_object(), serde_json::json!({}));
    }

    #[test]
    fn error_message_reads_nested_message_or_raw_text() {
        assert_eq!(error_message(br#"{"error":{"message":"bad key","type":"x"}}"#), "bad key");
        assert_eq!(error_message(b"upstream exploded"), "upstream exploded");
        assert_eq!(error_message(b""), "no error details");
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let status = |s| LlmError::Status { status: s, message: String::new(), retry_after_ms: None };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(LlmError::Transport(HttpError::Network("reset".into())).is_retryable());
        assert!(!LlmError::Decode("x".into()).is_retryable());
    }
}
