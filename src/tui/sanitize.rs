//! Untrusted text for the TUI: the shared sanitizer ([`crate::sanitize`]) plus what a terminal
//! cell grid needs on top (tabs as spaces, lines kept to one row, styled stand-ins).
//!
//! Invariants: the result never contains ESC or any other C0/C1 control character except `\n`
//! (and none in [`one_line`] and [`spans`]), nor a bidi or invisible format character; tabs
//! become four spaces. [`clean`] (command output, model text in the step log) removes whole
//! escape sequences, keeps only what follows a lone `\r` (progress bars) and drops the `\r` of a
//! CRLF; [`one_line`] and [`spans`] (paths, titles, diff lines) drop nothing: every control or
//! hidden character is shown (`␛`, `␍`, `<U+202E>`).

use std::borrow::Cow;

use ratatui::style::Style;
use ratatui::text::Span;

use crate::sanitize::{self as shared, Piece};

const TAB: &str = "    ";

/// Command output and model text: escape sequences removed, other controls and invisible
/// characters shown, progress-bar carriage returns applied. Keeps newlines.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return match shared::strip_sequences(s) {
            Cow::Borrowed(b) if !b.contains('\t') => Cow::Borrowed(b),
            c => Cow::Owned(c.replace('\t', TAB)),
        };
    }
    let applied = apply_carriage_returns(s);
    Cow::Owned(shared::strip_sequences(&applied).replace('\t', TAB))
}

/// A lone CR (progress bars) rewrites its line: keep what comes after it; CRLF is a newline.
fn apply_carriage_returns(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\r' {
            out.push(c);
        } else if it.peek() != Some(&'\n') {
            let start = out.rfind('\n').map_or(0, |i| i + 1);
            out.truncate(start);
        }
    }
    out
}

/// For text that must stay on one line: everything shown, newlines as ` ⏎ `, tabs as spaces.
pub fn one_line(s: &str) -> String {
    shared::one_line(s).replace('\t', TAB)
}

/// `text` as spans for one screen row: printable runs in `style`, every control or invisible
/// character as its stand-in in `warn` (so a reviewer cannot miss it), tabs as spaces and
/// newlines as `⏎`.
pub fn spans(text: &str, style: Style, warn: Style) -> Vec<Span<'static>> {
    shared::pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => Span::styled(t.replace('\t', TAB).replace('\n', " ⏎ "), style),
            Piece::Shown(t) => Span::styled(t, warn),
        })
        .collect()
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
        assert_eq!(clean("bell\x07\nnext\tx"), "bell␇\nnext    x");
        assert_eq!(clean("10%\r50%\r100%\n"), "100%\n");
        assert_eq!(clean("crlf\r\nok"), "crlf\nok");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        let out = clean("\x00\x1b\x7f\u{85}\u{202E}");
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(out.contains("<U+202E>"), "{out:?}");
    }

    #[test]
    fn one_line_drops_nothing() {
        assert_eq!(one_line("a\x1b]0;t\x07\tb\nc\r"), "a␛]0;t␇    b ⏎ c␍");
    }

    #[test]
    fn spans_put_stand_ins_in_the_warning_style() {
        let warn = Style::default().add_modifier(ratatui::style::Modifier::REVERSED);
        let s = spans("x\u{202E}y\tz\x1b", Style::default(), warn);
        let texts: Vec<&str> = s.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(texts, ["x", "<U+202E>", "y    z", "␛"]);
        assert_eq!(s[1].style, warn);
        assert_eq!(s[3].style, warn);
        assert_eq!(s[0].style, Style::default());
    }
}
