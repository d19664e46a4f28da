//! `update`: the one place where input and pipeline events change the model.
//!
//! Invariants: pure — no IO, no clock, no terminal; anything that touches the outside world comes
//! back as an [`Action`] for the app loop to perform. Keys reach a text field only when it is
//! focused and no dialog is open; single-letter commands work only outside text fields.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::diffview::DiffView;
use super::layout;
use super::model::{
    Field, Focus, Model, Overlay, PastRun, PrDialog, PrField, PrPhase, RunState, field_text,
    text_field,
};
use crate::event::{Event, Stage};
use crate::pipeline::{Command, Selection};
use crate::repo::RepoSource;
use crate::store::{RunMeta, RunStatus};

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
    LoadRuns,
    OpenRun(String),
    Quit,
}

fn ctrl(k: &KeyEvent, c: char) -> bool {
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

fn diff_height(model: &Model) -> usize {
    let files = model.diff.as_ref().map_or(0, |d| d.files.len());
    layout::panes(Rect::new(0, 0, model.width, model.height), files)
        .body
        .height as usize
}

fn pr_dialog(model: &Model) -> PrDialog {
    let summary = model.summary.trim();
    let mut lines = summary.lines();
    let title = lines
        .next()
        .map(|l| l.trim().trim_end_matches('.').to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            field_text(&model.prompt)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        });
    let mut body: String = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    if body.is_empty() {
        body = summary.to_string();
    }
    let prompt = field_text(&model.prompt);
    body.push_str(&format!("\n\nRequested: {}", prompt.trim()));
    PrDialog {
        title: text_field(&title, "PR title", false),
        body: text_field(body.trim(), "PR body", true),
        draft: false,
        field: PrField::Title,
        phase: PrPhase::Editing,
        error: None,
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

impl Model {
    /// Clears everything about the previous run (the input fields stay).
    pub fn reset_run(&mut self) {
        self.log = Default::default();
        self.diff = None;
        self.summary.clear();
        self.patch_path = None;
        self.pr_url = None;
        self.publish_note = None;
        self.run_id = None;
        self.run_ended_ms = None;
        self.info.tokens = 0;
        self.info.cost_usd = None;
        self.quit_armed = false;
        self.viewing = None;
        self.overlay = Overlay::None;
    }

    fn ingest(&mut self, event: &Event) {
        let now = self.clock_ms;
        self.log.ingest(event, now);
        match event {
            Event::Status { stage, message, .. } => {
                if *stage == Stage::Publish {
                    self.publish_note = Some(message.clone());
                }
                if matches!(self.state, RunState::Running(_)) {
                    self.state = if *stage == Stage::Review {
                        RunState::Review
                    } else {
                        RunState::Running(*stage)
                    };
                }
            }
            Event::AiMessage { message, .. } => self.summary = message.clone(),
            Event::Usage {
                provider,
                model,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cost_usd,
                ..
            } => {
                self.info.tokens +=
                    input_tokens + output_tokens + cache_read_tokens + cache_write_tokens;
                self.info.cost_usd = match (self.info.cost_usd, cost_usd) {
                    (None, c) => *c,
                    (Some(a), Some(b)) => Some(a + b),
                    (Some(_), None) => None,
                };
                self.info.model = if provider == "scripted" {
                    format!("replay · {model}")
                } else {
                    format!("{provider}:{model}")
                };
            }
            Event::Diff { patch, .. } => {
                let view = DiffView::new(patch.clone());
                if self.focus != Focus::Prompt || self.state != RunState::Idle {
                    self.focus = Focus::Diff;
                }
                self.diff = Some(view);
            }
            Event::Pr {
                url,
                number,
                branch,
                base,
                ..
            } => {
                self.pr_url = Some(url.clone());
                let created = PrPhase::Created {
                    url: url.clone(),
                    number: *number,
                    branch: branch.clone(),
                    base: base.clone(),
                };
                match &mut self.overlay {
                    Overlay::Pr(d) => d.phase = created,
                    _ => {
                        let mut d = pr_dialog(self);
                        d.phase = created;
                        self.overlay = Overlay::Pr(Box::new(d));
                    }
                }
            }
            Event::Error { message, .. } => {
                self.run_ended_ms = Some(now);
                self.state =
                    if self.state == RunState::Cancelling || message.starts_with("cancelled") {
                        RunState::Cancelled
                    } else {
                        RunState::Failed
                    };
                if let Overlay::Pr(d) = &mut self.overlay {
                    d.phase = PrPhase::Editing;
                    d.error = Some(message.clone());
                }
            }
            Event::Done {
                pr_url, patch_path, ..
            } => {
                self.run_ended_ms = Some(now);
                self.patch_path = patch_path.clone();
                let was_publishing = self.state == RunState::Publishing;
                self.state = if self.state == RunState::Cancelling {
                    RunState::Cancelled
                } else {
                    RunState::Done {
                        published: pr_url.is_some(),
                    }
                };
                if let Some(url) = pr_url {
                    self.pr_url = Some(url.clone());
                } else if was_publishing && let Overlay::Pr(d) = &mut self.overlay {
                    let mut message = self
                        .publish_note
                        .clone()
                        .unwrap_or_else(|| "the run ended without a pull request".into());
                    if let Some(p) = patch_path {
                        message.push_str(&format!("\nfull patch: {p}"));
                    }
                    d.phase = PrPhase::NotPublished { message };
                }
            }
            _ => {}
        }
    }

    fn load_past(&mut self, past: PastRun) {
        self.reset_run();
        self.viewing = Some(past.meta.id.clone());
        self.run_id = Some(past.meta.id.clone());
        self.repo = text_field(&past.meta.repo, "", false);
        self.base = text_field(
            past.meta.base.as_deref().unwrap_or(""),
            "default branch",
            false,
        );
        self.prompt = text_field(&past.meta.prompt, "", true);
        self.state = RunState::Idle;
        for e in &past.events {
            self.ingest(e);
        }
        self.log.close_running(self.clock_ms, false);
        if self.diff.is_none()
            && let Some(p) = past.patch
        {
            self.diff = Some(DiffView::new(p));
        }
        self.state = match past.meta.status {
            RunStatus::Published => RunState::Done { published: true },
            RunStatus::Failed => RunState::Failed,
            RunStatus::Cancelled => RunState::Cancelled,
            _ => RunState::Done { published: false },
        };
        self.pr_url = past.meta.pr_url.clone();
        self.run_started_ms = None;
        self.focus = if self.diff.is_some() {
            Focus::Diff
        } else {
            Focus::Steps
        };
        self.notice = Some(format!(
            "viewing run {} (read-only) · e edits the prompt and runs it again",
            past.meta.id
        ));
    }
}

pub fn update(model: &mut Model, msg: Msg) -> Vec<Action> {
    match msg {
        Msg::Tick(ms) => {
            model.clock_ms = ms;
            vec![]
        }
        Msg::Resize(w, h) => {
            model.width = w;
            model.height = h;
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
                                d.body = text_field(t, "", true);
                            }
                        }
                    }
                }
            }
            vec![]
        }
        Msg::Paste(text) => {
            paste(model, &text.replace("\r\n", "\n").replace('\r', "\n"));
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
        _ => {}
    }
}

