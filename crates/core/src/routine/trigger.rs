//! When a routine runs: on a cron schedule in a time zone, at a fixed interval, once at a given time, when
//! a named webhook is called, or when a channel message matches a pattern.
//!
//! [`Trigger::parse`] is the one reader of the user-facing spec syntax (HTTP API and agent tool alike);
//! [`Trigger::next_after`] is the one place that turns a schedule into due times.
//!
//! Cron schedules follow Vixie cron across daylight-saving changes, as the `croner` crate implements it:
//! a job whose second, minute and hour fields each name one value ("fixed-time", e.g. `30 2 * * *`) runs
//! at the first instant after a spring-forward gap when its wall time falls in the gap, and only at the
//! first of the two instants when a fall-back repeats its wall time. A job with a wildcard, step, range
//! or list in any of those fields (e.g. `*/30 * * * *`) skips the wall times a gap removes and runs at
//! every real instant that matches in a repeated hour.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::{
    errors::CronError,
    parser::{CronParser, Seconds, Year},
    Cron,
};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// The shortest interval an [`Trigger::Every`] may have, and so how often any routine may run.
pub const MIN_INTERVAL_MS: u64 = 60_000;

/// The longest event pattern, in characters, so that matching every message stays cheap.
pub const MAX_PATTERN_LEN: usize = 512;

/// The time zone of a cron trigger that names none.
pub const DEFAULT_TZ: &str = "UTC";

/// Bytes a compiled event regex may take; a short pattern can still expand into a huge automaton
/// (`\w{500}`), and every message is matched against it.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

const MAX_HOOK_LEN: usize = 64;

const SPEC_FORMS: &str = "\"every 10m\", \"at 2026-12-01T09:00:00Z\", \"cron 0 9 * * 1-5\", \"hook:deploy\", \
                          \"event:keyword\" or \"event:/regex/\"";

/// When a routine runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// A cron expression evaluated in an IANA time zone.
    Cron {
        /// Five fields (minute hour day-of-month month day-of-week), six with a leading seconds field
        /// that names one second (so at most one run a minute), or a nickname such as `@daily`.
        expr: String,
        /// IANA time zone name, e.g. `Europe/Berlin`.
        #[serde(default = "default_tz")]
        tz: String,
    },
    /// A fixed interval, kept on a grid by [`Trigger::next_after`].
    Every {
        /// The interval in milliseconds, at least [`MIN_INTERVAL_MS`].
        every_ms: u64,
    },
    /// Once, at a point in time.
    At {
        /// Unix time in milliseconds.
        at_ms: i64,
    },
    /// Whenever the named webhook endpoint is called.
    Webhook {
        /// Endpoint name: 1–64 of `a-z`, `0-9`, `_`, `-`, starting with a letter or digit.
        hook: String,
    },
    /// Whenever an incoming channel message matches.
    Event {
        /// A keyword found anywhere in the message ignoring case, or a regex when `regex` is set.
        pattern: String,
        /// Whether `pattern` is a regex (as written; `(?i)` makes it ignore case).
        #[serde(default)]
        regex: bool,
    },
}

