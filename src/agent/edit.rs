//! The text work of `edit_file`: find each `old_str`, replace it, and show the result.
//!
//! Invariants: edits are applied in order to one in-memory copy and the caller writes it only when
//! all of them succeeded (all or nothing); a file whose every newline is CRLF is matched on its
//! `\n` form (what `read_file` shows) and written back with CRLF everywhere; a fallback match
//! (trailing whitespace, a uniform indentation shift, typographic punctuation) is used only when
//! the exact text is not found and the fallback finds exactly one place.

use std::ops::Range;

/// One replacement asked for by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditSpec {
    pub old_str: String,
    pub new_str: String,
    pub replace_all: bool,
}

/// What applying the edits gave: the new text and, per edit, how it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub text: String,
    pub notes: Vec<String>,
}

/// True when the text has newlines and every one of them is CRLF.
pub fn is_crlf(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut seen = false;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            if i == 0 || bytes[i - 1] != b'\r' {
                return false;
            }
            seen = true;
        }
    }
    seen
}

/// Applies every edit or none; the error names the edit that failed.
pub fn apply_all(path: &str, text: &str, edits: &[EditSpec]) -> Result<Applied, String> {
    let crlf = is_crlf(text);
    let lf = |s: &str| {
        if crlf {
            s.replace("\r\n", "\n")
        } else {
            s.to_string()
        }
    };
    let mut work = lf(text);
    let mut notes = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let label = if edits.len() > 1 {
            format!("edit {} of {}: ", i + 1, edits.len())
        } else {
            String::new()
        };
        let (old, new) = (lf(&e.old_str), lf(&e.new_str));
        let fail = |m: String| {
            let nothing = if edits.len() > 1 {
                "; no edit was applied, the file is unchanged"
            } else {
                ""
            };
            format!("{label}{m}{nothing}")
        };
        if old.is_empty() {
            return Err(fail(
                "old_str is empty; an empty old_str only creates a new file (single form)".into(),
            ));
        }
        if old == new {
            return Err(fail("old_str and new_str are the same".into()));
        }
        let count = work.matches(old.as_str()).count();
        match (count, e.replace_all) {
            (0, _) => {
                match fuzzy(&work, &old, &new).map_err(|m| fail(format!("{m} in '{path}'")))? {
                    Some((updated, how)) => {
                        work = updated;
                        notes.push(format!("{label}old_str matched {how}"));
                    }
                    None => {
                        return Err(fail(format!(
                            "old_str was not found in '{path}'; read the file again and copy the \
                         exact text, whitespace and indentation included"
                        )));
                    }
                }
            }
            (1, _) => work = work.replacen(old.as_str(), &new, 1),
            (n, false) => {
                return Err(fail(format!(
                    "old_str matches {n} places in '{path}'; include more surrounding lines to \
                     make it unique, or set replace_all to true"
                )));
            }
            (n, true) => {
                work = work.replace(old.as_str(), &new);
                notes.push(format!("{label}replaced {n} occurrences"));
            }
        }
    }
    if crlf {
        work = work.replace('\n', "\r\n");
    }
    Ok(Applied { text: work, notes })
}

/// Typographic punctuation read as its ASCII form.
fn ascii_punct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => out.push('"'),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{00A0}' | '\u{2007}' | '\u{202F}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// How a matched window's indentation differs from old_str's, the same on every line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shift {
    None,
    /// The file is indented deeper by this prefix.
    Add(String),
    /// The file is indented less: old_str had this extra prefix.
    Remove(String),
}

