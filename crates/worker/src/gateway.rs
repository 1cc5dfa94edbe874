//! The Worker's fetch handler: route, authenticate, bound and parse the request, then answer it here
//! (health, models, stateless chat) or hand it to the session's Durable Object.

use std::rc::Rc;

use edgeclaw_core::agent::{Agent, TurnInput};
use edgeclaw_core::api::{self, openai_compat, run_turn_streaming, ApiError, ReplyFormat, Route, RoutineOp, SecretOp};
use edgeclaw_core::config::Config;
use edgeclaw_core::memory::Namespace;
use edgeclaw_core::routine::MAX_HOOK_BODY_BYTES;
use edgeclaw_core::security::Guard;
use edgeclaw_core::session::{InMemoryStore, SessionId, SessionKey};
use edgeclaw_core::Error;
use serde_json::Value;
use worker::{Context, Date, Env, Method, Request, Response};

use crate::audit_object::{self, AuditCommand};
use crate::scheduler::{self, SchedulerCommand};
use crate::secrets_object::{self, SecretsCommand};
use crate::session::{SessionCommand, SessionRequest};
use crate::{config, guard, http, memory_object, ports};

/// Durable Object binding of the `Session` class.
const SESSIONS_BINDING: &str = "SESSIONS";
/// The channel name of sessions reached through the HTTP API (both faces share it, and routines run
/// there so their transcripts can be read through it).
pub const API_CHANNEL: &str = "api";

/// Answers one request; every failure becomes the JSON error response. Clean-up that need not delay
/// the answer (closing a Postgres connection) continues after it through `ctx`.
pub async fn handle(req: Request, env: Env, ctx: &Context) -> worker::Result<Response> {
    match serve(req, &env, ctx).await {
        Ok(response) => Ok(response),
        Err(error) => http::error(&error),
    }
}

