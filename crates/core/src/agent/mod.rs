//! The agent: one turn = assemble context, call the model, run the tools it asks for (concurrently),
//! feed the results back, and repeat until a final answer or the iteration limit.

mod context;
mod events;

use std::rc::Rc;

use futures::future::join_all;
use serde_json::Value;

use crate::config::Config;
use crate::llm::{pricing, LlmClient, Message, ModelRequest, ToolCall, Usage};
use crate::memory::{Memory, Namespace};
use crate::ports::Ports;
use crate::session::{SessionId, SessionStore, TurnRecord, TurnStatus};
use crate::skills::SkillRegistry;
use crate::tools::{self, ToolError, ToolRegistry};
use crate::{Error, Result};

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
}

/// Everything one agent needs: configuration, model client, tools and skills over a set of ports.
pub struct Agent {
    config: Config,
    llm: LlmClient,
    tools: ToolRegistry,
    skills: SkillRegistry,
    ports: Ports,
    memory: Option<(Rc<Memory>, Namespace)>,
}

impl Agent {
    /// An agent with the built-in tools and the bundled skills.
    pub fn new(config: Config, ports: Ports) -> Result<Agent> {
        let llm = LlmClient::new(config.routes.clone(), config.retry, ports.clone());
        let tools = ToolRegistry::builtin(&ports, config.fetch);
        let skills = SkillRegistry::bundled()?;
        Ok(Agent { config, llm, tools, skills, ports, memory: None })
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
        let mut history = store.recent_messages(HISTORY_MESSAGE_LIMIT).await?;
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
        };
        sink(TurnEvent::TurnStarted { turn_id: turn.id.clone() });

        let result = self.turn_loop(store, &mut turn, &mut history, stream, sink, token_budget).await;
        turn.finished_at = Some(self.ports.clock.now_ms());
        match result {
            Ok(mut report) => {
                turn.status = report.status;
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

    async fn turn_loop(
        &self,
        store: &dyn SessionStore,
        turn: &mut TurnRecord,
        history: &mut Vec<Message>,
        stream: bool,
        sink: &dyn Fn(TurnEvent),
        token_budget: Option<u64>,
    ) -> Result<TurnReport> {
        let last_user = history.iter().rev().find_map(|m| match m {
            Message::User { content } => Some(content.clone()),
            _ => None,
        });
        let last_user = last_user.as_deref().unwrap_or("");
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
        let on_text = |text: &str| sink(TurnEvent::TextDelta { text: text.to_string() });
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
            let completion = self.llm.complete(&request, &on_text).await?;
            let reply = completion.reply;
            model = completion.route.label();
            turn.usage += reply.usage;
            turn.cost_usd =
                turn.cost_usd.zip(pricing::cost_usd(&completion.route.model, reply.usage)).map(|(a, b)| a + b);
            sink(TurnEvent::Usage {
                input_tokens: reply.usage.input_tokens,
                output_tokens: reply.usage.output_tokens,
                model: model.clone(),
            });

            let assistant = Message::Assistant { content: reply.text.clone(), tool_calls: reply.tool_calls.clone() };
            store.append(&turn.id, &assistant, self.ports.clock.now_ms()).await?;
            history.push(assistant);
            if reply.tool_calls.is_empty() {
                return Ok(TurnReport::new(turn, TurnStatus::Completed, reply.text, tool_reports, model, iterations));
            }

            for call in &reply.tool_calls {
                sink(TurnEvent::ToolCallStarted {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments_object(),
                });
            }
            let reports = join_all(reply.tool_calls.iter().map(|call| self.run_tool(call, sink))).await;
            for report in reports {
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
        }
    }

    /// Runs one tool call; every failure becomes an error result for the model, never a failed turn.
    async fn run_tool(&self, call: &ToolCall, sink: &dyn Fn(TurnEvent)) -> ToolCallReport {
        let started = self.ports.clock.now_ms();
        let timeout = self.config.tool_timeout_ms;
        let result = match (serde_json::from_str::<Value>(&call.arguments), self.tools.get(&call.name)) {
            (_, None) => Err(ToolError::new(format!(
                "unknown tool `{}`; available tools: {}",
                call.name,
                self.tools.names().join(", ")
            ))),
            (Err(e), Some(_)) => Err(ToolError::new(format!("the arguments are not valid JSON: {e}"))),
            (Ok(arguments), Some(tool)) => self
                .ports
                .with_timeout(timeout, tool.execute(arguments))
                .await
                .unwrap_or_else(|| Err(ToolError::new(format!("timed out after {timeout} ms")))),
        };
        let (mut output, is_error) = match result {
            Ok(output) => (output, false),
            Err(error) => (format!("error: {error}"), true),
        };
        tools::truncate_text(&mut output, MAX_TOOL_OUTPUT_BYTES, "\n[output truncated]");
        let report = ToolCallReport {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments_object(),
            output,
            is_error,
            duration_ms: self.ports.clock.now_ms().saturating_sub(started),
        };
        sink(TurnEvent::ToolCallFinished(report.clone()));
        report
    }
}

#[cfg(test)]
mod tests;
