//! The side-by-side diff layout: old text on the left, new text on the right, a deleted line
//! opposite the line that replaced it.
//!
//! It exists because a wide terminal shows a change better as two columns than as one interleaved
//! column, and it is its own module so the unified view ([`super::diffpane`]) stays the one place
//! that knows how one diff line is styled: this module only decides which unified rows share a
//! screen line and where each half goes.
//!
//! Invariants:
//! - [`SbsIndex`] is built once per diff, in one linear pass over the unified row index, and holds
//!   no text (8 bytes per screen line, 4 per unified row); drawing turns only the visible screen
//!   lines into styled text, so a 200,000-line diff scrolls as cheaply as in the unified view.
//! - Every unified row sits on exactly one screen line, and screen lines keep the unified order
//!   across blocks and hunks (so the cursor, hunk and file navigation and the selection all keep
//!   working on unified rows; only scrolling counts screen lines).
//! - Within a `-…-+…+` block the i-th removed line faces the i-th added line, exactly the pair
//!   [`crate::diff::rows`] computes word highlights for; the shorter side gets blank filler.
//!   A `\ No newline` marker stays on the side of the line it belongs to, below the block.
//! - File titles, notes (binary, rename, mode, new, deleted) and hunk headers with their
//!   include/exclude marker span both columns, exactly as in the unified view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::diffpane::{cursor_mark, line_body, num, row_line, word_ranges};
use super::diffview::DiffView;
use super::theme::Theme;
use crate::diff::rows::{NONE, Row, RowKind};

/// The narrowest diff body (columns inside the pane border) that gets two columns: each side then
/// keeps at least 51 columns of code after its line number and sign, which holds about 78% of the
/// non-blank lines of this repository's Rust and 70% of CPython's standard library whole. Below
/// it, most changed lines would be cut on both sides, while the unified view still shows ~110
/// columns. With the current layout the body reaches 120 columns from a 186-column terminal
/// (at 200×60 it has 134: 59 columns of code per side); a 160-column body would need a 226-column
/// terminal, which few full-screen terminals are.
pub const MIN_WIDTH: u16 = 120;

/// Whether a diff body `width` columns wide shows two columns.
pub fn fits(width: u16) -> bool {
    width >= MIN_WIDTH
}

/// One screen line: the unified rows shown on the left (old) and right (new) side, or [`NONE`]
/// for blank filler. File, note, hunk and context rows have the same row on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SbsRow {
    pub left: u32,
    pub right: u32,
}

impl SbsRow {
    /// The row the cursor lands on when it moves onto this line (the old side first).
    pub fn row(self) -> usize {
        if self.left != NONE {
            self.left as usize
        } else {
            self.right as usize
        }
    }
}

/// The side-by-side screen lines of a diff and, for each unified row, the line it is on.
#[derive(Debug, Clone, Default)]
pub struct SbsIndex {
    pub lines: Vec<SbsRow>,
    /// `line_of[i]`: the screen line of unified row `i`.
    pub line_of: Vec<u32>,
}

/// Which side a `\ No newline` marker follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Old,
    New,
    Both,
}

#[derive(Default)]
struct Block {
    dels: Vec<u32>,
    adds: Vec<u32>,
    old_tail: Option<u32>,
    new_tail: Option<u32>,
}

impl SbsIndex {
    pub fn build(rows: &[Row]) -> SbsIndex {
        let mut ix = SbsIndex {
            lines: Vec::with_capacity(rows.len()),
            line_of: vec![0; rows.len()],
        };
        let mut block = Block::default();
        let mut last = Last::Both;
        for (i, r) in rows.iter().enumerate() {
            let i = i as u32;
            match r.kind {
                RowKind::Removed => {
                    // A removal after additions (or after a marker) starts the next block.
                    if !block.adds.is_empty() || block.old_tail.is_some() {
                        ix.flush(&mut block);
                    }
                    block.dels.push(i);
                    last = Last::Old;
                }
                RowKind::Added => {
                    if block.new_tail.is_some() {
                        ix.flush(&mut block);
                    }
                    block.adds.push(i);
                    last = Last::New;
                }
                RowKind::NoNewline if last == Last::Old => block.old_tail = Some(i),
                RowKind::NoNewline if last == Last::New => block.new_tail = Some(i),
                _ => {
                    ix.flush(&mut block);
                    ix.push(i, i);
                    last = Last::Both;
                }
            }
        }
        ix.flush(&mut block);
        ix
    }

    fn push(&mut self, left: u32, right: u32) {
        let at = self.lines.len() as u32;
        for r in [left, right] {
            if let Some(slot) = self.line_of.get_mut(r as usize) {
                *slot = at;
            }
        }
        self.lines.push(SbsRow { left, right });
    }

