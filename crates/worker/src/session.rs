//! The `Session` Durable Object: one per session key. It owns the transcript (SQLite), runs that
//! session's turns strictly one at a time, streams them to the caller, and keeps a paused turn's
//! approval requests (its alarm expires the unanswered ones and resumes the turn).

use std::cell::RefCell;
use std::rc::Rc;

use edgeclaw_core::agent::{Agent, TurnInput};
use edgeclaw_core::api::{self, run_turn_streaming, ApiError, ReplyFormat};
use edgeclaw_core::auth::Principal;
use edgeclaw_core::memory::Namespace;
use edgeclaw_core::routine::{deliver_result, external_data_prompt, RoutineRun, RunOutcome, Verdict};
use edgeclaw_core::security::{Egress, Source};
use edgeclaw_core::session::{SessionId, SessionStore, TurnQueue, TurnStatus};
use edgeclaw_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, Storage};

use crate::scheduler::{self, SchedulerClient, SchedulerCommand};
use crate::{config, guard, http, memory_object, ports};

/// A command for a session, on behalf of its principal.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionRequest {
    /// Who owns the session (its memory is theirs).
    pub principal: Principal,
    /// The client's name for the session.
    pub session: SessionId,
    /// What to do.
    pub command: SessionCommand,
}

impl SessionRequest {
    /// `command` for `principal`'s session `session`.
    pub fn new(principal: &Principal, session: &SessionId, command: SessionCommand) -> Self {
        Self { principal: principal.clone(), session: session.clone(), command }
    }
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
    History,
    /// Return the paused turn's approval requests.
    Approvals,
    /// Answer an approval request; the last answer resumes the turn.
    Decide {
        /// The request.
        id: String,
        /// Approve (or deny).
        approve: bool,
        /// Stream the resumed turn as SSE.
        stream: bool,
    },
    /// Delete the transcript.
    Delete,
    /// Run a routine's turn (accepted durably at once, run from the object's alarm).
    Routine(Box<RoutineRun>),
}

