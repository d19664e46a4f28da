//! The Anthropic Messages API, streaming: one attempt at one model turn.
//!
//! Invariants: the request carries `x-api-key` (marked sensitive; omitted only for a loopback base
//! URL without a key) and `anthropic-version`; prompt-cache breakpoints sit on the last tool, the
//! system prompt, and the two most recent user turns (at most four, the API's limit), so every
//! request's prefix up to the previous turn is a cache hit. A turn is returned only once the stream
//! said it was complete (`message_stop`, or a `message_delta` stop reason before the body ended);
//! anything short of that is a retryable [`LlmError::Stream`]. Unknown event and block types are
//! skipped, as the API asks clients to do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Url};
use serde_json::Value;

pub use super::anthropic_body::{request_body, request_body_with, sanitize_id};
use super::http::{self, TurnState};
use super::settings::{self, LlmSettings};
use super::sse::SseEvent;
use super::{
    ChatRequest, ChatResponse, LlmError, ModelLabel, Observer, Provider, Reasoning, StopReason,
    TextSink, ToolCall, parse_tool_input,
};
use crate::event::UsageTotals;
use crate::secret::Secret;

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

pub struct AnthropicProvider {
    client: Client,
    url: Url,
    api_key: Option<Secret>,
    model: String,
    settings: LlmSettings,
    /// The thinking budget, when this model has extended thinking.
    thinking: Option<u32>,
    /// Why a configured budget is ignored, said once in the first turn's status.
    thinking_ignored: Option<String>,
    warned: AtomicBool,
}

