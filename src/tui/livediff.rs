//! The live diff in the TUI: while the agent works, the diff pane shows `Live Diff` events (the
//! change so far), read-only, until the final `Diff` replaces it.
//!
//! Invariants: a live diff is never approvable — the selection keys already refuse outside
//! review, and the run reaches review only through the final `Diff`; a review's selection is
//! never lost to a live diff: during a follow-up the reviewed diff is kept aside and the final
//! diff carries its choices, as without a live diff; the cursor and the reading options (wrap,
//! the search's marks) stay where they were across updates; the focus is left where the user
//! put it.

use super::diffview::DiffView;
use super::model::{Model, RunState};

/// The diff pane's title (`width` columns); a live diff's says so.
pub fn title(model: &Model, d: &DiffView, width: usize) -> String {
    const LIVE: &str = " Live diff (so far) ";
    if !model.live_diff {
        return super::diffpane::title(d, width);
    }
    let extra = LIVE.chars().count() - " Diff ".chars().count();
    super::diffpane::title(d, width.saturating_sub(extra)).replacen(" Diff ", LIVE, 1)
}

impl Model {
    /// A `Live Diff`: shown while a run works (ignored otherwise: a late one after the final
    /// diff must not replace it).
    pub(super) fn live_diff(&mut self, patch: &str) {
        if !matches!(self.state, RunState::Running(_)) {
            return;
        }
        let mut view = DiffView::new(patch.to_string());
        match self.diff.take() {
            Some(old) if self.live_diff => {
                view.wrap = old.wrap;
                view.marks = old.marks;
                view.cursor = old.cursor.min(view.rows.len().saturating_sub(1));
                view.top = old.top.min(view.cursor);
            }
            Some(reviewed) => {
                view.wrap = reviewed.wrap;
                view.marks = reviewed.marks.clone();
                self.before_live = Some(reviewed);
            }
            None => {}
        }
        self.diff = Some(view);
        self.live_diff = true;
    }

    /// The diff a new final diff follows (whose choices it carries): the one under review
    /// before a live diff replaced it, or the one shown if it is not a live one.
    pub(super) fn reviewed_before_live(&mut self) -> Option<DiffView> {
        let was_live = std::mem::take(&mut self.live_diff);
        let shown = self.diff.take();
        self.before_live.take().or(shown.filter(|_| !was_live))
    }
}
