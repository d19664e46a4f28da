//! Keys and the mouse in the two read-only panes: the step log and the diff.
//!
//! Invariants: pure like `update`; geometry comes from `layout::panes`, the same function `view`
//! draws with, so a page, a wheel turn or a click always means what is on screen.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::diffview::DiffMode;
use super::layout;
use super::model::{Focus, Model, Overlay, RunState};
use super::sidebyside;
use super::steplog::detail_room;
use super::update::{diff_body, diff_height, sync_diff_mode};

/// `v`: side-by-side ↔ unified, remembered for the session; a narrow pane stays unified.
fn toggle_diff_mode(model: &mut Model) {
    let width = diff_body(model).width;
    if !sidebyside::fits(width) {
        model.notice = Some(format!(
            "side-by-side needs a {}-column diff pane (this one has {width})",
            sidebyside::MIN_WIDTH
        ));
        return;
    }
    model.side_by_side = !model.side_by_side;
    sync_diff_mode(model);
}

fn panes(model: &Model) -> layout::Panes {
    model.panes()
}

/// The steps pane's wrap width for details and the detail rows shown under a pinned title.
fn steps_geometry(model: &Model) -> (usize, usize) {
    let s = panes(model).steps;
    (
        detail_room(s.width.saturating_sub(2) as usize),
        s.height.saturating_sub(3) as usize,
    )
}

pub(super) fn mouse(model: &mut Model, m: MouseEvent) {
    // A dialog owns the input while it is open.
    if !matches!(model.overlay, Overlay::None) {
        return;
    }
    if model.pager.is_some() {
        match m.kind {
            MouseEventKind::ScrollDown => super::pager::wheel(model, 3),
            MouseEventKind::ScrollUp => super::pager::wheel(model, -3),
            _ => {}
        }
        return;
    }
    let p = panes(model);
    let at = Position::new(m.column, m.row);
    let delta: isize = match m.kind {
        MouseEventKind::ScrollDown => 3,
        MouseEventKind::ScrollUp => -3,
        MouseEventKind::Down(MouseButton::Left) => {
            click(model, &p, at);
            return;
        }
        _ => return,
    };
    if p.diff.contains(at) {
        let h = p.body.height as usize;
        if let Some(d) = model.diff.as_mut() {
            d.scroll_by(delta, h);
        }
    } else if p.steps.contains(at) {
        super::mouse::steps_wheel(model, p.steps, delta);
    }
}

/// A left click focuses the pane under it; in the diff it also moves the cursor to the file or
/// the row clicked.
fn click(model: &mut Model, p: &layout::Panes, at: Position) {
    let targets = [
        (p.repo, Focus::Repo),
        (p.base, Focus::Base),
        (p.prompt, Focus::Prompt),
        (p.steps, Focus::Steps),
        (p.diff, Focus::Diff),
    ];
    let Some(&(_, focus)) = targets.iter().find(|(r, _)| r.contains(at)) else {
        return;
    };
    model.focus = focus;
    if focus == Focus::Steps {
        return super::mouse::steps_click(model, p.steps, at.y);
    }
    if focus != Focus::Diff {
        return;
    }
    let h = p.body.height as usize;
    let Some(d) = model.diff.as_mut() else {
        return;
    };
    if p.files.contains(at) {
        model.focus = Focus::Files;
        let first = d.current_file().saturating_sub(p.files.height as usize - 1);
        let i = first + usize::from(at.y - p.files.y);
        if let Some(row) = d.info.get(i).map(|f| f.first_row) {
            d.cursor = row;
            d.scroll_into_view(h);
        }
    } else if p.body.contains(at) {
        let target = d.top + usize::from(at.y - p.body.y);
        let line = d.cursor_line() as isize;
        d.move_by(target as isize - line, h);
    }
}

pub(super) fn steps_key(model: &mut Model, k: KeyEvent) {
    if k.code == KeyCode::Char('v') {
        return super::pager::open(model);
    }
    if matches!(k.code, KeyCode::Char('t') | KeyCode::Esc) && super::hunkjump::back(model) {
        return;
    }
    let (room, visible) = steps_geometry(model);
    let page = visible.max(1) as isize;
    let log = &mut model.log;
    log.clamp_scroll(room, visible);
    match k.code {
        KeyCode::Up | KeyCode::Char('k') => log.up(),
        KeyCode::Down | KeyCode::Char('j') => log.down(room, visible),
        KeyCode::PageDown | KeyCode::Char(' ') => log.scroll_by(page, room, visible),
        KeyCode::PageUp => log.scroll_by(-page, room, visible),
        KeyCode::Enter => log.toggle_expand(),
        KeyCode::Home | KeyCode::Char('g') => {
            log.selected = Some(0);
            log.scroll = 0;
            log.view_top = None;
        }
        KeyCode::End | KeyCode::Char('G') => {
            log.selected = None;
            log.scroll = 0;
            log.view_top = None;
        }
        _ => {}
    }
}

pub(super) fn diff_key(model: &mut Model, k: KeyEvent) {
    if k.code == KeyCode::Char('v') {
        return toggle_diff_mode(model);
    }
    if k.code == KeyCode::Char('t') {
        return super::hunkjump::to_step(model);
    }
    let h = diff_height(model);
    let body_w = diff_body(model).width as usize;
    let Some(d) = model.diff.as_mut() else {
        return;
    };
    let page = (h / 2).max(1) as isize;
    let read_only = model.viewing.is_some() || model.state != RunState::Review;
    // Half the text's width per `h`/`l` press.
    let sideways = (body_w.saturating_sub(2 * d.num_width + 5) / 2).max(1);
    match k.code {
        KeyCode::Char('w') => {
            d.wrap = !d.wrap;
            d.hscroll = 0;
            if d.wrap && model.side_by_side && d.mode == DiffMode::SideBySide {
                model.notice =
                    Some("long lines wrap in the unified layout (w again goes back)".into());
            }
        }
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Right | KeyCode::Char('l') if d.wrap => {
            model.notice =
                Some("lines are wrapped: w turns wrapping off to scroll sideways".into());
        }
        KeyCode::Left | KeyCode::Char('h') => d.hscroll = d.hscroll.saturating_sub(sideways),
        KeyCode::Right | KeyCode::Char('l') => {
            let max = d.widest_on_screen(h).saturating_sub(sideways);
            d.hscroll = (d.hscroll + sideways).min(max.max(d.hscroll));
        }
        KeyCode::Down | KeyCode::Char('j') => d.move_by(1, h),
        KeyCode::Up | KeyCode::Char('k') => d.move_by(-1, h),
        KeyCode::PageDown => d.move_by(page * 2, h),
        KeyCode::PageUp => d.move_by(-page * 2, h),
        KeyCode::Char('d') if k.modifiers.contains(KeyModifiers::CONTROL) => d.move_by(page, h),
        KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => d.move_by(-page, h),
        KeyCode::Home | KeyCode::Char('g') => d.home(),
        KeyCode::End | KeyCode::Char('G') => d.end(h),
        KeyCode::Char('n') => d.next_hunk(h),
        KeyCode::Char('p') => d.prev_hunk(h),
        KeyCode::Char(']') => d.next_file(h),
        KeyCode::Char('[') => d.prev_file(h),
        KeyCode::Char(' ') => {
            if read_only {
                model.notice =
                    Some("the selection can be changed while the diff is in review".into());
            } else {
                d.toggle_at_cursor();
            }
        }
        _ => {}
    }
}