/// Routine runs accepted but not yet reported; `running` marks one whose turn has started, `outcome`
/// one that finished.
/// `routine_fingerprints` keeps what each routine's `changed` pre-check saw last.
const ROUTINE_RUNS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS routine_runs (
    key TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS routine_fingerprints (
    routine_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL
);";

#[derive(Deserialize)]
struct FingerprintRow {
    fingerprint: String,
}

#[derive(Deserialize)]
struct RoutineRunRow {
    key: String,
    run: String,
    running: f64,
    outcome: Option<String>,
}

/// How long a session waits before reporting a routine outcome the scheduler did not take.
const REPORT_RETRY_MS: i64 = 30_000;

/// Storage key of the session's owner and name, for work started by the alarm (no request to read
/// them from).
const OWNER_KEY: &str = "owner";

/// Who owns this session object, and its name.
#[derive(Serialize, Deserialize)]
struct Owner {
    principal: Principal,
    session: SessionId,
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
    async fn runtime(&self, principal: &Principal, session: &SessionId) -> std::result::Result<Rc<Runtime>, ApiError> {
        if let Some(runtime) = self.runtime.borrow().as_ref() {
            return Ok(runtime.clone());
        }
        let config = config::load(&self.env).map_err(|e| ApiError::from(Error::Config(e)))?;
        let ports = ports::ports();
        let memory = memory_object::backend(&config, &self.env, &ports).await;
        let namespace = Namespace::new(principal, Namespace::DEFAULT).map_err(Error::from)?;
        let routines = Rc::new(SchedulerClient::new(&self.env, principal));
        let guard = guard::for_principal(&self.env, &config, principal, Some(session));
        let agent = Agent::new(config, ports, guard)?
            .with_memory(memory.memory.clone(), namespace)
            .with_routines(routines, session.clone());
        let store = crate::store::SqliteStore::open(self.state.storage().sql())?;
        let owner = Owner { principal: principal.clone(), session: session.clone() };
        self.state
            .storage()
            .put(OWNER_KEY, &owner)
            .await
            .map_err(|e| ApiError::new(500, "storage_error", e.to_string()))?;
        let runtime = Rc::new(Runtime { agent, store, memory });
        *self.runtime.borrow_mut() = Some(runtime.clone());
        Ok(runtime)
    }

    /// Stores a routine run (once per key) and wakes the object to run it.
    async fn accept_routine(&self, run: RoutineRun) -> Result<Response> {
        let sql = self.state.storage().sql();
        sql.exec(ROUTINE_RUNS_SCHEMA, None)?;
        let inserted: Vec<serde_json::Value> = sql
            .exec(
                "INSERT INTO routine_runs (key, run) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key",
                vec![run.key.as_str().into(), serde_json::to_string(&run)?.into()],
            )?
            .to_array()?;
        self.state.storage().set_alarm(0).await?;
        http::json(202, &json!({"accepted": true, "duplicate": inserted.is_empty()}))
    }

    /// Runs the accepted routine runs in order and reports each to the scheduler. A run found already
    /// started was cut off by a restart: it is reported failed, not run again. An outcome the scheduler
    /// could not take is kept and reported again later: the answer says whether one is.
    async fn run_routines(&self) -> Result<bool> {
        let sql = self.state.storage().sql();
        sql.exec(ROUTINE_RUNS_SCHEMA, None)?;
        let rows: Vec<RoutineRunRow> =
            sql.exec("SELECT key, run, running, outcome FROM routine_runs ORDER BY rowid", None)?.to_array()?;
        let mut unreported = false;
        for row in rows {
            let run: RoutineRun = serde_json::from_str(&row.run)?;
            let key = || row.key.as_str().into();
            let outcome = match (&row.outcome, row.running > 0.0) {
                (Some(outcome), _) => serde_json::from_str(outcome)?,
                (None, true) => {
                    let now = worker::Date::now().as_millis() as i64;
                    RunOutcome::failed(now, now, "the run was interrupted by a restart and is not repeated".into())
                }
                (None, false) => {
                    sql.exec("UPDATE routine_runs SET running = 1 WHERE key = ?", vec![key()])?;
                    self.routine_turn(&run).await
                }
            };
            sql.exec(
                "UPDATE routine_runs SET outcome = ? WHERE key = ?",
                vec![serde_json::to_string(&outcome)?.into(), key()],
            )?;
            let report = SchedulerCommand::Finished { key: run.key.clone(), outcome };
            match scheduler::call(&self.env, &report).await.map(|r| r.status_code()) {
                // 404: the routine was deleted meanwhile, and its history with it
                Ok(200..=299 | 404) => {
                    sql.exec("DELETE FROM routine_runs WHERE key = ?", vec![key()])?;
                }
                answer => {
                    let why = answer.map_or_else(|e| e.message, |status| format!("status {status}"));
                    worker::console_error!("routine run {} not reported yet ({why}); retrying", run.key);
                    unreported = true;
                }
            }
        }
        Ok(unreported)
    }

    /// Expires the approval requests whose time is up and resumes the paused turn once nothing is left
    /// to answer; returns when the next request expires.
    async fn expire_approvals(&self) -> Result<Option<u64>> {
        let Some(owner) = self.state.storage().get::<Owner>(OWNER_KEY).await? else { return Ok(None) };
        let runtime =
            self.runtime(&owner.principal, &owner.session).await.map_err(|e| worker::Error::RustError(e.message))?;
        let _slot = self.queue.acquire().await;
        let mut state = runtime.agent.expire_approvals(&runtime.store).await.map_err(to_worker)?;
        if state.ready {
            if let Err(error) = runtime.agent.run_turn(&runtime.store, TurnInput::Resume, false, &|_| {}).await {
                worker::console_error!("the paused turn could not go on after its approvals expired: {error}");
            }
            runtime.memory.release().await;
            state = runtime.agent.expire_approvals(&runtime.store).await.map_err(to_worker)?;
        }
        Ok(state.next_deadline)
    }

    /// Answers an approval request; when it was the last one the turn waited for, the turn goes on and
    /// its outcome is the response (streamed if asked).
    async fn decide(&self, runtime: Rc<Runtime>, id: &str, approve: bool, stream: bool) -> Result<Response> {
        let decided = {
            let _slot = self.queue.acquire().await;
            runtime.agent.decide_approval(&runtime.store, id, approve).await
        };
        let (approval, state) = match decided {
            Ok(decided) => decided,
            Err(error) => return http::error(&error.into()),
        };
        if !state.ready {
            return http::json(200, &api::approval_decided(&approval, None));
        }
        if stream {
            return self.turn(runtime, TurnInput::Resume, true, ReplyFormat::Native).await;
        }
        let _slot = self.queue.acquire().await;
        let result = runtime.agent.run_turn(&runtime.store, TurnInput::Resume, false, &|_| {}).await;
        arm_for_approvals(&self.state.storage(), &runtime).await;
        match result {
            Ok(report) => {
                http::json(200, &api::approval_decided(&approval, Some(ReplyFormat::Native.report_json(&report))))
            }
            Err(error) => http::error(&error.into()),
        }
    }

    /// One routine turn, after its pre-check and within its time and token limits, and its delivery.
    async fn routine_turn(&self, run: &RoutineRun) -> RunOutcome {
        let ports = ports::ports();
        let now = || ports.clock.now_ms() as i64;
        let started_at = now();
        let runtime = match self.runtime(&run.owner, &run.session).await {
            Ok(runtime) => runtime,
            Err(error) => return RunOutcome::failed(started_at, now(), error.message),
        };
        let egress = runtime.agent.egress();
        let prompt = match self.precheck(run, egress, &runtime.agent).await {
            Ok(Ok(prompt)) => prompt,
            Ok(Err(reason)) => return RunOutcome::skipped(started_at, now(), reason),
            Err(error) => return RunOutcome::failed(started_at, now(), format!("pre-check failed: {error}")),
        };
        let _slot = self.queue.acquire().await;
        let input = TurnInput::Message(prompt);
        let turn = runtime.agent.run_turn_within(&runtime.store, input, false, &|_| {}, run.max_tokens);
        let mut outcome = match ports.with_timeout(run.timeout_ms, turn).await {
            Some(Ok(report)) => RunOutcome {
                tokens: report.usage.input_tokens + report.usage.output_tokens,
                cost_usd: report.cost_usd,
                reply: Some(report.reply),
                error: (report.status != TurnStatus::Completed)
                    .then(|| format!("the turn ended with status {}", report.status.as_str())),
                ..RunOutcome::timed(started_at, now())
            },
            Some(Err(error)) => RunOutcome::failed(started_at, now(), error.to_string()),
            None => RunOutcome::failed(
                started_at,
                now(),
                format!("the run took longer than its {} ms limit", run.timeout_ms),
            ),
        };
        runtime.memory.release().await;
        if let Err(error) = deliver_result(run, &outcome, egress).await {
            outcome.error.get_or_insert(format!("delivery failed: {error}"));
        }
        outcome
    }

    /// The turn's message if the run's pre-check passes (with the page it looked at as external data),
    /// the reason to skip if not.
    async fn precheck(
        &self,
        run: &RoutineRun,
        egress: &Egress,
        agent: &Agent,
    ) -> std::result::Result<std::result::Result<String, String>, String> {
        let Some(check) = &run.precheck else { return Ok(Ok(run.prompt.clone())) };
        let sql = self.state.storage().sql();
        let last: Vec<FingerprintRow> = sql
            .exec(
                "SELECT fingerprint FROM routine_fingerprints WHERE routine_id = ?",
                vec![run.routine_id.as_str().into()],
            )
            .and_then(|c| c.to_array())
            .map_err(|e| e.to_string())?;
        match check.evaluate(egress, last.first().map(|r| r.fingerprint.as_str())).await? {
            Verdict::Skip { reason } => Ok(Err(reason)),
            Verdict::Run { page, fingerprint } => {
                sql.exec(
                    "INSERT INTO routine_fingerprints (routine_id, fingerprint) VALUES (?, ?)
                     ON CONFLICT (routine_id) DO UPDATE SET fingerprint = excluded.fingerprint",
                    vec![run.routine_id.as_str().into(), fingerprint.into()],
                )
                .map_err(|e| e.to_string())?;
                Ok(Ok(external_data_prompt(&run.prompt, agent.injection_policy(), Source::Web, check.url(), &page)))
            }
        }
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
            let storage = self.state.storage();
            wasm_bindgen_futures::spawn_local(async move {
                let _slot = queue.acquire().await;
                run_turn_streaming(&runtime.agent, &runtime.store, input, format, &|frame| {
                    // A closed receiver means the client went away; the turn still finishes and is stored.
                    let _ = tx.unbounded_send(frame);
                })
                .await;
                arm_for_approvals(&storage, &runtime).await;
                // before `tx` drops and ends the response, while the request is still alive
                runtime.memory.release().await;
            });
            return http::sse(rx);
        }
        let _slot = self.queue.acquire().await;
        let result = runtime.agent.run_turn(&runtime.store, input, false, &|_| {}).await;
        arm_for_approvals(&self.state.storage(), &runtime).await;
        match result {
            Ok(report) => http::json(200, &format.report_json(&report)),
            Err(error) => http::error(&error.into()),
        }
    }
}

