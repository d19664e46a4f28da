//! The app: the model plus the effects `update` asks for — starting pipelines, sending them
//! commands, reading past runs — shared by the terminal loop and by tests (which drive it with
//! keys and never open a terminal).
//!
//! Invariants: at most one pipeline is current; a replaced or abandoned pipeline is cancelled and
//! its late events are ignored (each event is tagged with its run id); effects that need the
//! terminal (editor, suspend, clipboard, browser, quit) are handed back to the caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::model::{Info, Model, Overlay, PastRun, PrPhase, Prefill};
use super::update::{Action, Msg, update};
use crate::config::Config;
use crate::event::Event;
use crate::llm::Provider;
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
    /// The selection sent with the last approval, to save what was approved.
    approved: Option<Selection>,
    /// A past run being published from its folder (its events are accepted too).
    past_publish: Option<String>,
    started: Instant,
}

/// How the header names the configured model before any call was made.
pub fn model_label(config: &Config) -> String {
    match config.model.as_deref().map(str::trim) {
        Some(m) if m.starts_with("scripted:") => {
            let path = m.trim_start_matches("scripted:");
            let name = std::path::Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string());
            format!("replay · {name}")
        }
        Some(m) if !m.is_empty() => m.to_string(),
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
        let sandbox = match crate::sandbox::resolve_kind(&config.sandbox) {
            Ok(k) => k.as_str().to_string(),
            Err(_) => "no sandbox available".into(),
        };
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
            approved: None,
            past_publish: None,
            started: Instant::now(),
        };
        (app, rx)
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
        self.perform(actions)
    }

    fn perform(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut rest = Vec::new();
        for a in actions {
            match a {
                Action::Start { repo, prompt, base } => self.start(repo, prompt, base),
                Action::Send(command) => {
                    if let Command::Approve { selection, .. } = &command {
                        self.approved = Some(selection.clone());
                    }
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
                }
                other => rest.push(other),
            }
        }
        rest
    }

    fn start(&mut self, repo: String, prompt: String, base: Option<String>) {
        self.retire();
        self.approved = None;
        let request = RunRequest {
            repo,
            prompt,
            base,
            gate: Gate::Interactive,
            keep_workspace: false,
            provider: self.provider.as_ref().map(|f| f()),
            publish: Default::default(),
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

    /// Publishes a past run from its folder on a background task; its events come back through
    /// the same channel as a live run's.
    fn publish_past(
        &mut self,
        run_id: String,
        selection: Selection,
        title: String,
        body: Option<String>,
        draft: bool,
    ) {
        let Some(run_dir) = Store::open(&self.config.home)
            .ok()
            .and_then(|s| s.run_dir(&run_id))
        else {
            update(
                &mut self.model,
                Msg::Failed(format!("run {run_id} is not in the store")),
            );
            return;
        };
        self.past_publish = Some(run_id.clone());
        let config = self.config.clone();
        let ui = self.tx.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(crate::pipeline::EVENT_CHANNEL);
            let emitter = crate::emit::Emitter::new(run_id.clone(), tx);
            if let Err(e) = run_dir.open_events().and_then(|f| emitter.attach_log(f)) {
                tracing::warn!("cannot append to the run's events: {e}");
            }
            let forward = tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    if ui
                        .send(PipeMsg {
                            run_id: run_id.clone(),
                            event,
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
            let request = crate::forge::record::PublishRequest {
                selection: Some(selection),
                title: Some(title),
                body,
                draft: Some(draft),
            };
            let cancel = tokio_util::sync::CancellationToken::new();
            crate::pipeline::publish::publish_saved_run(
                &run_dir, &config, &emitter, request, &cancel,
            )
            .await;
            drop(emitter);
            let _ = forward.await;
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
        let past = self.past_publish.as_deref() == Some(m.run_id.as_str());
        if self.run_id() != Some(m.run_id.as_str()) && !past {
            return;
        }
        if past && matches!(m.event, Event::Done { .. } | Event::Error { .. }) {
            self.past_publish = None;
        }
        let saved = match &m.event {
            Event::Done {
                pr_url: None,
                branch: None,
                patch_path: Some(p),
                ..
            } => self.save_approved(p),
            _ => None,
        };
        let is_end = matches!(m.event, Event::Done { .. } | Event::Error { .. });
        update(&mut self.model, Msg::Pipeline(whole_diff(m.event)));
        if let Some(path) = saved
            && let Overlay::Pr(d) = &mut self.model.overlay
            && let PrPhase::NotPublished { message, .. } = &mut d.phase
        {
            message.push_str(&format!("\napproved selection: {path}"));
        }
        if is_end && let Some(c) = self.current.take() {
            self.retired.push(c.task);
        }
    }

    /// After an approval that did not publish, saves the approved part of the patch next to the
    /// full one (`approved.diff`), so the selection is not lost.
    fn save_approved(&mut self, patch_path: &str) -> Option<String> {
        let selection = self.approved.take()?;
        let full = std::fs::read(patch_path).ok()?;
        let approved = crate::diff::filter(&full, &selection);
        let path = std::path::Path::new(patch_path).with_file_name("approved.diff");
        match std::fs::write(&path, approved) {
            Ok(()) => Some(path.display().to_string()),
            Err(e) => {
                tracing::warn!("could not save approved.diff: {e}");
                None
            }
        }
    }

    /// Cancels what is running and waits (bounded) for pipelines to clean up.
    pub async fn shutdown(&mut self, wait: Duration) {
        self.retire();
        let tasks = std::mem::take(&mut self.retired);
        let all = futures::future::join_all(tasks);
        let _ = tokio::time::timeout(wait, all).await;
    }

    /// Whether some pipeline task is still alive (for the shutdown message).
    pub fn busy(&self) -> bool {
        self.current.is_some() || self.retired.iter().any(|t| !t.is_finished())
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
    // Drawn lossily: the bytes stay in the run folder.
    let patch = dir
        .read_patch()
        .ok()
        .map(|p| String::from_utf8_lossy(&p).into_owned());
    Ok(PastRun {
        meta,
        events,
        patch,
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
