//! What the loop tells the model about the run itself: a turn cut at the output-token limit, and
//! the one wrap-up turn near a budget.
//!
//! Invariants: these notes are appended to the user message that follows the model's turn (after
//! its tool results), so the conversation keeps alternating and the cached prefix is untouched;
//! the wrap-up note is sent at most once per run; a budget that is already exhausted still ends
//! the run in `mod.rs` — the wrap-up only warns one turn ahead.

use std::time::Duration;

use super::AgentLimits;

/// Prefix that marks the loop's own notes, so they read as coming from the harness, not the user.
const FROM: &str = "[tiny-backspace]";

/// The note after a turn that stopped at the output-token limit.
pub fn cut_notice(max_output_tokens: u32, cut_call: Option<&str>) -> String {
    let what = match cut_call {
        Some(name) => {
            format!(" while you were writing the input of a {name} call; that call was not run")
        }
        None => String::new(),
    };
    format!(
        "{FROM} Your last answer was cut off at the output-token limit ({max_output_tokens} \
         tokens){what}. Nothing is lost from the work done so far. Continue from where you \
         stopped, in smaller steps: split large file contents over several edit_file or \
         write_file calls, and keep each answer short."
    )
}

/// The result given to the tool call the output limit interrupted.
pub fn cut_call_result(name: &str, parse_error: Option<&str>) -> String {
    let why = parse_error
        .map(|e| format!(" (its input was incomplete: {e})"))
        .unwrap_or_default();
    format!(
        "not run: your output hit the output-token limit while this {name} call was being \
         written{why}; send it again, in smaller pieces if its input is large"
    )
}

/// Decides when the model gets its one wrap-up turn.
#[derive(Debug, Default)]
pub struct WrapUp {
    sent: bool,
    longest_turn: Duration,
    last_turn_tokens: u64,
}

impl WrapUp {
    /// Records a finished turn (model call and tools): its duration and fresh tokens.
    pub fn record_turn(&mut self, took: Duration, fresh_tokens: u64) {
        self.longest_turn = self.longest_turn.max(took);
        self.last_turn_tokens = fresh_tokens;
    }

    /// Whether the wrap-up note was sent (the model was told its turn is the last).
    pub fn sent(&self) -> bool {
        self.sent
    }

    /// The wrap-up note for the coming turn, once: `turn` is its 1-based number, `fresh` the
    /// tokens used so far, `remaining` the time left.
    pub fn note(
        &mut self,
        limits: &AgentLimits,
        turn: u32,
        fresh: u64,
        remaining: Duration,
    ) -> Option<String> {
        if self.sent {
            return None;
        }
        let why = if limits.max_turns > 1 && turn >= limits.max_turns {
            format!("it is turn {turn} of the {} allowed", limits.max_turns)
        } else if turn > 1 && fresh.saturating_add(self.last_turn_tokens) > limits.max_total_tokens
        {
            format!(
                "{fresh} of the {} tokens of the run's budget are used, and another turn like \
                 the last one would exceed it",
                limits.max_total_tokens
            )
        } else if turn > 1 && remaining < self.longest_turn.max(limits.max_duration / 10) {
            format!(
                "about {} of the run's time budget remain",
                super::format_duration(remaining)
            )
        } else {
            return None;
        };
        self.sent = true;
        Some(format!(
            "{FROM} This is your last turn: {why}. Stop making changes. Answer now without any \
             tool call, with your final summary: what is done, what you verified and how, and \
             what is not done or not verified."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AgentLimits {
        AgentLimits {
            max_turns: 5,
            max_total_tokens: 1000,
            max_duration: Duration::from_secs(100),
            max_output_tokens: 100,
            self_review: false,
        }
    }

    #[test]
    fn the_last_turn_gets_one_note() {
        let mut w = WrapUp::default();
        let l = limits();
        assert_eq!(w.note(&l, 4, 0, Duration::from_secs(90)), None);
        let n = w.note(&l, 5, 0, Duration::from_secs(90)).unwrap();
        assert!(
            n.contains("last turn") && n.contains("turn 5 of the 5"),
            "{n}"
        );
        assert_eq!(w.note(&l, 5, 0, Duration::from_secs(90)), None, "once");
    }

    #[test]
    fn tokens_and_time_warn_a_turn_ahead() {
        let l = limits();
        let mut w = WrapUp::default();
        w.record_turn(Duration::from_secs(1), 400);
        assert_eq!(w.note(&l, 2, 500, Duration::from_secs(90)), None);
        let n = w.note(&l, 3, 700, Duration::from_secs(90)).unwrap();
        assert!(n.contains("700 of the 1000 tokens"), "{n}");
        let mut w = WrapUp::default();
        w.record_turn(Duration::from_secs(20), 1);
        assert_eq!(w.note(&l, 2, 0, Duration::from_secs(30)), None);
        let n = w.note(&l, 2, 0, Duration::from_secs(15)).unwrap();
        assert!(n.contains("time budget"), "{n}");
    }

    #[test]
    fn a_single_turn_budget_is_not_a_wrap_up() {
        let mut l = limits();
        l.max_turns = 1;
        assert_eq!(
            WrapUp::default().note(&l, 1, 0, Duration::from_secs(90)),
            None
        );
    }
}
