//! The resilient model client: each call tries the routes in order; each route is retried with
//! exponential backoff and jitter (honouring Retry-After) and guarded by a circuit breaker.

use std::cell::RefCell;
use std::collections::HashMap;

use futures::StreamExt;

use super::route::Routes;
use super::sse::SseParser;
use super::{LlmError, ModelReply, ModelRequest, ModelRoute};
use crate::ports::{read_body, HttpError, HttpResponse, Ports};

/// Largest non-streamed reply body accepted.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;
/// Largest error body read for its message.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// Consecutive failures that open a route's circuit.
const BREAKER_THRESHOLD: u32 = 3;
/// How long an open circuit skips its route.
const BREAKER_COOLDOWN_MS: u64 = 30_000;

/// How hard to try each route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, per route.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry.
    pub base_delay_ms: u64,
    /// Cap on one backoff delay, and on an honoured Retry-After.
    pub max_delay_ms: u64,
    /// Time allowed until response headers arrive.
    pub request_timeout_ms: u64,
    /// Time allowed between two chunks of a response body.
    pub idle_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay_ms: 500,
            max_delay_ms: 30_000,
            request_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `attempt + 1` after `error`, or `None` to give up: the
    /// error must be transient, retries must remain, and a Retry-After must not exceed the cap.
    /// Without Retry-After the delay is exponential with "equal jitter" (half fixed, half drawn from
    /// `random`).
    pub fn retry_delay(&self, attempt: u32, error: &LlmError, random: u64) -> Option<u64> {
        if attempt >= self.max_retries || !error.is_retryable() {
            return None;
        }
        if let LlmError::Status { retry_after_ms: Some(ms), .. } = error {
            return (*ms <= self.max_delay_ms).then_some(*ms);
        }
        let full = self.base_delay_ms.saturating_mul(1 << attempt.min(20)).min(self.max_delay_ms);
        let half = full / 2;
        Some(half + random % (full - half + 1))
    }
}

/// A successful model call and the route that served it.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The reply.
    pub reply: ModelReply,
    /// The route that answered.
    pub route: ModelRoute,
}

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    consecutive_failures: u32,
    open_until_ms: u64,
}

/// Calls models along an ordered list of routes.
pub struct LlmClient {
    routes: Routes,
    policy: RetryPolicy,
    ports: Ports,
    breakers: RefCell<HashMap<String, Breaker>>,
}

/// How one attempt failed: whether text had already reached the user decides if it may be retried.
struct AttemptError {
    error: LlmError,
    text_emitted: bool,
}

impl LlmClient {
    /// A client over `routes` (primary first).
    pub fn new(routes: Routes, policy: RetryPolicy, ports: Ports) -> Self {
        Self { routes, policy, ports, breakers: RefCell::default() }
    }

    /// Calls the model, streaming text deltas to `on_text` when `request.stream` is set.
    ///
    /// Errors before any text was streamed are retried and fall back to the next route; once text has
    /// reached the user, a failure ends the call with [`LlmError::StreamBroken`].
    pub async fn complete(&self, request: &ModelRequest<'_>, on_text: &dyn Fn(&str)) -> Result<Completion, LlmError> {
        if self.routes.usable.is_empty() {
            return Err(self.routes.not_configured());
        }
        let mut failures = Vec::new();
        for route in &self.routes.usable {
            let label = route.label();
            if self.circuit_open(&label) {
                failures.push(format!("{label}: circuit open after repeated failures"));
                continue;
            }
            match self.complete_on(route, request, on_text).await {
                Ok(reply) => {
                    self.record(&label, true);
                    return Ok(Completion { reply, route: route.clone() });
                }
                Err(AttemptError { error, text_emitted: true }) => {
                    self.record(&label, false);
                    return Err(LlmError::StreamBroken(format!("{label}: {error}")));
                }
                Err(AttemptError { error, .. }) => {
                    self.record(&label, false);
                    failures.push(format!("{label}: {error}"));
                }
            }
        }
        Err(LlmError::Unavailable(failures.join("; ")))
    }

