//! Leak detection: finds credentials in text before it leaves the agent — in replies, tool output and
//! outbound requests — and says whether to warn, redact or block.
//!
//! Findings come from two sources: [`builtin_rules`], regexes for well-known credential formats, and the
//! exact values of the vault's own secrets, matched all at once by one Aho-Corasick automaton so that a
//! scan costs the same with a thousand secrets as with one. Overlapping findings merge into one, which
//! takes the strictest action among them.
//!
//! This crate builds `regex` without its literal prefilters and DFAs (to keep the wasm small), so each
//! rule search is a full PikeVM pass over the text. Built-in rules therefore name literal anchors that
//! every match contains, and a rule only runs on text in which one of its anchors occurs.

use std::{cmp::Reverse, fmt, fmt::Write as _, sync::OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// Known-secret values shorter than this many characters are not matched: they would hit ordinary words.
const MIN_SECRET_CHARS: usize = 8;

/// The capture group that, in a rule pattern, marks the part of a match that is the secret itself; the
/// rest of the match (a label, a header name, a boundary character) is context and is not redacted.
const SECRET_GROUP: &str = "secret";

/// Bytes a compiled rule may take, so that a short custom pattern cannot expand into a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What to do with text that matches a rule. Ordered from mildest to strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakAction {
    /// Report the finding and leave the text as it is.
    Warn,
    /// Replace the matched text with a `[REDACTED:<rule>]` marker.
    Redact,
    /// Redact, and refuse to let the text or request leave at all.
    Block,
}

/// Why a leak scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    /// A rule's pattern is not a valid regex, or compiles too large.
    #[error("leak rule {rule}: invalid pattern: {message}")]
    Pattern {
        /// The rule's id.
        rule: String,
        /// What the regex compiler said.
        message: String,
    },
    /// The known secrets could not be compiled into one automaton.
    #[error("known secrets could not be indexed: {0}")]
    Secrets(String),
}

/// One credential format: an id, a regex, and what to do when it matches.
#[derive(Debug, Clone)]
pub struct Rule {
    id: String,
    description: String,
    action: LeakAction,
    pattern: Regex,
    secret_group: Option<usize>,
    /// Literals (ASCII, any case) of which every match contains one; none means the rule always runs.
    anchors: &'static [&'static str],
    /// A further test of the secret part, for what a regex without look-around cannot say.
    accept: Option<fn(&str) -> bool>,
}

impl Rule {
    /// A rule from a regex. When the pattern has a capture group named `secret`, only that part of a match
    /// is reported and redacted.
    pub fn new(
        id: impl Into<String>,
        description: impl Into<String>,
        pattern: &str,
        action: LeakAction,
    ) -> Result<Self, LeakError> {
        let id = id.into();
        let pattern = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| LeakError::Pattern { rule: id.clone(), message: e.to_string() })?;
        let secret_group = pattern.capture_names().position(|name| name == Some(SECRET_GROUP));
        Ok(Self { id, description: description.into(), action, pattern, secret_group, anchors: &[], accept: None })
    }

    /// The same rule with another action, e.g. to make a built-in rule stricter or milder.
    pub fn with_action(mut self, action: LeakAction) -> Self {
        self.action = action;
        self
    }

    /// The rule's id, as it appears in findings and redaction markers.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the rule looks for, in words.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// What to do when the rule matches.
    pub fn action(&self) -> LeakAction {
        self.action
    }

    /// The rule's regex, as written.
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    /// Byte ranges of the secrets this rule finds in `text`, in order.
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut locations = self.pattern.capture_locations();
        let mut at = 0;
        while let Some(found) = self.pattern.captures_read_at(&mut locations, text, at) {
            let (start, end) =
                self.secret_group.and_then(|group| locations.get(group)).unwrap_or((found.start(), found.end()));
            if start < end && self.accept.is_none_or(|accept| accept(&text[start..end])) {
                spans.push((start, end));
            }
            // Resume after the secret, not after the whole match: a boundary character the pattern consumed
            // behind the secret may be the one that precedes the next secret.
            at = if end > found.start() {
                end
            } else {
                match text[found.start()..].chars().next() {
                    Some(c) => found.start() + c.len_utf8(),
                    None => break,
                }
            };
        }
        spans
    }
}

/// The built-in rules for common credential formats, most specific first (on overlap, the first of equally
/// strict rules names the finding).
pub fn builtin_rules() -> Vec<Rule> {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(compile_builtin_rules).clone()
}

