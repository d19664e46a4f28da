//! Making untrusted text safe to draw: tool output, model text and file contents may carry
//! terminal control sequences (OSC 52 clipboard writes, title changes, hyperlinks, screen clears).
//!
//! Invariants: the result never contains ESC or any other C0/C1 control character except `\n`;
//! escape sequences (CSI, OSC, DCS, …) are removed whole, other control characters are shown in
//! caret notation (`^G`) so the reader sees that something was there; tabs become spaces.

use std::borrow::Cow;

fn is_bad(c: char) -> bool {
    (c.is_control() && c != '\n') || c == '\u{7f}'
}

/// Strips escape sequences and makes other control characters visible. Keeps newlines.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => match it.peek().copied() {
                // CSI: parameters and intermediates, then one final byte 0x40..=0x7e.
                Some('[') => {
                    it.next();
                    for d in it.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    it.next();
                    while let Some(d) = it.next() {
                        if d == '\x07' {
                            break;
                        }
                        if d == '\x1b' {
                            if it.peek() == Some(&'\\') {
                                it.next();
                            }
                            break;
                        }
                    }
                }
                // Two-character sequences (ESC c, ESC 7, …).
                Some(_) => {
                    it.next();
                }
                None => {}
            },
            // C1 CSI / OSC forms.
            '\u{9b}' => {
                for d in it.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&d) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' => {
                for d in it.by_ref() {
                    if d == '\x07' || d == '\u{9c}' {
                        break;
                    }
                }
            }
            '\t' => out.push_str("    "),
            '\r' => {
                // A lone CR (progress bars) rewrites the line: keep what comes after it.
                if it.peek() != Some(&'\n') {
                    let start = out.rfind('\n').map_or(0, |i| i + 1);
                    out.truncate(start);
                }
            }
            c if is_bad(c) => {
                let v = c as u32;
                if v < 0x20 {
                    out.push('^');
                    out.push(char::from_u32(v + 0x40).unwrap_or('?'));
                } else {
                    out.push_str(&format!("\\u{{{v:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`clean`], for text that must stay on one line.
pub fn one_line(s: &str) -> String {
    clean(s).replace('\n', " ⏎ ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences() {
        assert_eq!(clean("\x1b[31merror\x1b[0m: x"), "error: x");
        assert_eq!(clean("a\x1b]52;c;ZXZpbA==\x07b"), "ab");
        assert_eq!(clean("a\x1b]0;title\x1b\\b"), "ab");
        assert_eq!(clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(clean("x\x1bcy"), "xy");
        assert_eq!(clean("\u{9b}2Jz"), "z");
    }

    #[test]
    fn shows_other_controls_and_keeps_newlines() {
        assert_eq!(clean("bell\x07\nnext\tx"), "bell^G\nnext    x");
        assert_eq!(clean("10%\r50%\r100%\n"), "100%\n");
        assert_eq!(clean("crlf\r\nok"), "crlf\nok");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        let out = clean("\x00\x1b\x7f\u{85}");
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
    }
}
