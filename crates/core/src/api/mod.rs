//! The HTTP API, independent of any platform: routing, request parsing, the JSON error shape, and how
//! turns are encoded (JSON, native SSE events, or OpenAI-compatible chunks). Adapters move bytes; every
//! decision about status codes and bodies is made here, once.

mod error;
pub mod memory;
pub mod openai_compat;
mod turn;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::security::{Approval, AuditQuery, MAX_AUDIT_PAGE};
use crate::session::{SessionId, Transcript};

pub use error::ApiError;
pub use memory::MemoryOp;
pub use turn::{run_turn_streaming, ReplyFormat};

/// Version reported by the health endpoint.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest user message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A recognised request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/health`
    Health,
    /// `POST /api/sessions/{id}/messages`
    SendMessage(SessionId),
    /// `GET /api/sessions/{id}/messages`
    History(SessionId),
    /// `POST /api/sessions/{id}/retry`
    Retry(SessionId),
    /// `DELETE /api/sessions/{id}`
    DeleteSession(SessionId),
    /// `GET /api/sessions/{id}/approvals`: what the session's paused turn waits for.
    Approvals(SessionId),
    /// `POST /api/sessions/{id}/approvals/{approval_id}`: approve or deny one request.
    DecideApproval(SessionId, String),
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `GET /v1/models`
    Models,
    /// `/api/memory/{namespace}/…`
    Memory {
        /// The namespace name (checked once the principal is known).
        namespace: String,
        /// What to do.
        op: MemoryOp,
    },
    /// `/api/routines…`
    Routines(RoutineOp),
    /// `POST /hooks/{name}`: a webhook delivery, authenticated by the hook's own secret.
    Hook(String),
    /// `/api/secrets…`
    Secrets(SecretOp),
    /// `GET /api/audit`: the principal's audit log, newest first.
    Audit,
}

/// What is asked of the principal's secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOp {
    /// `GET /api/secrets`: names and metadata.
    List,
    /// `PUT /api/secrets/{name}`
    Put(String),
    /// `DELETE /api/secrets/{name}`
    Delete(String),
    /// `POST /api/secrets/rotate`: re-seal records of the previous master key with the current one.
    Rotate,
}

/// What is asked of the routine book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutineOp {
    /// `GET /api/routines`
    List,
    /// `POST /api/routines`
    Create,
    /// `GET /api/routines/{id}`
    Get(String),
    /// `PATCH /api/routines/{id}`
    Update(String),
    /// `DELETE /api/routines/{id}`
    Delete(String),
    /// `POST /api/routines/{id}/run`
    RunNow(String),
    /// `GET /api/routines/{id}/runs`
    History(String),
}

