//! Tool calls under the approval policy: each call is allowed, refused, or held for the owner; a
//! paused turn goes on once every held call is answered (an unanswered one expires as a denial).

use serde_json::{json, Value};

use super::{Agent, ToolCallReport, TurnEvent};
use crate::llm::{Message, ToolCall};
use crate::security::{
    Approval, ApprovalKind, ApprovalRequest, ApprovalStatus, AuditEntry, AuditKind, Decision, Effect, Risk,
};
use crate::session::{SessionStore, TurnRecord};
use crate::{Error, Result};

/// How one call of a batch ended: with a result for the model, or held for the owner.
pub(super) enum CallOutcome {
    /// The result is ready.
    Finished(ToolCallReport),
    /// The owner must answer first.
    Held(Box<ApprovalRequest>),
}

/// Where a session's approval requests stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalState {
    /// Every request is answered: the paused turn can go on ([`super::TurnInput::Resume`]).
    pub ready: bool,
    /// When the next unanswered request expires, ms since the epoch.
    pub next_deadline: Option<u64>,
}

impl ApprovalState {
    pub(super) fn of(requests: &[ApprovalRequest]) -> Self {
        let pending = requests.iter().filter(|r| r.approval.status == ApprovalStatus::Pending);
        Self {
            ready: !requests.is_empty() && pending.clone().next().is_none(),
            next_deadline: pending.map(|r| r.approval.expires_at).min(),
        }
    }
}

impl Agent {
    /// One call of a batch under the approval policy. Unknown tools and unreadable arguments go
    /// straight to [`Agent::run_tool`], which reports them.
    pub(super) async fn handle_call(&self, turn_id: &str, call: &ToolCall, sink: &dyn Fn(TurnEvent)) -> CallOutcome {
        if let (Some(tool), Ok(arguments)) =
            (self.tools.get(&call.name), serde_json::from_str::<Value>(&call.arguments))
        {
            let risk = tool.risk(&arguments);
            let ruling = self.config.approvals.decide(&call.name, risk, &arguments);
            match ruling.effect {
                Effect::Allow => {}
                Effect::Deny => {
                    return CallOutcome::Finished(self.refuse(
                        call,
                        &format!("refused by the approval policy ({})", ruling.reason),
                        sink,
                    ))
                }
                Effect::Ask => {
                    let request = self.approval_request(
                        turn_id,
                        call,
                        risk,
                        ApprovalKind::Run,
                        ruling.reason,
                        ruling.timeout_ms,
                        None,
                    );
                    return CallOutcome::Held(Box::new(request));
                }
            }
        }
        self.execute(turn_id, call, sink).await
    }

    /// Runs a call; output held back as a possible prompt injection under the `review` policy is held
    /// for the owner to release.
    async fn execute(&self, turn_id: &str, call: &ToolCall, sink: &dyn Fn(TurnEvent)) -> CallOutcome {
        let (report, held) = self.run_tool(call).await;
        match held {
            None => {
                sink(TurnEvent::ToolCallFinished(report.clone()));
                CallOutcome::Finished(report)
            }
            Some(held) => {
                let risk = self.tools.get(&call.name).map_or(Risk::Low, |tool| tool.risk(&report.arguments));
                let reason = "its output looks like a prompt-injection attempt".to_string();
                let timeout = self.config.approvals.decide(&call.name, risk, &report.arguments).timeout_ms;
                let request =
                    self.approval_request(turn_id, call, risk, ApprovalKind::Release, reason, timeout, Some(held));
                CallOutcome::Held(Box::new(request))
            }
        }
    }

    /// The outcome of a held call once it is answered.
    pub(super) async fn resolve(&self, request: &ApprovalRequest, sink: &dyn Fn(TurnEvent)) -> CallOutcome {
        let call = &request.call;
        let approval = &request.approval;
        match (approval.status, &request.held_output) {
            (ApprovalStatus::Approved, None) => self.execute(&approval.turn_id, call, sink).await,
            (ApprovalStatus::Approved, Some(output)) => {
                let report = ToolCallReport {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: approval.arguments.clone(),
                    output: output.clone(),
                    is_error: false,
                    duration_ms: 0,
                };
                self.audit_call(&report, Decision::Allowed, "output released by the owner".into(), json!({}));
                sink(TurnEvent::ToolCallFinished(report.clone()));
                CallOutcome::Finished(report)
            }
            (status, held) => {
                let answer =
                    if status == ApprovalStatus::Expired { "nobody answered in time" } else { "the owner said no" };
                let reason = match held {
                    None => format!("not run: {answer}"),
                    Some(_) => {
                        format!("the output was withheld as a possible prompt injection and not released: {answer}")
                    }
                };
                CallOutcome::Finished(self.refuse(call, &reason, sink))
            }
        }
    }

