//! The unified patch as data: files and hunks parsed from `git diff --binary` output, and the
//! approved subset of it rebuilt as a patch ([`filter`]).
//!
//! Invariants: a patch is bytes (files need not be UTF-8: Latin-1, invalid sequences, CRLF) and
//! parsing never loses one — concatenating every file's [`FilePatch::bytes`] gives back the
//! original patch. Text is decoded (lossily) only to be drawn: [`Hunk::line_text`], the
//! `section`, and paths (git quotes unusual paths, so they are ASCII in the patch; unquoted, they
//! are kept as git's raw bytes decoded lossily, the same way `--name-status -z` is read).

pub mod rows;
mod select;
pub mod selection;
pub mod warnings;

use std::borrow::Cow;

pub use select::{SelectionError, check_selection, filter, line_selectable};
pub use selection::Selection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ …` line, newline included.
    pub header: Vec<u8>,
    pub old_start: u64,
    pub old_len: u64,
    pub new_start: u64,
    pub new_len: u64,
    /// The text after the second `@@` (often the enclosing function), decoded for display.
    pub section: String,
    /// Body lines, each with its `' '`, `'+'`, `'-'` or `'\'` prefix and its newline, verbatim.
    pub lines: Vec<Vec<u8>>,
}

impl Hunk {
    /// Body line `i` decoded for display (borrowed when it is valid UTF-8).
    pub fn line_text(&self, i: usize) -> Option<Cow<'_, str>> {
        self.lines.get(i).map(|l| String::from_utf8_lossy(l))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The path after the change (the old path for deletions).
    pub path: String,
    pub old_path: Option<String>,
    /// Lines from `diff --git` up to the first hunk, newlines included, verbatim.
    pub header: Vec<Vec<u8>>,
    pub hunks: Vec<Hunk>,
    pub binary: bool,
}

impl FilePatch {
    /// This file's part of the patch, exactly as parsed.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        for l in &self.header {
            out.extend_from_slice(l);
        }
        for h in &self.hunks {
            out.extend_from_slice(&h.header);
            for l in &h.lines {
                out.extend_from_slice(l);
            }
        }
    }

    /// The first header line starting with `prefix`, without it and decoded for display.
    pub fn header_value(&self, prefix: &str) -> Option<String> {
        self.header.iter().find_map(|l| {
            l.strip_prefix(prefix.as_bytes())
                .map(|v| String::from_utf8_lossy(v).trim_end().to_string())
        })
    }

    pub fn header_has(&self, prefix: &str) -> bool {
        self.header.iter().any(|l| l.starts_with(prefix.as_bytes()))
    }

    pub fn is_new(&self) -> bool {
        self.header_has("new file mode")
    }

    pub fn is_deleted(&self) -> bool {
        self.header_has("deleted file mode")
    }
}

/// Where the ranges and the rest of a hunk header are.
pub(crate) struct HunkHeader {
    pub old_start: u64,
    pub old_len: u64,
    pub new_start: u64,
    pub new_len: u64,
    /// Offset of what follows the closing `@@` (a space and the section, then the newline).
    pub tail: usize,
}

fn parse_range(s: &[u8]) -> (u64, u64) {
    let num = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|v| v.parse().ok());
    match s.iter().position(|b| *b == b',') {
        Some(i) => (num(&s[..i]).unwrap_or(0), num(&s[i + 1..]).unwrap_or(0)),
        None => (num(s).unwrap_or(0), 1),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `@@ -a,b +c,d @@ section`.
pub(crate) fn parse_hunk_header(line: &[u8]) -> Option<HunkHeader> {
    let rest = line.strip_prefix(b"@@ -")?;
    let close = find(rest, b" @@")?;
    let ranges = &rest[..close];
    let plus = find(ranges, b" +")?;
    let (old_start, old_len) = parse_range(&ranges[..plus]);
    let (new_start, new_len) = parse_range(&ranges[plus + 2..]);
    Some(HunkHeader {
        old_start,
        old_len,
        new_start,
        new_len,
        tail: 4 + close + 3,
    })
}

/// Undoes git's C-style quoting of a path (`"a/caf\303\251"` → the raw bytes); an unquoted
/// path is returned as it is.
pub fn unquote(raw: &[u8]) -> Vec<u8> {
    let Some(inner) = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' || i >= inner.len() {
            out.push(c);
            continue;
        }
        let e = inner[i];
        i += 1;
        out.push(match e {
            b'a' => 0x07,
            b'b' => 0x08,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match inner.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                (v & 0xff) as u8
            }
            other => other,
        });
    }
    out
}

