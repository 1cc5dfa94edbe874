//! The `Scheduler` Durable Object: the deployment's routine book on SQLite. It keeps one alarm at the
//! next due time; when the alarm (or the cron safety net) fires it hands each due run to its `Session`
//! object and re-arms. Runs are keyed by routine and scheduled time, so a duplicate wake-up never
//! starts one twice.

use std::rc::Rc;

use async_trait::async_trait;
use edgeclaw_core::api::ApiError;
use edgeclaw_core::auth::Principal;
use edgeclaw_core::routine::{
    Dispatcher, HookAuth, Routine, RoutineRun, RoutineSpec, RoutineStore, Routines, RunCause, RunOutcome, RunRecord,
    RunStatus,
};
use edgeclaw_core::security::InjectionPolicy;
use edgeclaw_core::tools::schedule::RoutineClient;
use edgeclaw_core::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use crate::session::{SessionCommand, SessionRequest};
use crate::{config, gateway, http, ports};

/// Durable Object binding of the `Scheduler` class.
const SCHEDULER_BINDING: &str = "SCHEDULER";
/// The one scheduler of a deployment.
const SCHEDULER_NAME: &str = "routines";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS routines (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    hook TEXT UNIQUE,
    next_run_at INTEGER,
    data TEXT NOT NULL,
    hook_auth TEXT
);
CREATE INDEX IF NOT EXISTS routines_due ON routines (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS routines_owner ON routines (owner);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    routine_id TEXT NOT NULL,
    cause TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_routine ON runs (routine_id, scheduled_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);";

/// What the scheduler is asked to do. `owner` is the authenticated principal acting, `id` a routine id,
/// `spec` and `patch` the request bodies (checked by core), `key` a run's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SchedulerCommand {
    /// Create a routine.
    Create { owner: Principal, spec: Value },
    /// List an owner's routines.
    List { owner: Principal },
    /// One routine.
    Get { owner: Principal, id: String },
    /// Change fields of a routine.
    Update { owner: Principal, id: String, patch: Value },
    /// Delete a routine.
    Delete { owner: Principal, id: String },
    /// Start a run now.
    RunNow { owner: Principal, id: String },
    /// A routine's runs.
    History { owner: Principal, id: String },
    /// A webhook delivery (headers lower-cased).
    Hook { name: String, headers: Vec<(String, String)>, body: String },
    /// The cron safety net: start what is due.
    Sweep,
    /// A session reports how a run ended.
    Finished { key: String, outcome: RunOutcome },
}

/// Sends `command` to the scheduler and returns its response.
pub async fn call(env: &Env, command: &SchedulerCommand) -> std::result::Result<Response, ApiError> {
    http::ask_object(env, SCHEDULER_BINDING, SCHEDULER_NAME, command).await.map_err(http::internal)
}

/// The scheduling tools' way to the scheduler, on behalf of one owner.
pub struct SchedulerClient {
    env: Env,
    owner: Principal,
}

impl SchedulerClient {
    /// A client acting for `owner`.
    pub fn new(env: &Env, owner: &Principal) -> Self {
        Self { env: env.clone(), owner: owner.clone() }
    }

    async fn ask(&self, command: SchedulerCommand) -> std::result::Result<Value, String> {
        let mut response = call(&self.env, &command).await.map_err(|e| e.message)?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match response.status_code() {
            200..=299 => Ok(body),
            _ => Err(body["error"]["message"].as_str().unwrap_or("the scheduler failed").to_string()),
        }
    }
}

#[async_trait(?Send)]
impl RoutineClient for SchedulerClient {
    async fn create(&self, spec: RoutineSpec) -> std::result::Result<Routine, String> {
        let spec = serde_json::to_value(&spec).map_err(|e| e.to_string())?;
        let body = self.ask(SchedulerCommand::Create { owner: self.owner.clone(), spec }).await?;
        serde_json::from_value(body["routine"].clone()).map_err(|e| e.to_string())
    }

    async fn list(&self) -> std::result::Result<Vec<Routine>, String> {
        let body = self.ask(SchedulerCommand::List { owner: self.owner.clone() }).await?;
        serde_json::from_value(body["routines"].clone()).map_err(|e| e.to_string())
    }

