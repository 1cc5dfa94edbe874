//! The OpenAI Chat Completions wire format (and every provider that speaks it).

use serde_json::{json, Value};

use super::reply::{ReplyBuilder, StreamDecoder};
use super::sse::SseEvent;
use super::{decode_json, LlmError, Message, ModelReply, ModelRequest, ModelRoute, Usage};
use crate::ports::HttpRequest;

/// Builds a `POST {base}/chat/completions` request.
pub fn build_request(route: &ModelRoute, request: &ModelRequest<'_>) -> HttpRequest {
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    messages.extend(request.messages.iter().map(message_json));
    let mut body = json!({"model": route.model, "messages": messages, "stream": request.stream});
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
    }
    if request.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    route.authorize(HttpRequest::post_json(format!("{}/chat/completions", route.base_url), &body))
}

fn message_json(message: &Message) -> Value {
    match message {
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant { content, tool_calls } => {
            let mut m =
                json!({"role": "assistant", "content": if content.is_empty() { Value::Null } else { json!(content) }});
            if !tool_calls.is_empty() {
                m["tool_calls"] = tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
            }
            m
        }
        Message::Tool { tool_call_id, content, .. } => {
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
        }
    }
}

fn usage(value: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: value.get("prompt_tokens")?.as_u64()?,
        output_tokens: value.get("completion_tokens")?.as_u64()?,
    })
}

/// Parses a `chat.completion` object.
pub fn parse_reply(body: &[u8]) -> Result<ModelReply, LlmError> {
    let value = decode_json(body)?;
    let message = value
        .pointer("/choices/0/message")
        .ok_or_else(|| LlmError::Decode("no choices[0].message in the reply".into()))?;
    let mut builder = ReplyBuilder::default();
    if let Some(text) = message.get("content").and_then(Value::as_str) {
        builder.text(text);
    }
    for (index, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        builder.call_header(index, call["id"].as_str(), call.pointer("/function/name").and_then(Value::as_str));
        builder.call_arguments(index, call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or(""));
    }
    builder.usage = value.get("usage").and_then(usage).unwrap_or_default();
    builder.finish()
}

/// Decodes `chat.completion.chunk` events up to `data: [DONE]`.
#[derive(Default)]
pub(crate) struct Decoder {
    reply: ReplyBuilder,
    finished: bool,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, event: &SseEvent) -> Result<Option<String>, LlmError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: Value =
            serde_json::from_str(&event.data).map_err(|e| LlmError::Decode(format!("invalid stream chunk: {e}")))?;
        if chunk.get("error").is_some() {
            return Err(LlmError::Decode(format!(
                "provider error in stream: {}",
                super::error_message(event.data.as_bytes())
            )));
        }
        if let Some(u) = chunk.get("usage").and_then(usage) {
            self.reply.usage = u;
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return Ok(None) };
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.finished = true;
        }
        let delta = &choice["delta"];
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = call["index"].as_u64().map(|i| i as usize).unwrap_or(self.reply.call_count());
            self.reply.call_header(index, call["id"].as_str(), call.pointer("/function/name").and_then(Value::as_str));
            if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
                self.reply.call_arguments(index, args);
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => {
                self.reply.text(text);
                Ok(Some(text.to_string()))
            }
            _ => Ok(None),
        }
    }

    fn finish(self: Box<Self>) -> Result<ModelReply, LlmError> {
        if !self.done && !self.finished {
            return Err(LlmError::Decode("the stream ended before the model finished".into()));
        }
        self.reply.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, ToolSpec};

    fn route() -> ModelRoute {
        ModelRoute {
            provider: "openai",
            model: "gpt-4o-mini".into(),
            wire: crate::llm::Wire::OpenAi,
            base_url: "https://example.test/v1".into(),
            api_key: Some("sk-test".into()),
        }
    }

    #[test]
    fn requests_carry_system_history_tools_and_auth() {
        let messages = vec![
            Message::User { content: "hi".into() },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall { id: "c1".into(), name: "calculator".into(), arguments: "{}".into() }],
            },
            Message::Tool {
                tool_call_id: "c1".into(),
                name: "calculator".into(),
                content: "2".into(),
                is_error: false,
            },
        ];
        let tools = vec![ToolSpec {
            name: "calculator".into(),
            description: "math".into(),
            parameters: json!({"type": "object"}),
        }];
        let req = ModelRequest { system: "sys", messages: &messages, tools: &tools, max_tokens: 100, stream: true };
        let http = build_request(&route(), &req);
        assert_eq!(http.url, "https://example.test/v1/chat/completions");
        assert!(http.headers.contains(&("authorization".into(), "Bearer sk-test".into())));
        let body: Value = serde_json::from_slice(&http.body).unwrap();
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "sys"}));
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["name"], "calculator");
        assert_eq!(body["messages"][3], json!({"role": "tool", "tool_call_id": "c1", "content": "2"}));
        assert_eq!(body["tools"][0]["function"]["name"], "calculator");
        assert_eq!(body["stream_options"]["include_usage"], true);
    }

    #[test]
    fn complete_replies_parse_text_calls_and_usage() {
        let body = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"2+2\"}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 3}});
        let reply = parse_reply(body.to_string().as_bytes()).unwrap();
        assert_eq!(reply.tool_calls[0].arguments, "{\"expression\":\"2+2\"}");
        assert_eq!(reply.usage, Usage { input_tokens: 10, output_tokens: 3 });
        assert!(matches!(parse_reply(b"<html>"), Err(LlmError::Decode(_))));
    }

    fn event(data: &str) -> SseEvent {
        SseEvent { event: "message".into(), data: data.into() }
    }

    #[test]
    fn streamed_chunks_assemble_text_and_split_tool_arguments() {
        let mut d: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        assert_eq!(
            d.on_event(&event(r#"{"choices":[{"delta":{"role":"assistant","content":"Hel"}}]}"#)).unwrap(),
            Some("Hel".into())
        );
        d.on_event(&event(r#"{"choices":[{"delta":{"content":"lo"}}]}"#)).unwrap();
        d.on_event(&event(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"calculator","arguments":""}}]}}]}"#)).unwrap();
        d.on_event(&event(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"expr"}}]}}]}"#,
        ))
        .unwrap();
        d.on_event(&event(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ession\":\"1\"}"}}]}}]}"#,
        ))
        .unwrap();
        d.on_event(&event(r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#)).unwrap();
        d.on_event(&event(r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#)).unwrap();
        d.on_event(&event("[DONE]")).unwrap();
        let reply = d.finish().unwrap();
        assert_eq!(reply.text, "Hello");
        assert_eq!(reply.tool_calls[0].arguments, "{\"expression\":\"1\"}");
        assert_eq!(reply.usage.output_tokens, 7);
    }

    #[test]
    fn a_stream_without_finish_or_done_is_an_error() {
        let mut d: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        d.on_event(&event(r#"{"choices":[{"delta":{"content":"par"}}]}"#)).unwrap();
        assert!(matches!(d.finish(), Err(LlmError::Decode(_))));
    }

    #[test]
    fn malformed_chunks_are_decode_errors() {
        let mut d = Decoder::default();
        assert!(matches!(d.on_event(&event(r#"{"choices": [ {broken"#)), Err(LlmError::Decode(_))));
    }
}
