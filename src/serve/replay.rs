//! `GET /runs/{id}/events`: replays a run's stored events (`events.jsonl`), resuming after
//! `Last-Event-ID`, and follows the run while it is still going.
//!
//! Invariants: each poll reads only the bytes appended since the last one (the file offset is
//! kept), so following a run costs time linear in its length; a line is sent only once complete
//! (the writer may be mid-line); SSE ids count the file's lines from 1, as the live stream's do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::AppState;
use super::routes::{error, sse_from};
use crate::store::Store;

/// How often a run still going is checked for new events.
const POLL: Duration = Duration::from_millis(200);
/// The most read from the file at once.
const CHUNK: u64 = 256 * 1024;

/// The complete lines appended to a file since the last read.
pub(super) struct EventTail {
    path: PathBuf,
    /// Open once there is a file; its position is the offset read up to.
    file: Option<tokio::fs::File>,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
}

impl EventTail {
    pub fn new(path: PathBuf) -> Self {
        EventTail {
            path,
            file: None,
            partial: Vec::new(),
        }
    }

    /// The next complete lines, up to one chunk of the file; `None` once nothing new is there.
    pub async fn next_lines(&mut self) -> std::io::Result<Option<Vec<String>>> {
        let file = match &mut self.file {
            Some(f) => f,
            None => match tokio::fs::File::open(&self.path).await {
                Ok(f) => self.file.insert(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let start = self.partial.len();
        let read = file.take(CHUNK).read_to_end(&mut self.partial).await?;
        if read == 0 {
            return Ok(None);
        }
        let Some(end) = self.partial[start..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| start + i)
        else {
            return Ok(Some(vec![]));
        };
        let rest = self.partial.split_off(end + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        let lines = complete[..end]
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
            .collect();
        Ok(Some(lines))
    }
}

fn last_event_id(headers: &HeaderMap) -> usize {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn is_terminal(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| {
            v.get("type")
                .and_then(Value::as_str)
                .map(|t| t == "Done" || t == "Error")
        })
        .unwrap_or(false)
}

pub(super) async fn run_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(store) = Store::open(&state.config.home) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the state directory is not usable",
            None,
        );
    };
    let live = state
        .active
        .lock()
        .map(|a| a.contains_key(&id))
        .unwrap_or(false);
    // A live run may still be validating: its folder exists, its meta.json not yet.
    let dir = store
        .run_dir(&id)
        .or_else(|| live.then(|| store.reserved_run_dir(&id)).flatten());
    let Some(dir) = dir else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no run with id '{id}'"),
            Some("id"),
        );
    };
    let after = last_event_id(&headers);
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut tail = EventTail::new(dir.events_path());
        let mut sent = 0usize;
        loop {
            // Looked at before reading: a run that had ended had written all its events.
            let running = state
                .active
                .lock()
                .map(|a| a.contains_key(&id))
                .unwrap_or(false);
            let mut ended = false;
            while let Ok(Some(lines)) = tail.next_lines().await {
                for line in lines {
                    sent += 1;
                    ended |= is_terminal(&line);
                    if sent > after
                        && tx
                            .send(SseEvent::default().id(sent.to_string()).data(line))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            }
            if ended || !running || tx.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    });
    sse_from(rx).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn reads_only_what_is_new_and_waits_for_the_end_of_a_line() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("events.jsonl");
        let mut tail = EventTail::new(path.clone());
        assert_eq!(tail.next_lines().await.unwrap(), None, "no file yet");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"{\"a\":1}\n{\"b\"").unwrap();
        assert_eq!(
            tail.next_lines().await.unwrap(),
            Some(vec!["{\"a\":1}".to_string()])
        );
        assert_eq!(tail.next_lines().await.unwrap(), None);
        f.write_all(b":2").unwrap();
        assert_eq!(tail.next_lines().await.unwrap(), Some(vec![]));
        f.write_all(b"}\n\n{\"c\":3}\r\n").unwrap();
        assert_eq!(
            tail.next_lines().await.unwrap(),
            Some(vec![
                "{\"b\":2}".to_string(),
                String::new(),
                "{\"c\":3}".to_string()
            ])
        );
        assert_eq!(tail.next_lines().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_long_file_comes_in_chunks_without_losing_a_line() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("events.jsonl");
        let line = format!("{{\"pad\":\"{}\"}}", "x".repeat(1000));
        let n = 3 * CHUNK as usize / line.len();
        std::fs::write(&path, format!("{line}\n").repeat(n)).unwrap();
        let mut tail = EventTail::new(path);
        let mut got = 0;
        let mut reads = 0;
        while let Some(lines) = tail.next_lines().await.unwrap() {
            assert!(lines.iter().all(|l| *l == line));
            got += lines.len();
            reads += 1;
        }
        assert_eq!(got, n);
        assert!(reads > 1, "read in bounded chunks");
    }
}
