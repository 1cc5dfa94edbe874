//! `http_fetch`: GET or POST a URL and read the text answer, within size and time limits, refusing
//! private network destinations and re-checking every redirect hop.

use std::net::IpAddr;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};
use url::{Host, Url};

use super::{string_arg, Tool, ToolError};
use crate::ports::{HttpRequest, Ports};

/// Redirect hops followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Limits applied to every fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Bytes of body read; the rest is cut off (and the cut is reported).
    pub max_body_bytes: usize,
    /// Time allowed for the whole exchange.
    pub timeout_ms: u64,
    /// Whether loopback, private and link-local destinations are allowed (local testing only).
    pub allow_private: bool,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self { max_body_bytes: 64 * 1024, timeout_ms: 15_000, allow_private: false }
    }
}

/// Fetches web pages and APIs for the model.
pub struct HttpFetch {
    ports: Ports,
    limits: FetchLimits,
}

impl HttpFetch {
    /// The tool over these ports and limits.
    pub fn new(ports: Ports, limits: FetchLimits) -> Self {
        Self { ports, limits }
    }

    fn check_destination(&self, url: &Url) -> Result<(), ToolError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::new(format!("only http and https URLs can be fetched, not `{}`", url.scheme())));
        }
        if self.limits.allow_private {
            return Ok(());
        }
        let private = match url.host() {
            Some(Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name.ends_with(".internal")
                    || name.ends_with(".local")
            }
            None => true,
        };
        if private {
            return Err(ToolError::new(format!(
                "refusing to fetch `{url}`: private, loopback or link-local destination"
            )));
        }
        Ok(())
    }

    async fn fetch(&self, mut request: HttpRequest) -> Result<String, ToolError> {
        for _ in 0..=MAX_REDIRECTS {
            let url =
                Url::parse(&request.url).map_err(|e| ToolError::new(format!("invalid URL `{}`: {e}", request.url)))?;
            self.check_destination(&url)?;
            let response = self
                .ports
                .http
                .send(request.clone())
                .await
                .map_err(|e| ToolError::new(format!("fetch failed: {e}")))?;
            if (300..400).contains(&response.status) {
                let location =
                    response.header("location").ok_or_else(|| ToolError::new("redirect without a Location header"))?;
                let next =
                    url.join(location).map_err(|e| ToolError::new(format!("bad redirect target `{location}`: {e}")))?;
                request = HttpRequest { url: next.to_string(), ..request };
                if response.status == 303
                    || (response.status != 307 && response.status != 308 && request.method == "POST")
                {
                    request.method = "GET".into();
                    request.body.clear();
                }
                continue;
            }
            let content_type = response.header("content-type").unwrap_or("").to_string();
            if !is_text(&content_type) {
                return Err(ToolError::new(format!("HTTP {}: `{content_type}` content is not text", response.status)));
            }
            let (body, truncated) = self.read_limited(response.body).await?;
            let mut out = format!("HTTP {} ({content_type})\n\n{}", response.status, String::from_utf8_lossy(&body));
            if truncated {
                out.push_str(&format!("\n\n[truncated after {} bytes]", self.limits.max_body_bytes));
            }
            return Ok(out);
        }
        Err(ToolError::new(format!("more than {MAX_REDIRECTS} redirects")))
    }

    async fn read_limited(&self, mut body: crate::ports::BodyStream) -> Result<(Vec<u8>, bool), ToolError> {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.map_err(|e| ToolError::new(format!("reading the body failed: {e}")))?);
            if out.len() > self.limits.max_body_bytes {
                out.truncate(self.limits.max_body_bytes);
                return Ok((out, true));
            }
        }
        Ok((out, false))
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

