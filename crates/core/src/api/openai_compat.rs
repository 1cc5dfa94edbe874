//! The OpenAI-compatible face of the agent: `POST /v1/chat/completions` requests in, `chat.completion`
//! objects or `chat.completion.chunk` streams out, so any OpenAI client can talk to edgeclaw.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_json, validate_message, ApiError};
use crate::agent::TurnReport;
use crate::llm::{Message, ModelRoute};
use crate::session::{SessionId, TurnStatus};

/// The model name edgeclaw answers to.
pub const MODEL_NAME: &str = "edgeclaw";

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<RawMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

/// A parsed chat-completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The session to continue (from `X-Edgeclaw-Session` or `user`); `None` means stateless.
    pub session: Option<SessionId>,
    /// Earlier user/assistant messages (used only when stateless).
    pub history: Vec<Message>,
    /// The last user message: this turn's input.
    pub message: String,
    /// Whether to stream chunks.
    pub stream: bool,
    /// Whether the stream ends with a usage chunk.
    pub include_usage: bool,
}

/// Text of an OpenAI message content: a string or an array of `{type: "text", text}` parts.
fn content_text(content: Option<&Value>) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text),
                _ => Err(ApiError::new(400, "invalid_request", "only text content parts are supported")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join("\n")),
        Some(_) => Err(ApiError::new(400, "invalid_request", "`content` must be a string or an array of parts")),
    }
}

