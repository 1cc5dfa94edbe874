//! A first-come, first-served queue that lets one turn of a session run at a time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use futures::channel::oneshot;

#[derive(Default)]
struct State {
    busy: bool,
    waiting: VecDeque<oneshot::Sender<()>>,
}

/// Serialises turns in arrival order. Cheap to clone; clones share the queue.
#[derive(Clone, Default)]
pub struct TurnQueue {
    state: Rc<RefCell<State>>,
}

/// Holding this means it is your turn; dropping it lets the next waiter in.
pub struct TurnSlot {
    state: Rc<RefCell<State>>,
}

impl TurnQueue {
    /// Waits until every earlier caller has released its slot.
    pub async fn acquire(&self) -> TurnSlot {
        let waiter = {
            let mut state = self.state.borrow_mut();
            if state.busy {
                let (tx, rx) = oneshot::channel();
                state.waiting.push_back(tx);
                Some(rx)
            } else {
                state.busy = true;
                None
            }
        };
        if let Some(rx) = waiter {
            // The sender is only dropped after handing over the slot, so an error cannot happen; either
            // way the slot is ours now.
            let _ = rx.await;
        }
        TurnSlot { state: self.state.clone() }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.state.borrow().waiting.len()
    }
}

impl Drop for TurnSlot {
    fn drop(&mut self) {
        let mut state = self.state.borrow_mut();
        // Hand the slot straight to the next live waiter (one whose future was not dropped meanwhile).
        while let Some(next) = state.waiting.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
        }
        state.busy = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    #[test]
    fn slots_are_granted_one_at_a_time_in_arrival_order() {
        let queue = TurnQueue::default();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut pool = LocalPool::new();
        let (gate_tx, gate_rx) = oneshot::channel::<()>();
        let first = queue.clone();
        let first_log = log.clone();
        pool.spawner()
            .spawn_local(async move {
                let _slot = first.acquire().await;
                first_log.borrow_mut().push("start 0");
                let _ = gate_rx.await;
                first_log.borrow_mut().push("end 0");
            })
            .unwrap();
        pool.run_until_stalled();
        for i in 1..=3 {
            let q = queue.clone();
            let l = log.clone();
            pool.spawner()
                .spawn_local(async move {
                    let _slot = q.acquire().await;
                    l.borrow_mut().push(["start 1", "start 2", "start 3"][i - 1]);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(queue.waiting(), 3);
        assert_eq!(*log.borrow(), vec!["start 0"]);
        gate_tx.send(()).unwrap();
        pool.run();
        assert_eq!(*log.borrow(), vec!["start 0", "end 0", "start 1", "start 2", "start 3"]);
        assert_eq!(queue.waiting(), 0);
    }

    #[test]
    fn an_abandoned_waiter_does_not_block_the_queue() {
        let queue = TurnQueue::default();
        let slot = futures::executor::block_on(queue.acquire());
        let mut abandoned = Box::pin(queue.acquire());
        assert!(futures::FutureExt::now_or_never(abandoned.as_mut()).is_none());
        drop(abandoned);
        drop(slot);
        futures::executor::block_on(queue.acquire());
    }
}