fn compile_builtin_rules() -> Vec<Rule> {
    use LeakAction::{Block, Redact};
    vec![
        builtin(
            "private_key",
            "PEM private key block (PKCS#1, PKCS#8, SEC1, encrypted)",
            Block,
            &armored("(?:(?:RSA|DSA|EC|ENCRYPTED) )?PRIVATE KEY"),
            &["-----begin"],
        ),
        builtin(
            "openssh_private_key",
            "OpenSSH private key block",
            Block,
            &armored("OPENSSH PRIVATE KEY"),
            &["-----begin openssh"],
        ),
        builtin(
            "pgp_private_key",
            "PGP private key block",
            Block,
            &armored("PGP PRIVATE KEY BLOCK"),
            &["-----begin pgp"],
        ),
        builtin(
            "anthropic_api_key",
            "Anthropic API, admin or OAuth key (sk-ant-…)",
            Block,
            r"\bsk-ant-[a-z]{3,8}[0-9]{2}-[A-Za-z0-9_-]{32,}",
            &["sk-ant-"],
        ),
        builtin(
            "openai_api_key",
            "OpenAI API key: project, service-account or admin key, or a legacy key",
            Block,
            // Project-era keys carry "T3BlbkFJ" (base64 of "OpenAI") in the middle; legacy keys are 48
            // alphanumerics.
            r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}|[A-Za-z0-9]{48}\b)",
            &["sk-"],
        ),
        builtin(
            "aws_access_key_id",
            "AWS access key id (long-term AKIA or temporary ASIA)",
            Redact,
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
            &["akia", "asia"],
        ),
        builtin(
            "aws_secret_access_key",
            "AWS secret access key, when labelled as one",
            Block,
            r#"(?i)secret[_-]?access[_-]?key["']?\s*(?::|=>?)\s*["']?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            &["secret"],
        ),
        builtin(
            "github_token",
            "GitHub personal, OAuth, app or refresh token, or fine-grained personal access token",
            Block,
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36}\b|github_pat_[A-Za-z0-9]{20,}_[A-Za-z0-9]{40,})",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        ),
        builtin(
            "slack_token",
            "Slack bot, user, app, refresh or session token (xox…)",
            Block,
            r"\bxox[baprs]-(?:[0-9]+-){1,4}[A-Za-z0-9]{16,}",
            &["xox"],
        ),
        builtin(
            "slack_webhook_url",
            "Slack incoming-webhook or workflow-trigger URL",
            Block,
            r"\bhttps?://hooks\.slack\.com/(?:services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}|(?:workflows|triggers)/T[A-Z0-9]{6,}/[A-Za-z0-9/]{20,})",
            &["hooks.slack.com"],
        ),
        builtin(
            "stripe_secret_key",
            "Stripe live secret or restricted key",
            Block,
            r"\b[rs]k_live_[A-Za-z0-9]{24,}",
            &["_live_"],
        ),
        builtin(
            "google_api_key",
            "Google API key (AIza…)",
            Redact,
            r"\b(?P<secret>AIza[A-Za-z0-9_-]{35})(?:[^A-Za-z0-9_-]|$)",
            &["aiza"],
        ),
        builtin(
            "telegram_bot_token",
            "Telegram bot token (bot id, colon, 35-character secret)",
            Block,
            // Bot API URLs put the token right after "/bot".
            r"(?:^|[^A-Za-z0-9_])(?:bot)?(?P<secret>[0-9]{6,12}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)",
            &[":aa"],
        ),
        builtin(
            "jwt",
            "JSON Web Token (signed: header, payload and signature)",
            Redact,
            r"\beyJ[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}",
            &["eyj"],
        ),
        Rule {
            // Placeholders such as `YOUR_ACCESS_TOKEN_HERE` have no digits; real tokens have both.
            accept: Some(has_letters_and_digits),
            ..builtin(
                "bearer_token",
                "Authorization header with a bearer token",
                Redact,
                r#"(?i)\bauthorization["']?\s*[:=]\s*["']?bearer\s+(?P<secret>[A-Za-z0-9_.~+/=-]{20,})"#,
                &["bearer"],
            )
        },
    ]
}

fn builtin(id: &str, description: &str, action: LeakAction, pattern: &str, anchors: &'static [&'static str]) -> Rule {
    let rule = Rule::new(id, description, pattern, action).expect("built-in leak patterns compile");
    Rule { anchors, ..rule }
}

