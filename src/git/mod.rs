//! Host-side git: clone into a workspace, compute the diff of the work tree.
//!
//! Invariants: every git process runs with system and global configuration ignored, hooks, fsmonitor,
//! pagers and external diff/textconv drivers off, a restricted `GIT_ALLOW_PROTOCOL`, no terminal
//! prompts, and URLs passed after `--`. The git directory lives outside the work tree the agent can
//! write, so nothing the agent plants can make these commands execute code on the host. Attributes
//! come from nowhere the agent can write ([`attrs`]) and no line-ending conversion applies, so the
//! work tree is staged byte for byte; host git never enters a nested repository the agent planted
//! ([`scan`]). The `-c` overrides also reach any git process started for a nested repository; see
//! `tests/sandbox_git.rs`.

pub mod attrs;
mod diff;
mod listing;
mod output;
pub mod publish;
mod refresh;
mod scan;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

pub use diff::{DiffLimits, LeftOut, LeftOutReason, SETUP_PATHS_FILE, WorkDiff, worktree_walker};
pub use listing::parse_numstat;
pub use refresh::IndexRefresh;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run git: {0}. Install git and make sure it is on PATH")]
    Spawn(#[source] std::io::Error),
    #[error("git {what} failed: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("git {what} took longer than {secs}s and was stopped")]
    Timeout { what: String, secs: u64 },
    #[error(
        "the repository is larger than the {limit_mb} MB clone limit; raise `clone.max_size_mb` in \
         the config file if you really mean to work on it"
    )]
    TooLarge { limit_mb: u64 },
    #[error("git {what} printed more than {limit_bytes} bytes; stopped rather than fill memory")]
    TooMuchOutput { what: String, limit_bytes: u64 },
    #[error(
        "the patch stays over the {limit_mb} MB limit even with its largest files left out; \
         raise `diff.max_patch_mb` (TB_DIFF_MAX_PATCH_MB) if you really mean to review it"
    )]
    PatchTooLarge { limit_mb: u64 },
    #[error("reading the work tree: {0}")]
    WorkTree(#[source] std::io::Error),
    #[error("cancelled")]
    Cancelled,
}

impl GitError {
    /// The stable code an `Error` event carries for this failure, as met reading a repository
    /// (probe, clone); the diff stage reports its own failures as `diff_failed`.
    pub fn code(&self) -> crate::event::ErrorCode {
        use crate::event::ErrorCode;
        match self {
            GitError::Failed { .. } | GitError::Timeout { .. } => ErrorCode::RepoUnreachable,
            GitError::TooLarge { .. } => ErrorCode::InvalidInput,
            GitError::PatchTooLarge { .. } | GitError::WorkTree(_) => ErrorCode::DiffFailed,
            GitError::Spawn(_) | GitError::TooMuchOutput { .. } => ErrorCode::Internal,
            GitError::Cancelled => ErrorCode::Cancelled,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, GitError::Timeout { .. }) || self.is_network_failure()
    }

    /// The remote could not be reached or the connection broke: trying again later may work.
    ///
    /// Read from stderr because git offers nothing better: every transport failure exits 128, and
    /// the cause is curl's or ssh's text (no machine-readable form). Kept here, in one place.
    pub fn is_network_failure(&self) -> bool {
        const NETWORK: &[&str] = &[
            "Could not resolve host",
            "Connection",
            "Failed to connect",
            "Couldn't connect",
            "timed out",
            "early EOF",
        ];
        matches!(self, GitError::Failed { stderr, .. }
            if NETWORK.iter().any(|n| stderr.contains(n)))
    }

    /// The remote asked for credentials or refused the ones it got (HTTP 401/403). Like
    /// [`GitError::is_network_failure`], only git's stderr says so.
    pub fn needs_credentials(&self) -> bool {
        const AUTH: &[&str] = &[
            "could not read Username",
            "Authentication failed",
            "401",
            "403",
        ];
        matches!(self, GitError::Failed { stderr, .. } if AUTH.iter().any(|a| stderr.contains(a)))
    }
}