    /// Appends the finished results of a batch to the transcript and stores what is held (replacing
    /// the requests answered so far); returns what the turn now waits for.
    pub(super) async fn settle(
        &self,
        store: &dyn SessionStore,
        turn: &TurnRecord,
        history: &mut Vec<Message>,
        outcomes: Vec<CallOutcome>,
        tool_reports: &mut Vec<ToolCallReport>,
        sink: &dyn Fn(TurnEvent),
    ) -> Result<Vec<Approval>> {
        self.guard.audit().flush().await.map_err(Error::Audit)?;
        let mut held = Vec::new();
        for outcome in outcomes {
            match outcome {
                CallOutcome::Finished(report) => {
                    let result = Message::Tool {
                        tool_call_id: report.id.clone(),
                        name: report.name.clone(),
                        content: report.output.clone(),
                        is_error: report.is_error,
                    };
                    store.append(&turn.id, &result, self.ports.clock.now_ms()).await?;
                    history.push(result);
                    tool_reports.push(report);
                }
                CallOutcome::Held(request) => held.push(*request),
            }
        }
        store.clear_approvals().await?;
        if !held.is_empty() {
            store.save_approvals(&held).await?;
        }
        let waiting: Vec<Approval> = held.into_iter().map(|r| r.approval).collect();
        for approval in &waiting {
            sink(TurnEvent::ApprovalRequired(approval.clone()));
        }
        Ok(waiting)
    }

    /// The session's approval requests (the paused turn's), for the owner.
    pub async fn approvals(&self, store: &dyn SessionStore) -> Result<Vec<Approval>> {
        Ok(store.approvals().await?.into_iter().map(|r| r.approval).collect())
    }

    /// Records the owner's answer to request `id`. An answer that comes after the request expired is
    /// refused (the expiry already counts as a denial).
    pub async fn decide_approval(
        &self,
        store: &dyn SessionStore,
        id: &str,
        approve: bool,
    ) -> Result<(Approval, ApprovalState)> {
        let now = self.ports.clock.now_ms();
        self.expire_approvals(store).await?;
        let mut requests = store.approvals().await?;
        let request =
            requests.iter_mut().find(|r| r.approval.id == id).ok_or_else(|| Error::ApprovalNotFound(id.into()))?;
        match request.approval.status {
            ApprovalStatus::Pending => {}
            ApprovalStatus::Approved => return Err(Error::ApprovalDecided(id.into(), "approved")),
            ApprovalStatus::Denied => return Err(Error::ApprovalDecided(id.into(), "denied")),
            ApprovalStatus::Expired => return Err(Error::ApprovalDecided(id.into(), "expired")),
        }
        request.decide(if approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied }, now);
        let approval = request.approval.clone();
        store.save_approvals(std::slice::from_ref(request)).await?;
        Ok((approval, ApprovalState::of(&requests)))
    }

    /// Marks the requests whose time is up as expired.
    pub async fn expire_approvals(&self, store: &dyn SessionStore) -> Result<ApprovalState> {
        let now = self.ports.clock.now_ms();
        let mut requests = store.approvals().await?;
        let mut expired = Vec::new();
        for request in &mut requests {
            if request.approval.status == ApprovalStatus::Pending && request.approval.expires_at <= now {
                request.decide(ApprovalStatus::Expired, now);
                expired.push(request.clone());
            }
        }
        if !expired.is_empty() {
            store.save_approvals(&expired).await?;
        }
        Ok(ApprovalState::of(&requests))
    }

    #[allow(clippy::too_many_arguments)]
    fn approval_request(
        &self,
        turn_id: &str,
        call: &ToolCall,
        risk: Risk,
        kind: ApprovalKind,
        reason: String,
        timeout_ms: u64,
        held_output: Option<String>,
    ) -> ApprovalRequest {
        let now = self.ports.clock.now_ms();
        let approval = Approval {
            id: self.ports.new_id("apv"),
            turn_id: turn_id.into(),
            call_id: call.id.clone(),
            tool: call.name.clone(),
            arguments: self.redacted_arguments(call),
            risk,
            kind,
            reason,
            status: ApprovalStatus::Pending,
            requested_at: now,
            expires_at: now + timeout_ms,
            decided_at: None,
        };
        ApprovalRequest { approval, call: call.clone(), held_output }
    }

    /// A call that does not run (or whose output is withheld): an error result for the model, audited
    /// as blocked.
    fn refuse(&self, call: &ToolCall, reason: &str, sink: &dyn Fn(TurnEvent)) -> ToolCallReport {
        let report = ToolCallReport {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: self.redacted_arguments(call),
            output: format!("error: {reason}"),
            is_error: true,
            duration_ms: 0,
        };
        self.audit_call(&report, Decision::Blocked, reason.to_string(), json!({}));
        sink(TurnEvent::ToolCallFinished(report.clone()));
        report
    }

    /// Writes a tool call to the audit log, with `extra` detail besides its id and arguments.
    pub(super) fn audit_call(&self, report: &ToolCallReport, decision: Decision, outcome: String, extra: Value) {
        let mut detail = json!({"call_id": report.id, "arguments": report.arguments});
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        self.guard.audit().record(AuditEntry {
            seq: 0,
            at_ms: self.ports.clock.now_ms().saturating_sub(report.duration_ms),
            principal: String::new(),
            session: None,
            kind: AuditKind::ToolCall,
            tool: report.name.clone(),
            detail,
            decision,
            outcome,
            duration_ms: report.duration_ms,
        });
    }
}
