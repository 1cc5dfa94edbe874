//! Human approval of tool calls. Every call has a risk level; rules decide `allow`, `ask` or `deny` by
//! tool name, arguments and risk; an `ask` pauses the turn until the owner answers or the request
//! expires (an expired request is a denial).

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::ToolCall;

/// How much harm a tool call could do if it should not have been made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Reads or computes nothing sensitive (a calculation, the time).
    Low,
    /// Reads from outside or changes the owner's own data.
    Medium,
    /// Sends data out, spends a credential or acts on the owner's behalf elsewhere.
    High,
}

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Run the call.
    Allow,
    /// Pause the turn until the owner approves or denies the call.
    Ask,
    /// Refuse the call; the model is told it was refused.
    Deny,
}

/// Longest an approval request can wait, in ms (a day).
pub const MAX_APPROVAL_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// One rule as written in `EDGECLAW_APPROVALS`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    effect: Effect,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// One rule: it applies to calls whose tool name matches `tool` (a pattern where `*` stands for any
/// text), whose arguments match `arguments` (a regular expression over their compact JSON) and whose
/// risk is at least `risk`.
#[derive(Debug, Clone)]
struct Rule {
    text: String,
    effect: Effect,
    tool: Regex,
    arguments: Option<Regex>,
    risk: Option<Risk>,
    timeout_ms: Option<u64>,
}

impl Rule {
    fn parse(index: usize, spec: RuleSpec) -> Result<Rule, String> {
        let tool_pattern = spec.tool.unwrap_or_else(|| "*".into());
        let glob = format!("^{}$", tool_pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*"));
        let tool = Regex::new(&glob).map_err(|e| format!("rule {index}: tool pattern: {e}"))?;
        let arguments = spec
            .arguments
            .as_deref()
            .map(|pattern| Regex::new(pattern).map_err(|e| format!("rule {index}: arguments pattern: {e}")))
            .transpose()?;
        if let Some(timeout) = spec.timeout_ms.filter(|t| !(1_000..=MAX_APPROVAL_TIMEOUT_MS).contains(t)) {
            return Err(format!("rule {index}: timeout_ms {timeout} is not from 1000 to {MAX_APPROVAL_TIMEOUT_MS}"));
        }
        let mut text = format!("{:?} {tool_pattern}", spec.effect).to_lowercase();
        if let Some(pattern) = &spec.arguments {
            text.push_str(&format!(" /{pattern}/"));
        }
        if let Some(risk) = spec.risk {
            text.push_str(&format!(" risk>={risk:?}").to_lowercase());
        }
        Ok(Rule { text, effect: spec.effect, tool, arguments, risk: spec.risk, timeout_ms: spec.timeout_ms })
    }

    fn applies(&self, tool: &str, risk: Risk, arguments: &str) -> bool {
        self.tool.is_match(tool)
            && self.risk.is_none_or(|least| risk >= least)
            && self.arguments.as_ref().is_none_or(|pattern| pattern.is_match(arguments))
    }
}

/// The approval rules, tried in order; the first that applies decides. When none applies, high-risk
/// calls are asked about and the rest run.
#[derive(Debug, Clone)]
pub struct ApprovalPolicy {
    rules: Vec<Rule>,
    timeout_ms: u64,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self { rules: Vec::new(), timeout_ms: 15 * 60 * 1000 }
    }
}

/// What the policy decided about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruling {
    /// The decision.
    pub effect: Effect,
    /// Why, for the owner and the audit log (the rule, or the default for the risk).
    pub reason: String,
    /// For `ask`: how long the owner has to answer.
    pub timeout_ms: u64,
}

impl ApprovalPolicy {
    /// Parses a JSON array of rules, e.g.
    /// `[{"effect":"deny","tool":"http_fetch","arguments":"evil\\.example"},{"effect":"ask","tool":"schedule_*"}]`,
    /// with `timeout_ms` as the default time to answer.
    pub fn parse(rules: &str, timeout_ms: u64) -> Result<ApprovalPolicy, String> {
        let specs: Vec<RuleSpec> = if rules.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(rules).map_err(|e| format!("not a JSON array of rules: {e}"))?
        };
        let rules =
            specs.into_iter().enumerate().map(|(i, spec)| Rule::parse(i + 1, spec)).collect::<Result<_, _>>()?;
        Ok(ApprovalPolicy { rules, timeout_ms })
    }

    /// The ruling for a call of `tool` with `arguments` (matched in their compact JSON form, so that
    /// escapes cannot disguise them) at `risk`.
    pub fn decide(&self, tool: &str, risk: Risk, arguments: &Value) -> Ruling {
        let arguments = arguments.to_string();
        match self.rules.iter().find(|rule| rule.applies(tool, risk, &arguments)) {
            Some(rule) => Ruling {
                effect: rule.effect,
                reason: format!("rule `{}`", rule.text),
                timeout_ms: rule.timeout_ms.unwrap_or(self.timeout_ms),
            },
            None if risk == Risk::High => Ruling {
                effect: Effect::Ask,
                reason: "high-risk call (no rule applies)".into(),
                timeout_ms: self.timeout_ms,
            },
            None => Ruling { effect: Effect::Allow, reason: "no rule applies".into(), timeout_ms: self.timeout_ms },
        }
    }
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for the owner.
    Pending,
    /// The owner approved it.
    Approved,
    /// The owner denied it.
    Denied,
    /// Nobody answered in time: a denial.
    Expired,
}

