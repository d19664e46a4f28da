//! Review comments (`C` on a hunk or a line, `L` lists them): written in a small dialog, kept
//! with the run (`review.json` in its folder, with the viewed marks), and sent together as one
//! follow-up that quotes each with `path:line` and the line's text.
//!
//! Invariants: a comment holds its own anchor (path, line number, side, the line's text), so it
//! stays meaningful after a re-diff moves or drops its hunk; the follow-up text is built only
//! from comments not sent yet, and sending marks them sent (they stay listed).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui_textarea::TextArea;
use serde::{Deserialize, Serialize};

use super::model::{Focus, Model, Overlay, RunState, field_text, text_field};
use super::sanitize;
use super::theme::Theme;
use super::update::{Action, ctrl};
use super::view::{centered, clear, dialog_block, draw_textarea};
use crate::diff::rows::{NONE, RowKind};
use crate::event::Stage;
use crate::pipeline::Command;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub path: String,
    /// The line's number on its side (`None`: a file without lines, e.g. binary).
    pub line: Option<u32>,
    /// The line was removed: `line` counts in the old file.
    #[serde(default)]
    pub removed: bool,
    /// The text of the line commented on (a hunk comment: its first changed line).
    pub quote: String,
    /// A hunk comment (`C` on a hunk header) rather than a line comment.
    #[serde(default)]
    pub hunk: bool,
    pub text: String,
    /// Already sent to the agent in a follow-up.
    #[serde(default)]
    pub sent: bool,
}

impl Comment {
    /// `path:12`, `path:12 (removed line)`.
    pub fn anchor(&self) -> String {
        match (self.line, self.removed) {
            (Some(n), false) => format!("{}:{n}", self.path),
            (Some(n), true) => format!("{}:{n} (removed line, old numbering)", self.path),
            (None, _) => self.path.clone(),
        }
    }
}

/// The comment being written: where, and the text so far.
#[derive(Debug, Clone)]
pub struct Draft {
    pub anchor: Comment,
    pub text: TextArea<'static>,
}

/// `C`: the dialog for a comment on the hunk or line under the cursor.
pub(super) fn open_dialog(model: &mut Model) {
    if model.state != RunState::Review || model.viewing.is_some() {
        model.notice = Some("comments are written while a diff is in review".into());
        return;
    }
    let Some(anchor) = anchor_at_cursor(model) else {
        model.notice = Some("C comments on a hunk or a line: move the cursor onto one".into());
        return;
    };
    model.overlay = Overlay::Comment(Box::new(Draft {
        anchor,
        text: text_field("", "Your comment (Ctrl+S saves, Esc cancels)", true),
    }));
}

fn anchor_at_cursor(model: &Model) -> Option<Comment> {
    let d = model.diff.as_ref()?;
    let row = *d.rows.get(d.cursor)?;
    let f = d.files.get(row.file as usize)?;
    if row.hunk == NONE {
        return None;
    }
    // A hunk header: its first changed line stands for it.
    let (line_row, hunk) = if row.kind == RowKind::Hunk {
        let first = d.rows[d.cursor..]
            .iter()
            .take_while(|r| r.hunk == row.hunk && r.file == row.file)
            .find(|r| matches!(r.kind, RowKind::Added | RowKind::Removed))
            .copied()?;
        (first, true)
    } else {
        (row, false)
    };
    let removed = line_row.kind == RowKind::Removed;
    let no = if removed {
        line_row.old_no
    } else {
        line_row.new_no
    };
    let text = d.line_text(&line_row);
    Some(Comment {
        path: f.path.clone(),
        line: (no != NONE).then_some(no),
        removed,
        quote: text.get(1..).unwrap_or("").to_string(),
        hunk,
        text: String::new(),
        sent: false,
    })
}

/// `L`: the list of comments.
pub(super) fn open_list(model: &mut Model) {
    if model.comments.is_empty() {
        model.notice =
            Some("no comments yet: C comments on the hunk or line under the cursor".into());
        return;
    }
    model.overlay = Overlay::Comments { selected: 0 };
}

/// The follow-up text for the comments not sent yet.
pub fn follow_up_text(comments: &[Comment]) -> Option<String> {
    let pending: Vec<&Comment> = comments.iter().filter(|c| !c.sent).collect();
    if pending.is_empty() {
        return None;
    }
    let mut s = String::from(
        "Review comments on your change. Address each one; the quoted line is the one it is about.\n",
    );
    for (i, c) in pending.iter().enumerate() {
        let what = if c.hunk { "hunk at " } else { "" };
        s.push_str(&format!("\n{}. {what}{}\n", i + 1, c.anchor()));
        s.push_str(&format!("   > {}\n", c.quote));
        for l in c.text.lines() {
            s.push_str(&format!("   {l}\n"));
        }
    }
    Some(s)
}

/// Pasted text goes into the comment being written (other dialogs take none).
pub(super) fn paste(overlay: &mut Overlay, text: &str) {
    if let Overlay::Comment(d) = overlay {
        d.text.insert_str(text);
    }
}

