//! Keys while a dialog is open: help, past runs, follow-up, quit confirmation and the PR dialog.
//!
//! Invariants: pure like `update`; a dialog owns the keyboard while open; the PR dialog sends
//! exactly one `Approve` (or, for a reopened review, one `PublishPast`) per confirmation, with the
//! selection as it is on screen and the text as it is in the dialog; what the user edited in the
//! dialog is kept when it closes.

use crossterm::event::{KeyCode, KeyEvent};

use super::ingest::remember_pr_text;
use super::model::{
    Field, Focus, Model, Overlay, PrDialog, PrField, PrPhase, RunState, field_text,
};
use super::update::{Action, ctrl, current_selection};
use crate::event::Stage;
use crate::pipeline::Command;

pub(super) fn overlay_key(
    model: &mut Model,
    overlay: Overlay,
    k: KeyEvent,
) -> (Option<Overlay>, Vec<Action>) {
    match overlay {
        Overlay::None => (None, vec![]),
        Overlay::Help { scroll } => {
            let max = super::dialogs::help_max_scroll(model.width, model.height);
            let scroll = match k.code {
                KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::F(1) => return (None, vec![]),
                KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => scroll + 10,
                KeyCode::PageUp => scroll.saturating_sub(10),
                KeyCode::End | KeyCode::Char('G') => max,
                KeyCode::Home | KeyCode::Char('g') => 0,
                _ => scroll,
            };
            (
                Some(Overlay::Help {
                    scroll: scroll.min(max),
                }),
                vec![],
            )
        }
        Overlay::ConfirmQuit { reason } => {
            if matches!(k.code, KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter) || ctrl(&k, 'c') {
                model.should_quit = true;
                (None, vec![Action::Quit])
            } else if matches!(k.code, KeyCode::Esc | KeyCode::Char('n' | 'N')) {
                (None, vec![])
            } else {
                (Some(Overlay::ConfirmQuit { reason }), vec![])
            }
        }
        Overlay::Runs { runs, mut selected } => {
            match k.code {
                KeyCode::Esc | KeyCode::Char('q') => return (None, vec![]),
                KeyCode::Down | KeyCode::Char('j') => {
                    selected = (selected + 1).min(runs.len().saturating_sub(1))
                }
                KeyCode::Up | KeyCode::Char('k') => selected = selected.saturating_sub(1),
                KeyCode::Enter => {
                    if model.state.is_busy() || (model.state == RunState::Review && !model.reopened)
                    {
                        model.notice = Some("finish or cancel the current run first".into());
                    } else if let Some(r) = runs.get(selected) {
                        return (None, vec![Action::OpenRun(r.id.clone())]);
                    }
                }
                _ => {}
            }
            (Some(Overlay::Runs { runs, selected }), vec![])
        }
        Overlay::FollowUp(mut t) => {
            if k.code == KeyCode::Esc {
                return (None, vec![]);
            }
            if ctrl(&k, 's') {
                let text = field_text(&t).trim().to_string();
                if text.is_empty() {
                    model.notice = Some("type the follow-up instruction first".into());
                    return (Some(Overlay::FollowUp(t)), vec![]);
                }
                model.followups.push(text.clone());
                model.publish_note = None;
                model.state = RunState::Running(Stage::Agent);
                model.resume_clock();
                model.focus = Focus::Steps;
                model.log.selected = None;
                return (None, vec![Action::Send(Command::FollowUp(text))]);
            }
            if ctrl(&k, 'e') {
                let text = field_text(&t);
                return (
                    Some(Overlay::FollowUp(t)),
                    vec![Action::Edit(Field::FollowUp, text)],
                );
            }
            t.input(k);
            (Some(Overlay::FollowUp(t)), vec![])
        }
        Overlay::Pr(d) => pr_key(model, d, k),
        Overlay::Comment(d) => super::comments::draft_key(model, d, k),
        Overlay::Comments { selected } => super::comments::list_key(model, selected, k),
    }
}

