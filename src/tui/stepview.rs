//! The step log pane: one line per step, expanded steps with their output below.
//!
//! Invariants: a function of the model like `view`; only the rows a pane can show are built
//! (an expanded step's output is wrapped lazily and skipped to its window), so a frame costs the
//! same whatever the size of the outputs in the log; a selected expanded step too long for the
//! pane is drawn from its title down, scrolled by `StepLog::scroll`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::model::{Focus, Model, RunState};
use super::search;
use super::steplog::{
    Entry, EntryKind, EntryStatus, detail_room, detail_row_count, detail_rows, fmt_duration,
};
use super::theme::Theme;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Which rows of an expanded entry to build: only what a pane of `h` rows can show, so a frame
/// costs the same whatever the size of the outputs in the log.
#[derive(Clone, Copy)]
enum Rows {
    /// The title and the first rows.
    Head(usize),
    /// The title (when it fits) and the last rows.
    Tail(usize),
}

fn entry_lines(
    e: &Entry,
    selected: bool,
    model: &Model,
    theme: &Theme,
    width: usize,
    rows: Rows,
) -> Vec<Line<'static>> {
    let mut out = vec![entry_title(e, selected, model, theme, width)];
    if e.expanded {
        let room = detail_room(width);
        let (skip, take) = match rows {
            Rows::Head(h) => (0, h),
            Rows::Tail(h) => (detail_row_count(e, room).saturating_sub(h), h),
        };
        out.extend(
            detail_rows(e, room)
                .skip(skip)
                .take(take)
                .map(|r| detail_line(e, r, theme)),
        );
    } else if e.call_id.is_some() {
        // A command running now shows the last lines of its output as they come.
        let room = detail_room(width);
        let n = live_tail_rows(e, room);
        let skip = detail_row_count(e, room).saturating_sub(n);
        out.extend(
            detail_rows(e, room)
                .skip(skip)
                .map(|r| detail_line(e, r, theme)),
        );
    }
    out
}

/// Rows of output a running, folded command shows under its title.
pub(super) const LIVE_TAIL: usize = 5;

/// How many rows of its output's end a folded step shows: [`LIVE_TAIL`] at most while its
/// command runs, none otherwise.
pub(super) fn live_tail_rows(e: &Entry, room: usize) -> usize {
    if e.call_id.is_none() || e.expanded || e.detail.is_empty() {
        return 0;
    }
    detail_row_count(e, room).min(LIVE_TAIL)
}

fn detail_line(e: &Entry, row: String, theme: &Theme) -> Line<'static> {
    let style = if e.kind == EntryKind::Model {
        theme.model_text()
    } else {
        theme.dim()
    };
    Line::from(Span::styled(format!("    {row}"), style))
}