/// Loopback, private, link-local, CGNAT, unspecified, multicast and metadata addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[async_trait(?Send)]
impl Tool for HttpFetch {
    fn name(&self) -> &'static str {
        "http_fetch"
    }

    fn description(&self) -> &'static str {
        "Fetch a URL over HTTP(S) and return the status and the text body (HTML, JSON, plain text; long bodies are \
         cut). GET by default; give `body` (a string or a JSON object) with method POST to send data."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "Absolute http(s) URL"},
                "method": {"type": "string", "enum": ["GET", "POST"], "description": "Default GET"},
                "body": {"description": "Request body for POST: a string, or a JSON object sent as JSON"}
            },
            "required": ["url"]
        })
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let url = string_arg(&arguments, "url")?.trim().to_string();
        let method = arguments.get("method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
        let (body, content_type) = match arguments.get("body") {
            None | Some(Value::Null) => (Vec::new(), None),
            Some(Value::String(s)) => (s.clone().into_bytes(), Some("text/plain; charset=utf-8")),
            Some(other) => (other.to_string().into_bytes(), Some("application/json")),
        };
        if method != "GET" && method != "POST" {
            return Err(ToolError::new(format!("method `{method}` is not supported; use GET or POST")));
        }
        if method == "GET" && !body.is_empty() {
            return Err(ToolError::new("a body needs method POST"));
        }
        let mut headers = vec![("user-agent".to_string(), "edgeclaw/0.1 (+http_fetch)".to_string())];
        if let Some(ct) = content_type {
            headers.push(("content-type".into(), ct.into()));
        }
        let request = HttpRequest { method, url, headers, body };
        let timeout = self.limits.timeout_ms;
        self.ports
            .with_timeout(timeout, self.fetch(request))
            .await
            .unwrap_or_else(|| Err(ToolError::new(format!("timed out after {timeout} ms"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use futures::executor::block_on;
    use std::rc::Rc;

    fn tool(http: Rc<ScriptedHttp>, limits: FetchLimits) -> HttpFetch {
        HttpFetch::new(ports(http).0, limits)
    }

    fn text(status: u16, body: &str, headers: &[(&str, &str)]) -> Canned {
        Canned {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            chunks: vec![Ok(body.as_bytes().to_vec())],
        }
    }

    #[test]
    fn private_destinations_are_refused_in_every_spelling() {
        let http = Rc::new(ScriptedHttp::default());
        let fetch = tool(http.clone(), FetchLimits::default());
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://localhost:8080/",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://192.168.1.1/",
            "http://metadata.google.internal/",
        ] {
            let err = block_on(fetch.execute(json!({ "url": url }))).unwrap_err();
            assert!(err.0.contains("refusing"), "{url}: {err}");
        }
        assert!(http.requests.borrow().is_empty());
        assert!(block_on(fetch.execute(json!({"url": "file:///etc/passwd"}))).unwrap_err().0.contains("only http"));
    }

    #[test]
    fn redirects_are_followed_and_each_hop_rechecked() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([
            Ok(text(302, "", &[("location", "/next")])),
            Ok(text(200, "hello", &[("content-type", "text/plain")])),
            Ok(text(301, "", &[("location", "http://10.0.0.5/secret")])),
        ]);
        let fetch = tool(http.clone(), FetchLimits::default());
        assert_eq!(
            block_on(fetch.execute(json!({"url": "https://example.com/start"}))).unwrap(),
            "HTTP 200 (text/plain)\n\nhello"
        );
        assert_eq!(http.requests.borrow()[1].url, "https://example.com/next");
        let err = block_on(fetch.execute(json!({"url": "https://example.com/evil"}))).unwrap_err();
        assert!(err.0.contains("refusing"), "{err}");
    }

    #[test]
    fn long_bodies_are_cut_and_binary_refused() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().extend([
            Ok(text(200, &"x".repeat(100), &[("content-type", "text/html")])),
            Ok(text(200, "\u{89}PNG", &[("content-type", "image/png")])),
        ]);
        let fetch = tool(http, FetchLimits { max_body_bytes: 10, ..FetchLimits::default() });
        let out = block_on(fetch.execute(json!({"url": "https://example.com/"}))).unwrap();
        assert!(out.ends_with("xxxxxxxxxx\n\n[truncated after 10 bytes]"), "{out}");
        assert!(block_on(fetch.execute(json!({"url": "https://example.com/p.png"})))
            .unwrap_err()
            .0
            .contains("not text"));
    }

    #[test]
    fn post_sends_json_bodies() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(text(201, "{}", &[("content-type", "application/json")])));
        let fetch = tool(http.clone(), FetchLimits::default());
        block_on(fetch.execute(json!({"url": "https://api.example.com/x", "method": "post", "body": {"a": 1}})))
            .unwrap();
        let sent = &http.requests.borrow()[0];
        assert_eq!((sent.method.as_str(), sent.body.as_slice()), ("POST", br#"{"a":1}"#.as_slice()));
        assert!(block_on(fetch.execute(json!({"url": "https://x.com", "method": "DELETE"}))).is_err());
    }
}
