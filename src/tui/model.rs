//! Everything the screen shows, as plain data: the input fields, the run's state, the step log,
//! the diff under review and any dialog on top.
//!
//! Invariants: the model holds no IO handles and no clock of its own — time comes in through
//! `Msg::Tick`, so `update` stays pure and `view` is a function of the model alone (snapshot tests
//! pin the clock).

use std::path::PathBuf;

use ratatui_textarea::{TextArea, WrapMode};

use super::diffview::DiffView;
use super::steplog::StepLog;
use crate::event::Stage;
use crate::store::RunMeta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Repo,
    Base,
    Prompt,
    Steps,
    /// The diff pane's file list ([`super::filelist`]); in the `Tab` order only with a diff.
    Files,
    Diff,
}

impl Focus {
    pub const ORDER: [Focus; 6] = [
        Focus::Repo,
        Focus::Base,
        Focus::Prompt,
        Focus::Steps,
        Focus::Files,
        Focus::Diff,
    ];

    pub fn is_text(self) -> bool {
        matches!(self, Focus::Repo | Focus::Base | Focus::Prompt)
    }
}

/// Which text field (for `$EDITOR` and validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Repo,
    Base,
    Prompt,
    FollowUp,
    PrTitle,
    PrBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Idle,
    Running(Stage),
    Cancelling,
    Review,
    Publishing,
    Done { published: bool },
    Failed,
    Cancelled,
}

impl RunState {
    pub fn label(&self) -> String {
        match self {
            RunState::Idle => "idle".into(),
            RunState::Running(s) => format!("running · {}", s.as_str()),
            RunState::Cancelling => "cancelling".into(),
            RunState::Review => "review".into(),
            RunState::Publishing => "publishing".into(),
            RunState::Done { published: true } => "done · published".into(),
            RunState::Done { published: false } => "done".into(),
            RunState::Failed => "failed".into(),
            RunState::Cancelled => "cancelled".into(),
        }
    }

