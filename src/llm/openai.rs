//! OpenAI Chat Completions, streaming — and the many servers that speak it (Ollama, vLLM,
//! llama.cpp, LM Studio, OpenRouter): one attempt at one model turn.
//!
//! Invariants: `Authorization: Bearer` is sent when a key is configured (marked sensitive); a
//! loopback base URL needs none. Tool-call fragments are accumulated by their `index` (falling back
//! to the id, then the last call, for servers that omit it); arguments may arrive in fragments or
//! whole. A turn is returned once the stream said it was complete (`[DONE]`, or a `finish_reason`
//! before the body ended); otherwise the attempt fails with a retryable [`LlmError::Stream`].
//! Missing usage, missing tool-call ids and unusual `finish_reason`s are tolerated. The provider
//! speaks the Responses API (`responses.rs`) instead on OpenAI's own endpoint (`openai.api`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Client, Url};
use serde_json::{Value, json};

use super::http::{self, TurnState};
pub use super::openai_body::request_body;
use super::settings::{self, LlmSettings, OpenAiApi, ReasoningEffort};
use super::sse::SseEvent;
use super::{
    ChatRequest, ChatResponse, LlmError, ModelLabel, Observer, Provider, StopReason, TextSink,
    ToolCall, parse_tool_input,
};
use crate::event::UsageTotals;
use crate::secret::Secret;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub struct OpenAiProvider {
    client: Client,
    url: Url,
    api_key: Option<Secret>,
    model: String,
    /// The official API wants `max_completion_tokens`; compatible servers know `max_tokens`.
    official: bool,
    /// Speaks the Responses API rather than Chat Completions.
    responses: bool,
    /// The model reasons (see [`settings::openai_reasoning`]).
    reasoning_model: bool,
    /// The reasoning effort sent with each request.
    effort: Option<ReasoningEffort>,
    /// Why a configured effort is not sent, said once in the first turn's status.
    effort_ignored: Option<String>,
    warned: AtomicBool,
    settings: LlmSettings,
}

