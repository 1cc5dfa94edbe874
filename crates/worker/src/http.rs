//! Turning core's API values into Workers responses: JSON bodies, the JSON error shape, SSE streams.

use edgeclaw_core::api::ApiError;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result};

/// A JSON response with this status.
pub fn json(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The JSON error response for `error`.
pub fn error(error: &ApiError) -> Result<Response> {
    json(error.status, &error.body())
}

/// A `text/event-stream` response whose body is the frames as they are produced.
pub fn sse(frames: impl Stream<Item = String> + 'static) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-cache")?;
    Ok(Response::from_stream(frames.map(|frame| Ok::<Vec<u8>, worker::Error>(frame.into_bytes())))?
        .with_headers(headers))
}

/// Whether a response is a server-sent event stream.
pub fn is_sse(headers: &Headers) -> bool {
    headers.get("content-type").ok().flatten().is_some_and(|kind| kind.starts_with("text/event-stream"))
}

/// Whether the client asked for a server-sent event stream.
pub fn wants_sse(headers: &Headers) -> bool {
    headers.get("accept").ok().flatten().is_some_and(|accept| accept.contains("text/event-stream"))
}

/// 500 for a platform failure (a missing binding, a broken Durable Object call).
pub fn internal(error: worker::Error) -> ApiError {
    ApiError::new(500, "internal_error", error.to_string())
}

/// Sends `command` as JSON to the Durable Object called `name` in namespace `binding` and returns its
/// response.
pub async fn ask_object(env: &Env, binding: &str, name: &str, command: &impl Serialize) -> Result<Response> {
    let stub = env.durable_object(binding)?.get_by_name(name)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(command)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://object.internal/command", &init)?).await
}