/// A git repository on the host: its (protected) git directory and, usually, a work tree.
#[derive(Debug, Clone)]
pub struct HostRepo {
    pub git_dir: PathBuf,
    pub work_tree: Option<PathBuf>,
    /// The empty tree in this repository's hash: `GIT_ATTR_SOURCE` of every command.
    attr_source: Option<String>,
    /// An index other than the repository's own (`GIT_INDEX_FILE`), see [`HostRepo::with_index`].
    index_file: Option<PathBuf>,
}

/// Configuration that wins over anything a repository's files could say.
const SAFE_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=false",
    "core.askPass=",
    "core.sshCommand=false",
    "core.attributesFile=/dev/null",
    // What is in the work tree is staged byte for byte (attributes: see `attrs`).
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.eol=lf",
    "core.quotePath=true",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "diff.relative=false",
    "core.excludesFile=",
    "diff.external=",
    "credential.helper=",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.file.allow=user",
    "protocol.ext.allow=never",
    "core.untrackedCache=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "push.recurseSubmodules=no",
    "status.submoduleSummary=false",
    "diff.submodule=short",
    "gc.auto=0",
    "maintenance.auto=false",
    "core.alternateRefsCommand=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "uploadpack.packObjectsHook=",
    "safe.directory=*",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
];

