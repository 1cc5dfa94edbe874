//! `current_time`: the date and time now, in any IANA time zone.

use std::rc::Rc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::{Tool, ToolError};
use crate::ports::Clock;

/// Tells the current time in a time zone.
pub struct CurrentTime {
    clock: Rc<dyn Clock>,
}

impl CurrentTime {
    /// The tool over this clock.
    pub fn new(clock: Rc<dyn Clock>) -> Self {
        Self { clock }
    }
}

#[async_trait(?Send)]
impl Tool for CurrentTime {
    fn name(&self) -> &'static str {
        "current_time"
    }

    fn description(&self) -> &'static str {
        "Get the current date and time in an IANA time zone such as \"Europe/Lisbon\" or \"America/New_York\" \
         (default UTC), with the weekday and UTC offset."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA time zone name, default UTC"}}
        })
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let name =
            arguments.get("timezone").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).unwrap_or("UTC");
        let zone: Tz = name.parse().map_err(|_| {
            ToolError::new(format!("unknown time zone `{name}`; use an IANA name such as Europe/Paris or Asia/Tokyo"))
        })?;
        let now = Utc
            .timestamp_millis_opt(self.clock.now_ms() as i64)
            .single()
            .ok_or_else(|| ToolError::new("the clock is out of range"))?
            .with_timezone(&zone);
        Ok(format!(
            "{} ({}, {}, UTC{})",
            now.format("%Y-%m-%d %H:%M:%S"),
            now.format("%A"),
            zone.name(),
            now.format("%:z")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::LocalBoxFuture;

    struct Fixed(u64);
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            self.0
        }
        fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    fn at(ms: u64, zone: Value) -> Result<String, ToolError> {
        futures::executor::block_on(CurrentTime::new(Rc::new(Fixed(ms))).execute(json!({ "timezone": zone })))
    }

    #[test]
    fn time_is_shown_in_the_zone_with_daylight_saving() {
        // 2024-07-01T12:00:00Z: Lisbon is on summer time (UTC+1), Tokyo has none (UTC+9).
        let ms = 1_719_835_200_000;
        assert_eq!(at(ms, json!("Europe/Lisbon")).unwrap(), "2024-07-01 13:00:00 (Monday, Europe/Lisbon, UTC+01:00)");
        assert_eq!(at(ms, json!("Asia/Tokyo")).unwrap(), "2024-07-01 21:00:00 (Monday, Asia/Tokyo, UTC+09:00)");
        assert!(at(ms, Value::Null).unwrap().contains("UTC+00:00"));
    }

    #[test]
    fn unknown_zones_are_tool_errors() {
        assert!(at(0, json!("Mars/Olympus")).unwrap_err().0.contains("unknown time zone"));
    }
}
