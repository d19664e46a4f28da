//! The Publish stage: approved patch → commit on a clean checkout of the base → branch pushed from
//! the host → pull request (GitHub) or request-pull summary (other remotes, local repositories).
//! Also the pre-flight that runs before the agent, and [`publish_saved_run`]: publishing a run
//! from its folder, the one entry point of `publish RUN_ID`, `serve` and the TUI.
//!
//! Invariants: `approved.diff` and `pr.json` are in the run folder before the first network call,
//! so nothing approved is lost to a failure; a retry reuses them (same branch, same commit) and
//! finds the branch and pull request an earlier attempt made instead of making new ones; the
//! commit is made from the base commit fetched afresh, never from the agent's workspace; the
//! token is handed to git only for the commands that talk to the repository's own host.

mod target;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stages::StageError;
use super::{Driver, Gate, Selection};
use crate::config::Config;
use crate::emit::Emitter;
use crate::event::{ErrorCode, Event, Stage};
pub use crate::forge::record::PrRecord;
use crate::forge::record::{self, author_for, io, prepare_record};
/// The PR title, body and commit message as publishing words them (the TUI previews them).
pub use crate::forge::text;
use crate::forge::{self, ForgeError, Target};
use crate::git::GitError;
use crate::git::publish::{self as gitpub, Author, Remote};
use crate::repo::RepoSource;
use crate::store::{RunDir, RunStatus};
use target::{finish, push_error};

/// What the person approved, as a front-end says it (the `serve` body, the TUI's dialog, `run`'s
/// flags); `None` fields keep the saved (or default) value. The pipeline's own type: the record
/// layer (`forge::record`) gets its copy when the publish starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// `Some` starts from the run's patch again with this selection; `None` reuses `approved.diff`
    /// (or the whole patch if nothing was approved yet).
    pub selection: Option<Selection>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub draft: Option<bool>,
}

