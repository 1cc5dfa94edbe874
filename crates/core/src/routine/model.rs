//! What a routine is: its trigger, the turn it runs, where the result goes, its limits; and the plan
//! that decides, at a given time, which run is due and when to wake next.

use serde::{Deserialize, Serialize};

use super::{HookAuth, Precheck, Trigger};
use crate::auth::Principal;
use crate::session::SessionId;

/// Routines one owner may have.
pub const MAX_ROUTINES_PER_OWNER: usize = 50;
/// How long a recurring loop (`every …`) lives unless told otherwise.
pub const DEFAULT_LOOP_LIFETIME_MS: i64 = 3 * 24 * 3_600_000;
/// Time a run may take unless told otherwise.
pub const DEFAULT_RUN_TIMEOUT_MS: u64 = 120_000;
/// Longest time a run may be given.
pub const MAX_RUN_TIMEOUT_MS: u64 = 600_000;
/// How late a run may start and still count as on time (alarms and cron sweeps are not punctual).
pub const ON_TIME_GRACE_MS: i64 = 5 * 60_000;
/// Longest routine name, in characters.
const MAX_NAME_CHARS: usize = 80;
/// Longest prompt, in characters.
const MAX_PROMPT_CHARS: usize = 8_000;

/// The turn a routine runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What the agent is asked to do.
    pub prompt: String,
    /// A bundled skill the agent should follow, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// The owner's session the turn runs in; each routine has its own (`routine-<id>`) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    /// A cheap test that must pass before the turn (and its model call) is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precheck: Option<Precheck>,
}

/// Where a run's result goes besides the session transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// Only the session transcript (and the run history).
    #[default]
    Session,
    /// Also POSTed as JSON to an https URL.
    Callback {
        /// The URL.
        url: String,
    },
}

/// What happens to runs missed while nothing was awake to start them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once for all of them (keyed by the latest missed time).
    #[default]
    Once,
    /// Skip them and wait for the next time.
    Skip,
}

/// Bounds on a routine and each of its runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Stop after this many runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<u32>,
    /// Stop at this time (unix ms); loops get [`DEFAULT_LOOP_LIFETIME_MS`] from creation otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Time allowed per run ([`DEFAULT_RUN_TIMEOUT_MS`] unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Tokens a run may use; the turn stops (`limit_reached`) before a model call beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// What an owner asks for when creating or replacing a routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutineSpec {
    /// A short name for listings.
    pub name: String,
    /// When it runs.
    pub trigger: Trigger,
    /// What it does.
    pub action: Action,
    /// Where the result goes.
    #[serde(default)]
    pub delivery: Delivery,
    /// Bounds.
    #[serde(default)]
    pub limits: Limits,
    /// Missed-run policy.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Whether it runs at all.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// How a webhook routine's callers authenticate (input only: kept apart from the spec once stored,
    /// never shown again). A webhook routine without one gets a generated HMAC secret.
    #[serde(default, skip_serializing)]
    pub hook_auth: Option<HookAuth>,
}

fn enabled_by_default() -> bool {
    true
}

/// Why a routine spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl RoutineSpec {
    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError(m));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return bad(format!("name must be 1–{MAX_NAME_CHARS} printable characters"));
        }
        self.trigger.validate().map_err(|e| SpecError(format!("trigger: {e}")))?;
        let prompt = self.action.prompt.trim();
        if prompt.is_empty() || prompt.chars().count() > MAX_PROMPT_CHARS {
            return bad(format!("action.prompt must be 1–{MAX_PROMPT_CHARS} characters"));
        }
        if let Delivery::Callback { url } = &self.delivery {
            let parsed = url::Url::parse(url).map_err(|e| SpecError(format!("delivery.url: {e}")))?;
            if parsed.scheme() != "https" && parsed.scheme() != "http" {
                return bad("delivery.url must be an http(s) URL".into());
            }
        }
        if let Some(auth) = &self.hook_auth {
            if self.hook().is_none() {
                return bad("hook_auth applies to webhook triggers only".into());
            }
            auth.validate().map_err(|e| SpecError(format!("hook_auth: {e}")))?;
        }
        if let Some(skill) = &self.action.skill {
            let skills = crate::skills::SkillRegistry::bundled().map_err(|e| SpecError(e.to_string()))?;
            if !skills.all().iter().any(|s| &s.name == skill) {
                let known: Vec<&str> = skills.all().iter().map(|s| s.name.as_str()).collect();
                return bad(format!("action.skill: no skill `{skill}` (known: {})", known.join(", ")));
            }
        }
        if let Some(precheck) = &self.action.precheck {
            precheck.validate().map_err(SpecError)?;
        }
        if self.limits.max_tokens == Some(0) {
            return bad("limits.max_tokens must be at least 1".into());
        }
        if self.limits.max_runs == Some(0) {
            return bad("limits.max_runs must be at least 1".into());
        }
        if let Some(timeout) = self.limits.timeout_ms {
            if !(1_000..=MAX_RUN_TIMEOUT_MS).contains(&timeout) {
                return bad(format!("limits.timeout_ms must be between 1000 and {MAX_RUN_TIMEOUT_MS}"));
            }
        }
        Ok(())
    }

    /// The webhook name this routine listens on, if it is a webhook routine.
    pub fn hook(&self) -> Option<&str> {
        match &self.trigger {
            Trigger::Webhook { hook } => Some(hook),
            _ => None,
        }
    }
}

