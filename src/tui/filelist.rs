//! The file list as a pane of its own (`Tab` focuses it): `j`/`k` pick a file (the diff follows),
//! `Enter` hands the focus to the diff at that file, `space` puts the whole file in or out, `x`
//! collapses it, `m` marks it viewed (a viewed file collapses; the pane title counts them). Also
//! the per-file and per-hunk marks the review keeps besides the selection ([`Marks`]), and how a
//! diff's rows are re-indexed when files collapse or `d` shows only what changed.
//!
//! Invariants: marks name files and hunks by index into the one patch the view was built on; a
//! re-diff carries them over by path and content ([`carry`]), so a file the follow-up changed is
//! no longer "viewed"; collapsing never drops a file's title row, so every file keeps a row and
//! `first_row` stays valid; re-indexing keeps the cursor on the same line when it is still shown.

use std::collections::BTreeSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::diffpane::{marked_warnings, marker};
use super::diffview::DiffView;
use super::layout::Panes;
use super::model::{Focus, Model, RunState};
use super::sanitize;
use super::sidebyside::SbsIndex;
use super::theme::Theme;
use super::update::diff_height;
use crate::diff::rows::{self, NONE, Row, RowKind};
use crate::diff::warnings::Warning;

/// What the reviewer marked besides the selection, by file and hunk index of the view's patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// Files shown as their title row only (`x`, and every viewed file).
    pub collapsed: BTreeSet<usize>,
    /// Files marked viewed (`m`).
    pub viewed: BTreeSet<usize>,
    /// Hunks the reviewer changed with `E` (drawn as theirs, not the agent's).
    pub yours: BTreeSet<(usize, usize)>,
    /// Hunks new or changed since the review before the last re-diff (a follow-up); `None`
    /// before any.
    pub since: Option<BTreeSet<(usize, usize)>>,
    /// `d`: only the hunks in `since` are shown.
    pub only_since: bool,
    /// Where `s` split a hunk: (file, hunk, first body line of the later part)
    /// ([`super::hunksplit`]).
    pub splits: BTreeSet<(usize, usize, usize)>,
}

