//! The tool-calling loop: ask the model, run the tools it asks for, feed the results back.
//!
//! Invariants: the conversation is provider-neutral and owned by the caller, so a follow-up or a
//! fallback provider continues the same one; each tool call runs once and its result is appended
//! before the next model call; turn, token and wall-time budgets and cancellation are checked at
//! every await point, and a run that hits one ends with an error that says which and what to do.
//! A text-only answer ends the run unless it was cut at the output-token limit, or it is the
//! first one of a run that made changes and self-review is on (`review.rs`: one more turn): a cut turn is
//! answered with a note (and its interrupted tool call is never run) and the loop goes on. One
//! turn before a budget runs out the model is told that this is its last turn (`steer.rs`).

pub mod check;
pub mod context;
pub mod edit;
pub mod fs;
pub mod input;
pub mod plan;
pub mod prompt;
pub mod review;
pub mod search;
pub mod steer;
pub mod stream;
pub mod tools;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::emit::Emitter;
use crate::event::{Event, Stage, UsageTotals};
use crate::llm::{
    Block, ChatRequest, LlmError, Message, Observer, Provider, Role, StopReason, ToolSpec,
};
use tools::Toolbox;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLimits {
    pub max_turns: u32,
    pub max_total_tokens: u64,
    pub max_duration: Duration,
    pub max_output_tokens: u32,
    /// Whether a run that made changes gets one self-review turn before it ends (`review.rs`;
    /// config `agent.self_review`, and the scripted replay only when its script asks for it).
    #[serde(default = "yes")]
    pub self_review: bool,
}

fn yes() -> bool {
    true
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_turns: 60,
            max_total_tokens: 3_000_000,
            max_duration: Duration::from_secs(30 * 60),
            max_output_tokens: 8192,
            self_review: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Budget(String),
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("cancelled")]
    Cancelled,
}