/// Sets the object's alarm for the next approval request's expiry, unless it is set earlier already.
async fn arm_for_approvals(storage: &Storage, runtime: &Runtime) {
    let armed = async {
        let Some(deadline) = runtime.agent.expire_approvals(&runtime.store).await.map_err(to_worker)?.next_deadline
        else {
            return Ok(());
        };
        arm_at(storage, deadline).await
    };
    if let Err(error) = armed.await {
        worker::console_error!("the approval expiry alarm could not be set: {error}");
    }
}

/// Sets the alarm for `at` (ms since the epoch) unless it is set to go off sooner.
async fn arm_at(storage: &Storage, at: u64) -> Result<()> {
    if storage.get_alarm().await?.is_some_and(|current| current as u64 <= at) {
        return Ok(());
    }
    let now = worker::Date::now().as_millis();
    storage.set_alarm(at.saturating_sub(now) as i64).await
}

fn to_worker(error: Error) -> worker::Error {
    worker::Error::RustError(error.to_string())
}

impl DurableObject for Session {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, queue: TurnQueue::default(), runtime: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let SessionRequest { principal, session, command } = match serde_json::from_slice(&req.bytes().await?) {
            Ok(request) => request,
            Err(e) => return http::error(&ApiError::new(400, "invalid_request", format!("bad session command: {e}"))),
        };
        let runtime = match self.runtime(&principal, &session).await {
            Ok(runtime) => runtime,
            Err(error) => return http::error(&error),
        };
        let response = match command {
            SessionCommand::Send { content, stream, format } => {
                self.turn(runtime.clone(), TurnInput::Message(content), stream, format).await
            }
            SessionCommand::Retry { stream, format } => {
                self.turn(runtime.clone(), TurnInput::Retry, stream, format).await
            }
            SessionCommand::History => match runtime.store.transcript().await {
                Ok(transcript) => http::json(200, &api::history(&session, &transcript)),
                Err(error) => http::error(&error.into()),
            },
            SessionCommand::Approvals => match runtime.agent.approvals(&runtime.store).await {
                Ok(approvals) => http::json(200, &json!({"session_id": session, "approvals": approvals})),
                Err(error) => http::error(&error.into()),
            },
            SessionCommand::Decide { id, approve, stream } => self.decide(runtime.clone(), &id, approve, stream).await,
            SessionCommand::Routine(run) => self.accept_routine(*run).await,
            SessionCommand::Delete => {
                let _slot = self.queue.acquire().await;
                match runtime.store.clear().await {
                    Ok(()) => http::json(200, &json!({"deleted": true})),
                    Err(error) => http::error(&error.into()),
                }
            }
        };
        // A streamed turn releases memory's connection itself, when it ends; everything else here.
        let streamed = response.as_ref().is_ok_and(|r| http::is_sse(r.headers()));
        if !streamed {
            runtime.memory.release().await;
        }
        response
    }

    async fn alarm(&self) -> Result<Response> {
        let unreported = self.run_routines().await?;
        let next_expiry = self.expire_approvals().await?;
        let now = worker::Date::now().as_millis();
        let retry = unreported.then_some(now + REPORT_RETRY_MS as u64);
        if let Some(at) = [retry, next_expiry].into_iter().flatten().min() {
            arm_at(&self.state.storage(), at).await?;
        }
        http::json(200, &json!({"ok": true}))
    }
}