impl From<PublishRequest> for record::PublishRequest {
    fn from(r: PublishRequest) -> Self {
        record::PublishRequest {
            selection: r.selection,
            title: r.title,
            body: r.body,
            draft: r.draft,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Published {
    pub branch: String,
    pub base: String,
    pub pr_url: Option<String>,
    pub pr_number: Option<u64>,
    /// For remotes without pull requests: the request-pull summary.
    pub summary: Option<String>,
}

/// Publishes a run from its folder. Used by the pipeline after approval and by `publish RUN_ID`.
/// A cancel stops it at once: every git process it started is killed with its future.
pub async fn publish(
    run_dir: &RunDir,
    config: &Config,
    emitter: &Emitter,
    request: PublishRequest,
    cancel: &CancellationToken,
) -> Result<Published, ForgeError> {
    let result = tokio::select! {
        r = publish_inner(run_dir, config, emitter, request, cancel) => r,
        _ = cancel.cancelled() => Err(ForgeError::Cancelled),
    };
    if let Ok(Published {
        summary: Some(text),
        ..
    }) = &result
        && let Err(e) = std::fs::write(run_dir.path.join("request-pull.txt"), text)
    {
        tracing::warn!("could not save request-pull.txt: {e}");
    }
    result
}

async fn publish_inner(
    run_dir: &RunDir,
    config: &Config,
    emitter: &Emitter,
    request: PublishRequest,
    cancel: &CancellationToken,
) -> Result<Published, ForgeError> {
    let meta = run_dir.read_meta().map_err(io("reading meta.json"))?;
    let (mut record, patch) = prepare_record(run_dir, &meta, config, &request.into())?;
    let warned = warned_files(&patch);
    if !warned.is_empty() {
        emitter
            .status(
                Stage::Publish,
                format!(
                    "⚠ publishing files with warnings: {}",
                    describe_warned(&warned)
                ),
            )
            .await;
    }
    let save = |r: &PrRecord| {
        run_dir
            .write_json(&run_dir.pr_path(), r)
            .map_err(io("saving pr.json"))
    };
    emitter
        .status(
            Stage::Publish,
            format!(
                "approved patch and pull request text saved in {}",
                run_dir.path.display()
            ),
        )
        .await;
    let notify = notifier(emitter);
    let plan = forge::preflight(&record.source, config, &notify, cancel.clone()).await?;
    let author = match (&record.author_name, &record.author_email) {
        (Some(name), Some(email)) => Author {
            name: name.clone(),
            email: email.clone(),
        },
        _ => author_for(config, &plan).await,
    };
    record.author_name = Some(author.name.clone());
    record.author_email = Some(author.email.clone());
    save(&record)?;

    let work = config
        .home
        .join("work")
        .join(format!("{}-publish", record.run_id));
    let origin = match &plan.target {
        Target::GitHub(r) => Remote {
            url: r.clone_url.clone(),
            allow: if r.clone_url.starts_with("http://") {
                "http"
            } else {
                "https"
            }
            .into(),
            token: plan.token.clone(),
        },
        Target::Remote { url } => Remote {
            url: url.clone(),
            allow: if url.starts_with("http://") {
                "http"
            } else {
                "https"
            }
            .into(),
            token: None,
        },
        Target::Local { path } => Remote {
            url: format!("file://{}", path.display()),
            allow: "file".into(),
            token: None,
        },
    };
    emitter
        .status(
            Stage::Publish,
            format!(
                "committing the approved changes onto {} @ {}",
                record.base,
                &record.base_commit[..record.base_commit.len().min(10)]
            ),
        )
        .await;
    let prepared = match gitpub::prepare(
        &work,
        &origin,
        &record.base_commit,
        Some(&record.base),
        &patch,
        &record.commit_message,
        &author,
        record.commit_time,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            remove_work_dir(&work);
            return Err(match e {
                GitError::Failed { what, stderr } if what == "apply" => ForgeError::Config(
                    format!("the approved patch does not apply to the base commit: {stderr}"),
                ),
                other => push_error(other, &origin.url),
            });
        }
    };
    record.commit = Some(prepared.commit.clone());
    if let Err(e) = save(&record) {
        remove_work_dir(&work);
        return Err(e);
    }
    let result = finish(
        &mut record,
        &plan,
        &origin,
        &prepared,
        config,
        emitter,
        cancel,
    )
    .await;
    remove_work_dir(&work);
    save(&record)?;
    result
}

fn remove_work_dir(work: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(work)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("could not remove {}: {e}", work.display());
    }
}

/// The message of a failed publish: the error, then how to retry without losing anything.
pub fn failure_message(e: &ForgeError, run_dir: &RunDir) -> String {
    format!(
        "{e}. Nothing is lost: the approved patch and pull request text are in {}; retry with \
         `tiny-backspace publish {}`",
        run_dir.path.display(),
        run_dir.id
    )
}

/// A publish of a saved run, running in the background (see [`publish_saved_run`]).
pub struct SavedPublish {
    /// Its events, also appended to the run's `events.jsonl`; the last one is `Done` or `Error`.
    pub events: mpsc::Receiver<Event>,
    /// Whether it published.
    pub task: JoinHandle<bool>,
}

/// Publishes a run from its folder on a background task: the one entry point of
/// `tiny-backspace publish RUN_ID`, `serve`'s `POST /runs/{id}/publish` and the TUI's publishing of
/// a run whose pipeline has ended. The events go to the returned channel and to the run's
/// `events.jsonl`; the result is recorded in `meta.json`; the last event is `Done` or `Error`.
/// Fails only when the run's event log cannot be opened (then nothing was attempted).
pub fn publish_saved_run(
    run_dir: RunDir,
    config: Arc<Config>,
    request: PublishRequest,
    cancel: CancellationToken,
) -> std::io::Result<SavedPublish> {
    let (tx, events) = mpsc::channel(super::EVENT_CHANNEL);
    let emitter = Emitter::new(run_dir.id.clone(), tx);
    emitter.attach_log(run_dir.open_events()?)?;
    let task = tokio::spawn(async move {
        publish_and_record(&run_dir, &config, &emitter, request, &cancel).await
    });
    Ok(SavedPublish { events, task })
}

/// Publishes from the run folder, records the result in `meta.json`, and ends with `Done` or
/// `Error`. Returns whether it succeeded.
async fn publish_and_record(
    run_dir: &RunDir,
    config: &Config,
    emitter: &Emitter,
    request: PublishRequest,
    cancel: &CancellationToken,
) -> bool {
    let started = std::time::Instant::now();
    let result = publish(run_dir, config, emitter, request, cancel).await;
    let mut meta = run_dir.read_meta().ok();
    let event = match &result {
        Ok(p) => {
            if let Some(m) = meta.as_mut() {
                m.branch = Some(p.branch.clone());
                m.pr_url = p.pr_url.clone();
                m.status = RunStatus::Published;
                m.error = None;
            }
            Event::Done {
                run_id: run_dir.id.clone(),
                pr_url: p.pr_url.clone(),
                summary: meta
                    .as_ref()
                    .and_then(|m| m.summary.clone())
                    .unwrap_or_default(),
                branch: Some(p.branch.clone()),
                usage: meta.as_ref().map(|m| m.usage.clone()).unwrap_or_default(),
                duration_ms: started.elapsed().as_millis() as u64,
                patch_path: Some(run_dir.approved_patch_path().display().to_string()),
            }
        }
        Err(e) => {
            let message = failure_message(e, run_dir);
            if let Some(m) = meta.as_mut() {
                m.error = Some(message.clone());
            }
            Event::Error {
                run_id: run_dir.id.clone(),
                stage: Stage::Publish,
                message,
                retryable: e.is_retryable(),
                code: e.code(),
            }
        }
    };
    if let Some(m) = &meta
        && let Err(e) = run_dir.write_meta(m)
    {
        tracing::error!("could not write meta.json: {e}");
    }
    emitter.emit(event).await;
    result.is_ok()
}

/// Loads the configuration afresh, from wherever the front-end first loaded it, so that a retried
/// publish finds a token fixed in the meantime (in `.env` or the config file; `gh auth token` is
/// asked on every attempt anyway). The process environment cannot change under a running process:
/// a wrong `GITHUB_TOKEN` exported in the shell needs a restart.
#[derive(Clone)]
pub struct ConfigReload(Arc<dyn Fn() -> Result<Config, String> + Send + Sync>);

impl ConfigReload {
    pub fn new(load: impl Fn() -> Result<Config, String> + Send + Sync + 'static) -> Self {
        ConfigReload(Arc::new(load))
    }