/// A PEM-style armored block: the BEGIN line, the body and the END line; when the END line is missing
/// (truncated output), the BEGIN line and the base64 lines after it. Newlines may be JSON-escaped.
fn armored(label: &str) -> String {
    format!(
        r"-----BEGIN {label}-----(?:[A-Za-z0-9+/=\s\\:,.()-]*?-----END {label}-----|(?:(?:\s|\\[rn])*[A-Za-z0-9+/=]{{16,}})*)"
    )
}

fn has_letters_and_digits(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit()) && token.bytes().any(|b| b.is_ascii_alphabetic())
}

/// One place in a text where a credential was found. It holds the rule and the byte range only, never the
/// matched text, so that findings can be logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The id of the rule that matched, or `secret:<name>` for a known secret.
    pub rule: String,
    /// What to do about it.
    pub action: LeakAction,
    /// Byte offset where the credential starts.
    pub start: usize,
    /// Byte offset just past its end.
    pub end: usize,
}

/// A text with its credentials replaced by `[REDACTED:<rule>]` markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The text, with every `Redact` and `Block` finding replaced; `Warn` findings are left in place.
    pub text: String,
    /// Every finding, at its offsets in the original text.
    pub findings: Vec<Finding>,
    /// Whether any finding's action is `Block`: the text should not leave at all.
    pub blocked: bool,
}

/// Where in an outbound request a credential was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestPart {
    /// The URL (as written, or percent-decoded).
    Url,
    /// The header of this name.
    Header(String),
    /// The body.
    Body,
}

/// One rule that matched somewhere in an outbound request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The rule id, or `secret:<name>`.
    pub rule: String,
    /// The rule's action.
    pub action: LeakAction,
    /// Where it matched.
    pub part: RequestPart,
}

/// The egress gate's answer for one outbound request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether a `Block` rule matched anywhere: the request must not be sent.
    pub blocked: bool,
    /// Each rule that matched, once per part of the request.
    pub hits: Vec<Hit>,
}

impl Verdict {
    fn record(&mut self, found: Vec<Candidate>, part: &RequestPart) {
        for Candidate { finding, .. } in found {
            self.blocked |= finding.action == LeakAction::Block;
            if !self.hits.iter().any(|hit| hit.rule == finding.rule && hit.part == *part) {
                self.hits.push(Hit { rule: finding.rule, action: finding.action, part: part.clone() });
            }
        }
    }
}

/// Finds credentials in text and outbound requests: built-in or custom rules, plus the exact values of
/// known secrets.
pub struct LeakScanner {
    rules: Vec<Rule>,
    /// Every anchor of every rule; `anchor_rule[pattern]` is the index of the rule it belongs to.
    anchors: Option<AhoCorasick>,
    anchor_rule: Vec<usize>,
    /// Every known secret, in each form it may take in text; `secret_rule[pattern]` is `secret:<name>`.
    secrets: Option<AhoCorasick>,
    secret_rule: Vec<String>,
    secret_action: LeakAction,
}

impl LeakScanner {
    /// A scanner for `rules` (usually [`builtin_rules`]) and the known secrets, given as (name, value).
    /// Values are matched trimmed, as written, JSON-escaped and percent-encoded; values shorter than
    /// 8 characters are ignored. Known-secret findings are redacted unless
    /// [`with_secret_action`](Self::with_secret_action) says otherwise.
    pub fn new(rules: Vec<Rule>, known_secrets: &[(&str, &str)]) -> Result<Self, LeakError> {
        let mut anchor_patterns = Vec::new();
        let mut anchor_rule = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            anchor_patterns.extend_from_slice(rule.anchors);
            anchor_rule.extend(rule.anchors.iter().map(|_| index));
        }
        let anchors = if anchor_patterns.is_empty() {
            None
        } else {
            // Anchors come only from the built-in rules: a handful of short literals.
            let automaton = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(&anchor_patterns)
                .expect("built-in rule anchors compile");
            Some(automaton)
        };

