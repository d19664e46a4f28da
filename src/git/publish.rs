//! Host-side git for publishing: a fresh repository holding only the base commit (fetched from
//! the source, never from the agent's workspace), the approved patch applied to an index (no work
//! tree is ever checked out), a commit, and a push of one branch.
//!
//! Invariants: every command is [`hardened_command`] (no hooks, no global/system config, no
//! pagers or external drivers, restricted protocols, URLs after `--`); the patch is applied as the
//! bytes it is, with attributes from nowhere ([`super::attrs`]: pins and the empty tree as
//! attribute source), so nothing converts it on the way into the commit; the token reaches git only
//! through the environment of that one command, read by a one-shot
//! credential helper — never in a URL, `.git/config`, arguments, logs or events; pushes never
//! force; commits are reproducible (fixed author, committer and dates), so a retried publish makes
//! the very same commit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{GitError, hardened_command};
use crate::secret::Secret;

const NETWORK_TIMEOUT: Duration = Duration::from_secs(300);

/// A remote to fetch from or push to, with the token it may be given (if any).
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    /// `GIT_ALLOW_PROTOCOL` for it.
    pub allow: String,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// The commit to publish, made in a fresh repository.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub git_dir: PathBuf,
    pub commit: String,
    pub tree: String,
    pub base_commit: String,
    /// `subject (date)` of the base commit, for summaries.
    pub base_line: String,
}

fn command(git_dir: &Path, remote: Option<&Remote>) -> tokio::process::Command {
    let allow = remote.map_or("file", |r| r.allow.as_str());
    let mut cmd = hardened_command(allow);
    cmd.args([
        "-c",
        "http.followRedirects=false",
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
    ]);
    super::offer_token(&mut cmd, remote.and_then(|r| r.token.as_ref()));
    cmd.env("GIT_DIR", git_dir).current_dir(git_dir);
    cmd
}

async fn run(
    mut cmd: tokio::process::Command,
    what: &str,
    input: Option<&[u8]>,
) -> Result<String, GitError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(bytes).await.map_err(GitError::Spawn)?;
    }
    let out = tokio::time::timeout(NETWORK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| GitError::Timeout {
            what: what.into(),
            secs: NETWORK_TIMEOUT.as_secs(),
        })?
        .map_err(GitError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("hint:") && !l.trim().is_empty())
            .collect();
        return Err(GitError::Failed {
            what: what.into(),
            stderr: stderr.join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn git(git_dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = command(git_dir, None);
    cmd.args(args);
    run(cmd, args.first().copied().unwrap_or("git"), None).await
}

/// Makes the commit in a new repository at `dir` (removed first): fetch `base_commit` from
/// `origin`, apply `patch` to an index of it, commit with `message`, `author` and `unix_time`.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    dir: &Path,
    origin: &Remote,
    base_commit: &str,
    base_branch: Option<&str>,
    patch: &[u8],
    message: &str,
    author: &Author,
    unix_time: i64,
) -> Result<Prepared, GitError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(GitError::Spawn)?;
    }
    std::fs::create_dir_all(dir).map_err(GitError::Spawn)?;
    let mut init = hardened_command("file");
    init.args(["init", "--quiet", "--bare", "--"]).arg(dir);
    run(init, "init", None).await?;
    super::attrs::write_pins(dir).map_err(GitError::WorkTree)?;
    let empty_tree = git(dir, &["hash-object", "-t", "tree", "--stdin"]).await?;

    let mut fetch = command(dir, Some(origin));
    fetch.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--depth=1",
        "--",
        &origin.url,
        base_commit,
    ]);
    if let Err(first) = run(fetch, "fetch", None).await {
        // Servers that refuse a fetch by commit id: fetch the base branch and look for it there.
        let Some(branch) = base_branch else {
            return Err(first);
        };
        tracing::info!("fetch by id refused ({first}); fetching {branch}");
        let mut fetch = command(dir, Some(origin));
        fetch
            .args(["fetch", "--quiet", "--no-tags", "--", &origin.url])
            .arg(format!("refs/heads/{branch}"));
        run(fetch, "fetch", None).await?;
    }
    let verify = format!("{base_commit}^{{commit}}");
    git(dir, &["cat-file", "-e", &verify])
        .await
        .map_err(|_| GitError::Failed {
            what: "fetch".into(),
            stderr: format!("the base commit {base_commit} is no longer on the remote"),
        })?;
    let base_line = git(dir, &["log", "-1", "--format=%s (%as)", base_commit]).await?;

    let index = dir.join("tb-index");
    let patch_file = dir.join("tb-approved.diff");
    std::fs::write(&patch_file, patch).map_err(GitError::Spawn)?;
    let with_index = |args: &[&str]| {
        let mut cmd = command(dir, None);
        cmd.env("GIT_INDEX_FILE", &index)
            .env("GIT_ATTR_SOURCE", &empty_tree)
            .args(args);
        cmd
    };
    run(with_index(&["read-tree", base_commit]), "read-tree", None).await?;
    let patch_arg = patch_file.display().to_string();
    run(
        with_index(&[
            "apply",
            "--cached",
            "--binary",
            "--whitespace=nowarn",
            "--",
            &patch_arg,
        ]),
        "apply",
        None,
    )
    .await?;
    let tree = run(with_index(&["write-tree"]), "write-tree", None).await?;
    let date = format!("@{unix_time} +0000");
    let mut commit = command(dir, None);
    commit
        .env("GIT_AUTHOR_NAME", &author.name)
        .env("GIT_AUTHOR_EMAIL", &author.email)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_NAME", &author.name)
        .env("GIT_COMMITTER_EMAIL", &author.email)
        .env("GIT_COMMITTER_DATE", &date)
        .args(["commit-tree", &tree, "-p", base_commit, "-F", "-"]);
    let commit = run(commit, "commit-tree", Some(message.as_bytes())).await?;
    Ok(Prepared {
        git_dir: dir.to_path_buf(),
        commit,
        tree,
        base_commit: base_commit.to_string(),
        base_line,
    })
}