fn entry_title(
    e: &Entry,
    selected: bool,
    model: &Model,
    theme: &Theme,
    width: usize,
) -> Line<'static> {
    let (icon, icon_style) = match (e.kind, e.status) {
        (EntryKind::Model, _) => ("◆", theme.model_text()),
        (_, EntryStatus::Running) => (
            SPINNER[(model.clock_ms / 100) as usize % SPINNER.len()],
            theme.running(),
        ),
        (_, EntryStatus::Ok) => ("✓", theme.ok()),
        (_, EntryStatus::Failed) => ("✗", theme.error()),
        (_, EntryStatus::Info) => ("●", theme.hunk()),
    };
    let marker = if selected { "▸" } else { " " };
    let mut title = match e.kind {
        EntryKind::Model => {
            let text = e.detail.trim();
            if e.streaming {
                // Show the newest words as they arrive.
                let last = text.lines().last().unwrap_or("");
                let room = width.saturating_sub(4);
                let n = last.chars().count();
                if n > room {
                    format!("…{}", last.chars().skip(n + 1 - room).collect::<String>())
                } else {
                    last.to_string()
                }
            } else {
                let first = text.lines().next().unwrap_or("");
                if text.lines().nth(1).is_some() && !e.expanded {
                    format!("{first} …")
                } else {
                    first.to_string()
                }
            }
        }
        _ => e.title.clone(),
    };
    if let (EntryKind::Stage(s), Some(d)) = (e.kind, e.duration_ms) {
        let rest = title.strip_prefix(s.as_str()).unwrap_or("").to_string();
        title = format!("{} · {}{rest}", s.as_str(), fmt_duration(d));
    }
    let expandable = !e.detail.is_empty()
        && !matches!(e.kind, EntryKind::Stage(_) | EntryKind::Model)
        || (e.kind == EntryKind::Model && e.detail.lines().nth(1).is_some());
    let title_style = match e.kind {
        EntryKind::Model => theme.model_text(),
        EntryKind::Error | EntryKind::ToolError => theme.error(),
        _ => Style::default(),
    };
    let sel = if selected {
        theme.cursor()
    } else {
        Style::default()
    };
    let fold = if expandable && !e.expanded {
        " ▹"
    } else {
        ""
    };
    // Tokens and cost when the title keeps room to be read; tokens alone, or nothing, when not.
    // A replay reports no tokens: nothing to show then.
    let room = width.saturating_sub(3 + fold.chars().count());
    let usage = e
        .usage
        .filter(|u| u.tokens > 0)
        .map(|u| {
            let full = format!(" · {}", u.label());
            let short = format!(" · {}", u.label().split(" · ").next().unwrap_or(""));
            [full, short]
                .into_iter()
                .find(|s| room.saturating_sub(s.chars().count()) >= 24)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let title = fit_title(
        e,
        title,
        width.saturating_sub(3 + fold.chars().count() + usage.chars().count()),
    );
    Line::from(vec![
        Span::styled(marker.to_string(), sel),
        Span::styled(format!("{icon} "), icon_style),
        Span::styled(
            title,
            title_style.patch(if selected {
                theme.bold()
            } else {
                Style::default()
            }),
        ),
        Span::styled(usage, theme.dim()),
        Span::styled(fold.to_string(), theme.dim()),
    ])
}

/// A step title cut to `room` columns with `…`; a command's result (`→ exit 1 · 2.0s`) or an
/// edit's counts stay visible and the command or path is cut instead.
fn fit_title(e: &Entry, title: String, room: usize) -> String {
    let n = title.chars().count();
    if n <= room || room < 2 {
        return title;
    }
    let tail_at = match e.kind {
        EntryKind::Bash | EntryKind::Search | EntryKind::List => title.rfind(" → "),
        EntryKind::Edit => title.rfind(" (+"),
        _ => None,
    };
    if let Some(at) = tail_at {
        let tail = &title[at..];
        let tail_n = tail.chars().count();
        if tail_n + 2 <= room {
            let head: String = title[..at].chars().take(room - tail_n - 1).collect();
            return format!("{head}…{tail}");
        }
    }
    let mut cut: String = title.chars().take(room - 1).collect();
    cut.push('…');
    cut
}

/// The selected entry when it is expanded and too long to show whole next to its neighbours: it
/// is drawn from its title down, scrolled by the log's `scroll` (rows skipped, rows in all).
fn pinned(model: &Model, h: usize, w: usize) -> Option<(usize, usize, usize)> {
    let a = model.log.selected?;
    let e = model.log.entries.get(a)?;
    if !e.expanded {
        return None;
    }
    let rows = detail_row_count(e, detail_room(w));
    if rows < h.div_ceil(2) {
        return None;
    }
    let visible = h.saturating_sub(1);
    Some((a, model.log.scroll.min(rows.saturating_sub(visible)), rows))
}

pub fn draw(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect) {
    let focused = model.focus == Focus::Steps;
    let h = area.height.saturating_sub(2) as usize;
    let w = area.width.saturating_sub(2) as usize;
    let pin = pinned(model, h, w).filter(|_| model.log.view_top.is_none());
    let mut title = " Steps ".to_string();
    if model.log.dropped > 0 {
        title = format!(" Steps · {} earlier not shown ", model.log.dropped);
    }
    if let Some((_, skip, rows)) = pin {
        let last = (skip + h.saturating_sub(1)).min(rows);
        title.push_str(&format!("· lines {}–{last} of {rows} ", skip + 1));
    } else if model.log.selected.is_some() || model.log.view_top.is_some() {
        title.push_str("· scrolled (G follows) ");
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(title, theme.title(focused)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let entries = &model.log.entries;
    if entries.is_empty() {
        let hint = if model.state == RunState::Idle {
            "Each step of the run appears here."
        } else {
            "Starting…"
        };
        frame.render_widget(Paragraph::new(Span::styled(hint, theme.dim())), inner);
        return;
    }
    if let Some(top) = model.log.view_top {
        let lines = from_row(model, theme, w, h, top);
        frame.render_widget(Paragraph::new(marked(model, lines, theme)), inner);
        return;
    }
    if let Some((a, skip, _)) = pin {
        let e = &entries[a];
        let mut lines = vec![entry_title(e, true, model, theme, w)];
        lines.extend(
            detail_rows(e, detail_room(w))
                .skip(skip)
                .take(h.saturating_sub(1))
                .map(|r| detail_line(e, r, theme)),
        );
        let mut j = a + 1;
        while lines.len() < h && j < entries.len() {
            lines.extend(entry_lines(
                &entries[j],
                false,
                model,
                theme,
                w,
                Rows::Head(h),
            ));
            j += 1;
        }
        lines.truncate(h);
        frame.render_widget(Paragraph::new(marked(model, lines, theme)), inner);
        return;
    }
    let sel = model.log.selected;
    let anchor = sel.unwrap_or(entries.len() - 1).min(entries.len() - 1);
    // Lines before (and including) the anchor, newest last.
    let mut before: Vec<Line> = Vec::new();
    let budget_before = if sel.is_some() { h.div_ceil(2) } else { h };
    let mut i = anchor as isize;
    while i >= 0 && before.len() < budget_before {
        let e = &entries[i as usize];
        let rows = if i as usize == anchor {
            Rows::Head(h)
        } else {
            Rows::Tail(h)
        };
        let mut ls = entry_lines(e, sel == Some(i as usize), model, theme, w, rows);
        if i as usize == anchor && ls.len() > h {
            ls.truncate(h);
        }
        ls.reverse();
        before.extend(ls);
        i -= 1;
    }
    before.reverse();
    if before.len() > budget_before {
        before.drain(..before.len() - budget_before);
    }
    let mut lines = before;
    let mut j = anchor + 1;
    while lines.len() < h && j < entries.len() {
        lines.extend(entry_lines(
            &entries[j],
            false,
            model,
            theme,
            w,
            Rows::Head(h),
        ));
        j += 1;
    }
    // Fill remaining room with older entries.
    while lines.len() < h && i >= 0 {
        let mut ls = entry_lines(&entries[i as usize], false, model, theme, w, Rows::Tail(h));
        while let Some(l) = ls.pop() {
            if lines.len() >= h {
                break;
            }
            lines.insert(0, l);
        }
        i -= 1;
    }
    lines.truncate(h);
    frame.render_widget(Paragraph::new(marked(model, lines, theme)), inner);
}

/// The pane's lines from `top` rows below the first step's title (the wheel moved the view):
/// each step as it is drawn following the selection, its first rows when expanded.
fn from_row(model: &Model, theme: &Theme, w: usize, h: usize, top: usize) -> Vec<Line<'static>> {
    let room = detail_room(w);
    let mut at = 0;
    let mut lines = Vec::with_capacity(h);
    for (i, e) in model.log.entries.iter().enumerate() {
        let rows = super::mouse::height(e, h, room);
        if at + rows > top {
            let selected = model.log.selected == Some(i);
            let ls = entry_lines(e, selected, model, theme, w, Rows::Head(h));
            lines.extend(ls.into_iter().skip(top.saturating_sub(at)));
            if lines.len() >= h {
                break;
            }
        }
        at += rows;
    }
    lines.truncate(h);
    lines
}

/// The lines with the steps search's matches marked (only the lines drawn are looked at).
fn marked<'a>(model: &Model, lines: Vec<Line<'a>>, theme: &Theme) -> Vec<Line<'a>> {
    match model.search.as_ref() {
        Some(s) if s.pane == Focus::Steps && !s.editing => match &s.pattern {
            Some(p) => lines
                .into_iter()
                .map(|l| search::mark_line(l, p, theme.search_match()))
                .collect(),
            None => lines,
        },
        _ => lines,
    }
}
