//! Model providers behind one trait, over a provider-neutral conversation.
//!
//! Invariants: a provider never executes tools; it only returns the model's turn. Errors say whether
//! a retry could help (`is_retryable`), so retry and fallback policy live outside the wire formats.
//! The scripted provider is a replay for tests and the demo and always labels itself as such.

pub mod scripted;
pub mod select;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::UsageTotals;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Block {
    Text(String),
    ToolCall(ToolCall),
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub blocks: Vec<Block>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            blocks: vec![Block::Text(text.into())],
        }
    }
}

/// A tool the model may call, with its JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
}

pub struct ChatRequest<'a> {
    pub system: &'a str,
    pub tools: &'a [ToolSpec],
    pub messages: &'a [Message],
    pub max_output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop_reason: StopReason,
    pub usage: UsageTotals,
}

/// Who answered: shown in the UI and in `Usage` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLabel {
    pub provider: String,
    pub model: String,
    /// True for the scripted replay: every front-end says "replay".
    pub replay: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("could not reach the model server: {0}")]
    Connect(String),
    #[error("the model server answered {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retry_after_ms: Option<u64>,
    },
    #[error("the model's stream broke off: {0}")]
    Stream(String),
    #[error("the model sent something we could not understand: {0}")]
    Protocol(String),
    #[error("scripted model: {0}")]
    Script(String),
    #[error("{0}")]
    Config(String),
    #[error("cancelled")]
    Cancelled,
}

impl LlmError {
    /// Whether the same request might succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect(_) | LlmError::Stream(_) => true,
            LlmError::Http { status, .. } => {
                matches!(status, 408 | 409 | 429 | 529) || (500..600).contains(status)
            }
            LlmError::Protocol(_)
            | LlmError::Script(_)
            | LlmError::Config(_)
            | LlmError::Cancelled => false,
        }
    }
}

/// Receives streamed text as it arrives (for live display); the full turn is also returned.
pub type TextSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

#[async_trait]
pub trait Provider: Send + Sync {
    fn label(&self) -> ModelLabel;
    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let http = |status| LlmError::Http {
            status,
            message: String::new(),
            retry_after_ms: None,
        };
        for s in [408, 409, 429, 500, 502, 503, 529] {
            assert!(http(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!http(s).is_retryable(), "{s}");
        }
        assert!(LlmError::Stream("x".into()).is_retryable());
        assert!(!LlmError::Script("x".into()).is_retryable());
    }
}