/// Keys of the comment dialog.
pub(super) fn draft_key(
    model: &mut Model,
    mut d: Box<Draft>,
    k: KeyEvent,
) -> (Option<Overlay>, Vec<Action>) {
    if k.code == KeyCode::Esc {
        return (None, vec![]);
    }
    if ctrl(&k, 's') {
        let text = field_text(&d.text).trim().to_string();
        if text.is_empty() {
            model.notice = Some("type the comment first (Esc cancels)".into());
            return (Some(Overlay::Comment(d)), vec![]);
        }
        let mut c = d.anchor.clone();
        c.text = super::sanitize::clean(&text).into_owned();
        model.notice = Some(format!(
            "comment on {} saved · L lists the comments, Ctrl+S there sends them",
            sanitize::one_line(&c.anchor())
        ));
        model.comments.push(c);
        return (None, vec![]);
    }
    d.text.input(k);
    (Some(Overlay::Comment(d)), vec![])
}

/// Keys of the comment list: `j`/`k`, `D`/Delete removes, `Ctrl+S` sends the unsent ones as one
/// follow-up, `Esc` closes.
pub(super) fn list_key(
    model: &mut Model,
    mut selected: usize,
    k: KeyEvent,
) -> (Option<Overlay>, Vec<Action>) {
    let n = model.comments.len();
    match k.code {
        KeyCode::Esc | KeyCode::Char('q' | 'L') => return (None, vec![]),
        KeyCode::Down | KeyCode::Char('j') => selected = (selected + 1).min(n.saturating_sub(1)),
        KeyCode::Up | KeyCode::Char('k') => selected = selected.saturating_sub(1),
        KeyCode::Delete | KeyCode::Char('D') if n > 0 => {
            model.comments.remove(selected.min(n - 1));
            if model.comments.is_empty() {
                return (None, vec![]);
            }
            selected = selected.min(model.comments.len() - 1);
        }
        _ if ctrl(&k, 's') => return send(model, selected),
        _ => {}
    }
    (Some(Overlay::Comments { selected }), vec![])
}

fn send(model: &mut Model, selected: usize) -> (Option<Overlay>, Vec<Action>) {
    let back = Some(Overlay::Comments { selected });
    if model.state != RunState::Review || model.reopened {
        model.notice = Some(
            "comments go to the agent as a follow-up, which needs a live review (this run's agent \
             ended)"
                .into(),
        );
        return (back, vec![]);
    }
    let Some(text) = follow_up_text(&model.comments) else {
        model.notice = Some("every comment was sent already".into());
        return (back, vec![]);
    };
    for c in &mut model.comments {
        c.sent = true;
    }
    model.followups.push(text.clone());
    model.publish_note = None;
    model.state = RunState::Running(Stage::Agent);
    model.resume_clock();
    model.focus = Focus::Steps;
    model.log.selected = None;
    (None, vec![Action::Send(Command::FollowUp(text))])
}

pub(super) fn draw_draft(frame: &mut Frame, theme: &Theme, area: Rect, d: &Draft) {
    let r = centered(area, 80, 10);
    clear(frame, r);
    let block = dialog_block("Comment · Ctrl+S saves · Esc cancels", theme);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let head = Rect::new(inner.x, inner.y, inner.width, 2.min(inner.height));
    let quote = format!("> {}", sanitize::one_line(&d.anchor.quote));
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                sanitize::one_line(&d.anchor.anchor()),
                theme.bold(),
            )),
            Line::from(Span::styled(quote, theme.dim())),
        ]),
        head,
    );
    let body = Rect::new(
        inner.x,
        inner.y + head.height,
        inner.width,
        inner.height.saturating_sub(head.height),
    );
    draw_textarea(frame, &d.text, true, theme, body);
}

pub(super) fn draw_list(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect, sel: usize) {
    let r = centered(area, 90, 20);
    clear(frame, r);
    let block = dialog_block(
        "Comments · Ctrl+S sends the unsent ones as a follow-up · D deletes · Esc closes",
        theme,
    );
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let mut lines = Vec::new();
    for (i, c) in model.comments.iter().enumerate() {
        let pointer = if i == sel { "▸ " } else { "  " };
        let state = if c.sent { "  (sent)" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(pointer, theme.cursor()),
            Span::styled(sanitize::one_line(&c.anchor()), theme.bold()),
            Span::styled(state, theme.dim()),
        ]));
        lines.push(Line::from(Span::styled(
            format!("    > {}", sanitize::one_line(&c.quote)),
            theme.dim(),
        )));
        for l in c.text.lines() {
            lines.push(Line::raw(format!("    {}", sanitize::one_line(l))));
        }
    }
    // Keep the selected comment on screen.
    let before: usize = model
        .comments
        .iter()
        .take(sel)
        .map(|c| 2 + c.text.lines().count())
        .sum();
    let skip = before.saturating_sub(inner.height.saturating_sub(4) as usize) as u16;
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((skip, 0)),
        inner,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_follow_up_quotes_each_unsent_comment_with_path_and_line() {
        let c = |line, text: &str, sent| Comment {
            path: "calc/__init__.py".into(),
            line: Some(line),
            removed: false,
            quote: "    return a / b".into(),
            hunk: false,
            text: text.into(),
            sent,
        };
        let all = vec![c(3, "old", true), c(12, "check b first\nplease", false)];
        let t = follow_up_text(&all).unwrap();
        assert!(
            t.contains(
                "1. calc/__init__.py:12\n   >     return a / b\n   check b first\n   please\n"
            ),
            "{t}"
        );
        assert!(!t.contains("old"));
        assert_eq!(follow_up_text(&all[..1]), None);
    }
}
