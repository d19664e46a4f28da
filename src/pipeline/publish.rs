//! The Publish stage: approved patch → commit on a clean checkout of the base → branch pushed from
//! the host → pull request (GitHub) or request-pull summary (other remotes, local repositories).
//! Also the pre-flight that runs before the agent, and `tiny-backspace publish RUN_ID`.
//!
//! Invariants: `approved.diff` and `pr.json` are in the run folder before the first network call,
//! so nothing approved is lost to a failure; a retry reuses them (same branch, same commit) and
//! finds the branch and pull request an earlier attempt made instead of making new ones; the
//! commit is made from the base commit fetched afresh, never from the agent's workspace; the
//! token is handed to git only for the commands that talk to the repository's own host.

use tokio_util::sync::CancellationToken;

use super::stages::StageError;
use super::{Driver, Gate, Selection};
use crate::config::Config;
use crate::emit::Emitter;
use crate::event::{Event, Stage};
use crate::forge::github::GitHub;
pub use crate::forge::record::{PrRecord, PublishRequest};
use crate::forge::record::{author_for, io, prepare_record};
use crate::forge::{self, ForgeError, Plan, Target, text};
use crate::git::GitError;
use crate::git::publish::{self as gitpub, Author, Prepared, Remote};
use crate::repo::RepoSource;
use crate::store::{RunDir, RunStatus};

#[derive(Debug, Clone)]
pub struct Published {
    pub branch: String,
    pub base: String,
    pub pr_url: Option<String>,
    pub pr_number: Option<u64>,
    /// For remotes without pull requests: the request-pull summary.
    pub summary: Option<String>,
}

fn push_error(e: GitError, remote: &str) -> ForgeError {
    match e {
        GitError::Failed { what, stderr } if what == "push" => {
            let detail = if stderr.contains("could not read Username") {
                format!(
                    "{stderr} (the remote wants credentials; tiny-backspace sends the GitHub token \
                     only to the GitHub host, so push access here must not need one)"
                )
            } else if stderr.contains("401") || stderr.contains("Authentication failed") {
                format!("{stderr} (the token was not accepted for pushing)")
            } else if stderr.contains("403") {
                format!("{stderr} (the token may not push here: it needs write access)")
            } else {
                stderr
            };
            ForgeError::PushRejected {
                remote: remote.to_string(),
                detail,
            }
        }
        GitError::Failed { stderr, .. }
            if stderr.contains("Could not resolve host")
                || stderr.contains("Failed to connect")
                || stderr.contains("Connection refused") =>
        {
            ForgeError::Network {
                what: remote.to_string(),
                detail: stderr,
            }
        }
        other => ForgeError::Git(other),
    }
}

