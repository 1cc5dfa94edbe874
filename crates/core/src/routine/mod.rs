//! Routines: work the agent does on its own, started by a clock, a webhook or a channel message rather
//! than by a user's turn.

mod model;
mod precheck;
mod service;
mod trigger;
mod webhook;

pub use model::{
    Action, CatchUp, Delivery, Limits, Plan, Routine, RoutineSpec, RunCause, RunRecord, RunStatus, SpecError,
    DEFAULT_LOOP_LIFETIME_MS, DEFAULT_RUN_TIMEOUT_MS, MAX_ROUTINES_PER_OWNER, MAX_RUN_TIMEOUT_MS, ON_TIME_GRACE_MS,
};
pub use precheck::{Precheck, Verdict};
pub use service::{
    deliver_result, external_data_prompt, Created, Dispatcher, RoutineError, RoutineRun, RoutineStore, Routines,
    RunOutcome, TickReport, HOOK_RATE_PER_MINUTE, MAX_HOOK_BODY_BYTES, TICK_BATCH,
};
pub use trigger::{Trigger, TriggerError, DEFAULT_TZ, MAX_PATTERN_LEN, MIN_INTERVAL_MS};
pub use webhook::{
    sign_github, sign_timestamped, HookAuth, HookAuthError, Verified, DELIVERY_HEADERS, GITHUB_SIGNATURE_HEADER,
    MAX_SECRET_LEN, MIN_SECRET_LEN, REPLAY_WINDOW_SECS, SIGNATURE_HEADER,
};
