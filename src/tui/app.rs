//! The app: the model plus the effects `update` asks for — starting pipelines, sending them
//! commands, reading past runs — shared by the terminal loop and by tests (which drive it with
//! keys and never open a terminal).
//!
//! Invariants: at most one pipeline is current; a replaced or abandoned pipeline is cancelled and
//! its late events are ignored (each event is tagged with its run id); effects that need the
//! terminal (editor, suspend, clipboard, browser, quit) are handed back to the caller; the
//! review's selection is saved through the store whenever it changes; every publish attempt
//! reloads the publishing configuration when the caller said how (a fixed token is found).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{Info, Model, PastRun, Prefill, RunState};
use super::update::{Action, Msg, update};
use crate::config::Config;
use crate::event::Event;
use crate::pipeline::model::{ModelSpec, Provider};
use crate::pipeline::publish::{ConfigReload, PrRecord, PublishOptions, PublishRequest};
use crate::pipeline::selection::SavedSelection;
use crate::pipeline::{self, Command, Gate, Outcome, RunRequest, Selection};
use crate::store::Store;

/// Makes a fresh provider per run (a scripted replay is consumed as it runs).
pub type ProviderFactory = Arc<dyn Fn() -> Arc<dyn Provider> + Send + Sync>;

/// A pipeline event tagged with the run it belongs to.
#[derive(Debug)]
pub struct PipeMsg {
    pub run_id: String,
    pub event: Event,
}

/// Pipeline events buffered between the forwarders and the UI loop.
pub const UI_CHANNEL: usize = 4096;

struct Current {
    run_id: String,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<Outcome>,
}

pub struct App {
    pub model: Model,
    config: Arc<Config>,
    cwd: PathBuf,
    provider: Option<ProviderFactory>,
    current: Option<Current>,
    retired: Vec<JoinHandle<Outcome>>,
    tx: mpsc::Sender<PipeMsg>,
    /// A run being published from its folder (a reopened review); its events are accepted too.
    past_publish: Option<PastPublish>,
    /// How to reload the configuration before publishing (set by the terminal front-end).
    reload: Option<ConfigReload>,
    /// The selection last saved to the store, for which run.
    saved_selection: Option<(String, Selection)>,
    /// `review.json` as last saved (viewed marks, comments), for which run.
    saved_review: Option<(String, super::review_store::ReviewFile)>,
    started: Instant,
}

struct PastPublish {
    run_id: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// How the header names the configured model before any call was made.
pub fn model_label(config: &Config) -> String {
    let spec = config.model.as_deref().map(str::trim);
    match spec.map(|m| (m, m.parse::<ModelSpec>())) {
        Some((_, Ok(ModelSpec::Scripted(path)))) => {
            let name = std::path::Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.clone());
            format!("replay · {name}")
        }
        Some((m, _)) if !m.is_empty() => m.to_string(),
        _ => "no model configured".into(),
    }
}

impl App {
    pub fn new(
        config: Arc<Config>,
        cwd: PathBuf,
        prefill: Prefill,
        no_color: bool,
        provider: Option<ProviderFactory>,
    ) -> (App, mpsc::Receiver<PipeMsg>) {
        // The header reads "<sandbox>, no network": the proxy is the one way out.
        let sandbox = crate::pipeline::model::sandbox_label(&config);
        // A provider given by the caller (the demo's replay) names itself.
        let label = match &provider {
            Some(factory) => {
                let l = factory().label();
                if l.replay {
                    format!("replay · {}", l.model)
                } else {
                    format!("{}:{}", l.provider, l.model)
                }
            }
            None => model_label(&config),
        };
        let info = Info {
            model: label,
            sandbox,
            network: config.sandbox.network,
            tokens: 0,
            cost_usd: None,
        };
        let model = Model::new(prefill, cwd.clone(), info, no_color);
        let (tx, rx) = mpsc::channel(UI_CHANNEL);
        let app = App {
            model,
            config,
            cwd,
            provider,
            current: None,
            retired: Vec::new(),
            tx,
            past_publish: None,
            reload: None,
            saved_selection: None,
            saved_review: None,
            started: Instant::now(),
        };
        (app, rx)
    }

