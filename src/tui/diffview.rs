//! The review state of one diff: parsed files, the row index, the cursor and what is in or out of
//! the PR.
//!
//! Invariants: the row index (and its side-by-side twin) is built once per diff (no styled text
//! is kept); the cursor is always a valid unified row, whatever the layout, so hunk and file
//! navigation and the selection behave the same in both; `top` counts screen lines of the current
//! [`DiffMode`]; [`DiffView::selection`] lists exactly the excluded files and hunks, with a
//! file counted as excluded when it was switched off as a whole or every hunk of it was.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::sidebyside::SbsIndex;
use crate::diff::rows::{self, NONE, Row, RowKind};
use crate::diff::warnings::{Scanner, Warning};
use crate::diff::{self, FilePatch};
use crate::pipeline::Selection;

/// How the diff body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffMode {
    /// One column, old and new lines interleaved.
    #[default]
    Unified,
    /// Old on the left, new on the right.
    SideBySide,
}

#[derive(Debug, Clone)]
pub struct FileInfo {
    pub status: char,
    pub added: u64,
    pub removed: u64,
    pub notes: Vec<String>,
    /// Index of the file's first row.
    pub first_row: usize,
    /// What the reviewer must not miss in this file ([`crate::diff::warnings`]), computed once
    /// from the patch.
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone)]
pub struct DiffView {
    pub patch: String,
    pub files: Vec<FilePatch>,
    pub info: Vec<FileInfo>,
    pub rows: Vec<Row>,
    /// Row indices of hunk headers, in order.
    pub hunk_rows: Vec<usize>,
    /// The screen lines of the side-by-side layout.
    pub sbs: SbsIndex,
    /// The layout on screen; `top` counts its lines.
    pub mode: DiffMode,
    /// The unified row under the cursor.
    pub cursor: usize,
    /// The first screen line shown.
    pub top: usize,
    pub excluded_files: BTreeSet<usize>,
    pub excluded_hunks: BTreeSet<(usize, usize)>,
    /// Single `+`/`-` lines left out (`s`): (file, hunk, body line).
    pub excluded_lines: BTreeSet<(usize, usize, usize)>,
    /// Width of the line-number columns.
    pub num_width: usize,
    /// Long lines wrap (`w`; the unified layout only: wrapping shows the diff unified).
    pub wrap: bool,
    /// Columns of hunk-line text scrolled past to the left (`h`/`l`), when not wrapping.
    pub hscroll: usize,
    /// The search whose matches are marked on screen (`/`; set by [`super::search`]).
    pub marks: Option<super::search::Pattern>,
    /// Syntax colors for hunks on screen (memoized).
    pub highlighter: super::highlight::Highlighter,
    /// Viewed, collapsed, the reviewer's own hunks, what changed since the last review
    /// ([`super::filelist`]).
    pub review: super::filelist::Marks,
    /// Lines added and removed per hunk, per file (so summaries cost O(hunks), not O(lines)).
    hunk_counts: Vec<Vec<(u64, u64)>>,
}

/// What goes into the PR, for the pane title and the PR dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files_in: usize,
    pub files: usize,
    pub hunks_in: usize,
    pub hunks: usize,
    pub added: u64,
    pub removed: u64,
}