    async fn cancel(&self, id: &str) -> std::result::Result<(), String> {
        self.ask(SchedulerCommand::Delete { owner: self.owner.clone(), id: id.to_string() }).await.map(|_| ())
    }
}

/// The routine book, as a Durable Object.
#[durable_object]
pub struct Scheduler {
    state: State,
    env: Env,
    /// The injection policy for webhook payloads, read from the configuration once per instance.
    injection: std::cell::Cell<Option<InjectionPolicy>>,
}

impl Scheduler {
    fn book(&self) -> std::result::Result<Routines, ApiError> {
        let store = SqliteRoutineStore::open(self.state.storage().sql()).map_err(store_error)?;
        let dispatcher = SessionDispatcher { env: self.env.clone() };
        let injection = match self.injection.get() {
            Some(policy) => policy,
            None => {
                let policy = config::load(&self.env).map_err(|e| ApiError::from(Error::Config(e)))?.injection;
                self.injection.set(Some(policy));
                policy
            }
        };
        Ok(Routines::new(Rc::new(store), Rc::new(dispatcher), ports::ports()).with_injection_policy(injection))
    }

    async fn answer(&self, book: &Routines, command: SchedulerCommand) -> std::result::Result<Response, ApiError> {
        let ok = |status: u16, body: Value| http::json(status, &body).map_err(http::internal);
        let spec = |value: Value| {
            serde_json::from_value::<RoutineSpec>(value)
                .map_err(|e| ApiError::new(400, "invalid_routine", format!("invalid routine: {e}")))
        };
        match command {
            SchedulerCommand::Create { owner, spec: value } => {
                ok(201, serde_json::to_value(book.create(&owner, spec(value)?).await?).unwrap_or_default())
            }
            SchedulerCommand::List { owner } => ok(200, json!({ "routines": book.list(&owner).await? })),
            SchedulerCommand::Get { owner, id } => ok(200, json!(book.get(&owner, &id).await?)),
            SchedulerCommand::Update { owner, id, patch } => ok(200, json!(book.update(&owner, &id, &patch).await?)),
            SchedulerCommand::Delete { owner, id } => {
                book.delete(&owner, &id).await?;
                ok(200, json!({ "deleted": true }))
            }
            SchedulerCommand::RunNow { owner, id } => ok(202, json!(book.run_now(&owner, &id).await?)),
            SchedulerCommand::History { owner, id } => {
                ok(200, json!({ "runs": book.history(&owner, &id, 100).await? }))
            }
            SchedulerCommand::Hook { name, headers, body } => {
                let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                let (run, new) = book.deliver(&name, &header, body.as_bytes()).await?;
                ok(if new { 202 } else { 200 }, json!({ "run": run, "duplicate": !new }))
            }
            SchedulerCommand::Sweep => ok(200, json!(book.tick().await?)),
            SchedulerCommand::Finished { key, outcome } => {
                book.finish(&key, outcome).await?;
                ok(200, json!({ "recorded": true }))
            }
        }
    }

    /// Starts what is due and sets the alarm for the next wake-up.
    async fn tick_and_arm(&self, book: &Routines) -> std::result::Result<Value, ApiError> {
        let report = book.tick().await?;
        let storage = self.state.storage();
        let armed = match report.next_wake {
            Some(at) => storage.set_alarm(at - worker::Date::now().as_millis() as i64).await,
            None => storage.delete_alarm().await,
        };
        armed.map_err(http::internal)?;
        Ok(json!(report))
    }
}