/// Pushes unless the branch already holds our commit; refuses to touch anyone else's branch.
async fn push_branch(
    prepared: &Prepared,
    remote: &Remote,
    branch: &str,
    emitter: &Emitter,
) -> Result<(), ForgeError> {
    let existing = gitpub::remote_branch(prepared, remote, branch)
        .await
        .map_err(|e| push_error(e, &remote.url))?;
    match existing {
        Some(sha) if gitpub::is_ours(prepared, Some(remote), &sha).await => {
            emitter
                .status(
                    Stage::Publish,
                    format!("branch {branch} already holds this commit; not pushing again"),
                )
                .await;
            Ok(())
        }
        Some(_) => Err(ForgeError::BranchTaken {
            branch: branch.to_string(),
            remote: remote.url.clone(),
        }),
        None => {
            emitter
                .status(
                    Stage::Publish,
                    format!("pushing {branch} to {}", remote.url),
                )
                .await;
            gitpub::push(prepared, remote, branch)
                .await
                .map_err(|e| push_error(e, &remote.url))
        }
    }
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
    let (mut record, patch) = prepare_record(run_dir, &meta, config, &request)?;
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
    let notify_emitter = emitter.clone();
    let notify = move |message: String| {
        notify_emitter.emit_lossy(Event::Status {
            run_id: notify_emitter.run_id().to_string(),
            stage: Stage::Publish,
            message,
        });
    };
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

async fn finish(
    record: &mut PrRecord,
    plan: &Plan,
    origin: &Remote,
    prepared: &Prepared,
    config: &Config,
    emitter: &Emitter,
    cancel: &CancellationToken,
) -> Result<Published, ForgeError> {
    let branch = record.branch.clone();
    let summary = |url: &str| {
        text::request_pull(&text::RequestPull {
            base_commit: &prepared.base_commit,
            base_subject: &prepared.base_line,
            url,
            branch: &branch,
            commit: &prepared.commit,
            subject: record.commit_message.lines().next().unwrap_or(""),
            message: &record.commit_message,
            author: record.author_name.as_deref().unwrap_or(""),
            files: &text::file_changes(
                &std::fs::read(prepared.git_dir.join("tb-approved.diff")).unwrap_or_default(),
            ),
        })
    };
    let r = match &plan.target {
        Target::Local { path } => {
            match gitpub::local_branch(path, &branch).await {
                Some(sha) if gitpub::is_ours(prepared, None, &sha).await => {}
                Some(_) => {
                    return Err(ForgeError::BranchTaken {
                        branch,
                        remote: path.display().to_string(),
                    });
                }
                None => gitpub::create_local_branch(path, prepared, &branch).await?,
            }
            record.pushed_to = Some(path.display().to_string());
            let text = summary(&path.display().to_string());
            emitter
                .status(
                    Stage::Publish,
                    format!("branch {branch} created in {}\n{text}", path.display()),
                )
                .await;
            return Ok(Published {
                branch,
                base: record.base.clone(),
                pr_url: None,
                pr_number: None,
                summary: Some(text),
            });
        }
        Target::Remote { url } => {
            push_branch(prepared, origin, &branch, emitter).await?;
            record.pushed_to = Some(url.clone());
            let text = summary(url);
            emitter
                .status(Stage::Publish, format!("branch {branch} pushed\n{text}"))
                .await;
            return Ok(Published {
                branch,
                base: record.base.clone(),
                pr_url: None,
                pr_number: None,
                summary: Some(text),
            });
        }
        Target::GitHub(r) => r,
    };
    let Some(token) = plan.token.as_ref() else {
        return Err(ForgeError::NoToken {
            host: r.git_host.clone(),
        });
    };
    let notify_emitter = emitter.clone();
    let notify = move |message: String| {
        notify_emitter.emit_lossy(Event::Status {
            run_id: notify_emitter.run_id().to_string(),
            stage: Stage::Publish,
            message,
        });
    };
    let gh = GitHub::new(
        &r.api_url,
        token,
        config.publish.max_rate_limit_wait,
        &notify,
        cancel.clone(),
    )?;
    let (push_to, head) = if plan.fork {
        let login = plan.login.clone().unwrap_or_default();
        emitter
            .status(
                Stage::Publish,
                format!(
                    "no push access to {}/{}: forking it to {login}",
                    r.owner, r.name
                ),
            )
            .await;
        let fork = gh.fork(&r.owner, &r.name).await?;
        let url = forge::check_clone_url(&fork.clone_url, &r.git_host)?;
        // An old fork may lack the base commit; a shallow push on top of it would be refused.
        match gh
            .sync_fork(&fork.owner.login, &fork.name, &record.base)
            .await
        {
            Ok(()) => {
                emitter
                    .status(
                        Stage::Publish,
                        format!("fork {} is up to date with {}", fork.full_name, record.base),
                    )
                    .await
            }
            Err(ForgeError::Cancelled) => return Err(ForgeError::Cancelled),
            Err(e) => {
                emitter
                    .status(
                        Stage::Publish,
                        format!(
                            "could not sync the fork {} ({e}); pushing anyway",
                            fork.full_name
                        ),
                    )
                    .await
            }
        }
        let remote = Remote {
            url,
            allow: origin.allow.clone(),
            token: Some(token.clone()),
        };
        (remote, format!("{}:{branch}", fork.owner.login))
    } else {
        (origin.clone(), format!("{}:{branch}", r.owner))
    };
    record.head = Some(head.clone());
    match push_branch(prepared, &push_to, &branch, emitter).await {
        Err(ForgeError::PushRejected { detail, .. })
            if detail.contains("shallow update not allowed") =>
        {
            // The fork lacks the base's history (and could not be synced): send it along.
            emitter
                .status(
                    Stage::Publish,
                    "the fork lacks the base's history; fetching it and pushing again",
                )
                .await;
            gitpub::unshallow(prepared, origin, &record.base)
                .await
                .map_err(|e| push_error(e, &origin.url))?;
            push_branch(prepared, &push_to, &branch, emitter).await?;
        }
        other => other?,
    }
    record.pushed_to = Some(push_to.url.clone());

    let existing = gh.find_pull(&r.owner, &r.name, &head, &record.base).await?;
    let pull = match existing {
        Some(p) => {
            emitter
                .status(
                    Stage::Publish,
                    format!(
                        "an open pull request for {head} already exists: {}",
                        p.html_url
                    ),
                )
                .await;
            p
        }
        None => {
            emitter
                .status(
                    Stage::Publish,
                    format!("opening a pull request into {}", record.base),
                )
                .await;
            let created = gh
                .create_pull(
                    &r.owner,
                    &r.name,
                    &record.title,
                    &head,
                    &record.base,
                    &record.body,
                    record.draft,
                )
                .await;
            match created {
                Ok(p) => p,
                Err(ForgeError::Validation { message }) if message.contains("already exists") => gh
                    .find_pull(&r.owner, &r.name, &head, &record.base)
                    .await?
                    .ok_or(ForgeError::Validation { message })?,
                Err(e) => return Err(e),
            }
        }
    };
    record.pr_url = Some(pull.html_url.clone());
    record.pr_number = Some(pull.number);
    emitter
        .emit(Event::Pr {
            run_id: record.run_id.clone(),
            url: pull.html_url.clone(),
            number: pull.number,
            branch: branch.clone(),
            base: record.base.clone(),
        })
        .await;
    Ok(Published {
        branch,
        base: record.base.clone(),
        pr_url: Some(pull.html_url),
        pr_number: Some(pull.number),
        summary: None,
    })
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

/// `tiny-backspace publish RUN_ID`: publishes from the run folder, records the result in
/// `meta.json`, and ends with `Done` or `Error`. Returns whether it succeeded.
pub async fn publish_saved_run(
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
        match publish(&run_dir, &self.config, &self.emitter, request, cancel).await {
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

/// Title, body and draft given with the run (flags), used when the approval does not set them.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub title: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
}