impl AgentError {
    pub fn is_retryable(&self) -> bool {
        match self {
            AgentError::Model(e) => e.is_retryable(),
            AgentError::Budget(_) | AgentError::Cancelled => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    pub summary: String,
    pub usage: UsageTotals,
    pub turns: u32,
}

pub struct AgentRun<'a> {
    pub provider: &'a dyn Provider,
    pub tools: &'a Toolbox,
    pub emitter: &'a Emitter,
    pub system: &'a str,
    pub limits: &'a AgentLimits,
    pub cancel: &'a CancellationToken,
    /// Lists the work's changes for the self-review turn; `None` skips the review.
    pub review: Option<&'a dyn review::WorkChanges>,
}

impl AgentRun<'_> {
    /// Runs until the model answers without tool calls, a budget runs out, or cancellation.
    /// Usage already spent is added to `usage` even when the run fails.
    pub async fn run(
        &self,
        conversation: &mut Vec<Message>,
        usage: &mut UsageTotals,
    ) -> Result<AgentOutcome, AgentError> {
        close_dangling_tool_calls(conversation);
        let deadline = tokio::time::Instant::now() + self.limits.max_duration;
        let specs: Vec<ToolSpec> = tools::specs();
        let label = self.provider.label();
        let mut turns = 0u32;
        let mut run_usage = UsageTotals {
            cost_usd: Some(0.0),
            ..Default::default()
        };
        let budget = format_duration(self.limits.max_duration);
        let time_budget = || {
            AgentError::Budget(format!(
                "the agent ran out of its {budget} time budget before finishing; the work so far is \
                 kept — raise agent.max_minutes or narrow the prompt"
            ))
        };
        let mut wrap_up = steer::WrapUp::default();
        let mut nearest = context::NearestGuidance::default();
        // The first text-only answer, kept in case the answer after the review is empty.
        let mut before_review: Option<String> = None;
        loop {
            if turns >= self.limits.max_turns {
                return Err(AgentError::Budget(format!(
                    "the agent used all {} turns without finishing; the work so far is kept — raise \
                     agent.max_turns or narrow the prompt",
                    self.limits.max_turns
                )));
            }
            turns += 1;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(note) =
                wrap_up.note(self.limits, turns, run_usage.fresh_tokens(), remaining)
            {
                push_user_text(conversation, &note);
            }
            let turn_started = tokio::time::Instant::now();
            let fresh_before = run_usage.fresh_tokens();
            let request = ChatRequest {
                system: self.system,
                tools: &specs,
                messages: conversation,
                max_output_tokens: self.limits.max_output_tokens,
            };
            let observer = AgentObserver(self.emitter);
            let response = tokio::select! {
                r = self.provider.complete(&request, &observer) => r?,
                _ = self.cancel.cancelled() => return Err(AgentError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => return Err(time_budget()),
            };
            run_usage.add(&response.usage);
            usage.add(&response.usage);
            // After a fallback the answer may come from another provider than the first.
            let answered = response.answered_by.as_ref().unwrap_or(&label);
            self.emitter
                .emit(Event::Usage {
                    run_id: self.emitter.run_id().to_string(),
                    provider: answered.provider.clone(),
                    model: answered.model.clone(),
                    input_tokens: response.usage.input_tokens,
                    output_tokens: response.usage.output_tokens,
                    cache_read_tokens: response.usage.cache_read_tokens,
                    cache_write_tokens: response.usage.cache_write_tokens,
                    cost_usd: response.usage.cost_usd,
                })
                .await;

            // A turn cut at the output limit is never the end: the model is told and continues.
            let cut = response.stop_reason == StopReason::MaxTokens;
            // The turn's reasoning goes first: its API wants it back before the tool calls.
            let mut blocks: Vec<Block> = response
                .reasoning
                .iter()
                .cloned()
                .map(Block::Reasoning)
                .collect();
            if !response.text.trim().is_empty() {
                blocks.push(Block::Text(response.text.clone()));
                self.emitter
                    .emit(Event::AiMessage {
                        message: response.text.clone(),
                        run_id: Some(self.emitter.run_id().to_string()),
                    })
                    .await;
            }
            blocks.extend(response.tool_calls.iter().cloned().map(Block::ToolCall));
            if response.text.trim().is_empty() && response.tool_calls.is_empty() && cut {
                // Providers refuse an empty assistant message.
                blocks.push(Block::Text("(output cut before any text)".into()));
            }
            conversation.push(Message {
                role: Role::Assistant,
                blocks,
            });

            if response.tool_calls.is_empty() && !cut {
                // Once, and only with a turn left that the model was not told is its last.
                let review = self.review.filter(|_| {
                    self.limits.self_review
                        && before_review.is_none()
                        && !wrap_up.sent()
                        && turns < self.limits.max_turns
                });
                if let Some(review) = review {
                    before_review = Some(response.text.trim().to_string());
                    let changes = tokio::select! {
                        c = review.changes() => c,
                        _ = self.cancel.cancelled() => return Err(AgentError::Cancelled),
                    };
                    if let Some(changes) = changes {
                        self.emitter
                            .status(
                                crate::event::Stage::Agent,
                                "self-review: the agent checks its changes once before finishing",
                            )
                            .await;
                        push_user_text(conversation, &review::review_note(&changes));
                        continue;
                    }
                }
                let mut summary = response.text.trim().to_string();
                if summary.is_empty() {
                    summary = before_review.unwrap_or_default();
                }
                return Ok(AgentOutcome {
                    summary,
                    usage: run_usage,
                    turns,
                });
            }
            // Once stopping, the remaining calls are answered "not run" so the conversation stays
            // valid for a follow-up.
            let mut stop: Option<AgentError> = None;
            if run_usage.fresh_tokens() > self.limits.max_total_tokens {
                stop = Some(AgentError::Budget(format!(
                    "the agent used {} tokens (cache reads not counted), over its budget of {}; \
                     the work so far is kept — raise agent.max_tokens or narrow the prompt",
                    run_usage.fresh_tokens(),
                    self.limits.max_total_tokens
                )));
            }
            // The call the output limit interrupted is the last one of a cut turn.
            let cut_call = response.tool_calls.last().filter(|_| cut);
            if cut {
                self.emitter
                    .emit(Event::Status {
                        run_id: self.emitter.run_id().to_string(),
                        stage: crate::event::Stage::Agent,
                        message: format!(
                            "the model's answer was cut at the output-token limit ({} tokens); \
                             it is asked to continue in smaller steps",
                            self.limits.max_output_tokens
                        ),
                    })
                    .await;
            }
            let mut results = Vec::new();
            for call in &response.tool_calls {
                if stop.is_none() && self.cancel.is_cancelled() {
                    stop = Some(AgentError::Cancelled);
                }
                if cut_call.is_some_and(|c| c.id == call.id) {
                    results.push(Block::ToolResult {
                        call_id: call.id.clone(),
                        content: steer::cut_call_result(
                            &call.name,
                            crate::llm::input_error(&call.input),
                        ),
                        is_error: true,
                    });
                    continue;
                }
                // A command can take minutes: say what is running now, not only when it ends.
                if stop.is_none()
                    && call.name == "bash"
                    && let Some(command) = call.input.get("command").and_then(|c| c.as_str())
                {
                    self.emitter
                        .status(
                            Stage::Agent,
                            format!("running {}", one_line_command(command)),
                        )
                        .await;
                }
                let outcome = if stop.is_some() {
                    None
                } else {
                    // A command's output streams as `Output` events while it runs.
                    let stream = Some(stream::OutputStream {
                        emitter: self.emitter,
                        call_id: &call.id,
                    });
                    tokio::select! {
                        o = self.tools.call_streaming(&call.name, &call.input, self.cancel, stream) => Some(o),
                        _ = tokio::time::sleep_until(deadline) => {
                            stop = Some(time_budget());
                            None
                        }
                    }
                };
                let Some(outcome) = outcome else {
                    results.push(Block::ToolResult {
                        call_id: call.id.clone(),
                        content: "not run: the run stopped before this call".into(),
                        is_error: true,
                    });
                    continue;
                };
                for event in outcome.events {
                    self.emitter.emit(event).await;
                }
                let mut content = outcome.content;
                // The nearest AGENTS.md applies to a file below it: shown once per directory.
                if !outcome.is_error
                    && matches!(call.name.as_str(), "read_file" | "edit_file" | "write_file")
                    && let Some(path) = call.input.get("path").and_then(|p| p.as_str())
                {
                    content.push_str(&nearest.for_path(&self.tools.fs, path));
                }
                results.push(Block::ToolResult {
                    call_id: call.id.clone(),
                    content,
                    is_error: outcome.is_error,
                });
            }
            if cut {
                results.push(Block::Text(steer::cut_notice(
                    self.limits.max_output_tokens,
                    cut_call.map(|c| c.name.as_str()),
                )));
            }
            conversation.push(Message {
                role: Role::User,
                blocks: results,
            });
            wrap_up.record_turn(
                turn_started.elapsed(),
                run_usage.fresh_tokens().saturating_sub(fresh_before),
            );
            if let Some(e) = stop.or(self.cancel.is_cancelled().then_some(AgentError::Cancelled)) {
                return Err(e);
            }
        }
    }
}

/// Streams model text as `AI Delta` and the provider's retries and fallbacks as `Status`.
struct AgentObserver<'a>(&'a Emitter);

