//! Local model servers for the tests and the cache benchmark: a small HTTP/1.1 server on
//! 127.0.0.1:0 that records every request and answers with real wire-format streams (Anthropic
//! Messages SSE, OpenAI Chat Completions SSE) — or with an injected fault: an error status, a reset
//! connection, a stream cut short, malformed JSON, an `error` event, a stall.
//!
//! A [`Model`] plays a list of turns. Which turn a request asks for is read from the request itself
//! (how many assistant messages the conversation holds), so a retried or a fallen-back request gets
//! the same answer as the first attempt would have. Include with
//! `#[path = "support/mock_llm.rs"] mod mock_llm;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub raw_body: Vec<u8>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `transfer-encoding: chunked`, each chunk its own HTTP chunk.
    Chunked,
    /// No length: the body ends when the connection closes.
    CloseDelimited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Complete,
    /// Connection reset (RST) after the chunks.
    Reset,
    /// Clean close after the chunks, without the end of the stream.
    Cut,
    /// Nothing more is sent, the connection stays open.
    Stall,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Stream {
        chunks: Vec<Vec<u8>>,
        framing: Framing,
        end: End,
    },
}

impl Reply {
    pub fn sse(chunks: Vec<Vec<u8>>) -> Reply {
        Reply::Stream {
            chunks,
            framing: Framing::Chunked,
            end: End::Complete,
        }
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct MockServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    pub async fn start(handler: Handler) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, handler, log).await;
                });
            }
        });
        MockServer {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (Anthropic base URL form).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (OpenAI base URL form).
    pub fn url_v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let request = Request {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw_body: body,
        at: Instant::now(),
    };
    log.lock().unwrap().push(request.clone());
    match handler(&request) {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Reply::Stream {
            chunks,
            framing,
            end,
        } => {
            let te = match framing {
                Framing::Chunked => "transfer-encoding: chunked\r\n",
                Framing::CloseDelimited => "",
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n{te}connection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            for c in &chunks {
                if c.is_empty() {
                    continue;
                }
                match framing {
                    Framing::Chunked => {
                        stream
                            .write_all(format!("{:x}\r\n", c.len()).as_bytes())
                            .await?;
                        stream.write_all(c).await?;
                        stream.write_all(b"\r\n").await?;
                    }
                    Framing::CloseDelimited => stream.write_all(c).await?,
                }
                stream.flush().await?;
            }
            match end {
                End::Complete => {
                    if framing == Framing::Chunked {
                        stream.write_all(b"0\r\n\r\n").await?;
                    }
                    stream.shutdown().await?;
                }
                End::Cut => stream.shutdown().await?,
                End::Reset => {
                    // Give the client the bytes already written, then reset.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    stream.set_zero_linger()?;
                    drop(stream);
                }
                End::Stall => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scripted model turns in both wire formats

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
        for p in pieces(&input.to_string(), 9) {
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
    let stop = if turn.calls.is_empty() {
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
        for p in pieces(&input.to_string(), 9) {
            out.push(chunk(
                number,
                json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                Value::Null,
            ));
        }
    }
    let finish = if turn.calls.is_empty() {
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
    /// After this many events, an event whose JSON is broken.
    Malformed(usize),
    /// After this many events, an Anthropic `error` event of this type.
    ErrorEvent(usize, &'static str),
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
            Fault::Malformed(n) => {
                let mut c = head(*n);
                c.push(b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0,\n\n".to_vec());
                c.push(b"data: {\"choices\": [{\"delta\": {\"content\": \"x\"\n\n".to_vec());
                c.extend(stream.iter().skip(*n).cloned());
                Reply::sse(c)
            }
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
                anthropic_stream(turn, n, usage)
            }
            Format::OpenAi => {
                let bytes = req.raw_body.len() as u64;
                let usage = Usage {
                    input: bytes / 4,
                    output: turn.text.len() as u64 / 4 + 1,
                    ..Default::default()
                };
                openai_stream(turn, n, usage)
            }
        };
        if let Some((from, fault)) = self.fail_from.lock().unwrap().clone()
            && n >= from
        {
            return fault.reply(stream);
        }
        let planned = self
            .faults
            .lock()
            .unwrap()
            .get_mut(&n)
            .and_then(|q| q.pop_front());
        match planned {
            Some(f) => f.reply(stream),
            None => Reply::sse(stream),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request checks

/// Every `tool_use` is answered by a `tool_result` in the next (user) message and every result
/// answers a `tool_use` of the message before; roles alternate, starting with the user.
pub fn check_anthropic_pairing(body: &Value) -> Result<(), String> {
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let mut expected: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want {
            return Err(format!("message {i} has role {role}, expected {want}"));
        }
        let blocks = m["content"].as_array().ok_or("content is not a list")?;
        let kinds: Vec<&str> = blocks.iter().filter_map(|b| b["type"].as_str()).collect();
        if role == "user" {
            let results: Vec<String> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .map(|b| b["tool_use_id"].as_str().unwrap_or("").to_string())
                .collect();
            if results != expected {
                return Err(format!(
                    "message {i}: results {results:?}, calls {expected:?}"
                ));
            }
            let first_other = kinds.iter().position(|k| *k != "tool_result");
            if let Some(p) = first_other
                && kinds[p..].contains(&"tool_result")
            {
                return Err(format!("message {i}: tool_result after other content"));
            }
            expected.clear();
        } else {
            expected = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| b["id"].as_str().unwrap_or("").to_string())
                .collect();
        }
    }
    Ok(())
}

/// Each assistant message's `tool_calls` are answered, in order, by `tool` messages right after it.
pub fn check_openai_pairing(body: &Value) -> Result<(), String> {
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let mut i = 0;
    while i < messages.len() {
        let m = &messages[i];
        if m["role"] == "tool" {
            return Err(format!("message {i}: a tool result without a call"));
        }
        if let Some(calls) = m["tool_calls"].as_array() {
            for (k, c) in calls.iter().enumerate() {
                let r = messages.get(i + 1 + k).ok_or("missing tool result")?;
                if r["role"] != "tool" || r["tool_call_id"] != c["id"] {
                    return Err(format!(
                        "message {}: expected the result of {}",
                        i + 1 + k,
                        c["id"]
                    ));
                }
                serde_json::from_str::<Value>(c["function"]["arguments"].as_str().unwrap_or(""))
                    .map_err(|e| format!("arguments are not JSON: {e}"))?;
            }
            i += calls.len();
        }
        i += 1;
    }
    Ok(())
}

/// Where `cache_control` breakpoints sit: `tools[i]`, `system[i]`, `messages[i].content[j]`.
pub fn cache_breakpoints(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if t.get("cache_control").is_some() {
            out.push(format!("tools[{i}]"));
        }
    }
    for (i, s) in body["system"].as_array().into_iter().flatten().enumerate() {
        if s.get("cache_control").is_some() {
            out.push(format!("system[{i}]"));
        }
    }
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            if b.get("cache_control").is_some() {
                out.push(format!("messages[{i}].content[{j}]"));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Prompt-cache accounting

/// One request's prompt bytes: total, read from cache, written to cache, and after the last
/// breakpoint (never cached).
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheRow {
    pub total: u64,
    pub cached: u64,
    pub written: u64,
    pub uncached_tail: u64,
}

/// Models Anthropic's prompt cache on the bytes of the request: the prompt is the sequence tools,
/// system blocks, message blocks; a breakpoint writes the prefix ending there (if at least
/// `min_prefix` bytes); a later request reads the longest prefix, ending at one of its breakpoints
/// or up to 20 blocks before one, that an earlier request wrote.
#[derive(Debug, Default)]
pub struct CacheLedger {
    written: HashSet<u64>,
    pub rows: Vec<CacheRow>,
    /// 1024 tokens ≈ 4096 bytes for Sonnet-class models.
    pub min_prefix: u64,
}

impl CacheLedger {
    pub fn account(&mut self, body: &Value) -> CacheRow {
        let min_prefix = if self.min_prefix == 0 {
            4096
        } else {
            self.min_prefix
        };
        let mut segments: Vec<(String, bool)> = Vec::new();
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("cache_control");
            }
            v
        };
        for t in body["tools"].as_array().into_iter().flatten() {
            segments.push((strip(t).to_string(), t.get("cache_control").is_some()));
        }
        for s in body["system"].as_array().into_iter().flatten() {
            segments.push((strip(s).to_string(), s.get("cache_control").is_some()));
        }
        for m in body["messages"].as_array().into_iter().flatten() {
            for b in m["content"].as_array().into_iter().flatten() {
                let seg = format!("{}:{}", m["role"], strip(b));
                segments.push((seg, b.get("cache_control").is_some()));
            }
        }
        let mut hashes = Vec::new();
        let mut sizes = Vec::new();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut size = 0u64;
        for (s, _) in &segments {
            s.hash(&mut hasher);
            size += s.len() as u64;
            hashes.push(hasher.finish());
            sizes.push(size);
        }
        let breakpoints: Vec<usize> = segments
            .iter()
            .enumerate()
            .filter(|(_, (_, bp))| *bp)
            .map(|(i, _)| i)
            .collect();
        let mut cached = 0;
        for &bp in &breakpoints {
            for q in (bp.saturating_sub(20)..=bp).rev() {
                if self.written.contains(&hashes[q]) {
                    cached = cached.max(sizes[q]);
                    break;
                }
            }
        }
        let last_bp = breakpoints.last().map(|&b| sizes[b]).unwrap_or(0);
        for &bp in &breakpoints {
            if sizes[bp] >= min_prefix {
                self.written.insert(hashes[bp]);
            }
        }
        let total = size;
        let row = CacheRow {
            total,
            cached,
            written: if last_bp >= min_prefix {
                last_bp.saturating_sub(cached)
            } else {
                0
            },
            uncached_tail: total - cached.max(if last_bp >= min_prefix { last_bp } else { 0 }),
        };
        self.rows.push(row);
        row
    }
}

// ---------------------------------------------------------------------------------------------
// A small task for end-to-end runs: make `divide` reject zero.

/// The model's side of the task, six turns; every tool of the contract is used once or more.
pub fn task_turns() -> Vec<Turn> {
    vec![
        Turn::new(
            "I'll look at the code first.",
            &[
                ("list_files", json!({})),
                ("read_file", json!({"path": "calc.py"})),
            ],
        ),
        Turn::new(
            "",
            &[(
                "edit_file",
                json!({"path": "calc.py", "old_str": "def divide(a, b):\n    return a / b",
                       "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b"}),
            )],
        ),
        Turn::new(
            "Adding a short note for reviewers.",
            &[(
                "write_file",
                json!({"path": "NOTES.md", "content": "divide() rejects a zero divisor.\n"}),
            )],
        ),
        Turn::new(
            "",
            &[
                ("bash", json!({"command": "cat NOTES.md"})),
                ("search", json!({"pattern": "ValueError"})),
            ],
        ),
        Turn::new(
            "Checking the result once more.",
            &[("read_file", json!({"path": "calc.py"}))],
        ),
        Turn::new(
            "Make divide reject a zero divisor\n\ndivide() now raises ValueError instead of \
             ZeroDivisionError's bare message; NOTES.md says so.",
            &[],
        ),
    ]
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository with `calc.py` and a README, one commit on `main`.
pub fn make_repo(parent: &std::path::Path) -> std::path::PathBuf {
    let dir = parent.join("calc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("calc.py"),
        "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n    return a / b\n",
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "# calc\n\nTiny calculator.\n").unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    dir
}
