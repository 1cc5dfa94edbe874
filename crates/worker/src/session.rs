//! The `Session` Durable Object: one per session key. It owns the transcript (SQLite), runs that
//! session's turns strictly one at a time, and streams them to the caller.

use std::cell::RefCell;
use std::rc::Rc;

use edgeclaw_core::agent::{Agent, TurnInput};
use edgeclaw_core::api::{self, run_turn_streaming, ApiError, ReplyFormat};
use edgeclaw_core::auth::Principal;
use edgeclaw_core::memory::Namespace;
use edgeclaw_core::session::{SessionId, SessionStore, TurnQueue};
use edgeclaw_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::{config, http, memory_object, ports};

/// A command for a session, on behalf of its principal.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionRequest {
    /// Who owns the session (its memory is theirs).
    pub principal: Principal,
    /// What to do.
    pub command: SessionCommand,
}

/// What the gateway asks of a session.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SessionCommand {
    /// Run a turn for a new user message.
    Send {
        /// The message.
        content: String,
        /// Stream the turn as SSE.
        stream: bool,
        /// How to encode the outcome.
        format: ReplyFormat,
    },
    /// Run the last failed turn again.
    Retry {
        /// Stream the turn as SSE.
        stream: bool,
        /// How to encode the outcome.
        format: ReplyFormat,
    },
    /// Return the transcript.
    History {
        /// The client's name for the session, echoed in the reply.
        session_id: SessionId,
    },
    /// Delete the transcript.
    Delete,
}

/// What a live session object builds on first use: the agent and its transcript store.
struct Runtime {
    agent: Agent,
    store: crate::store::SqliteStore,
    memory: memory_object::MemoryBackend,
}

/// One conversation, as a Durable Object.
#[durable_object]
pub struct Session {
    state: State,
    env: Env,
    /// Created with the object, not the runtime, so turns queue up even while the runtime is being built.
    queue: TurnQueue,
    runtime: RefCell<Option<Rc<Runtime>>>,
}

impl Session {
    /// The runtime, built on first use (configuration is read once per object instance).
    async fn runtime(&self, principal: &Principal) -> std::result::Result<Rc<Runtime>, ApiError> {
        if let Some(runtime) = self.runtime.borrow().as_ref() {
            return Ok(runtime.clone());
        }
        let config = config::load(&self.env).map_err(|e| ApiError::from(Error::Config(e)))?;
        let ports = ports::ports();
        let memory = memory_object::backend(&config, &self.env, &ports).await;
        let namespace = Namespace::new(principal, Namespace::DEFAULT).map_err(Error::from)?;
        let agent = Agent::new(config, ports)?.with_memory(memory.memory.clone(), namespace);
        let store = crate::store::SqliteStore::open(self.state.storage().sql())?;
        let runtime = Rc::new(Runtime { agent, store, memory });
        *self.runtime.borrow_mut() = Some(runtime.clone());
        Ok(runtime)
    }

    async fn turn(
        &self,
        runtime: Rc<Runtime>,
        input: TurnInput,
        stream: bool,
        format: ReplyFormat,
    ) -> Result<Response> {
        if stream {
            let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
            let queue = self.queue.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _slot = queue.acquire().await;
                run_turn_streaming(&runtime.agent, &runtime.store, input, format, &|frame| {
                    // A closed receiver means the client went away; the turn still finishes and is stored.
                    let _ = tx.unbounded_send(frame);
                })
                .await;
                // before `tx` drops and ends the response, while the request is still alive
                runtime.memory.release().await;
            });
            return http::sse(rx);
        }
        let _slot = self.queue.acquire().await;
        match runtime.agent.run_turn(&runtime.store, input, false, &|_| {}).await {
            Ok(report) => http::json(200, &format.report_json(&report)),
            Err(error) => http::error(&error.into()),
        }
    }
}

impl DurableObject for Session {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, queue: TurnQueue::default(), runtime: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let SessionRequest { principal, command } = match serde_json::from_slice(&req.bytes().await?) {
            Ok(request) => request,
            Err(e) => return http::error(&ApiError::new(400, "invalid_request", format!("bad session command: {e}"))),
        };
        let runtime = match self.runtime(&principal).await {
            Ok(runtime) => runtime,
            Err(error) => return http::error(&error),
        };
        // A streamed turn releases memory's connection itself, when it ends; everything else here.
        let streamed =
            matches!(command, SessionCommand::Send { stream: true, .. } | SessionCommand::Retry { stream: true, .. });
        let response = match command {
            SessionCommand::Send { content, stream, format } => {
                self.turn(runtime.clone(), TurnInput::Message(content), stream, format).await
            }
            SessionCommand::Retry { stream, format } => {
                self.turn(runtime.clone(), TurnInput::Retry, stream, format).await
            }
            SessionCommand::History { session_id } => match runtime.store.transcript().await {
                Ok(transcript) => http::json(200, &api::history(&session_id, &transcript)),
                Err(error) => http::error(&error.into()),
            },
            SessionCommand::Delete => {
                let _slot = self.queue.acquire().await;
                match runtime.store.clear().await {
                    Ok(()) => http::json(200, &json!({"deleted": true})),
                    Err(error) => http::error(&error.into()),
                }
            }
        };
        if !streamed {
            runtime.memory.release().await;
        }
        response
    }
}
