//! The pipeline task: validate → workspace + clone → agent → diff → approval gate → publish →
//! cleanup, driven by the pure [`machine::Machine`].
//!
//! Invariants: it runs as one background tokio task that takes [`Command`]s and sends [`Event`]s on
//! a bounded channel; front-ends hold no pipeline logic. The run folder is created only once the
//! input is valid (bad input leaves nothing behind): its id is reserved when the run starts — an
//! exclusively created folder holding only the owner record, invisible to listings, removed if
//! validation fails — so two runs never share a folder; the patch and meta are on disk before the gate;
//! the workspace is removed at the end unless kept on purpose; the last event is `Done` or `Error`.

mod live;
pub mod machine;
pub mod model;
pub mod publish;
/// The reviewer's choice lives with the patch it selects from (`diff`); re-exported here for the
/// front-ends.
pub use crate::diff::selection;
mod setup;
/// The sandbox's network modes, named for the front-ends (which do not import `sandbox`).
pub use crate::sandbox::NetworkMode;
pub use setup::AGENT_NETWORK_NOTE;
mod stages;
mod workdelta;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::emit::Emitter;
use crate::event::{ErrorCode, Event, Stage, UsageTotals};
use crate::git::{Cloned, WorkDiff};
use crate::llm::{Message, Provider};
use crate::repo::RepoSource;
use crate::store::{RunDir, RunMeta, RunStatus, Store};
pub use machine::{Command, Effect, Gate, Input, Machine, Outcome, Phase, Selection};

/// Events buffered between the pipeline and its front-end.
pub const EVENT_CHANNEL: usize = 1024;

#[derive(Clone)]
pub struct RunRequest {
    pub repo: String,
    pub prompt: String,
    pub base: Option<String>,
    pub gate: Gate,
    /// Keep the workspace after the run (for debugging).
    pub keep_workspace: bool,
    /// Use this provider instead of the configured one (tests, demo).
    pub provider: Option<Arc<dyn Provider>>,
    /// Pull request title, body and draft flag given up front (`run --title/--body/--draft`).
    pub publish: publish::PublishOptions,
}

pub struct Pipeline {
    pub run_id: String,
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<Event>,
    pub task: JoinHandle<Outcome>,
}

/// Starts a run on a background task. `cwd` resolves relative paths in the input.
pub fn start(request: RunRequest, config: Arc<Config>, cwd: PathBuf) -> Pipeline {
    start_with_id(crate::store::new_run_id(), request, config, cwd)
}

/// Like [`start`], with a run id chosen by the caller (e.g. announced before the run was queued).
/// Should another run hold that id already, this run gets a fresh one: [`Pipeline::run_id`] is
/// the id it really has.
pub fn start_with_id(
    run_id: String,
    request: RunRequest,
    config: Arc<Config>,
    cwd: PathBuf,
) -> Pipeline {
    let reserved = Store::open(&config.home)
        .and_then(|store| store.reserve_run(&run_id))
        .map_err(|e| e.to_string());
    let run_id = match &reserved {
        Ok(dir) => dir.id.clone(),
        Err(_) => run_id,
    };
    let (event_tx, events) = mpsc::channel(EVENT_CHANNEL);
    let (commands, command_rx) = mpsc::channel(16);
    let driver = Driver {
        emitter: Emitter::new(run_id.clone(), event_tx),
        run_id: run_id.clone(),
        request,
        config,
        cwd,
        started: Instant::now(),
        store: None,
        reserved,
        source: None,
        provider: None,
        sandbox_kind: None,
        run_dir: None,
        meta: None,
        workspace: None,
        cloned: None,
        conversation: Vec::new(),
        usage: UsageTotals {
            cost_usd: Some(0.0),
            ..Default::default()
        },
        summary: String::new(),
        diff: None,
        clone_token: None,
        stop_reason: None,
        index_refresh: None,
        setup: None,
    };
    let span = tracing::info_span!("run", run_id = %run_id);
    let task = tokio::spawn(tracing::Instrument::instrument(
        driver.drive(command_rx),
        span,
    ));
    Pipeline {
        run_id,
        commands,
        events,
        task,
    }
}

