//! One task, one repeat: derive the repository without its hidden paths, run the agent on it
//! headless (no PR), then grade the saved patch against the original in a fresh sandbox.
//!
//! Invariants: the agent's run only ever sees the derived repository; grading runs with the
//! network off in a sandbox of its own over a fresh checkout; a task stopped by a signal returns
//! no result (so `--resume` runs it again); scratch folders are removed whatever happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::metrics::{self, RunMetrics};
use super::repo::{RepoError, Source};
use super::task::Task;
use crate::config::Config;
use crate::event::Event;
use crate::pipeline::{self, Command, Gate, RunRequest};
use crate::sandbox::{self, ExecRequest, SandboxMounts};
use crate::store::{Store, force_remove_dir};

/// One line of `results.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub id: String,
    pub repeat: u32,
    pub resolved: bool,
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
    /// The agent's run, from its start to its last event (grading not included).
    pub duration_ms: u64,
    /// `completed`, `error`, `cancelled`, `cost_cap`, or `setup_error` (the task's repository
    /// or model could not be prepared; no run).
    pub stop_reason: String,
    pub tool_errors: u64,
    pub model: Option<String>,
    pub prompt_sha: String,
    pub run_id: Option<String>,
    /// `passed`, `failed`, `patch_did_not_apply`, `setup_failed`, `no_patch`, `not_graded`.
    #[serde(default)]
    pub grade: String,
    #[serde(default)]
    pub test_exit_code: Option<i32>,
    #[serde(default)]
    pub grade_ms: u64,
    /// What went wrong, when something did (the run's error, git apply's reason…).
    #[serde(default)]
    pub error: Option<String>,
}

/// What every task of one `eval` shares.
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub tasks_dir: PathBuf,
    pub cwd: PathBuf,
    /// `--model` as given on the command line: wins over each task's `model`.
    pub flag_model: Option<String>,
    pub max_cost: Option<f64>,
    pub test_timeout: Duration,
    pub logs: PathBuf,
    pub prompt_sha: String,
    pub stop: crate::signals::Stop,
}

/// Runs `task` once; `None` when a signal stopped it.
pub async fn run_task(ctx: &Context, task: &Task, repeat: u32) -> Option<TaskResult> {
    let mut result = TaskResult {
        id: task.id.clone(),
        repeat,
        prompt_sha: ctx.prompt_sha.clone(),
        grade: "not_graded".into(),
        ..Default::default()
    };
    let scratch = match tempfile::Builder::new()
        .prefix("eval-")
        .tempdir_in(ctx.store.work_root())
    {
        Ok(s) => s,
        Err(e) => return Some(setup_error(result, format!("scratch folder: {e}"))),
    };
    // It will hold the task's repository, hidden files included.
    if let Err(e) = super::repo::check_private(scratch.path()) {
        return Some(setup_error(result, format!("scratch folder: {e}")));
    }
    let prepared = prepare(ctx, task, scratch.path()).await;
    let (source, derived, provider, spec) = match prepared {
        Ok(p) => p,
        Err(e) => return Some(setup_error(result, e)),
    };
    result.model = spec;
    let mut prompt = task.prompt.clone();
    if let Some(setup) = &task.setup {
        // The pipeline has no per-run setup step yet: the agent is told what graders run.
        prompt.push_str(&format!(
            "\n\nNote: before the tests, graders run this setup (it was not run for you): {setup}"
        ));
    }
    let request = RunRequest {
        repo: derived.display().to_string(),
        prompt,
        base: None,
        gate: Gate::NoPr,
        keep_workspace: false,
        provider: Some(provider),
        publish: Default::default(),
    };
    let started = Instant::now();
    let mut pipe = pipeline::start(request, ctx.config.clone(), ctx.cwd.clone());
    crate::signals::stop_pipeline(&ctx.stop, pipe.commands.clone());
    result.run_id = Some(pipe.run_id.clone());
    let mut seen = Vec::new();
    let mut spent = 0.0;
    let mut capped = false;
    while let Some(event) = pipe.events.recv().await {
        if let (Event::Usage { cost_usd, .. }, Some(cap)) = (&event, ctx.max_cost) {
            spent += cost_usd.unwrap_or(0.0);
            if spent > cap && !capped {
                capped = true;
                let why = format!("cost cap: ${spent:.4} spent, over --max-cost ${cap}");
                let _ = pipe.commands.send(Command::Stop(why)).await;
            }
        }
        // Like events.jsonl: streamed text, output and live diffs are not kept.
        if !event.is_transient() {
            seen.push(event);
        }
    }
    let _ = pipe.task.await;
    result.duration_ms = started.elapsed().as_millis() as u64;
    if ctx.stop.token().is_cancelled() {
        return None;
    }
    let run_dir = ctx.store.root().join("runs").join(&pipe.run_id);
    let events = metrics::read_events(&run_dir.join("events.jsonl")).unwrap_or(seen);
    apply_metrics(&mut result, metrics::from_events(&events));
    if capped {
        result.stop_reason = "cost_cap".into();
    }
    match std::fs::read(run_dir.join("patch.diff")) {
        Ok(patch) => grade(ctx, task, &source, &patch, &mut result).await,
        Err(_) => result.grade = "no_patch".into(),
    }
    // Over its budget is a failure, whatever the patch made so far does: `grade` still says
    // how that patch fared.
    if capped {
        result.resolved = false;
    }
    if ctx.stop.token().is_cancelled() {
        return None;
    }
    Some(result)
}