impl DurableObject for Scheduler {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, injection: std::cell::Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: SchedulerCommand = match serde_json::from_slice(&req.bytes().await?) {
            Ok(command) => command,
            Err(e) => {
                return http::error(&ApiError::new(400, "invalid_request", format!("bad scheduler command: {e}")))
            }
        };
        let book = match self.book() {
            Ok(book) => book,
            Err(error) => return http::error(&error),
        };
        let answer = match command {
            SchedulerCommand::Sweep => {
                self.tick_and_arm(&book).await.and_then(|report| http::json(200, &report).map_err(http::internal))
            }
            read
            @ (SchedulerCommand::List { .. } | SchedulerCommand::Get { .. } | SchedulerCommand::History { .. }) => {
                self.answer(&book, read).await
            }
            command => {
                let answer = self.answer(&book, command).await;
                // Every change may move the next wake-up (and starts anything already due).
                self.tick_and_arm(&book).await.and(answer)
            }
        };
        answer.or_else(|error| http::error(&error))
    }

    async fn alarm(&self) -> Result<Response> {
        let book = self.book().map_err(|e| worker::Error::RustError(e.message))?;
        match self.tick_and_arm(&book).await {
            Ok(report) => http::json(200, &report),
            // Failing the alarm makes the platform retry it.
            Err(error) => Err(worker::Error::RustError(error.message)),
        }
    }
}

fn store_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(503, "storage_unavailable", format!("routine storage failed: {error}"))
}

/// Hands runs to `Session` objects.
struct SessionDispatcher {
    env: Env,
}

#[async_trait(?Send)]
impl Dispatcher for SessionDispatcher {
    async fn dispatch(&self, run: &RoutineRun) -> std::result::Result<(), String> {
        let request = SessionRequest::new(&run.owner, &run.session, SessionCommand::Routine(Box::new(run.clone())));
        let response = gateway::forward(&self.env, request).await.map_err(|e| e.message)?;
        match response.status_code() {
            200..=299 => Ok(()),
            status => Err(format!("the session answered {status}")),
        }
    }
}

/// Routines and runs in the scheduler's SQLite.
struct SqliteRoutineStore {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct RoutineRow {
    data: String,
    hook_auth: Option<String>,
}

#[derive(Deserialize)]
struct RunRow {
    data: String,
}

#[derive(Deserialize)]
struct CountRow {
    n: f64,
}

fn decode<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("corrupt row: {e}"))
}

fn encode<T: Serialize>(value: &T) -> std::result::Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// A unit enum's serde name (`running`, `webhook`), as stored in its column.
fn label<T: Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl SqliteRoutineStore {
    fn open(sql: SqlStorage) -> Result<Self> {
        sql.exec(SCHEMA, None)?;
        Ok(Self { sql })
    }

    fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        values: Vec<worker::SqlStorageValue>,
    ) -> std::result::Result<Vec<T>, String> {
        self.sql.exec(query, values).and_then(|c| c.to_array()).map_err(|e| e.to_string())
    }

    fn routines(&self, query: &str, values: Vec<worker::SqlStorageValue>) -> std::result::Result<Vec<Routine>, String> {
        let rows: Vec<RoutineRow> = self.rows(query, values)?;
        rows.into_iter()
            .map(|row| {
                let mut routine: Routine = decode(&row.data)?;
                routine.hook_auth = row.hook_auth.as_deref().map(decode::<HookAuth>).transpose()?;
                Ok(routine)
            })
            .collect()
    }

    fn runs_where(
        &self,
        query: &str,
        values: Vec<worker::SqlStorageValue>,
    ) -> std::result::Result<Vec<RunRecord>, String> {
        let rows: Vec<RunRow> = self.rows(query, values)?;
        rows.iter().map(|row| decode(&row.data)).collect()
    }
}

fn time(ms: i64) -> worker::SqlStorageValue {
    (ms as f64).into()
}

#[async_trait(?Send)]
impl RoutineStore for SqliteRoutineStore {
    async fn get(&self, id: &str) -> std::result::Result<Option<Routine>, String> {
        Ok(self.routines("SELECT data, hook_auth FROM routines WHERE id = ?", vec![id.into()])?.pop())
    }

    async fn by_hook(&self, hook: &str) -> std::result::Result<Option<Routine>, String> {
        Ok(self.routines("SELECT data, hook_auth FROM routines WHERE hook = ?", vec![hook.into()])?.pop())
    }