impl OpenAiProvider {
    pub fn new(
        base_url: Option<&str>,
        api_key: Option<Secret>,
        model: &str,
        settings: &LlmSettings,
    ) -> Result<Self, LlmError> {
        let base = http::parse_base_url(base_url.unwrap_or(DEFAULT_BASE_URL), "OPENAI_BASE_URL")?;
        let api_key = api_key.filter(|k| !k.expose().trim().is_empty());
        if api_key.is_none() && !http::is_loopback(&base) {
            return Err(LlmError::Config(
                "the openai provider needs OPENAI_API_KEY (only a local OPENAI_BASE_URL, such as \
                 Ollama's http://localhost:11434/v1, works without one)"
                    .into(),
            ));
        }
        let model = model.trim();
        if model.is_empty() {
            return Err(LlmError::Config("openai: the model name is empty".into()));
        }
        let official = base.host_str() == Some("api.openai.com");
        let responses = match settings.openai_api {
            OpenAiApi::Auto => official,
            OpenAiApi::Responses => true,
            OpenAiApi::Chat => false,
        };
        let reasoning_model = settings::openai_reasoning(model);
        // OpenAI's own models other than its reasoning ones refuse the parameter; a compatible
        // server gets what the user configured.
        let effort_sent = reasoning_model || !official;
        let effort_ignored = settings.reasoning_effort.filter(|_| !effort_sent).map(|e| {
            format!(
                "agent.reasoning_effort ({}) is not sent: openai:{model} is not a reasoning model \
                 (o-series, gpt-5, gpt-oss, codex)",
                e.as_str()
            )
        });
        Ok(OpenAiProvider {
            client: http::client(settings, &base)?,
            official,
            responses,
            url: http::join(
                &base,
                if responses {
                    "responses"
                } else {
                    "chat/completions"
                },
            ),
            api_key,
            model: model.to_string(),
            reasoning_model,
            effort: settings.reasoning_effort.filter(|_| effort_sent),
            effort_ignored,
            warned: AtomicBool::new(false),
            settings: settings.clone(),
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn label(&self) -> ModelLabel {
        ModelLabel {
            provider: "openai".into(),
            model: self.model.clone(),
            replay: false,
        }
    }

    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        observer: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        if let Some(why) = &self.effort_ignored
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            observer.status(why);
        }
        let body = if self.responses {
            let options = super::responses::Options {
                reasoning_model: self.reasoning_model,
                effort: self.effort,
            };
            super::responses::request_body(&self.model, request, options)
        } else {
            let mut body = request_body(&self.model, request, self.official);
            if let Some(e) = self.effort {
                body["reasoning_effort"] = json!(e.as_str());
            }
            body
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| LlmError::Protocol(format!("cannot encode the request: {e}")))?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                http::secret_header(&format!("Bearer {}", key.expose()))?,
            );
        }
        tracing::debug!(model = %self.model, bytes = body.len(), responses = self.responses, "openai request");
        if self.responses {
            return http::exchange::<super::responses::Turn>(
                &self.client,
                &self.url,
                headers,
                body,
                &self.settings,
                &self.model,
                observer,
            )
            .await;
        }
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

#[derive(Default)]
struct Call {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct Turn {
    seen_chunk: bool,
    text: String,
    calls: Vec<Call>,
    finish_reason: Option<String>,
    done: bool,
    usage: Option<UsageTotals>,
}

/// Ids for servers that send tool calls without one: unique within the process.
pub(crate) fn generated_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "call_tb{:x}{}",
        fastrand::u32(..),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn stream_err(what: impl Into<String>) -> LlmError {
    LlmError::Stream(what.into())
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
    /// Takes one event; `true` at `[DONE]`.
    fn feed(&mut self, event: &SseEvent, observer: &dyn Observer) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| stream_err(format!("malformed JSON in a stream chunk: {e}")))?;
        if let Some(err) = v.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| err.as_str())
                .unwrap_or("unknown error");
            let status = err
                .get("code")
                .and_then(|c| {
                    c.as_u64()
                        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                })
                .filter(|c| (400..600).contains(c))
                .map(|c| c as u16)
                .unwrap_or(500);
            return Err(LlmError::Http {
                status,
                message: format!("{message} (in the stream)"),
                retry_after_ms: None,
            });
        }
        self.seen_chunk = true;
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let get = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            let prompt = get("/prompt_tokens");
            let cached = get("/prompt_tokens_details/cached_tokens").min(prompt);
            self.usage = Some(UsageTotals {
                input_tokens: prompt - cached,
                output_tokens: get("/completion_tokens"),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
                cost_usd: None,
            });
        }
        let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
            return Ok(false);
        };
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            if let Some(t) = delta.get("content").and_then(Value::as_str)
                && !t.is_empty()
            {
                observer.text(t);
                self.text.push_str(t);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, c) in calls.iter().enumerate() {
                    self.tool_delta(c, position);
                }
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str)
            && !r.is_empty()
        {
            self.finish_reason = Some(r.to_string());
        }
        Ok(false)
    }

    fn tool_delta(&mut self, c: &Value, position: usize) {
        let index = c.get("index").and_then(Value::as_u64);
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let slot = if let Some(i) = index {
            self.calls.iter().position(|k| k.index == Some(i))
        } else if let Some(id) = id {
            self.calls.iter().position(|k| k.id == id)
        } else if position > 0 || self.calls.is_empty() {
            // A server without indexes that sends several calls in one chunk: one per entry.
            None
        } else {
            Some(self.calls.len() - 1)
        };
        let slot = match slot {
            Some(s) => s,
            None => {
                self.calls.push(Call {
                    index,
                    ..Default::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_string();
        }
        let f = c.get("function").unwrap_or(&Value::Null);
        if let Some(n) = f.get("name").and_then(Value::as_str)
            && call.name.is_empty()
        {
            call.name = n.to_string();
        }
        match f.get("arguments") {
            Some(Value::String(s)) => call.arguments.push_str(s),
            // Some servers send the arguments as an object rather than a JSON string.
            Some(v @ Value::Object(_)) => call.arguments.push_str(&v.to_string()),
            _ => {}
        }
    }

    fn finish(self) -> Result<ChatResponse, LlmError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(stream_err(if self.seen_chunk {
                "the stream ended before the answer was complete"
            } else {
                "the stream ended without any answer"
            }));
        }
        let mut tool_calls = Vec::new();
        for call in self.calls {
            if call.name.is_empty() {
                return Err(LlmError::Protocol(
                    "a tool call without a function name".into(),
                ));
            }
            tool_calls.push(ToolCall {
                id: if call.id.is_empty() {
                    generated_id()
                } else {
                    call.id
                },
                name: call.name,
                input: parse_tool_input(&call.arguments),
            });
        }
        // A cut turn stays cut even with tool calls: the last one may be incomplete.
        let stop_reason = match self.finish_reason.as_deref() {
            Some("length" | "max_tokens") => StopReason::MaxTokens,
            _ if !tool_calls.is_empty() => StopReason::ToolUse,
            None | Some("stop" | "end_turn" | "eos" | "stop_sequence") => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.to_string()),
        };
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            stop_reason,
            reasoning: Vec::new(),
            usage: self.usage.unwrap_or_default(),
            answered_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Block, Message, Role, ToolSpec};

    fn decode(body: &str) -> Result<ChatResponse, LlmError> {
        decode_chunks([body.as_bytes()], &|_: &str| {})
    }

    #[test]
    fn compatible_server_quirks() {
        // No index, whole arguments in one chunk, "stop" although tools were called, no usage,
        // no [DONE].
        let r = decode(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"tool_calls\":[",
            "{\"id\":\"a\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"x\\\"}\"}},",
            "{\"function\":{\"name\":\"bash\",\"arguments\":{\"command\":\"ls\"}}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        ))
        .unwrap();
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].id, "a");
        assert_eq!(r.tool_calls[0].input, json!({"path": "x"}));
        assert!(r.tool_calls[1].id.starts_with("call_tb"));
        assert_eq!(r.tool_calls[1].input, json!({"command": "ls"}));
        assert_eq!(r.usage, UsageTotals::default());
    }

    #[test]
    fn cached_prompt_tokens_are_cache_reads_and_errors_in_the_stream_are_http_errors() {
        let r = decode(concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"eos\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5,",
            "\"prompt_tokens_details\":{\"cached_tokens\":80}}}\n\n",
            "data: [DONE]\n\n",
        ))
        .unwrap();
        assert_eq!(r.text, "hi");
        assert_eq!(r.stop_reason, StopReason::EndTurn);
        assert_eq!((r.usage.input_tokens, r.usage.cache_read_tokens), (20, 80));
        let e = decode("data: {\"error\":{\"message\":\"rate limited\",\"code\":429}}\n\n")
            .unwrap_err();
        assert!(matches!(e, LlmError::Http { status: 429, .. }), "{e:?}");
        let e = decode(
            ": OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"h\"}}]}\n\n",
        )
        .unwrap_err();
        assert!(matches!(e, LlmError::Stream(_)), "{e:?}");
    }

    #[test]
    fn the_api_and_the_effort_follow_the_endpoint_and_the_model() {
        let key = || Some(Secret::new("k"));
        let with = |api, effort| LlmSettings {
            openai_api: api,
            reasoning_effort: effort,
            ..Default::default()
        };
        let auto = with(OpenAiApi::Auto, Some(ReasoningEffort::Low));
        let official = OpenAiProvider::new(None, key(), "o3", &auto).unwrap();
        assert!(official.responses && official.url.path().ends_with("/v1/responses"));
        assert_eq!(official.effort, Some(ReasoningEffort::Low));
        let local = "http://127.0.0.1:1/v1";
        let compatible = OpenAiProvider::new(Some(local), None, "qwen", &auto).unwrap();
        assert!(!compatible.responses && compatible.url.path().ends_with("/chat/completions"));
        assert_eq!(
            compatible.effort,
            Some(ReasoningEffort::Low),
            "the user's server decides"
        );
        let forced = with(OpenAiApi::Responses, None);
        assert!(
            OpenAiProvider::new(Some(local), None, "m", &forced)
                .unwrap()
                .responses
        );
        let chat = with(OpenAiApi::Chat, None);
        assert!(
            !OpenAiProvider::new(None, key(), "o3", &chat)
                .unwrap()
                .responses
        );
        // OpenAI's non-reasoning models refuse the parameter: not sent, and said once.
        let plain = OpenAiProvider::new(None, key(), "gpt-4.1", &auto).unwrap();
        assert_eq!(plain.effort, None);
        assert!(plain.effort_ignored.unwrap().contains("gpt-4.1"));
    }

    #[test]
    fn body_shapes_tool_calls_and_results() {
        let tools = vec![ToolSpec {
            name: "read_file",
            description: "R",
            input_schema: json!({"type": "object"}),
        }];
        let messages = vec![
            Message::user_text("Task"),
            Message {
                role: Role::Assistant,
                blocks: vec![Block::ToolCall(ToolCall {
                    id: "toolu_1".into(),
                    name: "read_file".into(),
                    input: json!({"path": "a"}),
                })],
            },
            Message {
                role: Role::User,
                blocks: vec![
                    Block::ToolResult {
                        call_id: "toolu_1".into(),
                        content: "no such file".into(),
                        is_error: true,
                    },
                    Block::Text("and also".into()),
                ],
            },
        ];
        let req = ChatRequest {
            system: "sys",
            tools: &tools,
            messages: &messages,
            max_output_tokens: 50,
        };
        let b = request_body("m", &req, false);
        assert_eq!(b["max_tokens"], 50);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["tools"][0]["function"]["parameters"]["type"], "object");
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[2]["content"], Value::Null);
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"path":"a"}"#
        );
        assert_eq!(m[3]["role"], "tool");
        assert_eq!(m[3]["tool_call_id"], "toolu_1");
        assert_eq!(m[3]["content"], "Error: no such file");
        assert_eq!(m[4]["role"], "user");
        let official = request_body("m", &req, true);
        assert_eq!(official["max_completion_tokens"], 50);
        assert!(official.get("max_tokens").is_none());
    }
}
