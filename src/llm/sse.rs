//! Server-Sent Events decoding for the streaming model APIs.
//!
//! Invariants: the decoder is fed arbitrary byte chunks and yields exactly the events of the whole
//! stream however it was split (inside a UTF-8 character, between `\r` and `\n`, mid-field);
//! lines end with `\n`, `\r\n` or `\r`; `:` lines are comments; `data` lines of one event are joined
//! with `\n`; a leading byte-order mark is skipped. At end of stream a final event without its blank
//! line is still delivered (some servers omit it); whether the *message* was complete is for the
//! wire-format layer to judge. Memory is bounded: an over-long line or event is an error.

/// One dispatched event: its `event:` name (if any) and its joined `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Largest line or event we accept (a model turn is far smaller).
const MAX_EVENT_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a server-sent event exceeded {MAX_EVENT_BYTES} bytes")]
pub struct SseTooLarge;

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; complete events are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut rest = bytes;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let was_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT_BYTES {
            return Err(SseTooLarge);
        }
        Ok(())
    }

    /// End of stream: a last line without its terminator and a last event without its blank line
    /// are delivered.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        let mut raw = raw;
        if !self.started {
            self.started = true;
            if let Some(r) = raw.strip_prefix("\u{feff}".as_bytes()) {
                raw = r;
            }
        }
        if raw.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if raw[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(raw);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(SseTooLarge);
                }
            }
            // `id` and `retry` do not matter for one-shot model streams; unknown fields are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event: event.filter(|e| !e.is_empty()),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// Decodes a whole body at once (tests and tools).
pub fn decode_all(body: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    d.push(body, &mut out)?;
    d.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    fn split_everywhere(body: &[u8]) -> Vec<SseEvent> {
        let whole = decode_all(body).unwrap();
        for k in 0..=body.len() {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            d.push(&body[..k], &mut out).unwrap();
            d.push(&body[k..], &mut out).unwrap();
            d.finish(&mut out).unwrap();
            assert_eq!(out, whole, "split at {k}");
        }
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for b in body {
            d.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        assert_eq!(out, whole, "byte by byte");
        whole
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let body =
            b": keep-alive\nevent: a\ndata: one\ndata:two\n\ndata: {\"x\":1}\nid: 7\nretry: 10\n\n";
        assert_eq!(
            split_everywhere(body),
            vec![ev(Some("a"), "one\ntwo"), ev(None, "{\"x\":1}")]
        );
    }

    #[test]
    fn crlf_and_bare_cr_line_endings() {
        let crlf = b"event: e\r\ndata: x\r\n\r\ndata: y\r\n\r\n";
        assert_eq!(
            split_everywhere(crlf),
            vec![ev(Some("e"), "x"), ev(None, "y")]
        );
        let cr = b"event: e\rdata: x\r\rdata: y\r\r";
        assert_eq!(
            split_everywhere(cr),
            vec![ev(Some("e"), "x"), ev(None, "y")]
        );
    }

    #[test]
    fn utf8_split_inside_a_character_and_bom() {
        let body = "\u{feff}data: héllo — ✓\n\n".as_bytes();
        assert_eq!(split_everywhere(body), vec![ev(None, "héllo — ✓")]);
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_names_reset() {
        let body = b"event: ping\n\ndata: a\n\n";
        assert_eq!(split_everywhere(body), vec![ev(None, "a")]);
    }

    #[test]
    fn a_final_event_without_blank_line_is_delivered_at_the_end() {
        let body = b"data: a\n\nevent: last\ndata: b";
        assert_eq!(
            split_everywhere(body),
            vec![ev(None, "a"), ev(Some("last"), "b")]
        );
    }

    #[test]
    fn empty_data_field_still_makes_an_event() {
        assert_eq!(decode_all(b"data\n\n").unwrap(), vec![ev(None, "")]);
    }

    #[test]
    fn huge_lines_are_refused() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let chunk = vec![b'a'; 1 << 20];
        let mut result = Ok(());
        for _ in 0..20 {
            result = d.push(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseTooLarge));
    }
}