    async fn list(&self, owner: &Principal) -> std::result::Result<Vec<Routine>, String> {
        self.routines(
            "SELECT data, hook_auth FROM routines WHERE owner = ? ORDER BY rowid",
            vec![owner.as_str().into()],
        )
    }

    async fn put(&self, routine: &Routine) -> std::result::Result<(), String> {
        let auth = routine.hook_auth.as_ref().map(encode).transpose()?;
        self.sql
            .exec(
                "INSERT INTO routines (id, owner, hook, next_run_at, data, hook_auth) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET hook = excluded.hook, next_run_at = excluded.next_run_at,
                 data = excluded.data, hook_auth = excluded.hook_auth",
                vec![
                    routine.id.as_str().into(),
                    routine.owner.as_str().into(),
                    routine.spec.hook().into(),
                    routine.next_run_at.map(|t| t as f64).into(),
                    encode(routine)?.into(),
                    auth.into(),
                ],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> std::result::Result<bool, String> {
        let existed = self.get(id).await?.is_some();
        self.sql.exec("DELETE FROM runs WHERE routine_id = ?", vec![id.into()]).map_err(|e| e.to_string())?;
        self.sql.exec("DELETE FROM routines WHERE id = ?", vec![id.into()]).map_err(|e| e.to_string())?;
        Ok(existed)
    }

    async fn due(&self, now: i64, limit: usize) -> std::result::Result<Vec<Routine>, String> {
        self.routines(
            "SELECT data, hook_auth FROM routines WHERE next_run_at <= ? ORDER BY next_run_at LIMIT ?",
            vec![time(now), (limit as f64).into()],
        )
    }

    async fn next_due(&self) -> std::result::Result<Option<i64>, String> {
        #[derive(Deserialize)]
        struct Next {
            next: Option<f64>,
        }
        let rows: Vec<Next> = self.rows("SELECT min(next_run_at) AS next FROM routines", vec![])?;
        Ok(rows.first().and_then(|r| r.next).map(|t| t as i64))
    }

    async fn insert_run(&self, run: &RunRecord) -> std::result::Result<bool, String> {
        let inserted: Vec<Value> = self.rows(
            "INSERT INTO runs (key, routine_id, cause, scheduled_at, status, data) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO NOTHING RETURNING key",
            vec![
                run.key.as_str().into(),
                run.routine_id.as_str().into(),
                label(run.cause).into(),
                time(run.scheduled_at),
                label(run.status).into(),
                encode(run)?.into(),
            ],
        )?;
        Ok(!inserted.is_empty())
    }

    async fn update_run(&self, run: &RunRecord) -> std::result::Result<(), String> {
        self.sql
            .exec(
                "UPDATE runs SET status = ?, data = ? WHERE key = ?",
                vec![label(run.status).into(), encode(run)?.into(), run.key.as_str().into()],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn run(&self, key: &str) -> std::result::Result<Option<RunRecord>, String> {
        Ok(self.runs_where("SELECT data FROM runs WHERE key = ?", vec![key.into()])?.pop())
    }

    async fn runs(&self, routine_id: &str, limit: usize) -> std::result::Result<Vec<RunRecord>, String> {
        self.runs_where(
            "SELECT data FROM runs WHERE routine_id = ? ORDER BY scheduled_at DESC, rowid DESC LIMIT ?",
            vec![routine_id.into(), (limit as f64).into()],
        )
    }

    async fn pending_runs(&self, limit: usize) -> std::result::Result<Vec<RunRecord>, String> {
        self.runs_where(
            "SELECT data FROM runs WHERE status = ? ORDER BY rowid LIMIT ?",
            vec![label(RunStatus::Queued).into(), (limit as f64).into()],
        )
    }

    async fn count_runs_since(
        &self,
        routine_id: &str,
        cause: RunCause,
        since: i64,
    ) -> std::result::Result<usize, String> {
        let rows: Vec<CountRow> = self.rows(
            "SELECT count(*) AS n FROM runs WHERE routine_id = ? AND cause = ? AND scheduled_at >= ?",
            vec![routine_id.into(), label(cause).into(), time(since)],
        )?;
        Ok(rows.first().map_or(0, |r| r.n as usize))
    }
}
