//! Model turns in both wire formats, injected faults, and the scripted [`Model`] behind a server.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{CacheLedger, End, Framing, Handler, Reply, Request};

#[derive(Debug, Clone)]
pub struct Turn {
    pub text: String,
    pub calls: Vec<(String, Value)>,
}

impl Turn {
    pub fn new(text: &str, calls: &[(&str, Value)]) -> Turn {
        Turn {
            text: text.to_string(),
            calls: calls
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    OpenAi,
}

/// Splits `s` into pieces of about `n` characters (on char boundaries).
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

fn event(name: &str, data: Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// An Anthropic Messages stream for `turn`, one event per chunk.
pub fn anthropic_stream(turn: &Turn, number: usize, usage: Usage) -> Vec<Vec<u8>> {
    anthropic_stream_cut(turn, number, usage, None)
}

/// The last tool call's JSON input ends after `keep` characters, and the turn's stop reason says
/// why: the output-token limit (`max_tokens`), or nothing (a model that sent broken JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutInput {
    pub keep: usize,
    pub max_tokens: bool,
}

fn input_text(input: &Value, i: usize, calls: usize, cut: Option<CutInput>) -> String {
    let full = input.to_string();
    match cut {
        Some(c) if i + 1 == calls => full.chars().take(c.keep).collect(),
        _ => full,
    }
}

/// [`anthropic_stream`] with the last tool call's input cut.
pub fn anthropic_stream_cut(
    turn: &Turn,
    number: usize,
    usage: Usage,
    cut: Option<CutInput>,
) -> Vec<Vec<u8>> {
    let mut out = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": format!("msg_{number}"), "type": "message",
            "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929",
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": usage.input, "cache_read_input_tokens": usage.cache_read,
                      "cache_creation_input_tokens": usage.cache_write, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    if !turn.text.is_empty() {
        out.push(event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
        out.push(event("ping", json!({"type": "ping"})));
        for p in pieces(&turn.text, 12) {
            out.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})));
        }
        out.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        index = 1;
    }
    for (i, (name, input)) in turn.calls.iter().enumerate() {
        let id = format!("toolu_{number}_{i}");
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        for p in pieces(&input_text(input, i, turn.calls.len(), cut), 9) {
            out.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": p}}),
            ));
        }
        out.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    let stop = if cut.is_some_and(|c| c.max_tokens) {
        "max_tokens"
    } else if turn.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    out.push(event("message_delta", json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": usage.output}})));
    out.push(event("message_stop", json!({"type": "message_stop"})));
    out
}

fn chunk(number: usize, delta: Value, finish: Value) -> Vec<u8> {
    let v = json!({"id": format!("chatcmpl-{number}"), "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4.1-2025-04-14", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n").into_bytes()
}

/// An OpenAI Chat Completions stream for `turn`, one SSE event per chunk.
pub fn openai_stream(turn: &Turn, number: usize, usage: Usage) -> Vec<Vec<u8>> {
    openai_stream_cut(turn, number, usage, None)
}

/// [`openai_stream`] with the last tool call's input cut (`length` when at the token limit).
pub fn openai_stream_cut(
    turn: &Turn,
    number: usize,
    usage: Usage,
    cut: Option<CutInput>,
) -> Vec<Vec<u8>> {
    let mut out = vec![chunk(
        number,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for p in pieces(&turn.text, 12) {
        out.push(chunk(number, json!({"content": p}), Value::Null));
    }
    for (i, (name, input)) in turn.calls.iter().enumerate() {
        out.push(chunk(
            number,
            json!({"tool_calls": [{"index": i, "id": format!("call_{number}_{i}"),
            "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        for p in pieces(&input_text(input, i, turn.calls.len(), cut), 9) {
            out.push(chunk(
                number,
                json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                Value::Null,
            ));
        }
    }
    let finish = if cut.is_some_and(|c| c.max_tokens) {
        "length"
    } else if turn.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    out.push(chunk(number, json!({}), json!(finish)));
    let u = json!({"id": format!("chatcmpl-{number}"), "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4.1-2025-04-14", "choices": [],
        "usage": {"prompt_tokens": usage.input + usage.cache_read, "completion_tokens": usage.output,
                  "total_tokens": usage.input + usage.cache_read + usage.output,
                  "prompt_tokens_details": {"cached_tokens": usage.cache_read}}});
    out.push(format!("data: {u}\n\n").into_bytes());
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

// ---------------------------------------------------------------------------------------------
// Faults

#[derive(Debug, Clone)]
pub enum Fault {
    /// An error answer: status, extra headers, body.
    Status(u16, Vec<(String, String)>, String),
    /// After this many events of the real stream, reset the connection.
    Reset(usize),
    /// After this many events, close cleanly (body delimited by close: no transport error).
    Cut(usize),
    /// After this many events, send nothing more.
    Stall(usize),
    /// No answer at all, not even headers.
    Silence,
    /// After this many events, an event whose JSON is broken.
    Malformed(usize),
    /// After this many events, an Anthropic `error` event of this type.
    ErrorEvent(usize, &'static str),
    /// A complete stream whose last tool call's input is cut (see [`CutInput`]).
    CutInput(CutInput),
}

impl Fault {
    pub fn status(status: u16, body: &str) -> Fault {
        Fault::Status(status, vec![], body.to_string())
    }

    pub fn overloaded() -> Fault {
        Fault::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
    }

    pub fn reply(&self, stream: Vec<Vec<u8>>) -> Reply {
        let head = |n: usize| stream.iter().take(n).cloned().collect::<Vec<_>>();
        match self {
            Fault::Status(status, headers, body) => Reply::Status {
                status: *status,
                headers: headers.clone(),
                body: body.clone(),
            },
            Fault::Reset(n) => Reply::Stream {
                chunks: head(*n),
                framing: Framing::CloseDelimited,
                end: End::Reset,
            },
            Fault::Cut(n) => Reply::Stream {
                chunks: head(*n),
                framing: Framing::CloseDelimited,
                end: End::Cut,
            },
            Fault::Stall(n) => Reply::Stream {
                chunks: head(*n),
                framing: Framing::Chunked,
                end: End::Stall,
            },
            Fault::Silence => Reply::Silence,
            Fault::Malformed(n) => {
                let mut c = head(*n);
                c.push(b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0,\n\n".to_vec());
                c.push(b"data: {\"choices\": [{\"delta\": {\"content\": \"x\"\n\n".to_vec());
                c.extend(stream.iter().skip(*n).cloned());
                Reply::sse(c)
            }
            // Built by the model itself (it needs the turn); here the stream is already cut.
            Fault::CutInput(_) => Reply::sse(stream),
            Fault::ErrorEvent(n, kind) => {
                let mut c = head(*n);
                c.push(event(
                    "error",
                    json!({"type": "error", "error": {"type": kind, "message": "injected"}}),
                ));
                Reply::sse(c)
            }
        }
    }
}

/// A scripted model behind a [`MockServer`].
pub struct Model {
    pub format: Format,
    pub turns: Vec<Turn>,
    /// Faults for the next requests of a turn (by turn index), used up in order.
    pub faults: Mutex<HashMap<usize, VecDeque<Fault>>>,
    /// From this turn index on, every request gets this fault ("fails for good").
    pub fail_from: Mutex<Option<(usize, Fault)>>,
    /// Anthropic: prompt-cache accounting that also fills in the reported usage.
    pub ledger: Mutex<CacheLedger>,
}

impl Model {
    pub fn new(format: Format, turns: Vec<Turn>) -> Arc<Model> {
        Arc::new(Model {
            format,
            turns,
            faults: Mutex::default(),
            fail_from: Mutex::default(),
            ledger: Mutex::default(),
        })
    }

    pub fn fault(&self, turn: usize, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .entry(turn)
            .or_default()
            .push_back(fault);
    }

    pub fn fail_from(&self, turn: usize, fault: Fault) {
        *self.fail_from.lock().unwrap() = Some((turn, fault));
    }

    /// Which turn a request asks for: the number of assistant messages it carries.
    pub fn turn_of(body: &Value) -> usize {
        body["messages"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["role"] == "assistant").count())
            .unwrap_or(0)
    }

    pub fn handler(self: &Arc<Self>) -> Handler {
        let model = self.clone();
        Arc::new(move |req: &Request| model.answer(req))
    }

    fn answer(&self, req: &Request) -> Reply {
        let n = Self::turn_of(&req.body);
        let Some(turn) = self.turns.get(n) else {
            return Reply::Status {
                status: 500,
                headers: vec![],
                body: format!(r#"{{"error":{{"message":"the mock has no turn {n}"}}}}"#),
            };
        };
        let failing = self
            .fail_from
            .lock()
            .unwrap()
            .clone()
            .filter(|(from, _)| n >= *from);
        let planned = if failing.is_some() {
            None
        } else {
            self.faults
                .lock()
                .unwrap()
                .get_mut(&n)
                .and_then(|q| q.pop_front())
        };
        let cut = match &planned {
            Some(Fault::CutInput(c)) => Some(*c),
            _ => None,
        };
        let stream = match self.format {
            Format::Anthropic => {
                let row = self.ledger.lock().unwrap().account(&req.body);
                let output = (turn.text.len() as u64 + 40 * turn.calls.len() as u64) / 4 + 1;
                let usage = Usage {
                    input: row.uncached_tail.div_ceil(4),
                    output,
                    cache_read: row.cached / 4,
                    cache_write: row.written / 4,
                };
                anthropic_stream_cut(turn, n, usage, cut)
            }
            Format::OpenAi => {
                let bytes = req.raw_body.len() as u64;
                let usage = Usage {
                    input: bytes / 4,
                    output: turn.text.len() as u64 / 4 + 1,
                    ..Default::default()
                };
                openai_stream_cut(turn, n, usage, cut)
            }
        };
        if let Some((_, fault)) = failing {
            return fault.reply(stream);
        }
        match planned {
            Some(f) => f.reply(stream),
            None => Reply::sse(stream),
        }
    }
}
