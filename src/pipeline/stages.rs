//! The IO of each stage, called by the driver; each returns `Ok`, `Failed` or `Cancelled`.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::Driver;
use crate::agent::tools::Toolbox;
use crate::agent::{AgentError, AgentRun, fs::WorkspaceFs, prompt, push_user_text};
use crate::event::{ErrorCode, Event, Stage};
use crate::git::{self, CloneSpec, GitError};
use crate::repo::RepoSource;
use crate::sandbox::{self, SandboxKind, SandboxMounts};
use crate::store::{RunMeta, RunStatus, Store, force_remove_dir};

pub(super) enum StageError {
    Failed {
        message: String,
        retryable: bool,
        code: ErrorCode,
    },
    Cancelled,
}

impl StageError {
    pub(super) fn failed(code: ErrorCode, message: impl Into<String>, retryable: bool) -> Self {
        StageError::Failed {
            message: message.into(),
            retryable,
            code,
        }
    }
}

impl From<GitError> for StageError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::Cancelled => StageError::Cancelled,
            other => StageError::failed(other.code(), other.to_string(), other.is_retryable()),
        }
    }
}

/// The code of an agent failure: its budget, or the model's own error.
pub(super) fn agent_code(e: &AgentError) -> ErrorCode {
    match e {
        AgentError::Budget(_) => ErrorCode::ModelBudget,
        AgentError::Model(m) => m.code(),
        AgentError::Cancelled => ErrorCode::Cancelled,
    }
}

type StageResult = Result<(), StageError>;