/// A trigger spec or trigger is not valid; the message says what is wrong and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The spec is empty or in none of the known forms.
    #[error("unrecognised trigger {0:?}; expected {SPEC_FORMS}")]
    Unrecognised(String),
    /// The cron expression does not parse.
    #[error(
        "invalid cron expression {expr:?}: {reason}; expected 5 fields (minute hour day-of-month month \
         day-of-week), 6 with leading seconds, or @hourly, @daily, @weekly, @monthly or @yearly"
    )]
    Cron {
        /// The expression as given.
        expr: String,
        /// What the parser objected to.
        reason: String,
    },
    /// A six-field cron expression would run more than once a minute.
    #[error(
        "cron expression {0:?} runs more than once a minute; its seconds field must be a single number, \
         e.g. \"30 */5 * * * *\""
    )]
    CronTooFrequent(String),
    /// The cron expression parses but matches no date (e.g. 31 April).
    #[error("cron expression {0:?} never matches a date")]
    CronNeverRuns(String),
    /// The time zone is not in the IANA database.
    #[error("unknown time zone {0:?}; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    UnknownTimeZone(String),
    /// The interval does not parse.
    #[error("invalid interval {0:?}; expected whole numbers with units d, h, m, s or ms, e.g. \"10m\" or \"1h30m\"")]
    Interval(String),
    /// The interval is shorter than [`MIN_INTERVAL_MS`].
    #[error(
        "interval {} is shorter than the minimum of {}",
        format_interval(*.0),
        format_interval(MIN_INTERVAL_MS)
    )]
    IntervalTooShort(u64),
    /// The time is not RFC 3339.
    #[error("invalid time {text:?}: {reason}; expected RFC 3339, e.g. \"2026-12-01T09:00:00+01:00\"")]
    Time {
        /// The time as given.
        text: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The webhook name has the wrong form.
    #[error(
        "invalid webhook name {0:?}; expected 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter \
         or digit"
    )]
    HookName(String),
    /// The event pattern is empty.
    #[error("the event pattern is empty; expected a keyword or /regex/")]
    EmptyPattern,
    /// The event pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("the event pattern has {0} characters; the maximum is {MAX_PATTERN_LEN}")]
    PatternTooLong(usize),
    /// The event regex does not compile or would compile too large.
    #[error("invalid event regex: {0}")]
    Regex(String),
}

