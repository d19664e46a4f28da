//! Runs the real `tiny-backspace serve` binary on a free loopback port and reads its SSE streams.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::support::Env;

pub struct Server {
    pub child: Child,
    pub base: String,
    /// The bearer token clients must send: `TB_SERVER_TOKEN` when the test set it, else the one
    /// the server generated into `$TB_HOME/server-token`.
    pub token: String,
    /// Everything the server wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(env: &Env, extra_env: &[(&str, &str)], args: &[&str]) -> Server {
        Self::start_with(env, extra_env, args, |_| {})
    }

    /// [`Server::start`], with `setup` given the command before it is spawned.
    pub fn start_with(
        env: &Env,
        extra_env: &[(&str, &str)],
        args: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = env.command();
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        setup(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line.trim().rsplit("http://").next().unwrap().to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "unexpected first line: {line}"
        );
        let seen = Arc::new(Mutex::new(line));
        // Keep draining stderr so the server never blocks on it.
        let sink = seen.clone();
        std::thread::spawn(move || {
            for l in stderr.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        let token = extra_env
            .iter()
            .find(|(k, _)| *k == "TB_SERVER_TOKEN")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| {
                std::fs::read_to_string(env.home().join("server-token"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            });
        Server {
            child,
            base: format!("http://{addr}"),
            token,
            stderr: seen,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A client that sends the server's token with every request.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if !self.token.is_empty() {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", self.token).parse().unwrap(),
            );
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn terminate(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub data: Option<Value>,
    pub comment: bool,
}

/// Splits an SSE body into messages.
pub fn parse_sse(body: &str) -> Vec<SseMessage> {
    body.split("\n\n")
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            let mut msg = SseMessage {
                id: None,
                data: None,
                comment: false,
            };
            let mut data = String::new();
            for line in m.lines() {
                if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                } else if let Some(v) = line.strip_prefix("id:") {
                    msg.id = Some(v.trim().to_string());
                } else if line.starts_with(':') {
                    msg.comment = true;
                }
            }
            if !data.is_empty() {
                msg.data = Some(serde_json::from_str(&data).unwrap());
            }
            msg
        })
        .collect()
}

/// Reads a whole SSE response (until the server ends it), with a safety timeout.
pub async fn read_stream(resp: reqwest::Response) -> Vec<SseMessage> {
    let mut body = String::new();
    let mut stream = resp.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("stream ended");
    parse_sse(&body)
}

pub fn events_of(messages: &[SseMessage]) -> Vec<Value> {
    messages.iter().filter_map(|m| m.data.clone()).collect()
}
