//! The mouse in the steps pane: a click selects the step under it, the wheel scrolls the view
//! (not the selection); and the rows each step takes, shared with `stepview`'s drawing.
//!
//! Invariants: pure like `update`; the row arithmetic here is the one `stepview::draw` lays the
//! pane out with ([`window_start`] for the view that follows the selection, [`StepLog::view_top`]
//! once the wheel moved it), so a click means the step drawn where it lands. The work is
//! proportional to the number of steps (at most 2,000), never to the size of their output
//! beyond expanded ones.

use ratatui::layout::Rect;

use super::model::Model;
use super::steplog::{Entry, StepLog, detail_room, detail_row_count};
use super::stepview::live_tail_rows;

/// Rows `e` takes in a pane `h` rows tall whose details wrap at `room`.
pub(super) fn height(e: &Entry, h: usize, room: usize) -> usize {
    let below = if e.expanded {
        detail_row_count(e, room).min(h)
    } else {
        live_tail_rows(e, room)
    };
    1 + below
}

/// The selected step when it is drawn pinned (expanded and at least half the pane): its index.
pub(super) fn pinned(log: &StepLog, h: usize, room: usize) -> Option<usize> {
    let a = log.selected?;
    let e = log.entries.get(a)?;
    (e.expanded && detail_row_count(e, room) >= h.div_ceil(2)).then_some(a)
}

/// The first row drawn when the view follows the selection (or the tail), in rows counted from
/// the first step.
pub(super) fn window_start(log: &StepLog, h: usize, room: usize) -> usize {
    let n = log.entries.len();
    if n == 0 {
        return 0;
    }
    let anchor = log.selected.unwrap_or(n - 1).min(n - 1);
    let before: usize = log
        .entries
        .iter()
        .take(anchor)
        .map(|e| height(e, h, room))
        .sum();
    let end_a = before + height(&log.entries[anchor], h, room).min(h);
    let budget = if log.selected.is_some() {
        h.div_ceil(2)
    } else {
        h
    };
    let start = end_a - budget.min(end_a);
    let after: usize = log
        .entries
        .iter()
        .skip(anchor + 1)
        .map(|e| height(e, h, room))
        .sum();
    let shown = end_a - start + after;
    start.saturating_sub(h.saturating_sub(shown))
}

/// The step drawn at `row` rows from the top of the window starting at `start`.
fn entry_at(log: &StepLog, h: usize, room: usize, start: usize, row: usize) -> Option<usize> {
    let target = start + row;
    let mut at = 0;
    for (i, e) in log.entries.iter().enumerate() {
        let next = at + height(e, h, room);
        if target < next {
            return Some(i);
        }
        at = next;
    }
    None
}

fn total_rows(log: &StepLog, h: usize, room: usize) -> usize {
    log.entries.iter().map(|e| height(e, h, room)).sum()
}

/// The steps pane's inner height and wrap width.
fn geometry(steps: Rect) -> (usize, usize) {
    (
        steps.height.saturating_sub(2) as usize,
        detail_room(steps.width.saturating_sub(2) as usize),
    )
}

/// A click `row` rows below the top border of the steps pane: selects the step drawn there,
/// keeping the view where it is.
pub(super) fn steps_click(model: &mut Model, steps: Rect, row: u16) {
    let (h, room) = geometry(steps);
    let Some(y) = (row as usize).checked_sub(steps.y as usize + 1) else {
        return;
    };
    if y >= h {
        return;
    }
    let log = &model.log;
    let hit = match (log.view_top, pinned(log, h, room)) {
        (Some(top), _) => entry_at(log, h, room, top, y),
        (None, Some(a)) => {
            let rows = detail_row_count(&log.entries[a], room);
            let visible = h.saturating_sub(1);
            let scroll = log.scroll.min(rows.saturating_sub(visible));
            let shown = 1 + rows.saturating_sub(scroll).min(visible);
            if y < shown {
                Some(a)
            } else {
                let after: usize = log
                    .entries
                    .iter()
                    .take(a + 1)
                    .map(|e| height(e, h, room))
                    .sum();
                entry_at(log, h, room, after, y - shown)
            }
        }
        (None, None) => entry_at(log, h, room, window_start(log, h, room), y),
    };
    let Some(i) = hit else { return };
    if pinned(log, h, room) == Some(i) {
        return;
    }
    let keep = match log.view_top {
        Some(t) => t,
        None if pinned(log, h, room).is_some() => {
            // Leaving a pinned step: show the steps from the clicked one.
            log.entries.iter().take(i).map(|e| height(e, h, room)).sum()
        }
        None => window_start(log, h, room),
    };
    model.log.selected = Some(i);
    model.log.scroll = 0;
    model.log.view_top = Some(keep);
}

/// The wheel over the steps pane: scrolls a pinned step's output, or the list of steps; the
/// selection stays. Back at the end while following the tail, the view follows again.
pub(super) fn steps_wheel(model: &mut Model, steps: Rect, delta: isize) {
    let (h, room) = geometry(steps);
    let log = &mut model.log;
    if log.view_top.is_none() && pinned(log, h, room).is_some() {
        log.scroll_by(delta, room, h.saturating_sub(1));
        return;
    }
    let max = total_rows(log, h, room).saturating_sub(h);
    let from = log.view_top.unwrap_or_else(|| window_start(log, h, room));
    let to = from.saturating_add_signed(delta).min(max);
    log.view_top = if to == max && log.selected.is_none() {
        None
    } else {
        Some(to)
    };
}