impl Trigger {
    /// Reads a user-facing spec: `every 10m` or `10m`; `at <RFC 3339>` or a bare RFC 3339 time;
    /// `cron <expr>`, a bare 5- or 6-field expression or a nickname such as `@daily`, evaluated in `tz`
    /// ([`DEFAULT_TZ`] if none; other forms ignore it); `hook:<name>`; `event:<keyword>` or
    /// `event:/<regex>/`. The result is validated.
    pub fn parse(spec: &str, tz: Option<&str>) -> Result<Trigger, TriggerError> {
        let spec = spec.trim();
        let cron = |expr: &str| Trigger::Cron {
            expr: expr.split_whitespace().collect::<Vec<_>>().join(" "),
            tz: tz.map_or(DEFAULT_TZ, str::trim).to_string(),
        };
        let trigger = if let Some(hook) = strip_prefix_ignore_case(spec, "hook:") {
            Trigger::Webhook { hook: hook.trim().to_string() }
        } else if let Some(pattern) = strip_prefix_ignore_case(spec, "event:") {
            let pattern = pattern.trim();
            match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
                Some(regex) => Trigger::Event { pattern: regex.to_string(), regex: true },
                None => Trigger::Event { pattern: pattern.to_string(), regex: false },
            }
        } else if let Some(interval) = strip_word(spec, "every") {
            Trigger::Every { every_ms: parse_interval(interval)? }
        } else if let Some(time) = strip_word(spec, "at") {
            Trigger::At { at_ms: parse_time(time)? }
        } else if let Some(expr) = strip_word(spec, "cron") {
            cron(expr)
        } else if spec.starts_with('@') || spec.split_whitespace().count() >= 5 {
            cron(spec)
        } else if spec.contains(':') && !spec.contains(char::is_whitespace) {
            Trigger::At { at_ms: parse_time(spec)? }
        } else if spec.starts_with(|c: char| c.is_ascii_digit()) {
            Trigger::Every { every_ms: parse_interval(spec)? }
        } else {
            return Err(TriggerError::Unrecognised(spec.to_string()));
        };
        trigger.validate()?;
        Ok(trigger)
    }

    /// Checks what [`Trigger::parse`] checks, for a trigger that arrived another way (e.g. as JSON).
    pub fn validate(&self) -> Result<(), TriggerError> {
        match self {
            Trigger::Cron { expr, tz } => {
                let (cron, tz) = schedule(expr, tz)?;
                // Neither a year field nor a start date limits a schedule, so one that matches no date
                // after the epoch matches none ever.
                match cron.find_next_occurrence(&DateTime::UNIX_EPOCH.with_timezone(&tz), false) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(TriggerError::CronNeverRuns(expr.clone())),
                }
            }
            Trigger::Every { every_ms } if *every_ms < MIN_INTERVAL_MS => {
                Err(TriggerError::IntervalTooShort(*every_ms))
            }
            Trigger::Every { .. } | Trigger::At { .. } => Ok(()),
            Trigger::Webhook { hook } => {
                let mut chars = hook.chars();
                let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
                if first_ok && rest_ok && hook.len() <= MAX_HOOK_LEN {
                    Ok(())
                } else {
                    Err(TriggerError::HookName(hook.clone()))
                }
            }
            Trigger::Event { pattern, regex } => {
                let len = pattern.chars().count();
                if pattern.trim().is_empty() {
                    Err(TriggerError::EmptyPattern)
                } else if len > MAX_PATTERN_LEN {
                    Err(TriggerError::PatternTooLong(len))
                } else if *regex {
                    build_regex(pattern).map(drop)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The first due time strictly after `after_ms` (unix ms), or `None` for a trigger that no longer
    /// fires on the clock: a past [`Trigger::At`], a webhook or event trigger, or an invalid trigger.
    ///
    /// Cron times follow the daylight-saving policy in the module docs. For [`Trigger::Every`] this is
    /// `after_ms + every_ms`: pass the previous *scheduled* time, not the time a run finished, and the runs
    /// stay on a fixed grid instead of drifting by each run's duration.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Trigger::Cron { expr, tz } => {
                let (cron, tz) = schedule(expr, tz).ok()?;
                let after = DateTime::from_timestamp_millis(after_ms)?.with_timezone(&tz);
                let next = cron.find_next_occurrence(&after, false).ok()?;
                Some(next.timestamp_millis())
            }
            Trigger::Every { every_ms } if *every_ms >= MIN_INTERVAL_MS => {
                after_ms.checked_add(i64::try_from(*every_ms).ok()?)
            }
            Trigger::At { at_ms } => (*at_ms > after_ms).then_some(*at_ms),
            Trigger::Every { .. } | Trigger::Webhook { .. } | Trigger::Event { .. } => None,
        }
    }

    /// Whether an incoming channel message fires this trigger (only event triggers do): a keyword
    /// anywhere in the text ignoring case, or a regex match.
    pub fn matches_message(&self, text: &str) -> bool {
        match self {
            Trigger::Event { pattern, regex: false } => text.to_lowercase().contains(&pattern.to_lowercase()),
            Trigger::Event { pattern, regex: true } => build_regex(pattern).is_ok_and(|r| r.is_match(text)),
            _ => false,
        }
    }

    /// A short description for listings, e.g. `every 10m` or `cron 0 9 * * 1-5 (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Cron { expr, tz } => format!("cron {expr} ({tz})"),
            Trigger::Every { every_ms } => format!("every {}", format_interval(*every_ms)),
            Trigger::At { at_ms } => match DateTime::from_timestamp_millis(*at_ms) {
                Some(at) => format!("at {}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                None => format!("at {at_ms} ms"),
            },
            Trigger::Webhook { hook } => format!("webhook {hook}"),
            Trigger::Event { pattern, regex: true } => format!("event /{pattern}/"),
            Trigger::Event { pattern, regex: false } => format!("event {pattern:?}"),
        }
    }
}

fn default_tz() -> String {
    DEFAULT_TZ.to_string()
}

const NICKNAMES: [&str; 6] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"];

