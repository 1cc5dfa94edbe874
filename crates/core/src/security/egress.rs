//! The egress gate: every outbound request a tool makes passes here, once per redirect hop.
//!
//! In order, a request must: use https (or http where allowed); go to a host on the tool's allowlist
//! that is not an internal address in any spelling; stay within the tool's rate limit and find the
//! host's circuit closed; and carry no credential in its URL, headers or body (the leak scanner, which
//! knows the owner's secret values). Only then is a credential the tool asked for by name added —
//! and only if the host is on that secret's own allowlist. Redirects are followed by hand and each hop
//! is checked again. The answer is read within size and time limits and leak-scanned before the tool
//! sees it. Every decision is written to the audit log.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine;
use futures::StreamExt;
use serde_json::json;
use url::Url;

use super::hosts::is_internal;
use super::{AuditEntry, AuditKind, Decision, Guard, HostPattern, Injection, LeakAction, SecretMeta, SecretValue};
use crate::ports::{BodyStream, HttpRequest, Ports};

/// Redirect hops followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// Consecutive failures (network errors, timeouts, 5xx) of one host that open its circuit.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit refuses requests.
const BREAKER_COOLDOWN_MS: u64 = 30_000;

/// What each tool may reach and the limits of every exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Per tool, the hosts it may reach (`*` for any public host). A tool not listed reaches nothing.
    pub allow: Vec<(String, Vec<HostPattern>)>,
    /// Whether plain `http` is allowed (otherwise https only).
    pub allow_http: bool,
    /// Whether internal (loopback, private, link-local…) destinations are allowed: local testing only.
    pub allow_private: bool,
    /// Bytes of an answer's body read; the rest is cut off (and the cut is reported).
    pub max_body_bytes: usize,
    /// Time allowed for a whole exchange, redirects included.
    pub timeout_ms: u64,
    /// Requests one tool may make per minute.
    pub requests_per_minute: u32,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow: vec![("http_fetch".into(), vec![HostPattern::parse("*", true).expect("`*` is a pattern")])],
            allow_http: false,
            allow_private: false,
            max_body_bytes: 64 * 1024,
            timeout_ms: 15_000,
            requests_per_minute: 60,
        }
    }
}

impl EgressPolicy {
    /// Parses per-tool allowlists: `tool=host,host;tool=host`, e.g. `http_fetch=*.wikipedia.org,api.github.com`.
    pub fn parse_allow(text: &str) -> Result<Vec<(String, Vec<HostPattern>)>, String> {
        let mut allow = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (tool, hosts) =
                entry.split_once('=').ok_or_else(|| format!("`{entry}` is not of the form tool=host,host"))?;
            let tool = tool.trim();
            if tool.is_empty() || !tool.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) {
                return Err(format!("`{tool}` is not a tool name"));
            }
            let hosts = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| HostPattern::parse(h, true))
                .collect::<Result<Vec<_>, _>>()?;
            allow.push((tool.to_string(), hosts));
        }
        Ok(allow)
    }

    fn hosts_of(&self, tool: &str) -> &[HostPattern] {
        self.allow.iter().find(|(name, _)| name == tool).map_or(&[], |(_, hosts)| hosts)
    }
}

/// A text answer that passed the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextResponse {
    /// Status code of the last hop.
    pub status: u16,
    /// Its content type.
    pub content_type: String,
    /// The body (lossy UTF-8), cut at the size limit and with credentials redacted.
    pub text: String,
    /// Whether the body was cut.
    pub truncated: bool,
}

/// Why the gate refused or failed a request; the message is safe to show the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// A policy refused it.
    #[error("blocked: {0}")]
    Blocked(String),
    /// It was allowed but did not complete.
    #[error("{0}")]
    Failed(String),
}

#[derive(Default)]
struct Bucket {
    tokens: f64,
    refilled_at: u64,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: u64,
}

/// The one way out for tools.
pub struct Egress {
    ports: Ports,
    policy: EgressPolicy,
    guard: Rc<Guard>,
    buckets: RefCell<HashMap<String, Bucket>>,
    breakers: RefCell<HashMap<String, Breaker>>,
}

impl Egress {
    /// A gate over these ports, with this policy, reporting to `guard`'s audit log.
    pub fn new(ports: Ports, policy: EgressPolicy, guard: Rc<Guard>) -> Egress {
        Egress { ports, policy, guard, buckets: RefCell::default(), breakers: RefCell::default() }
    }

    /// The gate's policy.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Sends `request` for `tool`, adding the stored `credential` of that name if given, and returns
    /// the text answer. Only text content (HTML, JSON, XML, plain text…) is read.
    pub async fn fetch_text(
        &self,
        tool: &str,
        request: HttpRequest,
        credential: Option<&str>,
    ) -> Result<TextResponse, EgressError> {
        let timeout = self.policy.timeout_ms;
        self.ports
            .with_timeout(timeout, self.follow(tool, request, credential))
            .await
            .unwrap_or_else(|| Err(EgressError::Failed(format!("timed out after {timeout} ms"))))
    }