    /// `base` with the publishing settings — the token, the API URL and `[publish]` — loaded
    /// afresh; the rest (model, sandbox, state directory) stays as the run was started.
    pub fn publish_config(&self, base: &Config) -> Result<Config, String> {
        let fresh = (self.0)()?;
        let mut config = base.clone();
        config.github_token = fresh.github_token;
        config.github_api_url = fresh.github_api_url;
        config.publish = fresh.publish;
        Ok(config)
    }
}

impl std::fmt::Debug for ConfigReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigReload(..)")
    }
}

/// The configuration a publish attempt uses: reloaded when the front-end can, else `base`. A
/// reload that fails is reported and `base` used.
pub async fn config_for_publishing(
    base: &Arc<Config>,
    reload: Option<&ConfigReload>,
    emitter: &Emitter,
) -> Arc<Config> {
    let Some(reload) = reload else {
        return base.clone();
    };
    match reload.publish_config(base) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            emitter
                .status(
                    Stage::Publish,
                    format!(
                        "could not reload the configuration ({e}); using the one loaded at start"
                    ),
                )
                .await;
            base.clone()
        }
    }
}

impl Driver {
    /// Pre-flight before the agent runs. With `--yes` a problem ends the run (no tokens spent);
    /// in review mode it is a warning, since the user may only want the diff.
    pub(super) async fn preflight(
        &self,
        source: &RepoSource,
        cancel: &CancellationToken,
    ) -> Result<(), StageError> {
        if self.request.gate == Gate::NoPr {
            return Ok(());
        }
        let emitter = self.emitter.clone();
        let notify = move |message: String| {
            emitter.emit_lossy(Event::Status {
                run_id: emitter.run_id().to_string(),
                stage: Stage::Validate,
                message,
            });
        };
        match forge::preflight(source, &self.config, &notify, cancel.clone()).await {
            Ok(plan) => {
                self.emitter.status(Stage::Validate, plan.describe).await;
                Ok(())
            }
            Err(ForgeError::Cancelled) => Err(StageError::Cancelled),
            Err(e) if self.request.gate == Gate::AutoApprove => Err(StageError::failed(
                e.code(),
                format!("{e} (checked before the agent started; nothing was spent)"),
                e.is_retryable(),
            )),
            Err(e) => {
                self.emitter
                    .status(
                        Stage::Validate,
                        format!("WARNING: publishing will fail: {e}"),
                    )
                    .await;
                Ok(())
            }
        }
    }

