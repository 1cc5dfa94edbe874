//! Routines: work the agent does on its own, started by a clock, a webhook or a channel message rather
//! than by a user's turn.

mod trigger;

pub use trigger::{Trigger, TriggerError, DEFAULT_TZ, MAX_PATTERN_LEN, MIN_INTERVAL_MS};