impl Observer for AgentObserver<'_> {
    fn text(&self, delta: &str) {
        self.0.emit_delta(delta);
    }

    fn status(&self, message: &str) {
        self.0.emit_lossy(Event::Status {
            run_id: self.0.run_id().to_string(),
            stage: crate::event::Stage::Agent,
            message: message.to_string(),
        });
    }
}

/// An interrupted turn can leave tool calls without results; every provider rejects that, so
/// answer them before the conversation continues.
pub fn close_dangling_tool_calls(conversation: &mut Vec<Message>) {
    let Some(last) = conversation.last() else {
        return;
    };
    if last.role != Role::Assistant {
        return;
    }
    let results: Vec<Block> = last
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::ToolCall(c) => Some(Block::ToolResult {
                call_id: c.id.clone(),
                content: "not run: the previous run was interrupted before this call".into(),
                is_error: true,
            }),
            _ => None,
        })
        .collect();
    if !results.is_empty() {
        conversation.push(Message {
            role: Role::User,
            blocks: results,
        });
    }
}

/// Adds a user instruction, merging into a trailing user message so roles keep alternating.
pub fn push_user_text(conversation: &mut Vec<Message>, text: &str) {
    close_dangling_tool_calls(conversation);
    match conversation.last_mut() {
        Some(m) if m.role == Role::User => m.blocks.push(Block::Text(text.to_string())),
        _ => conversation.push(Message::user_text(text)),
    }
}

/// Elapsed-time formatting shared by front-ends.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A command as one short line for a progress note: its first line, at most 80 characters.
fn one_line_command(command: &str) -> String {
    let first = command.lines().next().unwrap_or("").trim();
    let mut short: String = first.chars().take(80).collect();
    if short.len() < first.len() || command.trim().lines().count() > 1 {
        short.push('…');
    }
    short
}
