//! The step log's live parts: a running command's output as it streams (`Output` events) and
//! the tokens and cost of each step (`Usage` events).
//!
//! Invariants: at most one command streams at a time (tool calls run one after another); its
//! step is the one `Tool: Bash` finishes in place, so a streamed command is one step, not two;
//! streamed text is sanitized and capped like any entry's text. A `Usage` goes to the step of
//! its turn (the model's words, or — for a turn without words — the turn's first tool step) and
//! is added to the agent stage's step, whose total is the run's, or one follow-up's.

use super::sanitize;
use super::steplog::{EntryKind, EntryStatus, StepLog, cap_tail};
use crate::event::{Event, Stage};

/// Tokens (all kinds, cache reads included, as the header counts them) and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepUsage {
    pub tokens: u64,
    /// `None` once any model call in it has no known price.
    pub cost_usd: Option<f64>,
}

impl StepUsage {
    fn add(&mut self, tokens: u64, cost: Option<f64>, first: bool) {
        self.tokens += tokens;
        self.cost_usd = match (self.cost_usd, cost) {
            (Some(a), Some(b)) => Some(a + b),
            (None, c) if first => c,
            _ => None,
        };
    }

    /// `12.3k tok · $0.04` (the cost only when known).
    pub fn label(&self) -> String {
        let tok = if self.tokens >= 1000 {
            format!("{:.1}k tok", self.tokens as f64 / 1000.0)
        } else {
            format!("{} tok", self.tokens)
        };
        match self.cost_usd {
            Some(c) => format!("{tok} · ${c:.2}"),
            None => tok,
        }
    }
}

fn add_to(slot: &mut Option<StepUsage>, tokens: u64, cost: Option<f64>) {
    let first = slot.is_none();
    slot.get_or_insert_with(StepUsage::default)
        .add(tokens, cost, first);
}

impl StepLog {
    /// A chunk of a running command's output: appended to its step, made on the first chunk
    /// (titled with the command the agent stage says is running).
    pub(super) fn ingest_output(&mut self, id: &str, text: &str, now: u64) {
        let found = self
            .live_call
            .as_deref()
            .filter(|live| *live == id)
            .and_then(|_| {
                self.entries
                    .iter()
                    .rposition(|e| e.call_id.as_deref() == Some(id))
            });
        let i = match found {
            Some(i) => i,
            None => {
                // A new call: whatever streamed before it is over.
                self.take_live(now);
                let command = self
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.kind == EntryKind::Stage(Stage::Agent))
                    .and_then(|e| e.title.strip_prefix("agent · running "))
                    .unwrap_or("command")
                    .to_string();
                let e = self.push(
                    EntryKind::Bash,
                    format!("Bash {command} → running"),
                    EntryStatus::Running,
                    now,
                );
                e.call_id = Some(id.to_string());
                self.live_call = Some(id.to_string());
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        e.detail.push_str(&sanitize::clean(text));
        cap_tail(&mut e.detail);
    }

    /// The step of the command streaming now, which stops being live (`Tool: Bash` finishes it).
    pub(super) fn take_live(&mut self, _now: u64) -> Option<usize> {
        let id = self.live_call.take()?;
        let i = self
            .entries
            .iter()
            .rposition(|e| e.call_id.as_deref() == Some(id.as_str()))?;
        self.entries[i].call_id = None;
        Some(i)
    }

    /// A model call's tokens and cost: on its turn's step and on the agent stage's total.
    pub(super) fn ingest_usage(&mut self, event: &Event) {
        let Event::Usage {
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_usd,
            ..
        } = event
        else {
            return;
        };
        let tokens = input_tokens + output_tokens + cache_read_tokens + cache_write_tokens;
        match self.entries.back_mut() {
            // The turn's words are streaming in (or were just said): they are its step.
            Some(e) if e.kind == EntryKind::Model && e.usage.is_none() => {
                add_to(&mut e.usage, tokens, *cost_usd)
            }
            _ => add_to(&mut self.pending_usage, tokens, *cost_usd),
        }
        if let Some(stage) = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.kind == EntryKind::Stage(Stage::Agent))
        {
            add_to(&mut stage.usage, tokens, *cost_usd);
        }
    }
}
