//! Making untrusted text safe to show a person: model text, command output, file names and patch
//! lines reach terminals (the TUI, `run`'s log, `show`, `runs`, error messages), and a terminal
//! obeys what is in them — OSC 52 clipboard writes, title changes, cursor moves that overwrite
//! lines, bidirectional overrides that reorder what a reviewer reads (Trojan Source).
//!
//! Invariants, for [`visible`] and every function built on it:
//! - the result holds no C0 or C1 control character except `\n` and `\t`, no DEL, and none of
//!   the invisible characters [`is_hidden`] names; nothing else changes, so printable text
//!   (a patch body, a path) stays exact;
//! - nothing is dropped: a C0 control is shown as its Control Picture (`␛` for ESC, `␍` for CR,
//!   `␇` for BEL), DEL as `␡`, a C1 control or an invisible character as `<U+202E>`. An escape
//!   sequence therefore stays readable (`␛]52;c;…␇`) but inert, as its ESC is gone.
//!
//! [`strip_sequences`] is the one exception to "nothing is dropped": for command output drawn in
//! the TUI's step log, whole escape sequences (colors, OSC, DCS) are removed, as a terminal would
//! not have printed them either; everything else goes through [`visible`].

use std::borrow::Cow;

/// Characters that change how text reads without being seen: bidirectional controls, zero-width
/// characters, the other invisible format characters (Unicode category Cf), tag characters,
/// blank "filler" letters and the line/paragraph separators. Variation selectors are handled
/// apart ([`is_variation_selector`]): one after a base character is ordinary (emoji, CJK).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                       // soft hyphen
        | '\u{034F}'                     // combining grapheme joiner
        | '\u{0600}'..='\u{0605}'        // Arabic prepended marks (Cf)
        | '\u{061C}'                     // Arabic letter mark (bidi)
        | '\u{06DD}' | '\u{070F}' | '\u{0890}' | '\u{0891}' | '\u{08E2}'
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers (blank letters)
        | '\u{17B4}' | '\u{17B5}'        // Khmer inherent vowels (invisible)
        | '\u{180B}'..='\u{180F}'        // Mongolian selectors and vowel separator
        | '\u{200B}'..='\u{200F}'        // zero-width space/joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}'        // line and paragraph separators
        | '\u{202A}'..='\u{202E}'        // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'        // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}'        // bidi isolates, deprecated format characters
        | '\u{FEFF}'                     // zero-width no-break space / byte order mark
        | '\u{FFF9}'..='\u{FFFB}'        // interlinear annotation
        | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'      // Egyptian hieroglyph format controls
        | '\u{1BCA0}'..='\u{1BCA3}'      // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'      // musical symbol format controls
        | '\u{E0000}'..='\u{E007F}' // tag characters ("ASCII smuggling")
    )
}

/// Bidirectional controls: the characters of a Trojan Source attack.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Variation selectors. One after a base character picks a glyph form; two or more in a row
/// carry data nobody sees (a known way to hide text in emoji), so only those count as hidden.
pub fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// C0 controls (all of them, `\t` `\n` `\r` included), DEL and C1 controls.
pub fn is_control(c: char) -> bool {
    c.is_control()
}

/// How `c` is shown, when it must not be printed as itself; `prev`/`next` are its neighbours on
/// the line (for variation selectors). `\n` and `\t` are printed as themselves.
pub fn shown(prev: Option<char>, c: char, next: Option<char>) -> Option<String> {
    let v = c as u32;
    if c == '\n' || c == '\t' {
        None
    } else if v < 0x20 {
        char::from_u32(0x2400 + v).map(String::from)
    } else if v == 0x7f {
        Some("␡".into())
    } else if is_control(c)
        || is_hidden(c)
        || (is_variation_selector(c)
            && (prev.is_some_and(is_variation_selector) || next.is_some_and(is_variation_selector)))
    {
        Some(format!("<U+{v:04X}>"))
    } else {
        None
    }
}

fn may_need(c: char) -> bool {
    (is_control(c) && c != '\n' && c != '\t') || is_hidden(c) || is_variation_selector(c)
}

/// A run of `text` to print as is, or a stand-in for one character that must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Shown(String),
}

/// Splits `s` into printable runs and stand-ins ([`shown`]), in order; joining them gives
/// [`visible`].
pub fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next = it.peek().map(|&(_, n)| n);
        if may_need(c)
            && let Some(stand_in) = shown(prev, c, next)
        {
            if start < i {
                out.push(Piece::Text(&s[start..i]));
            }
            out.push(Piece::Shown(stand_in));
            start = i + c.len_utf8();
        }
        prev = Some(c);
    }
    if start < s.len() {
        out.push(Piece::Text(&s[start..]));
    }
    out
}

