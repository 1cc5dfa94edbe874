//! The audit log: an append-only record of every tool call and every egress decision, kept per
//! principal and readable only by them.
//!
//! Entries are collected in an [`AuditLog`] while a turn runs and written to the [`AuditStore`] in one
//! append after each batch of tool calls, so a turn costs one store round trip per batch, not one per
//! entry. Arguments and details are redacted by the leak scanner before they are recorded.

use std::cell::RefCell;
use std::rc::Rc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most entries one query returns.
pub const MAX_AUDIT_PAGE: usize = 500;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A tool call the model made.
    ToolCall,
    /// An outbound request a tool asked for, and whether the egress gate let it out.
    Egress,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// It went ahead.
    Allowed,
    /// A policy refused it.
    Blocked,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the principal's log, assigned by the store (0 until stored).
    #[serde(default)]
    pub seq: u64,
    /// When it happened (unix ms).
    pub at_ms: u64,
    /// Whose action it was.
    pub principal: String,
    /// The session it happened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What kind of action.
    pub kind: AuditKind,
    /// The tool involved.
    pub tool: String,
    /// What was asked, redacted: a tool call's arguments, or an egress request's method and URL.
    pub detail: Value,
    /// Whether it was allowed.
    pub decision: Decision,
    /// How it ended, or why it was refused (redacted).
    pub outcome: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// Which entries a query wants: newest first, optionally only older than `before` and of one kind,
/// tool or session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many (1–[`MAX_AUDIT_PAGE`], default 100).
    pub limit: Option<usize>,
    /// Only entries with a smaller `seq` (for paging).
    pub before: Option<u64>,
    /// Only this kind.
    pub kind: Option<AuditKind>,
    /// Only this tool.
    pub tool: Option<String>,
    /// Only this session.
    pub session: Option<String>,
}

impl AuditQuery {
    /// The page size asked for, within bounds.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE)
    }

    /// Whether `entry` passes the query's filters (not `limit`).
    pub fn admits(&self, entry: &AuditEntry) -> bool {
        self.before.is_none_or(|before| entry.seq < before)
            && self.kind.is_none_or(|kind| entry.kind == kind)
            && self.tool.as_ref().is_none_or(|tool| &entry.tool == tool)
            && self.session.as_ref().is_none_or(|session| entry.session.as_ref() == Some(session))
    }
}

/// Where one principal's audit entries are kept. There is no update and no delete.
#[async_trait(?Send)]
pub trait AuditStore {
    /// Appends entries in order, assigning each the next `seq`.
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), String>;
    /// Entries matching `query`, newest first.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, String>;
}

/// The entries of a running agent, waiting to be written.
pub struct AuditLog {
    principal: String,
    session: Option<String>,
    pending: RefCell<Vec<AuditEntry>>,
    store: Option<Rc<dyn AuditStore>>,
}

impl AuditLog {
    /// A log of `principal`'s actions in `session`, written to `store`.
    pub fn new(principal: &str, session: Option<&str>, store: Rc<dyn AuditStore>) -> AuditLog {
        AuditLog {
            principal: principal.to_string(),
            session: session.map(str::to_string),
            pending: RefCell::default(),
            store: Some(store),
        }
    }

    /// A log that records nothing (stateless requests, which have no owner's log to write to).
    pub fn disabled() -> AuditLog {
        AuditLog { principal: String::new(), session: None, pending: RefCell::default(), store: None }
    }

    /// Queues an entry; `seq`, `principal` and `session` are filled in here.
    pub fn record(&self, mut entry: AuditEntry) {
        if self.store.is_none() {
            return;
        }
        entry.principal.clone_from(&self.principal);
        entry.session.clone_from(&self.session);
        self.pending.borrow_mut().push(entry);
    }

    /// Writes the queued entries. On failure they stay queued for the next flush.
    pub async fn flush(&self) -> Result<(), String> {
        let Some(store) = &self.store else { return Ok(()) };
        let entries = std::mem::take(&mut *self.pending.borrow_mut());
        if entries.is_empty() {
            return Ok(());
        }
        let written = store.append(&entries).await;
        if written.is_err() {
            let mut pending = self.pending.borrow_mut();
            let newer = std::mem::replace(&mut *pending, entries);
            pending.extend(newer);
        }
        written
    }
}

/// An [`AuditStore`] in memory (tests, and the reference behaviour for the platforms' stores).
#[derive(Default)]
pub struct InMemoryAudit {
    entries: RefCell<Vec<AuditEntry>>,
}

impl InMemoryAudit {
    /// Every stored entry, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.borrow().clone()
    }
}

#[async_trait(?Send)]
impl AuditStore for InMemoryAudit {
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), String> {
        let mut stored = self.entries.borrow_mut();
        for entry in entries {
            let seq = stored.len() as u64 + 1;
            stored.push(AuditEntry { seq, ..entry.clone() });
        }
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, String> {
        let stored = self.entries.borrow();
        Ok(stored.iter().rev().filter(|e| query.admits(e)).take(query.page_size()).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use serde_json::json;

    fn entry(tool: &str, kind: AuditKind) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms: 1,
            principal: "someone-else".into(),
            session: None,
            kind,
            tool: tool.into(),
            detail: json!({}),
            decision: Decision::Allowed,
            outcome: "ok".into(),
            duration_ms: 0,
        }
    }

    #[test]
    fn entries_are_written_in_batches_with_their_owner_and_queried_newest_first() {
        let store = Rc::new(InMemoryAudit::default());
        let log = AuditLog::new("alice", Some("s1"), store.clone());
        log.record(entry("calculator", AuditKind::ToolCall));
        log.record(entry("http_fetch", AuditKind::ToolCall));
        log.record(entry("http_fetch", AuditKind::Egress));
        assert!(store.entries().is_empty(), "nothing is written before the flush");
        block_on(log.flush()).unwrap();
        let all = block_on(store.query(&AuditQuery::default())).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(all.iter().all(|e| e.principal == "alice" && e.session.as_deref() == Some("s1")));
        let egress = AuditQuery { kind: Some(AuditKind::Egress), ..Default::default() };
        assert_eq!(block_on(store.query(&egress)).unwrap().len(), 1);
        let page = AuditQuery { before: Some(3), limit: Some(1), ..Default::default() };
        assert_eq!(block_on(store.query(&page)).unwrap()[0].seq, 2);
    }

    struct FailingStore;

    #[async_trait(?Send)]
    impl AuditStore for FailingStore {
        async fn append(&self, _: &[AuditEntry]) -> Result<(), String> {
            Err("down".into())
        }
        async fn query(&self, _: &AuditQuery) -> Result<Vec<AuditEntry>, String> {
            Err("down".into())
        }
    }

    #[test]
    fn a_failed_flush_keeps_the_entries_in_order() {
        let log = AuditLog::new("alice", None, Rc::new(FailingStore));
        log.record(entry("a", AuditKind::ToolCall));
        assert!(block_on(log.flush()).is_err());
        log.record(entry("b", AuditKind::ToolCall));
        let tools: Vec<String> = log.pending.borrow().iter().map(|e| e.tool.clone()).collect();
        assert_eq!(tools, ["a", "b"]);
    }
}
