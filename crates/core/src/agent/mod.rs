//! The agent: one turn = assemble context, call the model, run the tools it asks for (concurrently),
//! feed the results back, and repeat until a final answer or the iteration limit.

mod approvals;
mod context;
mod events;

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::config::Config;
use crate::llm::{pricing, LlmClient, Message, ModelRequest, ToolCall, Usage};
use crate::memory::{Memory, Namespace};
use crate::ports::Ports;
use crate::security::{self, Approval, ApprovalRequest, Decision, Egress, Guard, InjectionAction, StreamRedactor};
use crate::session::{SessionId, SessionStore, TurnRecord, TurnStatus};
use crate::skills::SkillRegistry;
use crate::tools::{self, ToolError, ToolRegistry};
use crate::{Error, Result};

pub use approvals::ApprovalState;
pub use events::{ToolCallReport, TurnEvent, TurnReport};

/// Most messages loaded to build a turn's context (the token budget usually keeps far fewer).
const HISTORY_MESSAGE_LIMIT: usize = 1_000;
/// Longest tool output kept and shown to the model, in bytes.
const MAX_TOOL_OUTPUT_BYTES: usize = 64 * 1024;

/// What starts a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnInput {
    /// A new user message.
    Message(String),
    /// Run the last (failed) turn again from where it stopped.
    Retry,
    /// Go on with the turn paused for approval, now that every request is answered.
    Resume,
}

/// Everything one agent needs: configuration, model client, tools and skills over a set of ports.
pub struct Agent {
    config: Config,
    llm: LlmClient,
    tools: ToolRegistry,
    skills: SkillRegistry,
    ports: Ports,
    memory: Option<(Rc<Memory>, Namespace)>,
    guard: Rc<Guard>,
    egress: Rc<Egress>,
}

impl Agent {
    /// An agent with the built-in tools and the bundled skills, guarded by `guard` (its owner's
    /// secrets and audit log).
    pub fn new(config: Config, ports: Ports, guard: Rc<Guard>) -> Result<Agent> {
        let llm = LlmClient::new(config.routes.clone(), config.retry, ports.clone());
        let egress = Rc::new(Egress::new(ports.clone(), config.egress.clone(), guard.clone()));
        let tools = ToolRegistry::builtin(&ports, egress.clone());
        let skills = SkillRegistry::bundled()?;
        Ok(Agent { config, llm, tools, skills, ports, memory: None, guard, egress })
    }

    /// What is done with untrusted content that looks like a prompt-injection attempt.
    pub fn injection_policy(&self) -> &security::InjectionPolicy {
        &self.config.injection
    }

    /// The egress gate the agent's tools go out through (routine pre-checks and deliveries use it too).
    pub fn egress(&self) -> &Rc<Egress> {
        &self.egress
    }

    /// Gives the agent long-term memory in `namespace`: the memory tools, and recall of relevant
    /// memories into each turn's context.
    pub fn with_memory(mut self, memory: Rc<Memory>, namespace: Namespace) -> Agent {
        tools::memory::register(&mut self.tools, memory.clone(), namespace.clone());
        self.memory = Some((memory, namespace));
        self
    }

    /// Gives the agent the scheduling tools over `routines`, for routines that run in `session`.
    pub fn with_routines(mut self, routines: Rc<dyn tools::schedule::RoutineClient>, session: SessionId) -> Agent {
        tools::schedule::register(&mut self.tools, routines, session);
        self
    }

    /// Runs one turn against `store`, reporting progress to `sink`. The caller must ensure that only one
    /// turn of a session runs at a time (see [`crate::session::TurnQueue`]).
    pub async fn run_turn(
        &self,
        store: &dyn SessionStore,
        input: TurnInput,
        stream: bool,
        sink: &dyn Fn(TurnEvent),
    ) -> Result<TurnReport> {
        self.run_turn_within(store, input, stream, sink, None).await
    }

