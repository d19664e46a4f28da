//! Model providers behind one trait, over a provider-neutral conversation.
//!
//! Invariants: a provider never executes tools; it only returns the model's turn. Errors say whether
//! a retry could help (`is_retryable`), so retry and fallback policy live outside the wire formats.
//! The scripted provider is a replay for tests and the demo and always labels itself as such.
//! A provider returns only complete turns: a broken stream is an error and the whole turn is asked
//! again (by [`retry::Chain`]), so the agent never sees half a turn and never runs a tool twice.
//!
//! Layout: `anthropic`, `openai` (Chat Completions) and `responses` (OpenAI's Responses API) speak
//! the wire formats (one attempt each; their request bodies are in the `*_body` modules); `sse`
//! and `http` are their shared plumbing; `retry` adds retries, fallback and context management
//! around them; `pricing` turns usage into cost; `select` builds the chain from the configuration;
//! `settings` holds the tunables and the rules for which models reason.

pub mod anthropic;
mod anthropic_body;
pub mod context;
pub mod http;
pub mod openai;
mod openai_body;
pub mod pricing;
pub mod responses;
mod responses_body;
pub mod retry;
pub mod scripted;
pub mod select;
pub mod settings;
pub mod sse;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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
    /// The model's reasoning in an assistant turn, kept to be sent back (see [`Reasoning`]).
    Reasoning(Reasoning),
}

/// Reasoning a model produced in a turn. Its API needs it back (Anthropic, during tool use:
/// thinking blocks unchanged, before the turn's tool calls) or uses it to keep its reasoning
/// between turns (OpenAI's Responses API). Opaque: it is never shown as the answer, and each
/// wire format sends back only its own kind — another provider (after a fallback) never sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reasoning {
    /// An Anthropic `thinking` block with its signature, sent back unchanged.
    Thinking { thinking: String, signature: String },
    /// An Anthropic `redacted_thinking` block, sent back verbatim.
    RedactedThinking { data: String },
    /// An OpenAI Responses `reasoning` item: its summary and its encrypted content.
    OpenAi {
        summary: Vec<String>,
        encrypted_content: String,
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
    /// Reasoning to keep in the conversation, in the order the model produced it; it goes before
    /// the turn's text and tool calls.
    pub reasoning: Vec<Reasoning>,
    pub usage: UsageTotals,
    /// Which provider and model produced this turn, when it may differ from
    /// [`Provider::label`] (after a fallback). `None` means the provider's own label.
    pub answered_by: Option<ModelLabel>,
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
    /// Every provider of the chain gave up on this turn (after its retries).
    #[error("{0}")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
}

impl LlmError {
    /// Whether the same request might succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect(_) | LlmError::Stream(_) | LlmError::Unavailable(_) => true,
            LlmError::Http { status, .. } => {
                matches!(status, 408 | 409 | 429 | 529) || (500..600).contains(status)
            }
            LlmError::Protocol(_)
            | LlmError::Script(_)
            | LlmError::Config(_)
            | LlmError::Cancelled => false,
        }
    }

    /// The stable code an `Error` event carries for this failure.
    pub fn code(&self) -> crate::event::ErrorCode {
        use crate::event::ErrorCode;
        match self {
            LlmError::Http {
                status: 401 | 403, ..
            } => ErrorCode::ModelAuth,
            LlmError::Http { .. } if self.is_request_error() => ErrorCode::ModelRequest,
            LlmError::Protocol(_) | LlmError::Script(_) => ErrorCode::ModelRequest,
            LlmError::Http { .. }
            | LlmError::Connect(_)
            | LlmError::Stream(_)
            | LlmError::Unavailable(_) => ErrorCode::ModelUnavailable,
            LlmError::Config(_) => ErrorCode::InvalidInput,
            LlmError::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            LlmError::Http { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    /// A request the server refused as malformed or unauthorized (4xx other than 408/409/429):
    /// a bug or a setup problem to surface, not something a fallback provider should hide.
    pub fn is_request_error(&self) -> bool {
        matches!(self, LlmError::Http { status, .. }
            if (400..500).contains(status) && !matches!(status, 408 | 409 | 429))
    }
}

/// Watches a model call: streamed text as it arrives (for live display; the full turn is also
/// returned, and after a retry the text may start over) and status lines (retries, fallbacks).
pub trait Observer: Send + Sync {
    fn text(&self, delta: &str);
    fn status(&self, message: &str) {
        let _ = message;
    }
}

/// A plain closure observes text only.
impl<F: Fn(&str) + Send + Sync> Observer for F {
    fn text(&self, delta: &str) {
        self(delta)
    }
}

/// What a provider reports to while it works.
pub type TextSink<'a> = &'a dyn Observer;

#[async_trait]
pub trait Provider: Send + Sync {
    fn label(&self) -> ModelLabel;
    /// Whether the agent's self-review turn suits this provider: a scripted replay has no turn
    /// for it unless its script asks for one. `true` for real models.
    fn self_review(&self) -> bool {
        true
    }
    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError>;
}

/// Tool input as streamed JSON; an empty input is `{}`, and input that is not a JSON object is
/// handed on wrapped (`{"invalid_input", "error"}`, see [`input_error`]) so the agent reports the
/// parser's own error to the model instead of the run failing. The wrapped form is still an object,
/// so every wire format can send the call back in the conversation.
pub fn parse_tool_input(json: &str) -> Value {
    if json.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(json) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => {
            json!({"invalid_input": other.to_string(), "error": "the tool input must be a JSON object"})
        }
        Err(e) => {
            json!({"invalid_input": json, "error": format!("the tool input is not valid JSON: {e}")})
        }
    }
}

/// The parser's error for a tool input that [`parse_tool_input`] could not read (cut or broken
/// JSON, or not an object); `None` for a real input.
pub fn input_error(input: &Value) -> Option<&str> {
    let o = input.as_object()?;
    if o.len() != 2 || !o.get("invalid_input").is_some_and(Value::is_string) {
        return None;
    }
    o.get("error").and_then(Value::as_str)
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
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(http(s).is_request_error(), "{s}");
        }
        for s in [408, 409, 429, 500, 529] {
            assert!(!http(s).is_request_error(), "{s}");
        }
        assert!(!LlmError::Stream("x".into()).is_request_error());
    }

    #[test]
    fn tool_input_parsing() {
        assert_eq!(parse_tool_input(""), json!({}));
        assert_eq!(parse_tool_input(r#"{"a":1}"#), json!({"a":1}));
        assert!(parse_tool_input("{\"a\":").get("invalid_input").is_some());
        assert!(parse_tool_input("[1]").get("invalid_input").is_some());
        let cut = parse_tool_input(r#"{"path": "a.py", "content": "def f("#);
        let e = input_error(&cut).unwrap();
        assert!(e.contains("EOF while parsing a string"), "{e}");
        assert_eq!(input_error(&json!({"path": "a"})), None);
        assert_eq!(
            input_error(&json!({"invalid_input": 1, "error": "x"})),
            None
        );
    }
}
