//! How pipeline events and past runs change the model (the event half of `update`).
//!
//! Invariants: pure like `update` — no IO; the state only moves forward along the pipeline's own
//! reports (a late event cannot resurrect a finished run's spinner); a PR dialog always ends in a
//! visible outcome (created, not published, or an error next to the fields).

use super::diffview::DiffView;
use super::model::{
    Focus, Model, Overlay, PastRun, PrDialog, PrField, PrPhase, RunState, field_text, text_field,
};
use crate::event::{Event, Stage};
use crate::store::RunStatus;

pub(super) fn pr_dialog(model: &Model) -> PrDialog {
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

    pub(super) fn ingest(&mut self, event: &Event) {
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
                pr_url,
                patch_path,
                branch,
                ..
            } => {
                self.run_ended_ms = Some(now);
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

    pub(super) fn load_past(&mut self, past: PastRun) {
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