        let mut secret_patterns = Vec::new();
        let mut secret_rule = Vec::new();
        for (name, value) in known_secrets {
            let value = value.trim();
            if value.chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            for form in written_forms(value) {
                secret_patterns.push(form);
                secret_rule.push(format!("secret:{name}"));
            }
        }
        let secrets = if secret_patterns.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&secret_patterns)
                .map_err(|e| LeakError::Secrets(e.to_string()))?;
            Some(automaton)
        };

        Ok(Self { rules, anchors, anchor_rule, secrets, secret_rule, secret_action: LeakAction::Redact })
    }

    /// The same scanner with another action for known-secret findings.
    pub fn with_secret_action(mut self, action: LeakAction) -> Self {
        self.secret_action = action;
        self
    }

    /// The scanner's rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every credential in `text`: sorted by offset, overlapping findings merged into one that covers them
    /// all and carries the strictest action (on a tie, known secrets first, then the earlier rule).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut found = self.candidates(text);
        found.sort_by_key(|candidate| (candidate.finding.start, candidate.priority));
        let mut merged: Vec<Candidate> = Vec::with_capacity(found.len());
        for candidate in found {
            match merged.last_mut() {
                Some(last) if candidate.finding.start < last.finding.end => {
                    last.finding.end = last.finding.end.max(candidate.finding.end);
                    if candidate.outranks(last) {
                        last.finding.rule = candidate.finding.rule;
                        last.finding.action = candidate.finding.action;
                        last.priority = candidate.priority;
                    }
                }
                _ => merged.push(candidate),
            }
        }
        merged.into_iter().map(|candidate| candidate.finding).collect()
    }

    /// `text` with each `Redact` or `Block` finding replaced by `[REDACTED:<rule>]`.
    pub fn redact(&self, text: &str) -> Redacted {
        let findings = self.scan(text);
        let blocked = findings.iter().any(|finding| finding.action == LeakAction::Block);
        Redacted { text: splice(text, &findings), findings, blocked }
    }

    /// Whether an outbound request may be sent: scans the URL (also percent-decoded), each header as
    /// `name: value`, and the body as lossy UTF-8, and reports every rule that matched in each part.
    pub fn check_outbound(&self, url: &str, headers: &[(String, String)], body: &[u8]) -> Verdict {
        let mut verdict = Verdict { blocked: false, hits: Vec::new() };
        verdict.record(self.candidates(url), &RequestPart::Url);
        if let Some(decoded) = percent_decode(url) {
            verdict.record(self.candidates(&decoded), &RequestPart::Url);
        }
        for (name, value) in headers {
            verdict.record(self.candidates(&format!("{name}: {value}")), &RequestPart::Header(name.clone()));
        }
        verdict.record(self.candidates(&String::from_utf8_lossy(body)), &RequestPart::Body);
        verdict
    }

    /// Every finding of every source, unmerged, with its tie-break priority.
    fn candidates(&self, text: &str) -> Vec<Candidate> {
        let mut found = Vec::new();
        if let Some(secrets) = &self.secrets {
            for hit in secrets.find_iter(text) {
                let finding = Finding {
                    rule: self.secret_rule[hit.pattern().as_usize()].clone(),
                    action: self.secret_action,
                    start: hit.start(),
                    end: hit.end(),
                };
                found.push(Candidate { finding, priority: 0 });
            }
        }
        let mut due: Vec<bool> = self.rules.iter().map(|rule| rule.anchors.is_empty()).collect();
        if let Some(anchors) = &self.anchors {
            for hit in anchors.find_overlapping_iter(text) {
                due[self.anchor_rule[hit.pattern().as_usize()]] = true;
            }
        }
        for (index, rule) in self.rules.iter().enumerate().filter(|(index, _)| due[*index]) {
            for (start, end) in rule.spans(text) {
                let finding = Finding { rule: rule.id.clone(), action: rule.action, start, end };
                found.push(Candidate { finding, priority: index + 1 });
            }
        }
        found
    }
}

impl fmt::Debug for LeakScanner {
    /// Rule ids and the number of secret patterns only: the automaton holds the secrets' plaintexts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakScanner")
            .field("rules", &self.rules.iter().map(Rule::id).collect::<Vec<_>>())
            .field("secret_patterns", &self.secret_rule.len())
            .field("secret_action", &self.secret_action)
            .finish()
    }
}

/// `text` with each `Redact` or `Block` finding among `findings` (sorted, within the text) replaced by
/// `[REDACTED:<rule>]`.
pub(super) fn splice(text: &str, findings: &[Finding]) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut copied = 0;
    for finding in findings.iter().filter(|finding| finding.action >= LeakAction::Redact) {
        redacted.push_str(&text[copied..finding.start]);
        let _ = write!(redacted, "[REDACTED:{}]", finding.rule);
        copied = finding.end;
    }
    redacted.push_str(&text[copied..]);
    redacted
}