/// A stored routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routine {
    /// Its id.
    pub id: String,
    /// Who owns it; its runs act as them.
    pub owner: Principal,
    /// What the owner asked for.
    pub spec: RoutineSpec,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// The next scheduled time, if the clock will start it again.
    pub next_run_at: Option<i64>,
    /// When it last started a run.
    pub last_run_at: Option<i64>,
    /// Runs started so far.
    pub runs: u32,
    /// How webhook callers authenticate; stored apart, never serialised.
    #[serde(skip)]
    pub hook_auth: Option<HookAuth>,
}

/// What to do with a routine at a moment: maybe start a run, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The scheduled time of the run to start now (its key), if any.
    pub run: Option<i64>,
    /// Scheduled times passed over without a run (missed, or beyond the catch-up policy).
    pub skipped: u32,
    /// The next scheduled time, or `None` when the clock will not start it again.
    pub next_run_at: Option<i64>,
}

/// Occurrences looked at when catching up, at most (a minutely routine asleep for a week is 10,080).
const MAX_CATCH_UP_STEPS: u32 = 20_000;

impl Routine {
    /// A new routine of `owner`, scheduled from `now`.
    pub fn new(id: String, owner: Principal, mut spec: RoutineSpec, now: i64) -> Routine {
        if matches!(spec.trigger, Trigger::Every { .. }) && spec.limits.expires_at.is_none() {
            spec.limits.expires_at = Some(now + DEFAULT_LOOP_LIFETIME_MS);
        }
        let hook_auth = spec.hook_auth.take();
        let mut routine = Routine {
            id,
            owner,
            spec,
            created_at: now,
            updated_at: now,
            next_run_at: None,
            last_run_at: None,
            runs: 0,
            hook_auth,
        };
        routine.next_run_at = routine.bounded(routine.spec.trigger.next_after(now), 0);
        routine
    }

    /// Replaces the spec (same rules as [`Routine::new`]) and reschedules from `now`.
    pub fn replace(&mut self, spec: RoutineSpec, now: i64) {
        let replaced = Routine::new(self.id.clone(), self.owner.clone(), spec, now);
        let hook_auth = replaced.hook_auth.clone().or(self.hook_auth.take());
        *self = Routine {
            created_at: self.created_at,
            last_run_at: self.last_run_at,
            runs: self.runs,
            hook_auth,
            ..replaced
        };
        self.next_run_at = self.bounded(self.spec.trigger.next_after(now), 0);
    }

    /// The session the routine's turns run in.
    pub fn session(&self) -> SessionId {
        self.spec.action.session.clone().unwrap_or_else(|| {
            SessionId::parse(&format!("routine-{}", self.id)).expect("routine ids are valid session ids")
        })
    }

    /// `time` if the routine may still run then, having started `extra` more runs.
    fn bounded(&self, time: Option<i64>, extra: u32) -> Option<i64> {
        let time = time?;
        let exhausted = self.spec.limits.max_runs.is_some_and(|max| self.runs + extra >= max);
        let expired = self.spec.limits.expires_at.is_some_and(|end| time > end);
        (self.spec.enabled && !exhausted && !expired).then_some(time)
    }

