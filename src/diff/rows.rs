//! Display rows for a parsed patch: a compact index (one small `Copy` struct per visible line) with
//! old and new line numbers, plus word-level highlights between paired removed/added lines.
//!
//! Invariants: building the index is linear and allocation-light (no text is copied), so a
//! 200,000-line patch is indexed once and front-ends build styled text only for the rows on screen.
//! Line numbers follow the hunk header exactly: context lines advance both sides, `-` only the old
//! side, `+` only the new side, `\ No newline` neither.

use std::ops::Range;

use super::FilePatch;

/// No line number / no hunk / no partner.
pub const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The file's title row (path, status, counts).
    File,
    /// A note about the file: rename, mode change, binary, new, deleted (`line` indexes
    /// [`file_notes`]).
    Note,
    Hunk,
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file`.
    NoNewline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    pub file: u32,
    /// Hunk index within the file, or [`NONE`] for file rows.
    pub hunk: u32,
    /// Line index within the hunk body (or note index for `Note` rows).
    pub line: u32,
    pub old_no: u32,
    pub new_no: u32,
    /// For a changed line paired with its counterpart (the i-th `-` of a block with the i-th `+`):
    /// the partner's line index within the same hunk.
    pub pair: u32,
}

/// How a file changed, as one letter and a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    ModeChanged,
}

impl FileStatus {
    pub fn letter(self) -> char {
        match self {
            FileStatus::Added => 'A',
            FileStatus::Modified => 'M',
            FileStatus::Deleted => 'D',
            FileStatus::Renamed => 'R',
            FileStatus::Copied => 'C',
            FileStatus::ModeChanged => 'T',
        }
    }
}

pub fn file_status(f: &FilePatch) -> FileStatus {
    if f.is_new() {
        FileStatus::Added
    } else if f.is_deleted() {
        FileStatus::Deleted
    } else if f.header_has("rename from ") {
        FileStatus::Renamed
    } else if f.header_has("copy from ") {
        FileStatus::Copied
    } else if f.hunks.is_empty() && !f.binary && f.header_has("new mode ") {
        FileStatus::ModeChanged
    } else {
        FileStatus::Modified
    }
}

/// Lines added and removed in a file.
pub fn counts(f: &FilePatch) -> (u64, u64) {
    let mut add = 0;
    let mut del = 0;
    for h in &f.hunks {
        for l in &h.lines {
            match l.first() {
                Some(b'+') => add += 1,
                Some(b'-') => del += 1,
                _ => {}
            }
        }
    }
    (add, del)
}

/// Human notes about a file that its hunks do not show.
pub fn file_notes(f: &FilePatch) -> Vec<String> {
    let mut notes = Vec::new();
    let mut old_mode = None;
    let mut new_mode = None;
    for l in &f.header {
        let l = String::from_utf8_lossy(l);
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("old mode ") {
            old_mode = Some(m.to_string());
        } else if let Some(m) = l.strip_prefix("new mode ") {
            new_mode = Some(m.to_string());
        } else if let Some(m) = l.strip_prefix("new file mode ") {
            notes.push(format!("new file (mode {m})"));
        } else if let Some(m) = l.strip_prefix("deleted file mode ") {
            notes.push(format!("deleted file (mode {m})"));
        } else if let Some(p) = l.strip_prefix("rename from ") {
            let sim = f.header_value("similarity index ");
            match sim {
                Some(s) => notes.push(format!("renamed from {p} ({s} similar)")),
                None => notes.push(format!("renamed from {p}")),
            }
        } else if let Some(p) = l.strip_prefix("copy from ") {
            notes.push(format!("copied from {p}"));
        }
    }
    if let (Some(o), Some(n)) = (old_mode, new_mode) {
        notes.push(format!("mode {o} → {n}"));
    }
    if f.binary {
        notes.push("binary file: contents not shown".into());
    }
    if f.hunks.is_empty() && !f.binary && notes.is_empty() {
        notes.push("no content change".into());
    }
    notes
}

/// Builds the row index for `files`. `notes[i]` must be `file_notes(&files[i]).len()`.
pub fn build_rows(files: &[FilePatch], note_counts: &[usize]) -> Vec<Row> {
    let total: usize = files
        .iter()
        .map(|f| 1 + f.hunks.iter().map(|h| 1 + h.lines.len()).sum::<usize>())
        .sum();
    let mut rows = Vec::with_capacity(total + note_counts.iter().sum::<usize>());
    for (fi, f) in files.iter().enumerate() {
        let file = fi as u32;
        rows.push(Row {
            kind: RowKind::File,
            file,
            hunk: NONE,
            line: 0,
            old_no: NONE,
            new_no: NONE,
            pair: NONE,
        });
        for n in 0..note_counts.get(fi).copied().unwrap_or(0) {
            rows.push(Row {
                kind: RowKind::Note,
                file,
                hunk: NONE,
                line: n as u32,
                old_no: NONE,
                new_no: NONE,
                pair: NONE,
            });
        }
        for (hi, h) in f.hunks.iter().enumerate() {
            let hunk = hi as u32;
            rows.push(Row {
                kind: RowKind::Hunk,
                file,
                hunk,
                line: NONE,
                old_no: NONE,
                new_no: NONE,
                pair: NONE,
            });
            let first = rows.len();
            let mut old = h.old_start as u32;
            let mut new = h.new_start as u32;
            for (li, l) in h.lines.iter().enumerate() {
                let (kind, o, n) = match l.first() {
                    Some(b'+') => {
                        new += 1;
                        (RowKind::Added, NONE, new - 1)
                    }
                    Some(b'-') => {
                        old += 1;
                        (RowKind::Removed, old - 1, NONE)
                    }
                    Some(b'\\') => (RowKind::NoNewline, NONE, NONE),
                    _ => {
                        old += 1;
                        new += 1;
                        (RowKind::Context, old - 1, new - 1)
                    }
                };
                rows.push(Row {
                    kind,
                    file,
                    hunk,
                    line: li as u32,
                    old_no: o,
                    new_no: n,
                    pair: NONE,
                });
            }
            pair_blocks(&mut rows[first..]);
        }
    }
    rows
}

/// Pairs the i-th removed line of each `-…-+…+` block with the i-th added line.
fn pair_blocks(rows: &mut [Row]) {
    let mut i = 0;
    while i < rows.len() {
        if rows[i].kind != RowKind::Removed {
            i += 1;
            continue;
        }
        let del_start = i;
        while i < rows.len() && matches!(rows[i].kind, RowKind::Removed | RowKind::NoNewline) {
            i += 1;
        }
        let add_start = i;
        while i < rows.len() && matches!(rows[i].kind, RowKind::Added | RowKind::NoNewline) {
            i += 1;
        }
        let dels: Vec<usize> = (del_start..add_start)
            .filter(|&k| rows[k].kind == RowKind::Removed)
            .collect();
        let adds: Vec<usize> = (add_start..i)
            .filter(|&k| rows[k].kind == RowKind::Added)
            .collect();
        for (&d, &a) in dels.iter().zip(&adds) {
            rows[d].pair = rows[a].line;
            rows[a].pair = rows[d].line;
        }
    }
}

/// Byte ranges within one line.
pub type Spans = Vec<Range<usize>>;

/// Lines longer than this get no word highlighting (cost and noise).
pub const INTRALINE_MAX_BYTES: usize = 1000;

/// Byte ranges that differ between a removed line and its added partner (both without their
/// `-`/`+` prefix), or `None` when highlighting would not help: too long, or mostly different.
pub fn intraline(old: &str, new: &str) -> Option<(Spans, Spans)> {
    if old.len() > INTRALINE_MAX_BYTES || new.len() > INTRALINE_MAX_BYTES {
        return None;
    }
    let diff = similar::TextDiff::from_words(old, new);
    if diff.ratio() < 0.4 {
        return None;
    }
    let offsets = |it: &mut dyn Iterator<Item = usize>| {
        let mut v = vec![0];
        let mut acc = 0;
        for len in it {
            acc += len;
            v.push(acc);
        }
        v
    };
    let old_off = offsets(&mut diff.iter_old_slices().map(str::len));
    let new_off = offsets(&mut diff.iter_new_slices().map(str::len));
    let mut o = Vec::new();
    let mut n = Vec::new();
    for op in diff.ops() {
        let (tag, or, nr) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        if !or.is_empty() {
            o.push(old_off[or.start]..old_off[or.end]);
        }
        if !nr.is_empty() {
            n.push(new_off[nr.start]..new_off[nr.end]);
        }
    }
    if o.is_empty() && n.is_empty() {
        return None;
    }
    Some((o, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::parse;

    const PATCH: &str = "diff --git a/calc.py b/calc.py
index 1111111..2222222 100644
--- a/calc.py
+++ b/calc.py
@@ -1,3 +1,4 @@ import os
 def divide(a, b):
-    return a / b
+    if b == 0: raise ValueError
+    return a // b
 
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git a/old.txt b/new.txt
similarity index 90%
rename from old.txt
rename to new.txt
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..3333333
GIT binary patch
literal 5
McmZQzU|?i`0001000001