struct Driver {
    emitter: Emitter,
    run_id: String,
    request: RunRequest,
    config: Arc<Config>,
    cwd: PathBuf,
    started: Instant,
    store: Option<Store>,
    /// This run's folder, created exclusively at the start (or why it could not be): it gets
    /// meta.json once the input is valid, and is removed if it never does.
    reserved: Result<RunDir, String>,
    source: Option<RepoSource>,
    provider: Option<Arc<dyn Provider>>,
    sandbox_kind: Option<crate::sandbox::SandboxKind>,
    run_dir: Option<RunDir>,
    meta: Option<RunMeta>,
    workspace: Option<PathBuf>,
    cloned: Option<Cloned>,
    conversation: Vec<Message>,
    usage: UsageTotals,
    summary: String,
    diff: Option<WorkDiff>,
    /// The token offered when cloning a GitHub repository (it may be private).
    clone_token: Option<crate::secret::Secret>,
    /// Why the run was stopped, when a front-end said (`Command::Stop`).
    stop_reason: Option<String>,
    /// The post-clone index refresh, settled before the host touches the index again.
    index_refresh: Option<crate::git::IndexRefresh>,
    /// What the setup stage ran and how it ended (`None`: no setup ran).
    setup: Option<setup::SetupDone>,
}

/// Keeps the reason of a `Stop` (the first one wins); the machine treats it as a `Cancel`.
fn note_stop_reason(command: &Command, reason: &mut Option<String>) {
    if let Command::Stop(why) = command {
        reason.get_or_insert_with(|| why.clone());
    }
}

impl Driver {
    async fn drive(mut self, mut commands: mpsc::Receiver<Command>) -> Outcome {
        let mut machine = Machine::new(self.request.gate);
        let mut pending: std::collections::VecDeque<Effect> = machine.handle(Input::Start).into();
        let mut commands_open = true;
        loop {
            let Some(effect) = pending.pop_front() else {
                if let Phase::Done(outcome) = &machine.phase {
                    return outcome.clone();
                }
                // Nothing running: a person decides (review).
                let command = commands.recv().await.unwrap_or(Command::Cancel);
                note_stop_reason(&command, &mut self.stop_reason);
                pending.extend(machine.handle(Input::Command(command)));
                continue;
            };
            match effect {
                Effect::Status { stage, message } => self.emitter.status(stage, message).await,
                Effect::CancelStage => {}
                Effect::Finish(outcome) => {
                    self.finish(&outcome).await;
                    pending.clear();
                    return outcome;
                }
                stage_effect => {
                    let cancel = CancellationToken::new();
                    let mut stop_reason = None;
                    let input = {
                        let fut = self.execute(stage_effect, cancel.clone());
                        tokio::pin!(fut);
                        loop {
                            tokio::select! {
                                input = &mut fut => break input,
                                command = commands.recv(), if commands_open => {
                                    let Some(command) = command else {
                                        commands_open = false;
                                        continue;
                                    };
                                    note_stop_reason(&command, &mut stop_reason);
                                    for fx in machine.handle(Input::Command(command)) {
                                        if fx == Effect::CancelStage {
                                            cancel.cancel();
                                        }
                                    }
                                }
                            }
                        }
                    };
                    if self.stop_reason.is_none() {
                        self.stop_reason = stop_reason;
                    }
                    pending.extend(machine.handle(input));
                }
            }
        }
    }

    async fn execute(&mut self, effect: Effect, cancel: CancellationToken) -> Input {
        let stage = effect.name();
        let started = Instant::now();
        tracing::info!(stage = %stage, "stage started");
        let input = self.execute_stage(effect, cancel).await;
        let outcome = match &input {
            Input::StageOk | Input::DiffReady { .. } => "ok",
            Input::StageCancelled => "cancelled",
            _ => "failed",
        };
        tracing::info!(stage = %stage, outcome, elapsed_ms = started.elapsed().as_millis() as u64, "stage ended");
        input
    }

    async fn execute_stage(&mut self, effect: Effect, cancel: CancellationToken) -> Input {
        let result = match effect {
            Effect::Validate => self.validate(&cancel).await,
            Effect::Clone => self.clone_repo(&cancel).await,
            Effect::Setup => self.run_setup(&cancel).await,
            Effect::RunAgent { followup } => self.run_agent(followup, &cancel).await,
            Effect::ComputeDiff => return self.compute_diff().await,
            Effect::Publish {
                selection,
                title,
                body,
                draft,
            } => {
                self.publish_stage(selection, title, body, draft, &cancel)
                    .await
            }
            Effect::CleanUp => {
                self.clean_up().await;
                Ok(())
            }
            Effect::CancelStage | Effect::Status { .. } | Effect::Finish(_) => Ok(()),
        };
        match result {
            Ok(()) => Input::StageOk,
            Err(stages::StageError::Cancelled) => Input::StageCancelled,
            Err(stages::StageError::Failed {
                message,
                retryable,
                code,
            }) => Input::StageFailed {
                message,
                retryable,
                code,
            },
        }
    }

