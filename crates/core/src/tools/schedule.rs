//! The scheduling tools: `schedule_create`, `schedule_list` and `schedule_cancel`, over the routine
//! book of the conversation's owner. Routines made here run in the conversation they were made in.

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{string_arg, Tool, ToolError, ToolRegistry};
use crate::routine::{Action, CatchUp, Delivery, Limits, Routine, RoutineSpec, Trigger};
use crate::security::Risk;
use crate::session::SessionId;

/// The owner's routine book, as the tools reach it.
#[async_trait(?Send)]
pub trait RoutineClient {
    /// Creates a routine.
    async fn create(&self, spec: RoutineSpec) -> Result<Routine, String>;
    /// The owner's routines.
    async fn list(&self) -> Result<Vec<Routine>, String>;
    /// Deletes one.
    async fn cancel(&self, id: &str) -> Result<(), String>;
}

/// The book and the conversation the tools work in.
struct Scope {
    client: Rc<dyn RoutineClient>,
    session: SessionId,
}

/// Adds the three scheduling tools to `registry`.
pub fn register(registry: &mut ToolRegistry, client: Rc<dyn RoutineClient>, session: SessionId) {
    let scope = Rc::new(Scope { client, session });
    registry.register(Rc::new(ScheduleCreate(scope.clone())));
    registry.register(Rc::new(ScheduleList(scope.clone())));
    registry.register(Rc::new(ScheduleCancel(scope)));
}

/// A time as the model reads it.
fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "not scheduled".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

struct ScheduleCreate(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for ScheduleCreate {
    fn name(&self) -> &'static str {
        "schedule_create"
    }

    fn description(&self) -> &'static str {
        "Schedule work for later in this conversation: a reminder or a recurring task. `when` is \"every 30m\", \
         a cron expression such as \"0 9 * * 1-5\" (with `timezone`), or \"at 2026-12-01T09:00:00Z\". At that \
         time `prompt` is given to you as a message here and your answer appears in this conversation."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "when": {"type": "string", "description": "every <interval> | <cron expression> | at <RFC 3339 time>"},
                "prompt": {"type": "string", "description": "What to do (or say) when it runs"},
                "name": {"type": "string", "description": "A short name for listings"},
                "timezone": {"type": "string", "description": "IANA zone for cron expressions, default UTC"},
                "max_runs": {"type": "integer", "minimum": 1, "description": "Stop after this many runs"}
            },
            "required": ["when", "prompt"]
        })
    }

    fn risk(&self, _arguments: &Value) -> Risk {
        Risk::Medium
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let prompt = string_arg(&arguments, "prompt")?.to_string();
        let timezone = arguments.get("timezone").and_then(Value::as_str);
        let trigger =
            Trigger::parse(string_arg(&arguments, "when")?, timezone).map_err(|e| ToolError::new(e.to_string()))?;
        if !matches!(trigger, Trigger::Cron { .. } | Trigger::Every { .. } | Trigger::At { .. }) {
            return Err(ToolError::new("`when` must be a time: every <interval>, a cron expression or at <time>"));
        }
        let name = arguments
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| prompt.chars().take(60).collect(), |n| n.to_string());
        let max_runs = arguments.get("max_runs").and_then(Value::as_u64).map(|n| n.min(u32::MAX.into()) as u32);
        let spec = RoutineSpec {
            name,
            trigger,
            action: Action { prompt, skill: None, session: Some(self.0.session.clone()), precheck: None },
            delivery: Delivery::Session,
            limits: Limits { max_runs, ..Limits::default() },
            catch_up: CatchUp::Once,
            enabled: true,
            hook_auth: None,
        };
        let routine = self.0.client.create(spec).await.map_err(ToolError::new)?;
        Ok(format!(
            "Scheduled `{}` ({}); next run {}.",
            routine.id,
            routine.spec.trigger.describe(),
            when(routine.next_run_at)
        ))
    }
}

struct ScheduleList(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for ScheduleList {
    fn name(&self) -> &'static str {
        "schedule_list"
    }

    fn description(&self) -> &'static str {
        "List the user's scheduled routines with their ids, schedules and next run times."
    }

    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }

    async fn execute(&self, _arguments: Value) -> Result<String, ToolError> {
        let routines = self.0.client.list().await.map_err(ToolError::new)?;
        if routines.is_empty() {
            return Ok("No routines are scheduled.".into());
        }
        let lines: Vec<String> = routines
            .iter()
            .map(|r| {
                let state = if r.spec.enabled { "" } else { " (paused)" };
                let next = when(r.next_run_at);
                format!(
                    "- `{}` {}{state}: {}; next run {next}; {} runs so far",
                    r.id,
                    r.spec.name,
                    r.spec.trigger.describe(),
                    r.runs
                )
            })
            .collect();
        Ok(lines.join("\n"))
    }
}