    /// A pipeline task is alive and working (not waiting at the gate).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            RunState::Running(_) | RunState::Cancelling | RunState::Publishing
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    pub repo: Option<String>,
    pub base: Option<String>,
    pub prompt: Option<String>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.repo.is_some() || self.base.is_some() || self.prompt.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrField {
    Title,
    Body,
    Draft,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrPhase {
    Editing,
    Publishing,
    Created {
        url: String,
        number: u64,
        branch: String,
        base: String,
    },
    /// The run ended without a PR: published as a branch only (a remote that takes no pull
    /// requests; `message` holds the request-pull summary), or not published at all.
    NotPublished {
        branch: Option<String>,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct PrDialog {
    pub title: TextArea<'static>,
    pub body: TextArea<'static>,
    pub draft: bool,
    pub field: PrField,
    pub phase: PrPhase,
    pub error: Option<String>,
    /// The title and body generated from the run and the selection when the dialog opened: text
    /// that differs from them was edited by the user and is kept (see [`PrText`]).
    pub generated_title: String,
    pub generated_body: String,
    /// Lines of a long outcome (the request-pull summary) scrolled past.
    pub scroll: u16,
}

/// PR text the user edited (and the draft flag), kept while the run is under review — across
/// closing the dialog, selection changes and follow-ups. `None`: use the generated text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrText {
    pub title: Option<String>,
    pub body: Option<String>,
    /// The generated body the user's edit started from: when the generated body differs now
    /// (the selection or the change moved on), the edited one may describe the old state.
    pub body_based_on: Option<String>,
    pub draft: bool,
}

#[derive(Debug, Clone)]
pub enum Overlay {
    None,
    /// The key list, scrolled by this many lines when it does not fit.
    Help {
        scroll: u16,
    },
    Runs {
        runs: Vec<RunMeta>,
        selected: usize,
    },
    Pr(Box<PrDialog>),
    FollowUp(Box<TextArea<'static>>),
    ConfirmQuit {
        reason: String,
    },
    /// `C`: a comment being written ([`super::comments`]).
    Comment(Box<super::comments::Draft>),
    /// `L`: the comments, this one selected.
    Comments {
        selected: usize,
    },
}

/// What the header shows about the environment.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// "replay · script.json" or "anthropic:claude-…".
    pub model: String,
    pub sandbox: String,
    pub network: bool,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Prefill {
    pub repo: String,
    pub prompt: String,
    pub base: String,
}

/// Data of a past run read from the store, for viewing or for review.
#[derive(Debug, Clone)]
pub struct PastRun {
    pub meta: RunMeta,
    pub events: Vec<crate::event::Event>,
    pub patch: Option<String>,
    /// The review's saved selection, applied to `patch` (none saved: everything in).
    pub selection: Option<crate::pipeline::Selection>,
    /// Title, body and draft flag of the last approval (`pr.json`), if there was one.
    pub pr: Option<(String, String, bool)>,
}

pub struct Model {
    pub repo: TextArea<'static>,
    pub base: TextArea<'static>,
    pub prompt: TextArea<'static>,
    pub errors: FieldErrors,
    pub focus: Focus,
    pub state: RunState,
    pub log: StepLog,
    pub diff: Option<DiffView>,
    pub overlay: Overlay,
    pub info: Info,
    pub cwd: PathBuf,
    /// The UI clock (ms since the app started), set by `Msg::Tick`.
    pub clock_ms: u64,
    pub run_started_ms: Option<u64>,
    /// The agent phase's network as the run's setup status named it (a setup may run with a
    /// different network than the agent's): the header shows it rather than the configured one.
    pub agent_network: Option<crate::pipeline::NetworkMode>,
    /// The stage of the run's last status: a `Tool: Bash` during `setup` is the setup command,
    /// not one of the agent's (the PR body's "commands run" lists the agent's).
    pub last_stage: Option<Stage>,
    /// When the run's clock stopped: its end, or the start of a wait for the human (review).
    pub run_ended_ms: Option<u64>,
    /// Time the run spent waiting in review before a follow-up or a publish went on: not work,
    /// so left out of the clock.
    pub run_waited_ms: u64,
    pub run_id: Option<String>,
    /// The repository, base and prompt the current run was started with.
    pub run_repo: String,
    pub run_base: Option<String>,
    pub run_prompt: String,
    /// Follow-ups sent to the current run, in order.
    pub followups: Vec<String>,
    /// The model's final text (the run summary).
    pub summary: String,
    /// The summary the run had when it first reached review (a follow-up's summary describes only
    /// the follow-up, so the default PR title comes from this one).
    pub first_summary: Option<String>,
    /// The commands the agent ran, for the PR body's evidence.
    pub commands: Vec<crate::pipeline::publish::text::CommandRun>,
    /// PR text the user edited for the current run.
    pub pr_text: PrText,
    /// A past run under review again (its process ended): no pipeline; publishing goes from its
    /// folder, follow-ups are not possible.
    pub reopened: bool,
    /// Ctrl+S was pressed once in a text field during review: the next one discards the review
    /// and runs again (any other key disarms).
    pub rerun_armed: bool,
    pub patch_path: Option<String>,
    pub pr_url: Option<String>,
    /// The last publish-stage message (why nothing was published, when it was not).
    pub publish_note: Option<String>,
    /// The PR dialog after publishing (created, or a branch and its summary), kept so `c` shows it
    /// again once it was closed.
    pub published: Option<Box<PrDialog>>,
    pub no_color: bool,
    pub width: u16,
    pub height: u16,
    /// Ctrl+C was pressed once while running: the next one quits.
    pub quit_armed: bool,
    /// A one-line message for the status bar (copied, cannot start while running, …).
    pub notice: Option<String>,
    /// Viewing a past run from the store (read-only).
    pub viewing: Option<String>,
    /// The diff layout chosen for the session: side-by-side (the default) or unified. Side-by-side
    /// shows only where the diff pane is wide enough ([`super::sidebyside::fits`]).
    pub side_by_side: bool,
    /// `/` search in the diff or the steps, while it is on.
    pub search: Option<super::search::Search>,
    /// `z`: the focused read-only pane (steps or diff) fills the screen; text fields show the
    /// usual layout.
    pub zoom: bool,
    /// `v` in the steps pane: one step's output over the whole screen.
    pub pager: Option<Box<super::pager::Pager>>,
    /// The diff shown is the live one of a run still working (`Live Diff`): read-only.
    pub live_diff: bool,
    /// The diff under review when a follow-up's live diff replaced it on screen: the final diff
    /// carries its selection.
    pub before_live: Option<DiffView>,
    /// `t` jumped from a hunk to its step: where to go back to.
    pub jump_back: Option<super::hunkjump::JumpBack>,
    /// Review comments on this run's diff (`C`), kept in its folder ([`super::comments`]).
    pub comments: Vec<super::comments::Comment>,
    /// The file the reviewer just edited (`E`): the next diff marks its changes as theirs.
    pub user_edit: Option<String>,
    pub should_quit: bool,
}

pub fn text_field(text: &str, placeholder: &str, multiline: bool) -> TextArea<'static> {
    let lines: Vec<String> = if text.is_empty() {
        vec![String::new()]
    } else {
        text.lines().map(str::to_string).collect()
    };
    let mut t = TextArea::new(lines);
    t.set_placeholder_text(placeholder);
    t.set_cursor_line_style(ratatui::style::Style::default());
    if multiline {
        t.set_wrap_mode(WrapMode::WordOrGlyph);
    }
    t.move_cursor(ratatui_textarea::CursorMove::Bottom);
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

pub fn field_text(t: &TextArea<'_>) -> String {
    t.lines().join("\n")
}

impl Model {
    pub fn new(prefill: Prefill, cwd: PathBuf, info: Info, no_color: bool) -> Model {
        let focus = if prefill.repo.is_empty() {
            Focus::Repo
        } else {
            Focus::Prompt
        };
        Model {
            repo: text_field(
                &prefill.repo,
                "https://github.com/owner/repo, owner/repo or ./path",
                false,
            ),
            base: text_field(&prefill.base, "default branch", false),
            prompt: text_field(
                &prefill.prompt,
                "What should the agent change? (Ctrl+S runs)",
                true,
            ),
            errors: FieldErrors::default(),
            focus,
            state: RunState::Idle,
            log: StepLog::default(),
            diff: None,
            overlay: Overlay::None,
            info,
            cwd,
            clock_ms: 0,
            run_started_ms: None,
            agent_network: None,
            last_stage: None,
            run_ended_ms: None,
            run_waited_ms: 0,
            run_id: None,
            run_repo: String::new(),
            run_base: None,
            run_prompt: String::new(),
            followups: Vec::new(),
            summary: String::new(),
            first_summary: None,
            commands: Vec::new(),
            pr_text: PrText::default(),
            reopened: false,
            rerun_armed: false,
            patch_path: None,
            pr_url: None,
            publish_note: None,
            published: None,
            no_color,
            width: 80,
            height: 24,
            quit_armed: false,
            notice: None,
            viewing: None,
            side_by_side: true,
            search: None,
            zoom: false,
            pager: None,
            live_diff: false,
            before_live: None,
            jump_back: None,
            comments: Vec::new(),
            user_edit: None,
            should_quit: false,
        }
    }

    pub fn elapsed_ms(&self) -> Option<u64> {
        let start = self.run_started_ms?;
        Some(
            self.run_ended_ms
                .unwrap_or(self.clock_ms)
                .saturating_sub(start)
                .saturating_sub(self.run_waited_ms),
        )
    }

    /// Stops the run's clock: the run's work ended or waits for the human (review).
    pub fn stop_clock(&mut self) {
        if self.run_ended_ms.is_none() {
            self.run_ended_ms = Some(self.clock_ms);
        }
    }

    /// Starts the clock again after a wait in review (a follow-up or a publish is work again).
    pub fn resume_clock(&mut self) {
        if let Some(end) = self.run_ended_ms.take() {
            self.run_waited_ms += self.clock_ms.saturating_sub(end);
        }
    }

    /// The pane drawn over the whole screen, if any (`z` and the focus).
    pub fn zoomed(&self) -> Option<super::layout::Zoom> {
        match self.focus {
            Focus::Steps if self.zoom => Some(super::layout::Zoom::Steps),
            Focus::Diff | Focus::Files if self.zoom => Some(super::layout::Zoom::Diff),
            _ => None,
        }
    }

    /// The panes as drawn for this model's size, diff and zoom.
    pub fn panes(&self) -> super::layout::Panes {
        let files = self.diff.as_ref().map_or(0, |d| d.files.len());
        super::layout::panes_zoomed(
            ratatui::layout::Rect::new(0, 0, self.width, self.height),
            files,
            self.zoomed(),
        )
    }

    /// Work that would be lost (from the UI's point of view) by quitting now.
    pub fn unpublished_work(&self) -> Option<String> {
        match self.state {
            RunState::Running(_) | RunState::Cancelling => {
                Some("a run is in progress; quitting cancels it".into())
            }
            // A reopened review has no pipeline: its patch and selection are on disk already.
            RunState::Review if self.reopened => None,
            RunState::Review => Some("the diff is waiting for review and is not published".into()),
            RunState::Publishing => Some("publishing is in progress".into()),
            _ => None,
        }
    }

    /// Whether anything animates (the spinner), so the loop must keep redrawing.
    pub fn animating(&self) -> bool {
        self.state.is_busy()
    }

    /// Whether the last frame drew diff lines without their syntax colors for want of the
    /// highlighter's per-frame budget, so one more frame would show more; clears the flag
    /// (a frame that draws no diff cannot leave the loop redrawing).
    pub fn take_highlight_pending(&self) -> bool {
        self.diff
            .as_ref()
            .is_some_and(|d| d.highlighter.take_pending())
    }
}
