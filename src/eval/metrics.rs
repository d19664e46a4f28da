//! What a run's events say about it: turns, tokens, cost, tool errors and why it stopped.
//!
//! Invariants: computed only from the run's own events (`events.jsonl`, the same events its
//! front-end saw); a cost is a sum of `Usage` costs and `None` as soon as one is unknown, never
//! invented.

use std::path::Path;

use serde::Serialize;

use crate::event::Event;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunMetrics {
    /// Model calls (one `Usage` event each).
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
    /// Tool calls that were refused or failed (`Tool: Error` events).
    pub tool_errors: u64,
    /// `provider:model` of the last answer, when any came.
    pub model: Option<String>,
    /// `completed` (`Done`), `error` or `cancelled` (`Error`); `no_events` without either.
    pub stop_reason: String,
    /// The final `Error`'s message.
    pub error: Option<String>,
}

/// Reads a run's `events.jsonl` (lines that are not events are skipped).
pub fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

pub fn from_events(events: &[Event]) -> RunMetrics {
    let mut m = RunMetrics {
        cost_usd: Some(0.0),
        stop_reason: "no_events".into(),
        ..Default::default()
    };
    for event in events {
        match event {
            Event::Usage {
                provider,
                model,
                input_tokens,
                output_tokens,
                cost_usd,
                ..
            } => {
                m.turns += 1;
                m.input_tokens += input_tokens;
                m.output_tokens += output_tokens;
                m.cost_usd = match (m.cost_usd, cost_usd) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
                m.model = Some(format!("{provider}:{model}"));
            }
            Event::ToolError { .. } => m.tool_errors += 1,
            Event::Done { .. } => m.stop_reason = "completed".into(),
            Event::Error { message, code, .. } => {
                m.stop_reason = if code.is_stop(message) {
                    "cancelled".into()
                } else {
                    "error".into()
                };
                m.error = Some(message.clone());
            }
            _ => {}
        }
    }
    if m.turns == 0 {
        m.cost_usd = None;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Stage, UsageTotals};

    fn usage(cost: Option<f64>) -> Event {
        Event::Usage {
            run_id: "r".into(),
            provider: "anthropic".into(),
            model: "m".into(),
            input_tokens: 10,
            output_tokens: 2,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: cost,
        }
    }

    #[test]
    fn counts_turns_tokens_cost_and_errors() {
        let err = Event::ToolError {
            run_id: "r".into(),
            tool: "read_file".into(),
            message: "no such file".into(),
        };
        let done = Event::Done {
            run_id: "r".into(),
            pr_url: None,
            summary: String::new(),
            branch: None,
            usage: UsageTotals::default(),
            duration_ms: 5,
            patch_path: None,
        };
        let m = from_events(&[usage(Some(0.5)), err, usage(Some(0.25)), done]);
        assert_eq!((m.turns, m.input_tokens, m.output_tokens), (2, 20, 4));
        assert_eq!((m.cost_usd, m.tool_errors), (Some(0.75), 1));
        assert_eq!(m.stop_reason, "completed");
        assert_eq!(m.model.as_deref(), Some("anthropic:m"));

        let stopped = Event::Error {
            run_id: "r".into(),
            stage: Stage::Agent,
            message: "stopped: cost cap".into(),
            retryable: false,
            code: crate::event::ErrorCode::Stopped,
        };
        let m = from_events(&[usage(None), usage(Some(1.0)), stopped]);
        assert_eq!((m.cost_usd, m.stop_reason.as_str()), (None, "cancelled"));
        assert_eq!(from_events(&[]).stop_reason, "no_events");
    }
}
