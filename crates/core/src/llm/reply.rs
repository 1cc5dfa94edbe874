//! Incremental assembly of a model reply from streamed fragments, shared by every wire format.

use std::collections::BTreeMap;

use super::sse::SseEvent;
use super::{LlmError, ModelReply, ToolCall, Usage};

/// Decodes one provider's stream of SSE events into text deltas and, at the end, the whole reply.
pub(crate) trait StreamDecoder {
    /// Handles one event; returns a text delta to show the user, if the event carried one.
    fn on_event(&mut self, event: &SseEvent) -> Result<Option<String>, LlmError>;
    /// The stream ended: returns the assembled reply, or an error if the provider never finished.
    fn finish(self: Box<Self>) -> Result<ModelReply, LlmError>;
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Collects text, tool calls (whose ids, names and argument fragments may arrive in pieces, keyed by
/// index) and usage.
#[derive(Debug, Default)]
pub(crate) struct ReplyBuilder {
    text: String,
    calls: BTreeMap<usize, PartialCall>,
    pub usage: Usage,
}

impl ReplyBuilder {
    /// Appends generated text.
    pub fn text(&mut self, delta: &str) {
        self.text.push_str(delta);
    }

    /// Sets (or fills in) the id and name of the call at `index`.
    pub fn call_header(&mut self, index: usize, id: Option<&str>, name: Option<&str>) {
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            call.id = id.to_string();
        }
        if let Some(name) = name.filter(|s| !s.is_empty()) {
            call.name.push_str(name);
        }
    }

    /// Appends a fragment of the JSON arguments of the call at `index`.
    pub fn call_arguments(&mut self, index: usize, fragment: &str) {
        self.calls.entry(index).or_default().arguments.push_str(fragment);
    }

    /// Number of calls seen so far (the next free index).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The finished reply. Calls without an id get `call_<index>`; empty arguments become `{}`.
    pub fn finish(self) -> Result<ModelReply, LlmError> {
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (index, call) in self.calls {
            if call.name.is_empty() {
                return Err(LlmError::Decode(format!("tool call {index} has no name")));
            }
            tool_calls.push(ToolCall {
                id: if call.id.is_empty() { format!("call_{index}") } else { call.id },
                name: call.name,
                arguments: if call.arguments.trim().is_empty() { "{}".into() } else { call.arguments },
            });
        }
        Ok(ModelReply { text: self.text, tool_calls, usage: self.usage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_by_index_assemble_into_whole_calls_in_index_order() {
        let mut b = ReplyBuilder::default();
        b.call_header(1, Some("b"), Some("calculator"));
        b.call_header(0, Some("a"), Some("current_time"));
        b.call_arguments(1, "{\"expre");
        b.call_arguments(0, "");
        b.call_arguments(1, "ssion\":\"1+1\"}");
        b.text("hi");
        let reply = b.finish().unwrap();
        assert_eq!(reply.text, "hi");
        assert_eq!(
            reply.tool_calls[0],
            ToolCall { id: "a".into(), name: "current_time".into(), arguments: "{}".into() }
        );
        assert_eq!(reply.tool_calls[1].arguments, "{\"expression\":\"1+1\"}");
    }

    #[test]
    fn a_call_without_name_is_a_decode_error() {
        let mut b = ReplyBuilder::default();
        b.call_arguments(0, "{}");
        assert!(matches!(b.finish(), Err(LlmError::Decode(_))));
    }

    #[test]
    fn calls_without_ids_get_index_ids() {
        let mut b = ReplyBuilder::default();
        b.call_header(0, None, Some("x"));
        assert_eq!(b.finish().unwrap().tool_calls[0].id, "call_0");
    }
}