    fn save_meta(&self) {
        if let (Some(dir), Some(meta)) = (&self.run_dir, &self.meta)
            && let Err(e) = dir.write_meta(meta)
        {
            tracing::error!("could not write meta.json: {e}");
        }
    }

    /// The error text of a cancelled run: why, when a front-end said, and where the patch is.
    /// A run stopped from outside (a signal, a `serve` limit) says `stopped`; else `cancelled`.
    fn stopped_code(&self) -> ErrorCode {
        match self.stop_reason {
            Some(_) => ErrorCode::Stopped,
            None => ErrorCode::Cancelled,
        }
    }

    fn cancelled_message(&self, patch_path: Option<&str>) -> String {
        let what = match &self.stop_reason {
            Some(why) => format!("stopped: {why}"),
            None => "cancelled".to_string(),
        };
        match patch_path {
            Some(p) => format!("{what}; the patch so far is saved at {p}"),
            None => what,
        }
    }

    async fn finish(&mut self, outcome: &Outcome) {
        if self.run_dir.is_none()
            && let Ok(dir) = &self.reserved
            && let Err(e) = crate::store::force_remove_dir(&dir.path)
        {
            tracing::warn!(
                "could not remove the unused run folder {}: {e}",
                dir.path.display()
            );
        }
        let cancelled = self.cancelled_message(None);
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let patch_path = self
            .run_dir
            .as_ref()
            .map(RunDir::patch_path)
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string());
        if let Some(meta) = self.meta.as_mut() {
            meta.status = match outcome {
                Outcome::Finished { .. } => RunStatus::Finished,
                Outcome::Published => RunStatus::Published,
                Outcome::Failed { .. } => RunStatus::Failed,
                Outcome::Cancelled { .. } => RunStatus::Cancelled,
            };
            meta.usage = self.usage.clone();
            meta.duration_ms = Some(duration_ms);
            meta.summary = (!self.summary.is_empty()).then(|| self.summary.clone());
            meta.error = match outcome {
                Outcome::Failed { message, .. } => Some(message.clone()),
                Outcome::Cancelled { .. } => Some(cancelled),
                _ => None,
            };
        }
        self.save_meta();
        let run_id = self.run_id.clone();
        let event = match outcome {
            Outcome::Finished { reason } => {
                self.emitter.status(Stage::Review, reason.clone()).await;
                Event::Done {
                    run_id,
                    pr_url: None,
                    summary: self.summary.clone(),
                    branch: None,
                    usage: self.usage.clone(),
                    duration_ms,
                    patch_path,
                }
            }
            Outcome::Published => Event::Done {
                run_id,
                pr_url: self.meta.as_ref().and_then(|m| m.pr_url.clone()),
                summary: self.summary.clone(),
                branch: self.meta.as_ref().and_then(|m| m.branch.clone()),
                usage: self.usage.clone(),
                duration_ms,
                patch_path,
            },
            Outcome::Failed {
                stage,
                message,
                retryable,
                code,
            } => Event::Error {
                run_id,
                stage: *stage,
                message: match &patch_path {
                    Some(p) if *stage == Stage::Agent => format!("{message} (patch so far: {p})"),
                    _ => message.clone(),
                },
                retryable: *retryable,
                code: *code,
            },
            Outcome::Cancelled { stage } => Event::Error {
                run_id,
                stage: *stage,
                message: self.cancelled_message(patch_path.as_deref()),
                retryable: false,
                code: self.stopped_code(),
            },
        };
        self.emitter.emit(event).await;
    }
}

/// The process exit code for a finished run: 0 success, 2 bad input, 1 anything else.
pub fn exit_code(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Finished { .. } | Outcome::Published => 0,
        Outcome::Failed {
            stage: Stage::Validate,
            ..
        } => 2,
        Outcome::Failed { .. } | Outcome::Cancelled { .. } => 1,
    }
}