/// Parses a request body; `session_header` is the `X-Edgeclaw-Session` header, which wins over `user`.
///
/// The client's system messages are not used: edgeclaw applies its own system prompt and skills.
pub fn parse_request(body: &[u8], session_header: Option<&str>) -> Result<ChatRequest, ApiError> {
    let raw: RawRequest = parse_json(body)?;
    if let Some(model) = raw.model.as_deref().filter(|m| *m != MODEL_NAME) {
        return Err(ApiError::new(404, "model_not_found", format!("unknown model `{model}`; use `{MODEL_NAME}`")));
    }
    let session = match session_header.or(raw.user.as_deref()) {
        Some(id) => Some(SessionId::parse(id.trim()).ok_or_else(ApiError::invalid_session_id)?),
        None => None,
    };
    let mut history = Vec::new();
    for message in &raw.messages {
        let text = content_text(message.content.as_ref())?;
        match message.role.as_str() {
            "user" => history.push(Message::User { content: text }),
            "assistant" if !text.is_empty() => history.push(Message::Assistant { content: text, tool_calls: vec![] }),
            "assistant" | "system" | "developer" | "tool" => {}
            other => return Err(ApiError::new(400, "invalid_request", format!("unknown message role `{other}`"))),
        }
    }
    let message = match history.pop() {
        Some(Message::User { content }) => validate_message(content)?,
        _ => return Err(ApiError::new(400, "invalid_request", "the last message must be a non-empty user message")),
    };
    Ok(ChatRequest {
        session,
        history,
        message,
        stream: raw.stream,
        include_usage: raw.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// The body of `GET /v1/models`: `edgeclaw`, plus the routes it uses for reference.
pub fn models(routes: &[ModelRoute]) -> Value {
    let mut data = vec![json!({"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "edgeclaw"})];
    data.extend(
        routes.iter().map(|r| json!({"id": r.label(), "object": "model", "created": 0, "owned_by": r.provider})),
    );
    json!({"object": "list", "data": data})
}

fn finish_reason(report: &TurnReport) -> &'static str {
    if report.status == TurnStatus::LimitReached {
        "length"
    } else {
        "stop"
    }
}

fn usage_json(report: &TurnReport) -> Value {
    let u = report.usage;
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.input_tokens + u.output_tokens})
}

/// A `chat.completion` object for a finished turn.
pub fn completion(report: &TurnReport, created: u64) -> Value {
    json!({
        "id": format!("chatcmpl-{}", report.turn_id),
        "object": "chat.completion",
        "created": created,
        "model": MODEL_NAME,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": report.reply}, "finish_reason": finish_reason(report)}],
        "usage": usage_json(report),
    })
}

/// One `chat.completion.chunk` SSE frame.
pub fn chunk(turn_id: &str, created: u64, delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": format!("chatcmpl-{turn_id}"),
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_NAME,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    });
    format!("data: {chunk}\n\n")
}

/// The closing frames of a streamed turn: the finish chunk (carrying the reply when it was not
/// streamed, as with the iteration-limit notice or the wait for approval), the optional usage chunk, and `[DONE]`.
pub fn closing_chunks(report: &TurnReport, created: u64, include_usage: bool) -> String {
    let delta = if report.status == TurnStatus::Completed { json!({}) } else { json!({"content": report.reply}) };
    let mut out = chunk(&report.turn_id, created, delta, Some(finish_reason(report)));
    if include_usage {
        let usage = json!({
            "id": format!("chatcmpl-{}", report.turn_id), "object": "chat.completion.chunk", "created": created,
            "model": MODEL_NAME, "choices": [], "usage": usage_json(report),
        });
        out.push_str(&format!("data: {usage}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// An error inside a stream, in the shape OpenAI clients raise as an API error.
pub fn error_chunk(error: &ApiError) -> String {
    let body = json!({"error": {"message": error.message, "type": "server_error", "code": error.code}});
    format!("data: {body}\n\ndata: [DONE]\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

    #[test]
    fn the_last_user_message_is_the_input_and_earlier_ones_history() {
        let body = json!({"model": "edgeclaw", "messages": [
            {"role": "system", "content": "be terse"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "how"}, {"type": "text", "text": "are you"}]}
        ], "stream": true, "stream_options": {"include_usage": true}});
        let req = parse_request(body.to_string().as_bytes(), None).unwrap();
        assert_eq!(req.message, "how\nare you");
        assert_eq!(req.history.len(), 2);
        assert!(req.stream && req.include_usage && req.session.is_none());
    }

    #[test]
    fn the_session_header_wins_over_the_user_field() {
        let body = json!({"messages": [{"role": "user", "content": "x"}], "user": "from-user"});
        let req = parse_request(body.to_string().as_bytes(), Some("from-header")).unwrap();
        assert_eq!(req.session.unwrap().as_str(), "from-header");
        let req = parse_request(body.to_string().as_bytes(), None).unwrap();
        assert_eq!(req.session.unwrap().as_str(), "from-user");
    }

    #[test]
    fn bad_requests_are_rejected_clearly() {
        let cases = [
            (json!({"messages": []}), "invalid_request"),
            (json!({"messages": [{"role": "assistant", "content": "x"}]}), "invalid_request"),
            (json!({"messages": [{"role": "wizard", "content": "x"}]}), "invalid_request"),
            (json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}), "invalid_request"),
            (json!({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}), "model_not_found"),
            (json!({"messages": "nope"}), "invalid_request"),
        ];
        for (body, code) in cases {
            assert_eq!(parse_request(body.to_string().as_bytes(), None).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn a_limit_reached_stream_carries_the_notice_and_usage() {
        let report = TurnReport {
            turn_id: "t1".into(),
            status: TurnStatus::LimitReached,
            reply: "Stopped".into(),
            tool_calls: vec![],
            usage: Usage { input_tokens: 3, output_tokens: 4 },
            cost_usd: None,
            model: "openai:x".into(),
            iterations: 2,
            approvals: vec![],
        };
        let frames = closing_chunks(&report, 7, true);
        assert!(frames.contains(r#""content":"Stopped""#) && frames.contains(r#""finish_reason":"length""#));
        assert!(frames.contains(r#""total_tokens":7"#) && frames.ends_with("data: [DONE]\n\n"));
        assert_eq!(completion(&report, 7)["choices"][0]["message"]["content"], "Stopped");
    }
}
