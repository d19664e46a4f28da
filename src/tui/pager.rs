//! The full-screen pager for one step's output (`v` in the steps pane): read a long test log to
//! its end, search it (`/`, `n`/`N`), page it (`PgUp`/`PgDn`, `g`/`G`), and go back (`q`/`Esc`).
//!
//! Invariants: pure like `update` (keys change the [`Pager`], nothing else); the text is a copy
//! of the step's sanitized output taken when it opens; a frame builds only the lines it shows,
//! and a query runs once over the lines when entered (its matches kept as sorted line indices,
//! reusing `search::Pattern`), so paging a 5,000-line output costs the same as a short one.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::model::Model;
use super::search::{self, Pattern};
use super::steplog::{Entry, EntryKind};
use super::theme::Theme;

#[derive(Debug, Clone)]
pub struct Pager {
    pub title: String,
    pub lines: Vec<String>,
    /// The first line on screen.
    pub top: usize,
    pub query: String,
    /// The search prompt is open.
    pub editing: bool,
    pub pattern: Option<Pattern>,
    /// Sorted indices of the lines that match.
    pub matches: Vec<usize>,
    /// Index into `matches` of the last match jumped to.
    pub current: Option<usize>,
}

impl Pager {
    /// A pager over `e`'s whole output (`None` for a step without any).
    pub fn of(e: &Entry) -> Option<Pager> {
        let skip = usize::from(e.kind == EntryKind::Model);
        let lines: Vec<String> = e.detail.lines().skip(skip).map(str::to_string).collect();
        if lines.is_empty() {
            return None;
        }
        let title = if e.kind == EntryKind::Model {
            e.detail.lines().next().unwrap_or("").to_string()
        } else {
            e.title.clone()
        };
        Some(Pager {
            title,
            lines,
            top: 0,
            query: String::new(),
            editing: false,
            pattern: None,
            matches: Vec::new(),
            current: None,
        })
    }

    /// Rows of text a screen `height` tall shows (a title row and a status row around them).
    pub fn body_rows(height: u16) -> usize {
        height.saturating_sub(2).max(1) as usize
    }

    fn max_top(&self, rows: usize) -> usize {
        self.lines.len().saturating_sub(rows)
    }

    fn scroll_by(&mut self, delta: isize, rows: usize) {
        self.top = self
            .top
            .saturating_add_signed(delta)
            .min(self.max_top(rows));
    }

    fn jump(&mut self, dir: search::Dir, rows: usize) {
        if self.matches.is_empty() {
            self.current = None;
            return;
        }
        let n = self.matches.len();
        // The line the cursor would be on: the current match, or the top line.
        let at = self
            .current
            .and_then(|i| self.matches.get(i).copied())
            .unwrap_or(self.top);
        let i = match dir {
            search::Dir::AtOrAfter => self.matches.partition_point(|&m| m < self.top) % n,
            search::Dir::Next => self.matches.partition_point(|&m| m <= at) % n,
            search::Dir::Prev => (self.matches.partition_point(|&m| m < at) + n - 1) % n,
        };
        self.current = Some(i);
        // The match a third of the way down, so what leads to it shows too.
        let line = self.matches[i];
        self.top = line.saturating_sub(rows / 3).min(self.max_top(rows));
    }

    fn status(&self) -> String {
        if self.editing {
            return format!("/{}", self.query);
        }
        match (&self.pattern, self.current) {
            (Some(_), Some(i)) => format!(
                "match {} of {} for “{}” · n/N next/previous · Esc ends the search",
                i + 1,
                self.matches.len(),
                self.query
            ),
            (Some(_), None) => format!("no match for “{}” · / searches again", self.query),
            (None, _) => "j/k line · PgUp/PgDn page · g/G start/end · / search · q back".into(),
        }
    }
}

/// `v` in the steps pane: the selected step (the last one when following) full screen.
pub fn open(model: &mut Model) {
    let idx = model
        .log
        .selected
        .unwrap_or(model.log.entries.len().saturating_sub(1));
    match model.log.entries.get(idx).and_then(Pager::of) {
        Some(p) => model.pager = Some(Box::new(p)),
        None => model.notice = Some("this step has no output to show".into()),
    }
}