/// FNV-1a (64 bit) of some bytes, as hex: how marks recognise a file or hunk across re-diffs.
pub fn content_key(chunks: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chunks {
        for b in *c {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

pub fn hunk_key(d: &DiffView, file: usize, hunk: usize) -> String {
    let lines: Vec<&[u8]> = d.files[file].hunks[hunk]
        .lines
        .iter()
        .map(Vec::as_slice)
        .collect();
    content_key(&lines)
}

pub fn file_key(d: &DiffView, file: usize) -> String {
    content_key(&[&d.files[file].bytes()])
}

impl DiffView {
    /// Rebuilds the row index for the current collapse and `d` filter, keeping the cursor on
    /// its line (or its file's title when the line is hidden now).
    pub fn reindex(&mut self) {
        let counts: Vec<usize> = self.info.iter().map(|i| i.notes.len()).collect();
        let all = rows::build_rows(&self.files, &counts);
        let m = &self.review;
        let since = m.since.as_ref().filter(|_| m.only_since);
        let shown = |r: &Row| {
            let f = r.file as usize;
            if r.kind == RowKind::File {
                return true;
            }
            if m.collapsed.contains(&f) {
                return false;
            }
            match since {
                None => true,
                Some(s) if r.hunk == NONE => s.iter().any(|(sf, _)| *sf == f),
                Some(s) => s.contains(&(f, r.hunk as usize)),
            }
        };
        let was = self.rows.get(self.cursor).copied();
        self.rows = all.into_iter().filter(|r| shown(r)).collect();
        self.hunk_rows = (0..self.rows.len())
            .filter(|&i| self.rows[i].kind == RowKind::Hunk)
            .collect();
        for (i, r) in self.rows.iter().enumerate() {
            if r.kind == RowKind::File
                && let Some(fi) = self.info.get_mut(r.file as usize)
            {
                fi.first_row = i;
            }
        }
        self.sbs = SbsIndex::build(&self.rows);
        self.cursor = was
            .and_then(|w| {
                self.rows
                    .iter()
                    .position(|r| *r == w)
                    .or_else(|| self.info.get(w.file as usize).map(|i| i.first_row))
            })
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
        self.top = self.top.min(self.cursor_line());
    }

    /// `x`: the file shown as its title only, or whole again.
    pub fn toggle_collapsed(&mut self, file: usize) {
        if !self.review.collapsed.remove(&file) {
            self.review.collapsed.insert(file);
        }
        self.reindex();
    }

    /// `m`: viewed (and collapsed), or not viewed (and shown whole).
    pub fn toggle_viewed(&mut self, file: usize) {
        if self.review.viewed.remove(&file) {
            self.review.collapsed.remove(&file);
        } else {
            self.review.viewed.insert(file);
            self.review.collapsed.insert(file);
        }
        self.reindex();
    }

    /// `d`: only what the last follow-up changed, or everything. `false` when there was no
    /// follow-up (nothing to compare with).
    pub fn toggle_since(&mut self) -> bool {
        if self.review.since.is_none() {
            return false;
        }
        self.review.only_since = !self.review.only_since;
        self.reindex();
        true
    }

    /// "2/5 viewed" for the pane title, when any file is.
    pub fn viewed_label(&self) -> Option<String> {
        (!self.review.viewed.is_empty())
            .then(|| format!("{}/{} viewed", self.review.viewed.len(), self.files.len()))
    }
}

/// The per-file warnings the pipeline computed (`Diff.files[].warnings`) join the ones the view
/// found in the patch itself: the union, so neither an event from an older run (no warnings
/// recorded) nor a cut event can hide one. Unknown codes are skipped.
pub fn event_warnings(view: &mut DiffView, files: &[crate::event::FileStat]) {
    for (f, info) in view.files.iter().zip(view.info.iter_mut()) {
        let Some(stat) = files.iter().find(|s| s.path == f.path) else {
            continue;
        };
        for w in Warning::ALL {
            if stat.warnings.iter().any(|c| c == w.code()) && !info.warnings.contains(&w) {
                info.warnings.push(w);
            }
        }
        info.warnings.sort();
    }
}

/// Carries the marks of `old` over to `new` (a re-diff): a file or hunk whose content is the
/// same keeps its marks; what is new or changed becomes `since` (what `d` shows), and what
/// changed in `user_edit`'s file is the reviewer's own (`yours`).
pub fn carry(old: &DiffView, new: &mut DiffView, user_edit: Option<&str>) {
    let old_files: Vec<(String, String)> = (0..old.files.len())
        .map(|i| (old.files[i].path.clone(), file_key(old, i)))
        .collect();
    let old_hunks: BTreeSet<(String, String)> = (0..old.files.len())
        .flat_map(|f| (0..old.files[f].hunks.len()).map(move |h| (f, h)))
        .map(|(f, h)| (old.files[f].path.clone(), hunk_key(old, f, h)))
        .collect();
    let keys_of = |set: &BTreeSet<(usize, usize)>| -> BTreeSet<(String, String)> {
        set.iter()
            .map(|&(f, h)| (old.files[f].path.clone(), hunk_key(old, f, h)))
            .collect()
    };
    let old_yours = keys_of(&old.review.yours);
    let old_since = old.review.since.as_ref().map(keys_of);
    let mut m = Marks::default();
    let mut since = BTreeSet::new();
    for f in 0..new.files.len() {
        let key = (new.files[f].path.clone(), file_key(new, f));
        if let Some(i) = old_files.iter().position(|k| *k == key) {
            if old.review.viewed.contains(&i) {
                m.viewed.insert(f);
            }
            if old.review.collapsed.contains(&i) {
                m.collapsed.insert(f);
            }
        }
        for h in 0..new.files[f].hunks.len() {
            let hk = (new.files[f].path.clone(), hunk_key(new, f, h));
            if old_yours.contains(&hk) {
                m.yours.insert((f, h));
            }
            let fresh = !old_hunks.contains(&hk);
            if fresh && user_edit == Some(new.files[f].path.as_str()) {
                m.yours.insert((f, h));
            }
            // After a follow-up: what it changed. After the reviewer's own edit: what the last
            // follow-up changed (still there) and the edit.
            let was_since = old_since.as_ref().is_some_and(|s| s.contains(&hk));
            if fresh || (user_edit.is_some() && was_since) {
                since.insert((f, h));
            }
        }
    }
    m.since = match user_edit {
        Some(_) => old_since.map(|_| since),
        None => Some(since),
    };
    m.only_since = m.since.is_some() && old.review.only_since;
    new.review = m;
    new.reindex();
}

/// `Tab` (`step` 1) / `Shift+Tab` (-1): the next pane in [`Focus::ORDER`]; the file list only
/// when there are files to list.
pub(super) fn tab(model: &mut Model, step: isize) {
    let has_files = model.diff.as_ref().is_some_and(|d| !d.is_empty());
    let n = Focus::ORDER.len() as isize;
    let mut i = Focus::ORDER
        .iter()
        .position(|f| *f == model.focus)
        .unwrap_or(0) as isize;
    loop {
        i = (i + step).rem_euclid(n);
        if Focus::ORDER[i as usize] != Focus::Files || has_files {
            break;
        }
    }
    model.focus = Focus::ORDER[i as usize];
}

/// Keys of the focused file list. Returns whether the key was taken.
pub(super) fn key(model: &mut Model, k: KeyEvent) -> bool {
    let h = diff_height(model);
    let editable = model.state == RunState::Review && model.viewing.is_none();
    let Some(d) = model.diff.as_mut().filter(|d| !d.is_empty()) else {
        return false;
    };
    let cur = d.current_file();
    let go = |d: &mut DiffView, f: usize| {
        if let Some(row) = d.info.get(f).map(|i| i.first_row) {
            d.jump(row, h);
        }
    };
    match k.code {
        KeyCode::Down | KeyCode::Char('j') => go(d, (cur + 1).min(d.files.len() - 1)),
        KeyCode::Up | KeyCode::Char('k') => go(d, cur.saturating_sub(1)),
        KeyCode::Home | KeyCode::Char('g') => go(d, 0),
        KeyCode::End | KeyCode::Char('G') => go(d, d.files.len().saturating_sub(1)),
        KeyCode::Enter => {
            go(d, cur);
            model.focus = Focus::Diff;
        }
        KeyCode::Char(' ') if editable => {
            go(d, cur);
            d.toggle_at_cursor();
        }
        KeyCode::Char(' ') => {
            model.notice = Some("the selection can be changed while the diff is in review".into());
        }
        _ => return file_marks_key(model, k),
    }
    true
}

/// `x` and `m` on the current file, from the file list or the diff.
pub(super) fn file_marks_key(model: &mut Model, k: KeyEvent) -> bool {
    if k.modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return false;
    }
    let h = diff_height(model);
    let Some(d) = model.diff.as_mut().filter(|d| !d.is_empty()) else {
        return false;
    };
    let cur = d.current_file();
    match k.code {
        KeyCode::Char('x') => d.toggle_collapsed(cur),
        KeyCode::Char('m') => {
            d.toggle_viewed(cur);
            // Marked viewed: on to the next file not viewed yet.
            if d.review.viewed.contains(&cur)
                && let Some(next) = (cur + 1..d.files.len()).find(|f| !d.review.viewed.contains(f))
            {
                d.cursor = d.info[next].first_row;
            }
        }
        _ => return false,
    }
    d.scroll_into_view(h);
    // Search matches are row indices of the old index.
    if super::search::active_in(model, Focus::Diff) {
        super::search::close(model);
    }
    true
}

/// The file list at the top of the diff pane: `▸` on the current file (reversed when the list
/// has the focus), `[x]`/`[ ]`/`[~]`, status, `⚠` for warned files, `✓` for viewed ones.
pub(super) fn draw(frame: &mut Frame, d: &DiffView, theme: &Theme, p: &Panes, focused: bool) {
    let h = p.files.height as usize;
    if h == 0 {
        return;
    }
    let cur = d.current_file();
    let start = if cur >= h { cur + 1 - h } else { 0 };
    // A `⚠` column only when some file needs it, so an ordinary diff keeps its layout.
    let any_warned = (0..d.files.len()).any(|i| !marked_warnings(d, i).is_empty());
    let any_viewed = !d.review.viewed.is_empty();
    let path_w = d
        .files
        .iter()
        .map(|f| f.path.chars().count())
        .max()
        .unwrap_or(0)
        .min(
            (p.files.width as usize)
                .saturating_sub(if any_viewed { 24 } else { 22 })
                .max(8),
        );
    let lines: Vec<Line> = (start..(start + h).min(d.files.len()))
        .map(|i| {
            let f = &d.files[i];
            let info = &d.info[i];
            let inc = d.file_included(i);
            let mut path = sanitize::one_line(&f.path);
            let n = path.chars().count();
            if n > path_w {
                path = format!("…{}", path.chars().skip(n + 1 - path_w).collect::<String>());
            }
            let counts = if f.binary {
                "bin".to_string()
            } else {
                format!("+{} −{}", info.added, info.removed)
            };
            let base = if inc == Some(false) || d.review.viewed.contains(&i) {
                theme.excluded()
            } else {
                Style::default()
            };
            let pointer = match (i == cur, focused) {
                (true, true) => Span::styled("▸ ", theme.cursor()),
                (true, false) => Span::styled("▸ ", theme.bold()),
                _ => Span::styled("  ", theme.bold()),
            };
            let mut spans = vec![
                pointer,
                Span::styled(marker(inc), theme.bold()),
                Span::raw(" "),
                Span::styled(info.status.to_string(), theme.hunk()),
                Span::raw(" "),
            ];
            if any_viewed {
                spans.push(if d.review.viewed.contains(&i) {
                    Span::styled("✓ ", theme.bold())
                } else {
                    Span::raw("  ")
                });
            }
            if any_warned {
                if marked_warnings(d, i).is_empty() {
                    spans.push(Span::raw("  "));
                } else {
                    spans.push(Span::styled("⚠", theme.warning()));
                    spans.push(Span::raw(" "));
                }
            }
            let path_style = if i == cur && focused {
                base.patch(theme.cursor())
            } else {
                base
            };
            spans.extend([
                Span::styled(format!("{path:<path_w$}"), path_style),
                Span::raw("  "),
                Span::styled(counts, theme.dim()),
            ]);
            if d.review.collapsed.contains(&i) && !d.review.viewed.contains(&i) {
                spans.push(Span::styled("  (collapsed)", theme.dim()));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), p.files);
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
diff --git a/b.md b/b.md
new file mode 100644
--- /dev/null
+++ b/b.md
@@ -0,0 +1 @@
+note
";

    #[test]
    fn collapsing_keeps_the_title_and_the_cursor_on_its_file() {
        let mut v = DiffView::new(PATCH.into());
        let all = v.rows.len();
        v.cursor = v.info[1].first_row + 3;
        v.toggle_collapsed(0);
        assert_eq!(v.rows.len(), all - 4, "a.py's hunk header and its 3 lines");
        assert_eq!(v.current_file(), 1);
        assert_eq!(v.rows[v.cursor].kind, RowKind::Added);
        v.cursor = 0;
        v.toggle_viewed(1);
        assert_eq!(v.rows.len(), 2, "two titles");
        assert_eq!(v.viewed_label().as_deref(), Some("1/2 viewed"));
        v.toggle_viewed(1);
        v.toggle_collapsed(0);
        assert_eq!(v.rows.len(), all);
        assert_eq!(v.info[1].first_row, 5);
    }

    #[test]
    fn a_re_diff_keeps_marks_of_unchanged_files_and_finds_what_changed() {
        let mut old = DiffView::new(PATCH.into());
        old.toggle_viewed(0);
        old.toggle_viewed(1);
        let changed = PATCH.replace("+note", "+note, reworded");
        let mut new = DiffView::new(changed);
        carry(&old, &mut new, None);
        assert_eq!(new.review.viewed, BTreeSet::from([0]));
        assert_eq!(new.review.since, Some(BTreeSet::from([(1, 0)])));
        assert!(new.toggle_since());
        assert!(
            new.rows
                .iter()
                .all(|r| r.file == 1 || r.kind == RowKind::File),
            "only b.md's hunk and the titles"
        );
        let mut mine = DiffView::new(PATCH.replace("+y", "+y2"));
        carry(&new, &mut mine, Some("a.py"));
        assert_eq!(mine.review.yours, BTreeSet::from([(0, 0)]));
    }
}
