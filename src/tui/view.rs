//! `view`: draws the model. A function of the model alone (no clock, no IO), so a `TestBackend`
//! buffer is a faithful, deterministic picture of a state.
//!
//! Invariants: only visible rows are turned into styled text; every string drawn came through
//! `sanitize` (at ingestion or here); the focused pane has the bright border.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui_textarea::TextArea;

use super::diffview::DiffMode;
use super::layout::{self, MIN_H, MIN_W, Panes};
use super::model::{Focus, Model, Overlay, RunState};
use super::steplog::{
    Entry, EntryKind, EntryStatus, detail_room, detail_row_count, detail_rows, fmt_duration,
};
use super::theme::Theme;
use super::{dialogs, diffpane, sanitize, sidebyside};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub fn draw(frame: &mut Frame, model: &Model) {
    let area = frame.area();
    let theme = Theme {
        no_color: model.no_color,
    };
    if layout::too_small(area.width, area.height) {
        let msg = vec![
            Line::from(format!(
                "Terminal too small: {}×{}",
                area.width, area.height
            )),
            Line::from(format!("needs at least {MIN_W}×{MIN_H}")),
        ];
        let y = area.height / 2;
        frame.render_widget(
            Paragraph::new(msg)
                .alignment(Alignment::Center)
                .style(theme.error()),
            Rect::new(
                area.x,
                area.y + y.saturating_sub(1),
                area.width,
                2.min(area.height),
            ),
        );
        return;
    }
    let files = model.diff.as_ref().map_or(0, |d| d.files.len());
    let p = layout::panes(area, files);
    header(frame, model, &theme, p.header);
    status_bar(frame, model, &theme, p.status, p.body.width);
    inputs(frame, model, &theme, &p);
    steps(frame, model, &theme, p.steps);
    diffpane::draw(frame, model, &theme, &p);
    match &model.overlay {
        Overlay::None => {}
        Overlay::Help { scroll } => dialogs::help(frame, &theme, area, *scroll),
        Overlay::Runs { runs, selected } => dialogs::runs(frame, &theme, area, runs, *selected),
        Overlay::Pr(d) => dialogs::pr(frame, model, &theme, area, d),
        Overlay::FollowUp(t) => dialogs::follow_up(frame, &theme, area, t),
        Overlay::ConfirmQuit { reason } => {
            dialogs::confirm_quit(frame, model, &theme, area, reason)
        }
    }
}

fn fmt_tokens(n: u64) -> String {
    if n >= 1000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}

fn header(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect) {
    let repo = if model.run_repo.is_empty() {
        super::model::field_text(&model.repo)
    } else {
        model.run_repo.clone()
    };
    let base = model
        .run_base
        .clone()
        .unwrap_or_else(|| super::model::field_text(&model.base));
    let mut left = vec![Span::styled(" tiny-backspace", theme.bold())];
    let repo_part =
        (!repo.trim().is_empty()).then(|| format!(" · {}", sanitize::one_line(repo.trim())));
    let base_part = (repo_part.is_some() && !base.trim().is_empty())
        .then(|| format!(" @ {}", sanitize::one_line(base.trim())));
    left.extend(
        repo_part
            .iter()
            .chain(base_part.iter())
            .map(|p| Span::raw(p.clone())),
    );
    let net = if model.info.sandbox == "none" {
        "host network"
    } else if model.info.network {
        "network on"
    } else {
        "no network"
    };
    let mut right = format!("{} · {}, {net}", model.info.model, model.info.sandbox);
    if model.info.tokens > 0 || model.run_started_ms.is_some() {
        right.push_str(&format!(" · {} tok", fmt_tokens(model.info.tokens)));
        if let Some(c) = model.info.cost_usd {
            right.push_str(&format!(" · ${c:.2}"));
        }
    }
    if let Some(ms) = model.elapsed_ms() {
        right.push_str(&format!(" · {}:{:02}", ms / 60_000, (ms / 1000) % 60));
    }
    right.push(' ');
    let left_w: usize = left.iter().map(|s| s.content.chars().count()).sum();
    if left_w + right.chars().count() > area.width as usize {
        // Narrow: keep what matters (replay or not, sandbox, tokens, cost, time).
        let short_model = model
            .info
            .model
            .split(" · ")
            .next()
            .unwrap_or("")
            .to_string();
        let mut short = format!(" {short_model} · {}", model.info.sandbox);
        if !model.info.network || model.info.sandbox == "none" {
            short.push_str(if model.info.sandbox == "none" {
                " host-net"
            } else {
                " no-net"
            });
        }
        if let Some(rest) = right
            .split_once(&format!(", {net}"))
            .map(|(_, r)| r.to_string())
        {
            short.push_str(&rest);
        }
        right = short;
    }
    frame.render_widget(Block::default().style(theme.header()), area);
    let rw = (right.chars().count() as u16).min(area.width);
    // What does not fit goes whole: first `@ base`, then the repository is cut with `…`.
    let room = area.width.saturating_sub(rw + 1) as usize;
    let width = |l: &[Span]| l.iter().map(|s| s.content.chars().count()).sum::<usize>();
    if width(&left) > room && left.len() == 3 {
        left.pop();
    }
    if width(&left) > room && left.len() == 2 {
        let keep = room.saturating_sub(width(&left[..1]) + 1);
        let cut: String = left[1].content.chars().take(keep).collect();
        left[1] = Span::raw(format!("{cut}…"));
    }
    let left_area = Rect::new(area.x, area.y, area.width.saturating_sub(rw + 1), 1);
    frame.render_widget(Paragraph::new(Line::from(left)), left_area);
    frame.render_widget(
        Paragraph::new(right).alignment(Alignment::Right),
        Rect::new(area.right() - rw, area.y, rw, 1),
    );
}