/// Parses a cron expression and its time zone, holding six-field expressions to one run a minute.
fn schedule(expr: &str, tz: &str) -> Result<(Cron, Tz), TriggerError> {
    let zone = Tz::from_str(tz).map_err(|_| TriggerError::UnknownTimeZone(tz.to_string()))?;
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let error = |reason: String| TriggerError::Cron { expr: expr.to_string(), reason };
    match fields.as_slice() {
        [nickname] if nickname.starts_with('@') => {
            if !NICKNAMES.iter().any(|known| known.eq_ignore_ascii_case(nickname)) {
                return Err(error(format!("unknown nickname {nickname}")));
            }
        }
        [_, _, _, _, _] => {}
        [seconds, _, _, _, _, _] => {
            if !seconds.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TriggerError::CronTooFrequent(expr.to_string()));
            }
        }
        _ => return Err(error(format!("it has {} fields", fields.len()))),
    }
    let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
    let cron = parser.parse(expr).map_err(|e| error(cron_reason(e)))?;
    Ok((cron, zone))
}

/// Croner's messages carry a prefix naming the error kind and end with a period; the reason sits inside
/// a longer sentence here.
fn cron_reason(error: CronError) -> String {
    let reason = match error {
        CronError::InvalidPattern(msg) | CronError::IllegalCharacters(msg) | CronError::ComponentError(msg) => msg,
        other => other.to_string(),
    };
    reason.trim_end_matches('.').to_string()
}

pub(super) fn build_regex(pattern: &str) -> Result<Regex, TriggerError> {
    RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| TriggerError::Regex(e.to_string()))
}

/// `word` (any case) followed by whitespace, then the rest with leading whitespace removed.
fn strip_word<'a>(spec: &'a str, word: &str) -> Option<&'a str> {
    let rest = strip_prefix_ignore_case(spec, word)?;
    rest.starts_with(char::is_whitespace).then(|| rest.trim_start())
}

fn strip_prefix_ignore_case<'a>(spec: &'a str, prefix: &str) -> Option<&'a str> {
    let head = spec.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &spec[prefix.len()..])
}

const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Reads an interval such as `10m`, `1h30m` or `1h 30m` into milliseconds.
fn parse_interval(text: &str) -> Result<u64, TriggerError> {
    let invalid = || TriggerError::Interval(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let count: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let (_, unit_ms) = UNITS.iter().find(|(unit, _)| *unit == &rest[..letters]).ok_or_else(invalid)?;
        total = count.checked_mul(*unit_ms).and_then(|ms| total.checked_add(ms)).ok_or_else(invalid)?;
        rest = rest[letters..].trim_start();
    }
    Ok(total)
}

/// Writes milliseconds as days down to milliseconds, leaving out zero units, e.g. `1h30m`; the inverse of
/// [`parse_interval`].
fn format_interval(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut rest = ms;
    let mut text = String::new();
    for (unit, unit_ms) in UNITS {
        if rest >= unit_ms {
            text.push_str(&format!("{}{unit}", rest / unit_ms));
            rest %= unit_ms;
        }
    }
    text
}