fn setup_error(mut result: TaskResult, error: String) -> TaskResult {
    result.stop_reason = "setup_error".into();
    result.error = Some(error);
    result
}

fn apply_metrics(result: &mut TaskResult, m: RunMetrics) {
    result.turns = m.turns;
    result.input_tokens = m.input_tokens;
    result.output_tokens = m.output_tokens;
    result.cost_usd = m.cost_usd;
    result.tool_errors = m.tool_errors;
    result.stop_reason = m.stop_reason;
    result.error = m.error;
    if m.model.is_some() {
        result.model = m.model;
    }
}

type Prepared = (
    Source,
    PathBuf,
    Arc<dyn crate::pipeline::model::Provider>,
    Option<String>,
);

/// The source, the derived repository and the model of a task.
async fn prepare(ctx: &Context, task: &Task, scratch: &Path) -> Result<Prepared, String> {
    let source =
        super::repo::open_source(&task.repo, task.base.as_deref(), &ctx.tasks_dir, scratch)
            .await
            .map_err(|e: RepoError| format!("repository: {e}"))?;
    let derived = scratch.join("repo.git");
    source
        .derive(&derived, &task.hidden_paths)
        .await
        .map_err(|e| format!("preparing the repository without its hidden paths: {e}"))?;
    // --model on the command line > the task's model > TB_MODEL / the config file.
    let (spec, base_dir) = match (&ctx.flag_model, &task.model) {
        (Some(m), _) => (Some(m.clone()), ctx.cwd.clone()),
        (None, Some(m)) => (Some(m.clone()), ctx.tasks_dir.clone()),
        (None, None) => (ctx.config.model.clone(), ctx.cwd.clone()),
    };
    let mut config = (*ctx.config).clone();
    config.model = spec.clone();
    let provider =
        crate::pipeline::model::provider(&config, &base_dir).map_err(|e| format!("model: {e}"))?;
    Ok((source, derived, provider, spec))
}

/// Applies `patch` to a fresh checkout of the original base and runs the task's test command in
/// a sandbox of its own: exit 0 is resolved.
async fn grade(ctx: &Context, task: &Task, source: &Source, patch: &[u8], result: &mut TaskResult) {
    let started = Instant::now();
    let Some(run_id) = result.run_id.clone() else {
        return;
    };
    // A workspace of the run's own name: recovery removes it should this process die.
    let dir = match ctx.store.create_workspace(&run_id) {
        Ok(d) => d,
        Err(e) => {
            result.error = Some(format!("grading folder: {e}"));
            return;
        }
    };
    let outcome = grade_in(ctx, task, source, patch, &dir, result).await;
    if let Err(e) = outcome {
        result.error = Some(format!("grading: {e}"));
    }
    if let Err(e) = force_remove_dir(&dir) {
        tracing::warn!("could not remove {}: {e}", dir.display());
    }
    result.grade_ms = started.elapsed().as_millis() as u64;
}

async fn grade_in(
    ctx: &Context,
    task: &Task,
    source: &Source,
    patch: &[u8],
    dir: &Path,
    result: &mut TaskResult,
) -> Result<(), String> {
    let tree = source
        .grading_tree(dir, &task.hidden_paths, patch)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(why) = tree {
        result.grade = "patch_did_not_apply".into();
        result.error = Some(format!(
            "the patch does not apply to the original base: {why}"
        ));
        return Ok(());
    }
    let mut settings = ctx.config.sandbox.clone();
    settings.network = false;
    let mounts = SandboxMounts {
        work_tree: dir.join("repo"),
        git_dir: dir.join("git"),
    };
    let sandbox = sandbox::open(&settings, mounts).map_err(|e| e.to_string())?;
    let cancel = ctx.stop.token();
    let mut log = String::new();
    let mut steps = Vec::new();
    if let Some(setup) = &task.setup {
        steps.push(("setup", setup.as_str()));
    }
    steps.push(("test", task.test_cmd.as_str()));
    for (what, command) in steps {
        let request = ExecRequest {
            command: command.to_string(),
            timeout: ctx.test_timeout,
        };
        let out = sandbox
            .exec(&request, &cancel)
            .await
            .map_err(|e| e.to_string())?;
        log.push_str(&format!(
            "$ {command}\n{}\n→ exit {}{}\n\n",
            out.output,
            out.exit_code,
            out.terminated
                .map(|t| format!(" ({})", t.describe(ctx.test_timeout)))
                .unwrap_or_default()
        ));
        let ok = out.exit_code == 0 && out.terminated.is_none();
        if what == "test" {
            result.test_exit_code = Some(out.exit_code);
            result.resolved = ok;
            result.grade = if ok { "passed" } else { "failed" }.into();
        } else if !ok {
            result.grade = "setup_failed".into();
            break;
        }
    }
    drop(sandbox);
    let name = format!("{}.{}.test.txt", result.id, result.repeat);
    if let Err(e) = std::fs::write(ctx.logs.join(name), log) {
        tracing::warn!("could not save the test output: {e}");
    }
    Ok(())
}