fn mouse(model: &mut Model, m: MouseEvent) {
    let delta: isize = match m.kind {
        MouseEventKind::ScrollDown => 3,
        MouseEventKind::ScrollUp => -3,
        _ => return,
    };
    let files = model.diff.as_ref().map_or(0, |d| d.files.len());
    let p = layout::panes(Rect::new(0, 0, model.width, model.height), files);
    let at = Position::new(m.column, m.row);
    if p.diff.contains(at) {
        let h = p.body.height as usize;
        if let Some(d) = model.diff.as_mut() {
            d.scroll_by(delta, h);
        }
    } else if p.steps.contains(at) {
        if delta < 0 {
            for _ in 0..3 {
                model.log.select_prev();
            }
        } else {
            for _ in 0..3 {
                model.log.select_next();
            }
        }
    }
}

fn key(model: &mut Model, k: KeyEvent) -> Vec<Action> {
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
    if ctrl(&k, 's') {
        return start_run(model);
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
        KeyCode::Tab => {
            model.focus = cycle(model.focus, 1);
            return vec![];
        }
        KeyCode::BackTab => {
            model.focus = cycle(model.focus, -1);
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
            model.notice =
                Some("edit the prompt, then Ctrl+S to run again from a fresh workspace".into());
            return vec![];
        }
        KeyCode::Char('f') => {
            if model.state == RunState::Review {
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
        KeyCode::Char('c') => {
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
            return vec![];
        }
        KeyCode::Char('o') | KeyCode::Char('y') if model.pr_url.is_some() => {
            let url = model.pr_url.clone().unwrap_or_default();
            return vec![if k.code == KeyCode::Char('o') {
                Action::OpenUrl(url)
            } else {
                Action::Copy(url)
            }];
        }
        _ => {}
    }
    match model.focus {
        Focus::Diff => diff_key(model, k),
        Focus::Steps => steps_key(model, k),
        _ => {}
    }
    vec![]
}

/// Keys while a dialog is open; returns the dialog to keep (or `None` to close it).
fn overlay_key(model: &mut Model, overlay: Overlay, k: KeyEvent) -> (Option<Overlay>, Vec<Action>) {
    match overlay {
        Overlay::None => (None, vec![]),
        Overlay::Help { scroll } => match k.code {
            KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::F(1) => (None, vec![]),
            KeyCode::Down | KeyCode::Char('j') => {
                (Some(Overlay::Help { scroll: scroll + 1 }), vec![])
            }
            KeyCode::Up | KeyCode::Char('k') => (
                Some(Overlay::Help {
                    scroll: scroll.saturating_sub(1),
                }),
                vec![],
            ),
            KeyCode::PageDown | KeyCode::Char(' ') => (
                Some(Overlay::Help {
                    scroll: scroll + 10,
                }),
                vec![],
            ),
            KeyCode::PageUp => (
                Some(Overlay::Help {
                    scroll: scroll.saturating_sub(10),
                }),
                vec![],
            ),
            _ => (Some(Overlay::Help { scroll }), vec![]),
        },
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
                    if model.state.is_busy() || model.state == RunState::Review {
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
                model.state = RunState::Running(Stage::Agent);
                model.run_ended_ms = None;
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
    }
}

fn pr_key(model: &mut Model, mut d: Box<PrDialog>, k: KeyEvent) -> (Option<Overlay>, Vec<Action>) {
    match d.phase.clone() {
        PrPhase::Editing => {}
        PrPhase::Publishing => {
            // Publishing goes on in the background; Esc only hides the dialog.
            if k.code == KeyCode::Esc {
                return (None, vec![]);
            }
            return (Some(Overlay::Pr(d)), vec![]);
        }
        PrPhase::Created { url, .. } => {
            return match k.code {
                KeyCode::Char('o') => (Some(Overlay::Pr(d)), vec![Action::OpenUrl(url)]),
                KeyCode::Char('y') => {
                    model.notice = Some("PR URL copied to the clipboard".into());
                    (Some(Overlay::Pr(d)), vec![Action::Copy(url)])
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => (None, vec![]),
                _ => (Some(Overlay::Pr(d)), vec![]),
            };
        }
        PrPhase::NotPublished { .. } => {
            return match k.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => (None, vec![]),
                _ => (Some(Overlay::Pr(d)), vec![]),
            };
        }
    }
    if k.code == KeyCode::Esc {
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
        d.error = None;
        d.phase = PrPhase::Publishing;
        model.state = RunState::Publishing;
        let body = field_text(&d.body).trim().to_string();
        let command = Command::Approve {
            selection: current_selection(model),
            title: Some(title),
            body: Some(body).filter(|b| !b.is_empty()),
            draft: d.draft,
        };
        return (Some(Overlay::Pr(d)), vec![Action::Send(command)]);
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

fn steps_key(model: &mut Model, k: KeyEvent) {
    match k.code {
        KeyCode::Up | KeyCode::Char('k') => model.log.select_prev(),
        KeyCode::Down | KeyCode::Char('j') => model.log.select_next(),
        KeyCode::Enter => model.log.toggle_expand(),
        KeyCode::Home | KeyCode::Char('g') => model.log.selected = Some(0),
        KeyCode::End | KeyCode::Char('G') => model.log.selected = None,
        _ => {}
    }
}

fn diff_key(model: &mut Model, k: KeyEvent) {
    let h = diff_height(model);
    let Some(d) = model.diff.as_mut() else {
        return;
    };
    let page = (h / 2).max(1) as isize;
    let read_only = model.viewing.is_some() || model.state != RunState::Review;
    match k.code {
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

/// The selection to approve with, for the app (and tests).
pub fn current_selection(model: &Model) -> Selection {
    model
        .diff
        .as_ref()
        .map(DiffView::selection)
        .unwrap_or_default()
}
