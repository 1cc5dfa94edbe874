//! A session store held in memory: for stateless OpenAI-compatible requests and for tests.

use std::cell::RefCell;

use async_trait::async_trait;

use super::{SessionStore, StoredMessage, Transcript, TurnRecord};
use crate::llm::Message;
use crate::security::ApprovalRequest;
use crate::Result;

/// Keeps a transcript in memory for the lifetime of the value.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    transcript: RefCell<Transcript>,
    approvals: RefCell<Vec<ApprovalRequest>>,
}

impl InMemoryStore {
    /// A store that starts with `messages` as earlier history.
    pub fn with_history(messages: Vec<Message>) -> Self {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(i, message)| StoredMessage { seq: i as u64 + 1, turn_id: "history".into(), created_at: 0, message })
            .collect();
        Self { transcript: RefCell::new(Transcript { messages, turns: vec![] }), approvals: RefCell::default() }
    }
}

#[async_trait(?Send)]
impl SessionStore for InMemoryStore {
    async fn start_turn(&self, turn: &TurnRecord) -> Result<()> {
        self.transcript.borrow_mut().turns.push(turn.clone());
        Ok(())
    }

    async fn append(&self, turn_id: &str, message: &Message, at_ms: u64) -> Result<()> {
        let mut t = self.transcript.borrow_mut();
        let seq = t.messages.last().map_or(1, |m| m.seq + 1);
        t.messages.push(StoredMessage {
            seq,
            turn_id: turn_id.to_string(),
            created_at: at_ms,
            message: message.clone(),
        });
        Ok(())
    }

    async fn update_turn(&self, turn: &TurnRecord) -> Result<()> {
        let mut t = self.transcript.borrow_mut();
        match t.turns.iter_mut().find(|r| r.id == turn.id) {
            Some(record) => *record = turn.clone(),
            None => t.turns.push(turn.clone()),
        }
        Ok(())
    }

    async fn recent_messages(&self, limit: usize) -> Result<Vec<Message>> {
        let t = self.transcript.borrow();
        let skip = t.messages.len().saturating_sub(limit);
        Ok(t.messages[skip..].iter().map(|m| m.message.clone()).collect())
    }

    async fn last_turn(&self) -> Result<Option<TurnRecord>> {
        Ok(self.transcript.borrow().turns.last().cloned())
    }

    async fn transcript(&self) -> Result<Transcript> {
        Ok(self.transcript.borrow().clone())
    }

    async fn save_approvals(&self, requests: &[ApprovalRequest]) -> Result<()> {
        let mut approvals = self.approvals.borrow_mut();
        for request in requests {
            match approvals.iter_mut().find(|r| r.approval.id == request.approval.id) {
                Some(stored) => *stored = request.clone(),
                None => approvals.push(request.clone()),
            }
        }
        Ok(())
    }

    async fn approvals(&self) -> Result<Vec<ApprovalRequest>> {
        Ok(self.approvals.borrow().clone())
    }

    async fn clear_approvals(&self) -> Result<()> {
        self.approvals.borrow_mut().clear();
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        *self.transcript.borrow_mut() = Transcript::default();
        self.approvals.borrow_mut().clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn recent_messages_are_the_newest_in_order() {
        let store = InMemoryStore::with_history(
            ["a", "b", "c"].iter().map(|t| Message::User { content: t.to_string() }).collect(),
        );
        let recent = block_on(store.recent_messages(2)).unwrap();
        assert_eq!(recent, vec![Message::User { content: "b".into() }, Message::User { content: "c".into() }]);
        assert_eq!(block_on(store.recent_messages(10)).unwrap().len(), 3);
        assert_eq!(block_on(store.last_turn()).unwrap(), None);
    }
}