/// Whether `file` lines match `old` lines, ignoring trailing whitespace, and with what shift.
fn window_matches(file: &[&str], old: &[&str], shift_ok: bool, punct: bool) -> Option<Shift> {
    let mut shift: Option<Shift> = None;
    for (f, o) in file.iter().zip(old) {
        let (f, o) = (f.trim_end(), o.trim_end());
        if f.is_empty() || o.is_empty() {
            if f.is_empty() && o.is_empty() {
                continue;
            }
            return None;
        }
        let (fi, oi) = (indent_of(f), indent_of(o));
        let (fc, oc) = (&f[fi.len()..], &o[oi.len()..]);
        let same = if punct {
            ascii_punct(fc) == ascii_punct(oc)
        } else {
            fc == oc
        };
        if !same {
            return None;
        }
        let this = if fi == oi {
            Shift::None
        } else if let Some(p) = fi.strip_suffix(oi) {
            Shift::Add(p.to_string())
        } else if let Some(p) = oi.strip_suffix(fi) {
            Shift::Remove(p.to_string())
        } else {
            return None;
        };
        match &shift {
            None => shift = Some(this),
            Some(s) if *s == this => {}
            Some(_) => return None,
        }
    }
    let shift = shift.unwrap_or(Shift::None);
    (shift_ok || shift == Shift::None).then_some(shift)
}

fn reindent(new: &str, shift: &Shift) -> String {
    let mut out = String::with_capacity(new.len());
    for line in new.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match shift {
            Shift::Add(p) if !blank => {
                out.push_str(p);
                out.push_str(line);
            }
            Shift::Remove(p) => out.push_str(line.strip_prefix(p.as_str()).unwrap_or(line)),
            _ => out.push_str(line),
        }
    }
    out
}

/// The fallback matches, in order; each is tried only when the ones before found nothing.
/// `Ok(None)`: nothing matched; `Err`: a fallback matched several places.
fn fuzzy(text: &str, old: &str, new: &str) -> Result<Option<(String, &'static str)>, String> {
    let old_body = old.strip_suffix('\n').unwrap_or(old);
    let old_lines: Vec<&str> = old_body.split('\n').collect();
    if old_lines.iter().all(|l| l.trim().is_empty()) {
        return Ok(None);
    }
    // Each line with its byte range (newline excluded).
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut at = 0;
    for piece in text.split_inclusive('\n') {
        let body = piece.strip_suffix('\n').unwrap_or(piece);
        spans.push(at..at + body.len());
        at += piece.len();
    }
    let lines: Vec<&str> = spans.iter().map(|r| &text[r.clone()]).collect();
    let k = old_lines.len();
    if k > lines.len() {
        return Ok(None);
    }
    let levels: [(&str, bool, bool); 3] = [
        ("ignoring trailing whitespace", false, false),
        ("with its indentation shifted", true, false),
        (
            "reading typographic quotes, dashes and spaces as ASCII",
            true,
            true,
        ),
    ];
    for (how, shift_ok, punct) in levels {
        let found: Vec<(usize, Shift)> = (0..=lines.len() - k)
            .filter_map(|s| {
                window_matches(&lines[s..s + k], &old_lines, shift_ok, punct).map(|m| (s, m))
            })
            .collect();
        match found.as_slice() {
            [] => continue,
            [(s, shift)] => {
                let start = spans[*s].start;
                let mut end = spans[s + k - 1].end;
                // old_str ending with a newline takes the last line's newline with it.
                if old.ends_with('\n') && text[end..].starts_with('\n') {
                    end += 1;
                }
                let mut out = String::with_capacity(text.len() + new.len());
                out.push_str(&text[..start]);
                out.push_str(&reindent(new, shift));
                out.push_str(&text[end..]);
                return Ok(Some((out, how)));
            }
            many => {
                return Err(format!(
                    "old_str was not found exactly, and {how} it matches {} places; copy the \
                     exact text with more surrounding lines",
                    many.len()
                ));
            }
        }
    }
    Ok(None)
}