impl Driver {
    pub(super) async fn validate(
        &mut self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> StageResult {
        let prompt = self.request.prompt.trim();
        if prompt.is_empty() {
            return Err(StageError::failed(
                ErrorCode::InvalidInput,
                "the prompt is empty: describe the change you want, e.g. --prompt \"Add input \
                 validation to the signup form\"",
                false,
            ));
        }
        let source = RepoSource::parse(&self.request.repo, &self.cwd)
            .map_err(|e| StageError::failed(ErrorCode::InvalidInput, e.to_string(), false))?;
        if let Some(base) = &self.request.base {
            crate::repo::check_branch_name(base)
                .map_err(|m| StageError::failed(ErrorCode::InvalidInput, m, false))?;
        }
        let provider = match &self.request.provider {
            Some(p) => p.clone(),
            None => super::model::provider(&self.config, &self.cwd).map_err(|e| {
                StageError::failed(ErrorCode::InvalidInput, format!("model: {e}"), false)
            })?,
        };
        let kind = sandbox::resolve_kind(&self.config.sandbox)
            .map_err(|e| StageError::failed(e.code(), e.to_string(), false))?;

        // A GitHub repository may be private: its token is offered to its host (and only there).
        self.clone_token = match crate::forge::resolve(&source, &self.config) {
            Ok(crate::forge::Target::GitHub(repo)) => {
                crate::forge::token::discover(&self.config, &repo.git_host).await
            }
            _ => None,
        };
        // Reachable, and the base exists: checked before a run folder or workspace is made.
        let remote = git::probe_remote(
            &source.clone_url(),
            source.allowed_protocols(),
            self.request.base.as_deref(),
            self.config.clone.timeout,
            self.clone_token.as_ref(),
        )
        .await
        .map_err(|e| {
            let retryable = e.is_retryable();
            let needs_credentials = e.needs_credentials();
            let hint = match (needs_credentials, self.clone_token.is_some()) {
                (true, false) => {
                    "It needs credentials: for GitHub set GITHUB_TOKEN, GH_TOKEN or \
                    GITHUB_PAT, or run `gh auth login`; check the address too"
                }
                (true, true) => {
                    "The token was refused: check that it has access to this \
                    repository (and SSO authorization, if your organization uses it)"
                }
                _ => "Check the address, that it exists, and your network",
            };
            StageError::failed(
                e.code(),
                format!(
                    "repository '{}' cannot be read: {e}. {hint}",
                    self.request.repo.trim()
                ),
                retryable,
            )
        })?;
        if !remote.base_exists
            && let Some(base) = &self.request.base
        {
            let default = remote
                .default_branch
                .as_deref()
                .map(|d| format!(" (its default branch is '{d}')"))
                .unwrap_or_default();
            return Err(StageError::failed(
                ErrorCode::BaseNotFound,
                format!(
                    "base branch '{base}' does not exist in {}{default}; leave --base out to use \
                     the default branch",
                    source.display()
                ),
                false,
            ));
        }

        self.preflight(&source, cancel).await?;

        let store = Store::open(&self.config.home).map_err(|e| {
            StageError::failed(
                ErrorCode::Internal,
                format!(
                    "cannot use the state directory {}: {e}; set TB_HOME to a writable directory",
                    self.config.home.display()
                ),
                false,
            )
        })?;
        let label = provider.label();
        let model = if label.replay {
            format!("{}:{} (replay)", label.provider, label.model)
        } else {
            format!("{}:{}", label.provider, label.model)
        };
        let meta = RunMeta {
            id: self.run_id.clone(),
            created_at: Utc::now(),
            repo: source.display(),
            base: self.request.base.clone(),
            base_commit: None,
            prompt: prompt.to_string(),
            followups: vec![],
            model: model.clone(),
            sandbox: kind.as_str().to_string(),
            status: RunStatus::Running,
            summary: None,
            error: None,
            branch: None,
            pr_url: None,
            usage: Default::default(),
            duration_ms: None,
            keep_workspace: self.request.keep_workspace,
            interrupted_from: None,
        };
        // The folder was reserved (created exclusively) when the run started; now it gets its meta.
        let run_dir = match &self.reserved {
            Ok(dir) => dir.clone(),
            Err(e) => {
                return Err(StageError::failed(
                    ErrorCode::Internal,
                    format!("cannot create the run folder: {e}"),
                    false,
                ));
            }
        };
        run_dir.write_meta(&meta).map_err(|e| {
            StageError::failed(
                ErrorCode::Internal,
                format!("cannot create the run folder: {e}"),
                false,
            )
        })?;
        let log = run_dir
            .open_events()
            .and_then(|f| self.emitter.attach_log(f).map(|_| ()))
            .map_err(|e| {
                StageError::failed(
                    ErrorCode::Internal,
                    format!("cannot write events.jsonl: {e}"),
                    false,
                )
            });
        log?;
        let mut network =
            sandbox::network_label(kind, self.config.sandbox.network_mode()).to_string();
        if let (Some(hosts), false) = (&self.config.sandbox.allow_hosts, kind == SandboxKind::None)
        {
            let list: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            let list = if list.is_empty() {
                "no host allowed".to_string()
            } else {
                list.join(", ")
            };
            network.push_str(&format!(" ({list})"));
        }
        // A configured setup has a network of its own; the agent's follows it.
        if kind != SandboxKind::None
            && self
                .config
                .setup
                .command
                .as_deref()
                .is_some_and(|c| !c.is_empty())
        {
            let setup =
                super::setup::with_network(&self.config.sandbox, self.config.setup_network_mode());
            network = format!(
                "{} for the agent, setup network {}",
                sandbox::network_label(kind, self.config.agent_network_after_setup()),
                super::setup::describe_mode(&setup)
            );
        }
        self.emitter
            .status(
                Stage::Validate,
                format!(
                    "{} · model {model} · sandbox {}, {network} · run {}",
                    source.display(),
                    kind.as_str(),
                    self.run_id
                ),
            )
            .await;
        if kind == SandboxKind::None {
            self.emitter
                .status(
                    Stage::Validate,
                    "WARNING: --sandbox none: the agent's commands run directly on \
                    this machine, with your user's permissions",
                )
                .await;
            tracing::warn!(run = %self.run_id, "sandbox disabled by request");
        }
        self.store = Some(store);
        self.source = Some(source);
        self.provider = Some(provider);
        self.sandbox_kind = Some(kind);
        self.run_dir = Some(run_dir);
        self.meta = Some(meta);
        Ok(())
    }

    pub(super) async fn clone_repo(
        &mut self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> StageResult {
        let (Some(store), Some(source)) = (&self.store, &self.source) else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: clone before validate",
                false,
            ));
        };
        let workspace = store.create_workspace(&self.run_id).map_err(|e| {
            StageError::failed(
                ErrorCode::Internal,
                format!("cannot create the workspace: {e}"),
                false,
            )
        })?;
        let work_tree = workspace.join("repo");
        let git_dir = workspace.join("git");
        self.workspace = Some(workspace);
        let started = Instant::now();
        self.emitter
            .status(Stage::Clone, format!("cloning {}", source.display()))
            .await;
        let spec = CloneSpec {
            url: source.clone_url(),
            allow_protocols: source.allowed_protocols().to_string(),
            branch: self.request.base.clone(),
            timeout: self.config.clone.timeout,
            max_size_bytes: self.config.clone.max_size_bytes,
            local: matches!(source, RepoSource::Local { .. }),
            token: self.clone_token.clone(),
        };
        let emitter = self.emitter.clone();
        let progress = move |line: String| {
            emitter.emit_lossy(Event::Status {
                run_id: emitter.run_id().to_string(),
                stage: Stage::Clone,
                message: line,
            });
        };
        let cloned = git::clone(&spec, &work_tree, &git_dir, &progress, cancel).await.map_err(|e| {
            match (&e, &self.request.base) {
                (GitError::Failed { stderr, .. }, Some(base))
                    if stderr.contains("not found in upstream") || stderr.contains("Remote branch") =>
                {
                    StageError::failed(
ErrorCode::BaseNotFound,
                        format!("base branch '{base}' does not exist in {}; leave --base out to use the \
                            default branch", source.display()),
                        false,
                    )
                }
                _ => StageError::from(e),
            }
        })?;
        let at = match (&cloned.branch, &cloned.base_commit) {
            (Some(b), Some(c)) => format!("{b} @ {}", &c[..c.len().min(10)]),
            (_, None) => "an empty repository (no commits yet)".to_string(),
            (None, Some(c)) => c[..c.len().min(10)].to_string(),
        };
        self.emitter
            .status(
                Stage::Clone,
                format!(
                    "cloned {} — {at} in {}",
                    source.display(),
                    crate::agent::format_duration(started.elapsed())
                ),
            )
            .await;
        if let Some(meta) = self.meta.as_mut() {
            meta.base = cloned.branch.clone().or(meta.base.take());
            meta.base_commit = cloned.base_commit.clone();
        }
        self.save_meta();
        self.index_refresh = Some(cloned.repo.refresh_index_soon());
        self.cloned = Some(cloned);
        Ok(())
    }

    pub(super) async fn run_agent(
        &mut self,
        followup: Option<String>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> StageResult {
        let (Some(cloned), Some(provider), Some(source)) =
            (&self.cloned, &self.provider, &self.source)
        else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: agent before clone",
                false,
            ));
        };
        let Some(work_tree) = cloned.repo.work_tree.clone() else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: no work tree",
                false,
            ));
        };
        let mounts = SandboxMounts {
            work_tree: work_tree.clone(),
            git_dir: cloned.repo.git_dir.clone(),
        };
        // After a setup the agent's network is its own (`--network`, default off).
        let settings = match &self.setup {
            Some(done) => super::setup::with_network(&self.config.sandbox, done.agent_network),
            None => self.config.sandbox.clone(),
        };
        let sandbox = sandbox::open(&settings, mounts)
            .map_err(|e| StageError::failed(e.code(), e.to_string(), false))?;
        // Mode allowlist: each request the proxy allows or refuses becomes a Status line.
        let proxy_log = sandbox.take_proxy_decisions().map(|mut decisions| {
            let emitter = self.emitter.clone();
            tokio::spawn(async move {
                while let Some(d) = decisions.recv().await {
                    emitter.status(Stage::Agent, d.message()).await;
                }
            })
        });
        let fs = WorkspaceFs::open(&work_tree).map_err(|e| {
            StageError::failed(
                ErrorCode::Internal,
                format!("cannot open the work tree: {e}"),
                false,
            )
        })?;
        let tools = Toolbox {
            fs,
            sandbox: Arc::from(sandbox),
            sandbox_settings: settings.clone(),
            run_id: self.run_id.clone(),
            output_cap_chars: 30_000,
        };
        let mode = settings.network_mode();
        let allowed: Vec<String> = settings
            .allow_hosts
            .iter()
            .flatten()
            .map(|h| h.to_string())
            .collect();
        let network_note = prompt::network_sentence(mode, &allowed);
        let system =
            prompt::system_prompt(&source.display(), cloned.branch.as_deref(), &network_note);
        match &followup {
            None if self.conversation.is_empty() => {
                let env = crate::agent::context::Environment {
                    sandbox: format!(
                        "{}, {}",
                        tools.sandbox.kind().as_str(),
                        sandbox::network_label(tools.sandbox.kind(), mode)
                    ),
                    network: network_note.clone(),
                    timeouts: (
                        self.config.sandbox.default_timeout,
                        self.config.sandbox.max_timeout,
                    ),
                    setup: self.setup.as_ref().map(|d| d.facts.clone()),
                    toolchains: super::setup::probe_toolchains(tools.sandbox.as_ref(), cancel)
                        .await,
                };
                let task =
                    crate::agent::context::first_message(&self.request.prompt, &tools.fs, &env);
                push_user_text(&mut self.conversation, &task);
            }
            None => {}
            Some(text) => {
                push_user_text(
                    &mut self.conversation,
                    &format!("Follow-up from the reviewer: {}", text.trim()),
                );
                if let Some(meta) = self.meta.as_mut() {
                    meta.followups.push(text.clone());
                }
            }
        }
        self.emitter
            .status(
                Stage::Agent,
                match &followup {
                    None => format!("agent started ({})", provider.label().model),
                    Some(_) => "agent continues with the follow-up".to_string(),
                },
            )
            .await;
        let changes = crate::agent::review::HostChanges {
            repo: &cloned.repo,
            base: cloned.base_commit.as_deref(),
        };
        let run = AgentRun {
            provider: provider.as_ref(),
            tools: &tools,
            emitter: &self.emitter,
            system: &system,
            limits: &self.config.agent,
            cancel,
            review: provider
                .self_review()
                .then_some(&changes as &dyn crate::agent::review::WorkChanges),
        };
        // The diff so far, recomputed after edits and commands while the agent works.
        let live = super::live::LiveDiff::start(
            self.emitter.clone(),
            cloned.repo.clone(),
            cloned.base_commit.clone(),
            self.config.diff,
        );
        let result = run.run(&mut self.conversation, &mut self.usage).await;
        live.stop().await;
        // The sandbox (and its proxy) ends here; its last decisions are sent before the stage ends.
        drop(tools);
        if let Some(mut forwarder) = proxy_log
            && tokio::time::timeout(std::time::Duration::from_secs(5), &mut forwarder)
                .await
                .is_err()
        {
            forwarder.abort();
        }
        match result {
            Ok(outcome) => {
                self.summary = outcome.summary;
                self.emitter
                    .status(
                        Stage::Agent,
                        format!("agent finished after {} turns", outcome.turns),
                    )
                    .await;
                Ok(())
            }
            Err(AgentError::Cancelled) => Err(StageError::Cancelled),
            Err(e) => {
                let retryable = e.is_retryable();
                Err(StageError::failed(agent_code(&e), e.to_string(), retryable))
            }
        }
    }

    pub(super) async fn compute_diff(&mut self) -> super::Input {
        if let Some(refresh) = self.index_refresh.take() {
            refresh.settle().await;
        }
        let Some(cloned) = &self.cloned else {
            return super::Input::StageFailed {
                message: "internal: diff before clone".into(),
                retryable: false,
                code: ErrorCode::Internal,
            };
        };
        let mut diff = match cloned
            .repo
            .work_diff(cloned.base_commit.as_deref(), &self.config.diff)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return super::Input::StageFailed {
                    message: format!("computing the diff: {e}"),
                    retryable: false,
                    code: ErrorCode::DiffFailed,
                };
            }
        };
        // What a reviewer must not miss: hidden characters, line endings, git-control files.
        crate::diff::warnings::annotate(&mut diff.files, &diff.patch);
        if let Some(dir) = &self.run_dir
            && let Err(e) = dir.write_patch(&diff.patch)
        {
            return super::Input::StageFailed {
                message: format!("cannot save patch.diff: {e}"),
                retryable: false,
                code: ErrorCode::DiffFailed,
            };
        }
        if let Some(meta) = self.meta.as_mut() {
            meta.summary = (!self.summary.is_empty()).then(|| self.summary.clone());
            meta.usage = self.usage.clone();
            meta.status = RunStatus::Review;
        }
        self.save_meta();
        for message in diff.left_out_messages(&self.config.diff) {
            self.emitter.status(Stage::Diff, message).await;
        }
        let empty = diff.patch.iter().all(u8::is_ascii_whitespace);
        let in_patch = || diff.files.iter().filter(|f| f.left_out.is_none());
        let (ins, del) = in_patch().fold((0, 0), |(i, d), f| (i + f.insertions, d + f.deletions));
        self.emitter
            .status(
                Stage::Diff,
                format!("{} files changed, +{ins} −{del}", in_patch().count()),
            )
            .await;
        let patch_path = self
            .run_dir
            .as_ref()
            .map(|d| d.patch_path().display().to_string());
        self.emitter
            .emit(Event::diff(
                &self.run_id,
                diff.files.clone(),
                &diff.patch,
                patch_path,
            ))
            .await;
        self.diff = Some(diff);
        super::Input::DiffReady { empty }
    }

    pub(super) async fn clean_up(&mut self) {
        if let Some(refresh) = self.index_refresh.take() {
            refresh.settle().await;
        }
        let Some(workspace) = self.workspace.take() else {
            return;
        };
        if self.request.keep_workspace {
            self.emitter
                .status(
                    Stage::Cleanup,
                    format!("workspace kept at {}", workspace.display()),
                )
                .await;
            return;
        }
        match force_remove_dir(&workspace) {
            Ok(()) => {
                self.emitter
                    .status(Stage::Cleanup, "workspace removed")
                    .await
            }
            Err(e) => {
                tracing::error!("could not remove {}: {e}", workspace.display());
                self.emitter
                    .status(
                        Stage::Cleanup,
                        format!(
                            "could not remove the workspace {}: {e}",
                            workspace.display()
                        ),
                    )
                    .await;
            }
        }
    }
}