    fn flush(&mut self, b: &mut Block) {
        for k in 0..b.dels.len().max(b.adds.len()) {
            let left = b.dels.get(k).copied().unwrap_or(NONE);
            let right = b.adds.get(k).copied().unwrap_or(NONE);
            self.push(left, right);
        }
        if b.old_tail.is_some() || b.new_tail.is_some() {
            self.push(b.old_tail.unwrap_or(NONE), b.new_tail.unwrap_or(NONE));
        }
        b.dels.clear();
        b.adds.clear();
        b.old_tail = None;
        b.new_tail = None;
    }
}

/// Draws screen lines `top..` of `d` into `area` (the diff body), two columns per hunk line.
pub fn draw(
    frame: &mut Frame,
    d: &DiffView,
    area: Rect,
    top: usize,
    focused: bool,
    editable: bool,
    theme: &Theme,
) {
    let w = area.width;
    // The left half includes the cursor column; one column separates the halves.
    let left_w = w.saturating_sub(1) / 2;
    let right_x = area.x + left_w + 1;
    let right_w = w.saturating_sub(left_w + 1);
    let cursor_line = d.sbs.line_of.get(d.cursor).map(|&l| l as usize);
    let end = (top + area.height as usize).min(d.sbs.lines.len());
    for (y, at) in (top..end).enumerate() {
        let y = area.y + y as u16;
        let line = d.sbs.lines[at];
        let is_cursor = focused && cursor_line == Some(at);
        let Some(first) = d.rows.get(line.row()) else {
            continue;
        };
        if matches!(first.kind, RowKind::File | RowKind::Note | RowKind::Hunk) {
            let full = row_line(d, first, is_cursor, editable, theme, w as usize);
            frame.render_widget(Paragraph::new(full), Rect::new(area.x, y, w, 1));
            continue;
        }
        let (old_words, new_words) = match (d.rows.get(line.left as usize), line.right) {
            (Some(l), r) if l.kind == RowKind::Removed && r != NONE => {
                word_ranges(d, l).unwrap_or_default()
            }
            _ => Default::default(),
        };
        let mut left = vec![cursor_mark(is_cursor, theme)];
        left.extend(half(d, line.left, true, &old_words, theme));
        cell(
            frame,
            Line::from(left),
            Rect::new(area.x, y, left_w, 1),
            theme,
        );
        frame.render_widget(
            Paragraph::new(Span::styled("│", theme.dim())),
            Rect::new(area.x + left_w, y, 1, 1),
        );
        let right = Line::from(half(d, line.right, false, &new_words, theme));
        cell(frame, right, Rect::new(right_x, y, right_w, 1), theme);
    }
}

/// One side of a hunk line: its line number on that side, sign and text; nothing for filler.
fn half<'a>(
    d: &'a DiffView,
    row: u32,
    old: bool,
    words: &[std::ops::Range<usize>],
    theme: &Theme,
) -> Vec<Span<'a>> {
    let Some(r) = d.rows.get(row as usize) else {
        return vec![];
    };
    let no = if old { r.old_no } else { r.new_no };
    let mut spans = vec![Span::styled(
        format!("{} ", num(no, d.num_width)),
        theme.dim(),
    )];
    spans.extend(line_body(d, r, words, theme));
    spans
}

