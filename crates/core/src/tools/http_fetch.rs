//! `http_fetch`: GET or POST a URL and read the text answer — through the egress gate, which checks
//! the destination, limits and credentials at every redirect hop.

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{string_arg, Tool, ToolError};
use crate::ports::HttpRequest;
use crate::security::{Egress, Risk, Source};

/// The tool's name, which is also its name in egress allowlists (routine pre-checks and deliveries go
/// out under it too).
pub const HTTP_FETCH: &str = "http_fetch";

/// Fetches web pages and APIs for the model.
pub struct HttpFetch {
    egress: Rc<Egress>,
}

impl HttpFetch {
    /// The tool over this egress gate.
    pub fn new(egress: Rc<Egress>) -> Self {
        Self { egress }
    }
}

#[async_trait(?Send)]
impl Tool for HttpFetch {
    fn name(&self) -> &'static str {
        HTTP_FETCH
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
                "body": {"description": "Request body for POST: a string, or a JSON object sent as JSON"},
                "credential": {
                    "type": "string",
                    "description": "Name of a stored secret to authenticate with (added only for the hosts it is allowed for; you never see its value)"
                }
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
        let credential = match arguments.get("credential") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.as_str()),
            Some(_) => return Err(ToolError::new("`credential` must be the name of a stored secret")),
        };
        let mut headers = vec![("user-agent".to_string(), "edgeclaw/0.1 (+http_fetch)".to_string())];
        if let Some(ct) = content_type {
            headers.push(("content-type".into(), ct.into()));
        }
        let request = HttpRequest { method, url, headers, body };
        let answer =
            self.egress.fetch_text(HTTP_FETCH, request, credential).await.map_err(|e| ToolError::new(e.to_string()))?;
        let mut out = format!("HTTP {} ({})\n\n{}", answer.status, answer.content_type, answer.text);
        if answer.truncated {
            out.push_str(&format!("\n\n[truncated after {} bytes]", self.egress.policy().max_body_bytes));
        }
        Ok(out)
    }

    fn provenance(&self) -> Option<Source> {
        Some(Source::Web)
    }

    /// Reading a page is medium risk; sending data (POST) or spending a credential is high.
    fn risk(&self, arguments: &Value) -> Risk {
        let posts = arguments.get("method").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        if posts || arguments.get("credential").is_some_and(|c| !c.is_null()) {
            Risk::High
        } else {
            Risk::Medium
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use crate::security::{EgressPolicy, Guard};
    use futures::executor::block_on;

    fn tool(http: Rc<ScriptedHttp>) -> HttpFetch {
        HttpFetch::new(Rc::new(Egress::new(ports(http).0, EgressPolicy::default(), Rc::new(Guard::default()))))
    }

    fn text(status: u16, body: &str, content_type: &str) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: vec![Ok(body.as_bytes().to_vec())],
        }
    }

    #[test]
    fn answers_come_back_with_their_status_and_type_and_refusals_as_errors() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(text(200, "hello", "text/plain")));
        let fetch = tool(http.clone());
        assert_eq!(
            block_on(fetch.execute(json!({"url": "https://example.com/"}))).unwrap(),
            "HTTP 200 (text/plain)\n\nhello"
        );
        let err = block_on(fetch.execute(json!({"url": "https://127.0.0.1/"}))).unwrap_err();
        assert!(err.0.starts_with("blocked: "), "{err}");
        assert_eq!(http.requests.borrow().len(), 1);
    }

    #[test]
    fn post_sends_json_bodies_and_bad_arguments_are_refused() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(text(201, "{}", "application/json")));
        let fetch = tool(http.clone());
        block_on(fetch.execute(json!({"url": "https://api.example.com/x", "method": "post", "body": {"a": 1}})))
            .unwrap();
        let sent = &http.requests.borrow()[0];
        assert_eq!((sent.method.as_str(), sent.body.as_slice()), ("POST", br#"{"a":1}"#.as_slice()));
        assert!(block_on(fetch.execute(json!({"url": "https://x.com", "method": "DELETE"}))).is_err());
        assert!(block_on(fetch.execute(json!({"url": "https://x.com", "body": "b"}))).is_err());
        assert!(block_on(fetch.execute(json!({"url": "https://x.com", "credential": 5}))).is_err());
    }
}