/// The key hints for the focused pane; in a diff, `v` names the layout it switches to (and is left
/// out where the pane is too narrow for side-by-side). It goes just before `? keys`, among the
/// first hints dropped when the line is too short.
pub fn keys_for(model: &Model, diff_width: u16) -> String {
    let keys = pane_keys(model);
    let toggle = match &model.diff {
        Some(d) if model.focus == Focus::Diff && !d.is_empty() => match d.mode {
            DiffMode::SideBySide => Some("v unified"),
            DiffMode::Unified if sidebyside::fits(diff_width) => Some("v side-by-side"),
            DiffMode::Unified => None,
        },
        _ => None,
    };
    let Some(t) = toggle else {
        return keys.to_string();
    };
    let at = keys
        .find(" · ? keys")
        .or_else(|| keys.rfind(" · "))
        .unwrap_or(keys.len());
    format!("{} · {t}{}", &keys[..at], &keys[at..])
}

fn pane_keys(model: &Model) -> &'static str {
    if model.state.is_busy() {
        return match model.focus {
            Focus::Diff => "j/k scroll · n/p hunk · ]/[ file · Ctrl+C cancel · Tab pane · ? keys",
            _ if model.focus.is_text() => "Ctrl+C cancel · Tab pane · F1 keys",
            _ => "j/k select · Enter expand · G follow · Ctrl+C cancel · Tab pane · ? keys",
        };
    }
    if model.pr_url.is_some() && !model.focus.is_text() {
        return "o open PR · y copy URL · e edit & re-run · r runs · ? keys · q quit";
    }
    match model.focus {
        Focus::Repo | Focus::Base => {
            "Ctrl+S run · Enter/Tab next · Ctrl+E $EDITOR · Ctrl+R runs · F1 keys · Ctrl+C quit"
        }
        Focus::Prompt => {
            "Ctrl+S run · Enter newline · Ctrl+E $EDITOR · Tab pane · F1 keys · Ctrl+C quit"
        }
        Focus::Steps => {
            "j/k select · Enter expand · G follow · Tab pane · r runs · ? keys · q quit"
        }
        Focus::Diff if model.state == RunState::Review => {
            "j/k scroll · n/p hunk · ]/[ file · space in/out · c create PR · e edit & re-run · f follow-up · ? keys"
        }
        Focus::Diff => {
            "j/k scroll · n/p hunk · ]/[ file · e edit & re-run · r runs · ? keys · q quit"
        }
    }
}