/// A finding before merging, with its rank among findings of equal action (lower wins).
struct Candidate {
    finding: Finding,
    priority: usize,
}

impl Candidate {
    fn outranks(&self, other: &Candidate) -> bool {
        (self.finding.action, Reverse(self.priority)) > (other.finding.action, Reverse(other.priority))
    }
}

/// The forms a secret value takes in text: as is, inside a JSON string, and percent-encoded in a URL.
fn written_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let json = serde_json::to_string(value).ok();
    let json = json.as_deref().and_then(|quoted| quoted.strip_prefix('"')?.strip_suffix('"'));
    let mut percent = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            percent.push(char::from(byte));
        } else {
            let _ = write!(percent, "%{byte:02X}");
        }
    }
    for form in json.map(str::to_owned).into_iter().chain([percent]) {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// `text` with its `%XX` escapes decoded (as lossy UTF-8), or `None` when it has none.
fn percent_decode(text: &str) -> Option<String> {
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        if let [b'%', high, low, ..] = bytes[i..] {
            if let (Some(high), Some(low)) = (hex(high), hex(low)) {
                decoded.push((high * 16 + low) as u8);
                escaped = true;
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    escaped.then(|| String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENIGN: &str = include_str!("testdata/benign.txt");
    const LEAKS: &str = include_str!("testdata/leaks.txt");

    fn scanner(known_secrets: &[(&str, &str)]) -> LeakScanner {
        LeakScanner::new(builtin_rules(), known_secrets).expect("scanner builds")
    }

    fn rules_hit(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|finding| finding.rule.as_str()).collect()
    }

    /// One made-up, format-valid credential per built-in rule, and the exact text the rule must flag.
    const SAMPLES: &[(&str, &str)] = &[
        (
            "private_key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakeFAKEkeyMaterialForTestsOnly0123456789+/fake\n\
             -----END RSA PRIVATE KEY-----",
        ),
        (
            "openssh_private_key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABFake\n\
             -----END OPENSSH PRIVATE KEY-----",
        ),
        (
            "pgp_private_key",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGFakePgpKeyMaterial0123456789+/\n=FaKe\n\
             -----END PGP PRIVATE KEY BLOCK-----",
        ),
        ("anthropic_api_key", "sk-ant-api03-FakeTestValue0123456789NotARealKeyEXAMPLE_dummy9Sample-AA"),
        ("openai_api_key", "sk-proj-FakeTestValue0123456789NotARealKeyEXAMPLET3BlbkFJdummy9Sample8Token"),
        ("openai_api_key", "sk-FakeTestValue0123456T3BlbkFJdummy9Sample8Token7F"),
        ("openai_api_key", "sk-NOTAREALKEY0123456789TESTONLYNOTAREALKEY01234567"),
        ("aws_access_key_id", "AKIAFAKE0123456789EX"),
        ("aws_access_key_id", "ASIATEST9876543210FA"),
        ("aws_secret_access_key", "FakeSecret/Access+Key0123456789FakeSecre"),
        ("github_token", "ghp_FakeTestValue0123456789NotARealKeyEX"),
        ("github_token", "ghs_NOTAREALKEY0123456789TESTONLYNOTAREA"),
        (
            "github_token",
            "github_pat_FakeTestValue012345678_dummy9Sample8Token7ForTests6OnlyXYZdummy9Sample8Token7ForTe",
        ),
        ("slack_token", "xoxb-123456789012-1234567890123-FakeTestValue0123456789N"),
        ("slack_token", "xoxp-1111111111-2222222222-3333333333-0123456789abcdef0123456789abcdef"),
        ("slack_webhook_url", "https://hooks.slack.com/services/T0FAKE0000/B0TEST0000/FakeTestValue0123456789N"),
        ("stripe_secret_key", "sk_live_FakeTestValue0123456789N"),
        ("stripe_secret_key", "rk_live_dummy9Sample8Token7ForTests6OnlyXYZdummy"),
        ("google_api_key", "AIzaSyFake-Test_Key0123456789SyFake-Tes"),
        ("telegram_bot_token", "1234567890:AAFakeBotToken_0123456789-xyzFakeBo"),
        ("jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXVzZXItNDIifQ.FakeSignature-_0123456789FakeSig"),
        ("bearer_token", "tok_FakeTestValue0123456789NotARealKeyEX"),
    ];

    /// Puts a sample where its rule expects it: labelled rules need their label.
    fn in_context(rule: &str, secret: &str) -> String {
        match rule {
            "aws_secret_access_key" => format!("aws_secret_access_key = {secret}\n"),
            "bearer_token" => format!("curl -H 'Authorization: Bearer {secret}' https://api.example.com/"),
            _ => format!("before {secret} after"),
        }
    }

    #[test]
    fn builtin_rules_have_unique_ids_and_descriptions() {
        let rules = builtin_rules();
        let mut ids: Vec<&str> = rules.iter().map(Rule::id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules.len());
        assert!(rules.iter().all(|rule| !rule.description().is_empty() && !rule.pattern().is_empty()));
    }

    #[test]
    fn every_builtin_rule_flags_exactly_its_sample() {
        let scanner = scanner(&[]);
        for (rule, secret) in SAMPLES {
            let text = in_context(rule, secret);
            let findings = scanner.scan(&text);
            assert_eq!(rules_hit(&findings), [*rule], "{rule} in {text:?}");
            assert_eq!(&text[findings[0].start..findings[0].end], *secret, "{rule} span");
        }
        for rule in builtin_rules() {
            assert!(SAMPLES.iter().any(|(id, _)| *id == rule.id()), "no sample for {}", rule.id());
        }
    }

    #[test]
    fn every_line_of_the_leak_corpus_has_a_finding() {
        let scanner = scanner(&[]);
        let mut seen = Vec::new();
        for (number, line) in LEAKS.lines().enumerate() {
            let findings = scanner.scan(line);
            assert!(!findings.is_empty(), "leaks.txt line {}: no finding in {line:?}", number + 1);
            seen.extend(findings.into_iter().map(|finding| finding.rule));
        }
        assert!(LEAKS.lines().count() >= 40);
        for rule in builtin_rules() {
            assert!(seen.iter().any(|id| id == rule.id()), "leaks.txt never exercises {}", rule.id());
        }
    }

    #[test]
    fn benign_corpus_has_no_findings() {
        let scanner = scanner(&[]);
        assert!(BENIGN.lines().count() >= 120);
        for (number, line) in BENIGN.lines().enumerate() {
            let findings = scanner.scan(line);
            assert!(findings.is_empty(), "benign.txt line {}: {findings:?} in {line:?}", number + 1);
        }
        assert!(scanner.scan(BENIGN).is_empty(), "findings across line breaks in benign.txt");
    }

    #[test]
    fn redaction_replaces_secrets_with_their_rule_and_keeps_the_rest() {
        let text = "GITHUB_TOKEN=ghp_FakeTestValue0123456789NotARealKeyEX\n\
                    maps key AIzaSyFake-Test_Key0123456789SyFake-Tes, bye";
        let redacted = scanner(&[]).redact(text);
        assert_eq!(redacted.text, "GITHUB_TOKEN=[REDACTED:github_token]\nmaps key [REDACTED:google_api_key], bye");
        assert!(redacted.blocked, "github_token blocks");
        assert_eq!(rules_hit(&redacted.findings), ["github_token", "google_api_key"]);
    }

    #[test]
    fn labelled_secrets_keep_their_label_when_redacted() {
        let text = "aws_secret_access_key = FakeSecret/Access+Key0123456789FakeSecre\n\
                    Authorization: Bearer tok_FakeTestValue0123456789NotARealKeyEX";
        assert_eq!(
            scanner(&[]).redact(text).text,
            "aws_secret_access_key = [REDACTED:aws_secret_access_key]\nAuthorization: Bearer [REDACTED:bearer_token]"
        );
    }

    #[test]
    fn truncated_private_key_is_redacted_up_to_the_prose_after_it() {
        let text = "log: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n\
                    MIIEvQIBADANBgkqhkiG9w0BAQEF\nand then the log goes on";
        let redacted = scanner(&[]).redact(text);
        assert_eq!(redacted.text, "log: [REDACTED:private_key]\nand then the log goes on");
        assert!(redacted.blocked);
    }

    #[test]
    fn warn_findings_are_reported_but_not_redacted() {
        let rules = builtin_rules()
            .into_iter()
            .map(|rule| if rule.id() == "jwt" { rule.with_action(LeakAction::Warn) } else { rule })
            .collect();
        let scanner = LeakScanner::new(rules, &[]).expect("scanner builds");
        let text = format!("session={}", SAMPLES.iter().find(|(id, _)| *id == "jwt").expect("jwt sample").1);
        let redacted = scanner.redact(&text);
        assert_eq!(redacted.text, text);
        assert_eq!(redacted.findings.len(), 1);
        assert_eq!(redacted.findings[0].action, LeakAction::Warn);
        assert!(!redacted.blocked);
    }

    #[test]
    fn known_secret_is_found_in_a_url_query_and_in_json() {
        let scanner =
            scanner(&[("WEATHER_KEY", "wx-7f3a9c21e5b84d06"), ("DB_PASSWORD", "correct horse battery staple")]);
        let url = "https://api.weather.example/v1/forecast?city=Lisbon&appid=wx-7f3a9c21e5b84d06&units=metric";
        assert_eq!(
            scanner.redact(url).text,
            "https://api.weather.example/v1/forecast?city=Lisbon&appid=[REDACTED:secret:WEATHER_KEY]&units=metric"
        );
        let json = r#"{"user":"app","password":"correct horse battery staple","port":5432}"#;
        let redacted = scanner.redact(json);
        assert_eq!(redacted.text, r#"{"user":"app","password":"[REDACTED:secret:DB_PASSWORD]","port":5432}"#);
        assert_eq!(redacted.findings[0].action, LeakAction::Redact);
        assert!(!redacted.blocked);
    }

    #[test]
    fn known_secret_is_found_json_escaped_and_percent_encoded() {
        let secret = r#"pa"ss\word/with+odd chars"#;
        let scanner = scanner(&[("ODD", secret)]);
        let json = serde_json::json!({ "password": secret }).to_string();
        assert_eq!(rules_hit(&scanner.scan(&json)), ["secret:ODD"]);
        let url = "https://example.com/login?pw=pa%22ss%5Cword%2Fwith%2Bodd%20chars";
        assert_eq!(rules_hit(&scanner.scan(url)), ["secret:ODD"]);
    }

    #[test]
    fn known_secrets_shorter_than_eight_characters_are_ignored() {
        let scanner = scanner(&[("PIN", "1234567"), ("PADDED", "  hunter2 \n")]);
        assert!(scanner.scan("pin 1234567 and hunter2").is_empty());
        assert!(format!("{scanner:?}").contains("secret_patterns: 0"));
    }

    #[test]
    fn longest_known_secret_wins_among_many() {
        let mut secrets: Vec<(String, String)> =
            (0..2000).map(|i| (format!("S{i}"), format!("value-{i:06}-of-the-vault"))).collect();
        secrets.push(("PREFIXED".into(), "value-001999-of-the-vault-and-more".into()));
        let pairs: Vec<(&str, &str)> = secrets.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let scanner = scanner(&pairs);
        let findings = scanner.scan("a value-001999-of-the-vault-and-more and value-000042-of-the-vault.");
        assert_eq!(rules_hit(&findings), ["secret:PREFIXED", "secret:S42"]);
    }

    #[test]
    fn overlapping_findings_merge_into_the_strictest() {
        let token = "ghp_FakeTestValue0123456789NotARealKeyEX";
        let scanner = scanner(&[("GITHUB_TOKEN", token)]);
        let text = format!("token {token} end");
        let findings = scanner.scan(&text);
        assert_eq!(findings, [Finding { rule: "github_token".into(), action: LeakAction::Block, start: 6, end: 46 }]);

        let scanner = scanner.with_secret_action(LeakAction::Block);
        assert_eq!(rules_hit(&scanner.scan(&text)), ["secret:GITHUB_TOKEN"], "on a tie the known secret names it");
    }

    #[test]
    fn partly_overlapping_findings_cover_their_union_and_adjacent_ones_stay_apart() {
        let mut rules = builtin_rules();
        rules.push(Rule::new("ticket", "ticket reference", r"TICKET-[0-9]+-ghp_[A-Za-z]+", LeakAction::Warn).unwrap());
        rules.push(Rule::new("word", "a marker word", r"MARKER", LeakAction::Redact).unwrap());
        let scanner = LeakScanner::new(rules, &[]).expect("scanner builds");
        let text = "x TICKET-12-ghp_FakeTestValue0123456789NotARealKeyEX MARKERMARKER y";
        let findings = scanner.scan(text);
        assert_eq!(rules_hit(&findings), ["github_token", "word", "word"]);
        assert_eq!((findings[0].start, findings[0].end), (2, 52), "union of the ticket and the token");
        assert_eq!(findings[0].action, LeakAction::Block);
        assert_eq!((findings[1].end, findings[2].start), (59, 59));
    }

    #[test]
    fn custom_rule_reports_only_its_secret_group() {
        let rule = Rule::new(
            "db_url",
            "password in a database URL",
            r"postgres://[^:/]+:(?P<secret>[^@\s]+)@",
            LeakAction::Redact,
        )
        .expect("valid pattern");
        let scanner = LeakScanner::new(vec![rule], &[]).expect("scanner builds");
        assert_eq!(
            scanner.redact("postgres://app:s3cr3t@db:5432/x").text,
            "postgres://app:[REDACTED:db_url]@db:5432/x"
        );
    }

    #[test]
    fn invalid_custom_pattern_is_an_error_naming_the_rule() {
        let error = Rule::new("broken", "unbalanced", "(abc", LeakAction::Warn).expect_err("invalid");
        assert!(matches!(&error, LeakError::Pattern { rule, .. } if rule == "broken"), "{error}");
    }

    #[test]
    fn debug_output_never_shows_secret_values() {
        let secret = "vault-plaintext-0123456789";
        let scanner = scanner(&[("API", secret)]);
        let findings = scanner.scan(&format!("leak {secret} and ghp_FakeTestValue0123456789NotARealKeyEX"));
        assert_eq!(findings.len(), 2);
        for shown in [format!("{scanner:?}"), format!("{findings:?}")] {
            assert!(!shown.contains(secret) && !shown.contains("ghp_"), "{shown}");
        }
    }

    #[test]
    fn actions_serialize_in_snake_case() {
        assert_eq!(serde_json::to_string(&LeakAction::Block).unwrap(), r#""block""#);
        assert_eq!(serde_json::from_str::<LeakAction>(r#""redact""#).unwrap(), LeakAction::Redact);
        assert!(LeakAction::Warn < LeakAction::Redact && LeakAction::Redact < LeakAction::Block);
    }

    #[test]
    fn outbound_request_with_a_blocking_credential_is_blocked() {
        let scanner = scanner(&[("NOTION_KEY", "secret_notion_0123456789abcdef")]);
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Api-Key".to_owned(), "ghp_FakeTestValue0123456789NotARealKeyEX".to_owned()),
        ];
        let body = br#"{"note":"secret_notion_0123456789abcdef"}"#;
        let verdict = scanner.check_outbound("https://paste.example.com/new", &headers, body);
        assert!(verdict.blocked);
        assert_eq!(
            verdict.hits,
            [
                Hit {
                    rule: "github_token".into(),
                    action: LeakAction::Block,
                    part: RequestPart::Header("X-Api-Key".into())
                },
                Hit { rule: "secret:NOTION_KEY".into(), action: LeakAction::Redact, part: RequestPart::Body },
            ]
        );
    }

    #[test]
    fn outbound_url_is_also_checked_percent_decoded() {
        let url = "https://api.telegram.example/bot1234567890%3AAAFakeBotToken_0123456789-xyzFakeBo/getMe";
        let verdict = scanner(&[]).check_outbound(url, &[], b"");
        assert!(verdict.blocked);
        assert_eq!(rules_hit_in(&verdict), ["telegram_bot_token"]);
        assert_eq!(verdict.hits[0].part, RequestPart::Url);
    }

    #[test]
    fn outbound_bearer_header_is_reported_without_blocking() {
        let headers = vec![("Authorization".to_owned(), "Bearer tok_FakeTestValue0123456789NotARealKeyEX".to_owned())];
        let verdict = scanner(&[]).check_outbound("https://api.example.com/v1/items?page=2", &headers, b"{}");
        assert!(!verdict.blocked);
        assert_eq!(rules_hit_in(&verdict), ["bearer_token"]);
    }

    #[test]
    fn clean_outbound_request_passes() {
        let headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        let body = BENIGN.as_bytes();
        let verdict = scanner(&[("KEY", "never-sent-0123456789")]).check_outbound(
            "https://api.example.com/search?q=edge%20computing&page=2",
            &headers,
            body,
        );
        assert_eq!(verdict, Verdict { blocked: false, hits: Vec::new() });
    }

    fn rules_hit_in(verdict: &Verdict) -> Vec<&str> {
        verdict.hits.iter().map(|hit| hit.rule.as_str()).collect()
    }
}