fn pr_key(model: &mut Model, mut d: Box<PrDialog>, k: KeyEvent) -> (Option<Overlay>, Vec<Action>) {
    match d.phase.clone() {
        PrPhase::Editing => {}
        PrPhase::Publishing => {
            // Publishing goes on in the background; Esc only hides the dialog, Ctrl+C cancels
            // the publish (the review stays).
            if k.code == KeyCode::Esc {
                return (None, vec![]);
            }
            if ctrl(&k, 'c') && model.state == RunState::Publishing {
                model.state = RunState::Cancelling;
                model.notice = Some("cancelling the publish… the review stays".into());
                return (Some(Overlay::Pr(d)), vec![Action::Send(Command::Cancel)]);
            }
            return (Some(Overlay::Pr(d)), vec![]);
        }
        PrPhase::Created { url, .. } => {
            return match k.code {
                KeyCode::Char('o') => (Some(Overlay::Pr(d)), vec![Action::OpenUrl(url)]),
                KeyCode::Char('y') => {
                    model.notice = Some("PR URL sent to the terminal's clipboard (OSC 52)".into());
                    (Some(Overlay::Pr(d)), vec![Action::Copy(url)])
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    model.published = Some(d);
                    (None, vec![])
                }
                _ => (Some(Overlay::Pr(d)), vec![]),
            };
        }
        PrPhase::NotPublished { branch, message } => {
            match k.code {
                KeyCode::Char('y') if branch.is_some() => {
                    model.notice = Some(
                        "request-pull summary sent to the terminal's clipboard (OSC 52)".into(),
                    );
                    return (Some(Overlay::Pr(d)), vec![Action::Copy(message)]);
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    model.published = Some(d);
                    return (None, vec![]);
                }
                KeyCode::Down | KeyCode::Char('j') => d.scroll = d.scroll.saturating_add(1),
                KeyCode::Up | KeyCode::Char('k') => d.scroll = d.scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => d.scroll = d.scroll.saturating_add(10),
                KeyCode::PageUp => d.scroll = d.scroll.saturating_sub(10),
                KeyCode::Home | KeyCode::Char('g') => d.scroll = 0,
                _ => {}
            }
            // No further than its last line at the top (the view stops earlier when it wraps).
            let lines = u16::try_from(message.lines().count()).unwrap_or(u16::MAX);
            d.scroll = d.scroll.min(lines.saturating_sub(1));
            return (Some(Overlay::Pr(d)), vec![]);
        }
    }
    if k.code == KeyCode::Esc {
        remember_pr_text(model, &d);
        return (None, vec![]);
    }
    if ctrl(&k, 's') {
        let title = field_text(&d.title).trim().to_string();
        if title.is_empty() {
            d.error = Some("the title is required".into());
            d.field = PrField::Title;
            return (Some(Overlay::Pr(d)), vec![]);
        }
        if model.state != RunState::Review {
            d.error = Some("the run is no longer waiting for review".into());
            return (Some(Overlay::Pr(d)), vec![]);
        }
        remember_pr_text(model, &d);
        d.error = None;
        d.phase = PrPhase::Publishing;
        model.publish_note = None;
        model.resume_clock();
        model.state = RunState::Publishing;
        let body = field_text(&d.body).trim().to_string();
        let body = Some(body).filter(|b| !b.is_empty());
        let selection = current_selection(model);
        // A reopened review has no pipeline: it is published from the run folder.
        let action = match (model.reopened, model.run_id.clone()) {
            (true, Some(run_id)) => Action::PublishPast {
                run_id,
                selection,
                title,
                body,
                draft: d.draft,
            },
            _ => Action::Send(Command::Approve {
                selection,
                title: Some(title),
                body,
                draft: d.draft,
            }),
        };
        return (Some(Overlay::Pr(d)), vec![action]);
    }
    if ctrl(&k, 'd') {
        d.draft = !d.draft;
        return (Some(Overlay::Pr(d)), vec![]);
    }
    let next = |f: PrField, step: isize| {
        const ALL: [PrField; 3] = [PrField::Title, PrField::Body, PrField::Draft];
        let i = ALL.iter().position(|x| *x == f).unwrap_or(0) as isize;
        ALL[(i + step).rem_euclid(3) as usize]
    };
    match k.code {
        KeyCode::Tab => d.field = next(d.field, 1),
        KeyCode::BackTab => d.field = next(d.field, -1),
        _ if ctrl(&k, 'e') => {
            let (field, text) = match d.field {
                PrField::Body => (Field::PrBody, field_text(&d.body)),
                _ => (Field::PrTitle, field_text(&d.title)),
            };
            return (Some(Overlay::Pr(d)), vec![Action::Edit(field, text)]);
        }
        _ => match d.field {
            PrField::Title => {
                if k.code == KeyCode::Enter {
                    d.field = PrField::Body;
                } else {
                    d.title.input(k);
                }
            }
            PrField::Body => {
                d.body.input(k);
            }
            PrField::Draft => {
                if matches!(k.code, KeyCode::Char(' ') | KeyCode::Enter) {
                    d.draft = !d.draft;
                }
            }
        },
    }
    (Some(Overlay::Pr(d)), vec![])
}