async fn serve(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, ApiError> {
    let route = Route::parse(req.method().as_ref(), &req.path())?;
    let config = config::load(env).map_err(|e| ApiError::from(Error::Config(e)))?;
    if route == Route::Health {
        return http::json(200, &api::health(!config.routes.usable.is_empty())).map_err(http::internal);
    }
    if let Route::Hook(name) = route {
        let body = read_body(&mut req, MAX_HOOK_BODY_BYTES).await?;
        let body = String::from_utf8(body)
            .map_err(|_| ApiError::new(400, "invalid_request", "webhook payloads must be UTF-8 text"))?;
        let headers = req.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        return scheduler::call(env, &SchedulerCommand::Hook { name, headers, body }).await;
    }
    let authorization = req.headers().get("authorization").ok().flatten();
    let principal = config
        .api_tokens
        .authenticate(authorization.as_deref())
        .ok_or_else(|| ApiError::unauthorized(!config.api_tokens.is_empty()))?;
    let body = read_body(&mut req, config.max_body_bytes).await?;
    let stream = http::wants_sse(req.headers());
    let native = ReplyFormat::Native;
    let ask = |id: &SessionId, command: SessionCommand| forward(env, SessionRequest::new(&principal, id, command));
    match route {
        Route::Health | Route::Hook(_) => unreachable!("answered above"),
        Route::Routines(op) => {
            let owner = principal.clone();
            let command = match op {
                RoutineOp::List => SchedulerCommand::List { owner },
                RoutineOp::Create => SchedulerCommand::Create { owner, spec: api::parse_json(&body)? },
                RoutineOp::Get(id) => SchedulerCommand::Get { owner, id },
                RoutineOp::Update(id) => SchedulerCommand::Update { owner, id, patch: api::parse_json(&body)? },
                RoutineOp::Delete(id) => SchedulerCommand::Delete { owner, id },
                RoutineOp::RunNow(id) => SchedulerCommand::RunNow { owner, id },
                RoutineOp::History(id) => SchedulerCommand::History { owner, id },
            };
            scheduler::call(env, &command).await
        }
        Route::Secrets(op) => {
            let command = match op {
                SecretOp::List => SecretsCommand::List,
                SecretOp::Put(name) => SecretsCommand::Put { name, secret: api::parse_json(&body)? },
                SecretOp::Delete(name) => SecretsCommand::Delete { name },
                SecretOp::Rotate => SecretsCommand::Rotate,
            };
            secrets_object::call(env, &principal, command).await
        }
        Route::Audit => {
            let query = api::parse_audit_query(req.url().map_err(http::internal)?.query())?;
            audit_object::call(env, &principal, &AuditCommand::Query { query }).await
        }
        Route::SendMessage(id) => {
            let content = api::parse_send_message(&body)?;
            ask(&id, SessionCommand::Send { content, stream, format: native }).await
        }
        Route::Retry(id) => ask(&id, SessionCommand::Retry { stream, format: native }).await,
        Route::History(id) => ask(&id, SessionCommand::History).await,
        Route::Approvals(id) => ask(&id, SessionCommand::Approvals).await,
        Route::DecideApproval(id, approval) => {
            let answer = api::parse_approval_answer(&body)?;
            let approve = answer.decision == api::ApprovalDecision::Approve;
            ask(&id, SessionCommand::Decide { id: approval, approve, stream: stream || answer.stream }).await
        }
        Route::DeleteSession(id) => ask(&id, SessionCommand::Delete).await,
        Route::Models => http::json(200, &openai_compat::models(&config.routes.usable)).map_err(http::internal),
        Route::Memory { namespace, op } => {
            let namespace = Namespace::new(&principal, &namespace)?;
            let backend = memory_object::backend(&config, env, &ports::ports()).await;
            let query = req.url().ok().and_then(|url| url.query().map(str::to_string));
            let result = api::memory::handle(&backend.memory, &namespace, op, &body, query.as_deref()).await;
            ctx.wait_until(async move { backend.release().await });
            let (status, body) = result?;
            http::json(status, &body).map_err(http::internal)
        }
        Route::ChatCompletions => {
            let header = req.headers().get("x-edgeclaw-session").ok().flatten();
            let chat = openai_compat::parse_request(&body, header.as_deref())?;
            let format =
                ReplyFormat::OpenAi { created: Date::now().as_millis() / 1000, include_usage: chat.include_usage };
            match &chat.session {
                Some(id) => {
                    let command = SessionCommand::Send { content: chat.message, stream: chat.stream, format };
                    ask(id, command).await
                }
                None => {
                    let guard = guard::for_principal(env, &config, &principal, None);
                    stateless_chat(config, guard, chat, format).await
                }
            }
        }
    }
}

/// Reads the body, refusing more than `limit` bytes (413).
async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    if req.method() == Method::Get || req.method() == Method::Delete {
        return Ok(Vec::new());
    }
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared {
        api::check_body_size(len, limit)?;
    }
    let body = req.bytes().await.map_err(http::internal)?;
    api::check_body_size(body.len(), limit)?;
    Ok(body)
}

/// Sends a request to its session's Durable Object and relays its (possibly streaming) response.
pub async fn forward(env: &Env, request: SessionRequest) -> Result<Response, ApiError> {
    let key = SessionKey::new(&request.principal, API_CHANNEL, &request.session);
    http::ask_object(env, SESSIONS_BINDING, key.as_str(), &request).await.map_err(http::internal)
}

/// An OpenAI-compatible request without a session: the client's messages are the history, kept only
/// for this one turn.
async fn stateless_chat(
    config: Config,
    guard: Rc<Guard>,
    chat: openai_compat::ChatRequest,
    format: ReplyFormat,
) -> Result<Response, ApiError> {
    let agent = Agent::new(config, ports::ports(), guard)?;
    let store = InMemoryStore::with_history(chat.history);
    let input = TurnInput::Message(chat.message);
    if chat.stream {
        let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
        wasm_bindgen_futures::spawn_local(async move {
            run_turn_streaming(&agent, &store, input, format, &|frame| {
                let _ = tx.unbounded_send(frame);
            })
            .await;
        });
        return http::sse(rx).map_err(http::internal);
    }
    let report = agent.run_turn(&store, input, false, &|_| {}).await?;
    let body: Value = format.report_json(&report);
    http::json(200, &body).map_err(http::internal)
}