    pub(super) async fn publish_stage(
        &mut self,
        selection: Selection,
        title: Option<String>,
        body: Option<String>,
        draft: bool,
        cancel: &CancellationToken,
    ) -> Result<(), StageError> {
        let Some(run_dir) = self.run_dir.clone() else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: publish before validate",
                false,
            ));
        };
        // The run folder's meta must be current (summary, base) before publishing reads it.
        self.save_meta();
        let request = PublishRequest {
            selection: Some(selection),
            title: title.or_else(|| self.request.publish.title.clone()),
            body: body.or_else(|| self.request.publish.body.clone()),
            draft: Some(draft || self.request.publish.draft || self.config.publish.draft),
        };
        let config = config_for_publishing(
            &self.config,
            self.request.publish.reload.as_ref(),
            &self.emitter,
        )
        .await;
        match publish(&run_dir, &config, &self.emitter, request, cancel).await {
            Ok(p) => {
                if let Some(meta) = self.meta.as_mut() {
                    meta.branch = Some(p.branch);
                    meta.pr_url = p.pr_url;
                }
                self.save_meta();
                Ok(())
            }
            Err(ForgeError::Cancelled) => Err(StageError::Cancelled),
            Err(e) => Err(StageError::failed(
                e.code(),
                failure_message(&e, &run_dir),
                e.is_retryable(),
            )),
        }
    }
}

/// Checks a selection against the run's saved patch (a run without one is refused later, when
/// publishing reads it).
pub fn check_selection(
    run_dir: &crate::store::RunDir,
    selection: &Selection,
) -> Result<(), crate::diff::SelectionError> {
    match run_dir.read_patch() {
        Ok(patch) => crate::diff::check_selection(&patch, selection),
        Err(_) => Ok(()),
    }
}

/// What the forge client reports while it works (rate-limit waits, retries), as publish `Status`
/// lines that never block it.
fn notifier(emitter: &Emitter) -> impl Fn(String) + Send + Sync + 'static {
    let emitter = emitter.clone();
    move |message: String| {
        emitter.emit_lossy(Event::Status {
            run_id: emitter.run_id().to_string(),
            stage: Stage::Publish,
            message,
        });
    }
}

/// The files of `patch` that carry warnings (hidden characters, line endings, git-control files,
/// …), each with what is wrong, as a reviewer must hear it before publishing.
pub fn warned_files(patch: &[u8]) -> Vec<(String, Vec<crate::diff::warnings::Warning>)> {
    crate::diff::parse(patch)
        .into_iter()
        .filter_map(|f| {
            let found = crate::diff::warnings::file_warnings(f.path.as_bytes(), &f.bytes());
            (!found.is_empty()).then_some((f.path, found))
        })
        .collect()
}

/// The warned files of what a saved run would publish with `selection`: without one, the approved
/// patch a previous attempt saved (as publishing reuses it), else all of it.
pub fn warned_files_of_run(
    run_dir: &crate::store::RunDir,
    selection: Option<&Selection>,
) -> Vec<(String, Vec<crate::diff::warnings::Warning>)> {
    let saved = run_dir.pr_path().is_file() && run_dir.approved_patch_path().is_file();
    let patch = match selection {
        None if saved => run_dir.read_approved_patch(),
        _ => run_dir
            .read_patch()
            .map(|full| crate::diff::filter(&full, selection.unwrap_or(&Selection::default()))),
    };
    patch.map(|p| warned_files(&p)).unwrap_or_default()
}

/// One line naming warned files: `a.js (hidden or bidi characters), .gitattributes (git …)`.
pub fn describe_warned(warned: &[(String, Vec<crate::diff::warnings::Warning>)]) -> String {
    warned
        .iter()
        .map(|(path, ws)| {
            let why: Vec<&str> = ws.iter().map(|w| w.describe()).collect();
            format!("{path} ({})", why.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Title, body and draft given with the run (flags), used when the approval does not set them;
/// and how to reload the configuration before each publish attempt (the TUI, whose review outlives
/// a failed attempt, sets it).
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub title: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
    pub reload: Option<ConfigReload>,
}