    /// One route, with retries.
    async fn complete_on(
        &self,
        route: &ModelRoute,
        request: &ModelRequest<'_>,
        on_text: &dyn Fn(&str),
    ) -> Result<ModelReply, AttemptError> {
        let mut attempt = 0;
        loop {
            let error = match self.attempt(route, request, on_text).await {
                Ok(reply) => return Ok(reply),
                Err(e) if e.text_emitted => return Err(e),
                Err(e) => e.error,
            };
            let Some(delay) = self.policy.retry_delay(attempt, &error, self.ports.random_u64()) else {
                return Err(AttemptError { error, text_emitted: false });
            };
            self.ports.clock.sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        route: &ModelRoute,
        request: &ModelRequest<'_>,
        on_text: &dyn Fn(&str),
    ) -> Result<ModelReply, AttemptError> {
        let quiet = |error: LlmError| AttemptError { error, text_emitted: false };
        let http = route.wire.build_request(route, request);
        let timeout = self.policy.request_timeout_ms;
        let response = self
            .ports
            .with_timeout(timeout, self.ports.http.send(http))
            .await
            .unwrap_or(Err(HttpError::Timeout(timeout)))
            .map_err(|e| quiet(e.into()))?;
        if !(200..300).contains(&response.status) {
            return Err(quiet(self.status_error(response).await));
        }
        let body = self.ports.idle_timeout(response.body, self.policy.idle_timeout_ms);
        if !request.stream {
            let bytes = read_body(body, MAX_REPLY_BYTES).await.map_err(|e| quiet(e.into()))?;
            return route.wire.parse_reply(&bytes).map_err(quiet);
        }
        let mut body = body;
        let mut parser = SseParser::default();
        let mut decoder = route.wire.stream_decoder();
        let mut text_emitted = false;
        let fail = |error: LlmError, text_emitted: bool| AttemptError { error, text_emitted };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(e.into(), text_emitted))?;
            let events = parser.push(&chunk).map_err(|e| fail(LlmError::Decode(e.to_string()), text_emitted))?;
            for event in events {
                if let Some(text) = decoder.on_event(&event).map_err(|e| fail(e, text_emitted))? {
                    text_emitted = true;
                    on_text(&text);
                }
            }
        }
        if let Some(event) = parser.finish().map_err(|e| fail(LlmError::Decode(e.to_string()), text_emitted))? {
            if let Some(text) = decoder.on_event(&event).map_err(|e| fail(e, text_emitted))? {
                text_emitted = true;
                on_text(&text);
            }
        }
        decoder.finish().map_err(|e| fail(e, text_emitted))
    }

    async fn status_error(&self, response: HttpResponse) -> LlmError {
        let status = response.status;
        let retry_after_ms =
            response.header("retry-after").and_then(|v| parse_retry_after(v, self.ports.clock.now_ms()));
        let body = self.ports.with_timeout(self.policy.idle_timeout_ms, response.bytes(MAX_ERROR_BYTES)).await;
        let body = body.and_then(Result::ok).unwrap_or_default();
        LlmError::Status { status, message: super::error_message(&body), retry_after_ms }
    }

    fn circuit_open(&self, label: &str) -> bool {
        self.breakers.borrow().get(label).is_some_and(|b| b.open_until_ms > self.ports.clock.now_ms())
    }

    fn record(&self, label: &str, success: bool) {
        let mut breakers = self.breakers.borrow_mut();
        let breaker = breakers.entry(label.to_string()).or_default();
        if success {
            *breaker = Breaker::default();
        } else {
            breaker.consecutive_failures += 1;
            if breaker.consecutive_failures >= BREAKER_THRESHOLD {
                breaker.open_until_ms = self.ports.clock.now_ms() + BREAKER_COOLDOWN_MS;
            }
        }
    }
}

