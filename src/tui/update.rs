//! `update`: the one place where input and pipeline events change the model.
//!
//! Invariants: pure — no IO, no clock, no terminal; anything that touches the outside world comes
//! back as an [`Action`] for the app loop to perform. Keys reach a text field only when it is
//! focused and no dialog is open; single-letter commands work only outside text fields.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};
use ratatui::layout::Rect;

use super::dialog_keys::overlay_key;
use super::diffview::{DiffMode, DiffView};
use super::ingest::{pr_dialog, remember_pr_text};
use super::model::{
    Field, Focus, Model, Overlay, PastRun, PrField, PrPhase, RunState, field_text, text_field,
};
use super::pane_keys::{mouse, steps_key};
use super::{search, sidebyside};
use crate::event::{Event, Stage};
use crate::pipeline::{Command, Selection};
use crate::repo::RepoSource;
use crate::store::RunMeta;

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The UI clock advanced to this many milliseconds.
    Tick(u64),
    /// A run was started with this id.
    Started(String),
    Pipeline(Event),
    EditorDone(Field, Option<String>),
    Runs(Vec<RunMeta>),
    PastRun(Box<PastRun>),
    /// Something the app loop tried failed (opening the browser, the editor, …).
    Failed(String),
    /// The editor on a work-tree file (`E`) returned; `error` when it could not run or failed.
    FileEdited {
        rel: String,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start {
        repo: String,
        prompt: String,
        base: Option<String>,
    },
    Send(Command),
    /// Edit a field's text in `$EDITOR`.
    Edit(Field, String),
    OpenUrl(String),
    /// Copy to the clipboard (OSC 52).
    Copy(String),
    Suspend,
    /// `E` on this patch path: the app checks it ([`super::editor`]) and hands back `RunEditor`.
    EditFile(String),
    /// Run the editor on this checked work-tree file (needs the terminal).
    RunEditor {
        path: std::path::PathBuf,
        rel: String,
    },
    LoadRuns,
    OpenRun(String),
    /// Publish a run whose pipeline has ended (a reopened review), from its folder.
    PublishPast {
        run_id: String,
        selection: crate::pipeline::Selection,
        title: String,
        body: Option<String>,
        draft: bool,
    },
    Quit,
}

pub(super) fn ctrl(k: &KeyEvent, c: char) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char(c)
}

/// Validates the input fields; errors are shown next to each field.
pub fn validate(model: &mut Model) -> bool {
    let repo = field_text(&model.repo).trim().to_string();
    let base = field_text(&model.base).trim().to_string();
    let prompt = field_text(&model.prompt);
    model.errors.repo = if repo.is_empty() {
        Some("required: a GitHub URL, owner/repo, or a local path".into())
    } else {
        RepoSource::parse(&repo, &model.cwd)
            .err()
            .map(|e| e.to_string())
    };
    model.errors.base = (!base.is_empty()
        && (base.starts_with('-')
            || base.contains("..")
            || base
                .chars()
                .any(|c| c.is_whitespace() || "~^:?*[\\".contains(c))))
    .then(|| "not a valid branch name".to_string());
    model.errors.prompt = prompt
        .trim()
        .is_empty()
        .then(|| "required: describe the change you want".to_string());
    !model.errors.any()
}

pub(super) fn diff_body(model: &Model) -> Rect {
    model.panes().body
}

pub(super) fn diff_height(model: &Model) -> usize {
    diff_body(model).height as usize
}

/// Puts the diff in the layout the session asks for and the pane allows (after a resize, a new
/// diff or the toggle), keeping the cursor where it was.
pub(super) fn sync_diff_mode(model: &mut Model) {
    let body = diff_body(model);
    let wrap = model.diff.as_ref().is_some_and(|d| d.wrap);
    let mode = if model.side_by_side && sidebyside::fits(body.width) && !wrap {
        DiffMode::SideBySide
    } else {
        DiffMode::Unified
    };
    if let Some(d) = model.diff.as_mut() {
        d.set_mode(mode, body.height as usize);
    }
}

fn start_run(model: &mut Model) -> Vec<Action> {
    if model.state.is_busy() {
        model.notice = Some("a run is in progress: Ctrl+C cancels it first".into());
        return vec![];
    }
    if !validate(model) {
        model.focus = if model.errors.repo.is_some() {
            Focus::Repo
        } else if model.errors.base.is_some() {
            Focus::Base
        } else {
            Focus::Prompt
        };
        return vec![];
    }
    let repo = field_text(&model.repo).trim().to_string();
    let base = Some(field_text(&model.base).trim().to_string()).filter(|b| !b.is_empty());
    model.reset_run();
    model.run_repo = repo.clone();
    model.run_base = base.clone();
    model.run_prompt = field_text(&model.prompt);
    model.state = RunState::Running(Stage::Validate);
    model.run_started_ms = Some(model.clock_ms);
    model.focus = Focus::Steps;
    vec![Action::Start {
        repo,
        prompt: field_text(&model.prompt),
        base,
    }]
}