/// Numbered lines of the new text around what changed (`N\tline`, without `\r`), a few lines of
/// context on each side, capped at `max_lines`.
pub fn snippet(before: &str, after: &str, max_lines: usize) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let lines: Vec<&str> = after.lines().collect();
    let mut out = String::new();
    let mut shown = 0usize;
    for (g, group) in diff.grouped_ops(3).iter().enumerate() {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let range = first.new_range().start..last.new_range().end;
        if g > 0 {
            out.push_str("…\n");
        }
        for n in range {
            let Some(line) = lines.get(n) else { break };
            if shown == max_lines {
                out.push_str("[… more changed lines not shown; read_file shows them]\n");
                return out;
            }
            out.push_str(&format!("{}\t{}\n", n + 1, line.trim_end_matches('\r')));
            shown += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(old: &str, new: &str) -> Vec<EditSpec> {
        vec![EditSpec {
            old_str: old.into(),
            new_str: new.into(),
            replace_all: false,
        }]
    }

    #[test]
    fn crlf_files_are_matched_on_lf_and_keep_crlf() {
        let text = "a\r\nb\r\nc\r\n";
        assert!(is_crlf(text) && !is_crlf("a\r\nb\n") && !is_crlf("a"));
        let r = apply_all("f", text, &one("a\nb\n", "a\nx\ny\n")).unwrap();
        assert_eq!(r.text, "a\r\nx\r\ny\r\nc\r\n");
        // A mixed file is matched as it is (a lone `\r` counts as trailing whitespace).
        let mixed = "a\r\nb\nc\n";
        assert_eq!(
            apply_all("f", mixed, &one("b\nc", "z")).unwrap().text,
            "a\r\nz\n"
        );
        assert_eq!(
            apply_all("f", mixed, &one("a\nb", "z")).unwrap().text,
            "z\nc\n"
        );
    }

    #[test]
    fn fallbacks_need_exactly_one_place() {
        // Trailing whitespace in the file.
        let r = apply_all(
            "f",
            "def f():  \n    return 1\n",
            &one("def f():\n    return 1\n", "def f():\n    return 2\n"),
        )
        .unwrap();
        assert_eq!(r.text, "def f():\n    return 2\n");
        assert!(r.notes[0].contains("trailing whitespace"), "{:?}", r.notes);
        // The model dropped one level of indentation: the new text is shifted back.
        let text = "class A:\n    def f(self):\n        return 1\n";
        let r = apply_all(
            "f",
            text,
            &one(
                "def f(self):\n    return 1",
                "def f(self):\n    x = 2\n    return x",
            ),
        )
        .unwrap();
        assert_eq!(
            r.text,
            "class A:\n    def f(self):\n        x = 2\n        return x\n"
        );
        // Curly quotes in the file, straight ones in old_str.
        let r = apply_all(
            "f",
            "say(\u{201C}hi\u{201D}) \u{2014} ok\n",
            &one("say(\"hi\") - ok", "say(\"bye\")"),
        )
        .unwrap();
        assert_eq!(r.text, "say(\"bye\")\n");
        // Two places after the fallback: refused.
        let e = apply_all("f", "x = 1 \nx = 1\t\n", &one("x = 1\n", "x = 2\n")).unwrap_err();
        assert!(e.contains("2 places"), "{e}");
        // An exact match wins over any fallback.
        let r = apply_all("f", "foo()\nfoo() \n", &one("foo()\n", "bar()\n")).unwrap();
        assert_eq!(r.text, "bar()\nfoo() \n");
    }

    #[test]
    fn a_failing_edit_fails_them_all() {
        let edits = vec![
            EditSpec {
                old_str: "a".into(),
                new_str: "b".into(),
                replace_all: false,
            },
            EditSpec {
                old_str: "nope".into(),
                new_str: "c".into(),
                replace_all: false,
            },
        ];
        let e = apply_all("f", "a\n", &edits).unwrap_err();
        assert!(
            e.starts_with("edit 2 of 2: old_str was not found") && e.contains("unchanged"),
            "{e}"
        );
        // Later edits see earlier ones.
        let edits = vec![
            EditSpec {
                old_str: "a".into(),
                new_str: "b".into(),
                replace_all: false,
            },
            EditSpec {
                old_str: "b\n".into(),
                new_str: "c\n".into(),
                replace_all: false,
            },
        ];
        assert_eq!(apply_all("f", "a\n", &edits).unwrap().text, "c\n");
    }

    #[test]
    fn snippet_numbers_the_changed_region() {
        let before: String = (1..=20).map(|i| format!("l{i}\r\n")).collect();
        let after = before.replace("l10\r\n", "ten\r\n");
        let s = snippet(&before, &after, 50);
        assert_eq!(
            s,
            "7\tl7\n8\tl8\n9\tl9\n10\tten\n11\tl11\n12\tl12\n13\tl13\n"
        );
    }
}
