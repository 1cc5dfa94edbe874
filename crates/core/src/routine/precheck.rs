//! Pre-checks: a cheap test made before a routine's turn so that a run with nothing to do costs no
//! model call — fetch a page and go on only if it changed since the last run, or if it matches a pattern.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::trigger::build_regex;
use crate::ports::HttpRequest;
use crate::security::Egress;
use crate::tools::HTTP_FETCH;

/// A test made before a routine's turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Precheck {
    /// Run only when the page at `url` differs from what the last run saw.
    Changed {
        /// An http(s) URL.
        url: String,
    },
    /// Run only when the page at `url` matches `pattern` (a regular expression).
    Matches {
        /// An http(s) URL.
        url: String,
        /// The regular expression.
        pattern: String,
    },
}

/// What a pre-check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run the turn; the page goes to the model as external data.
    Run {
        /// The fetched page's text.
        page: String,
        /// Its fingerprint, for the next `changed` check.
        fingerprint: String,
    },
    /// Nothing to do.
    Skip {
        /// Why, for the run history.
        reason: String,
    },
}

impl Precheck {
    /// The page it looks at.
    pub fn url(&self) -> &str {
        match self {
            Precheck::Changed { url } | Precheck::Matches { url, .. } => url,
        }
    }

    /// Checks the URL and the pattern.
    pub fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(self.url()).map_err(|e| format!("precheck url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("precheck url must be http(s)".into());
        }
        if let Precheck::Matches { pattern, .. } = self {
            build_regex(pattern).map_err(|e| format!("precheck pattern: {e}"))?;
        }
        Ok(())
    }

    /// Fetches the page through the egress gate (with `http_fetch`'s allowlist) and decides; `last` is
    /// the fingerprint the previous run saw.
    pub async fn evaluate(&self, egress: &Egress, last: Option<&str>) -> Result<Verdict, String> {
        let request = HttpRequest { method: "GET".into(), url: self.url().into(), headers: vec![], body: vec![] };
        let answer = egress.fetch_text(HTTP_FETCH, request, None).await.map_err(|e| e.to_string())?;
        let page = answer.text;
        let fingerprint: String = Sha256::digest(page.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let skip = match self {
            Precheck::Changed { .. } => (last == Some(fingerprint.as_str())).then_some("the page has not changed"),
            Precheck::Matches { pattern, .. } => {
                let regex = build_regex(pattern).map_err(|e| e.to_string())?;
                (!regex.is_match(&page)).then_some("the page does not match the pattern")
            }
        };
        Ok(match skip {
            Some(reason) => Verdict::Skip { reason: reason.into() },
            None => Verdict::Run { page, fingerprint },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use crate::security::{EgressPolicy, Guard};
    use futures::executor::block_on;
    use std::rc::Rc;

    fn fetch(pages: &[&str]) -> Egress {
        let http = Rc::new(ScriptedHttp::default());
        for page in pages {
            let mut canned = Canned::json(200, &serde_json::json!(page));
            canned.headers = vec![("content-type".into(), "text/plain".into())];
            http.responses.borrow_mut().push_back(Ok(canned));
        }
        Egress::new(ports(http).0, EgressPolicy::default(), Rc::new(Guard::default()))
    }

    #[test]
    fn changed_runs_on_the_first_look_and_on_each_change_only() {
        let check = Precheck::Changed { url: "https://shop.test/price".into() };
        let f = fetch(&["9.99", "9.99", "8.49"]);
        let Verdict::Run { fingerprint, page } = block_on(check.evaluate(&f, None)).unwrap() else { panic!() };
        assert!(page.contains("9.99"));
        let same = block_on(check.evaluate(&f, Some(&fingerprint))).unwrap();
        assert_eq!(same, Verdict::Skip { reason: "the page has not changed".into() });
        assert!(matches!(block_on(check.evaluate(&f, Some(&fingerprint))).unwrap(), Verdict::Run { .. }));
    }

    #[test]
    fn matches_runs_only_when_the_pattern_is_found() {
        let check = Precheck::Matches { url: "https://status.test/".into(), pattern: "(?i)outage".into() };
        let f = fetch(&["all good", "Major OUTAGE in eu-west"]);
        assert!(matches!(block_on(check.evaluate(&f, None)).unwrap(), Verdict::Skip { .. }));
        assert!(matches!(block_on(check.evaluate(&f, None)).unwrap(), Verdict::Run { .. }));
    }

    #[test]
    fn bad_prechecks_are_refused() {
        assert!(Precheck::Changed { url: "ftp://x".into() }.validate().is_err());
        assert!(Precheck::Matches { url: "https://x.test".into(), pattern: "(".into() }.validate().is_err());
        let private = Precheck::Changed { url: "http://127.0.0.1/".into() };
        assert!(block_on(private.evaluate(&fetch(&[]), None)).is_err());
    }
}
