//! Running a turn for an API caller and encoding it: one JSON object, native SSE events, or OpenAI
//! chunks.

use std::cell::RefCell;

use serde_json::Value;

use super::{openai_compat, sse_frame, ApiError};
use crate::agent::{Agent, TurnEvent, TurnInput, TurnReport};
use crate::session::SessionStore;

/// How the caller wants the turn's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyFormat {
    /// edgeclaw's own API: the turn report, or SSE events named after [`TurnEvent`] variants plus
    /// `final` / `error`.
    Native,
    /// The OpenAI Chat Completions format.
    OpenAi {
        /// Unix seconds for the `created` field.
        created: u64,
        /// Whether a stream ends with a usage chunk.
        include_usage: bool,
    },
}

impl ReplyFormat {
    /// The JSON body for a finished turn.
    pub fn report_json(&self, report: &TurnReport) -> Value {
        match self {
            ReplyFormat::Native => serde_json::to_value(report).unwrap_or_default(),
            ReplyFormat::OpenAi { created, .. } => openai_compat::completion(report, *created),
        }
    }

    fn event_frame(&self, turn_id: &mut String, event: &TurnEvent) -> Option<String> {
        if let TurnEvent::TurnStarted { turn_id: id } = event {
            turn_id.clone_from(id);
        }
        match self {
            ReplyFormat::Native => {
                let tagged = serde_json::to_value(event).ok()?;
                Some(sse_frame(tagged["event"].as_str()?, &tagged["data"]))
            }
            ReplyFormat::OpenAi { created, .. } => match event {
                TurnEvent::TurnStarted { .. } => Some(openai_compat::chunk(
                    turn_id,
                    *created,
                    serde_json::json!({"role": "assistant", "content": ""}),
                    None,
                )),
                TurnEvent::TextDelta { text } => {
                    Some(openai_compat::chunk(turn_id, *created, serde_json::json!({ "content": text }), None))
                }
                _ => None,
            },
        }
    }

    fn final_frames(&self, report: &TurnReport) -> String {
        match self {
            ReplyFormat::Native => sse_frame("final", &self.report_json(report)),
            ReplyFormat::OpenAi { created, include_usage } => {
                openai_compat::closing_chunks(report, *created, *include_usage)
            }
        }
    }

    fn error_frames(&self, error: &ApiError) -> String {
        match self {
            ReplyFormat::Native => sse_frame("error", &error.body()),
            ReplyFormat::OpenAi { .. } => openai_compat::error_chunk(error),
        }
    }
}

/// Runs a turn with streaming, handing each encoded SSE frame to `send` as it happens; the last frame
/// is always the outcome (`final` or `error`). The caller holds the session's turn slot.
pub async fn run_turn_streaming(
    agent: &Agent,
    store: &dyn SessionStore,
    input: TurnInput,
    format: ReplyFormat,
    send: &dyn Fn(String),
) {
    let turn_id = RefCell::new(String::new());
    let result = agent
        .run_turn(store, input, true, &|event| {
            if let Some(frame) = format.event_frame(&mut turn_id.borrow_mut(), &event) {
                send(frame);
            }
        })
        .await;
    send(match result {
        Ok(report) => format.final_frames(&report),
        Err(error) => format.error_frames(&ApiError::from(error)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use crate::security::Guard;
    use crate::session::InMemoryStore;
    use futures::executor::block_on;
    use serde_json::json;
    use std::rc::Rc;

    fn agent(http: Rc<ScriptedHttp>) -> Agent {
        let vars = [("OPENAI_API_KEY", "k"), ("EDGECLAW_LLM_MAX_RETRIES", "0")];
        let config = Config::from_env(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
        Agent::new(config, ports(http).0, Rc::new(Guard::default())).unwrap()
    }

    fn frames(format: ReplyFormat, response: Canned) -> Vec<String> {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(response));
        let agent = agent(http);
        let out = RefCell::new(Vec::new());
        block_on(run_turn_streaming(
            &agent,
            &InMemoryStore::default(),
            TurnInput::Message("hi".into()),
            format,
            &|f| out.borrow_mut().push(f),
        ));
        out.into_inner()
    }

    fn hello() -> Canned {
        Canned::sse(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        ])
    }

    #[test]
    fn native_streams_name_events_and_end_with_final() {
        let frames = frames(ReplyFormat::Native, hello());
        assert!(frames[0].starts_with("event: turn_started\n"));
        assert_eq!(frames[1], "event: text_delta\ndata: {\"text\":\"Hello\"}\n\n");
        assert!(frames[2].starts_with("event: usage\n"));
        assert!(frames[3].starts_with("event: final\n") && frames[3].contains("\"reply\":\"Hello\""));
    }

    #[test]
    fn openai_streams_are_chunks_ending_in_done() {
        let frames = frames(ReplyFormat::OpenAi { created: 1, include_usage: false }, hello());
        assert_eq!(frames.len(), 3);
        assert!(frames[0].contains("\"role\":\"assistant\""));
        assert!(frames[1].contains("\"content\":\"Hello\""));
        assert!(frames[2].contains("\"finish_reason\":\"stop\"") && frames[2].ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn failures_end_the_stream_with_an_error_frame() {
        let frames = frames(ReplyFormat::Native, Canned::json(401, &json!({"error": {"message": "bad key"}})));
        let last = frames.last().unwrap();
        assert!(
            last.starts_with("event: error\n") && last.contains("llm_unavailable") && last.contains("bad key"),
            "{last}"
        );
    }
}