impl DiffView {
    pub fn new(patch: String) -> DiffView {
        let files = diff::parse(patch.as_bytes());
        let mut info = Vec::with_capacity(files.len());
        let notes: Vec<Vec<String>> = files.iter().map(rows::file_notes).collect();
        let counts: Vec<usize> = notes.iter().map(Vec::len).collect();
        let rows = rows::build_rows(&files, &counts);
        let mut max_no = 0u64;
        for (f, n) in files.iter().zip(notes) {
            let (a, r) = rows::counts(f);
            for h in &f.hunks {
                max_no = max_no
                    .max(h.old_start + h.old_len)
                    .max(h.new_start + h.new_len);
            }
            info.push(FileInfo {
                status: rows::file_status(f).letter(),
                added: a,
                removed: r,
                first_row: 0,
                notes: n,
                warnings: file_warnings(f),
            });
        }
        for (i, r) in rows.iter().enumerate() {
            if r.kind == RowKind::File
                && let Some(fi) = info.get_mut(r.file as usize)
            {
                fi.first_row = i;
            }
        }
        let hunk_counts = files
            .iter()
            .map(|f| {
                f.hunks
                    .iter()
                    .map(|h| {
                        h.lines.iter().fold((0, 0), |(a, r), l| match l.first() {
                            Some(b'+') => (a + 1, r),
                            Some(b'-') => (a, r + 1),
                            _ => (a, r),
                        })
                    })
                    .collect()
            })
            .collect();
        let hunk_rows = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == RowKind::Hunk)
            .map(|(i, _)| i)
            .collect();
        DiffView {
            patch,
            files,
            info,
            sbs: SbsIndex::build(&rows),
            mode: DiffMode::Unified,
            rows,
            hunk_rows,
            cursor: 0,
            top: 0,
            excluded_files: BTreeSet::new(),
            excluded_hunks: BTreeSet::new(),
            excluded_lines: BTreeSet::new(),
            num_width: max_no.to_string().len().max(3),
            hunk_counts,
            marks: None,
            wrap: false,
            hscroll: 0,
            highlighter: Default::default(),
            review: Default::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn current_file(&self) -> usize {
        self.rows.get(self.cursor).map_or(0, |r| r.file as usize)
    }

    pub fn hunk_included(&self, file: usize, hunk: usize) -> bool {
        !self.excluded_files.contains(&file) && !self.excluded_hunks.contains(&(file, hunk))
    }

    /// Whether a hunk line goes into the PR (its hunk is in, and it was not left out with `s`).
    pub fn line_included(&self, file: usize, hunk: usize, line: usize) -> bool {
        self.hunk_included(file, hunk) && !self.excluded_lines.contains(&(file, hunk, line))
    }

    /// A hunk's marker: in, out, or partly (some lines left out).
    pub fn hunk_state(&self, file: usize, hunk: usize) -> Option<bool> {
        if !self.hunk_included(file, hunk) {
            return Some(false);
        }
        let partly = self
            .excluded_lines
            .range((file, hunk, 0)..=(file, hunk, usize::MAX))
            .next()
            .is_some();
        (!partly).then_some(true)
    }

    /// `Some(true)` all in, `Some(false)` all out, `None` partly.
    pub fn file_included(&self, file: usize) -> Option<bool> {
        if self.excluded_files.contains(&file) {
            return Some(false);
        }
        let n = self.files.get(file).map_or(0, |f| f.hunks.len());
        if (0..n).any(|h| self.hunk_state(file, h).is_none()) {
            return None;
        }
        let n = self.files.get(file).map_or(0, |f| f.hunks.len());
        let out = (0..n)
            .filter(|h| self.excluded_hunks.contains(&(file, *h)))
            .count();
        match (out, n) {
            (0, _) => Some(true),
            (o, n) if o == n => Some(false),
            _ => None,
        }
    }

    /// Space: toggles the hunk under the cursor, or the whole file on its title or notes.
    pub fn toggle_at_cursor(&mut self) {
        let Some(row) = self.rows.get(self.cursor).copied() else {
            return;
        };
        let file = row.file as usize;
        if row.hunk == NONE {
            let all_in = self.file_included(file) == Some(true);
            self.excluded_hunks.retain(|(f, _)| *f != file);
            self.excluded_lines.retain(|(f, _, _)| *f != file);
            if all_in {
                self.excluded_files.insert(file);
            } else {
                self.excluded_files.remove(&file);
            }
            return;
        }
        let key = (file, row.hunk as usize);
        if row.kind != RowKind::Hunk && self.is_split(file, key.1) {
            // A line of a split hunk: its part only (the header row still takes the whole).
            return self.toggle_part(file, key.1, row.line as usize);
        }
        if self.hunk_state(file, key.1).is_none() {
            // Partly in (lines left out with `s`): all of it in.
            self.excluded_lines.retain(|(f, h, _)| (*f, *h) != key);
            return;
        }
        if self.excluded_files.remove(&file) {
            // The file was out as a whole: turn just this hunk on, keeping the others out.
            for h in 0..self.files[file].hunks.len() {
                if h != key.1 {
                    self.excluded_hunks.insert((file, h));
                }
            }
            return;
        }
        if !self.excluded_hunks.remove(&key) {
            self.excluded_hunks.insert(key);
        }
    }

    pub fn selection(&self) -> Selection {
        let mut sel = Selection {
            excluded_lines: self
                .excluded_lines
                .iter()
                .filter(|&&(f, h, _)| self.hunk_included(f, h))
                .map(|&(f, h, l)| (self.files[f].path.clone(), h, l))
                .collect(),
            ..Default::default()
        };
        for (i, f) in self.files.iter().enumerate() {
            match self.file_included(i) {
                Some(true) => {}
                Some(false) => sel.excluded_files.push(f.path.clone()),
                None => sel.excluded_hunks.extend(
                    (0..f.hunks.len())
                        .filter(|h| self.excluded_hunks.contains(&(i, *h)))
                        .map(|h| (f.path.clone(), h)),
                ),
            }
        }
        sel
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            files_in: 0,
            files: self.files.len(),
            hunks_in: 0,
            hunks: 0,
            added: 0,
            removed: 0,
        };
        for (i, f) in self.files.iter().enumerate() {
            let inc = self.file_included(i);
            if inc != Some(false) {
                s.files_in += 1;
            }
            for h in 0..f.hunks.len() {
                s.hunks += 1;
                if self.hunk_included(i, h) {
                    s.hunks_in += 1;
                    let (a, r) = self.hunk_counts[i][h];
                    s.added += a;
                    s.removed += r;
                }
            }
        }
        for &(f, h, l) in &self.excluded_lines {
            if self.hunk_included(f, h) {
                match self.files[f].hunks[h].lines[l].first() {
                    Some(b'+') => s.added = s.added.saturating_sub(1),
                    Some(b'-') => s.removed = s.removed.saturating_sub(1),
                    _ => {}
                }
            }
        }
        s
    }

