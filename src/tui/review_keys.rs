//! The review keys added to the diff pane and the file list: `E` edit the file in `$EDITOR`,
//! `C` comment on a hunk or line, `L` the comment list, `d` only the changes since the last
//! review, `s` one line out of the PR, `x`/`m` collapse / mark viewed; and what a new diff does
//! to these marks.
//!
//! Invariants: pure like `update` (the editor runs in the app loop, through an
//! [`Action::EditFile`]); keys that change the work tree or the follow-up need a live review (not
//! a past or reopened run); every other key falls through to the diff pane's own keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::diffview::DiffView;
use super::filelist;
use super::model::{Model, RunState};
use super::pane_keys;
use super::steplog::{Entry, EntryKind, EntryStatus};
use super::update::{Action, diff_height};
use crate::diff::rows::RowKind;
use crate::event::Stage;
use crate::pipeline::Command;

/// Keys of the focused diff pane.
pub(super) fn diff_key(model: &mut Model, k: KeyEvent) -> Vec<Action> {
    if let Some(actions) = review_key(model, k) {
        return actions;
    }
    if !filelist::file_marks_key(model, k) {
        pane_keys::diff_key(model, k);
    }
    vec![]
}

/// Keys of the focused file list.
pub(super) fn files_key(model: &mut Model, k: KeyEvent) -> Vec<Action> {
    if let Some(actions) = review_key(model, k) {
        return actions;
    }
    filelist::key(model, k);
    vec![]
}

/// Whether the review is live: a pipeline waits at the gate for this diff.
fn live_review(model: &Model) -> Result<(), &'static str> {
    if model.state != RunState::Review || model.viewing.is_some() {
        return Err("works while a diff is in review");
    }
    if model.reopened {
        return Err("this run's workspace ended with its process (e runs the prompt again)");
    }
    Ok(())
}

fn review_key(model: &mut Model, k: KeyEvent) -> Option<Vec<Action>> {
    // Plain letters only: Ctrl+D / Ctrl+U page the diff.
    if k.modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    match k.code {
        KeyCode::Char('E') => Some(edit_file(model)),
        KeyCode::Char('s') => {
            toggle_line(model);
            Some(vec![])
        }
        KeyCode::Char('C') => {
            super::comments::open_dialog(model);
            Some(vec![])
        }
        KeyCode::Char('L') => {
            super::comments::open_list(model);
            Some(vec![])
        }
        KeyCode::Char('d') => {
            let h = diff_height(model);
            let Some(d) = model.diff.as_mut() else {
                return Some(vec![]);
            };
            if d.toggle_since() {
                d.scroll_into_view(h);
                if super::search::active_in(model, super::model::Focus::Diff) {
                    super::search::close(model);
                }
                let only = model.diff.as_ref().is_some_and(|d| d.review.only_since);
                model.notice = Some(if only {
                    "only what the last follow-up changed · d shows everything".into()
                } else {
                    "the whole diff · d shows only what the last follow-up changed".into()
                });
            } else {
                model.notice =
                    Some("d shows what a follow-up changed: there was no follow-up yet".into());
            }
            Some(vec![])
        }
        _ => None,
    }
}

/// `s`: the `+`/`-` line under the cursor out of the PR (its hunk stays in), or back in; on a
/// context line, splits the hunk there (or joins it).
fn toggle_line(model: &mut Model) {
    if model.state != RunState::Review || model.viewing.is_some() {
        model.notice = Some("the selection can be changed while the diff is in review".into());
        return;
    }
    let Some(d) = model.diff.as_mut() else {
        return;
    };
    let Some(row) = d.rows.get(d.cursor).copied() else {
        return;
    };
    let (f, h, l) = (row.file as usize, row.hunk as usize, row.line as usize);
    let why = match row.kind {
        RowKind::Added | RowKind::Removed => {
            let file = &d.files[f];
            if !d.hunk_included(f, h) {
                Some("this hunk is out of the PR: space brings it in, then s leaves lines out")
            } else if file.is_deleted() {
                Some("a deleted file goes whole: space leaves its hunk out")
            } else if !crate::diff::line_selectable(&file.hunks[h], l) {
                Some("this line ends the old file without a newline: it goes with its hunk")
            } else {
                None
            }
        }
        RowKind::Context if !d.files[f].is_deleted() => {
            let split = d.toggle_split(f, h, l);
            model.notice = Some(match split {
                Some(true) => "hunk split here: space on a line of either part takes that part in or out (s here joins them)",
                Some(false) => "hunk joined again (the lines left out stay out)",
                None => "s on a context line inside a hunk splits it there",
            }.into());
            return;
        }
        _ => Some(
            "s leaves the + or − line under the cursor out of the PR (and back in), or splits \
             the hunk at a context line",
        ),
    };
    if let Some(why) = why {
        model.notice = Some(why.into());
        return;
    }
    if !d.excluded_lines.remove(&(f, h, l)) {
        d.excluded_lines.insert((f, h, l));
    }
}