/// A key while the pager is open. Returns `false` for a key it leaves to the caller (`Ctrl+C`,
/// after closing the pager).
pub fn key(model: &mut Model, k: KeyEvent) -> bool {
    let rows = Pager::body_rows(model.height);
    let Some(p) = model.pager.as_mut() else {
        return false;
    };
    if super::update::ctrl(&k, 'c') {
        model.pager = None;
        return false;
    }
    if p.editing {
        match k.code {
            KeyCode::Esc => {
                p.editing = false;
                p.query.clear();
            }
            KeyCode::Backspace if p.query.pop().is_none() => p.editing = false,
            KeyCode::Enter => {
                p.editing = false;
                p.pattern = Pattern::new(&p.query);
                p.matches = match &p.pattern {
                    Some(pat) => (0..p.lines.len())
                        .filter(|&i| pat.is_match(&p.lines[i]))
                        .collect(),
                    None => Vec::new(),
                };
                p.current = None;
                if p.pattern.is_some() {
                    p.jump(search::Dir::AtOrAfter, rows);
                }
            }
            KeyCode::Char(c) => p.query.push(c),
            _ => {}
        }
        return true;
    }
    let page = rows.max(1) as isize;
    match k.code {
        KeyCode::Char('q') => model.pager = None,
        KeyCode::Esc if p.pattern.is_some() => {
            p.pattern = None;
            p.matches.clear();
            p.current = None;
        }
        KeyCode::Esc => model.pager = None,
        KeyCode::Down | KeyCode::Char('j') => p.scroll_by(1, rows),
        KeyCode::Up | KeyCode::Char('k') => p.scroll_by(-1, rows),
        KeyCode::PageDown | KeyCode::Char(' ') => p.scroll_by(page, rows),
        KeyCode::PageUp => p.scroll_by(-page, rows),
        KeyCode::Home | KeyCode::Char('g') => p.top = 0,
        KeyCode::End | KeyCode::Char('G') => p.top = p.max_top(rows),
        KeyCode::Char('/') => {
            p.editing = true;
            p.query.clear();
        }
        KeyCode::Char('n') if p.pattern.is_some() => p.jump(search::Dir::Next, rows),
        KeyCode::Char('N') if p.pattern.is_some() => p.jump(search::Dir::Prev, rows),
        _ => {}
    }
    true
}

/// The wheel over the pager scrolls it.
pub fn wheel(model: &mut Model, delta: isize) {
    let rows = Pager::body_rows(model.height);
    if let Some(p) = model.pager.as_mut() {
        p.scroll_by(delta, rows);
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Draws the pager over the whole screen.
pub fn draw(frame: &mut Frame, p: &Pager, theme: &Theme, area: Rect) {
    frame.render_widget(Clear, area);
    let rows = Pager::body_rows(area.height);
    let width = area.width as usize;
    let last = (p.top + rows).min(p.lines.len());
    let title = format!(
        " {} · lines {}–{last} of {} ",
        super::sanitize::one_line(&p.title),
        (p.top + 1).min(last),
        p.lines.len()
    );
    frame.render_widget(
        Paragraph::new(Span::styled(cut(&title, width), theme.header())),
        Rect::new(area.x, area.y, area.width, 1),
    );
    let marks = p.pattern.as_ref().filter(|_| !p.editing);
    let body: Vec<Line> = p.lines[p.top.min(p.lines.len())..last]
        .iter()
        .map(|l| {
            let line = Line::from(cut(l, width));
            match marks {
                Some(pat) => search::mark_line(line, pat, theme.search_match()),
                None => line,
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(body),
        Rect::new(area.x, area.y + 1, area.width, rows as u16),
    );
    let status = Rect::new(area.x, area.bottom().saturating_sub(1), area.width, 1);
    let mut spans = vec![
        Span::styled(" pager ", theme.badge_for(false, false)),
        Span::raw(" "),
        Span::styled(cut(&p.status(), width.saturating_sub(8)), theme.bold()),
    ];
    if p.editing {
        spans.push(Span::styled("▏", theme.key()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::tui::steplog::StepLog;

    fn pager(lines: usize) -> Pager {
        let mut log = StepLog::default();
        let output: String = (1..=lines).map(|i| format!("line {i}\n")).collect();
        log.ingest(
            &Event::ToolBash {
                command: "seq".into(),
                output,
                exit_code: 0,
                run_id: None,
                duration_ms: 5,
                terminated: None,
            },
            0,
        );
        Pager::of(&log.entries[0]).expect("output")
    }

    #[test]
    fn end_and_paging_stay_inside_the_text() {
        let mut p = pager(300);
        p.top = p.max_top(20);
        assert_eq!(p.top, 280);
        p.scroll_by(50, 20);
        assert_eq!(p.top, 280);
        p.scroll_by(-500, 20);
        assert_eq!(p.top, 0);
    }

    #[test]
    fn search_jumps_and_wraps() {
        let mut p = pager(300);
        p.pattern = Pattern::new("line 29");
        let pat = p.pattern.clone().unwrap();
        p.matches = (0..p.lines.len())
            .filter(|&i| pat.is_match(&p.lines[i]))
            .collect();
        assert_eq!(
            p.matches,
            vec![28, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298]
        );
        p.jump(search::Dir::AtOrAfter, 30);
        assert_eq!((p.current, p.top), (Some(0), 18));
        p.jump(search::Dir::Prev, 30);
        assert_eq!(p.current, Some(10), "wraps to the last match");
        assert_eq!(p.top, 270, "clamped at the end");
    }
}
