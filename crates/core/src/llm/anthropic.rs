//! The Anthropic Messages wire format.

use serde_json::{json, Value};

use super::reply::{ReplyBuilder, StreamDecoder};
use super::sse::SseEvent;
use super::{decode_json, LlmError, Message, ModelReply, ModelRequest, ModelRoute};
use crate::ports::HttpRequest;

/// The API version this module speaks.
const API_VERSION: &str = "2023-06-01";

/// Builds a `POST {base}/v1/messages` request.
pub fn build_request(route: &ModelRoute, request: &ModelRequest<'_>) -> HttpRequest {
    let mut body = json!({
        "model": route.model,
        "max_tokens": request.max_tokens,
        "system": request.system,
        "messages": messages_json(request.messages),
        "stream": request.stream,
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    route.authorize(
        HttpRequest::post_json(format!("{}/v1/messages", route.base_url), &body)
            .header("anthropic-version", API_VERSION),
    )
}

/// Converts the conversation to content blocks; tool results travel in user turns, and consecutive
/// turns of the same role are merged (the API requires alternation).
fn messages_json(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message {
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant { content, tool_calls } => {
                let mut blocks = Vec::new();
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                blocks.extend(
                    tool_calls.iter().map(
                        |c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments_object()}),
                    ),
                );
                ("assistant", blocks)
            }
            Message::Tool { tool_call_id, content, is_error, .. } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content, "is_error": is_error}),
                ],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect()
}

fn add_block(builder: &mut ReplyBuilder, index: usize, block: &Value) {
    match block["type"].as_str() {
        Some("text") => builder.text(block["text"].as_str().unwrap_or("")),
        Some("tool_use") => {
            builder.call_header(index, block["id"].as_str(), block["name"].as_str());
            if let Some(input) = block.get("input").filter(|i| i.as_object().is_some_and(|o| !o.is_empty())) {
                builder.call_arguments(index, &input.to_string());
            }
        }
        _ => {}
    }
}

/// Parses a complete `message` object.
pub fn parse_reply(body: &[u8]) -> Result<ModelReply, LlmError> {
    let value = decode_json(body)?;
    let content = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Decode("no content in the reply".into()))?;
    let mut builder = ReplyBuilder::default();
    for block in content {
        let index = builder.call_count();
        add_block(&mut builder, index, block);
    }
    builder.usage.input_tokens = value.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
    builder.usage.output_tokens = value.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
    builder.finish()
}

/// Decodes the `message_start` … `message_stop` event sequence.
#[derive(Default)]
pub(crate) struct Decoder {
    reply: ReplyBuilder,
    stopped: bool,
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, event: &SseEvent) -> Result<Option<String>, LlmError> {
        let data: Value =
            serde_json::from_str(&event.data).map_err(|e| LlmError::Decode(format!("invalid stream event: {e}")))?;
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        match data["type"].as_str().unwrap_or(event.event.as_str()) {
            "message_start" => {
                self.reply.usage.input_tokens =
                    data.pointer("/message/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
            }
            "content_block_start" => add_block(&mut self.reply, index, &data["content_block"]),
            "content_block_delta" => match data.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => {
                    let text = data.pointer("/delta/text").and_then(Value::as_str).unwrap_or("");
                    self.reply.text(text);
                    return Ok((!text.is_empty()).then(|| text.to_string()));
                }
                Some("input_json_delta") => {
                    self.reply.call_arguments(
                        index,
                        data.pointer("/delta/partial_json").and_then(Value::as_str).unwrap_or(""),
                    );
                }
                _ => {}
            },
            "message_delta" => {
                if let Some(out) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.reply.usage.output_tokens = out;
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                return Err(LlmError::Decode(format!(
                    "provider error in stream: {}",
                    super::error_message(event.data.as_bytes())
                )))
            }
            _ => {}
        }
        Ok(None)
    }

    fn finish(self: Box<Self>) -> Result<ModelReply, LlmError> {
        if !self.stopped {
            return Err(LlmError::Decode("the stream ended before message_stop".into()));
        }
        self.reply.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    #[test]
    fn tool_results_become_user_blocks_and_same_roles_merge() {
        let messages = vec![
            Message::User { content: "q".into() },
            Message::Assistant {
                content: "let me".into(),
                tool_calls: vec![
                    ToolCall { id: "a".into(), name: "x".into(), arguments: "{\"n\":1}".into() },
                    ToolCall { id: "b".into(), name: "y".into(), arguments: "{}".into() },
                ],
            },
            Message::Tool { tool_call_id: "a".into(), name: "x".into(), content: "1".into(), is_error: false },
            Message::Tool { tool_call_id: "b".into(), name: "y".into(), content: "oops".into(), is_error: true },
            Message::User { content: "next".into() },
        ];
        let out = messages_json(&messages);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["content"][1], json!({"type": "tool_use", "id": "a", "name": "x", "input": {"n": 1}}));
        assert_eq!(out[2]["role"], "user");
        assert_eq!(out[2]["content"].as_array().unwrap().len(), 3);
        assert_eq!(out[2]["content"][1]["is_error"], true);
    }

    fn event(name: &str, data: Value) -> SseEvent {
        SseEvent { event: name.into(), data: data.to_string() }
    }

    #[test]
    fn streamed_events_assemble_text_tool_input_and_usage() {
        let mut d: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        let events = [
            event("message_start", json!({"type": "message_start", "message": {"usage": {"input_tokens": 12}}})),
            event("ping", json!({"type": "ping"})),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu", "name": "calculator", "input": {}}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"expression\":"}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"3\"}"}}),
            ),
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ];
        let deltas: Vec<_> = events.iter().filter_map(|e| d.on_event(e).unwrap()).collect();
        assert_eq!(deltas, vec!["Hi".to_string()]);
        let reply = d.finish().unwrap();
        assert_eq!(reply.tool_calls[0].id, "tu");
        assert_eq!(reply.tool_calls[0].arguments, "{\"expression\":\"3\"}");
        assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (12, 9));
    }

    #[test]
    fn a_stream_without_message_stop_is_an_error() {
        let d: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        assert!(d.finish().is_err());
    }

    #[test]
    fn complete_replies_parse_blocks() {
        let body = json!({"content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}}],
            "usage": {"input_tokens": 3, "output_tokens": 4}});
        let reply = parse_reply(body.to_string().as_bytes()).unwrap();
        assert_eq!(reply.text, "ok");
        assert_eq!(reply.tool_calls[0].arguments, "{\"a\":1}");
    }
}