    /// The number of screen lines in `mode`.
    fn lines_in(&self, mode: DiffMode) -> usize {
        match mode {
            DiffMode::Unified => self.rows.len(),
            DiffMode::SideBySide => self.sbs.lines.len(),
        }
    }

    /// The screen line of unified row `row` in `mode`.
    fn line_in(&self, row: usize, mode: DiffMode) -> usize {
        match mode {
            DiffMode::Unified => row,
            DiffMode::SideBySide => self.sbs.line_of.get(row).map_or(0, |&l| l as usize),
        }
    }

    /// The screen line of the cursor in the current mode.
    pub fn cursor_line(&self) -> usize {
        self.line_in(self.cursor, self.mode)
    }

    /// The unified row the cursor takes on screen line `line` of the current mode.
    fn row_on(&self, line: usize) -> usize {
        match self.mode {
            DiffMode::Unified => line,
            DiffMode::SideBySide => self.sbs.lines.get(line).map_or(0, |l| l.row()),
        }
    }

    fn last_line(&self) -> usize {
        self.lines_in(self.mode).saturating_sub(1)
    }

    /// Switches the layout, keeping the cursor on its row and at the same height on screen.
    pub fn set_mode(&mut self, mode: DiffMode, height: usize) {
        if mode != self.mode {
            self.top = self.top_in(mode, height);
            self.mode = mode;
            self.scroll_into_view(height);
        }
    }