impl AnthropicProvider {
    /// `base_url` defaults to the public API; a key is required unless the base URL is loopback.
    pub fn new(
        base_url: Option<&str>,
        api_key: Option<Secret>,
        model: &str,
        settings: &LlmSettings,
    ) -> Result<Self, LlmError> {
        let base =
            http::parse_base_url(base_url.unwrap_or(DEFAULT_BASE_URL), "ANTHROPIC_BASE_URL")?;
        let api_key = api_key.filter(|k| !k.expose().trim().is_empty());
        if api_key.is_none() && !http::is_loopback(&base) {
            return Err(LlmError::Config(
                "the anthropic provider needs ANTHROPIC_API_KEY (only a local ANTHROPIC_BASE_URL \
                 works without one)"
                    .into(),
            ));
        }
        let model = model.trim();
        if model.is_empty() {
            return Err(LlmError::Config(
                "anthropic: the model name is empty".into(),
            ));
        }
        let budget = settings.thinking_budget;
        let supported = settings::anthropic_thinking(model);
        let thinking_ignored = budget.filter(|_| !supported).map(|b| {
            format!(
                "agent.thinking_budget ({b} tokens) is ignored: anthropic:{model} has no extended \
                 thinking (Claude 3.7 Sonnet and Claude 4 or later have it)"
            )
        });
        if let Some(why) = &thinking_ignored {
            tracing::warn!("{why}");
        }
        Ok(AnthropicProvider {
            client: http::client(settings, &base)?,
            url: http::join(&base, "v1/messages"),
            api_key,
            model: model.to_string(),
            settings: settings.clone(),
            thinking: budget.filter(|_| supported),
            thinking_ignored,
            warned: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn label(&self) -> ModelLabel {
        ModelLabel {
            provider: "anthropic".into(),
            model: self.model.clone(),
            replay: false,
        }
    }

    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        observer: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        if let Some(why) = &self.thinking_ignored
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            observer.status(why);
        }
        let body = serde_json::to_vec(&request_body_with(&self.model, request, self.thinking))
            .map_err(|e| LlmError::Protocol(format!("cannot encode the request: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = &self.api_key {
            headers.insert("x-api-key", http::secret_header(key.expose())?);
        }
        tracing::debug!(model = %self.model, bytes = body.len(), "anthropic request");
        http::exchange::<Turn>(
            &self.client,
            &self.url,
            headers,
            body,
            &self.settings,
            &self.model,
            observer,
        )
        .await
    }
}

/// Decodes a recorded stream delivered in `chunks`, by the same path as a network body (for
/// tests and benchmarks); the cost is left unset.
pub fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    observer: &dyn Observer,
) -> Result<ChatResponse, LlmError> {
    http::decode_chunks::<Turn>(chunks, observer)
}

enum Acc {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
        /// Input given whole in the block's start (some proxies send no deltas).
        initial: Value,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted(String),
    Other,
}

/// A thinking block as it starts (streamed) or whole (a non-streamed message).
fn thinking_acc(block: &Value) -> Option<Acc> {
    let s = |k: &str| {
        block
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match block.get("type").and_then(Value::as_str)? {
        "thinking" => Some(Acc::Thinking {
            thinking: s("thinking"),
            signature: s("signature"),
        }),
        "redacted_thinking" => Some(Acc::Redacted(s("data"))),
        _ => None,
    }
}

/// Accumulates one streamed message.
#[derive(Default)]
struct Turn {
    started: bool,
    blocks: BTreeMap<u64, Acc>,
    stop_reason: Option<String>,
    stopped: bool,
    input_tokens: u64,
    output_tokens: u64,
    cache_read: u64,
    cache_write: u64,
}

fn stream_err(what: impl Into<String>) -> LlmError {
    LlmError::Stream(what.into())
}

/// The HTTP status an error event's type corresponds to, so retry policy treats both alike.
fn status_of_error_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

impl TurnState for Turn {
    fn feed(&mut self, event: &SseEvent, observer: &dyn Observer) -> Result<bool, LlmError> {
        Turn::feed(self, event, observer)
    }

    fn finish(self) -> Result<ChatResponse, LlmError> {
        Turn::finish(self)
    }
}

impl Turn {
    fn usage(&mut self, u: Option<&Value>) {
        let Some(u) = u else { return };
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.input_tokens = v;
        }
        if let Some(v) = get("output_tokens") {
            self.output_tokens = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.cache_read = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.cache_write = v;
        }
    }

    /// Takes one event; `true` once the message is complete.
    fn feed(&mut self, event: &SseEvent, observer: &dyn Observer) -> Result<bool, LlmError> {
        let v: Value = serde_json::from_str(&event.data).map_err(|e| {
            stream_err(format!(
                "malformed JSON in a '{}' event: {e}",
                event.event.as_deref().unwrap_or("message")
            ))
        })?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let index = v.get("index").and_then(Value::as_u64);
        match kind {
            "message_start" => {
                self.started = true;
                self.usage(v.pointer("/message/usage"));
            }
            // A whole, non-streamed message (a proxy that ignored `stream: true`).
            "message" => {
                self.started = true;
                self.usage(v.get("usage"));
                let blocks = v.get("content").and_then(Value::as_array);
                for (i, block) in blocks.into_iter().flatten().enumerate() {
                    let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
                    let acc = match s("type") {
                        "text" => {
                            observer.text(s("text"));
                            Acc::Text(s("text").to_string())
                        }
                        "tool_use" => Acc::Tool {
                            id: s("id").to_string(),
                            name: s("name").to_string(),
                            json: String::new(),
                            initial: block.get("input").cloned().unwrap_or(Value::Null),
                        },
                        _ => thinking_acc(block).unwrap_or(Acc::Other),
                    };
                    self.blocks.insert(i as u64, acc);
                }
                self.stop_reason = v
                    .get("stop_reason")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.stopped = true;
                return Ok(true);
            }
            "content_block_start" => {
                let (Some(index), Some(block)) = (index, v.get("content_block")) else {
                    return Err(stream_err("content_block_start without index or block"));
                };
                self.require_started(kind)?;
                let s = |k: &str| {
                    block
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let acc = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = s("text");
                        if !t.is_empty() {
                            observer.text(&t);
                        }
                        Acc::Text(t)
                    }
                    Some("tool_use") => Acc::Tool {
                        id: s("id"),
                        name: s("name"),
                        json: String::new(),
                        initial: block.get("input").cloned().unwrap_or(Value::Null),
                    },
                    _ => thinking_acc(block).unwrap_or(Acc::Other),
                };
                self.blocks.insert(index, acc);
            }
            "content_block_delta" => {
                self.require_started(kind)?;
                let delta = v.get("delta").unwrap_or(&Value::Null);
                let acc = index.and_then(|i| self.blocks.get_mut(&i)).ok_or_else(|| {
                    stream_err("a content_block_delta for a block that was never started")
                })?;
                let part = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
                match (delta.get("type").and_then(Value::as_str), acc) {
                    (Some("text_delta"), Acc::Text(t)) => {
                        let d = part("text");
                        observer.text(d);
                        t.push_str(d);
                    }
                    (Some("input_json_delta"), Acc::Tool { json, .. }) => {
                        json.push_str(part("partial_json"))
                    }
                    // The thinking is not the answer: kept to be sent back, never streamed.
                    (Some("thinking_delta"), Acc::Thinking { thinking, .. }) => {
                        thinking.push_str(part("thinking"))
                    }
                    (Some("signature_delta"), Acc::Thinking { signature, .. }) => {
                        signature.push_str(part("signature"))
                    }
                    (
                        Some(
                            "text_delta" | "input_json_delta" | "thinking_delta"
                            | "signature_delta",
                        ),
                        _,
                    ) => {
                        return Err(stream_err("a delta that does not match its block's type"));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                self.usage(v.get("usage"));
            }
            "message_stop" => {
                self.require_started(kind)?;
                self.stopped = true;
                return Ok(true);
            }
            "error" => {
                let err = v.get("error").unwrap_or(&Value::Null);
                let etype = err
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error");
                let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                return Err(LlmError::Http {
                    status: status_of_error_type(etype),
                    message: format!("{etype}: {message} (in the stream)"),
                    retry_after_ms: None,
                });
            }
            // ping, content_block_stop and event types added after this was written.
            _ => {}
        }
        Ok(false)
    }

    fn require_started(&self, kind: &str) -> Result<(), LlmError> {
        if self.started {
            Ok(())
        } else {
            Err(stream_err(format!("'{kind}' before message_start")))
        }
    }

    fn finish(self) -> Result<ChatResponse, LlmError> {
        if !self.started {
            return Err(stream_err("the stream ended before the message started"));
        }
        let Some(stop) = self.stop_reason.clone() else {
            return Err(stream_err(if self.stopped {
                "message_stop without a stop reason"
            } else {
                "the stream ended before the message was complete"
            }));
        };
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut reasoning = Vec::new();
        for acc in self.blocks.into_values() {
            match acc {
                // A block cut before its signature cannot be sent back (the API checks it).
                Acc::Thinking {
                    thinking,
                    signature,
                } if !signature.is_empty() => reasoning.push(Reasoning::Thinking {
                    thinking,
                    signature,
                }),
                Acc::Redacted(data) if !data.is_empty() => {
                    reasoning.push(Reasoning::RedactedThinking { data })
                }
                Acc::Text(t) if !t.is_empty() => {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&t);
                }
                Acc::Tool {
                    id,
                    name,
                    json,
                    initial,
                } => {
                    if id.is_empty() || name.is_empty() {
                        return Err(LlmError::Protocol(
                            "a tool_use block without id or name".into(),
                        ));
                    }
                    tool_calls.push(ToolCall {
                        id,
                        name,
                        input: match initial {
                            Value::Object(o) if json.trim().is_empty() && !o.is_empty() => {
                                Value::Object(o)
                            }
                            _ => parse_tool_input(&json),
                        },
                    });
                }
                _ => {}
            }
        }
        let stop_reason = match stop.as_str() {
            "end_turn" | "stop_sequence" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" => StopReason::MaxTokens,
            other => StopReason::Other(other.to_string()),
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            stop_reason,
            reasoning,
            usage: UsageTotals {
                input_tokens: self.input_tokens,
                output_tokens: self.output_tokens,
                cache_read_tokens: self.cache_read,
                cache_write_tokens: self.cache_write,
                cost_usd: None,
            },
            answered_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_input_given_whole_in_the_block_start_is_kept() {
        let body = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,",
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"bash\",\"input\":{\"command\":\"ls\"}}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":2}}\n\n",
        );
        let r = decode_chunks([body.as_bytes()], &|_: &str| {}).unwrap();
        assert_eq!(r.tool_calls[0].input, json!({"command": "ls"}));
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (3, 2));
    }
}
