//! core's ports on Workers: `fetch` for HTTP, `Date.now`/timers for the clock, Web Crypto for randomness.

use std::rc::Rc;
use std::time::Duration;

use async_trait::async_trait;
use edgeclaw_core::ports::{Clock, HttpClient, HttpError, HttpRequest, HttpResponse, Ports, Random};
use futures::future::LocalBoxFuture;
use futures::{StreamExt, TryStreamExt};
use worker::{Date, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// Outbound HTTP through the Workers `fetch` API. Redirects are not followed: callers see them and
/// decide (so every hop can be checked).
struct FetchHttp;

#[async_trait(?Send)]
impl HttpClient for FetchHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let invalid = |e: worker::Error| HttpError::InvalidRequest(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(invalid)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(request.method.clone()))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !request.body.is_empty() {
            init.with_body(Some(worker::js_sys::Uint8Array::from(request.body.as_slice()).into()));
        }
        let outbound = Request::new_with_init(&request.url, &init).map_err(invalid)?;
        let mut response = Fetch::Request(outbound).send().await.map_err(|e| HttpError::Network(e.to_string()))?;
        let headers: Vec<(String, String)> = response.headers().entries().collect();
        let status = response.status_code();
        let body = match response.stream() {
            Ok(stream) => stream.map_err(|e| HttpError::Network(e.to_string())).boxed_local(),
            Err(_) => futures::stream::empty().boxed_local(),
        };
        Ok(HttpResponse { status, headers, body })
    }
}

struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(Delay::from(Duration::from_millis(ms)))
    }
}

struct CryptoRandom;

impl Random for CryptoRandom {
    fn fill(&self, buf: &mut [u8]) {
        // Web Crypto's getRandomValues cannot fail for buffers this small; an all-zero buffer would
        // only weaken jitter and ids, never correctness, so there is nothing better to do on error.
        getrandom::getrandom(buf).unwrap_or_default();
    }
}

/// The ports of this isolate.
pub fn ports() -> Ports {
    Ports { http: Rc::new(FetchHttp), clock: Rc::new(WorkerClock), random: Rc::new(CryptoRandom) }
}
