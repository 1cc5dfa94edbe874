//! Tools the model can call: the [`Tool`] trait, the [`ToolRegistry`] and the built-in tools.

mod calculator;
mod current_time;
mod http_fetch;
pub mod memory;
pub mod schedule;

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::Value;

use crate::llm::ToolSpec;
use crate::ports::Ports;
use crate::security::{Egress, Risk, Source};

pub use calculator::Calculator;
pub use current_time::CurrentTime;
pub use http_fetch::{HttpFetch, HTTP_FETCH};

/// Why a tool call failed. The message goes back to the model as the tool's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A tool error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A capability the model can invoke with JSON arguments.
#[async_trait(?Send)]
pub trait Tool {
    /// Unique name the model calls it by.
    fn name(&self) -> &'static str;
    /// What it does and when to use it, for the model.
    fn description(&self) -> &'static str;
    /// JSON Schema of the arguments object.
    fn parameters(&self) -> Value;
    /// Runs the tool; the text returned is what the model sees.
    async fn execute(&self, arguments: Value) -> Result<String, ToolError>;
    /// Where the tool's output comes from when it is not the tool's own: such output is screened for
    /// prompt injection and fenced as untrusted before the model sees it.
    fn provenance(&self) -> Option<Source> {
        None
    }
    /// How much harm this call could do (the approval policy asks about high-risk calls by default).
    fn risk(&self, _arguments: &Value) -> Risk {
        Risk::Low
    }
}

/// The tools available to one agent.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Rc<dyn Tool>>,
}

impl ToolRegistry {
    /// The built-in tools over these ports; the ones that go out do so through `egress`.
    pub fn builtin(ports: &Ports, egress: Rc<Egress>) -> Self {
        let mut registry = Self::default();
        registry.register(Rc::new(Calculator));
        registry.register(Rc::new(CurrentTime::new(ports.clock.clone())));
        registry.register(Rc::new(HttpFetch::new(egress)));
        registry
    }

    /// Adds a tool, replacing any tool of the same name.
    pub fn register(&mut self, tool: Rc<dyn Tool>) {
        self.tools.retain(|t| t.name() != tool.name());
        self.tools.push(tool);
    }

    /// The tool with this name.
    pub fn get(&self, name: &str) -> Option<&Rc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// Names of all tools.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// The specs advertised to the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|t| ToolSpec {
                name: t.name().into(),
                description: t.description().into(),
                parameters: t.parameters(),
            })
            .collect()
    }
}

/// Cuts `text` to at most `max_bytes` (at a character boundary) and appends `note` if it was cut.
pub(crate) fn truncate_text(text: &mut String, max_bytes: usize, note: &str) {
    if text.len() <= max_bytes {
        return;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(note);
}

/// Reads a required string argument.
fn string_arg<'a>(arguments: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::new(format!("missing required string argument `{name}`")))
}
