//! The scripted (replay) model: answers each model call with the next turn of a JSON script.
//!
//! Invariants: turns are consumed strictly in order, one per call; running out is an error, never an
//! invented answer. It is labeled `replay` everywhere. Tool calls are real requests that the agent
//! executes; the script only decides what the "model" asks for.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{
    ChatRequest, ChatResponse, LlmError, ModelLabel, Provider, StopReason, TextSink, ToolCall,
};
use crate::event::UsageTotals;

#[derive(Debug, Clone, Deserialize)]
pub struct Script {
    pub turns: Vec<ScriptTurn>,
    /// The agent's self-review turn is off for a replay unless the script sets this.
    #[serde(default)]
    pub self_review: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScriptTurn {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ScriptToolCall>,
    /// Test hook: pretend the model took this long to answer.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Test hook: token counts to report for this turn (a replay costs nothing).
    #[serde(default)]
    pub usage: Option<ScriptUsage>,
    /// Test hook: `"max_tokens"` replays a turn cut at the output-token limit.
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScriptUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScriptToolCall {
    pub name: String,
    #[serde(default)]
    pub input: Value,
}

pub struct ScriptedProvider {
    name: String,
    turns: Vec<ScriptTurn>,
    self_review: bool,
    next: AtomicUsize,
    /// Time spent "thinking" (scripted delays), so benchmarks can subtract the model's own time.
    model_time_ms: Mutex<u64>,
}

impl ScriptedProvider {
    pub fn from_script(name: impl Into<String>, script: Script) -> Self {
        ScriptedProvider {
            name: name.into(),
            turns: script.turns,
            self_review: script.self_review,
            next: AtomicUsize::new(0),
            model_time_ms: Mutex::new(0),
        }
    }

    pub fn from_json(name: impl Into<String>, json: &str) -> Result<Self, LlmError> {
        let script: Script = serde_json::from_str(json)
            .map_err(|e| LlmError::Script(format!("the script is not valid: {e}")))?;
        Ok(Self::from_script(name, script))
    }

    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LlmError::Script(format!("cannot read script {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_json(name, &text).map_err(|e| match e {
            LlmError::Script(m) => LlmError::Script(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    pub fn turns_used(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }

    pub fn model_time_ms(&self) -> u64 {
        self.model_time_ms.lock().map(|g| *g).unwrap_or(0)
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn self_review(&self) -> bool {
        self.self_review
    }

    fn label(&self) -> ModelLabel {
        ModelLabel {
            provider: "scripted".into(),
            model: self.name.clone(),
            replay: true,
        }
    }

    async fn complete(
        &self,
        _request: &ChatRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let index = self.next.fetch_add(1, Ordering::SeqCst);
        let Some(turn) = self.turns.get(index) else {
            return Err(LlmError::Script(format!(
                "the script has {} turns and the agent asked for turn {}; add a final turn \
                 without tool_calls to end the run",
                self.turns.len(),
                index + 1
            )));
        };
        if let Some(ms) = turn.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            if let Ok(mut g) = self.model_time_ms.lock() {
                *g += ms;
            }
        }
        let text = turn.text.clone().unwrap_or_default();
        if !text.is_empty() {
            on_text.text(&text);
        }
        let tool_calls: Vec<ToolCall> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: format!("replay_{}_{}", index + 1, i + 1),
                name: c.name.clone(),
                input: if c.input.is_null() {
                    Value::Object(Default::default())
                } else {
                    c.input.clone()
                },
            })
            .collect();
        let stop_reason = match turn.stop_reason.as_deref() {
            Some("max_tokens") => StopReason::MaxTokens,
            _ if !tool_calls.is_empty() => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            stop_reason,
            reasoning: Vec::new(),
            // A replay costs nothing and counts no tokens.
            usage: UsageTotals {
                input_tokens: turn.usage.as_ref().map_or(0, |u| u.input_tokens),
                output_tokens: turn.usage.as_ref().map_or(0, |u| u.output_tokens),
                cost_usd: Some(0.0),
                ..Default::default()
            },
            answered_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ChatRequest<'static> {
        ChatRequest {
            system: "",
            tools: &[],
            messages: &[],
            max_output_tokens: 100,
        }
    }

    #[tokio::test]
    async fn replays_turns_in_order_then_errors() {
        let p = ScriptedProvider::from_json(
            "s",
            r#"{"turns":[{"text":"a","tool_calls":[{"name":"read_file","input":{"path":"x"}}]},{"text":"done"}]}"#,
        )
        .unwrap();
        let r1 = p.complete(&req(), &|_: &str| {}).await.unwrap();
        assert_eq!(r1.tool_calls.len(), 1);
        assert_eq!(r1.tool_calls[0].input["path"], "x");
        assert_eq!(r1.stop_reason, StopReason::ToolUse);
        let r2 = p.complete(&req(), &|_: &str| {}).await.unwrap();
        assert_eq!(r2.text, "done");
        assert_eq!(r2.stop_reason, StopReason::EndTurn);
        let err = p.complete(&req(), &|_: &str| {}).await.unwrap_err();
        assert!(err.to_string().contains("2 turns"), "{err}");
        assert!(p.label().replay);
    }

    #[tokio::test]
    async fn a_turn_can_be_replayed_as_cut() {
        let p = ScriptedProvider::from_json(
            "s",
            r#"{"turns":[{"text":"a long","stop_reason":"max_tokens"}]}"#,
        )
        .unwrap();
        let r = p.complete(&req(), &|_: &str| {}).await.unwrap();
        assert_eq!(r.stop_reason, StopReason::MaxTokens);
    }

    #[test]
    fn invalid_script_is_a_clear_error() {
        let err = ScriptedProvider::from_json("s", r#"{"turn": []}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not valid"), "{err}");
    }
}
