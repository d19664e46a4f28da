//! The two repositories of an eval task, built with hardened host git: the derived one the agent
//! works on (the base's tree without the hidden paths) and the grading checkout (the original
//! base, the agent's patch, the hidden paths restored).
//!
//! Invariants: the derived repository is a new bare repository whose only commit is a root commit
//! of the base tree minus the hidden paths, and whose object store holds exactly the objects that
//! commit reaches (repacked from a temporary alternate, which is then removed): no work tree, ref,
//! history or object the agent can reach holds a hidden file. The source repository is only read
//! (temporary indexes live in our own folders). Hidden files in the grading tree are always the
//! original's, whatever the patch did at those paths.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::git::hardened_command;
use crate::repo::RepoSource;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Input(#[from] crate::repo::RepoInputError),
    #[error("could not run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {what} failed: {stderr}")]
    Git { what: String, stderr: String },
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("base `{0}` is not a commit of the repository")]
    NoBase(String),
    #[error("hidden path `{0}` is not in the base commit (a typo would show the agent the tests)")]
    HiddenMissing(String),
    #[error(
        "{0} is below a folder every sandbox may read (/usr, /opt, /etc, …): the agent could read \
         the hidden files there; move it elsewhere"
    )]
    SandboxReadable(PathBuf),
}

/// Folders a sandbox may read besides its work tree (docs/sandbox.md, "what the sandbox sees"):
/// nothing holding hidden files may live below them.
const SANDBOX_READABLE: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/nix", "/etc",
];

/// Refuses `path` when a sandbox could read it (checked on the resolved path).
pub fn check_private(path: &Path) -> Result<(), RepoError> {
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if real == Path::new("/") || SANDBOX_READABLE.iter().any(|d| real.starts_with(d)) {
        return Err(RepoError::SandboxReadable(real));
    }
    Ok(())
}

/// The task's repository as read-only input: its git directory and the base commit.
pub struct Source {
    pub git_dir: PathBuf,
    pub base_commit: String,
    /// The empty tree's id in this repository's hash: attributes come from nowhere.
    empty_tree: String,
}

