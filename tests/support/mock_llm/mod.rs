//! Local model servers for the tests and the cache benchmark: a small HTTP/1.1 server on
//! 127.0.0.1:0 that records every request and answers with real wire-format streams (Anthropic
//! Messages SSE, OpenAI Chat Completions SSE) — or with an injected fault: an error status, a reset
//! connection, a stream cut short, malformed JSON, an `error` event, a stall.
//!
//! A [`Model`] plays a list of turns. Which turn a request asks for is read from the request itself
//! (how many assistant messages the conversation holds), so a retried or a fallen-back request gets
//! the same answer as the first attempt would have. Include with
//! `#[path = "support/mock_llm/mod.rs"] mod mock_llm;`.
//!
//! Parts: this file (the server), `wire` (turns in both formats, faults, the scripted [`Model`]),
//! `responses` (OpenAI Responses API turns, and a route answering each turn with a given body),
//! `checks` (request assertions and prompt-cache accounting), `task` (a small end-to-end task).
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

mod checks;
mod responses;
mod task;
mod wire;

pub use checks::*;
pub use responses::*;
pub use task::*;
pub use wire::*;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
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
    /// Read the request, then never answer (not even headers).
    Silence,
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
        Reply::Silence => tokio::time::sleep(Duration::from_secs(3600)).await,
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
