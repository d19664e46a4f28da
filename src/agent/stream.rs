//! Streams a running `bash` call's output as `Output` events, so a front-end shows it as it
//! comes instead of only when the command ends (`Tool: Bash` still carries the whole output).
//!
//! Invariants: bounded whatever the command prints — at most [`CALL_CAP`] bytes of one call are
//! streamed (then a note says the rest comes at the end), at most one event per [`TICK`], and
//! never more held than the cap; the text is sanitized at the source (escape sequences removed,
//! carriage returns as line breaks, other controls shown as stand-ins, see `crate::sanitize`),
//! and a chunk never ends inside a UTF-8 character or an escape sequence, so no half sequence
//! reaches a client; the command runs exactly as without streaming (the tap only copies).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::emit::Emitter;
use crate::event::Event;

/// At most one `Output` event per call this often.
pub const TICK: Duration = Duration::from_millis(100);
/// Bytes of one call's output streamed at most.
pub const CALL_CAP: usize = 256 << 10;
/// An unterminated escape sequence longer than this is not held back (it is sent and stripped).
const HOLD_MAX: usize = 512;

/// Where a call's output goes while it runs.
#[derive(Clone, Copy)]
pub struct OutputStream<'a> {
    pub emitter: &'a Emitter,
    /// The tool call's id, as the model gave it.
    pub call_id: &'a str,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    accepted: usize,
    capped: bool,
}

/// Runs `fut` (the sandbox's `exec`), sending what the command prints as `Output` events.
pub async fn run<F: std::future::Future>(stream: Option<OutputStream<'_>>, fut: F) -> F::Output {
    let Some(stream) = stream else {
        return fut.await;
    };
    let pending = Arc::new(Mutex::new(Pending::default()));
    let sink = pending.clone();
    let tap: crate::sandbox::OutputTap = Arc::new(move |b: &[u8]| {
        let Ok(mut p) = sink.lock() else { return };
        let room = CALL_CAP.saturating_sub(p.accepted);
        let take = room.min(b.len());
        p.bytes.extend_from_slice(&b[..take]);
        p.accepted += take;
        if take < b.len() {
            p.capped = true;
        }
    });
    let fut = crate::sandbox::with_tap(tap, fut);
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sender = Sender::new(stream);
    loop {
        tokio::select! {
            out = &mut fut => {
                sender.flush(&pending, true);
                return out;
            }
            _ = tick.tick() => sender.flush(&pending, false),
        }
    }
}

struct Sender<'a> {
    stream: OutputStream<'a>,
    /// Sanitized text the consumer could not take yet (sent with the next chunk).
    unsent: String,
    noted_cap: bool,
}

impl<'a> Sender<'a> {
    fn new(stream: OutputStream<'a>) -> Self {
        Sender {
            stream,
            unsent: String::new(),
            noted_cap: false,
        }
    }

    fn flush(&mut self, pending: &Mutex<Pending>, last: bool) {
        let (bytes, capped) = {
            let Ok(mut p) = pending.lock() else { return };
            let keep = if last { 0 } else { held_back(&p.bytes) };
            let cut = p.bytes.len() - keep;
            let rest = p.bytes.split_off(cut);
            (std::mem::replace(&mut p.bytes, rest), p.capped)
        };
        if !bytes.is_empty() {
            self.unsent.push_str(&sanitize_chunk(&bytes));
        }
        if capped && !self.noted_cap && (last || bytes.is_empty()) {
            self.noted_cap = true;
            self.unsent.push_str(&format!(
                "\n[… output streaming stopped after {} KiB; the whole output follows when the \
                 command ends]\n",
                CALL_CAP >> 10
            ));
        }
        if self.unsent.is_empty() {
            return;
        }
        let event = Event::Output {
            run_id: self.stream.emitter.run_id().to_string(),
            id: self.stream.call_id.to_string(),
            stream: Some("combined".into()),
            text: std::mem::take(&mut self.unsent),
        };
        if let Err(back) = self.stream.emitter.try_emit_transient(event)
            && let Event::Output { text, .. } = *back
        {
            // The consumer is behind: merged into the next chunk (bounded by the cap).
            self.unsent = text;
        }
    }
}

/// How many bytes at the end of `b` to keep for the next chunk: an incomplete UTF-8 character
/// or an unterminated escape sequence.
fn held_back(b: &[u8]) -> usize {
    let utf8 = match std::str::from_utf8(b) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => b.len() - e.valid_up_to(),
        Err(_) => 0,
    };
    let Some(esc) = b.iter().rposition(|&c| c == 0x1b) else {
        return utf8;
    };
    let rest = &b[esc..];
    if rest.len() > HOLD_MAX {
        return utf8;
    }
    let open = match rest.get(1) {
        None => true,
        Some(b'[') => !rest[2..].iter().any(|c| (0x40..=0x7e).contains(c)),
        Some(b']' | b'P' | b'X' | b'^' | b'_') => !rest[2..].contains(&0x07),
        Some(_) => false,
    };
    if open { rest.len() } else { utf8 }
}

/// A chunk as clients get it: carriage returns as line breaks (a progress bar's states one per
/// line), escape sequences removed, every other control or hidden character shown.
pub fn sanitize_chunk(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    crate::sanitize::strip_sequences(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_never_ends_inside_a_character_or_a_sequence() {
        assert_eq!(held_back(b"plain\n"), 0);
        assert_eq!(held_back("é".as_bytes().split_at(1).0), 1);
        assert_eq!(held_back(b"ok \x1b[3"), 3);
        assert_eq!(held_back(b"ok \x1b[32m"), 0);
        assert_eq!(held_back(b"x\x1b]52;c;aGk="), 11);
        assert_eq!(held_back(b"x\x1b]52;c;aGk=\x07y"), 0);
        assert_eq!(held_back(b"x\x1b"), 1);
    }

    #[test]
    fn chunks_are_sanitized() {
        assert_eq!(
            sanitize_chunk(b"\x1b[32mok\x1b[0m\x1b]52;c;aGk=\x07 50%\r100%\r\n\x07"),
            "ok 50%\n100%\n␇"
        );
    }

    #[tokio::test]
    async fn output_streams_while_the_future_runs_and_stays_within_the_cap() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let emitter = Emitter::new("r", tx);
        let work = async {
            let tap = crate::sandbox::current_tap().expect("inside with_tap");
            tap(b"first line\n");
            tokio::time::sleep(TICK * 3).await;
            tap(&vec![b'y'; CALL_CAP + 10]);
            tokio::time::sleep(TICK * 2).await;
            7
        };
        let stream = OutputStream {
            emitter: &emitter,
            call_id: "call_1",
        };
        assert_eq!(run(Some(stream), work).await, 7);
        drop(emitter);
        let mut texts = Vec::new();
        while let Some(e) = rx.recv().await {
            let Event::Output { id, text, .. } = e else {
                panic!("{e:?}")
            };
            assert_eq!(id, "call_1");
            texts.push(text);
        }
        assert_eq!(texts[0], "first line\n", "sent before the work ended");
        let all: String = texts.concat();
        assert!(all.len() < CALL_CAP + 300, "{}", all.len());
        assert!(all.ends_with("the whole output follows when the command ends]\n"));
    }
}
