//! `/` search in the focused read-only pane (the diff or the steps): the one-line prompt, smart
//! case matching, the list of matches and `n`/`N` between them, and marking matches on screen.
//!
//! Invariants: a query is run over the pane's text once, when it is entered (`Enter`), and its
//! matches are kept as sorted row (or step) indices, so moving between matches is a binary search
//! and a frame marks only the rows it draws — nothing per frame grows with the diff. A diff
//! search is redone only when the diff it ran over was replaced (its row count changed); the
//! step log grows while a run goes on, so its matches are recomputed on each `n`/`N`.

use std::ops::Range;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::diffview::DiffView;
use super::model::{Focus, Model};
use super::steplog::StepLog;
use crate::diff::rows::RowKind;

/// A query ready to match: smart case (case-insensitive unless it has an uppercase letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    needle: Vec<char>,
    fold: bool,
}

fn lower(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

impl Pattern {
    /// `None` for an empty query.
    pub fn new(query: &str) -> Option<Pattern> {
        if query.is_empty() {
            return None;
        }
        let fold = !query.chars().any(char::is_uppercase);
        let needle = query
            .chars()
            .map(|c| if fold { lower(c) } else { c })
            .collect();
        Some(Pattern { needle, fold })
    }

    fn eq(&self, hay: char, n: char) -> bool {
        if self.fold { lower(hay) == n } else { hay == n }
    }

    /// Byte ranges of the non-overlapping matches in `hay`.
    pub fn ranges(&self, hay: &str) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let chars: Vec<(usize, char)> = hay.char_indices().collect();
        let n = self.needle.len();
        let mut i = 0;
        while i + n <= chars.len() {
            if (0..n).all(|k| self.eq(chars[i + k].1, self.needle[k])) {
                let end = chars.get(i + n).map_or(hay.len(), |c| c.0);
                out.push(chars[i].0..end);
                i += n;
            } else {
                i += 1;
            }
        }
        out
    }

    /// Whether `hay` contains a match (no allocation on the common path).
    pub fn is_match(&self, hay: &str) -> bool {
        let Some(&first) = self.needle.first() else {
            return false;
        };
        for (at, c) in hay.char_indices() {
            if self.eq(c, first) {
                let mut rest = hay[at..].chars().skip(1);
                if self.needle[1..]
                    .iter()
                    .all(|&n| rest.next().is_some_and(|h| self.eq(h, n)))
                {
                    return true;
                }
            }
        }
        false
    }
}

/// The search of one pane.
#[derive(Debug, Clone)]
pub struct Search {
    /// The pane searched ([`Focus::Diff`] or [`Focus::Steps`]).
    pub pane: Focus,
    pub query: String,
    /// The prompt is open (typing the query).
    pub editing: bool,
    pub pattern: Option<Pattern>,
    /// Sorted diff row or step indices that match.
    pub matches: Vec<usize>,
    /// Index into `matches` of the last match jumped to.
    pub current: Option<usize>,
    /// Rows in the diff the matches were computed over (a replaced diff is searched again).
    rows_searched: usize,
}

impl Search {
    /// The status line text while this search is on.
    pub fn status(&self) -> String {
        if self.editing {
            return format!("/{}", self.query);
        }
        match self.current {
            Some(i) if !self.matches.is_empty() => format!(
                "match {} of {} for “{}” · n/N next/previous · Esc ends the search",
                i + 1,
                self.matches.len(),
                self.query
            ),
            _ => format!("no match for “{}” · / searches again", self.query),
        }
    }
}

/// The diff rows whose text contains a match: file paths, hunk sections and line bodies (the
/// `+`/`-` sign and the line numbers are not searched).
pub fn diff_matches(d: &DiffView, p: &Pattern) -> Vec<usize> {
    d.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| match r.kind {
            RowKind::File => d.files.get(r.file as usize).is_some_and(|f| {
                p.is_match(&f.path) || f.old_path.as_deref().is_some_and(|o| p.is_match(o))
            }),
            RowKind::Note => false,
            RowKind::Hunk => d
                .files
                .get(r.file as usize)
                .and_then(|f| f.hunks.get(r.hunk as usize))
                .is_some_and(|h| p.is_match(&h.section)),
            _ => p.is_match(d.line_text(r).get(1..).unwrap_or("")),
        })
        .map(|(i, _)| i)
        .collect()
}

/// The steps whose title or text contains a match.
pub fn step_matches(log: &StepLog, p: &Pattern) -> Vec<usize> {
    log.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| p.is_match(&e.title) || p.is_match(&e.detail))
        .map(|(i, _)| i)
        .collect()
}

/// `/`: opens the prompt for the focused pane (a search already on is replaced).
pub fn open(model: &mut Model) {
    model.search = Some(Search {
        pane: model.focus,
        query: String::new(),
        editing: true,
        pattern: None,
        matches: Vec::new(),
        current: None,
        rows_searched: 0,
    });
    set_marks(model);
}

/// Ends the search and takes its marks off the screen.
pub fn close(model: &mut Model) {
    model.search = None;
    set_marks(model);
}

/// The diff draws its marks from its own copy of the pattern (the side-by-side and unified
/// drawers see only the [`DiffView`]).
fn set_marks(model: &mut Model) {
    let pat = model
        .search
        .as_ref()
        .filter(|s| s.pane == Focus::Diff && !s.editing)
        .and_then(|s| s.pattern.clone());
    if let Some(d) = model.diff.as_mut() {
        d.marks = pat;
    }
}