literal 0
HcmV?d00001

";

    fn rows_for(patch: &str) -> (Vec<FilePatch>, Vec<Row>) {
        let files = parse(patch.as_bytes());
        let notes: Vec<usize> = files.iter().map(|f| file_notes(f).len()).collect();
        let rows = build_rows(&files, &notes);
        (files, rows)
    }

    #[test]
    fn numbers_follow_the_hunk_header() {
        let (_, rows) = rows_for(PATCH);
        let body: Vec<(RowKind, u32, u32)> = rows
            .iter()
            .filter(|r| r.file == 0 && r.hunk != NONE && r.line != NONE)
            .map(|r| (r.kind, r.old_no, r.new_no))
            .collect();
        assert_eq!(
            body,
            vec![
                (RowKind::Context, 1, 1),
                (RowKind::Removed, 2, NONE),
                (RowKind::Added, NONE, 2),
                (RowKind::Added, NONE, 3),
                (RowKind::Context, 3, 4),
            ]
        );
        let removed = rows.iter().find(|r| r.kind == RowKind::Removed).unwrap();
        assert_eq!(removed.pair, 2, "paired with the first added line");
    }

    #[test]
    fn statuses_and_notes_describe_non_text_changes() {
        let (files, _) = rows_for(PATCH);
        let st: Vec<char> = files.iter().map(|f| file_status(f).letter()).collect();
        assert_eq!(st, vec!['M', 'T', 'R', 'A']);
        assert_eq!(file_notes(&files[1]), vec!["mode 100644 → 100755"]);
        assert_eq!(
            file_notes(&files[2]),
            vec!["renamed from old.txt (90% similar)"]
        );
        let png = file_notes(&files[3]);
        assert!(png.iter().any(|n| n.contains("binary")), "{png:?}");
        assert_eq!(counts(&files[0]), (2, 1));
    }

    #[test]
    fn intraline_marks_only_the_changed_words() {
        let (o, n) = intraline("    return a / b", "    return a // b").unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(&"    return a / b"[o[0].clone()], "/");
        assert_eq!(&"    return a // b"[n[0].clone()], "//");
        assert!(
            intraline("abc def", "xyz uvw").is_none(),
            "all different: no highlight"
        );
        let long = "x".repeat(INTRALINE_MAX_BYTES + 1);
        assert!(intraline(&long, "y").is_none());
    }
}