impl Route {
    /// Matches a method and path; unknown paths are 404, known paths with another method 405.
    pub fn parse(method: &str, path: &str) -> Result<Route, ApiError> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let session = |id: &str| SessionId::parse(id).ok_or_else(ApiError::invalid_session_id);
        let (allowed, route): (&[&str], Option<Route>) = match segments.as_slice() {
            ["api", "health"] => (&["GET"], (method == "GET").then_some(Route::Health)),
            ["api", "sessions", id, "messages"] => (
                &["GET", "POST"],
                match method {
                    "GET" => Some(Route::History(session(id)?)),
                    "POST" => Some(Route::SendMessage(session(id)?)),
                    _ => None,
                },
            ),
            ["api", "sessions", id, "retry"] => {
                (&["POST"], if method == "POST" { Some(Route::Retry(session(id)?)) } else { None })
            }
            ["api", "sessions", id, "approvals"] => {
                (&["GET"], if method == "GET" { Some(Route::Approvals(session(id)?)) } else { None })
            }
            ["api", "sessions", id, "approvals", approval] => (
                &["POST"],
                if method == "POST" { Some(Route::DecideApproval(session(id)?, approval.to_string())) } else { None },
            ),
            ["api", "sessions", id] => {
                (&["DELETE"], if method == "DELETE" { Some(Route::DeleteSession(session(id)?)) } else { None })
            }
            ["v1", "chat", "completions"] => (&["POST"], (method == "POST").then_some(Route::ChatCompletions)),
            ["v1", "models"] => (&["GET"], (method == "GET").then_some(Route::Models)),
            ["api", "memory", namespace, rest @ ..] => {
                let (allowed, op) = MemoryOp::parse(method, rest).ok_or_else(|| not_found(path))?;
                (allowed, op.map(|op| Route::Memory { namespace: namespace.to_string(), op }))
            }
            ["api", "routines"] => (
                &["GET", "POST"],
                match method {
                    "GET" => Some(Route::Routines(RoutineOp::List)),
                    "POST" => Some(Route::Routines(RoutineOp::Create)),
                    _ => None,
                },
            ),
            ["api", "routines", id] => (
                &["GET", "PATCH", "DELETE"],
                match method {
                    "GET" => Some(RoutineOp::Get(id.to_string())),
                    "PATCH" => Some(RoutineOp::Update(id.to_string())),
                    "DELETE" => Some(RoutineOp::Delete(id.to_string())),
                    _ => None,
                }
                .map(Route::Routines),
            ),
            ["api", "routines", id, "run"] => {
                (&["POST"], (method == "POST").then(|| Route::Routines(RoutineOp::RunNow(id.to_string()))))
            }
            ["api", "routines", id, "runs"] => {
                (&["GET"], (method == "GET").then(|| Route::Routines(RoutineOp::History(id.to_string()))))
            }
            ["api", "secrets"] => (&["GET"], (method == "GET").then_some(Route::Secrets(SecretOp::List))),
            ["api", "secrets", "rotate"] if method == "POST" => (&["POST"], Some(Route::Secrets(SecretOp::Rotate))),
            ["api", "secrets", name] => (
                &["PUT", "DELETE"],
                match method {
                    "PUT" => Some(Route::Secrets(SecretOp::Put(name.to_string()))),
                    "DELETE" => Some(Route::Secrets(SecretOp::Delete(name.to_string()))),
                    _ => None,
                },
            ),
            ["api", "audit"] => (&["GET"], (method == "GET").then_some(Route::Audit)),
            ["hooks", name] => (&["POST"], (method == "POST").then(|| Route::Hook(name.to_string()))),
            _ => return Err(not_found(path)),
        };
        route.ok_or_else(|| {
            ApiError::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on {path}; use {}", allowed.join(" or ")),
            )
        })
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(404, "not_found", format!("no route for {path}"))
}

/// Fails with 413 when a body of `len` bytes exceeds `limit`.
pub fn check_body_size(len: usize, limit: usize) -> Result<(), ApiError> {
    if len > limit {
        return Err(ApiError::new(413, "payload_too_large", format!("the body has {len} bytes; the limit is {limit}")));
    }
    Ok(())
}

/// Parses a JSON object body into `T`: 400 `invalid_json` for bad JSON, 400 `invalid_request` for
/// anything but an object of the right shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "invalid_json", format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::new(400, "invalid_request", "the body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(400, "invalid_request", format!("unexpected request shape: {e}")))
}

/// Reads the query of `GET /api/audit`: `limit`, `before`, `kind` (`tool_call` or `egress`), `tool`,
/// `session`; anything else, or a value of the wrong kind, is a 400.
pub fn parse_audit_query(query: Option<&str>) -> Result<AuditQuery, ApiError> {
    let mut fields = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = match key.as_ref() {
            "limit" | "before" => value.parse::<u64>().map(Value::from).map_err(|_| {
                ApiError::new(400, "invalid_request", format!("`{key}` must be a whole number, not `{value}`"))
            })?,
            _ => Value::String(value.into_owned()),
        };
        fields.insert(key.into_owned(), value);
    }
    let query: AuditQuery = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::new(400, "invalid_request", format!("bad audit query: {e}")))?;
    if query.limit.is_some_and(|limit| limit == 0 || limit > MAX_AUDIT_PAGE) {
        return Err(ApiError::new(400, "invalid_request", format!("`limit` must be from 1 to {MAX_AUDIT_PAGE}")));
    }
    Ok(query)
}