    /// [`Agent::run_turn`], stopping with `limit_reached` before a model call once the turn has used
    /// `token_budget` tokens (input + output).
    pub async fn run_turn_within(
        &self,
        store: &dyn SessionStore,
        input: TurnInput,
        stream: bool,
        sink: &dyn Fn(TurnEvent),
        token_budget: Option<u64>,
    ) -> Result<TurnReport> {
        let now = self.ports.clock.now_ms();
        let mut last_turn = store.last_turn().await?;
        // Only one turn runs at a time, so a turn still marked running was cut off by a restart.
        if let Some(stale) = last_turn.as_mut().filter(|t| t.status == TurnStatus::Running) {
            stale.status = TurnStatus::Failed;
            stale.error = Some("interrupted before it finished".into());
            stale.finished_at = Some(now);
            store.update_turn(stale).await?;
        }
        let paused = last_turn.as_ref().is_some_and(|t| t.status == TurnStatus::AwaitingApproval);
        if paused && input != TurnInput::Resume {
            return Err(Error::AwaitingApproval);
        }
        let mut history = store.recent_messages(HISTORY_MESSAGE_LIMIT).await?;
        let mut answered = Vec::new();
        let mut turn = match input {
            TurnInput::Message(text) => {
                let turn = TurnRecord {
                    id: self.ports.new_id("turn"),
                    status: TurnStatus::Running,
                    error: None,
                    started_at: now,
                    finished_at: None,
                    usage: Usage::default(),
                    cost_usd: Some(0.0),
                };
                store.start_turn(&turn).await?;
                let message = Message::User { content: text };
                store.append(&turn.id, &message, now).await?;
                history.push(message);
                turn
            }
            TurnInput::Retry => {
                let mut turn = last_turn.filter(|t| t.status == TurnStatus::Failed).ok_or(Error::NothingToRetry)?;
                turn.status = TurnStatus::Running;
                turn.error = None;
                turn.finished_at = None;
                store.update_turn(&turn).await?;
                turn
            }
            TurnInput::Resume => {
                let mut turn = last_turn.filter(|_| paused).ok_or(Error::NotPaused)?;
                answered = store.approvals().await?;
                if !approvals::ApprovalState::of(&answered).ready {
                    return Err(Error::AwaitingApproval);
                }
                turn.status = TurnStatus::Running;
                store.update_turn(&turn).await?;
                turn
            }
        };
        sink(TurnEvent::TurnStarted { turn_id: turn.id.clone() });

        let result = self.turn_loop(store, &mut turn, &mut history, answered, stream, sink, token_budget).await;
        turn.finished_at = Some(self.ports.clock.now_ms());
        match result {
            Ok(mut report) => {
                turn.status = report.status;
                if turn.status == TurnStatus::AwaitingApproval {
                    turn.finished_at = None;
                }
                store.update_turn(&turn).await?;
                report.usage = turn.usage;
                report.cost_usd = turn.cost_usd;
                Ok(report)
            }
            Err(error) => {
                turn.status = TurnStatus::Failed;
                turn.error = Some(error.to_string());
                store.update_turn(&turn).await?;
                Err(error)
            }
        }
    }

