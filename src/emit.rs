//! Stamps events with the run id, appends them to the run's `events.jsonl`, and sends them on.
//!
//! Invariants: an event is written to the log before any front-end sees it (streaming `AI Delta`
//! fragments, `Output` chunks and `Live Diff`s excepted: what they show follows in a stored
//! event — see [`Event::is_transient`]); events emitted
//! before the run folder exists are buffered and written when it is attached; the channel is
//! bounded, so a slow consumer slows the pipeline instead of growing memory; a gone consumer never
//! fails a run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::event::{Event, Stage};

#[derive(Default)]
struct Log {
    file: Option<std::fs::File>,
    buffered: Vec<String>,
}

#[derive(Clone)]
pub struct Emitter {
    run_id: String,
    tx: mpsc::Sender<Event>,
    log: Arc<Mutex<Log>>,
    /// Notified after each edit or command the agent reports (the live diff waits on it).
    changed: Arc<tokio::sync::Notify>,
}

impl Emitter {
    pub fn new(run_id: impl Into<String>, tx: mpsc::Sender<Event>) -> Self {
        Emitter {
            run_id: run_id.into(),
            tx,
            log: Arc::default(),
            changed: Arc::default(),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Starts writing to `file`, first the events buffered so far.
    pub fn attach_log(&self, mut file: std::fs::File) -> std::io::Result<()> {
        let Ok(mut log) = self.log.lock() else {
            return Err(std::io::Error::other("log lock poisoned"));
        };
        for line in log.buffered.drain(..) {
            writeln!(file, "{line}")?;
        }
        log.file = Some(file);
        Ok(())
    }

    fn persist(&self, event: &Event) {
        self.persist_line(event.to_json_line());
    }

    fn persist_line(&self, line: String) {
        let Ok(mut log) = self.log.lock() else { return };
        match log.file.as_mut() {
            Some(f) => {
                if let Err(e) = writeln!(f, "{line}") {
                    tracing::error!("could not append to events.jsonl: {e}");
                }
            }
            None => log.buffered.push(line),
        }
    }

    /// Woken (one stored permit) after every `Tool: Edit` or `Tool: Bash` emitted: the work tree
    /// may have changed.
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    pub async fn emit(&self, event: Event) {
        if matches!(event, Event::ToolEdit { .. } | Event::ToolBash { .. }) {
            self.changed.notify_one();
        }
        self.persist(&event);
        let _ = self.tx.send(event).await;
    }

    /// For synchronous callbacks (progress lines): never waits. A line the consumer cannot take
    /// right now is dropped from both the stream and the log, so the two stay identical (replay
    /// ids in `serve` rely on it).
    pub fn emit_lossy(&self, event: Event) {
        let line = event.to_json_line();
        if self.tx.try_send(event).is_ok() || self.tx.is_closed() {
            self.persist_line(line);
        }
    }

    /// Streaming text fragments: dropped rather than blocking when the consumer is behind, and not
    /// stored (the complete text follows as `AI Message`).
    pub fn emit_delta(&self, delta: &str) {
        let _ = self.tx.try_send(Event::AiDelta {
            run_id: self.run_id.clone(),
            delta: delta.to_string(),
        });
    }

    /// A transient event ([`Event::is_transient`]): not stored, and handed back when the
    /// consumer cannot take it right now, so the caller may merge it into a later one. A gone
    /// consumer takes everything (nothing to wait for).
    pub fn try_emit_transient(&self, event: Event) -> Result<(), Box<Event>> {
        match self.tx.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(e)) => Err(Box::new(e)),
        }
    }

    pub async fn status(&self, stage: Stage, message: impl Into<String>) {
        self.emit(Event::Status {
            run_id: self.run_id.clone(),
            stage,
            message: message.into(),
        })
        .await;
    }
}
