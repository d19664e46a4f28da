//! `t` on a hunk: jump to the step that last changed that part of the file (the edit, the file
//! write, or failing those a command naming the file), with the model's words before it on
//! screen; `t` or `Esc` in the steps pane goes back to the hunk.
//!
//! Invariants: pure like `update`; only a key press does work, proportional to the hunk and the
//! step log (never per frame); the match is by content: the latest edit of the same path one
//! of whose added (or removed) lines is one of the hunk's is the one that touched that region;
//! without one, the latest edit of the path; without one, the latest command whose text names
//! the file. The way back restores the diff cursor exactly.

use super::diffview::DiffView;
use super::model::{Focus, Model};
use super::sanitize;
use super::steplog::{EntryKind, StepLog};
use crate::diff::rows::RowKind;

/// Where `t` came from, for the way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JumpBack {
    pub cursor: usize,
    pub top: usize,
}

fn norm(s: &str) -> String {
    sanitize::clean(s).trim().to_string()
}

/// The changed lines of the hunk under the cursor (`+`/`-` and text) and its file's path.
fn hunk_under_cursor(d: &DiffView) -> Option<(String, Vec<(char, String)>)> {
    let row = *d.rows.get(d.cursor)?;
    let file = d.files.get(row.file as usize)?;
    let in_hunk = |r: &crate::diff::rows::Row| r.file == row.file && r.hunk == row.hunk;
    let mut lines = Vec::new();
    if row.kind != RowKind::File && row.kind != RowKind::Note {
        let start = (0..=d.cursor)
            .rev()
            .take_while(|&i| in_hunk(&d.rows[i]))
            .last()
            .unwrap_or(d.cursor);
        for r in d.rows[start..].iter().take_while(|r| in_hunk(r)) {
            let sign = match r.kind {
                RowKind::Added => '+',
                RowKind::Removed => '-',
                _ => continue,
            };
            let text = d.line_text(r);
            let text = norm(text.get(1..).unwrap_or(""));
            if !text.is_empty() {
                lines.push((sign, text));
            }
        }
    }
    Some((file.path.clone(), lines))
}

/// The step that last touched `path` where `lines` are (see the module's invariants).
pub fn step_for(log: &StepLog, path: &str, lines: &[(char, String)]) -> Option<usize> {
    let edits = || {
        log.entries
            .iter()
            .enumerate()
            .rev()
            .filter(move |(_, e)| e.kind == EntryKind::Edit && e.path.as_deref() == Some(path))
    };
    let touched = edits().find(|(_, e)| {
        e.detail.lines().any(|l| {
            let mut cs = l.chars();
            let sign = cs.next();
            let text = cs.as_str().trim();
            !text.is_empty()
                && lines
                    .iter()
                    .any(|(s, t)| Some(*s) == sign && t.as_str() == text)
        })
    });
    if let Some((i, _)) = touched.or_else(|| edits().next()) {
        return Some(i);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    log.entries
        .iter()
        .rposition(|e| e.kind == EntryKind::Bash && e.title.contains(name))
}

/// `t` in the diff: selects the step that last changed the hunk under the cursor.
pub fn to_step(model: &mut Model) {
    let Some(d) = model.diff.as_ref() else {
        return;
    };
    let Some((path, lines)) = hunk_under_cursor(d) else {
        return;
    };
    let back = JumpBack {
        cursor: d.cursor,
        top: d.top,
    };
    let Some(i) = step_for(&model.log, &path, &lines) else {
        model.notice = Some(format!(
            "no step edited {} or ran a command naming it",
            sanitize::one_line(&path)
        ));
        return;
    };
    model.log.selected = Some(i);
    model.log.scroll = 0;
    model.log.view_top = None;
    model.focus = Focus::Steps;
    model.jump_back = Some(back);
    model.notice = Some("the step that last changed this hunk · t or Esc: back to it".into());
}

/// `t` or `Esc` in the steps pane after a jump: back to the hunk. Returns whether it went.
pub fn back(model: &mut Model) -> bool {
    let Some(b) = model.jump_back.take() else {
        return false;
    };
    if let Some(d) = model.diff.as_mut() {
        d.cursor = b.cursor.min(d.rows.len().saturating_sub(1));
        d.top = b.top;
    }
    model.focus = Focus::Diff;
    true
}
