//! The one wrap-up turn near the token and time budgets, through the real agent loop and tools with
//! a scripted model: exactly one request carries the notice; a model that heeds it ends the run
//! with its summary, one that does not ends it with the budget's error. The time budget runs on
//! tokio's paused clock (the model "takes" 30 s a turn without any real wait), so nothing here
//! depends on how fast this machine is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/toolbox.rs"]
mod toolbox;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tiny_backspace::agent::{AgentError, AgentLimits, AgentOutcome, AgentRun};
use tiny_backspace::emit::Emitter;
use tiny_backspace::event::UsageTotals;
use tiny_backspace::llm::{
    Block, ChatRequest, ChatResponse, LlmError, Message, ModelLabel, Provider, StopReason,
    TextSink, ToolCall,
};
use tokio_util::sync::CancellationToken;

const NOTICE: &str = "This is your last turn";

/// A model that reads a.py every turn, using `tokens` fresh tokens and `took` of (paused) time
/// per turn; told it is its last turn, it answers with a summary if `heeds`, else goes on.
struct Scripted {
    tokens: u64,
    took: Duration,
    heeds: bool,
    /// Every request's conversation, as text.
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl Provider for Scripted {
    fn label(&self) -> ModelLabel {
        ModelLabel {
            provider: "test".into(),
            model: "scripted".into(),
            replay: false,
        }
    }

    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        _: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let text = serde_json::to_string(request.messages).unwrap();
        let told = request
            .messages
            .last()
            .is_some_and(|m| serde_json::to_string(m).unwrap().contains(NOTICE));
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(text);
            seen.len()
        };
        let usage = UsageTotals {
            input_tokens: self.tokens - 10,
            output_tokens: 10,
            cost_usd: Some(0.0),
            ..Default::default()
        };
        if told && self.heeds {
            return Ok(ChatResponse {
                text: "Summary: read a.py; nothing else done.".into(),
                tool_calls: vec![],
                stop_reason: StopReason::EndTurn,
                reasoning: vec![],
                usage,
                answered_by: None,
            });
        }
        tokio::time::sleep(self.took).await;
        Ok(ChatResponse {
            text: String::new(),
            tool_calls: vec![ToolCall {
                id: format!("call_{n}"),
                name: "read_file".into(),
                input: json!({"path": "a.py"}),
            }],
            stop_reason: StopReason::ToolUse,
            reasoning: vec![],
            usage,
            answered_by: None,
        })
    }
}

struct Outcome {
    result: Result<AgentOutcome, AgentError>,
    /// For each request: whether its last message carries the notice.
    notices: Vec<bool>,
    /// How many requests mention the notice anywhere.
    mentions: usize,
}

async fn run(model: Scripted, limits: AgentLimits) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    let tools = toolbox::toolbox(&root, git_dir, "t", 4000);
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    let emitter = Emitter::new("t", tx);
    let mut conversation = vec![Message::user_text("Task: look at a.py")];
    let result = AgentRun {
        provider: &model,
        tools: &tools,
        emitter: &emitter,
        system: "You are a test.",
        limits: &limits,
        cancel: &CancellationToken::new(),
        review: None,
    }
    .run(&mut conversation, &mut UsageTotals::default())
    .await;
    drop(emitter);
    while rx.try_recv().is_ok() {}
    // The notice stays in the conversation: it must be there once, as a user text.
    let in_conversation = conversation
        .iter()
        .flat_map(|m| &m.blocks)
        .filter(|b| matches!(b, Block::Text(t) if t.contains(NOTICE)))
        .count();
    assert!(in_conversation <= 1, "{in_conversation} notices");
    let seen = model.seen.into_inner().unwrap();
    let notices = seen
        .iter()
        .enumerate()
        .map(|(i, text)| {
            // New in this request: present now, absent from the one before.
            text.contains(NOTICE) && (i == 0 || !seen[i - 1].contains(NOTICE))
        })
        .collect();
    let mentions = seen.iter().filter(|t| t.contains(NOTICE)).count();
    Outcome {
        result,
        notices,
        mentions,
    }
}

fn limits(tokens: u64, time: Duration) -> AgentLimits {
    AgentLimits {
        max_turns: 50,
        max_total_tokens: tokens,
        max_duration: time,
        max_output_tokens: 512,
        self_review: false,
    }
}

fn turns_with_notice(o: &Outcome) -> Vec<usize> {
    o.notices
        .iter()
        .enumerate()
        .filter(|(_, n)| **n)
        .map(|(i, _)| i + 1)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn near_the_token_budget_one_request_asks_to_wrap_up_and_the_summary_ends_the_run() {
    // 300 fresh tokens a turn against 1000: after 3 turns (900), a fourth like them would pass it.
    let model = Scripted {
        tokens: 300,
        took: Duration::ZERO,
        heeds: true,
        seen: Mutex::default(),
    };
    let o = run(model, limits(1000, Duration::from_secs(3600))).await;
    assert_eq!(turns_with_notice(&o), [4], "{:?}", o.notices);
    let outcome = o.result.unwrap();
    assert_eq!(outcome.turns, 4);
    assert_eq!(outcome.summary, "Summary: read a.py; nothing else done.");
    let told = o.notices.len();
    assert_eq!(told, 4, "the summary turn was the last request");
}

#[tokio::test(start_paused = true)]
async fn a_model_that_ignores_the_token_notice_ends_on_the_token_budget() {
    let model = Scripted {
        tokens: 300,
        took: Duration::ZERO,
        heeds: false,
        seen: Mutex::default(),
    };
    let o = run(model, limits(1000, Duration::from_secs(3600))).await;
    assert_eq!(turns_with_notice(&o), [4], "{:?}", o.notices);
    assert_eq!(
        o.notices.len(),
        4,
        "the budget ends the run after the fourth turn"
    );
    let e = o.result.unwrap_err();
    assert!(
        matches!(&e, AgentError::Budget(m) if m.contains("tokens") && m.contains("agent.max_tokens")),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn near_the_time_budget_one_request_asks_to_wrap_up_and_the_summary_ends_the_run() {
    // 30 s a turn against 100 s: at 90 s less time is left than the longest turn took.
    let model = Scripted {
        tokens: 20,
        took: Duration::from_secs(30),
        heeds: true,
        seen: Mutex::default(),
    };
    let started = tokio::time::Instant::now();
    let o = run(model, limits(1_000_000, Duration::from_secs(100))).await;
    assert_eq!(turns_with_notice(&o), [4], "{:?}", o.notices);
    let outcome = o.result.unwrap();
    assert_eq!(outcome.turns, 4);
    assert!(outcome.summary.starts_with("Summary:"));
    assert_eq!(o.mentions, 1);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(90),
        "paused clock: exactly 3 turns"
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_that_ignores_the_time_notice_ends_on_the_time_budget() {
    let model = Scripted {
        tokens: 20,
        took: Duration::from_secs(30),
        heeds: false,
        seen: Mutex::default(),
    };
    let started = tokio::time::Instant::now();
    let o = run(model, limits(1_000_000, Duration::from_secs(100))).await;
    assert_eq!(turns_with_notice(&o), [4], "{:?}", o.notices);
    assert_eq!(o.notices.len(), 4);
    let e = o.result.unwrap_err();
    assert!(
        matches!(&e, AgentError::Budget(m) if m.contains("time budget") && m.contains("agent.max_minutes")),
        "{e}"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(100),
        "ended at the deadline"
    );
}