    /// Reload the publishing configuration (token, API URL, `[publish]`) this way before every
    /// publish attempt, so a retry after fixing the token finds the new one.
    pub fn set_config_reload(&mut self, reload: ConfigReload) {
        self.reload = Some(reload);
    }

    /// Leaves `d` out of the UI clock: the process was stopped (`Ctrl+Z`) and did no work.
    pub fn skip_clock(&mut self, d: Duration) {
        self.started += d;
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Advances the model's clock to now.
    pub fn tick(&mut self) {
        let now = self.now_ms();
        update(&mut self.model, Msg::Tick(now));
    }

    /// The current run's id, if a pipeline is alive.
    pub fn run_id(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.run_id.as_str())
    }

    /// Feeds one message, performs the actions that need no terminal, returns the rest.
    pub fn handle(&mut self, msg: Msg) -> Vec<Action> {
        let actions = update(&mut self.model, msg);
        let rest = self.perform(actions);
        self.save_selection(false);
        self.save_review();
        rest
    }

    fn perform(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut rest = Vec::new();
        for a in actions {
            match a {
                Action::Start { repo, prompt, base } => self.start(repo, prompt, base),
                Action::Send(Command::Cancel)
                    if self.current.is_none() && self.past_publish.is_some() =>
                {
                    if let Some(p) = &self.past_publish {
                        p.cancel.cancel();
                    }
                }
                Action::Send(command) => {
                    if let Some(c) = &self.current
                        && c.commands.try_send(command).is_err()
                    {
                        update(
                            &mut self.model,
                            Msg::Failed("the run is no longer listening".into()),
                        );
                    }
                }
                Action::PublishPast {
                    run_id,
                    selection,
                    title,
                    body,
                    draft,
                } => {
                    self.publish_past(run_id, selection, title, body, draft);
                }
                Action::EditFile(rel) => {
                    let checked = self
                        .model
                        .run_id
                        .as_deref()
                        .and_then(|id| super::editor::work_tree(&self.config.home, id))
                        .ok_or(super::editor::EditError::NoWorkTree)
                        .and_then(|wt| super::editor::resolve(&wt, &rel));
                    match checked {
                        Ok(path) => rest.push(Action::RunEditor { path, rel }),
                        Err(e) => {
                            update(&mut self.model, Msg::Failed(format!("E: {e}")));
                        }
                    }
                }
                Action::LoadRuns => {
                    let runs = Store::open(&self.config.home)
                        .map(|s| s.list())
                        .unwrap_or_default();
                    update(&mut self.model, Msg::Runs(runs));
                }
                Action::OpenRun(id) => {
                    let msg = match read_past(&self.config, &id) {
                        Ok(p) => Msg::PastRun(Box::new(p)),
                        Err(e) => Msg::Failed(format!("cannot open run {id}: {e}")),
                    };
                    update(&mut self.model, msg);
                    let saved = Store::open(&self.config.home)
                        .ok()
                        .and_then(|s| s.run_dir(&id))
                        .and_then(|d| super::review_store::read(&d));
                    if let Some(r) = saved {
                        super::review_store::apply(&r, &mut self.model);
                        self.saved_review = Some((id.clone(), r));
                    }
                }
                other => rest.push(other),
            }
        }
        rest
    }

