//! The Connect protocol's streaming envelope, JSON codec (what envd's `Process/Start` speaks).
//!
//! Why hand-written: a frame is 1 flag byte, a 4-byte big-endian length and the message; the
//! messages are small JSON objects, so serde is enough and no generated code is needed.
//! Invariants: a frame larger than [`MAX_FRAME`] is an error (a hostile peer cannot make the host
//! buffer without bound); compressed frames (flag bit 0x01) are refused, since the client never
//! offers compression; the end-of-stream frame (flag 0x02) carries `{"error":…}` or nothing.

use serde::Deserialize;

/// The largest frame accepted: far above envd's 32 KiB output chunks.
pub const MAX_FRAME: usize = 16 << 20;
const FLAG_COMPRESSED: u8 = 0x01;
const FLAG_END_STREAM: u8 = 0x02;

/// One message of a Connect stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Message(Vec<u8>),
    /// The end-of-stream frame: `Some` when the server reports an error.
    End(Option<WireError>),
}

/// A Connect error (`{"code":"deadline_exceeded","message":"…"}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct EndStream {
    error: Option<WireError>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("a Connect frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("a compressed Connect frame, though no compression was offered")]
    Compressed,
    #[error("a malformed end-of-stream frame: {0}")]
    BadEnd(String),
}

/// Frames `message` (JSON bytes) as a request envelope.
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    // A request is one small JSON object; its length fits in u32 by construction.
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Splits a byte stream into frames as the bytes arrive.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that are not a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.buf.get(..5) else {
            return Ok(None);
        };
        let flags = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        if flags & FLAG_COMPRESSED != 0 {
            return Err(FrameError::Compressed);
        }
        let body: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
        if flags & FLAG_END_STREAM != 0 {
            if body.is_empty() {
                return Ok(Some(Frame::End(None)));
            }
            let end: EndStream =
                serde_json::from_slice(&body).map_err(|e| FrameError::BadEnd(e.to_string()))?;
            return Ok(Some(Frame::End(end.error)));
        }
        Ok(Some(Frame::Message(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let mut wire = encode(br#"{"a":1}"#);
        wire.extend_from_slice(&[2, 0, 0, 0, 2]);
        wire.extend_from_slice(b"{}");
        for cut in 0..wire.len() {
            let mut d = Decoder::default();
            let mut frames = vec![];
            for part in [&wire[..cut], &wire[cut..]] {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    frames.push(f);
                }
            }
            assert_eq!(
                frames,
                vec![Frame::Message(br#"{"a":1}"#.to_vec()), Frame::End(None)]
            );
        }
    }

    #[test]
    fn end_stream_error_and_limits() {
        let err = br#"{"error":{"code":"deadline_exceeded","message":"late"}}"#;
        let mut d = Decoder::default();
        d.push(&[2, 0, 0, 0, err.len() as u8]);
        d.push(err);
        assert_eq!(
            d.next_frame().unwrap(),
            Some(Frame::End(Some(WireError {
                code: "deadline_exceeded".into(),
                message: "late".into()
            })))
        );
        let mut d = Decoder::default();
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge(_))));
        let mut d = Decoder::default();
        d.push(&[1, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::Compressed));
    }
}
