//! The memory tools: `memory_write`, `memory_search`, `memory_read` and `memory_delete`, over the
//! principal's default namespace.

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{string_arg, truncate_text, Tool, ToolError, ToolRegistry};
use crate::memory::{Memory, MemoryError, Namespace, SearchRequest};
use crate::security::Risk;

/// Longest document text returned by `memory_read`.
const MAX_READ_BYTES: usize = 16 * 1024;

/// The memory and namespace the tools work on.
struct Scope {
    memory: Rc<Memory>,
    namespace: Namespace,
}

fn tool_error(error: MemoryError) -> ToolError {
    ToolError::new(error.to_string())
}

/// Adds the four memory tools to `registry`.
pub fn register(registry: &mut ToolRegistry, memory: Rc<Memory>, namespace: Namespace) {
    let scope = Rc::new(Scope { memory, namespace });
    registry.register(Rc::new(MemoryWrite(scope.clone())));
    registry.register(Rc::new(MemorySearch(scope.clone())));
    registry.register(Rc::new(MemoryRead(scope.clone())));
    registry.register(Rc::new(MemoryDelete(scope)));
}

struct MemoryWrite(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for MemoryWrite {
    fn name(&self) -> &'static str {
        "memory_write"
    }

    fn description(&self) -> &'static str {
        "Save something to long-term memory. Without `note`, stores `content` as a fact (a short, \
         self-contained statement such as \"The user's daughter is called Ana\"). With `note` (e.g. \"USER.md\", \
         \"MEMORY.md\"), replaces that whole Markdown note with `content`: read it first to extend it."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The fact, or the note's full new text"},
                "note": {"type": "string", "description": "Name of the note to replace, e.g. USER.md"}
            },
            "required": ["content"]
        })
    }

    fn risk(&self, _arguments: &Value) -> Risk {
        Risk::Medium
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let content = string_arg(&arguments, "content")?;
        let scope = &self.0;
        let report = match arguments.get("note").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
            Some(note) => scope.memory.write_note(&scope.namespace, note.trim(), content).await,
            None => scope.memory.remember(&scope.namespace, content).await,
        }
        .map_err(tool_error)?;
        Ok(if report.unchanged {
            format!("Already in memory as `{}`.", report.document_id)
        } else {
            format!("Saved as `{}`.", report.document_id)
        })
    }
}

struct MemorySearch(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for MemorySearch {
    fn name(&self) -> &'static str {
        "memory_search"
    }

    fn description(&self) -> &'static str {
        "Search long-term memory (facts, notes and documents) by meaning and keywords. Returns the best \
         matching passages with their ids."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "k": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many results, default 5"}
            },
            "required": ["query"]
        })
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let query = string_arg(&arguments, "query")?;
        let k = arguments.get("k").and_then(Value::as_u64).unwrap_or(5).clamp(1, 20) as u32;
        let scope = &self.0;
        let results = match scope.memory.search(&scope.namespace, &SearchRequest::new(query, k)).await {
            Ok(results) => results.results,
            Err(MemoryError::NamespaceNotFound(_)) => Vec::new(),
            Err(error) => return Err(tool_error(error)),
        };
        if results.is_empty() {
            return Ok("Nothing in memory matches.".into());
        }
        Ok(results
            .iter()
            .enumerate()
            .map(|(i, hit)| {
                let place =
                    if hit.chunk.heading.is_empty() { String::new() } else { format!(" › {}", hit.chunk.heading) };
                format!("{}. [{}{}] {}", i + 1, hit.chunk.document_id, place, hit.chunk.text)
            })
            .collect::<Vec<_>>()
            .join("\n\n"))
    }
}

/// The schema of tools that take one entry id.
fn id_parameter() -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "string", "description": "The entry's id"}},
        "required": ["id"]
    })
}

struct MemoryRead(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for MemoryRead {
    fn name(&self) -> &'static str {
        "memory_read"
    }

    fn description(&self) -> &'static str {
        "Read a whole memory entry by id: a note such as USER.md, a fact id, or a document id from memory_search."
    }

    fn parameters(&self) -> Value {
        id_parameter()
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let id = string_arg(&arguments, "id")?.trim();
        let scope = &self.0;
        let doc = match scope.memory.get(&scope.namespace, id).await {
            Ok(doc) => doc,
            Err(MemoryError::DocumentNotFound(_)) => {
                return Err(ToolError::new(format!("nothing in memory has id `{id}`")))
            }
            Err(error) => return Err(tool_error(error)),
        };
        let mut text = doc.text;
        truncate_text(&mut text, MAX_READ_BYTES, "\n[truncated]");
        Ok(format!("# {}\n\n{}", doc.title, text))
    }
}

struct MemoryDelete(Rc<Scope>);

#[async_trait(?Send)]
impl Tool for MemoryDelete {
    fn name(&self) -> &'static str {
        "memory_delete"
    }

    fn description(&self) -> &'static str {
        "Delete a memory entry by id (when the user asks to forget something, or a fact is wrong)."
    }

    fn parameters(&self) -> Value {
        id_parameter()
    }

    fn risk(&self, _arguments: &Value) -> Risk {
        Risk::Medium
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let id = string_arg(&arguments, "id")?.trim();
        let scope = &self.0;
        scope.memory.delete(&scope.namespace, id).await.map_err(tool_error)?;
        Ok(format!("Deleted `{id}`."))
    }
}
