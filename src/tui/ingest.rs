//! How pipeline events and past runs change the model (the event half of `update`).
//!
//! Invariants: pure like `update` — no IO; the state only moves forward along the pipeline's own
//! reports (a late event cannot resurrect a finished run's spinner), except back to review when
//! the pipeline says a publish or follow-up did not go through; a PR dialog always ends in a
//! visible outcome (created, not published, or an error next to the fields); a re-diff keeps the
//! choices of the hunks it did not change; the PR dialog's generated text is `forge::text`'s for
//! the current selection, and text the user edited is kept.

use super::diffview::DiffView;
use super::model::{
    Focus, Model, Overlay, PastRun, PrDialog, PrField, PrPhase, PrText, RunState, field_text,
    text_field,
};
use crate::event::{Event, Stage};
use crate::pipeline::publish::text;
use crate::pipeline::{Selection, machine};
use crate::store::RunStatus;

/// The PR title and body generated for what is selected now, with the same words publishing
/// uses (`forge::text`): the file list and counts of the approved subset only, the agent's summary
/// marked as describing the full change when part of it is left out.
pub(super) fn generated_pr_text(model: &Model) -> (String, String) {
    let prompt = if model.run_prompt.is_empty() {
        field_text(&model.prompt)
    } else {
        model.run_prompt.clone()
    };
    let title_from = model.first_summary.as_deref().unwrap_or(&model.summary);
    let title = text::default_title(title_from, &prompt);
    let (files, scope) = match &model.diff {
        Some(d) => {
            let approved = crate::diff::filter(d.patch.as_bytes(), &d.selection());
            (
                text::file_changes(&approved),
                text::Scope::of(d.patch.as_bytes(), &approved),
            )
        }
        None => (vec![], text::Scope::default()),
    };
    let body = text::pr_body(&text::BodyInput {
        summary: &model.summary,
        prompt: &prompt,
        followups: &model.followups,
        files: &files,
        scope,
        commands: &model.commands,
        model: &model.info.model,
        run_id: model.run_id.as_deref().unwrap_or(""),
    });
    (title, body)
}

/// The PR dialog for what is selected now, with the text the user edited earlier kept.
pub(super) fn pr_dialog(model: &Model) -> PrDialog {
    let (generated_title, generated_body) = generated_pr_text(model);
    let kept = &model.pr_text;
    let title = kept
        .title
        .clone()
        .unwrap_or_else(|| generated_title.clone());
    let body = kept.body.clone().unwrap_or_else(|| generated_body.clone());
    let error = match &kept.body_based_on {
        Some(was) if kept.body.is_some() && *was != generated_body => Some(
            "the change or the selection moved on since you edited the body: check what it says"
                .to_string(),
        ),
        _ => None,
    };
    // The body opens at its top: its first lines say what the PR is (and what it is not).
    let mut body = text_field(body.trim(), "PR body", true);
    body.move_cursor(ratatui_textarea::CursorMove::Top);
    body.move_cursor(ratatui_textarea::CursorMove::Head);
    PrDialog {
        title: text_field(&title, "PR title", false),
        body,
        draft: kept.draft,
        field: PrField::Title,
        phase: PrPhase::Editing,
        error,
        generated_title,
        generated_body,
        scroll: 0,
    }
}

/// Keeps what the user changed in the dialog (title, body, draft) for the next time it opens.
pub(super) fn remember_pr_text(model: &mut Model, d: &PrDialog) {
    let title = field_text(&d.title);
    let body = field_text(&d.body);
    let edited =
        |now: &str, generated: &str| (now.trim() != generated.trim()).then(|| now.to_string());
    model.pr_text.title = edited(&title, &d.generated_title);
    let body = edited(&body, &d.generated_body);
    if body.is_some() && body != model.pr_text.body {
        model.pr_text.body_based_on = Some(d.generated_body.clone());
    }
    model.pr_text.body = body;
    model.pr_text.draft = d.draft;
}

/// Marks the files and hunks `selection` leaves out in `view` (paths it does not have are skipped).
pub(super) fn apply_selection(view: &mut DiffView, selection: &Selection) {
    view.excluded_files.clear();
    view.excluded_hunks.clear();
    view.excluded_lines.clear();
    for (i, f) in view.files.iter().enumerate() {
        if selection.excluded_files.contains(&f.path) {
            view.excluded_files.insert(i);
        }
        for (path, h) in &selection.excluded_hunks {
            if *path == f.path && *h < f.hunks.len() {
                view.excluded_hunks.insert((i, *h));
            }
        }
        for (path, h, l) in &selection.excluded_lines {
            if *path == f.path && f.hunks.get(*h).is_some_and(|h| *l < h.lines.len()) {
                view.excluded_lines.insert((i, *h, *l));
            }
        }
    }
}