/// A key while the prompt is open: text edits it, `Enter` runs it, `Esc` cancels.
pub fn prompt_key(model: &mut Model, k: KeyEvent, diff_height: usize) {
    let Some(s) = model.search.as_mut() else {
        return;
    };
    match k.code {
        KeyCode::Esc => close(model),
        KeyCode::Backspace if s.query.pop().is_none() => close(model),
        KeyCode::Enter => {
            s.editing = false;
            s.pattern = Pattern::new(&s.query);
            if s.pattern.is_none() {
                return close(model);
            }
            s.rows_searched = usize::MAX;
            step(model, Dir::AtOrAfter, diff_height);
        }
        KeyCode::Char(c) => s.query.push(c),
        _ => {}
    }
}

/// Recomputes the matches when the text searched has changed.
fn refresh(model: &mut Model) {
    let Some(s) = model.search.as_mut() else {
        return;
    };
    let Some(p) = s.pattern.as_ref() else {
        return;
    };
    match s.pane {
        Focus::Diff => {
            let Some(d) = model.diff.as_ref() else {
                s.matches.clear();
                return;
            };
            if s.rows_searched != d.rows.len() {
                s.matches = diff_matches(d, p);
                s.rows_searched = d.rows.len();
                s.current = None;
            }
        }
        _ => s.matches = step_matches(&model.log, p),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    AtOrAfter,
    Next,
    Prev,
}

/// Moves the focused pane's cursor to a match (wrapping around at the ends).
pub fn step(model: &mut Model, dir: Dir, diff_height: usize) {
    refresh(model);
    let Some(s) = model.search.as_mut() else {
        return;
    };
    if s.matches.is_empty() {
        s.current = None;
        return;
    }
    let cursor = match s.pane {
        Focus::Diff => model.diff.as_ref().map_or(0, |d| d.cursor),
        _ => model
            .log
            .selected
            .unwrap_or(model.log.entries.len().saturating_sub(1)),
    };
    let n = s.matches.len();
    let i = match dir {
        Dir::AtOrAfter => s.matches.partition_point(|&m| m < cursor) % n,
        Dir::Next => s.matches.partition_point(|&m| m <= cursor) % n,
        Dir::Prev => (s.matches.partition_point(|&m| m < cursor) + n - 1) % n,
    };
    s.current = Some(i);
    let target = s.matches[i];
    match s.pane {
        Focus::Diff => {
            if let Some(d) = model.diff.as_mut() {
                d.jump(target, diff_height);
            }
        }
        _ => {
            model.log.scroll = 0;
            model.log.selected = Some(target);
        }
    }
    set_marks(model);
}

/// Whether `model`'s search applies to `pane` and is past its prompt (so `n`/`N` and `Esc`
/// belong to it).
pub fn active_in(model: &Model, pane: Focus) -> bool {
    model
        .search
        .as_ref()
        .is_some_and(|s| s.pane == pane && !s.editing)
}

/// Splits the spans of `spans` at the matches of `p` in their joined text and gives the matched
/// parts `style` (on top of their own), so a match across two styled parts is still marked.
pub fn mark<'a>(spans: Vec<Span<'a>>, p: &Pattern, style: Style) -> Vec<Span<'a>> {
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    let ranges = p.ranges(&text);
    if ranges.is_empty() {
        return spans;
    }
    let mut out = Vec::with_capacity(spans.len() + 2 * ranges.len());
    let mut pos = 0;
    for span in spans {
        let len = span.content.len();
        let (start, end) = (pos, pos + len);
        pos = end;
        let mut cuts = vec![start, end];
        for r in &ranges {
            for c in [r.start, r.end] {
                if c > start && c < end {
                    cuts.push(c);
                }
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let part = &span.content[a - start..b - start];
            let hit = ranges.iter().any(|r| r.start <= a && a < r.end);
            let st = if hit {
                span.style.patch(style)
            } else {
                span.style
            };
            out.push(Span::styled(part.to_string(), st));
        }
    }
    out
}

/// [`mark`] over a whole line.
pub fn mark_line<'a>(line: Line<'a>, p: &Pattern, style: Style) -> Line<'a> {
    let Line {
        spans,
        style: ls,
        alignment,
    } = line;
    let mut l = Line::from(mark(spans, p, style)).style(ls);
    l.alignment = alignment;
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_case() {
        let p = Pattern::new("foo").unwrap();
        assert!(p.is_match("a FoO b"));
        assert_eq!(p.ranges("foo FOO"), vec![0..3, 4..7]);
        let p = Pattern::new("Foo").unwrap();
        assert!(!p.is_match("foo") && p.is_match("xFoo"));
        assert!(Pattern::new("").is_none());
        let p = Pattern::new("é").unwrap();
        assert_eq!(p.ranges("aÉb"), vec![1..3]);
    }

    #[test]
    fn mark_splits_across_spans() {
        let spans = vec![Span::raw("ab"), Span::raw("cd")];
        let out = mark(spans, &Pattern::new("bc").unwrap(), Style::default().bold());
        let texts: Vec<&str> = out.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(texts, vec!["a", "b", "c", "d"]);
        assert!(
            out[1]
                .style
                .add_modifier
                .contains(ratatui::style::Modifier::BOLD)
        );
        assert!(
            !out[0]
                .style
                .add_modifier
                .contains(ratatui::style::Modifier::BOLD)
        );
    }
}
