//! OpenAI's Responses API, streaming: one attempt at one model turn, for OpenAI's own endpoint
//! (Chat Completions in `openai.rs` stays for compatible servers). Unlike Chat Completions it
//! gives a reasoning model's reasoning back (encrypted), so it can be sent again next turn.
//!
//! Invariants: a turn is returned only once the stream said how it ended — `response.completed`,
//! or `response.incomplete` (at `max_output_tokens` it is the same [`StopReason::MaxTokens`] the
//! loop handles for every provider); a body that ends before is a retryable [`LlmError::Stream`];
//! `response.failed` and `error` events become [`LlmError::Http`] with the status their code
//! means, so retry policy treats them like the same answer as a status. Output items are kept by
//! their `output_index`; a finished item (`response.output_item.done`) is authoritative over its
//! deltas. Unknown event and item types are skipped. The request body is in `responses_body.rs`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::http::TurnState;
pub use super::responses_body::{Options, request_body};
use super::sse::SseEvent;
use super::{
    ChatResponse, LlmError, Observer, Reasoning, StopReason, ToolCall, openai, parse_tool_input,
};
use crate::event::UsageTotals;

/// Decodes a recorded stream delivered in `chunks`, by the same path as a network body (for
/// tests); the cost is left unset.
pub fn decode_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    observer: &dyn Observer,
) -> Result<ChatResponse, LlmError> {
    super::http::decode_chunks::<Turn>(chunks, observer)
}

enum Item {
    Message(String),
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
    Reasoning {
        summary: Vec<String>,
        encrypted: Option<String>,
    },
    Other,
}

fn text_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

impl Item {
    /// An item as `response.output_item.added`/`.done` or a whole response's `output` give it.
    fn from_json(item: &Value) -> Item {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => Item::Message(
                item.get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|c| c.get("type").and_then(Value::as_str) == Some("output_text"))
                    .map(|c| text_of(c, "text"))
                    .collect(),
            ),
            Some("function_call") => Item::Call {
                call_id: text_of(item, "call_id"),
                name: text_of(item, "name"),
                arguments: text_of(item, "arguments"),
            },
            Some("reasoning") => Item::Reasoning {
                summary: item
                    .get("summary")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|s| text_of(s, "text"))
                    .collect(),
                encrypted: item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            },
            _ => Item::Other,
        }
    }
}

enum Ending {
    Completed,
    Incomplete(String),
}

/// Accumulates one streamed response.
#[derive(Default)]
pub(crate) struct Turn {
    seen: bool,
    items: BTreeMap<u64, Item>,
    ending: Option<Ending>,
    usage: Option<UsageTotals>,
}

fn stream_err(what: impl Into<String>) -> LlmError {
    LlmError::Stream(what.into())
}

/// The HTTP status an error code in the stream corresponds to, so retry policy treats both alike.
fn status_of_code(code: &str) -> u16 {
    match code {
        "rate_limit_exceeded" | "insufficient_quota" => 429,
        "invalid_prompt" | "invalid_request_error" | "context_length_exceeded" => 400,
        "invalid_api_key" => 401,
        "model_not_found" => 404,
        "server_is_overloaded" | "slow_down" => 503,
        _ => 500,
    }
}