impl Model {
    /// Clears everything about the previous run (the input fields stay).
    pub fn reset_run(&mut self) {
        self.log = Default::default();
        self.diff = None;
        self.summary.clear();
        self.first_summary = None;
        self.agent_network = None;
        self.last_stage = None;
        self.followups.clear();
        self.comments.clear();
        self.user_edit = None;
        self.commands.clear();
        self.pr_text = PrText::default();
        self.reopened = false;
        self.rerun_armed = false;
        self.patch_path = None;
        self.pr_url = None;
        self.publish_note = None;
        self.published = None;
        self.run_id = None;
        self.run_ended_ms = None;
        self.run_waited_ms = 0;
        self.info.tokens = 0;
        self.info.cost_usd = None;
        self.quit_armed = false;
        self.viewing = None;
        self.overlay = Overlay::None;
        self.pager = None;
        self.live_diff = false;
        self.before_live = None;
        self.jump_back = None;
    }

    pub(super) fn ingest(&mut self, event: &Event) {
        self.ingest_event(event);
        if self.state == RunState::Review {
            // Review waits for the human: the clock shows the work only.
            self.stop_clock();
        }
        if !self.state.is_busy() {
            self.quit_armed = false;
            if self
                .notice
                .as_deref()
                .is_some_and(|n| n.starts_with("cancelling"))
            {
                self.notice = None;
            }
        }
    }