/// An answer to an approval request: `{"decision": "approve" | "deny", "stream": bool}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    /// The owner's decision.
    pub decision: ApprovalDecision,
    /// Stream the resumed turn as SSE (when this answer is the last one it waited for).
    #[serde(default)]
    pub stream: bool,
}

/// The owner's decision on an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Run the call (or release its output).
    Approve,
    /// Refuse it.
    Deny,
}

/// Reads the body of `POST /api/sessions/{id}/approvals/{approval_id}`.
pub fn parse_approval_answer(body: &[u8]) -> Result<ApprovalAnswer, ApiError> {
    parse_json(body)
}

/// The body answering an approval decision: the request as it now stands, and the resumed turn's
/// report when the decision let the turn go on (`null` while other requests still wait).
pub fn approval_decided(approval: &Approval, turn: Option<Value>) -> Value {
    json!({"approval": approval, "turn": turn})
}

#[derive(Deserialize)]
struct SendMessageBody {
    content: Option<Value>,
}

/// Reads the user message of `POST /api/sessions/{id}/messages`.
pub fn parse_send_message(body: &[u8]) -> Result<String, ApiError> {
    let parsed: SendMessageBody = parse_json(body)?;
    match parsed.content {
        Some(Value::String(text)) => validate_message(text),
        Some(_) => Err(ApiError::new(400, "invalid_request", "`content` must be a string")),
        None => Err(ApiError::new(400, "invalid_request", "`content` is required")),
    }
}

/// Checks a user message: not blank, not over [`MAX_MESSAGE_BYTES`].
pub fn validate_message(text: String) -> Result<String, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(400, "invalid_request", "the message is empty"));
    }
    check_body_size(text.len(), MAX_MESSAGE_BYTES).map_err(|_| {
        ApiError::new(
            413,
            "payload_too_large",
            format!("the message has {} bytes; the limit is {MAX_MESSAGE_BYTES}", text.len()),
        )
    })?;
    Ok(text)
}

/// The body of `GET /api/sessions/{id}/messages`: every message and every turn, in order.
pub fn history(session: &SessionId, transcript: &Transcript) -> Value {
    json!({"session_id": session, "messages": transcript.messages, "turns": transcript.turns})
}

/// The body of `GET /api/health`.
pub fn health(llm_configured: bool) -> Value {
    json!({"status": "ok", "version": VERSION, "llm_configured": llm_configured})
}