fn path_string(raw: &[u8]) -> String {
    String::from_utf8_lossy(&unquote(raw)).into_owned()
}

fn trim_eol(l: &[u8]) -> &[u8] {
    let mut l = l;
    while let [rest @ .., b'\n' | b'\r' | b'\t'] = l {
        l = rest;
    }
    l
}

/// The path of a `--- a/x` / `+++ b/x` line (`None` for `/dev/null`).
fn path_after(line: &[u8], prefix: &[u8]) -> Option<String> {
    let rest = unquote(trim_eol(line.strip_prefix(prefix)?));
    if rest == b"/dev/null" {
        return None;
    }
    let rest = rest
        .strip_prefix(b"a/")
        .or_else(|| rest.strip_prefix(b"b/"))
        .unwrap_or(&rest);
    Some(String::from_utf8_lossy(rest).into_owned())
}

/// The `b/` side of a `diff --git a/x b/y` line (for mode-only and binary changes).
fn new_path_of_git_line(line: &[u8]) -> Option<String> {
    let rest = trim_eol(line.strip_prefix(b"diff --git ")?);
    let second = if rest.starts_with(b"\"") {
        // `"a/…" "b/…"` or `"a/…" b/…`: the first quoted string ends at an unescaped quote.
        let mut i = 1;
        while i < rest.len() && rest[i] != b'"' {
            i += if rest[i] == b'\\' { 2 } else { 1 };
        }
        rest.get(i + 2..)?
    } else if let Some(q) = find(rest, b" \"b/") {
        &rest[q + 1..]
    } else {
        &rest[find(rest, b" b/")? + 1..]
    };
    let second = unquote(second);
    Some(String::from_utf8_lossy(second.strip_prefix(b"b/").unwrap_or(&second)).into_owned())
}

/// Where each file's part of `patch` is (from one `diff --git` line to the next), without
/// parsing it; bytes before the first file are in none.
pub fn file_ranges(patch: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in patch.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"diff --git ") {
            starts.push(at);
        }
        at += line.len();
    }
    let ends = starts.iter().skip(1).copied().chain([patch.len()]);
    starts
        .iter()
        .copied()
        .zip(ends)
        .map(|(s, e)| s..e)
        .collect()
}