    fn ingest_event(&mut self, event: &Event) {
        let now = self.clock_ms;
        self.log.ingest(event, now);
        match event {
            Event::Status { stage, message, .. } => {
                if *stage == Stage::Publish {
                    self.publish_note = Some(message.clone());
                }
                self.last_stage = Some(*stage);
                if *stage == Stage::Setup
                    && let Some((_, mode)) =
                        message.rsplit_once(crate::pipeline::AGENT_NETWORK_NOTE)
                {
                    self.agent_network = crate::pipeline::NetworkMode::parse(mode);
                }
                if *stage == Stage::Review
                    && self.first_summary.is_none()
                    && self.diff.as_ref().is_some_and(|d| !d.is_empty())
                {
                    self.first_summary = Some(self.summary.clone());
                }
                if matches!(self.state, RunState::Running(_)) {
                    self.state = if *stage == Stage::Review {
                        RunState::Review
                    } else {
                        RunState::Running(*stage)
                    };
                } else if *stage == Stage::Review
                    && matches!(self.state, RunState::Publishing | RunState::Cancelling)
                {
                    let publish_ended = self
                        .publish_note
                        .as_deref()
                        .is_some_and(machine::is_setback);
                    if publish_ended || self.state == RunState::Publishing {
                        // The publish failed or was cancelled: the pipeline kept the review.
                        self.back_to_review();
                    } else {
                        // A cancelled follow-up: the review it came from is back.
                        self.state = RunState::Review;
                        self.quit_armed = false;
                    }
                }
                if *stage == Stage::Agent && machine::is_setback(message) {
                    self.notice = Some(message.clone());
                }
            }
            Event::AiMessage { message, .. } => self.summary = message.clone(),
            Event::ToolBash {
                command,
                exit_code,
                terminated,
                ..
            } if self.last_stage != Some(Stage::Setup) => self.commands.push(text::CommandRun {
                command: command.clone(),
                exit_code: *exit_code,
                terminated: terminated.clone(),
            }),
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
            Event::LiveDiff { patch, .. } => self.live_diff(patch),
            Event::Diff { patch, files, .. } => {
                let mut view = DiffView::new(patch.clone());
                super::filelist::event_warnings(&mut view, files);
                if let Some(old) = self.reviewed_before_live() {
                    self.carry_selection(&old, &mut view);
                    super::review_keys::new_diff(self, &old, &mut view);
                }
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
            Event::Error { message, .. }
                if self.reopened
                    && matches!(self.state, RunState::Publishing | RunState::Cancelling) =>
            {
                // Publishing a reopened run from its folder failed or was cancelled: the review
                // stays.
                self.publish_note = Some(message.clone());
                self.back_to_review();
            }
            Event::Error { message, code, .. } => {
                self.stop_clock();
                self.state = if self.state == RunState::Cancelling || code.is_cancelled(message) {
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
                pr_url,
                patch_path,
                branch,
                ..
            } => {
                self.stop_clock();
                self.reopened = false;
                self.patch_path = patch_path.clone();
                let was_publishing = self.state == RunState::Publishing;
                self.state = if self.state == RunState::Cancelling {
                    RunState::Cancelled
                } else {
                    RunState::Done {
                        published: pr_url.is_some() || (was_publishing && branch.is_some()),
                    }
                };
                if let Some(url) = pr_url {
                    self.pr_url = Some(url.clone());
                } else if was_publishing && let Overlay::Pr(d) = &mut self.overlay {
                    let mut message = self
                        .publish_note
                        .clone()
                        .unwrap_or_else(|| "the run ended without a pull request".into());
                    if branch.is_none()
                        && let Some(p) = patch_path
                    {
                        message.push_str(&format!("\nfull patch: {p}"));
                    }
                    d.phase = PrPhase::NotPublished {
                        branch: branch.clone(),
                        message,
                    };
                }
            }
            _ => {}
        }
    }

    /// Back in review after a publish that did not happen; the dialog (reopened if it was hidden)
    /// says why, with the text and draft flag as they were.
    fn back_to_review(&mut self) {
        self.state = RunState::Review;
        self.quit_armed = false;
        let why = self
            .publish_note
            .clone()
            .unwrap_or_else(|| "nothing was published".into());
        let mut d = match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::Pr(d) => d,
            other => {
                self.overlay = other;
                Box::new(pr_dialog(self))
            }
        };
        d.phase = PrPhase::Editing;
        d.error = Some(if why.starts_with(machine::PUBLISH_CANCELLED) {
            format!("{why} · Ctrl+S publishes")
        } else {
            let detail = why.strip_prefix(machine::PUBLISH_FAILED).unwrap_or(&why);
            format!("publishing failed (Ctrl+S retries once it is fixed): {detail}")
        });
        self.overlay = Overlay::Pr(d);
    }

    /// A re-diff (follow-up) keeps the choice of every hunk it did not change.
    fn carry_selection(&mut self, old: &DiffView, new: &mut DiffView) {
        let before = old.selection();
        if before.is_everything() {
            return;
        }
        let carried =
            crate::pipeline::selection::carry(old.patch.as_bytes(), &before, new.patch.as_bytes());
        apply_selection(new, &carried.selection);
        self.notice = Some(match carried.changed {
            0 => format!(
                "the {} part{} you left out stay{} out",
                carried.kept,
                if carried.kept == 1 { "" } else { "s" },
                if carried.kept == 1 { "s" } else { "" }
            ),
            n => format!(
                "{} left-out part{} kept out; {n} changed by the follow-up and now in the PR: review them",
                carried.kept,
                if carried.kept == 1 { "" } else { "s" },
            ),
        });
    }

    pub(super) fn load_past(&mut self, past: PastRun) {
        self.reset_run();
        let id = past.meta.id.clone();
        self.viewing = Some(id.clone());
        self.run_id = Some(id.clone());
        self.repo = text_field(&past.meta.repo, "", false);
        self.base = text_field(
            past.meta.base.as_deref().unwrap_or(""),
            "default branch",
            false,
        );
        self.prompt = text_field(&past.meta.prompt, "", true);
        self.run_repo = past.meta.repo.clone();
        self.run_base = past.meta.base.clone();
        self.run_prompt = past.meta.prompt.clone();
        self.followups = past.meta.followups.clone();
        self.state = RunState::Idle;
        for e in &past.events {
            self.ingest(e);
        }
        self.log.close_running(self.clock_ms, false);
        if let Some(summary) = &past.meta.summary {
            self.summary = summary.clone();
        }
        // The saved patch is the one the saved selection was made on.
        if let Some(p) = past.patch.filter(|p| !p.trim().is_empty()) {
            self.diff = Some(DiffView::new(p));
        }
        self.pr_url = past.meta.pr_url.clone();
        self.run_started_ms = None;
        self.focus = if self.diff.is_some() {
            Focus::Diff
        } else {
            Focus::Steps
        };
        // Whatever ended the run's process (a closed terminal, a quit, a failed publish), a saved
        // patch that was never published can be reviewed and published again.
        let reviewable = !matches!(past.meta.status, RunStatus::Published | RunStatus::Running)
            && self.diff.is_some();
        if reviewable {
            if let (Some(d), Some(sel)) = (self.diff.as_mut(), &past.selection) {
                apply_selection(d, sel);
            }
            if let Some((title, body, draft)) = past.pr {
                self.pr_text = PrText {
                    title: Some(title),
                    body: Some(body),
                    body_based_on: None,
                    draft,
                };
            }
            self.viewing = None;
            self.reopened = true;
            self.state = RunState::Review;
            self.notice = Some(format!(
                "run {id} ({}) reopened for review · space in/out · c creates the PR from its \
                 folder · e edits the prompt and runs it again",
                past.meta.status.as_str()
            ));
            return;
        }
        self.state = match past.meta.status {
            RunStatus::Published => RunState::Done { published: true },
            RunStatus::Failed => RunState::Failed,
            RunStatus::Cancelled => RunState::Cancelled,
            _ => RunState::Done { published: false },
        };
        self.notice = Some(format!(
            "viewing run {id} (read-only) · e edits the prompt and runs it again"
        ));
    }
}
