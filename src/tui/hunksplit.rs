//! `s` on a context line splits its hunk there: `space` on a line of either part then takes
//! that part in or out of the PR on its own (`s` on the same line joins them again).
//!
//! Invariants: a split is only a way of choosing lines — a part taken out is the
//! `excluded_lines` of its `+`/`-` lines, so the approved patch is exactly what line-level
//! selection gives (its filter and `tests/patch_lines.rs`' property cover it); lines that cannot
//! go alone (a `-` before `\ No newline`) stay with the hunk; a split is never at a hunk's first
//! line (there would be nothing before it). Splits are kept by position: a re-diff drops them
//! (the line choices they made are carried by content).

use std::ops::Range;

use super::diffview::DiffView;
use crate::diff::line_selectable;

impl DiffView {
    /// Whether hunk `(file, hunk)` is split anywhere.
    pub fn is_split(&self, file: usize, hunk: usize) -> bool {
        self.review
            .splits
            .range((file, hunk, 0)..=(file, hunk, usize::MAX))
            .next()
            .is_some()
    }

    /// Splits hunk `(file, hunk)` before body line `line`, or joins it there again; `Some(true)`
    /// when it is now split there, `None` when it cannot be (not a context line inside the hunk).
    pub fn toggle_split(&mut self, file: usize, hunk: usize, line: usize) -> Option<bool> {
        let h = self.files.get(file)?.hunks.get(hunk)?;
        if line == 0 || h.lines.get(line).and_then(|l| l.first()) != Some(&b' ') {
            return None;
        }
        let key = (file, hunk, line);
        if self.review.splits.remove(&key) {
            return Some(false);
        }
        self.review.splits.insert(key);
        Some(true)
    }

    /// The body lines of the part of hunk `(file, hunk)` that `line` is in.
    pub fn part_of(&self, file: usize, hunk: usize, line: usize) -> Range<usize> {
        let n = self
            .files
            .get(file)
            .and_then(|f| f.hunks.get(hunk))
            .map_or(0, |h| h.lines.len());
        let start = self
            .review
            .splits
            .range((file, hunk, 0)..=(file, hunk, line))
            .next_back()
            .map_or(0, |&(_, _, l)| l);
        let end = self
            .review
            .splits
            .range((file, hunk, line + 1)..=(file, hunk, usize::MAX))
            .next()
            .map_or(n, |&(_, _, l)| l);
        start..end
    }

    /// `space` on a line of a split hunk: its part in or out. A hunk that is out comes in with
    /// only this part; a part all in goes out, else all of it comes in.
    pub fn toggle_part(&mut self, file: usize, hunk: usize, line: usize) {
        let Some(h) = self.files.get(file).and_then(|f| f.hunks.get(hunk)) else {
            return;
        };
        let part = self.part_of(file, hunk, line);
        let selectable: Vec<usize> = (0..h.lines.len())
            .filter(|&l| line_selectable(h, l))
            .collect();
        if !self.hunk_included(file, hunk) {
            // Bring the hunk in (the file too, its other hunks staying out), with only `part`.
            if self.excluded_files.remove(&file) {
                let n = self.files[file].hunks.len();
                self.excluded_hunks
                    .extend((0..n).filter(|&o| o != hunk).map(|o| (file, o)));
            }
            self.excluded_hunks.remove(&(file, hunk));
            for &l in &selectable {
                if part.contains(&l) {
                    self.excluded_lines.remove(&(file, hunk, l));
                } else {
                    self.excluded_lines.insert((file, hunk, l));
                }
            }
            return;
        }
        let mine: Vec<usize> = selectable
            .into_iter()
            .filter(|l| part.contains(l))
            .collect();
        let all_in = mine
            .iter()
            .all(|&l| !self.excluded_lines.contains(&(file, hunk, l)));
        for l in mine {
            if all_in {
                self.excluded_lines.insert((file, hunk, l));
            } else {
                self.excluded_lines.remove(&(file, hunk, l));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,5 +1,5 @@\n top\n-one\n+uno\n mid\n-two\n+dos\n end\n";

    #[test]
    fn a_split_hunk_goes_in_and_out_by_part() {
        let mut d = DiffView::new(PATCH.into());
        assert_eq!(d.toggle_split(0, 0, 1), None, "not a context line");
        assert_eq!(d.toggle_split(0, 0, 0), None, "the first line");
        assert_eq!(d.toggle_split(0, 0, 3), Some(true));
        assert_eq!((d.part_of(0, 0, 1), d.part_of(0, 0, 3)), (0..3, 3..7));
        // The second part out: the first change stays.
        d.toggle_part(0, 0, 5);
        let sel = d.selection();
        assert_eq!(sel.excluded_lines.len(), 2);
        let out =
            String::from_utf8_lossy(&crate::diff::filter(PATCH.as_bytes(), &sel)).into_owned();
        assert!(
            out.contains("+uno") && out.contains(" two") && !out.contains("dos"),
            "{out}"
        );
        // And back in.
        d.toggle_part(0, 0, 6);
        assert!(d.selection().is_everything());
        // The whole hunk out, then one part back: only it comes in.
        d.excluded_hunks.insert((0, 0));
        d.toggle_part(0, 0, 1);
        let sel = d.selection();
        assert!(sel.excluded_hunks.is_empty());
        let out =
            String::from_utf8_lossy(&crate::diff::filter(PATCH.as_bytes(), &sel)).into_owned();
        assert!(out.contains("+uno") && !out.contains("+dos"), "{out}");
        // Joined again: the choice stays as lines.
        assert_eq!(d.toggle_split(0, 0, 3), Some(false));
        assert!(!d.is_split(0, 0));
        assert_eq!(d.part_of(0, 0, 5), 0..7);
    }
}