struct ScheduleCancel(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for ScheduleCancel {
    fn name(&self) -> &'static str {
        "schedule_cancel"
    }

    fn description(&self) -> &'static str {
        "Cancel (delete) a scheduled routine by its id, as shown by schedule_list."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The routine id, e.g. rt_…"}},
            "required": ["id"]
        })
    }

    fn risk(&self, _arguments: &Value) -> Risk {
        Risk::Medium
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let id = string_arg(&arguments, "id")?;
        self.0.client.cancel(id).await.map_err(ToolError::new)?;
        Ok(format!("Cancelled `{id}`."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use futures::executor::block_on;
    use std::cell::RefCell;

    /// A book in a vector.
    #[derive(Default)]
    struct Book(RefCell<Vec<Routine>>);

    #[async_trait(?Send)]
    impl RoutineClient for Book {
        async fn create(&self, spec: RoutineSpec) -> Result<Routine, String> {
            spec.validate().map_err(|e| e.0)?;
            let id = format!("rt_{}", self.0.borrow().len());
            let routine = Routine::new(id, Principal::parse("alice").unwrap(), spec, 1_780_000_000_000);
            self.0.borrow_mut().push(routine.clone());
            Ok(routine)
        }
        async fn list(&self) -> Result<Vec<Routine>, String> {
            Ok(self.0.borrow().clone())
        }
        async fn cancel(&self, id: &str) -> Result<(), String> {
            let before = self.0.borrow().len();
            self.0.borrow_mut().retain(|r| r.id != id);
            if self.0.borrow().len() == before {
                return Err(format!("no routine `{id}`"));
            }
            Ok(())
        }
    }

    fn tools() -> (ToolRegistry, Rc<Book>) {
        let book = Rc::new(Book::default());
        let mut registry = ToolRegistry::default();
        register(&mut registry, book.clone(), SessionId::parse("chat-1").unwrap());
        (registry, book)
    }

    fn call(registry: &ToolRegistry, name: &str, arguments: Value) -> Result<String, ToolError> {
        block_on(registry.get(name).expect(name).execute(arguments))
    }

    #[test]
    fn a_reminder_runs_in_the_conversation_that_made_it() {
        let (registry, book) = tools();
        let said = call(&registry, "schedule_create", json!({"when": "every 30m", "prompt": "Stretch!"})).unwrap();
        assert!(said.starts_with("Scheduled `rt_0` (every 30m); next run 2026-"), "{said}");
        let routine = book.0.borrow()[0].clone();
        assert_eq!(routine.spec.action.session.as_ref().map(SessionId::as_str), Some("chat-1"));
        assert_eq!(routine.spec.name, "Stretch!");
        let listed = call(&registry, "schedule_list", json!({})).unwrap();
        assert!(listed.contains("`rt_0` Stretch!: every 30m"), "{listed}");
        assert_eq!(call(&registry, "schedule_cancel", json!({"id": "rt_0"})).unwrap(), "Cancelled `rt_0`.");
        assert_eq!(call(&registry, "schedule_list", json!({})).unwrap(), "No routines are scheduled.");
    }

    #[test]
    fn bad_schedules_are_explained_to_the_model() {
        let (registry, _) = tools();
        let err = call(&registry, "schedule_create", json!({"when": "every 5s", "prompt": "x"})).unwrap_err();
        assert!(err.to_string().contains("minimum"), "{err}");
        let err = call(&registry, "schedule_create", json!({"when": "hook:deploy", "prompt": "x"})).unwrap_err();
        assert!(err.to_string().contains("must be a time"), "{err}");
        let err =
            call(&registry, "schedule_create", json!({"when": "0 9 * * *", "timezone": "Nowhere/Land", "prompt": "x"}))
                .unwrap_err();
        assert!(err.to_string().contains("Nowhere/Land"), "{err}");
        assert!(call(&registry, "schedule_cancel", json!({"id": "rt_9"})).is_err());
    }
}