    async fn follow(
        &self,
        tool: &str,
        mut request: HttpRequest,
        credential: Option<&str>,
    ) -> Result<TextResponse, EgressError> {
        let credential = match credential {
            Some(name) => Some(self.load_credential(tool, &request, name).await?),
            None => None,
        };
        for _ in 0..=MAX_REDIRECTS {
            let started = self.ports.clock.now_ms();
            let url = Url::parse(&request.url)
                .map_err(|e| self.refuse(tool, &request, started, format!("invalid URL: {e}")))?;
            let host = url.host_str().unwrap_or("").to_ascii_lowercase();
            let mut outbound = request.clone();
            self.check(tool, &url, &host, &outbound).map_err(|why| self.refuse(tool, &request, started, why))?;
            if let Some((meta, value)) = &credential {
                if !meta.hosts.iter().any(|pattern| pattern.matches(&host)) {
                    let why = format!("secret `{}` may not be sent to {host} (its hosts: {})", meta.name, hosts(meta));
                    return Err(self.refuse(tool, &request, started, why));
                }
                inject(&mut outbound, &meta.inject, value);
            }
            let response = match self.ports.http.send(outbound).await {
                Ok(response) => response,
                Err(error) => {
                    self.record_failure(&host);
                    return Err(self.failed(tool, &request, started, format!("fetch failed: {error}")));
                }
            };
            self.record_outcome(&host, response.status < 500);
            if (300..400).contains(&response.status) && response.header("location").is_some() {
                let location = response.header("location").unwrap_or_default().to_string();
                self.allowed(tool, &request, started, format!("HTTP {} to {location}", response.status));
                let next = url.join(&location).map_err(|e| {
                    EgressError::Failed(format!("bad redirect target `{}`: {e}", self.guard.redact(&location).text))
                })?;
                let see_other = response.status == 303
                    || (response.status != 307 && response.status != 308 && request.method == "POST");
                request = HttpRequest { url: next.to_string(), ..request };
                if see_other {
                    request.method = "GET".into();
                    request.body.clear();
                }
                continue;
            }
            let content_type = response.header("content-type").unwrap_or("").to_string();
            if !is_text(&content_type) {
                self.allowed(tool, &request, started, format!("HTTP {}, {content_type} not read", response.status));
                return Err(EgressError::Failed(format!(
                    "HTTP {}: `{content_type}` content is not text",
                    response.status
                )));
            }
            let (body, truncated) = match self.read_limited(response.body).await {
                Ok(read) => read,
                Err(why) => {
                    self.record_failure(&host);
                    return Err(self.failed(tool, &request, started, why));
                }
            };
            let redacted = self.guard.redact(&String::from_utf8_lossy(&body));
            let mut outcome = format!("HTTP {}, {} bytes", response.status, body.len());
            if !redacted.findings.is_empty() {
                outcome.push_str(&format!(", {} credential(s) redacted from the answer", redacted.findings.len()));
            }
            self.allowed(tool, &request, started, outcome);
            return Ok(TextResponse { status: response.status, content_type, text: redacted.text, truncated });
        }
        Err(EgressError::Failed(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Every check a hop must pass before it is sent, in order; the reason for the first that fails.
    fn check(&self, tool: &str, url: &Url, host: &str, request: &HttpRequest) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            "http" => return Err("plain http is not allowed; use https".into()),
            other => return Err(format!("only http(s) URLs can be fetched, not `{other}`")),
        }
        if !self.policy.allow_private && is_internal(url) {
            return Err(format!("{host} is a private, loopback or link-local destination"));
        }
        let allowed = self.policy.hosts_of(tool);
        if !allowed.iter().any(|pattern| pattern.matches(host)) {
            return Err(if allowed.is_empty() {
                format!("the tool `{tool}` may not make outbound requests")
            } else {
                format!("{host} is not on the allowlist of `{tool}`")
            });
        }
        let verdict = self.guard.scanner().check_outbound(&request.url, &request.headers, &request.body);
        let leaks: Vec<String> = verdict
            .hits
            .iter()
            .filter(|hit| hit.action >= LeakAction::Redact)
            .map(|hit| format!("{} in the {}", hit.rule, part_name(&hit.part)))
            .collect();
        if !leaks.is_empty() {
            return Err(format!("the request carries a credential ({})", leaks.join(", ")));
        }
        if self.circuit_open(host) {
            return Err(format!("{host} failed repeatedly; not trying again for a while"));
        }
        self.take_token(tool)
    }

    async fn load_credential(
        &self,
        tool: &str,
        request: &HttpRequest,
        name: &str,
    ) -> Result<(SecretMeta, SecretValue), EgressError> {
        let started = self.ports.clock.now_ms();
        match self.guard.credential(name).await {
            Some(Ok(credential)) => Ok(credential),
            Some(Err(error)) => Err(self.refuse(tool, request, started, format!("credential `{name}`: {error}"))),
            None => Err(self.refuse(tool, request, started, format!("no stored secrets; `{name}` is unknown"))),
        }
    }

    async fn read_limited(&self, mut body: BodyStream) -> Result<(Vec<u8>, bool), String> {
        let limit = self.policy.max_body_bytes;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.map_err(|e| format!("reading the body failed: {e}"))?);
            if out.len() > limit {
                out.truncate(limit);
                return Ok((out, true));
            }
        }
        Ok((out, false))
    }

    /// Takes one request from the tool's per-minute bucket.
    fn take_token(&self, tool: &str) -> Result<(), String> {
        let now = self.ports.clock.now_ms();
        let capacity = f64::from(self.policy.requests_per_minute);
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets.entry(tool.to_string()).or_insert(Bucket { tokens: capacity, refilled_at: now });
        let elapsed = now.saturating_sub(bucket.refilled_at) as f64;
        bucket.tokens = (bucket.tokens + elapsed * capacity / 60_000.0).min(capacity);
        bucket.refilled_at = now;
        if bucket.tokens < 1.0 {
            return Err(format!("`{tool}` may make at most {} requests a minute", self.policy.requests_per_minute));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    fn circuit_open(&self, host: &str) -> bool {
        self.breakers.borrow().get(host).is_some_and(|b| b.open_until > self.ports.clock.now_ms())
    }

    fn record_failure(&self, host: &str) {
        self.record_outcome(host, false);
    }

    fn record_outcome(&self, host: &str, success: bool) {
        let mut breakers = self.breakers.borrow_mut();
        let breaker = breakers.entry(host.to_string()).or_default();
        if success {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            if breaker.failures >= BREAKER_THRESHOLD {
                breaker.open_until = self.ports.clock.now_ms() + BREAKER_COOLDOWN_MS;
            }
        }
    }

    fn audit(&self, tool: &str, request: &HttpRequest, started: u64, decision: Decision, outcome: &str) {
        let scanner = self.guard.scanner();
        self.guard.audit().record(AuditEntry {
            seq: 0,
            at_ms: started,
            principal: String::new(),
            session: None,
            kind: AuditKind::Egress,
            tool: tool.to_string(),
            detail: json!({"method": request.method, "url": scanner.redact(&request.url).text}),
            decision,
            outcome: scanner.redact(outcome).text,
            duration_ms: self.ports.clock.now_ms().saturating_sub(started),
        });
    }

    fn allowed(&self, tool: &str, request: &HttpRequest, started: u64, outcome: String) {
        self.audit(tool, request, started, Decision::Allowed, &outcome);
    }

    fn refuse(&self, tool: &str, request: &HttpRequest, started: u64, why: String) -> EgressError {
        let why = self.guard.redact(&why).text;
        self.audit(tool, request, started, Decision::Blocked, &why);
        EgressError::Blocked(why)
    }

    fn failed(&self, tool: &str, request: &HttpRequest, started: u64, why: String) -> EgressError {
        let why = self.guard.redact(&why).text;
        self.audit(tool, request, started, Decision::Allowed, &why);
        EgressError::Failed(why)
    }
}

fn hosts(meta: &SecretMeta) -> String {
    meta.hosts.iter().map(HostPattern::as_str).collect::<Vec<_>>().join(", ")
}

fn part_name(part: &super::RequestPart) -> String {
    match part {
        super::RequestPart::Url => "URL".into(),
        super::RequestPart::Header(name) => format!("{name} header"),
        super::RequestPart::Body => "body".into(),
    }
}

/// Puts a credential into a request in the form its secret says.
fn inject(request: &mut HttpRequest, form: &Injection, value: &SecretValue) {
    let set_header = |request: &mut HttpRequest, name: &str, value: String| {
        request.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        request.headers.push((name.to_string(), value));
    };
    match form {
        Injection::Bearer => set_header(request, "authorization", format!("Bearer {}", value.expose())),
        Injection::Header { name } => set_header(request, name, value.expose().to_string()),
        Injection::Basic { username } => {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", value.expose()));
            set_header(request, "authorization", format!("Basic {pair}"));
        }
        Injection::Query { param } => {
            if let Ok(mut url) = Url::parse(&request.url) {
                let kept: Vec<(String, String)> =
                    url.query_pairs().filter(|(k, _)| k != param.as_str()).map(|(k, v)| (k.into(), v.into())).collect();
                url.query_pairs_mut().clear().extend_pairs(kept).append_pair(param, value.expose());
                request.url = url.to_string();
            }
        }
    }
}

fn is_text(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("json")
        || essence.ends_with("+xml")
        || essence == "application/xml"
        || essence == "application/javascript"
}

#[cfg(test)]
mod tests;