    /// The model–tools loop of a turn; a resumed turn first settles its `answered` approval requests.
    #[allow(clippy::too_many_arguments)]
    async fn turn_loop(
        &self,
        store: &dyn SessionStore,
        turn: &mut TurnRecord,
        history: &mut Vec<Message>,
        answered: Vec<ApprovalRequest>,
        stream: bool,
        sink: &dyn Fn(TurnEvent),
        token_budget: Option<u64>,
    ) -> Result<TurnReport> {
        let last_user = history.iter().rev().find_map(|m| match m {
            Message::User { content } => Some(content.clone()),
            _ => None,
        });
        let last_user = last_user.as_deref().unwrap_or("");
        self.guard.refresh().await?;
        let mut system = context::system_prompt(&self.config, &self.skills, last_user);
        if let Some((memory, namespace)) = &self.memory {
            // Recall is best effort: a memory outage must not stop the conversation.
            if let Ok(Some(recalled)) = memory.recall(namespace, last_user).await {
                context::add_recalled(&mut system, &recalled);
            }
        }
        let specs = self.tools.specs();
        let mut tool_reports = Vec::new();
        let mut model = String::new();
        let mut iterations = 0;
        if !answered.is_empty() {
            let outcomes = join_all(answered.iter().map(|request| self.resolve(request, sink))).await;
            let waiting = self.settle(store, turn, history, outcomes, &mut tool_reports, sink).await?;
            if !waiting.is_empty() {
                return Ok(awaiting(turn, waiting, tool_reports, model, iterations));
            }
        }
        loop {
            if iterations == self.config.max_iterations {
                let reply = format!(
                    "Stopped after {iterations} model calls without a final answer (the iteration limit). Ask me to continue if you want more."
                );
                return Ok(TurnReport::new(turn, TurnStatus::LimitReached, reply, tool_reports, model, iterations));
            }
            let used = turn.usage.input_tokens + turn.usage.output_tokens;
            if let Some(budget) = token_budget.filter(|budget| used >= *budget) {
                let reply =
                    format!("Stopped after using {used} tokens without a final answer (the budget is {budget}).");
                return Ok(TurnReport::new(turn, TurnStatus::LimitReached, reply, tool_reports, model, iterations));
            }
            iterations += 1;
            let window = context::window(history, self.config.history_budget_tokens);
            let request = ModelRequest {
                system: &system,
                messages: window,
                tools: &specs,
                max_tokens: self.config.max_output_tokens,
                stream,
            };
            let redactor = RefCell::new(StreamRedactor::new(self.guard.scanner()));
            let emit = |text: String| {
                if !text.is_empty() {
                    sink(TurnEvent::TextDelta { text });
                }
            };
            let completion = self.llm.complete(&request, &|text| emit(redactor.borrow_mut().push(text))).await?;
            emit(redactor.borrow_mut().finish());
            let mut reply = completion.reply;
            // The model's words leave through the transcript, the client and the next model call:
            // credentials it repeats are redacted from all of them.
            reply.text = self.guard.redact(&reply.text).text;
            model = completion.route.label();
            turn.usage += reply.usage;
            turn.cost_usd =
                turn.cost_usd.zip(pricing::cost_usd(&completion.route.model, reply.usage)).map(|(a, b)| a + b);
            sink(TurnEvent::Usage {
                input_tokens: reply.usage.input_tokens,
                output_tokens: reply.usage.output_tokens,
                model: model.clone(),
            });

            let stored_calls = reply
                .tool_calls
                .iter()
                .map(|call| ToolCall { arguments: self.guard.redact(&call.arguments).text, ..call.clone() })
                .collect();
            let assistant = Message::Assistant { content: reply.text.clone(), tool_calls: stored_calls };
            store.append(&turn.id, &assistant, self.ports.clock.now_ms()).await?;
            history.push(assistant);
            if reply.tool_calls.is_empty() {
                return Ok(TurnReport::new(turn, TurnStatus::Completed, reply.text, tool_reports, model, iterations));
            }

            for call in &reply.tool_calls {
                sink(TurnEvent::ToolCallStarted {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: self.redacted_arguments(call),
                });
            }
            let outcomes = join_all(reply.tool_calls.iter().map(|call| self.handle_call(&turn.id, call, sink))).await;
            let waiting = self.settle(store, turn, history, outcomes, &mut tool_reports, sink).await?;
            if !waiting.is_empty() {
                return Ok(awaiting(turn, waiting, tool_reports, model, iterations));
            }
        }
    }