fn status_bar(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect, diff_width: u16) {
    let failed = matches!(model.state, RunState::Failed | RunState::Cancelled);
    let done = matches!(model.state, RunState::Done { .. });
    let label = match (&model.viewing, &model.state) {
        (Some(_), s) => format!(" past run · {} ", s.label()),
        (None, s) => format!(" {} ", s.label()),
    };
    let mut spans = vec![
        Span::styled(label, theme.badge_for(failed, done)),
        Span::raw(" "),
    ];
    match &model.notice {
        Some(n) => spans.push(Span::styled(sanitize::one_line(n), theme.bold())),
        None => {
            // Drop middle hints until the line fits, keeping the last one (`? keys`).
            let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
            let keys = keys_for(model, diff_width);
            let mut parts: Vec<&str> = keys.split(" · ").collect();
            while parts.len() > 2
                && used + parts.iter().map(|p| p.chars().count() + 3).sum::<usize>()
                    > area.width as usize + 3
            {
                parts.remove(parts.len() - 2);
            }
            for (i, part) in parts.into_iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" · ", theme.dim()));
                }
                match part.rsplit_once(' ') {
                    Some((k, what)) if !k.contains(' ') || k.starts_with("Enter") => {
                        spans.push(Span::styled(k.to_string(), theme.key()));
                        spans.push(Span::raw(format!(" {what}")));
                    }
                    _ => spans.push(Span::raw(part.to_string())),
                }
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn field_block<'a>(
    title: &'a str,
    focused: bool,
    error: Option<&'a str>,
    theme: &Theme,
) -> Block<'a> {
    let mut b = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(format!(" {title} "), theme.title(focused)));
    if let Some(e) = error {
        b = b.title_bottom(Line::from(Span::styled(
            format!(" ✗ {} ", sanitize::one_line(e)),
            theme.error(),
        )));
    }
    b
}

/// Draws a text field; the cursor is only shown when focused.
pub fn draw_textarea(
    frame: &mut Frame,
    t: &TextArea<'static>,
    focused: bool,
    theme: &Theme,
    area: Rect,
) {
    let mut t = t.clone();
    t.set_placeholder_style(theme.dim());
    if !focused {
        t.set_cursor_style(Style::default());
    }
    frame.render_widget(&t, area);
}

fn inputs(frame: &mut Frame, model: &Model, theme: &Theme, p: &Panes) {
    let fields: [(&str, &TextArea<'static>, Focus, Option<&str>, Rect); 3] = [
        (
            "Repository",
            &model.repo,
            Focus::Repo,
            model.errors.repo.as_deref(),
            p.repo,
        ),
        (
            "Base",
            &model.base,
            Focus::Base,
            model.errors.base.as_deref(),
            p.base,
        ),
        (
            "Prompt",
            &model.prompt,
            Focus::Prompt,
            model.errors.prompt.as_deref(),
            p.prompt,
        ),
    ];
    for (title, t, focus, error, area) in fields {
        let focused = model.focus == focus && matches!(model.overlay, Overlay::None);
        let block = field_block(title, model.focus == focus, error, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        draw_textarea(frame, t, focused, theme, inner);
    }
}

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
    }
    out
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
    let title = fit_title(e, title, width.saturating_sub(3 + fold.chars().count()));
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

fn steps(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect) {
    let focused = model.focus == Focus::Steps;
    let h = area.height.saturating_sub(2) as usize;
    let w = area.width.saturating_sub(2) as usize;
    let pin = pinned(model, h, w);
    let mut title = " Steps ".to_string();
    if model.log.dropped > 0 {
        title = format!(" Steps · {} earlier not shown ", model.log.dropped);
    }
    if let Some((_, skip, rows)) = pin {
        let last = (skip + h.saturating_sub(1)).min(rows);
        title.push_str(&format!("· lines {}–{last} of {rows} ", skip + 1));
    } else if model.log.selected.is_some() {
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
        frame.render_widget(Paragraph::new(lines), inner);
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
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A centered rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2));
    let h = h.min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn dialog_block<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(
            format!(" {title} "),
            theme.title(true).add_modifier(Modifier::BOLD),
        ))
}

pub fn clear(frame: &mut Frame, area: Rect) {
    frame.render_widget(Clear, area);
}