    fn start(&mut self, repo: String, prompt: String, base: Option<String>) {
        self.retire();
        let request = RunRequest {
            repo,
            prompt,
            base,
            gate: Gate::Interactive,
            keep_workspace: false,
            provider: self.provider.as_ref().map(|f| f()),
            publish: PublishOptions {
                reload: self.reload.clone(),
                ..Default::default()
            },
        };
        let mut p = pipeline::start(request, self.config.clone(), self.cwd.clone());
        let run_id = p.run_id.clone();
        let tx = self.tx.clone();
        let id = run_id.clone();
        tokio::spawn(async move {
            while let Some(event) = p.events.recv().await {
                if tx
                    .send(PipeMsg {
                        run_id: id.clone(),
                        event,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        self.current = Some(Current {
            run_id: run_id.clone(),
            commands: p.commands,
            task: p.task,
        });
        update(&mut self.model, Msg::Started(run_id));
    }

    /// Publishes a run whose pipeline has ended from its folder (`publish_saved_run`, with the
    /// configuration reloaded); its events come back through the same channel as a live run's.
    fn publish_past(
        &mut self,
        run_id: String,
        selection: Selection,
        title: String,
        body: Option<String>,
        draft: bool,
    ) {
        let fail = |app: &mut App, message: String| {
            update(
                &mut app.model,
                Msg::Pipeline(Event::Error {
                    run_id: run_id.clone(),
                    stage: crate::event::Stage::Publish,
                    message,
                    retryable: false,
                    code: crate::event::ErrorCode::Internal,
                }),
            );
        };
        let Some(run_dir) = Store::open(&self.config.home)
            .ok()
            .and_then(|s| s.run_dir(&run_id))
        else {
            fail(self, format!("run {run_id} is not in the store"));
            return;
        };
        let config = match &self.reload {
            Some(r) => match r.publish_config(&self.config) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    self.model.notice = Some(format!(
                        "could not reload the configuration ({e}); using the one loaded at start"
                    ));
                    self.config.clone()
                }
            },
            None => self.config.clone(),
        };
        let request = PublishRequest {
            selection: Some(selection),
            title: Some(title),
            body,
            draft: Some(draft),
        };
        let cancel = CancellationToken::new();
        let mut publishing =
            match pipeline::publish::publish_saved_run(run_dir, config, request, cancel.clone()) {
                Ok(p) => p,
                Err(e) => {
                    fail(self, format!("cannot append to the run's events: {e}"));
                    return;
                }
            };
        let ui = self.tx.clone();
        let id = run_id.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = publishing.events.recv().await {
                let m = PipeMsg {
                    run_id: id.clone(),
                    event,
                };
                if ui.send(m).await.is_err() {
                    break;
                }
            }
            let _ = publishing.task.await;
        });
        self.past_publish = Some(PastPublish {
            run_id,
            cancel,
            task,
        });
    }

    /// Cancels the current pipeline (if any) and lets it finish on its own.
    fn retire(&mut self) {
        if let Some(c) = self.current.take() {
            let _ = c.commands.try_send(Command::Cancel);
            self.retired.push(c.task);
        }
    }

    /// Feeds a pipeline event; events from other runs are dropped.
    pub fn pipeline_event(&mut self, m: PipeMsg) {
        let past = self
            .past_publish
            .as_ref()
            .is_some_and(|p| p.run_id == m.run_id);
        if self.run_id() != Some(m.run_id.as_str()) && !past {
            return;
        }
        let is_end = matches!(m.event, Event::Done { .. } | Event::Error { .. });
        let new_diff = matches!(m.event, Event::Diff { .. });
        update(&mut self.model, Msg::Pipeline(whole_diff(m.event)));
        if past && is_end {
            self.past_publish = None;
        }
        if is_end
            && !past
            && let Some(c) = self.current.take()
        {
            self.retired.push(c.task);
        }
        self.save_selection(new_diff);
        self.save_review();
    }

    /// Saves viewed marks and comments (`review.json`) when they changed.
    fn save_review(&mut self) {
        super::review_store::save(&self.config.home, &mut self.model, &mut self.saved_review);
    }

    /// Saves the review's selection through the store when it changed (or the diff did), so a
    /// review whose process ends can be reopened with it.
    fn save_selection(&mut self, diff_changed: bool) {
        let reviewing = matches!(self.model.state, RunState::Review | RunState::Running(_));
        let (Some(run_id), Some(diff)) = (&self.model.run_id, &self.model.diff) else {
            return;
        };
        if !reviewing || self.model.viewing.is_some() {
            return;
        }
        let selection = diff.selection();
        let unchanged = self
            .saved_selection
            .as_ref()
            .is_some_and(|(id, s)| id == run_id && *s == selection);
        if unchanged && !diff_changed {
            return;
        }
        let Some(dir) = Store::open(&self.config.home)
            .ok()
            .and_then(|s| s.run_dir(run_id))
        else {
            return;
        };
        match dir.write_selection(&SavedSelection::capture(diff.patch.as_bytes(), &selection)) {
            Ok(()) => self.saved_selection = Some((run_id.clone(), selection)),
            Err(e) => {
                tracing::warn!("could not save selection.json: {e}");
                self.model.notice = Some(format!("could not save the selection: {e}"));
            }
        }
    }

    /// Cancels what is running and waits (bounded) for pipelines to clean up.
    pub async fn shutdown(&mut self, wait: Duration) {
        self.retire();
        let publishing = self.past_publish.take().map(|p| {
            p.cancel.cancel();
            p.task
        });
        let tasks = std::mem::take(&mut self.retired);
        let all = async {
            futures::future::join_all(tasks).await;
            if let Some(t) = publishing {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(wait, all).await;
    }

    /// Whether some pipeline task is still alive (for the shutdown message).
    pub fn busy(&self) -> bool {
        self.current.is_some()
            || self.past_publish.is_some()
            || self.retired.iter().any(|t| !t.is_finished())
    }
}

fn read_past(config: &Config, id: &str) -> std::io::Result<PastRun> {
    let store = Store::open(&config.home)?;
    let dir = store
        .run_dir(id)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such run"))?;
    let meta = dir.read_meta()?;
    let events = std::fs::read_to_string(dir.events_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .map(whole_diff)
        .collect();
    let raw = dir.read_patch().ok();
    let selection = match (&raw, dir.read_selection::<SavedSelection>()) {
        (Some(p), Ok(Some(saved))) => Some(saved.resolve(p).selection),
        (_, Err(e)) => {
            tracing::warn!("run {id}: unreadable selection.json ({e}); everything is selected");
            None
        }
        _ => None,
    };
    // Drawn lossily: the bytes stay in the run folder.
    let patch = raw.map(|p| String::from_utf8_lossy(&p).into_owned());
    let pr = dir
        .read_json::<PrRecord>(&dir.pr_path())
        .ok()
        .map(|r| (r.title, r.body, r.draft));
    Ok(PastRun {
        meta,
        events,
        patch,
        selection,
        pr,
    })
}

/// A `Diff` event whose patch was cut to keep the event small, with the whole patch read from
/// the run folder (decoded for drawing); other events as they are.
fn whole_diff(event: Event) -> Event {
    match event {
        Event::Diff {
            run_id,
            files,
            patch_truncated: true,
            patch_path: Some(path),
            files_truncated,
            patch,
            patch_base64,
        } => match std::fs::read(&path) {
            Ok(bytes) => Event::Diff {
                run_id,
                files,
                patch: String::from_utf8_lossy(&bytes).into_owned(),
                patch_base64: None,
                patch_truncated: false,
                patch_path: Some(path),
                files_truncated,
            },
            Err(e) => {
                tracing::warn!("could not read the whole patch {path}: {e}");
                Event::Diff {
                    run_id,
                    files,
                    patch,
                    patch_base64,
                    patch_truncated: true,
                    patch_path: Some(path),
                    files_truncated,
                }
            }
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_diff_is_drawn_from_the_whole_patch_in_the_run_folder() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("patch.diff");
        std::fs::write(
            &path,
            b"diff --git a/a b/a\n+caf\xe9\ndiff --git a/b b/b\n+x\n",
        )
        .unwrap();
        let cut = Event::Diff {
            run_id: "r".into(),
            files: vec![],
            patch: "diff --git a/a b/a\n+caf\u{fffd}\n".into(),
            patch_base64: Some("ZGlmZg==".into()),
            patch_truncated: true,
            patch_path: Some(path.display().to_string()),
            files_truncated: false,
        };
        let Event::Diff {
            patch,
            patch_truncated,
            ..
        } = whole_diff(cut)
        else {
            panic!("still a Diff");
        };
        assert!(!patch_truncated);
        assert_eq!(
            patch,
            "diff --git a/a b/a\n+caf\u{fffd}\ndiff --git a/b b/b\n+x\n"
        );
        let whole = Event::diff("r", vec![], b"diff --git a/a b/a\n", None);
        assert_eq!(whole_diff(whole.clone()), whole);
    }
}