    /// Runs one tool call; every failure becomes an error result for the model, never a failed turn.
    /// Output from outside is screened for prompt injection and fenced; every output is cleared of
    /// credentials; the call is audited. Output held for the owner's review comes back beside the
    /// report (whose output is then the notice that it was withheld).
    async fn run_tool(&self, call: &ToolCall) -> (ToolCallReport, Option<String>) {
        let started = self.ports.clock.now_ms();
        let timeout = self.config.tool_timeout_ms;
        let tool = self.tools.get(&call.name);
        let arguments = serde_json::from_str::<Value>(&call.arguments);
        let result = match (&arguments, tool) {
            (_, None) => Err(ToolError::new(format!(
                "unknown tool `{}`; available tools: {}",
                call.name,
                self.tools.names().join(", ")
            ))),
            (Err(e), Some(_)) => Err(ToolError::new(format!("the arguments are not valid JSON: {e}"))),
            (Ok(arguments), Some(tool)) => self
                .ports
                .with_timeout(timeout, tool.execute(arguments.clone()))
                .await
                .unwrap_or_else(|| Err(ToolError::new(format!("timed out after {timeout} ms")))),
        };
        let mut screening = Value::Null;
        let mut held = None;
        let (mut output, mut is_error) = match result {
            Ok(mut output) => {
                tools::truncate_text(&mut output, MAX_TOOL_OUTPUT_BYTES, "\n[output truncated]");
                if let Some(source) = tool.and_then(|tool| tool.provenance()) {
                    let label = arguments.as_ref().ok().and_then(|a| a.get("url")?.as_str()).unwrap_or(&call.name);
                    let screened = security::screen(&self.config.injection, source, label, &output);
                    if let Some(action) = screened.action {
                        screening = json!({"action": action, "severity": screened.detection.severity, "signals": screened.detection.signals});
                    }
                    if screened.action == Some(InjectionAction::Review) {
                        held =
                            screened.held.map(|text| self.guard.redact(&text)).filter(|r| !r.blocked).map(|r| r.text);
                    }
                    output = screened.text;
                }
                (output, false)
            }
            Err(error) => {
                let mut output = format!("error: {error}");
                tools::truncate_text(&mut output, MAX_TOOL_OUTPUT_BYTES, "\n[output truncated]");
                (output, true)
            }
        };
        let redacted = self.guard.redact(&output);
        if redacted.blocked {
            let rules: Vec<&str> = redacted.findings.iter().map(|f| f.rule.as_str()).collect();
            output = format!("error: the output was withheld: it contains a credential ({})", rules.join(", "));
            is_error = true;
        } else {
            output = redacted.text;
        }
        let report = ToolCallReport {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: self.redacted_arguments(call),
            output,
            is_error,
            duration_ms: self.ports.clock.now_ms().saturating_sub(started),
        };
        let mut detail = json!({});
        if !screening.is_null() {
            detail["injection"] = screening;
        }
        if !redacted.findings.is_empty() {
            detail["credentials_in_output"] = json!(redacted.findings.iter().map(|f| &f.rule).collect::<Vec<_>>());
        }
        let outcome = if is_error { first_line(&report.output) } else { format!("ok, {} bytes", report.output.len()) };
        let decision = if tool.is_some() { Decision::Allowed } else { Decision::Blocked };
        self.audit_call(&report, decision, outcome, detail);
        (report, held)
    }

    /// A call's arguments as a JSON object, with any credential in them redacted.
    fn redacted_arguments(&self, call: &ToolCall) -> Value {
        let redacted = ToolCall { arguments: self.guard.redact(&call.arguments).text, ..call.clone() };
        redacted.arguments_object()
    }
}

/// The report of a turn that pauses until the owner answers `waiting`.
fn awaiting(
    turn: &TurnRecord,
    waiting: Vec<Approval>,
    tool_reports: Vec<ToolCallReport>,
    model: String,
    iterations: u32,
) -> TurnReport {
    let asks: Vec<String> = waiting.iter().map(|a| format!("`{}` ({}; request {})", a.tool, a.reason, a.id)).collect();
    let reply = format!("Waiting for your approval before going on: {}.", asks.join("; "));
    let mut report = TurnReport::new(turn, TurnStatus::AwaitingApproval, reply, tool_reports, model, iterations);
    report.approvals = waiting;
    report
}

/// The first line of a text, at most 300 bytes long.
fn first_line(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or("").to_string();
    tools::truncate_text(&mut line, 300, "…");
    line
}

#[cfg(test)]
mod tests;