/// The commit `branch` points at on `remote`, if the branch exists.
pub async fn remote_branch(
    prepared: &Prepared,
    remote: &Remote,
    branch: &str,
) -> Result<Option<String>, GitError> {
    let mut cmd = command(&prepared.git_dir, Some(remote));
    cmd.args(["ls-remote", "--heads", "--", &remote.url])
        .arg(format!("refs/heads/{branch}"));
    let out = run(cmd, "ls-remote", None).await?;
    Ok(out
        .lines()
        .find(|l| l.ends_with(&format!("\trefs/heads/{branch}")))
        .and_then(|l| l.split('\t').next())
        .map(str::to_string))
}

/// Whether `sha` (fetched from `remote` if needed) is a commit with our tree on our base — i.e.
/// the branch is the one an earlier attempt of this publish pushed.
pub async fn is_ours(prepared: &Prepared, remote: Option<&Remote>, sha: &str) -> bool {
    if sha == prepared.commit {
        return true;
    }
    let verify = format!("{sha}^{{commit}}");
    if git(&prepared.git_dir, &["cat-file", "-e", &verify])
        .await
        .is_err()
        && let Some(remote) = remote
    {
        let mut fetch = command(&prepared.git_dir, Some(remote));
        fetch.args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth=2",
            "--",
            &remote.url,
            sha,
        ]);
        if run(fetch, "fetch", None).await.is_err() {
            return false;
        }
    }
    let shape = git(&prepared.git_dir, &["log", "-1", "--format=%T %P", sha]).await;
    shape.is_ok_and(|s| s == format!("{} {}", prepared.tree, prepared.base_commit))
}

/// Fetches the whole history of `branch` from `remote`, so a push no longer needs the remote to
/// accept a shallow update.
pub async fn unshallow(prepared: &Prepared, remote: &Remote, branch: &str) -> Result<(), GitError> {
    let mut cmd = command(&prepared.git_dir, Some(remote));
    cmd.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--unshallow",
        "--",
        &remote.url,
    ])
    .arg(format!("refs/heads/{branch}"));
    run(cmd, "fetch", None).await.map(|_| ())
}

/// Pushes the prepared commit to `refs/heads/BRANCH` on `remote`, never forcing.
pub async fn push(prepared: &Prepared, remote: &Remote, branch: &str) -> Result<(), GitError> {
    let mut cmd = command(&prepared.git_dir, Some(remote));
    // Not --quiet: the "! [rejected] … (reason)" lines are the useful part of a failure.
    cmd.args(["push", "--no-verify", "--", &remote.url])
        .arg(format!("{}:refs/heads/{branch}", prepared.commit));
    run(cmd, "push", None).await.map(|_| ())
}

/// The commit `branch` points at in the local repository at `path`, if it exists.
pub async fn local_branch(path: &Path, branch: &str) -> Option<String> {
    let mut cmd = hardened_command("file");
    cmd.current_dir(path).args([
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}^{{commit}}"),
    ]);
    run(cmd, "rev-parse", None)
        .await
        .ok()
        .filter(|s| !s.is_empty())
}

/// Creates `branch` in the local repository at `path` by fetching the prepared commit into it
/// (the repository's hooks never run: hardened git, and no push into it).
pub async fn create_local_branch(
    path: &Path,
    prepared: &Prepared,
    branch: &str,
) -> Result<(), GitError> {
    let refname = format!("refs/heads/{branch}");
    git(
        &prepared.git_dir,
        &["update-ref", &refname, &prepared.commit],
    )
    .await?;
    let mut cmd = hardened_command("file");
    cmd.current_dir(path).args([
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
        "-c",
        "fetch.writeCommitGraph=false",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--",
    ]);
    cmd.arg(format!("file://{}", prepared.git_dir.display()))
        .arg(format!("{refname}:{refname}"));
    run(cmd, "fetch", None).await.map(|_| ())
}

/// The user's own git identity (`user.name`, `user.email`) from their git configuration, read
/// explicitly (hardened git ignores it on purpose).
pub async fn user_identity() -> Option<Author> {
    let get = |key: &'static str| async move {
        let mut cmd = tokio::process::Command::new("git");
        cmd.env_clear();
        for var in ["PATH", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.current_dir("/")
            .args(["config", "--get", key])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = cmd.output().await.ok()?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !v.is_empty()).then_some(v)
    };
    Some(Author {
        name: get("user.name").await?,
        email: get("user.email").await?,
    })
}