    /// What to do at `now`: the run that is due (if any) under the catch-up policy, and the next time.
    pub fn plan(&self, now: i64) -> Plan {
        let Some(first) = self.next_run_at.filter(|t| *t <= now) else {
            return Plan { run: None, skipped: 0, next_run_at: self.next_run_at };
        };
        if self.bounded(Some(first), 0).is_none() {
            return Plan { run: None, skipped: 0, next_run_at: None };
        }
        // The latest scheduled time not after `now`, and how many came before it.
        let (mut latest, mut earlier, mut next) = (first, 0u32, self.spec.trigger.next_after(first));
        while let Some(t) = next.filter(|t| *t <= now && earlier < MAX_CATCH_UP_STEPS) {
            if self.spec.limits.expires_at.is_some_and(|end| t > end) {
                break;
            }
            (latest, earlier, next) = (t, earlier + 1, self.spec.trigger.next_after(t));
        }
        let on_time = now - latest <= ON_TIME_GRACE_MS;
        let run = (on_time || self.spec.catch_up == CatchUp::Once).then_some(latest);
        let skipped = earlier + u32::from(run.is_none());
        let next = next.filter(|t| *t > now).or_else(|| self.spec.trigger.next_after(now));
        Plan { run, skipped, next_run_at: self.bounded(next, u32::from(run.is_some())) }
    }
}

/// How a run came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCause {
    /// Its time came.
    Schedule,
    /// The owner asked (`run now`).
    Manual,
    /// A webhook delivery.
    Webhook,
    /// A channel message matched an event trigger.
    Event,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Handed to its session, not started yet.
    Queued,
    /// The turn is running.
    Running,
    /// The turn finished.
    Succeeded,
    /// The turn failed, timed out or was interrupted.
    Failed,
    /// The pre-check found nothing to do: no turn ran.
    Skipped,
}