/// Draws one half; a line cut at the column edge ends in a dim `…` so nothing is lost unseen.
fn cell(frame: &mut Frame, line: Line<'_>, r: Rect, theme: &Theme) {
    let cut = line.width() > r.width as usize;
    frame.render_widget(Paragraph::new(line), r);
    if cut && r.width > 0 {
        let x = r.right() - 1;
        if let Some(c) = frame.buffer_mut().cell_mut((x, r.y)) {
            c.set_symbol("…").set_style(theme.dim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::rows::{build_rows, file_notes};

    fn index(patch: &str) -> (Vec<Row>, SbsIndex) {
        let files = crate::diff::parse(patch.as_bytes());
        let notes: Vec<usize> = files.iter().map(|f| file_notes(f).len()).collect();
        let rows = build_rows(&files, &notes);
        let ix = SbsIndex::build(&rows);
        check_invariants(&rows, &ix);
        (rows, ix)
    }

    /// Every row on exactly one line, order kept, and faced lines are the word-highlight pairs.
    fn check_invariants(rows: &[Row], ix: &SbsIndex) {
        let mut seen = vec![0; rows.len()];
        for (at, l) in ix.lines.iter().enumerate() {
            let sides = if l.left == l.right {
                vec![l.left]
            } else {
                vec![l.left, l.right]
            };
            for r in sides.into_iter().filter(|&r| r != NONE) {
                seen[r as usize] += 1;
                assert_eq!(ix.line_of[r as usize] as usize, at);
            }
            if l.left != NONE && l.right != NONE && l.left != l.right {
                let (a, b) = (rows[l.left as usize], rows[l.right as usize]);
                if a.kind == RowKind::Removed && b.kind == RowKind::Added {
                    assert_eq!(a.pair, b.line, "faced lines are the highlighted pair");
                    assert_eq!(b.pair, a.line);
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "each row once: {seen:?}");
        let heads: Vec<u32> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.kind, RowKind::File | RowKind::Hunk))
            .map(|(i, _)| ix.line_of[i])
            .collect();
        assert!(heads.windows(2).all(|w| w[0] < w[1]), "order kept");
    }

    /// The screen as `(left kind, right kind)` pairs, `.` for filler, `=` for a shared row.
    fn shape(rows: &[Row], ix: &SbsIndex) -> Vec<String> {
        let k = |r: u32| match rows.get(r as usize).map(|r| r.kind) {
            None => '.',
            Some(RowKind::File) => 'F',
            Some(RowKind::Note) => 'N',
            Some(RowKind::Hunk) => '@',
            Some(RowKind::Context) => ' ',
            Some(RowKind::Added) => '+',
            Some(RowKind::Removed) => '-',
            Some(RowKind::NoNewline) => '\\',
        };
        ix.lines
            .iter()
            .map(|l| {
                if l.left == l.right {
                    format!("={}", k(l.left))
                } else {
                    format!("{}{}", k(l.left), k(l.right))
                }
            })
            .collect()
    }

    const HEAD: &str = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n";

    #[test]
    fn equal_counts_face_each_other() {
        let (rows, ix) = index(&format!("{HEAD}@@ -1,3 +1,3 @@\n x\n-a\n-b\n+A\n+B\n"));
        assert_eq!(shape(&rows, &ix), ["=F", "=@", "= ", "-+", "-+"]);
        assert_eq!(rows[ix.lines[3].left as usize].old_no, 2);
        assert_eq!(rows[ix.lines[3].right as usize].new_no, 2);
    }

    #[test]
    fn more_deletions_than_insertions_leave_the_right_blank() {
        let (rows, ix) = index(&format!("{HEAD}@@ -1,4 +1,2 @@\n-a\n-b\n-c\n+A\n y\n"));
        assert_eq!(shape(&rows, &ix), ["=F", "=@", "-+", "-.", "-.", "= "]);
        // The removed lines below the pair: the cursor lands on them, not on filler.
        assert_eq!(rows[ix.lines[4].row()].kind, RowKind::Removed);
    }

    #[test]
    fn only_insertions_leave_the_left_blank() {
        let (rows, ix) = index(
            "diff --git a/n.md b/n.md\nnew file mode 100644\n--- /dev/null\n+++ b/n.md\n@@ -0,0 +1,2 @@\n+one\n+two\n",
        );
        assert_eq!(shape(&rows, &ix), ["=F", "=N", "=@", ".+", ".+"]);
        assert_eq!(rows[ix.lines[3].row()].kind, RowKind::Added);
    }

    #[test]
    fn context_lines_split_blocks() {
        let (rows, ix) = index(&format!(
            "{HEAD}@@ -1,6 +1,6 @@\n-a\n x\n+B\n y\n-c\n+C\n+D\n z\n"
        ));
        assert_eq!(
            shape(&rows, &ix),
            ["=F", "=@", "-.", "= ", ".+", "= ", "-+", ".+", "= "]
        );
        let ctx = rows[ix.lines[3].left as usize];
        assert_eq!((ctx.old_no, ctx.new_no), (2, 1));
    }

    #[test]
    fn a_hunk_boundary_ends_a_block() {
        let (rows, ix) = index(&format!(
            "{HEAD}@@ -1,2 +1,1 @@\n-a\n-b\n+A\n@@ -10,1 +9,2 @@\n+X\n+Y\n-q\n+Q\n"
        ));
        assert_eq!(
            shape(&rows, &ix),
            ["=F", "=@", "-+", "-.", "=@", ".+", ".+", "-+"]
        );
        // The second hunk's header is not pulled into the first hunk's block.
        assert_eq!(rows[ix.lines[4].left as usize].hunk, 1);
    }

    #[test]
    fn no_newline_markers_stay_on_their_side() {
        let (rows, ix) = index(&format!(
            "{HEAD}@@ -1,1 +1,2 @@\n-a\n\\ No newline at end of file\n+A\n+B\n\\ No newline at end of file\n"
        ));
        assert_eq!(shape(&rows, &ix), ["=F", "=@", "-+", ".+", "\\\\"]);
        let (rows, ix) = index(&format!(
            "{HEAD}@@ -1,1 +1,1 @@\n-a\n+A\n\\ No newline at end of file\n"
        ));
        assert_eq!(shape(&rows, &ix), ["=F", "=@", "-+", ".\\"]);
        let (rows, ix) = index(&format!(
            "{HEAD}@@ -1,1 +1,1 @@\n x\n\\ No newline at end of file\n"
        ));
        assert_eq!(shape(&rows, &ix), ["=F", "=@", "= ", "=\\"]);
    }

    #[test]
    fn files_without_hunks_are_title_and_notes() {
        let (rows, ix) = index(
            "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\ndiff --git a/logo.png b/logo.png\nnew file mode 100644\nBinary files /dev/null and b/logo.png differ\n",
        );
        assert_eq!(shape(&rows, &ix), ["=F", "=N", "=F", "=N", "=N"]);
    }
}