    /// The first screen line to show in `mode` (for a body of `height` lines): the current one
    /// in the current mode, else the one that keeps the cursor's distance from the top.
    pub fn top_in(&self, mode: DiffMode, height: usize) -> usize {
        if mode == self.mode {
            return self.top;
        }
        let offset = self.cursor_line().saturating_sub(self.top);
        let max_top = self.lines_in(mode).saturating_sub(height.max(1));
        self.line_in(self.cursor, mode)
            .saturating_sub(offset)
            .min(max_top)
    }

    /// Moves the cursor by `delta` screen lines and keeps it on screen in a body of `height`.
    pub fn move_by(&mut self, delta: isize, height: usize) {
        let last = self.last_line() as isize;
        let line = (self.cursor_line() as isize + delta).clamp(0, last.max(0)) as usize;
        if line != self.cursor_line() {
            self.cursor = self.row_on(line);
        }
        self.scroll_into_view(height);
    }

    pub fn scroll_into_view(&mut self, height: usize) {
        let h = height.max(1);
        let line = self.cursor_line();
        if line < self.top {
            self.top = line;
        } else if line >= self.top + h {
            self.top = line + 1 - h;
        }
    }

    /// Scrolls the view without moving past the ends (mouse wheel); the cursor stays visible.
    pub fn scroll_by(&mut self, delta: isize, height: usize) {
        let h = height.max(1);
        let max_top = self.lines_in(self.mode).saturating_sub(h) as isize;
        self.top = (self.top as isize + delta).clamp(0, max_top.max(0)) as usize;
        let line = self.cursor_line();
        let kept = line.clamp(self.top, self.top + h - 1).min(self.last_line());
        if kept != line {
            self.cursor = self.row_on(kept);
        }
    }

    /// Puts row `row` near the top of a body of `height` lines.
    pub fn jump(&mut self, row: usize, height: usize) {
        self.cursor = row.min(self.rows.len().saturating_sub(1));
        self.top = self.cursor_line().saturating_sub(1);
        let max_top = self.lines_in(self.mode).saturating_sub(height.max(1));
        self.top = self.top.min(max_top);
    }

    pub fn next_hunk(&mut self, height: usize) {
        let i = self.hunk_rows.partition_point(|&r| r <= self.cursor);
        if let Some(&r) = self.hunk_rows.get(i) {
            self.jump(r, height);
        }
    }

    pub fn prev_hunk(&mut self, height: usize) {
        let i = self.hunk_rows.partition_point(|&r| r < self.cursor);
        if i > 0 {
            self.jump(self.hunk_rows[i - 1], height);
        }
    }

    pub fn next_file(&mut self, height: usize) {
        let f = self.current_file() + 1;
        if let Some(info) = self.info.get(f) {
            self.jump(info.first_row, height);
        }
    }

    pub fn prev_file(&mut self, height: usize) {
        let cur = self.current_file();
        let target = match self.info.get(cur) {
            Some(i) if i.first_row < self.cursor => cur,
            _ => cur.saturating_sub(1),
        };
        if let Some(info) = self.info.get(target) {
            self.jump(info.first_row, height);
        }
    }

