//! A first-come-first-served queue of runs with a concurrency limit and visible positions.
//!
//! Invariants: at most `limit` permits are out at once; waiters are served strictly in arrival
//! order; a waiter that goes away (client disconnected) leaves the queue and frees its place; a
//! permit returns its slot when dropped, whatever ended the run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

#[derive(Debug)]
struct State {
    running: usize,
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

#[derive(Debug)]
pub struct RunQueue {
    limit: usize,
    state: Mutex<State>,
    /// Bumped on every change, so waiters re-check their position.
    changed: watch::Sender<u64>,
}

/// Holding one means a run may go; dropping it lets the next one in.
#[derive(Debug)]
pub struct Permit {
    queue: Arc<RunQueue>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.queue.state.lock() {
            s.running = s.running.saturating_sub(1);
        }
        self.queue.changed.send_modify(|v| *v += 1);
    }
}

struct Waiting {
    queue: Arc<RunQueue>,
    ticket: u64,
    admitted: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.admitted {
            if let Ok(mut s) = self.queue.state.lock() {
                s.waiting.retain(|t| *t != self.ticket);
            }
            self.queue.changed.send_modify(|v| *v += 1);
        }
    }
}

impl RunQueue {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(RunQueue {
            limit: limit.max(1),
            state: Mutex::new(State {
                running: 0,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            changed: watch::channel(0).0,
        })
    }

    pub fn running(&self) -> usize {
        self.state.lock().map(|s| s.running).unwrap_or(0)
    }

    pub fn waiting(&self) -> usize {
        self.state.lock().map(|s| s.waiting.len()).unwrap_or(0)
    }

    /// Waits for a slot. `on_position` hears the 1-based place in line each time it changes
    /// (not called when a slot is free at once).
    pub async fn acquire(self: &Arc<Self>, mut on_position: impl FnMut(usize)) -> Permit {
        let mut rx = self.changed.subscribe();
        let ticket = {
            let Ok(mut s) = self.state.lock() else {
                return Permit {
                    queue: self.clone(),
                };
            };
            let t = s.next_ticket;
            s.next_ticket += 1;
            s.waiting.push_back(t);
            t
        };
        let mut guard = Waiting {
            queue: self.clone(),
            ticket,
            admitted: false,
        };
        let mut last_position = 0;
        loop {
            let position = {
                let Ok(mut s) = self.state.lock() else { break };
                let pos = s.waiting.iter().position(|t| *t == ticket).unwrap_or(0);
                if pos == 0 && s.running < self.limit {
                    s.waiting.pop_front();
                    s.running += 1;
                    guard.admitted = true;
                    break;
                }
                pos + 1
            };
            if position != last_position {
                on_position(position);
                last_position = position;
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        // Admitted (or the queue is broken, in which case running unguarded beats hanging).
        if guard.admitted {
            self.changed.send_modify(|v| *v += 1);
        }
        Permit {
            queue: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn limits_and_serves_in_order_with_positions() {
        let q = RunQueue::new(2);
        let a = q.acquire(|_| panic!("a is not queued")).await;
        let b = q.acquire(|_| panic!("b is not queued")).await;
        assert_eq!(q.running(), 2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let q2 = q.clone();
        let tx2 = tx.clone();
        let c = tokio::spawn(async move { q2.acquire(|p| tx2.send(("c", p)).unwrap()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let q3 = q.clone();
        let d = tokio::spawn(async move { q3.acquire(|p| tx.send(("d", p)).unwrap()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(rx.recv().await, Some(("c", 1)));
        assert_eq!(rx.recv().await, Some(("d", 2)));
        drop(a);
        let c = c.await.unwrap();
        assert_eq!(rx.recv().await, Some(("d", 1)));
        assert_eq!(q.running(), 2);
        drop(b);
        let d = d.await.unwrap();
        drop((c, d));
        assert_eq!(q.running(), 0);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place() {
        let q = RunQueue::new(1);
        let a = q.acquire(|_| {}).await;
        let q2 = q.clone();
        let leaving = tokio::spawn(async move { q2.acquire(|_| {}).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.waiting(), 1);
        leaving.abort();
        let _ = leaving.await;
        assert_eq!(q.waiting(), 0);
        drop(a);
        let _b = q.acquire(|_| panic!("free slot")).await;
        assert_eq!(q.running(), 1);
    }
}