fn failure(error: &Value, what: &str) -> LlmError {
    let code = error.get("code").and_then(Value::as_str).unwrap_or("");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let label = if code.is_empty() { "error" } else { code };
    LlmError::Http {
        status: status_of_code(code),
        message: format!("{label}: {message} ({what})"),
        retry_after_ms: None,
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
    fn usage(&mut self, response: &Value) {
        let Some(u) = response.get("usage").filter(|u| u.is_object()) else {
            return;
        };
        let get = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let input = get("/input_tokens");
        let cached = get("/input_tokens_details/cached_tokens").min(input);
        self.usage = Some(UsageTotals {
            input_tokens: input - cached,
            output_tokens: get("/output_tokens"),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            cost_usd: None,
        });
    }

    /// The end of the response: its status, usage, and any output items not streamed.
    fn end(&mut self, response: &Value, observer: &dyn Observer) -> Result<bool, LlmError> {
        self.usage(response);
        let status = response
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("completed");
        match status {
            "failed" => {
                return Err(failure(
                    response.get("error").unwrap_or(&Value::Null),
                    "the response failed",
                ));
            }
            "incomplete" => {
                let reason = response
                    .pointer("/incomplete_details/reason")
                    .and_then(Value::as_str)
                    .unwrap_or("incomplete");
                self.ending = Some(Ending::Incomplete(reason.to_string()));
            }
            _ => self.ending = Some(Ending::Completed),
        }
        let output = response.get("output").and_then(Value::as_array);
        for (i, item) in output.into_iter().flatten().enumerate() {
            self.items.entry(i as u64).or_insert_with(|| {
                let item = Item::from_json(item);
                if let Item::Message(t) = &item {
                    observer.text(t);
                }
                item
            });
        }
        Ok(true)
    }

    /// Takes one event; `true` once the response has ended.
    fn feed(&mut self, event: &SseEvent, observer: &dyn Observer) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            stream_err(format!(
                "malformed JSON in a '{}' event: {e}",
                event.event.as_deref().unwrap_or("message")
            ))
        })?;
        // A server that ignored `stream: true` answers with the whole response object.
        if v.get("object").and_then(Value::as_str) == Some("response") {
            self.seen = true;
            return self.end(&v, observer);
        }
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let index = v.get("output_index").and_then(Value::as_u64);
        let delta = || v.get("delta").and_then(Value::as_str).unwrap_or("");
        if !kind.is_empty() {
            self.seen = true;
        }
        match kind {
            "response.output_item.added" => {
                let (Some(i), Some(item)) = (index, v.get("item")) else {
                    return Err(stream_err("an output item without index or item"));
                };
                // Streamed text starts empty; what `.done` brings replaces it.
                let item = match Item::from_json(item) {
                    Item::Message(_) => Item::Message(String::new()),
                    other => other,
                };
                self.items.insert(i, item);
            }
            "response.output_text.delta" => {
                if let Some(Item::Message(t)) = index.and_then(|i| self.items.get_mut(&i)) {
                    observer.text(delta());
                    t.push_str(delta());
                } else {
                    return Err(stream_err("text for an output item that was never added"));
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(Item::Call { arguments, .. }) =
                    index.and_then(|i| self.items.get_mut(&i))
                {
                    arguments.push_str(delta());
                } else {
                    return Err(stream_err("arguments for a call that was never added"));
                }
            }
            "response.function_call_arguments.done" => {
                if let (Some(Item::Call { arguments, .. }), Some(whole)) = (
                    index.and_then(|i| self.items.get_mut(&i)),
                    v.get("arguments").and_then(Value::as_str),
                ) {
                    *arguments = whole.to_string();
                }
            }
            "response.output_item.done" => {
                let (Some(i), Some(item)) = (index, v.get("item")) else {
                    return Err(stream_err("an output item without index or item"));
                };
                let done = Item::from_json(item);
                // Text never streamed as deltas is shown now.
                if let Item::Message(t) = &done {
                    match self.items.get(&i) {
                        Some(Item::Message(streamed)) if !streamed.is_empty() => {}
                        _ => observer.text(t),
                    }
                }
                self.items.insert(i, done);
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                return self.end(v.get("response").unwrap_or(&Value::Null), observer);
            }
            "error" => return Err(failure(&v, "in the stream")),
            // response.created, .in_progress, content parts, reasoning summary deltas, and event
            // types added after this was written.
            _ => {}
        }
        Ok(false)
    }

    fn finish(self) -> Result<ChatResponse, LlmError> {
        let Some(ending) = self.ending else {
            return Err(stream_err(if self.seen {
                "the stream ended before the response was complete"
            } else {
                "the stream ended without any answer"
            }));
        };
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut reasoning = Vec::new();
        for item in self.items.into_values() {
            match item {
                Item::Message(t) if !t.is_empty() => {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&t);
                }
                Item::Call {
                    call_id,
                    name,
                    arguments,
                } => {
                    if name.is_empty() {
                        return Err(LlmError::Protocol("a function call without a name".into()));
                    }
                    tool_calls.push(ToolCall {
                        id: if call_id.is_empty() {
                            openai::generated_id()
                        } else {
                            call_id
                        },
                        name,
                        input: parse_tool_input(&arguments),
                    });
                }
                // Without its encrypted content a reasoning item cannot be sent back statelessly.
                Item::Reasoning {
                    summary,
                    encrypted: Some(encrypted_content),
                } => reasoning.push(Reasoning::OpenAi {
                    summary,
                    encrypted_content,
                }),
                _ => {}
            }
        }
        let stop_reason = match ending {
            Ending::Incomplete(r) if r == "max_output_tokens" => StopReason::MaxTokens,
            Ending::Incomplete(r) => StopReason::Other(r),
            Ending::Completed if !tool_calls.is_empty() => StopReason::ToolUse,
            Ending::Completed => StopReason::EndTurn,
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            stop_reason,
            reasoning,
            usage: self.usage.unwrap_or_default(),
            answered_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Result<ChatResponse, LlmError> {
        decode_chunks([body.as_bytes()], &|_: &str| {})
    }

    #[test]
    fn a_whole_response_object_is_understood() {
        // As the network path delivers an `application/json` answer: one event, the document.
        let whole = r#"{"id":"resp_1","object":"response","status":"completed","output":[
          {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]},
          {"type":"function_call","id":"fc_1","call_id":"call_1","name":"bash","arguments":"{\"command\":\"ls\"}"}],
          "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3}}"#;
        let mut turn = Turn::default();
        let event = SseEvent {
            event: None,
            data: whole.to_string(),
        };
        assert!(turn.feed(&event, &|_: &str| {}).unwrap());
        let r = turn.finish().unwrap();
        assert_eq!(r.text, "Hi");
        assert_eq!(r.tool_calls[0].id, "call_1");
        assert_eq!(r.tool_calls[0].input["command"], "ls");
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!((r.usage.input_tokens, r.usage.cache_read_tokens), (6, 4));
    }

    #[test]
    fn failures_map_to_statuses() {
        let e = decode(concat!(
            "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":",
            "\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}}\n\n"
        ))
        .unwrap_err();
        assert!(matches!(e, LlmError::Http { status: 429, .. }), "{e:?}");
        assert!(e.is_retryable());
        let e = decode("event: response.created\ndata: {\"type\":\"response.created\"}\n\n")
            .unwrap_err();
        assert!(matches!(e, LlmError::Stream(_)), "{e:?}");
    }
}