/// Splits a patch into files and hunks.
pub fn parse(patch: &[u8]) -> Vec<FilePatch> {
    let mut files: Vec<FilePatch> = Vec::new();
    for line in patch.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"diff --git ") {
            files.push(FilePatch {
                path: String::new(),
                old_path: None,
                header: vec![line.to_vec()],
                hunks: vec![],
                binary: false,
            });
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if let Some(hunk) = file.hunks.last_mut()
            && !line.starts_with(b"@@ ")
        {
            hunk.lines.push(line.to_vec());
            continue;
        }
        if line.starts_with(b"@@ ")
            && let Some(h) = parse_hunk_header(line)
        {
            let section = String::from_utf8_lossy(trim_eol(&line[h.tail..]))
                .trim_start()
                .to_string();
            file.hunks.push(Hunk {
                header: line.to_vec(),
                old_start: h.old_start,
                old_len: h.old_len,
                new_start: h.new_start,
                new_len: h.new_len,
                section,
                lines: vec![],
            });
            continue;
        }
        if line.starts_with(b"GIT binary patch") || line.starts_with(b"Binary files ") {
            file.binary = true;
        }
        file.header.push(line.to_vec());
    }
    for f in &mut files {
        let mut old = None;
        let mut new = None;
        for l in &f.header {
            let value = |p: &str| l.strip_prefix(p.as_bytes()).map(trim_eol);
            if let Some(p) = value("rename from ").or_else(|| value("copy from ")) {
                old = Some(path_string(p));
            } else if let Some(p) = value("rename to ").or_else(|| value("copy to ")) {
                new = Some(path_string(p));
            } else if l.starts_with(b"--- ") {
                old = old.or(path_after(l, b"--- "));
            } else if l.starts_with(b"+++ ") {
                new = new.or(path_after(l, b"+++ "));
            }
        }
        if new.is_none() && old.is_none() {
            new = f.header.first().and_then(|l| new_path_of_git_line(l));
        }
        f.path = new.clone().or(old.clone()).unwrap_or_default();
        f.old_path = old.filter(|o| Some(o) != new.as_ref() && new.is_some());
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const PATCH: &str = "diff --git a/calc.py b/calc.py
index 1111111..2222222 100644
--- a/calc.py
+++ b/calc.py
@@ -1,3 +1,5 @@ import os
 def divide(a, b):
+    if b == 0:
+        raise ValueError
     return a / b
 
@@ -10,2 +12,3 @@ def mul(a, b):
 def mul(a, b):
+    # product
     return a * b
diff --git a/NOTES.md b/NOTES.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/NOTES.md
@@ -0,0 +1 @@
+note
diff --git a/old.txt b/new.txt
similarity index 100%
rename from old.txt
rename to new.txt
";

    fn joined(files: &[FilePatch]) -> Vec<u8> {
        files.iter().flat_map(FilePatch::bytes).collect()
    }

    #[test]
    fn parse_round_trips_and_finds_paths() {
        let files = parse(PATCH.as_bytes());
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, "calc.py");
        assert_eq!(files[0].hunks.len(), 2);
        assert_eq!(
            (files[0].hunks[1].old_start, files[0].hunks[1].new_start),
            (10, 12)
        );
        assert_eq!(files[0].hunks[0].section, "import os");
        assert_eq!(files[1].path, "NOTES.md");
        assert!(files[1].is_new());
        assert_eq!(files[2].path, "new.txt");
        assert_eq!(files[2].old_path.as_deref(), Some("old.txt"));
        assert_eq!(joined(&files), PATCH.as_bytes());
        let ranges = file_ranges(PATCH.as_bytes());
        assert_eq!(ranges.len(), 3);
        for (r, f) in ranges.iter().zip(&files) {
            assert_eq!(&PATCH.as_bytes()[r.clone()], f.bytes().as_slice());
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_survive_and_are_drawn_lossily() {
        let patch: &[u8] = b"diff --git a/l.txt b/l.txt\n--- a/l.txt\n+++ b/l.txt\n\
            @@ -1,2 +1,2 @@ caf\xe9\n-caf\xe9\r\n+th\xff\xfe\r\n \xc3(\n\\ No newline at end of file\n";
        let files = parse(patch);
        assert_eq!(joined(&files), patch);
        let h = &files[0].hunks[0];
        assert_eq!(h.lines[1], b"+th\xff\xfe\r\n");
        assert_eq!(h.line_text(1).unwrap(), "+th\u{fffd}\u{fffd}\r\n");
        assert_eq!(h.section, "caf\u{fffd}");
        assert_eq!(h.lines.len(), 4);
    }

    #[test]
    fn quoted_paths_are_unquoted_to_their_bytes() {
        assert_eq!(
            unquote(br#""a/caf\303\251 \"x\"\t""#),
            b"a/caf\xc3\xa9 \"x\"\t"
        );
        assert_eq!(unquote(b"plain name"), b"plain name");
        let patch: &[u8] = b"diff --git \"a/caf\\303\\251.txt\" \"b/caf\\303\\251.txt\"\n\
            --- \"a/caf\\303\\251.txt\"\n+++ \"b/caf\\303\\251.txt\"\n@@ -1 +1 @@\n-a\n+b\n\
            diff --git \"a/\\351t\\351.bin\" \"b/\\351t\\351.bin\"\nindex 1..2 100644\n\
            Binary files differ\n\
            diff --git a/with space b/with space\nold mode 100644\nnew mode 100755\n";
        let files = parse(patch);
        assert_eq!(files[0].path, "café.txt");
        assert_eq!(files[1].path, "\u{fffd}t\u{fffd}.bin");
        assert!(files[1].binary);
        assert_eq!(files[2].path, "with space");
        assert_eq!(joined(&files), patch);
    }
}