/// Parses `Retry-After` (delay seconds or an HTTP date) into milliseconds from `now_ms`.
pub(crate) fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds >= 0.0 && seconds.is_finite()).then_some((seconds * 1000.0) as u64);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?.timestamp_millis();
    Some((at - now_ms as i64).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::route::Routes;
    use crate::llm::{Message, Wire};
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use futures::executor::block_on;
    use serde_json::json;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn route(provider: &'static str, wire: Wire) -> ModelRoute {
        ModelRoute { provider, model: "m".into(), wire, base_url: "https://x.test".into(), api_key: Some("k".into()) }
    }

    fn client(http: Rc<ScriptedHttp>, routes: Vec<ModelRoute>) -> (LlmClient, Rc<crate::ports::testing::ManualClock>) {
        let (ports, clock) = ports(http);
        let policy = RetryPolicy { base_delay_ms: 100, ..RetryPolicy::default() };
        (LlmClient::new(Routes { usable: routes, missing: vec![] }, policy, ports), clock)
    }

    fn ok_openai(text: &str) -> Result<Canned, HttpError> {
        Ok(Canned::json(
            200,
            &json!({"choices": [{"message": {"content": text}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
        ))
    }

    fn status(code: u16, headers: &[(&str, &str)]) -> Result<Canned, HttpError> {
        let mut canned = Canned::json(code, &json!({"error": {"message": format!("status {code}")}}));
        canned.headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok(canned)
    }

    fn request(stream: bool) -> ModelRequest<'static> {
        static MESSAGES: std::sync::OnceLock<Vec<Message>> = std::sync::OnceLock::new();
        let messages = MESSAGES.get_or_init(|| vec![Message::User { content: "hi".into() }]);
        ModelRequest { system: "", messages, tools: &[], max_tokens: 10, stream }
    }

    #[test]
    fn rate_limits_are_retried_after_the_requested_delay() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([status(429, &[("Retry-After", "2")]), ok_openai("fine")]);
        let (client, clock) = client(http.clone(), vec![route("openai", Wire::OpenAi)]);
        let done = block_on(client.complete(&request(false), &|_| {})).unwrap();
        assert_eq!(done.reply.text, "fine");
        assert_eq!(*clock.sleeps.borrow(), vec![2000]);
    }

    #[test]
    fn server_errors_back_off_exponentially_then_fall_back() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([
            status(500, &[]),
            status(502, &[]),
            status(503, &[]),
            ok_openai("from fallback"),
        ]);
        let (client, clock) =
            client(http.clone(), vec![route("openai", Wire::OpenAi), route("deepseek", Wire::OpenAi)]);
        let done = block_on(client.complete(&request(false), &|_| {})).unwrap();
        assert_eq!(done.route.provider, "deepseek");
        let sleeps = clock.sleeps.borrow();
        assert_eq!(sleeps.len(), 2);
        assert!((50..=100).contains(&sleeps[0]) && (100..=200).contains(&sleeps[1]), "{sleeps:?}");
    }

    #[test]
    fn client_errors_skip_retries_and_every_failure_is_reported() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([status(401, &[]), status(400, &[])]);
        let (client, clock) = client(http, vec![route("openai", Wire::OpenAi), route("anthropic", Wire::Anthropic)]);
        let err = block_on(client.complete(&request(false), &|_| {})).unwrap_err().to_string();
        assert!(err.contains("openai:m: HTTP 401") && err.contains("anthropic:m: HTTP 400"), "{err}");
        assert!(clock.sleeps.borrow().is_empty());
    }

    #[test]
    fn a_retry_after_longer_than_the_cap_falls_back_at_once() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([status(429, &[("retry-after", "3600")]), ok_openai("b")]);
        let (client, clock) = client(http, vec![route("openai", Wire::OpenAi), route("groq", Wire::OpenAi)]);
        assert_eq!(block_on(client.complete(&request(false), &|_| {})).unwrap().route.provider, "groq");
        assert!(clock.sleeps.borrow().is_empty());
    }

    #[test]
    fn the_circuit_opens_after_repeated_failures_and_closes_after_cooldown() {
        let http = Rc::new(ScriptedHttp::default());
        let (mut client, clock) =
            client(http.clone(), vec![route("openai", Wire::OpenAi), route("groq", Wire::OpenAi)]);
        client.policy.max_retries = 0;
        for _ in 0..BREAKER_THRESHOLD {
            http.responses.borrow_mut().extend([status(500, &[]), ok_openai("b")]);
            block_on(client.complete(&request(false), &|_| {})).unwrap();
        }
        let sent = http.requests.borrow().len();
        http.responses.borrow_mut().push_back(ok_openai("b"));
        block_on(client.complete(&request(false), &|_| {})).unwrap();
        assert_eq!(http.requests.borrow().len(), sent + 1, "the open circuit skipped the primary");
        clock.now.set(clock.now.get() + BREAKER_COOLDOWN_MS + 1);
        http.responses.borrow_mut().push_back(ok_openai("a"));
        assert_eq!(block_on(client.complete(&request(false), &|_| {})).unwrap().route.provider, "openai");
    }

    #[test]
    fn streamed_text_reaches_the_callback_and_a_later_break_is_not_retried() {
        let http = Rc::new(ScriptedHttp::default());
        let mut cut = Canned::sse(&["data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"]);
        cut.chunks.push(Err(HttpError::Network("connection reset".into())));
        http.responses.borrow_mut().push_back(Ok(cut));
        let (client, clock) = client(http.clone(), vec![route("openai", Wire::OpenAi), route("groq", Wire::OpenAi)]);
        let seen = RefCell::new(String::new());
        let err = block_on(client.complete(&request(true), &|t| seen.borrow_mut().push_str(t))).unwrap_err();
        assert_eq!(*seen.borrow(), "par");
        assert!(matches!(err, LlmError::StreamBroken(ref m) if m.contains("connection reset")), "{err}");
        assert_eq!(http.requests.borrow().len(), 1);
        assert!(clock.sleeps.borrow().is_empty());
    }

    #[test]
    fn a_break_before_any_text_is_retried() {
        let http = Rc::new(ScriptedHttp::default());
        let mut cut = Canned::sse(&[": keep-alive\n\n"]);
        cut.chunks.push(Err(HttpError::Network("reset".into())));
        http.responses.borrow_mut().extend([
            Ok(cut),
            Ok(Canned::sse(&[
                "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            ])),
        ]);
        let (client, _) = client(http, vec![route("openai", Wire::OpenAi)]);
        assert_eq!(block_on(client.complete(&request(true), &|_| {})).unwrap().reply.text, "ok");
    }

    #[test]
    fn no_routes_means_not_configured() {
        let http = Rc::new(ScriptedHttp::default());
        let (ports, _) = ports(http);
        let routes = Routes { usable: vec![], missing: vec!["set OPENAI_API_KEY for openai:gpt-4o-mini".into()] };
        let client = LlmClient::new(routes, RetryPolicy::default(), ports);
        let err = block_on(client.complete(&request(false), &|_| {})).unwrap_err();
        assert!(matches!(err, LlmError::NotConfigured(ref m) if m.contains("OPENAI_API_KEY")));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("1", 0), Some(1000));
        assert_eq!(parse_retry_after("0.5", 0), Some(500));
        let now =
            chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap().timestamp_millis() as u64;
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now), Some(5000));
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