    /// The longest line text (in characters) among the rows on screen in a body of `height`
    /// lines: how far `l` may scroll (looks at the screen only, not the whole diff).
    pub fn widest_on_screen(&self, height: usize) -> usize {
        (self.top..(self.top + height).min(self.lines_in(self.mode)))
            .filter_map(|line| self.rows.get(self.row_on(line)))
            .map(|r| match r.kind {
                RowKind::Context | RowKind::Added | RowKind::Removed => {
                    self.line_text(r).chars().count().saturating_sub(1)
                }
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    pub fn home(&mut self) {
        self.cursor = 0;
        self.top = 0;
    }

    pub fn end(&mut self, height: usize) {
        self.cursor = self.row_on(self.last_line());
        self.scroll_into_view(height);
    }

    fn raw_line(&self, row: &Row, line: u32) -> Option<&[u8]> {
        self.files
            .get(row.file as usize)
            .and_then(|f| f.hunks.get(row.hunk as usize))
            .and_then(|h| h.lines.get(line as usize))
            .map(Vec::as_slice)
    }

    /// The body text of a hunk line row, without its line ending (`\n` or `\r\n`), decoded for
    /// display.
    pub fn line_text(&self, row: &Row) -> Cow<'_, str> {
        self.raw_line(row, row.line).map_or(Cow::Borrowed(""), |l| {
            String::from_utf8_lossy(split_ending(l).0)
        })
    }

    /// Whether the row's line ends in CRLF (drawn as a visible `␍`).
    pub fn line_ends_in_cr(&self, row: &Row) -> bool {
        self.raw_line(row, row.line)
            .is_some_and(|l| split_ending(l).1)
    }

    pub fn partner_text(&self, row: &Row) -> Option<Cow<'_, str>> {
        if row.pair == NONE {
            return None;
        }
        self.raw_line(row, row.pair)
            .map(|l| String::from_utf8_lossy(split_ending(l).0))
    }
}

/// A patch line without its `\n`, and whether a `\r` came before it (removed too). Only one CR
/// counts as the ending: any other is content, and drawn as such.
fn split_ending(line: &[u8]) -> (&[u8], bool) {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    match l.strip_suffix(b"\r") {
        Some(t) => (t, true),
        None => (l, false),
    }
}

/// The file's warnings, from its header and hunk lines as parsed (no copy of the text).
fn file_warnings(f: &FilePatch) -> Vec<Warning> {
    let mut scan = Scanner::new(f.path.as_bytes());
    for l in &f.header {
        scan.line(l);
    }
    for h in &f.hunks {
        scan.line(&h.header);
        for l in &h.lines {
            scan.line(l);
        }
    }
    scan.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/a.py b/a.py
--- a/a.py
+++ b/a.py
@@ -1,2 +1,3 @@
 x
+y
 z
@@ -10,2 +11,2 @@
 p
-q
+r
diff --git a/b.md b/b.md
new file mode 100644
--- /dev/null
+++ b/b.md
@@ -0,0 +1 @@
+note
";

    #[test]
    fn navigation_and_selection() {
        let mut v = DiffView::new(PATCH.into());
        assert_eq!(v.hunk_rows.len(), 3);
        assert_eq!(
            v.info[1].first_row,
            v.rows.iter().position(|r| r.file == 1).unwrap()
        );
        v.next_hunk(10);
        assert_eq!(v.rows[v.cursor].kind, RowKind::Hunk);
        v.next_hunk(10);
        v.toggle_at_cursor();
        assert_eq!(
            v.selection(),
            Selection {
                excluded_files: vec![],
                excluded_hunks: vec![("a.py".into(), 1)],
                ..Default::default()
            }
        );
        let s = v.summary();
        assert_eq!((s.hunks_in, s.hunks, s.added, s.removed), (2, 3, 2, 0));
        v.next_file(10);
        assert_eq!(v.current_file(), 1);
        v.toggle_at_cursor();
        assert_eq!(v.selection().excluded_files, vec!["b.md".to_string()]);
        assert_eq!(v.summary().files_in, 1);
        v.prev_file(10);
        assert_eq!(v.current_file(), 0);
        assert_eq!(v.file_included(0), None, "partly in");
        v.toggle_at_cursor();
        assert_eq!(
            v.file_included(0),
            Some(true),
            "a partial file header brings all in"
        );
        v.toggle_at_cursor();
        assert_eq!(v.file_included(0), Some(false));
        v.toggle_at_cursor();
        assert_eq!(v.file_included(0), Some(true));
        v.end(5);
        assert_eq!(v.cursor, v.rows.len() - 1);
        assert!(v.top + 5 > v.cursor);
    }
}