/// One SSE frame.
pub fn sse_frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_methods_and_paths() {
        assert_eq!(Route::parse("GET", "/api/health").unwrap(), Route::Health);
        assert_eq!(
            Route::parse("POST", "/api/sessions/abc-1/messages").unwrap(),
            Route::SendMessage(SessionId::parse("abc-1").unwrap())
        );
        assert_eq!(
            Route::parse("GET", "/api/sessions/abc/messages/").unwrap(),
            Route::History(SessionId::parse("abc").unwrap())
        );
        assert_eq!(
            Route::parse("DELETE", "/api/sessions/abc").unwrap(),
            Route::DeleteSession(SessionId::parse("abc").unwrap())
        );
        assert_eq!(Route::parse("POST", "/v1/chat/completions").unwrap(), Route::ChatCompletions);
        assert_eq!(Route::parse("GET", "/nope").unwrap_err().status, 404);
        let wrong = Route::parse("PUT", "/api/sessions/abc/messages").unwrap_err();
        assert_eq!((wrong.status, wrong.code), (405, "method_not_allowed"));
        assert_eq!(Route::parse("POST", "/api/sessions/bad%20id/messages").unwrap_err().code, "invalid_session_id");
        assert_eq!(
            Route::parse("POST", &format!("/api/sessions/{}/messages", "a".repeat(129))).unwrap_err().status,
            400
        );
        let routine = |method, path| Route::parse(method, path).unwrap();
        assert_eq!(routine("POST", "/api/routines"), Route::Routines(RoutineOp::Create));
        assert_eq!(routine("PATCH", "/api/routines/rt_1"), Route::Routines(RoutineOp::Update("rt_1".into())));
        assert_eq!(routine("POST", "/api/routines/rt_1/run"), Route::Routines(RoutineOp::RunNow("rt_1".into())));
        assert_eq!(routine("GET", "/api/routines/rt_1/runs"), Route::Routines(RoutineOp::History("rt_1".into())));
        assert_eq!(routine("POST", "/hooks/deploy"), Route::Hook("deploy".into()));
        assert_eq!(Route::parse("GET", "/hooks/deploy").unwrap_err().status, 405);
        assert_eq!(routine("PUT", "/api/secrets/GH"), Route::Secrets(SecretOp::Put("GH".into())));
        assert_eq!(Route::parse("GET", "/api/secrets/GH").unwrap_err().status, 405);
        assert_eq!(routine("POST", "/api/secrets/rotate"), Route::Secrets(SecretOp::Rotate));
        assert_eq!(routine("PUT", "/api/secrets/rotate"), Route::Secrets(SecretOp::Put("rotate".into())));
    }

    #[test]
    fn message_bodies_are_validated() {
        assert_eq!(parse_send_message(br#"{"content":"hi"}"#).unwrap(), "hi");
        assert_eq!(parse_send_message(b"{oops").unwrap_err().code, "invalid_json");
        assert_eq!(parse_send_message(b"{}").unwrap_err().code, "invalid_request");
        assert_eq!(parse_send_message(br#"{"content":"  "}"#).unwrap_err().code, "invalid_request");
        assert_eq!(parse_send_message(br#"{"content":5}"#).unwrap_err().code, "invalid_request");
        assert_eq!(parse_send_message(br#"[1]"#).unwrap_err().code, "invalid_request");
        assert_eq!(parse_send_message(br#"["hi"]"#).unwrap_err().code, "invalid_request");
        let big = serde_json::to_vec(&json!({"content": "x".repeat(MAX_MESSAGE_BYTES + 1)})).unwrap();
        assert_eq!(parse_send_message(&big).unwrap_err().status, 413);
    }

    #[test]
    fn audit_queries_are_parsed_and_checked() {
        assert_eq!(Route::parse("GET", "/api/audit").unwrap(), Route::Audit);
        assert_eq!(Route::parse("DELETE", "/api/audit").unwrap_err().status, 405);
        let query = parse_audit_query(Some("limit=5&kind=egress&tool=http_fetch&before=9")).unwrap();
        assert_eq!((query.limit, query.before, query.tool.as_deref()), (Some(5), Some(9), Some("http_fetch")));
        assert_eq!(parse_audit_query(None).unwrap(), AuditQuery::default());
        for bad in ["limit=x", "limit=0", "limit=501", "kind=delete", "color=red"] {
            assert_eq!(parse_audit_query(Some(bad)).unwrap_err().code, "invalid_request", "{bad}");
        }
    }

    #[test]
    fn approval_routes_and_answers() {
        let id = SessionId::parse("s1").unwrap();
        assert_eq!(Route::parse("GET", "/api/sessions/s1/approvals").unwrap(), Route::Approvals(id.clone()));
        assert_eq!(
            Route::parse("POST", "/api/sessions/s1/approvals/apv_1").unwrap(),
            Route::DecideApproval(id, "apv_1".into())
        );
        assert_eq!(Route::parse("GET", "/api/sessions/s1/approvals/apv_1").unwrap_err().status, 405);
        let answer = parse_approval_answer(br#"{"decision": "deny"}"#).unwrap();
        assert_eq!((answer.decision, answer.stream), (ApprovalDecision::Deny, false));
        assert!(parse_approval_answer(br#"{"decision": "approve", "stream": true}"#).unwrap().stream);
        for bad in [&br#"{"decision": "maybe"}"#[..], br#"{}"#, br#"{"decision": "deny", "why": 1}"#] {
            assert_eq!(parse_approval_answer(bad).unwrap_err().code, "invalid_request");
        }
        assert_eq!(parse_approval_answer(b"nope").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn oversized_bodies_are_413() {
        assert!(check_body_size(10, 10).is_ok());
        assert_eq!(check_body_size(11, 10).unwrap_err().status, 413);
    }
}
