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
use super::theme::Theme;
use super::{dialogs, diffpane, sanitize, sidebyside, stepview};

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
    let p = layout::panes_zoomed(area, files, model.zoomed());
    header(frame, model, &theme, p.header);
    status_bar(frame, model, &theme, p.status, p.body.width);
    inputs(frame, model, &theme, &p);
    stepview::draw(frame, model, &theme, p.steps);
    diffpane::draw(frame, model, &theme, &p);
    if let Some(pager) = &model.pager {
        super::pager::draw(frame, pager, &theme, area);
    }
    match &model.overlay {
        Overlay::None => {}
        Overlay::Help { scroll } => dialogs::help(frame, &theme, area, *scroll),
        Overlay::Runs { runs, selected } => dialogs::runs(frame, &theme, area, runs, *selected),
        Overlay::Pr(d) => dialogs::pr(frame, model, &theme, area, d),
        Overlay::FollowUp(t) => dialogs::follow_up(frame, &theme, area, t),
        Overlay::ConfirmQuit { reason } => {
            dialogs::confirm_quit(frame, model, &theme, area, reason)
        }
        Overlay::Comment(d) => super::comments::draw_draft(frame, &theme, area, d),
        Overlay::Comments { selected } => {
            super::comments::draw_list(frame, model, &theme, area, *selected)
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

/// The sandbox label and whether the network is on, for the agent phase: the configured ones,
/// unless the run's setup named the agent's network (a setup may have had an allow-list the
/// agent does not).
fn header_network(model: &Model) -> (String, bool) {
    use crate::pipeline::NetworkMode;
    const PROXY: &str = " + allow-list proxy";
    let Some(mode) = model.agent_network else {
        return (model.info.sandbox.clone(), model.info.network);
    };
    let kind = model.info.sandbox.trim_end_matches(PROXY);
    match mode {
        NetworkMode::Allowlist if kind != "none" => (format!("{kind}{PROXY}"), false),
        _ => (kind.to_string(), mode == NetworkMode::On),
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
    let (sandbox, network) = header_network(model);
    let net = if sandbox == "none" {
        "host network"
    } else if network {
        "network on"
    } else {
        "no network"
    };
    let mut right = format!("{} · {sandbox}, {net}", model.info.model);
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
        let mut short = format!(" {short_model} · {sandbox}");
        if !network || sandbox == "none" {
            short.push_str(if sandbox == "none" {
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
            Focus::Diff | Focus::Files => {
                "j/k scroll · n/p hunk · ]/[ file · Ctrl+C cancel · Tab pane · ? keys"
            }
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
        Focus::Files if model.state == RunState::Review => {
            "j/k file · Enter to diff · space in/out · x collapse · m viewed · E edit · ? keys"
        }
        Focus::Files => "j/k file · Enter to diff · x collapse · m viewed · Tab pane · ? keys",
        Focus::Steps => {
            "j/k select · Enter expand · v full screen · G follow · Tab pane · r runs · ? keys · q quit"
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
    let search = model
        .search
        .as_ref()
        .filter(|s| s.editing || s.pane == model.focus);
    match (&model.notice, search) {
        (Some(n), _) => spans.push(Span::styled(sanitize::one_line(n), theme.bold())),
        (None, Some(s)) => {
            spans.push(Span::styled(sanitize::one_line(&s.status()), theme.bold()));
            if s.editing {
                spans.push(Span::styled("▏", theme.key()));
                spans.push(Span::styled("  Enter search · Esc cancel", theme.dim()));
            }
        }
        (None, None) => {
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