/// One run of a routine, as the history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique per run: the routine id and the scheduled time or delivery, so a duplicate is recognised.
    pub key: String,
    /// The routine.
    pub routine_id: String,
    /// Why it ran.
    pub cause: RunCause,
    /// The time it was due (unix ms).
    pub scheduled_at: i64,
    /// Where it is.
    pub status: RunStatus,
    /// When its turn started.
    pub started_at: Option<i64>,
    /// How long the turn took.
    pub duration_ms: Option<u64>,
    /// Tokens the turn used (input + output).
    pub tokens: Option<u64>,
    /// What the turn cost, when the model's price is known.
    pub cost_usd: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the reply.
    pub reply: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_780_000_000_000 - 1_780_000_000_000 % (60 * MIN); // on the hour

    fn spec(trigger: Trigger) -> RoutineSpec {
        RoutineSpec {
            name: "check".into(),
            trigger,
            action: Action { prompt: "Check the build.".into(), skill: None, session: None, precheck: None },
            delivery: Delivery::Session,
            limits: Limits::default(),
            catch_up: CatchUp::Once,
            enabled: true,
            hook_auth: None,
        }
    }

    fn routine(trigger: Trigger) -> Routine {
        Routine::new("r1".into(), Principal::parse("alice").unwrap(), spec(trigger), T0)
    }

    fn every(minutes: i64) -> Trigger {
        Trigger::Every { every_ms: (minutes * MIN) as u64 }
    }

    #[test]
    fn a_new_routine_is_scheduled_from_its_creation() {
        let r = routine(every(10));
        assert_eq!(r.next_run_at, Some(T0 + 10 * MIN));
        assert_eq!(r.spec.limits.expires_at, Some(T0 + DEFAULT_LOOP_LIFETIME_MS));
        let at = routine(Trigger::At { at_ms: T0 + 5 * MIN });
        assert_eq!((at.next_run_at, at.spec.limits.expires_at), (Some(T0 + 5 * MIN), None));
        assert_eq!(routine(Trigger::Webhook { hook: "deploy".into() }).next_run_at, None);
        assert_eq!(r.session().as_str(), "routine-r1");
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let r = routine(every(10));
        assert_eq!(r.plan(T0 + 9 * MIN), Plan { run: None, skipped: 0, next_run_at: Some(T0 + 10 * MIN) });
    }

    #[test]
    fn a_due_run_is_keyed_by_its_scheduled_time_and_the_next_stays_on_the_grid() {
        let r = routine(every(10));
        let plan = r.plan(T0 + 10 * MIN + 1_234);
        assert_eq!(plan, Plan { run: Some(T0 + 10 * MIN), skipped: 0, next_run_at: Some(T0 + 20 * MIN) });
    }

    #[test]
    fn missed_runs_catch_up_once_or_are_skipped() {
        let mut r = routine(every(10));
        let late = T0 + 65 * MIN; // due at 10, 20, …, 60
        assert_eq!(r.plan(late), Plan { run: Some(T0 + 60 * MIN), skipped: 5, next_run_at: Some(T0 + 70 * MIN) });
        r.spec.catch_up = CatchUp::Skip;
        // 5 minutes late is still on time
        assert_eq!(r.plan(late).run, Some(T0 + 60 * MIN));
        assert_eq!(r.plan(T0 + 66 * MIN), Plan { run: None, skipped: 6, next_run_at: Some(T0 + 70 * MIN) });
    }

    #[test]
    fn max_runs_and_expiry_end_the_schedule() {
        let mut r = routine(every(10));
        r.spec.limits.max_runs = Some(2);
        r.runs = 1;
        assert_eq!(r.plan(T0 + 10 * MIN), Plan { run: Some(T0 + 10 * MIN), skipped: 0, next_run_at: None });
        r.runs = 2;
        assert_eq!(r.plan(T0 + 10 * MIN), Plan { run: None, skipped: 0, next_run_at: None });

        let mut r = routine(every(10));
        r.spec.limits.expires_at = Some(T0 + 25 * MIN);
        assert_eq!(r.plan(T0 + 20 * MIN).next_run_at, None);
        // asleep past the expiry: the last run before it catches up, nothing after
        assert_eq!(r.plan(T0 + 90 * MIN), Plan { run: Some(T0 + 20 * MIN), skipped: 1, next_run_at: None });
    }

    #[test]
    fn a_one_off_runs_once() {
        let r = routine(Trigger::At { at_ms: T0 + 5 * MIN });
        assert_eq!(r.plan(T0 + 5 * MIN), Plan { run: Some(T0 + 5 * MIN), skipped: 0, next_run_at: None });
    }

    #[test]
    fn a_disabled_routine_does_not_run() {
        let mut s = spec(every(10));
        s.enabled = false;
        let r = Routine::new("r".into(), Principal::parse("alice").unwrap(), s, T0);
        assert_eq!(r.next_run_at, None);
        assert_eq!(r.plan(T0 + 100 * MIN).run, None);
    }

    #[test]
    fn replacing_a_spec_reschedules_but_keeps_the_history() {
        let mut r = routine(every(10));
        r.runs = 3;
        r.replace(spec(every(30)), T0 + 5 * MIN);
        assert_eq!((r.runs, r.created_at, r.updated_at), (3, T0, T0 + 5 * MIN));
        assert_eq!(r.next_run_at, Some(T0 + 35 * MIN));
    }

    #[test]
    fn specs_are_validated_field_by_field() {
        assert!(spec(every(10)).validate().is_ok());
        let mut s = spec(every(10));
        s.name = " ".into();
        assert!(s.validate().unwrap_err().0.contains("name"));
        let mut s = spec(every(10));
        s.action.prompt = String::new();
        assert!(s.validate().unwrap_err().0.contains("action.prompt"));
        let mut s = spec(Trigger::Every { every_ms: 1_000 });
        assert!(s.validate().unwrap_err().0.starts_with("trigger:"));
        s = spec(every(10));
        s.delivery = Delivery::Callback { url: "ftp://x".into() };
        assert!(s.validate().unwrap_err().0.contains("delivery.url"));
        s.delivery = Delivery::Session;
        s.limits.timeout_ms = Some(5);
        assert!(s.validate().unwrap_err().0.contains("timeout_ms"));
        s.limits.timeout_ms = None;
        s.action.skill = Some("math-and-units".into());
        assert!(s.validate().is_ok());
        s.action.skill = Some("astrology".into());
        assert!(s.validate().unwrap_err().0.contains("known: "));
        s.action.skill = None;
        s.limits.max_tokens = Some(0);
        assert!(s.validate().unwrap_err().0.contains("max_tokens"));
        let json = r#"{"name":"n","trigger":{"kind":"every","every_ms":600000},"action":{"prompt":"p"},"x":1}"#;
        assert!(serde_json::from_str::<RoutineSpec>(json).is_err());
    }
}