/// `E`: the file under the cursor, in the editor (the app checks the path and runs it).
fn edit_file(model: &mut Model) -> Vec<Action> {
    if let Err(why) = live_review(model) {
        model.notice = Some(format!("E {why}"));
        return vec![];
    }
    let Some(d) = model.diff.as_ref().filter(|d| !d.is_empty()) else {
        return vec![];
    };
    let f = &d.files[d.current_file()];
    if f.is_deleted() || f.binary {
        model.notice =
            Some("E edits text files the change keeps (this one is deleted or binary)".into());
        return vec![];
    }
    vec![Action::EditFile(f.path.clone())]
}

/// Back from the editor: the pipeline computes the diff again, and the next diff is marked as
/// the reviewer's edit.
pub(super) fn file_edited(model: &mut Model, rel: String, error: Option<String>) -> Vec<Action> {
    if let Some(e) = error {
        model.notice = Some(format!("E: {e}"));
        return vec![];
    }
    model.user_edit = Some(rel.clone());
    // Busy until the pipeline is back in review with the new diff.
    model.state = RunState::Running(Stage::Diff);
    vec![Action::Send(Command::Rediff(format!(
        "you edited {rel}; computing the diff again"
    )))]
}

/// A new diff replaced `old` (a follow-up or the reviewer's edit): marks carried over, and a
/// step "You edited PATH" when it was the reviewer's.
pub(super) fn new_diff(model: &mut Model, old: &DiffView, new: &mut DiffView) {
    let edited = model.user_edit.take();
    filelist::carry(old, new, edited.as_deref());
    let Some(path) = edited else {
        return;
    };
    // Count what the edit changed: lines of its hunks the agent's diff of this file did not
    // have already (a hunk the edit merged into an agent's hunk holds both).
    let mut before: Vec<Vec<u8>> = old
        .files
        .iter()
        .filter(|f| f.path == path)
        .flat_map(|f| f.hunks.iter().flat_map(|h| h.lines.iter().cloned()))
        .filter(|l| matches!(l.first(), Some(b'+' | b'-')))
        .collect();
    let (mut added, mut removed) = (0u64, 0u64);
    let mut detail = String::new();
    for &(f, h) in &new.review.yours {
        if new.files[f].path != path {
            continue;
        }
        for l in &new.files[f].hunks[h].lines {
            if !matches!(l.first(), Some(b'+' | b'-')) {
                continue;
            }
            if let Some(i) = before.iter().position(|b| b == l) {
                before.swap_remove(i);
                continue;
            }
            if l.first() == Some(&b'+') {
                added += 1;
            } else {
                removed += 1;
            }
            detail.push_str(&String::from_utf8_lossy(l));
        }
    }
    let title = if added + removed == 0 {
        format!("You edited {path} (no change)")
    } else {
        format!("You edited {path} (+{added} −{removed})")
    };
    let now = model.clock_ms;
    model.log.entries.push_back(Entry {
        kind: EntryKind::Edit,
        title: super::sanitize::one_line(&title),
        detail,
        status: EntryStatus::Ok,
        started_ms: now,
        duration_ms: Some(0),
        expanded: false,
        streaming: false,
        call_id: None,
        usage: None,
        path: Some(path.to_string()),
    });
}