/// The only variables host git inherits: where git is, and the user's proxy and CA settings.
const HOST_GIT_ENV: &[&str] = &[
    "PATH",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// A `git` command with the hardened environment and overrides; `allow_protocols` is the
/// `GIT_ALLOW_PROTOCOL` list (e.g. `https`, `file`).
pub fn hardened_command(allow_protocols: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.env_clear();
    // Only what finding git and reaching the network through the user's proxy and CA need.
    for name in HOST_GIT_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", allow_protocols)
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for c in SAFE_CONFIG {
        cmd.arg("-c").arg(c);
    }
    cmd
}

/// A credential helper that answers `get` from `TB_GIT_TOKEN` in its own environment and ignores
/// `store`/`erase`: the token is never in a URL, an argument, `.git/config` or a credential store.
const TOKEN_HELPER: &str = "!f() { test \"$1\" = get || exit 0; echo username=x-access-token; \
                            echo \"password=$TB_GIT_TOKEN\"; }; f";

/// Lets this one git command authenticate with `token` (added after the hardened overrides, which
/// reset the helper list).
pub fn offer_token(cmd: &mut tokio::process::Command, token: Option<&crate::secret::Secret>) {
    if let Some(token) = token {
        cmd.arg("-c")
            .arg(format!("credential.helper={TOKEN_HELPER}"));
        cmd.env("TB_GIT_TOKEN", token.expose());
    }
}

impl HostRepo {
    /// The repository at `git_dir`, with attributes from nowhere the agent can write
    /// ([`attrs`]): the pins written to its `info/attributes`, the empty tree as attribute source.
    pub async fn open(git_dir: PathBuf, work_tree: Option<PathBuf>) -> Result<HostRepo, GitError> {
        attrs::write_pins(&git_dir).map_err(GitError::WorkTree)?;
        let mut repo = HostRepo {
            git_dir,
            work_tree,
            attr_source: None,
            index_file: None,
        };
        let empty = repo.empty_tree().await?;
        if empty.is_empty() {
            return Err(GitError::Failed {
                what: "hash-object".into(),
                stderr: "no id for the empty tree".into(),
            });
        }
        repo.attr_source = Some(empty);
        Ok(repo)
    }

    /// The same repository, every command staging into `index` instead of its own index (the
    /// live diff's copy, so it never locks or changes the index the diff stage and the agent's
    /// self-review read). The same hardening applies.
    pub fn with_index(&self, index: PathBuf) -> HostRepo {
        HostRepo {
            index_file: Some(index),
            ..self.clone()
        }
    }

    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = hardened_command("file");
        if let Some(tree) = &self.attr_source {
            cmd.env("GIT_ATTR_SOURCE", tree);
        }
        cmd.env("GIT_DIR", &self.git_dir);
        if let Some(index) = &self.index_file {
            cmd.env("GIT_INDEX_FILE", index);
        }
        match &self.work_tree {
            Some(w) => {
                cmd.env("GIT_WORK_TREE", w).current_dir(w);
            }
            None => {
                cmd.current_dir(&self.git_dir);
            }
        }
        cmd
    }

    /// Runs git with `args`, returning stdout; a non-zero exit is an error carrying stderr.
    pub async fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let bytes = self.run_bytes(args).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn run_bytes(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(GitError::Failed {
                what: args.first().copied().unwrap_or("").to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// The commit HEAD points at, or `None` in an empty repository.
    pub async fn head_commit(&self) -> Option<String> {
        self.run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
            .await
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub async fn head_branch(&self) -> Option<String> {
        self.run(&["symbolic-ref", "--short", "-q", "HEAD"])
            .await
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The empty tree's id in this repository's hash format.
    pub async fn empty_tree(&self) -> Result<String, GitError> {
        let mut cmd = self.command();
        cmd.args(["hash-object", "-t", "tree", "--stdin"])
            .stdin(Stdio::null());
        let out = cmd.output().await.map_err(GitError::Spawn)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// What `git ls-remote` says about a repository before anything is cloned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// The branch the remote's HEAD points at, when it says.
    pub default_branch: Option<String>,
    /// Whether the asked-for base branch exists (`true` when none was asked for).
    pub base_exists: bool,
    /// No refs at all: a repository without commits.
    pub empty: bool,
}

/// Asks the remote for its HEAD and branches: proves it is reachable and the base exists.
pub async fn probe_remote(
    url: &str,
    allow_protocols: &str,
    base: Option<&str>,
    timeout: Duration,
    token: Option<&crate::secret::Secret>,
) -> Result<RemoteInfo, GitError> {
    let mut cmd = hardened_command(allow_protocols);
    offer_token(&mut cmd, token);
    cmd.args(["ls-remote", "--symref", "--", url]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| GitError::Timeout {
            what: "ls-remote".into(),
            secs: timeout.as_secs(),
        })?
        .map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            what: "ls-remote".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut default_branch = None;
    let mut branches = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("ref: refs/heads/") {
            if let Some((branch, "HEAD")) = rest.split_once('\t') {
                default_branch = Some(branch.to_string());
            }
        } else if let Some((_, name)) = line.split_once('\t')
            && let Some(b) = name.strip_prefix("refs/heads/")
        {
            branches.push(b.to_string());
        }
    }
    let empty = branches.is_empty();
    let base_exists = base.is_none_or(|b| branches.iter().any(|x| x == b));
    Ok(RemoteInfo {
        default_branch,
        base_exists,
        empty,
    })
}

/// What to clone and how.
#[derive(Debug, Clone)]
pub struct CloneSpec {
    pub url: String,
    pub allow_protocols: String,
    pub branch: Option<String>,
    pub timeout: Duration,
    pub max_size_bytes: u64,
    /// The source is a repository on this machine (`url` is its path).
    pub local: bool,
    /// Offered to the source's host only (a GitHub repository and its token).
    pub token: Option<crate::secret::Secret>,
}

#[derive(Debug, Clone)]
pub struct Cloned {
    pub repo: HostRepo,
    /// The branch checked out (`--base`, or the remote's default).
    pub branch: Option<String>,
    /// `None` for an empty repository.
    pub base_commit: Option<String>,
}

/// Shallow, single-branch, tagless clone into `work_tree`, with its git directory at `git_dir`.
/// `progress` receives git's progress lines, already de-duplicated.
pub async fn clone(
    spec: &CloneSpec,
    work_tree: &Path,
    git_dir: &Path,
    progress: &(dyn Fn(String) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Cloned, GitError> {
    let mut cmd = hardened_command(&spec.allow_protocols);
    offer_token(&mut cmd, spec.token.as_ref());
    // Parallel checkout: writing files dominates cloning large trees here.
    cmd.args(["-c", "checkout.workers=8"]);
    cmd.args(["clone", "--progress", "--no-tags", "--single-branch"]);
    // The checkout ignores the repository's attributes too: the work tree holds the blobs' bytes,
    // the same bytes the diff stages back.
    let template = attrs::clone_template().map_err(GitError::WorkTree)?;
    cmd.arg(format!("--template={}", template.path().display()));
    // A local clone copies (hard-links) objects instead of packing them: no history is
    // transferred over a wire, so shallowness would only cost time.
    if !spec.local {
        cmd.args(["--depth", "1"]);
    }
    cmd.arg("--separate-git-dir").arg(git_dir);
    if let Some(b) = &spec.branch {
        cmd.arg("--branch").arg(b);
    }
    cmd.arg("--").arg(&spec.url).arg(work_tree);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stderr")))?;

    let mut captured = String::new();
    let mut pending = String::new();
    let mut last_progress = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut size_check = tokio::time::interval(Duration::from_millis(500));
    let status = loop {
        tokio::select! {
            n = stderr.read(&mut buf) => {
                let n = n.unwrap_or(0);
                if n == 0 {
                    break child.wait().await.map_err(GitError::Spawn)?;
                }
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(pos) = pending.find(['\r', '\n']) {
                    let line: String = pending.drain(..=pos).collect();
                    let line = line.trim().to_string();
                    if line.is_empty() { continue; }
                    // Only report phase changes and whole percents, not every byte count.
                    let key: String = line.split(':').next().unwrap_or("").to_string();
                    if line.contains("done") || !last_progress.starts_with(&key) {
                        progress(line.clone());
                        last_progress = line.clone();
                    }
                    if captured.len() < 16 * 1024 {
                        captured.push_str(&line);
                        captured.push('\n');
                    }
                }
            }
            _ = size_check.tick() => {
                if dir_size_exceeds(work_tree, spec.max_size_bytes)
                    || dir_size_exceeds(git_dir, spec.max_size_bytes)
                {
                    let _ = child.kill().await;
                    return Err(GitError::TooLarge { limit_mb: spec.max_size_bytes >> 20 });
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = child.kill().await;
                return Err(GitError::Timeout { what: "clone".into(), secs: spec.timeout.as_secs() });
            }
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                return Err(GitError::Cancelled);
            }
        }
    };
    if !status.success() {
        let stderr = captured
            .lines()
            .filter(|l| !l.starts_with("Cloning into") && !l.contains('%'))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(GitError::Failed {
            what: "clone".into(),
            stderr,
        });
    }
    if dir_size_exceeds(work_tree, spec.max_size_bytes) {
        return Err(GitError::TooLarge {
            limit_mb: spec.max_size_bytes >> 20,
        });
    }
    // The work tree's `.git` file would point the sandbox at a host path; replace it with an
    // empty directory that the sandbox uses as the read-only mount point of the real git dir.
    let dot_git = work_tree.join(".git");
    let _ = std::fs::remove_file(&dot_git);
    std::fs::create_dir_all(&dot_git).map_err(GitError::Spawn)?;

    drop(template);
    write_artifact_excludes(git_dir);
    let repo = HostRepo::open(git_dir.to_path_buf(), Some(work_tree.to_path_buf())).await?;
    let base_commit = repo.head_commit().await;
    let branch = repo.head_branch().await;
    Ok(Cloned {
        repo,
        branch,
        base_commit,
    })
}

/// Build and cache output that running tests leaves behind. Listed in the host-only
/// `info/exclude`, so it never lands in a diff unless the repository already tracks it.
const ARTIFACT_EXCLUDES: &str = "__pycache__/\n*.py[co]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n\
.tox/\n.venv/\nnode_modules/\n.next/\n.gradle/\n.cache/\n*.o\n*.class\n.DS_Store\n";

fn write_artifact_excludes(git_dir: &Path) {
    let info = git_dir.join("info");
    if std::fs::create_dir_all(&info).is_ok() {
        let path = info.join("exclude");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str("\n# added by tiny-backspace: build and test artifacts\n");
        text.push_str(ARTIFACT_EXCLUDES);
        if let Err(e) = std::fs::write(&path, text) {
            tracing::warn!("could not write {}: {e}", path.display());
        }
    }
}

/// Whether the files below `dir` add up to more than `limit` bytes (stops counting early).
pub fn dir_size_exceeds(dir: &Path, limit: u64) -> bool {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
                if total > limit {
                    return true;
                }
            }
        }
    }
    false
}