fn quit(model: &mut Model) -> Vec<Action> {
    match model.unpublished_work() {
        Some(reason) => {
            model.overlay = Overlay::ConfirmQuit { reason };
            vec![]
        }
        None => {
            model.should_quit = true;
            vec![Action::Quit]
        }
    }
}

pub fn update(model: &mut Model, msg: Msg) -> Vec<Action> {
    let actions = apply(model, msg);
    sync_diff_mode(model);
    actions
}

fn apply(model: &mut Model, msg: Msg) -> Vec<Action> {
    match msg {
        Msg::Tick(ms) => {
            model.clock_ms = ms;
            vec![]
        }
        Msg::Resize(w, h) => {
            model.width = w;
            model.height = h;
            // A note about the old size says nothing true about the new one.
            if model
                .notice
                .as_deref()
                .is_some_and(|n| n.starts_with("side-by-side needs"))
            {
                model.notice = None;
            }
            let hgt = diff_height(model);
            if let Some(d) = model.diff.as_mut() {
                d.scroll_into_view(hgt);
            }
            vec![]
        }
        Msg::Started(id) => {
            model.run_id = Some(id);
            vec![]
        }
        Msg::Pipeline(e) => {
            model.ingest(&e);
            vec![]
        }
        Msg::Failed(m) => {
            model.notice = Some(m);
            vec![]
        }
        Msg::FileEdited { rel, error } => super::review_keys::file_edited(model, rel, error),
        Msg::Runs(runs) => {
            model.overlay = Overlay::Runs { runs, selected: 0 };
            vec![]
        }
        Msg::PastRun(p) => {
            model.load_past(*p);
            vec![]
        }
        Msg::EditorDone(field, text) => {
            if let Some(t) = text {
                let t = t.replace("\r\n", "\n");
                let t = super::sanitize::clean(&t);
                let t = t.trim_end_matches('\n');
                match field {
                    Field::Repo => model.repo = text_field(t.trim(), "", false),
                    Field::Base => model.base = text_field(t.trim(), "default branch", false),
                    Field::Prompt => model.prompt = text_field(t, "", true),
                    Field::FollowUp => {
                        model.overlay = Overlay::FollowUp(Box::new(text_field(t, "", true)))
                    }
                    Field::PrTitle | Field::PrBody => {
                        if let Overlay::Pr(d) = &mut model.overlay {
                            if field == Field::PrTitle {
                                d.title = text_field(t.lines().next().unwrap_or(""), "", false);
                            } else {
                                // Back from the editor the body shows from its top, as it opens.
                                d.body = text_field(t, "", true);
                                d.body.move_cursor(ratatui_textarea::CursorMove::Top);
                                d.body.move_cursor(ratatui_textarea::CursorMove::Head);
                            }
                        }
                    }
                }
            }
            vec![]
        }
        Msg::Paste(text) => {
            // Line endings normalized; escape sequences in pasted text are dropped.
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            paste(model, &super::sanitize::clean(&text));
            vec![]
        }
        Msg::Mouse(m) => {
            mouse(model, m);
            vec![]
        }
        Msg::Key(k) => {
            if k.kind == KeyEventKind::Release {
                return vec![];
            }
            model.notice = None;
            // Esc quickly followed by a key arrives as Alt+key. No binding uses Alt, so in a
            // dialog without text input read it as the two keys it was.
            let text_dialog = match &model.overlay {
                Overlay::FollowUp(_) | Overlay::Comment(_) => true,
                Overlay::Pr(d) => d.phase == PrPhase::Editing,
                _ => false,
            };
            if k.modifiers == KeyModifiers::ALT
                && matches!(k.code, KeyCode::Char(_))
                && !matches!(model.overlay, Overlay::None)
                && !text_dialog
            {
                let mut actions = key(model, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
                actions.extend(key(model, KeyEvent::new(k.code, KeyModifiers::NONE)));
                return actions;
            }
            key(model, k)
        }
    }
}

fn paste(model: &mut Model, text: &str) {
    let single = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    match &mut model.overlay {
        Overlay::FollowUp(t) => {
            t.insert_str(text);
        }
        Overlay::Pr(d) => match d.field {
            PrField::Title => {
                d.title.insert_str(single(text));
            }
            PrField::Body => {
                d.body.insert_str(text);
            }
            PrField::Draft => {}
        },
        Overlay::None => match model.focus {
            Focus::Repo => {
                model.repo.insert_str(single(text));
                model.errors.repo = None;
            }
            Focus::Base => {
                model.base.insert_str(single(text));
                model.errors.base = None;
            }
            Focus::Prompt => {
                model.prompt.insert_str(text);
                model.errors.prompt = None;
            }
            _ => {}
        },
        overlay => super::comments::paste(overlay, text),
    }
}

fn key(model: &mut Model, k: KeyEvent) -> Vec<Action> {
    // The pager owns the keyboard while open (it gives `Ctrl+C` back, closed).
    if model.pager.is_some() && super::pager::key(model, k) {
        return vec![];
    }
    let rerun_armed = std::mem::take(&mut model.rerun_armed);
    // Ctrl+C works everywhere (help lists it so): it closes a dialog and does what it does
    // outside — cancel the run, or quit. The quit confirmation answers it itself, and the PR
    // dialog while publishing cancels only the publish.
    if ctrl(&k, 'c')
        && ctrl_c_closes_overlay(model)
        && let Overlay::Pr(d) = std::mem::replace(&mut model.overlay, Overlay::None)
        && d.phase == PrPhase::Editing
    {
        remember_pr_text(model, &d);
    }
    // Dialogs first: they own the keyboard.
    if !matches!(model.overlay, Overlay::None) {
        let overlay = std::mem::replace(&mut model.overlay, Overlay::None);
        let (back, actions) = overlay_key(model, overlay, k);
        if let Some(o) = back
            && matches!(model.overlay, Overlay::None)
        {
            model.overlay = o;
        }
        return actions;
    }

    // Global keys.
    if ctrl(&k, 'c') {
        if model.state.is_busy() {
            if model.quit_armed {
                model.should_quit = true;
                return vec![Action::Quit];
            }
            model.quit_armed = true;
            if model.state != RunState::Cancelling {
                model.state = RunState::Cancelling;
                model.notice = Some("cancelling… press Ctrl+C again to quit".into());
                return vec![Action::Send(Command::Cancel)];
            }
            return vec![];
        }
        return quit(model);
    }
    // The search prompt owns the keyboard while it is open (Ctrl+C above still works).
    if model.search.as_ref().is_some_and(|s| s.editing) {
        let h = diff_height(model);
        search::prompt_key(model, k, h);
        return vec![];
    }
    if ctrl(&k, 's') {
        if model.state != RunState::Review {
            return start_run(model);
        }
        // In review, Ctrl+S is "confirm": it opens the PR dialog. Running again from a fresh
        // workspace (after `e`) discards the review, so it takes a second press in a text field.
        if !model.focus.is_text() {
            return open_pr_dialog(model);
        }
        if rerun_armed {
            return start_run(model);
        }
        model.rerun_armed = true;
        model.notice = Some(
            "Ctrl+S again discards this review and runs the prompt from a fresh workspace \
             (the diff and its selection stay saved in the run) · Esc, then c creates the PR"
                .into(),
        );
        return vec![];
    }
    if ctrl(&k, 'z') {
        return vec![Action::Suspend];
    }
    if ctrl(&k, 'r') {
        return vec![Action::LoadRuns];
    }
    if k.code == KeyCode::F(1) {
        model.overlay = Overlay::Help { scroll: 0 };
        return vec![];
    }
    match k.code {
        KeyCode::Tab | KeyCode::BackTab => {
            super::filelist::tab(model, if k.code == KeyCode::Tab { 1 } else { -1 });
            return vec![];
        }
        _ => {}
    }

    if model.focus.is_text() {
        return text_key(model, k);
    }

    // Single-letter commands outside text fields.
    match k.code {
        KeyCode::Char('?') => {
            model.overlay = Overlay::Help { scroll: 0 };
            return vec![];
        }
        KeyCode::Char('q') => return quit(model),
        KeyCode::Char('r') => return vec![Action::LoadRuns],
        KeyCode::Char('e') => {
            if model.state.is_busy() {
                model.notice = Some("a run is in progress: Ctrl+C cancels it first".into());
                return vec![];
            }
            model.focus = Focus::Prompt;
            model.notice = Some(if model.state == RunState::Review {
                "edit the prompt, then Ctrl+S twice to leave this review and run again from a fresh \
                 workspace"
                    .into()
            } else {
                "edit the prompt, then Ctrl+S to run again from a fresh workspace".into()
            });
            return vec![];
        }
        KeyCode::Char('f') => {
            if model.state == RunState::Review && model.reopened {
                model.notice = Some(
                    "this run's agent ended with its process: follow-ups need a live run (e edits \
                     the prompt and runs it again)"
                        .into(),
                );
            } else if model.state == RunState::Review {
                model.overlay = Overlay::FollowUp(Box::new(text_field(
                    "",
                    "What should the agent do next? (Ctrl+S sends, Esc cancels)",
                    true,
                )));
            } else {
                model.notice = Some("follow-ups work while a diff is in review".into());
            }
            return vec![];
        }
        KeyCode::Char('c') => return open_pr_dialog(model),
        KeyCode::Char('o') | KeyCode::Char('y') if model.pr_url.is_some() => {
            let url = model.pr_url.clone().unwrap_or_default();
            if k.code == KeyCode::Char('o') {
                return vec![Action::OpenUrl(url)];
            }
            // OSC 52 has no answer: whether the terminal took it cannot be known.
            model.notice = Some("PR URL sent to the terminal's clipboard (OSC 52)".into());
            return vec![Action::Copy(url)];
        }
        _ => {}
    }
    if matches!(model.focus, Focus::Diff | Focus::Steps) && search_key(model, k) {
        return vec![];
    }
    match model.focus {
        Focus::Diff => return super::review_keys::diff_key(model, k),
        Focus::Files => return super::review_keys::files_key(model, k),
        Focus::Steps => steps_key(model, k),
        _ => {}
    }
    vec![]
}

/// `/` opens a search of the focused pane; while one is on there, `n`/`N` go to the next and
/// previous match and `Esc` ends it. Returns whether the key was taken.
fn search_key(model: &mut Model, k: KeyEvent) -> bool {
    if k.code == KeyCode::Char('/') {
        search::open(model);
        return true;
    }
    if k.code == KeyCode::Char('z') {
        model.zoom = !model.zoom;
        // The body's height changed: keep the cursor on screen.
        let h = diff_height(model);
        if let Some(d) = model.diff.as_mut() {
            d.scroll_into_view(h);
        }
        return true;
    }
    if !search::active_in(model, model.focus) {
        return false;
    }
    let h = diff_height(model);
    match k.code {
        KeyCode::Char('n') => search::step(model, search::Dir::Next, h),
        KeyCode::Char('N') => search::step(model, search::Dir::Prev, h),
        KeyCode::Esc => search::close(model),
        _ => return false,
    }
    true
}

fn ctrl_c_closes_overlay(model: &Model) -> bool {
    match &model.overlay {
        Overlay::None | Overlay::ConfirmQuit { .. } => false,
        Overlay::Pr(d) => !(d.phase == PrPhase::Publishing && model.state == RunState::Publishing),
        _ => true,
    }
}

/// `c` (and `Ctrl+S` outside text fields) in review: the PR dialog for what is selected.
fn open_pr_dialog(model: &mut Model) -> Vec<Action> {
    if model.state != RunState::Review
        && let Some(mut d) = model.published.take()
    {
        d.scroll = 0;
        // What publishing did (the PR, or the branch and its summary) shows again.
        model.overlay = Overlay::Pr(d);
        return vec![];
    }
    match (&model.state, &model.diff) {
        (RunState::Review, Some(d)) if !d.is_empty() => {
            if d.summary().hunks_in == 0 && d.summary().files_in == 0 {
                model.notice = Some("nothing is selected for the PR".into());
            } else {
                model.overlay = Overlay::Pr(Box::new(pr_dialog(model)));
            }
        }
        _ => {
            model.notice = Some("a PR can be created once a diff is in review".into());
        }
    }
    vec![]
}

fn cycle(f: Focus, step: isize) -> Focus {
    let n = Focus::ORDER.len() as isize;
    let i = Focus::ORDER.iter().position(|x| *x == f).unwrap_or(0) as isize;
    Focus::ORDER[((i + step).rem_euclid(n)) as usize]
}

fn text_key(model: &mut Model, k: KeyEvent) -> Vec<Action> {
    let field = match model.focus {
        Focus::Repo => Field::Repo,
        Focus::Base => Field::Base,
        _ => Field::Prompt,
    };
    if ctrl(&k, 'e') {
        let text = match field {
            Field::Repo => field_text(&model.repo),
            Field::Base => field_text(&model.base),
            _ => field_text(&model.prompt),
        };
        return vec![Action::Edit(field, text)];
    }
    if k.code == KeyCode::Esc {
        model.focus = if model.diff.is_some() {
            Focus::Diff
        } else {
            Focus::Steps
        };
        return vec![];
    }
    match field {
        Field::Repo | Field::Base => {
            if k.code == KeyCode::Enter {
                model.focus = cycle(model.focus, 1);
                return vec![];
            }
            let t = if field == Field::Repo {
                model.errors.repo = None;
                &mut model.repo
            } else {
                model.errors.base = None;
                &mut model.base
            };
            t.input(k);
        }
        _ => {
            model.errors.prompt = None;
            model.prompt.input(k);
        }
    }
    vec![]
}

/// The selection to approve with, for the app (and tests).
pub fn current_selection(model: &Model) -> Selection {
    model
        .diff
        .as_ref()
        .map(DiffView::selection)
        .unwrap_or_default()
}