/// What is waiting for approval, as the owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Request id (`apv_…`).
    pub id: String,
    /// The paused turn.
    pub turn_id: String,
    /// The tool call's id.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// The call's arguments, credentials redacted.
    pub arguments: Value,
    /// The call's risk.
    pub risk: Risk,
    /// What is asked: `run` the call, or `release` its output (which looked like a prompt injection).
    pub kind: ApprovalKind,
    /// Why it is asked.
    pub reason: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// When it was asked, ms since the epoch.
    pub requested_at: u64,
    /// When it expires unanswered, ms since the epoch.
    pub expires_at: u64,
    /// When it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
}

/// What an approval lets happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Running the call.
    Run,
    /// Showing the model the call's output, which was screened as a possible prompt injection.
    Release,
}

/// An approval request as stored: what the owner sees, plus what approving it acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The owner's view.
    pub approval: Approval,
    /// The call exactly as the model made it (run if approved).
    pub call: ToolCall,
    /// For [`ApprovalKind::Release`]: the output the model gets if approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_output: Option<String>,
}

impl ApprovalRequest {
    /// Records the owner's answer (or the expiry) at `now`.
    pub fn decide(&mut self, status: ApprovalStatus, now: u64) {
        self.approval.status = status;
        self.approval.decided_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_applying_rule_decides() {
        let rules = r#"[
            {"effect": "deny", "tool": "http_fetch", "arguments": "evil\\.example"},
            {"effect": "ask", "tool": "schedule_*", "timeout_ms": 5000},
            {"effect": "allow", "tool": "http_fetch"}
        ]"#;
        let policy = ApprovalPolicy::parse(rules, 60_000).unwrap();
        let fetch = |url: &str| policy.decide("http_fetch", Risk::High, &json!({ "url": url }));
        let denied = fetch("https://evil.example/x");
        assert_eq!(denied.effect, Effect::Deny);
        assert_eq!(denied.reason, "rule `deny http_fetch /evil\\.example/`");
        assert_eq!(fetch("https://docs.example/").effect, Effect::Allow);

        let ask = policy.decide("schedule_create", Risk::Medium, &json!({}));
        assert_eq!((ask.effect, ask.timeout_ms), (Effect::Ask, 5000));
        assert_eq!(policy.decide("schedule", Risk::Low, &json!({})).effect, Effect::Allow, "`*` needs the `_`");
    }

    #[test]
    fn without_a_rule_only_high_risk_calls_ask() {
        let policy = ApprovalPolicy::default();
        assert_eq!(policy.decide("calculator", Risk::Low, &json!({})).effect, Effect::Allow);
        assert_eq!(policy.decide("http_fetch", Risk::Medium, &json!({})).effect, Effect::Allow);
        let high = policy.decide("http_fetch", Risk::High, &json!({}));
        assert_eq!((high.effect, high.timeout_ms), (Effect::Ask, 15 * 60 * 1000));
        let everything = ApprovalPolicy::parse(r#"[{"effect": "allow"}]"#, 1000).unwrap();
        assert_eq!(everything.decide("http_fetch", Risk::High, &json!({})).effect, Effect::Allow);
    }

    #[test]
    fn risk_thresholds_and_escapes() {
        let policy =
            ApprovalPolicy::parse(r#"[{"effect": "deny", "risk": "medium", "arguments": "secret\\.example"}]"#, 1000)
                .unwrap();
        let arguments: Value = serde_json::from_str(r#"{"url": "https://secret\u002eexample/"}"#).unwrap();
        assert_eq!(policy.decide("t", Risk::Medium, &arguments).effect, Effect::Deny, "an escape disguises nothing");
        assert_eq!(policy.decide("t", Risk::Low, &arguments).effect, Effect::Allow);
    }

    #[test]
    fn bad_rules_are_refused_with_their_position() {
        for (rules, expected) in [
            ("{}", "not a JSON array"),
            (r#"[{"effect": "maybe"}]"#, "not a JSON array"),
            (r#"[{"effect": "ask", "tool": "x", "colour": 1}]"#, "unknown field"),
            (r#"[{"effect": "ask"}, {"effect": "deny", "arguments": "("}]"#, "rule 2: arguments pattern"),
            (r#"[{"effect": "ask", "timeout_ms": 5}]"#, "rule 1: timeout_ms 5"),
        ] {
            let error = ApprovalPolicy::parse(rules, 1000).unwrap_err();
            assert!(error.contains(expected), "{rules}: {error}");
        }
        assert!(ApprovalPolicy::parse("  ", 1000).unwrap().rules.is_empty());
    }
}
