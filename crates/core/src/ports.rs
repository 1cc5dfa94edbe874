//! The ports core calls for every effect on the outside world: HTTP, time and randomness.
//!
//! Adapters implement these traits with their platform's primitives; core never touches a socket, a
//! system clock or an entropy source itself. Everything is single-threaded (`?Send`), as wasm is.

use std::rc::Rc;

use async_trait::async_trait;
use futures::future::{self, Either, LocalBoxFuture};
use futures::stream::LocalBoxStream;
use futures::StreamExt;

/// A failure to complete an HTTP exchange (as opposed to a completed exchange with an error status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The connection failed, was reset or the body broke off.
    #[error("network error: {0}")]
    Network(String),
    /// No answer (or no further body bytes) arrived within the time limit.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The body was larger than the caller allows.
    #[error("response body exceeds {0} bytes")]
    TooLarge(usize),
    /// The request itself could not be formed (bad URL, bad header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// An outbound HTTP request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method in upper case, e.g. `GET`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Header name/value pairs.
    pub headers: Vec<(String, String)>,
    /// Raw body (empty for none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A POST with a JSON body.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Self {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A response body delivered incrementally, so streams (SSE) can be consumed as they arrive.
pub type BodyStream = LocalBoxStream<'static, Result<Vec<u8>, HttpError>>;

/// An HTTP response whose body has not been read yet.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk.
    pub body: BodyStream,
}

impl HttpResponse {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Reads the whole body, failing once it exceeds `limit` bytes.
    pub async fn bytes(self, limit: usize) -> Result<Vec<u8>, HttpError> {
        read_body(self.body, limit).await
    }
}

/// Reads a whole body, failing once it exceeds `limit` bytes.
pub async fn read_body(mut body: BodyStream, limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() > limit {
            return Err(HttpError::TooLarge(limit));
        }
    }
    Ok(out)
}

/// Sends HTTP requests (the platform's `fetch`).
#[async_trait(?Send)]
pub trait HttpClient {
    /// Sends the request and returns once the status and headers have arrived.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// Wall-clock time and timers.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
}

/// A source of cryptographically secure random bytes.
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The set of ports one agent instance runs on.
#[derive(Clone)]
pub struct Ports {
    /// Outbound HTTP.
    pub http: Rc<dyn HttpClient>,
    /// Time.
    pub clock: Rc<dyn Clock>,
    /// Randomness.
    pub random: Rc<dyn Random>,
}

impl Ports {
    /// A uniformly random `u64`.
    pub fn random_u64(&self) -> u64 {
        let mut buf = [0u8; 8];
        self.random.fill(&mut buf);
        u64::from_le_bytes(buf)
    }

    /// A fresh identifier such as `turn_5f2c…` (16 random bytes, hex).
    pub fn new_id(&self, prefix: &str) -> String {
        let mut buf = [0u8; 16];
        self.random.fill(&mut buf);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}_{hex}")
    }

    /// Runs `fut`, giving up (with `None`) after `ms` milliseconds.
    pub async fn with_timeout<F: std::future::Future>(&self, ms: u64, fut: F) -> Option<F::Output> {
        let fut = std::pin::pin!(fut);
        match future::select(fut, self.clock.sleep(ms)).await {
            Either::Left((output, _)) => Some(output),
            Either::Right(_) => None,
        }
    }

    /// Wraps a body so that a gap of more than `idle_ms` between chunks ends it with a timeout error.
    pub fn idle_timeout(&self, body: BodyStream, idle_ms: u64) -> BodyStream {
        let clock = self.clock.clone();
        futures::stream::unfold(Some(body), move |state| {
            let clock = clock.clone();
            async move {
                let mut body = state?;
                let next = std::pin::pin!(body.next());
                match future::select(next, clock.sleep(idle_ms)).await {
                    Either::Left((Some(item), _)) => {
                        let keep = item.is_ok();
                        Some((item, keep.then_some(body)))
                    }
                    Either::Left((None, _)) => None,
                    Either::Right(_) => Some((Err(HttpError::Timeout(idle_ms)), None)),
                }
            }
        })
        .boxed_local()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Deterministic ports for unit tests: a scripted HTTP client, a manual clock, counter randomness.

    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    /// A canned response: status, headers and body chunks.
    pub struct Canned {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub chunks: Vec<Result<Vec<u8>, HttpError>>,
    }

    impl Canned {
        pub fn json(status: u16, body: &serde_json::Value) -> Self {
            Self { status, headers: vec![], chunks: vec![Ok(body.to_string().into_bytes())] }
        }
        pub fn sse(chunks: &[&str]) -> Self {
            Self {
                status: 200,
                headers: vec![("content-type".into(), "text/event-stream".into())],
                chunks: chunks.iter().map(|c| Ok(c.as_bytes().to_vec())).collect(),
            }
        }
    }

    /// Answers requests from a queue and records them.
    #[derive(Default)]
    pub struct ScriptedHttp {
        pub responses: RefCell<VecDeque<Result<Canned, HttpError>>>,
        pub requests: RefCell<Vec<HttpRequest>>,
    }

    #[async_trait(?Send)]
    impl HttpClient for ScriptedHttp {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            self.requests.borrow_mut().push(request);
            let canned = self.responses.borrow_mut().pop_front().expect("a scripted response is queued")?;
            Ok(HttpResponse {
                status: canned.status,
                headers: canned.headers,
                body: futures::stream::iter(canned.chunks).boxed_local(),
            })
        }
    }

    /// A clock that only moves when slept on, recording each sleep that was awaited.
    #[derive(Default)]
    pub struct ManualClock {
        pub now: Cell<u64>,
        pub sleeps: RefCell<Vec<u64>>,
    }

    impl Clock for Rc<ManualClock> {
        fn now_ms(&self) -> u64 {
            self.now.get()
        }
        fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
            // Recorded when first polled, so timeouts that never fire leave no trace.
            let clock = self.clone();
            Box::pin(async move {
                clock.sleeps.borrow_mut().push(ms);
                clock.now.set(clock.now.get() + ms);
            })
        }
    }

    /// Counter bytes: predictable, distinct ids.
    #[derive(Default)]
    pub struct CounterRandom(Cell<u8>);

    impl Random for CounterRandom {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                self.0.set(self.0.get().wrapping_add(1));
                *b = self.0.get();
            }
        }
    }

    /// Ports over a scripted HTTP client and a manual clock.
    /// Deterministic bytes that never repeat: a 64-bit counter per 8-byte chunk (for ids and keys
    /// that must stay unique over many draws).
    #[derive(Default)]
    pub struct SequenceRandom(Cell<u64>);

    impl Random for SequenceRandom {
        fn fill(&self, buf: &mut [u8]) {
            for chunk in buf.chunks_mut(8) {
                self.0.set(self.0.get() + 1);
                chunk.copy_from_slice(&self.0.get().to_le_bytes()[..chunk.len()]);
            }
        }
    }

    pub fn ports(http: Rc<ScriptedHttp>) -> (Ports, Rc<ManualClock>) {
        let clock = Rc::new(ManualClock { now: Cell::new(1_700_000_000_000), ..Default::default() });
        let ports = Ports { http, clock: Rc::new(clock.clone()), random: Rc::new(CounterRandom::default()) };
        (ports, clock)
    }
}
