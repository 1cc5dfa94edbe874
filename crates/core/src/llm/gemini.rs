//! The Google Gemini `generateContent` / `streamGenerateContent` wire format.

use serde_json::{json, Value};

use super::reply::{ReplyBuilder, StreamDecoder};
use super::sse::SseEvent;
use super::{decode_json, LlmError, Message, ModelReply, ModelRequest, ModelRoute};
use crate::ports::HttpRequest;

/// Builds a `generateContent` (or, streaming, `streamGenerateContent?alt=sse`) request.
pub fn build_request(route: &ModelRoute, request: &ModelRequest<'_>) -> HttpRequest {
    let method = if request.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let mut body = json!({
        "systemInstruction": {"parts": [{"text": request.system}]},
        "contents": contents_json(request.messages),
        "generationConfig": {"maxOutputTokens": request.max_tokens},
    });
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    let url = format!("{}/v1beta/models/{}:{method}", route.base_url, route.model);
    route.authorize(HttpRequest::post_json(url, &body))
}

/// Converts the conversation to `contents`; function responses travel in user turns and consecutive
/// turns of the same role are merged.
fn contents_json(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, parts) = match message {
            Message::User { content } => ("user", vec![json!({"text": content})]),
            Message::Assistant { content, tool_calls } => {
                let mut parts = Vec::new();
                if !content.is_empty() {
                    parts.push(json!({"text": content}));
                }
                parts.extend(
                    tool_calls.iter().map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments_object()}})),
                );
                ("model", parts)
            }
            Message::Tool { name, content, is_error, .. } => {
                let response = if *is_error { json!({"error": content}) } else { json!({"content": content}) };
                ("user", vec![json!({"functionResponse": {"name": name, "response": response}})])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    out.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect()
}

/// Adds one `GenerateContentResponse` to the reply; returns its text and whether it finished.
fn add_response(builder: &mut ReplyBuilder, value: &Value) -> (String, bool) {
    let candidate = value.pointer("/candidates/0");
    let mut text = String::new();
    for part in candidate.and_then(|c| c.pointer("/content/parts")).and_then(Value::as_array).into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(call) = part.get("functionCall") {
            let index = builder.call_count();
            builder.call_header(index, call["id"].as_str(), call["name"].as_str());
            builder.call_arguments(index, &call.get("args").cloned().unwrap_or_else(|| json!({})).to_string());
        }
    }
    builder.text(&text);
    if let Some(meta) = value.get("usageMetadata") {
        let count = |key: &str| meta.get(key).and_then(Value::as_u64).unwrap_or(0);
        builder.usage.input_tokens = count("promptTokenCount");
        builder.usage.output_tokens = count("candidatesTokenCount") + count("thoughtsTokenCount");
    }
    let finished = candidate.and_then(|c| c.get("finishReason")).is_some_and(|r| !r.is_null());
    (text, finished)
}

/// Parses a complete `GenerateContentResponse`.
pub fn parse_reply(body: &[u8]) -> Result<ModelReply, LlmError> {
    let value = decode_json(body)?;
    if value.get("candidates").is_none() {
        return Err(LlmError::Decode("no candidates in the reply".into()));
    }
    let mut builder = ReplyBuilder::default();
    add_response(&mut builder, &value);
    builder.finish()
}

/// Decodes a stream of partial `GenerateContentResponse`s.
#[derive(Default)]
pub(crate) struct Decoder {
    reply: ReplyBuilder,
    finished: bool,
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, event: &SseEvent) -> Result<Option<String>, LlmError> {
        let value: Value =
            serde_json::from_str(&event.data).map_err(|e| LlmError::Decode(format!("invalid stream chunk: {e}")))?;
        if value.get("error").is_some() {
            return Err(LlmError::Decode(format!(
                "provider error in stream: {}",
                super::error_message(event.data.as_bytes())
            )));
        }
        let (text, finished) = add_response(&mut self.reply, &value);
        self.finished |= finished;
        Ok((!text.is_empty()).then_some(text))
    }

    fn finish(self: Box<Self>) -> Result<ModelReply, LlmError> {
        if !self.finished {
            return Err(LlmError::Decode("the stream ended without a finishReason".into()));
        }
        self.reply.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, Wire};

    #[test]
    fn requests_use_the_model_path_key_header_and_merged_contents() {
        let route = ModelRoute {
            provider: "gemini",
            model: "gemini-2.0-flash".into(),
            wire: Wire::Gemini,
            base_url: "https://g.test".into(),
            api_key: Some("gk".into()),
        };
        let messages = vec![
            Message::User { content: "time?".into() },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "current_time".into(),
                    arguments: "{\"timezone\":\"UTC\"}".into(),
                }],
            },
            Message::Tool {
                tool_call_id: "call_0".into(),
                name: "current_time".into(),
                content: "noon".into(),
                is_error: false,
            },
        ];
        let req = ModelRequest { system: "s", messages: &messages, tools: &[], max_tokens: 50, stream: true };
        let http = build_request(&route, &req);
        assert_eq!(http.url, "https://g.test/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
        assert!(http.headers.contains(&("x-goog-api-key".into(), "gk".into())));
        let body: Value = serde_json::from_slice(&http.body).unwrap();
        assert_eq!(body["contents"][1]["parts"][0]["functionCall"]["args"]["timezone"], "UTC");
        assert_eq!(body["contents"][2]["parts"][0]["functionResponse"]["response"]["content"], "noon");
    }

    #[test]
    fn stream_chunks_accumulate_and_need_a_finish_reason() {
        let mut d: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        let chunk = |v: Value| SseEvent { event: "message".into(), data: v.to_string() };
        assert_eq!(
            d.on_event(&chunk(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]})))
                .unwrap(),
            Some("Hel".into())
        );
        d.on_event(&chunk(json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "calculator", "args": {"expression": "2"}}}]},
            "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}))).unwrap();
        let reply = d.finish().unwrap();
        assert_eq!(reply.text, "Hel");
        assert_eq!(reply.tool_calls[0].id, "call_0");
        assert_eq!(reply.usage.input_tokens, 4);

        let unfinished: Box<dyn StreamDecoder> = Box::<Decoder>::default();
        assert!(unfinished.finish().is_err());
    }

    #[test]
    fn a_reply_without_candidates_is_a_decode_error() {
        assert!(matches!(parse_reply(b"{}"), Err(LlmError::Decode(_))));
    }
}