/// `s` with every control character (but `\n` and `\t`) and invisible character shown
/// (see the module invariants). Borrows when there is nothing to change.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(may_need) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for p in pieces(s) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Shown(t) => out.push_str(&t),
        }
    }
    Cow::Owned(out)
}

/// [`visible`] for bytes that may not be UTF-8: invalid bytes are shown as `\xNN`.
pub fn visible_bytes(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        return visible(s);
    }
    let mut out = String::with_capacity(b.len() + 16);
    for chunk in b.utf8_chunks() {
        out.push_str(&visible(chunk.valid()));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    Cow::Owned(out)
}

/// [`visible`], on one line: newlines become ` ⏎ `.
pub fn one_line(s: &str) -> String {
    visible(s).replace('\n', " ⏎ ")
}

/// Removes whole escape sequences (CSI, OSC, DCS, SOS, PM, APC, two-character ones, and their
/// C1 forms) from command output, then applies [`visible`] to what is left.
pub fn strip_sequences(s: &str) -> Cow<'_, str> {
    if !s.contains([
        '\x1b', '\u{9b}', '\u{9d}', '\u{90}', '\u{98}', '\u{9e}', '\u{9f}',
    ]) {
        return visible(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => match it.peek().copied() {
                // CSI: parameters and intermediates, then one final byte 0x40..=0x7e.
                Some('[') => {
                    it.next();
                    skip_csi(&mut it);
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    it.next();
                    skip_string(&mut it);
                }
                // Two-character sequences (ESC c, ESC 7, …).
                Some(_) => {
                    it.next();
                }
                None => out.push(c),
            },
            '\u{9b}' => skip_csi(&mut it),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            c => out.push(c),
        }
    }
    Cow::Owned(visible(&out).into_owned())
}

fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for d in it.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&d) {
            break;
        }
    }
}

fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(d) = it.next() {
        if d == '\x07' || d == '\u{9c}' {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_pictures_and_nothing_is_dropped() {
        assert_eq!(visible("a\x1b]52;c;ZXZpbA==\x07b"), "a␛]52;c;ZXZpbA==␇b");
        assert_eq!(visible("\x1b[2J\x1b[H"), "␛[2J␛[H");
        assert_eq!(visible("good\rEVIL"), "good␍EVIL");
        assert_eq!(visible("crlf\r\n"), "crlf␍\n");
        assert_eq!(visible("\x00\x7f"), "␀␡");
        assert_eq!(visible("\u{9b}31m"), "<U+009B>31m");
        assert_eq!(visible("tab\tnew\nline"), "tab\tnew\nline");
        assert!(matches!(visible("plain ünïcode ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn invisible_characters_are_named() {
        assert_eq!(
            visible("if x \u{202E}} \u{2066}{"),
            "if x <U+202E>} <U+2066>{"
        );
        assert_eq!(visible("a\u{200B}b\u{FEFF}"), "a<U+200B>b<U+FEFF>");
        assert_eq!(visible("tag\u{E0041}"), "tag<U+E0041>");
        assert_eq!(one_line("x\ny\u{2028}"), "x ⏎ y<U+2028>");
    }

    #[test]
    fn one_variation_selector_is_text_a_run_of_them_is_shown() {
        assert_eq!(visible("❤\u{FE0F} ok"), "❤\u{FE0F} ok");
        assert_eq!(visible("a\u{FE01}\u{E0100}b"), "a<U+FE01><U+E0100>b");
    }

    #[test]
    fn the_result_never_holds_a_control_or_hidden_character() {
        let all: String = (0u32..0x2_0000)
            .chain(0xE_0000..0xE_0200)
            .filter_map(char::from_u32)
            .collect();
        for c in visible(&all).chars() {
            assert!(
                c == '\n' || c == '\t' || !(is_control(c) || is_hidden(c)),
                "{:?} left in",
                c
            );
        }
    }

    #[test]
    fn invalid_utf8_is_shown_as_hex() {
        assert_eq!(visible_bytes(b"ok\xff\xfe\x1b"), "ok\\xFF\\xFE␛");
        assert_eq!(visible_bytes(b"\xe2\x80\xae"), "<U+202E>");
    }

    #[test]
    fn strip_sequences_removes_them_whole() {
        assert_eq!(strip_sequences("\x1b[31merror\x1b[0m: x"), "error: x");
        assert_eq!(strip_sequences("a\x1b]52;c;ZXZpbA==\x07b"), "ab");
        assert_eq!(strip_sequences("a\x1b]0;title\x1b\\b"), "ab");
        assert_eq!(
            strip_sequences("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
        assert_eq!(strip_sequences("x\x1bcy"), "xy");
        assert_eq!(strip_sequences("\u{9b}2Jz"), "z");
        assert_eq!(strip_sequences("bell\x07\u{202E}"), "bell␇<U+202E>");
        assert_eq!(strip_sequences("end\x1b"), "end␛");
    }
}