/// Runs git with `env` set; returns stdout (trimmed when `trim`).
async fn git(
    env: &[(&str, &OsStr)],
    cwd: Option<&Path>,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, RepoError> {
    let mut cmd = hardened_command("file");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().map_err(RepoError::Spawn)?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(bytes).await.map_err(RepoError::Io)?;
        drop(stdin);
    }
    let out = child.wait_with_output().await.map_err(RepoError::Spawn)?;
    if !out.status.success() {
        return Err(RepoError::Git {
            what: args.first().copied().unwrap_or("").to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn dir_env(git_dir: &Path) -> (&'static str, &OsStr) {
    ("GIT_DIR", git_dir.as_os_str())
}

/// Opens the task's repository: a local one in place, a URL cloned bare into `scratch`, a plain
/// folder (no git repository) committed as it is into a new repository in `scratch`.
pub async fn open_source(
    repo: &str,
    base: Option<&str>,
    tasks_dir: &Path,
    scratch: &Path,
) -> Result<Source, RepoError> {
    let near = tasks_dir.join(repo);
    let is_repo = near.join(".git").exists() || near.join("objects").is_dir();
    let input = if near.is_dir() {
        near.display().to_string()
    } else {
        repo.to_string()
    };
    let git_dir = if near.is_dir() && !is_repo {
        check_private(&near)?;
        snapshot(&near, &scratch.join("source.git")).await?
    } else {
        open_existing(&input, tasks_dir, scratch).await?
    };
    let env = [dir_env(&git_dir)];
    let rev = format!("{}^{{commit}}", base.unwrap_or("HEAD"));
    let base_commit = git(
        &env,
        None,
        &["rev-parse", "--verify", "--quiet", &rev],
        None,
    )
    .await
    .map_err(|_| RepoError::NoBase(base.unwrap_or("HEAD").to_string()))?;
    let empty_tree = git(
        &env,
        None,
        &["hash-object", "-t", "tree", "--stdin"],
        Some(b""),
    )
    .await?;
    Ok(Source {
        git_dir,
        base_commit,
        empty_tree,
    })
}

/// Commits the files of `folder` (as git would add them, build artifacts left out) into a new
/// bare repository at `dest`, on `main`.
async fn snapshot(folder: &Path, dest: &Path) -> Result<PathBuf, RepoError> {
    init_bare(dest, None).await?;
    let exclude = dest.join("info/exclude");
    std::fs::create_dir_all(dest.join("info")).map_err(RepoError::Io)?;
    std::fs::write(&exclude, "__pycache__/\n*.py[co]\n").map_err(RepoError::Io)?;
    let index = dest.join("tb-eval-index");
    let env = [
        dir_env(dest),
        ("GIT_WORK_TREE", folder.as_os_str()),
        ("GIT_INDEX_FILE", index.as_os_str()),
    ];
    git(&env, Some(folder), &["add", "-A", "--", "."], None).await?;
    let tree = git(&env, Some(folder), &["write-tree"], None).await?;
    let env = fixed_identity(dest, &index);
    let commit = git(&env, None, &["commit-tree", &tree], Some(b"Task folder\n")).await?;
    git(
        &env,
        None,
        &["update-ref", "refs/heads/main", &commit],
        None,
    )
    .await?;
    let _ = std::fs::remove_file(&index);
    Ok(dest.to_path_buf())
}

/// A new bare repository at `dest`, in `format` (`sha1`, `sha256`) when given.
async fn init_bare(dest: &Path, format: Option<&str>) -> Result<(), RepoError> {
    let mut init = hardened_command("file");
    init.args(["init", "--bare", "--quiet"]);
    if let Some(f) = format {
        init.arg(format!("--object-format={f}"));
    }
    init.arg("--").arg(dest);
    let out = init.output().await.map_err(RepoError::Spawn)?;
    if !out.status.success() {
        return Err(RepoError::Git {
            what: "init".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// `GIT_DIR`, the index, and a fixed author and date: the same input makes the same commit.
fn fixed_identity<'a>(git_dir: &'a Path, index: &'a Path) -> [(&'static str, &'a OsStr); 8] {
    [
        dir_env(git_dir),
        ("GIT_INDEX_FILE", index.as_os_str()),
        ("GIT_AUTHOR_NAME", OsStr::new("tiny-backspace eval")),
        (
            "GIT_AUTHOR_EMAIL",
            OsStr::new("eval@tiny-backspace.invalid"),
        ),
        ("GIT_AUTHOR_DATE", OsStr::new("@0 +0000")),
        ("GIT_COMMITTER_NAME", OsStr::new("tiny-backspace eval")),
        (
            "GIT_COMMITTER_EMAIL",
            OsStr::new("eval@tiny-backspace.invalid"),
        ),
        ("GIT_COMMITTER_DATE", OsStr::new("@0 +0000")),
    ]
}

/// The git directory of a local repository, or of a URL cloned bare into `scratch`.
async fn open_existing(
    input: &str,
    tasks_dir: &Path,
    scratch: &Path,
) -> Result<PathBuf, RepoError> {
    Ok(match RepoSource::parse(input, tasks_dir)? {
        RepoSource::Local { path } => {
            check_private(&path)?;
            let dir = git(&[], Some(&path), &["rev-parse", "--absolute-git-dir"], None).await?;
            let dir = PathBuf::from(dir);
            check_private(&dir)?;
            dir
        }
        remote => {
            let dest = scratch.join("source.git");
            let mut cmd = hardened_command(remote.allowed_protocols());
            cmd.args(["clone", "--bare", "--quiet", "--no-tags", "--"])
                .arg(remote.clone_url())
                .arg(&dest)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let out = cmd.output().await.map_err(RepoError::Spawn)?;
            if !out.status.success() {
                return Err(RepoError::Git {
                    what: "clone".into(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            dest
        }
    })
}

impl Source {
    /// Reads the base into the index at `index` and drops the hidden paths from it; every hidden
    /// path must name something in the base.
    async fn index_without(
        &self,
        index: &Path,
        work_tree: Option<&Path>,
        hidden: &[String],
    ) -> Result<(), RepoError> {
        let mut env = vec![
            dir_env(&self.git_dir),
            ("GIT_INDEX_FILE", index.as_os_str()),
            ("GIT_ATTR_SOURCE", OsStr::new(&self.empty_tree)),
            ("GIT_LITERAL_PATHSPECS", OsStr::new("1")),
        ];
        if let Some(w) = work_tree {
            env.push(("GIT_WORK_TREE", w.as_os_str()));
        }
        git(&env, work_tree, &["read-tree", &self.base_commit], None).await?;
        for path in hidden {
            let listed = git(&env, work_tree, &["ls-files", "--", path], None).await?;
            if listed.is_empty() {
                return Err(RepoError::HiddenMissing(path.clone()));
            }
        }
        if !hidden.is_empty() {
            let mut args = vec!["rm", "--cached", "-r", "-q", "--ignore-unmatch", "--"];
            args.extend(hidden.iter().map(String::as_str));
            git(&env, work_tree, &args, None).await?;
        }
        Ok(())
    }

    /// Builds the repository the agent works on at `dest` (a new bare repository; its branch is
    /// `main`).
    pub async fn derive(&self, dest: &Path, hidden: &[String]) -> Result<(), RepoError> {
        // The same hash as the source, whose objects it borrows while it is built.
        let format = git(
            &[dir_env(&self.git_dir)],
            None,
            &["rev-parse", "--show-object-format"],
            None,
        )
        .await?;
        init_bare(dest, Some(&format)).await?;
        let objects = git(
            &[dir_env(&self.git_dir)],
            None,
            &[
                "rev-parse",
                "--path-format=absolute",
                "--git-path",
                "objects",
            ],
            None,
        )
        .await?;
        let alternates = dest.join("objects/info/alternates");
        std::fs::write(&alternates, format!("{objects}\n")).map_err(RepoError::Io)?;
        let index = dest.join("tb-eval-index");
        // Trees and the commit are written into `dest`; blobs are read through the alternate.
        let source = Source {
            git_dir: dest.to_path_buf(),
            base_commit: self.base_commit.clone(),
            empty_tree: self.empty_tree.clone(),
        };
        source.index_without(&index, None, hidden).await?;
        let env = fixed_identity(dest, &index);
        let tree = git(&env, None, &["write-tree"], None).await?;
        let commit = git(
            &env,
            None,
            &["commit-tree", &tree],
            Some(b"Task base (hidden paths removed)\n"),
        )
        .await?;
        git(
            &env,
            None,
            &["update-ref", "refs/heads/main", &commit],
            None,
        )
        .await?;
        git(
            &env,
            None,
            &["symbolic-ref", "HEAD", "refs/heads/main"],
            None,
        )
        .await?;
        // Copy what the commit reaches into our own pack, then cut the alternate: the source's
        // other objects (history, the hidden files) are no longer reachable from `dest`.
        git(&env, None, &["repack", "-a", "-d", "-q"], None).await?;
        std::fs::remove_file(&alternates).map_err(RepoError::Io)?;
        let _ = std::fs::remove_file(&index);
        git(
            &env,
            None,
            &["rev-list", "--objects", "--all", "--quiet"],
            None,
        )
        .await?;
        Ok(())
    }

    /// Prepares the grading tree in `dir` (`repo/` and an empty `git/`): the base without the
    /// hidden paths (as the agent saw it), `patch` applied, the hidden paths restored. `Ok(Err)`
    /// when the patch does not apply, with git's reason.
    pub async fn grading_tree(
        &self,
        dir: &Path,
        hidden: &[String],
        patch: &[u8],
    ) -> Result<Result<(), String>, RepoError> {
        let work = dir.join("repo");
        let git_dir = dir.join("git");
        std::fs::create_dir_all(&work).map_err(RepoError::Io)?;
        init_bare(&git_dir, None).await?;
        let index = dir.join("index");
        self.index_without(&index, Some(&work), hidden).await?;
        let env = [
            dir_env(&self.git_dir),
            ("GIT_INDEX_FILE", index.as_os_str()),
            ("GIT_WORK_TREE", work.as_os_str()),
            ("GIT_ATTR_SOURCE", OsStr::new(&self.empty_tree)),
        ];
        git(&env, Some(&work), &["checkout-index", "-a", "-f"], None).await?;
        if !patch.iter().all(u8::is_ascii_whitespace) {
            let patch_file = dir.join("patch.diff");
            std::fs::write(&patch_file, patch).map_err(RepoError::Io)?;
            // No GIT_ATTR_SOURCE here: git 2.47 crashes on one its repository lacks, and apply
            // reads attributes for whitespace rules only (off with --whitespace=nowarn).
            let apply_env = [dir_env(&git_dir), ("GIT_WORK_TREE", work.as_os_str())];
            let patch_arg = patch_file.display().to_string();
            let args = ["apply", "--binary", "--whitespace=nowarn", "--", &patch_arg];
            match git(&apply_env, Some(&work), &args, None).await {
                Ok(_) => {}
                Err(RepoError::Git { stderr, .. }) if !stderr.is_empty() => {
                    return Ok(Err(stderr));
                }
                Err(e) => return Err(e),
            }
        }
        if !hidden.is_empty() {
            for path in hidden {
                remove_in_tree(&work, path).map_err(RepoError::Io)?;
            }
            let full = dir.join("index-full");
            let env = [
                dir_env(&self.git_dir),
                ("GIT_INDEX_FILE", full.as_os_str()),
                ("GIT_WORK_TREE", work.as_os_str()),
                ("GIT_ATTR_SOURCE", OsStr::new(&self.empty_tree)),
                ("GIT_LITERAL_PATHSPECS", OsStr::new("1")),
            ];
            git(&env, Some(&work), &["read-tree", &self.base_commit], None).await?;
            let mut args = vec!["ls-files", "-z", "--"];
            args.extend(hidden.iter().map(String::as_str));
            let files = git(&env, Some(&work), &args, None).await?;
            git(
                &env,
                Some(&work),
                &["checkout-index", "-f", "-z", "--stdin"],
                Some(files.as_bytes()),
            )
            .await?;
        }
        Ok(Ok(()))
    }
}

/// Removes `rel` below `root` without following symbolic links: a symlink or file standing where
/// a folder of the path should be is removed itself (the restore then makes the folder).
fn remove_in_tree(root: &Path, rel: &str) -> std::io::Result<()> {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut cur = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        cur.push(part);
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.is_dir() && i + 1 < parts.len() {
            continue;
        }
        // std's remove_dir_all does not follow symbolic links.
        return if meta.is_dir() {
            std::fs::remove_dir_all(&cur)
        } else {
            std::fs::remove_file(&cur)
        };
    }
    Ok(())
}

#[cfg(test)]
#[path = "repo_tests.rs"]
mod tests;