fn parse_time(text: &str) -> Result<i64, TriggerError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc).timestamp_millis())
        .map_err(|e| TriggerError::Time { text: text.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).expect("test time is RFC 3339").timestamp_millis()
    }

    fn utc(ms: i64) -> String {
        DateTime::from_timestamp_millis(ms).expect("time in range").to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    fn cron(expr: &str, tz: &str) -> Trigger {
        Trigger::parse(expr, Some(tz)).expect("valid cron trigger")
    }

    fn error_mentions(error: &TriggerError, text: &str) -> bool {
        error.to_string().contains(text)
    }

    /// The next `count` due times from `from`, each asked from the one before, as UTC RFC 3339.
    fn runs(trigger: &Trigger, from: &str, count: usize) -> Vec<String> {
        let mut at = ms(from);
        (0..count)
            .map(|_| {
                at = trigger.next_after(at).expect("a next run");
                utc(at)
            })
            .collect()
    }

    #[test]
    fn five_field_cron_runs_at_its_minute() {
        let daily = cron("0 9 * * *", "UTC");
        assert_eq!(runs(&daily, "2026-12-01T10:00:00Z", 2), ["2026-12-02T09:00:00Z", "2026-12-03T09:00:00Z"]);
    }

    #[test]
    fn six_field_cron_runs_at_its_second() {
        let daily = cron("30 0 9 * * *", "UTC");
        assert_eq!(runs(&daily, "2026-12-01T10:00:00Z", 1), ["2026-12-02T09:00:30Z"]);
    }

    #[test]
    fn six_field_cron_may_not_run_more_than_once_a_minute() {
        for expr in ["*/10 * * * * *", "0,30 * * * * *", "* 0 9 * * *"] {
            assert_eq!(Trigger::parse(expr, None), Err(TriggerError::CronTooFrequent(expr.to_string())));
        }
    }

    #[test]
    fn bad_cron_expressions_say_what_is_wrong_and_what_is_expected() {
        let error = Trigger::parse("cron 0 9 * *", None).expect_err("four fields");
        assert_eq!(
            error.to_string(),
            "invalid cron expression \"0 9 * *\": it has 4 fields; expected 5 fields (minute hour day-of-month \
             month day-of-week), 6 with leading seconds, or @hourly, @daily, @weekly, @monthly or @yearly"
        );
        for expr in
            ["61 * * * *", "* 24 * * *", "0 9 * * 8", "0 9 * * MON-FUNDAY", "0 9 1-x * *", "@reboot", "@daily 9"]
        {
            let error = Trigger::parse(&format!("cron {expr}"), None).expect_err(expr);
            assert!(matches!(&error, TriggerError::Cron { expr: e, .. } if e == expr), "{expr}: {error}");
        }
        assert_eq!(
            Trigger::parse("0 0 31 4 *", None).map_err(|e| e.to_string()),
            Err("cron expression \"0 0 31 4 *\" never matches a date".to_string())
        );
    }

    #[test]
    fn unknown_time_zone_is_rejected_by_name() {
        let error = Trigger::parse("0 9 * * *", Some("Mars/Base")).expect_err("no such zone");
        assert_eq!(error, TriggerError::UnknownTimeZone("Mars/Base".to_string()));
        assert!(error.to_string().starts_with("unknown time zone \"Mars/Base\""));
        let stored = Trigger::Cron { expr: "0 9 * * *".into(), tz: "Mars/Base".into() };
        assert_eq!(stored.next_after(0), None);
    }

    /// (cron, zone, asked from, the next runs in UTC, what happens that day).
    const DST_CASES: &[(&str, &str, &str, &[&str], &str)] = &[
        // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
            "fixed time in the gap: once when it ends (03:00 CEST), then 02:30 CEST",
        ),
        (
            "*/30 * * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            &["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"],
            "interval: the wall times in the gap are skipped (01:30 CET, 03:00 CEST)",
        ),
        // Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:30 happens twice.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
            "fixed time repeated: once, at the first occurrence (02:30 CEST), then 02:30 CET",
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T01:05:00Z",
            &["2026-10-26T01:30:00Z"],
            "asked inside the repeated hour after the first 02:30: not again that day",
        ),
        (
            "*/30 * * * *",
            "Europe/Berlin",
            "2026-10-25T00:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"],
            "interval: every real instant (02:30 CEST, 02:00 CET, 02:30 CET, 03:00 CET)",
        ),
        // New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
            "fixed time in the gap: once when it ends",
        ),
        (
            "0 2 * * *",
            "America/New_York",
            "2026-03-08T06:30:00Z",
            &["2026-03-08T07:00:00Z"],
            "the gap's first minute: when it ends",
        ),
        (
            "*/30 * * * *",
            "America/New_York",
            "2026-03-08T06:00:00Z",
            &["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"],
            "interval: the gap is skipped (01:30 EST, 03:00 EDT)",
        ),
        // New York 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z); 01:30 happens twice.
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
            "fixed time repeated: once, at the first occurrence",
        ),
        (
            "*/30 * * * *",
            "America/New_York",
            "2026-11-01T05:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"],
            "interval: every real instant (01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST)",
        ),
        (
            "*/30 * * * *",
            "America/New_York",
            "2026-11-01T06:30:15.250Z",
            &["2026-11-01T07:00:00Z"],
            "from the second 01:30, mid-second: strictly later, never back into the first pass",
        ),
    ];

    #[test]
    fn daylight_saving_changes_follow_the_policy() {
        for (expr, tz, from, expected, case) in DST_CASES {
            assert_eq!(runs(&cron(expr, tz), from, expected.len()), *expected, "{expr} {tz} from {from}: {case}");
        }
    }

    #[test]
    fn weekday_range_skips_the_weekend() {
        // 2026-12-04 is a Friday.
        for expr in ["0 9 * * 1-5", "0 9 * * MON-FRI"] {
            let job = cron(expr, "UTC");
            assert_eq!(runs(&job, "2026-12-04T10:00:00Z", 2), ["2026-12-07T09:00:00Z", "2026-12-08T09:00:00Z"]);
        }
    }

    #[test]
    fn nicknames_are_cron_schedules() {
        let from = "2026-12-04T10:30:00Z";
        assert_eq!(runs(&cron("@hourly", "UTC"), from, 1), ["2026-12-04T11:00:00Z"]);
        assert_eq!(runs(&cron("@daily", "UTC"), from, 1), ["2026-12-05T00:00:00Z"]);
        assert_eq!(runs(&cron("@weekly", "UTC"), from, 1), ["2026-12-06T00:00:00Z"]);
        assert_eq!(runs(&cron("@monthly", "UTC"), from, 1), ["2027-01-01T00:00:00Z"]);
        assert_eq!(runs(&cron("@yearly", "Europe/Berlin"), from, 1), ["2026-12-31T23:00:00Z"]);
    }

    #[test]
    fn next_after_is_strictly_after() {
        let daily = cron("0 9 * * *", "UTC");
        assert_eq!(runs(&daily, "2026-12-01T09:00:00Z", 1), ["2026-12-02T09:00:00Z"]);
        assert_eq!(runs(&daily, "2026-12-01T08:59:59.999Z", 1), ["2026-12-01T09:00:00Z"]);
        assert_eq!(runs(&daily, "2026-12-01T09:00:00.001Z", 1), ["2026-12-02T09:00:00Z"]);
        let at = Trigger::At { at_ms: ms("2026-12-01T09:00:00Z") };
        assert_eq!(at.next_after(ms("2026-12-01T09:00:00Z")), None);
    }

    #[test]
    fn every_stays_on_the_grid_of_the_previous_scheduled_time() {
        let every = Trigger::parse("every 10m", None).expect("valid interval");
        assert_eq!(
            runs(&every, "2026-12-01T09:00:00Z", 3),
            ["2026-12-01T09:10:00Z", "2026-12-01T09:20:00Z", "2026-12-01T09:30:00Z"]
        );
        assert_eq!(Trigger::Every { every_ms: 1_000 }.next_after(0), None);
        assert_eq!(Trigger::Every { every_ms: u64::MAX }.next_after(0), None);
    }

    #[test]
    fn at_in_the_past_never_runs() {
        let at = Trigger::parse("at 2026-12-01T09:00:00+01:00", None).expect("valid time");
        assert_eq!(at.next_after(ms("2026-12-01T07:00:00Z")), Some(ms("2026-12-01T08:00:00Z")));
        assert_eq!(at.next_after(ms("2026-12-01T08:00:01Z")), None);
    }

    #[test]
    fn webhooks_and_events_do_not_run_on_the_clock() {
        assert_eq!(Trigger::Webhook { hook: "deploy".into() }.next_after(0), None);
        assert_eq!(Trigger::Event { pattern: "error".into(), regex: false }.next_after(0), None);
    }

    #[test]
    fn hook_names_are_short_lowercase_slugs() {
        for hook in ["deploy", "a", "0", "ci_build-2", &"a".repeat(64)] {
            assert_eq!(Trigger::Webhook { hook: hook.to_string() }.validate(), Ok(()), "{hook}");
        }
        for hook in ["", "Deploy", "-x", "_x", "a b", "dé", "a/b", &"a".repeat(65)] {
            assert_eq!(
                Trigger::Webhook { hook: hook.to_string() }.validate(),
                Err(TriggerError::HookName(hook.to_string())),
                "{hook}"
            );
        }
    }

    #[test]
    fn event_patterns_are_bounded_and_regexes_must_compile_small() {
        let event = |pattern: &str, regex| Trigger::Event { pattern: pattern.to_string(), regex };
        assert_eq!(event(r"(?i)\berror\b", true).validate(), Ok(()));
        assert!(matches!(event("err(or", true).validate(), Err(TriggerError::Regex(_))));
        assert!(matches!(event("err(or", false).validate(), Ok(())));
        let huge = event(r"\w{500}", true).validate().expect_err("automaton over the size limit");
        assert!(error_mentions(&huge, "size limit"), "{huge}");
        assert_eq!(event(&"a".repeat(513), false).validate(), Err(TriggerError::PatternTooLong(513)));
        assert_eq!(event(&"é".repeat(512), false).validate(), Ok(()));
        assert_eq!(Trigger::parse("event:", None), Err(TriggerError::EmptyPattern));
        assert_eq!(Trigger::parse("event://", None), Err(TriggerError::EmptyPattern));
    }

    #[test]
    fn intervals_read_units_and_enforce_the_minimum() {
        let every = |spec: &str| Trigger::parse(spec, None);
        assert_eq!(every("every 10m"), Ok(Trigger::Every { every_ms: 600_000 }));
        assert_eq!(every("10m"), Ok(Trigger::Every { every_ms: 600_000 }));
        assert_eq!(every("Every 1h30m"), Ok(Trigger::Every { every_ms: 5_400_000 }));
        assert_eq!(every("every 1h 30m"), Ok(Trigger::Every { every_ms: 5_400_000 }));
        assert_eq!(every("90s"), Ok(Trigger::Every { every_ms: 90_000 }));
        assert_eq!(every("2d"), Ok(Trigger::Every { every_ms: 172_800_000 }));
        assert_eq!(
            every("45s").map_err(|e| e.to_string()),
            Err("interval 45s is shorter than the minimum of 1m".to_string())
        );
        for spec in ["every 10 minutes", "every 10x", "every m", "every 99999999999999999999d", "every 1.5h"] {
            assert!(matches!(every(spec), Err(TriggerError::Interval(_))), "{spec}");
        }
    }

    #[test]
    fn unrecognised_specs_list_the_forms() {
        let error = Trigger::parse("tomorrow please", None).expect_err("no such form");
        assert_eq!(error, TriggerError::Unrecognised("tomorrow please".to_string()));
        assert!(error_mentions(&error, "\"every 10m\""));
        assert_eq!(Trigger::parse("  ", None), Err(TriggerError::Unrecognised(String::new())));
        assert!(matches!(Trigger::parse("at tomorrow", None), Err(TriggerError::Time { .. })));
    }

    #[test]
    fn each_spec_form_parses_and_describes() {
        let berlin = Some("Europe/Berlin");
        let cases = [
            ("every 10m", None, Trigger::Every { every_ms: 600_000 }, "every 10m"),
            ("1h30m", None, Trigger::Every { every_ms: 5_400_000 }, "every 1h30m"),
            (
                "at 2026-12-01T09:00:00+01:00",
                None,
                Trigger::At { at_ms: ms("2026-12-01T08:00:00Z") },
                "at 2026-12-01T08:00:00Z",
            ),
            (
                "2026-12-01T08:00:00.250Z",
                berlin,
                Trigger::At { at_ms: ms("2026-12-01T08:00:00.250Z") },
                "at 2026-12-01T08:00:00.250Z",
            ),
            (
                "cron 0 9 * * 1-5",
                berlin,
                Trigger::Cron { expr: "0 9 * * 1-5".into(), tz: "Europe/Berlin".into() },
                "cron 0 9 * * 1-5 (Europe/Berlin)",
            ),
            (
                "0  9 * *   1-5",
                None,
                Trigger::Cron { expr: "0 9 * * 1-5".into(), tz: "UTC".into() },
                "cron 0 9 * * 1-5 (UTC)",
            ),
            (
                "0 30 9 * * *",
                None,
                Trigger::Cron { expr: "0 30 9 * * *".into(), tz: "UTC".into() },
                "cron 0 30 9 * * * (UTC)",
            ),
            (
                "@daily",
                berlin,
                Trigger::Cron { expr: "@daily".into(), tz: "Europe/Berlin".into() },
                "cron @daily (Europe/Berlin)",
            ),
            ("hook:deploy", None, Trigger::Webhook { hook: "deploy".into() }, "webhook deploy"),
            (
                "event: Disk full ",
                None,
                Trigger::Event { pattern: "Disk full".into(), regex: false },
                "event \"Disk full\"",
            ),
            ("event:/error/", None, Trigger::Event { pattern: "error".into(), regex: true }, "event /error/"),
        ];
        for (spec, tz, trigger, description) in cases {
            assert_eq!(Trigger::parse(spec, tz).as_ref(), Ok(&trigger), "{spec}");
            assert_eq!(trigger.describe(), description, "{spec}");
        }
        for timed in ["every 1d2h3m4s5ms", "at 2026-12-01T08:00:00.250Z"] {
            let trigger = Trigger::parse(timed, None).expect("valid spec");
            assert_eq!(Trigger::parse(&trigger.describe(), None), Ok(trigger), "{timed}");
        }
    }

    #[test]
    fn each_variant_round_trips_through_json() {
        let cases = [
            (
                Trigger::Cron { expr: "0 9 * * 1-5".into(), tz: "Europe/Berlin".into() },
                r#"{"kind":"cron","expr":"0 9 * * 1-5","tz":"Europe/Berlin"}"#,
            ),
            (Trigger::Every { every_ms: 600_000 }, r#"{"kind":"every","every_ms":600000}"#),
            (Trigger::At { at_ms: 1_796_112_000_000 }, r#"{"kind":"at","at_ms":1796112000000}"#),
            (Trigger::Webhook { hook: "deploy".into() }, r#"{"kind":"webhook","hook":"deploy"}"#),
            (
                Trigger::Event { pattern: "err(or)?".into(), regex: true },
                r#"{"kind":"event","pattern":"err(or)?","regex":true}"#,
            ),
        ];
        for (trigger, json) in cases {
            assert_eq!(serde_json::to_string(&trigger).expect("serializes"), json);
            assert_eq!(serde_json::from_str::<Trigger>(json).expect("deserializes"), trigger);
        }
    }

    #[test]
    fn json_may_leave_out_the_time_zone_and_regex_flag() {
        let cron: Trigger = serde_json::from_str(r#"{"kind":"cron","expr":"@daily"}"#).expect("deserializes");
        assert_eq!(cron, Trigger::Cron { expr: "@daily".into(), tz: DEFAULT_TZ.into() });
        let event: Trigger = serde_json::from_str(r#"{"kind":"event","pattern":"error"}"#).expect("deserializes");
        assert_eq!(event, Trigger::Event { pattern: "error".into(), regex: false });
    }
}
