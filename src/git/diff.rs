//! The work tree's changes against the base commit, as the host computes them.
//!
//! Invariants: the diff covers every change in the work tree (new files included, whoever made them:
//! tools or shell commands), honours `.gitignore`, and is in `git diff --binary` form so that
//! `git apply` on a clean checkout of the base reproduces the work exactly.

use super::{GitError, HostRepo};
use crate::event::FileStat;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkDiff {
    pub patch: String,
    pub files: Vec<FileStat>,
    /// Directories holding a repository of their own, left out of the diff.
    pub left_out: Vec<String>,
}

/// A walk of the work tree below `root` as git sees it: hidden files included, `.gitignore` files
/// honoured (only those inside `root`), the user's global and host excludes ignored, symlinks not
/// followed, `.git` never entered. The agent's `list_files`/`search` and the nested-repository
/// check use this one configuration, so what the agent is shown is what the diff can contain.
pub fn worktree_walker(root: &std::path::Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .follow_links(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .parents(false)
        .filter_entry(|e| e.file_name() != ".git");
    builder
}

/// Directories below `root` (not `root` itself) that hold a `.git` of their own. git would record
/// them as gitlinks (or refuse them without a commit); neither belongs in a patch. Ignored trees
/// (`.gitignore`, and `exclude_file`: the host-only `info/exclude`) are not walked: git skips them
/// anyway, and they are where the big ones live (`node_modules`, `target`).
pub fn nested_repositories(
    root: &std::path::Path,
    exclude_file: Option<&std::path::Path>,
) -> Vec<String> {
    let mut builder = worktree_walker(root);
    if let Some(f) = exclude_file
        && let Some(e) = builder.add_ignore(f)
    {
        tracing::debug!("exclude file not used for the nested-repository walk: {e}");
    }
    let mut found: Vec<String> = builder
        .build()
        .flatten()
        .filter(|e| e.depth() > 0 && e.file_type().is_some_and(|t| t.is_dir()))
        // symlink_metadata: never follow the agent's links out of the tree.
        .filter(|e| std::fs::symlink_metadata(e.path().join(".git")).is_ok())
        .filter_map(|e| {
            e.path()
                .strip_prefix(root)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect();
    // A repository inside one already left out is covered by it.
    let outer = found.clone();
    found.retain(|f| !outer.iter().any(|o| f.starts_with(&format!("{o}/"))));
    found.sort();
    found
}

/// A `git update-index --refresh` in the background, started once the clock has passed the second
/// the index was written in.
///
/// Why: git (built without nanosecond timestamps, as Debian's is) re-reads every file whose mtime
/// falls in the index's own second ("racily clean"); after a fresh clone that is every file, about
/// 10 ms per 1,000 files on the first diff. Refreshing while the model thinks moves that off the
/// way to the review. Invariant: once git has started it runs to the end (a killed git would leave
/// `index.lock` behind), so [`IndexRefresh::settle`] waits for it.
pub struct IndexRefresh {
    cancel: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl IndexRefresh {
    /// Drops a refresh that has not started yet; waits for one that has.
    pub async fn settle(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

impl HostRepo {
    /// Starts an [`IndexRefresh`] (a no-op for a repository without an index: an empty one).
    pub fn refresh_index_soon(&self) -> IndexRefresh {
        let repo = self.clone();
        let cancel = tokio_util::sync::CancellationToken::new();
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            let Ok(written) =
                std::fs::metadata(repo.git_dir.join("index")).and_then(|m| m.modified())
            else {
                return;
            };
            let second = written
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let turn = std::time::UNIX_EPOCH + std::time::Duration::from_secs(second + 1);
            let wait = turn
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                + std::time::Duration::from_millis(20);
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = repo.run(&["update-index", "-q", "--refresh"]).await {
                tracing::debug!("index refresh: {e}");
            }
        });
        IndexRefresh { cancel, task }
    }

    /// Stages everything into the host-only index and diffs it against `base` (or the empty tree).
    pub async fn work_diff(&self, base: Option<&str>) -> Result<WorkDiff, GitError> {
        let left_out = self
            .work_tree
            .as_deref()
            .map(|w| nested_repositories(w, Some(&self.git_dir.join("info").join("exclude"))))
            .unwrap_or_default();
        let excludes: Vec<String> = left_out
            .iter()
            .map(|d| format!(":(exclude,literal){d}"))
            .collect();
        let mut add_args = vec!["add", "--all", "--", "."];
        add_args.extend(excludes.iter().map(String::as_str));
        self.run(&add_args).await?;
        let base = match base {
            Some(b) => b.to_string(),
            None => self.empty_tree().await?,
        };
        let common = [
            "diff",
            "--cached",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            "-z",
        ];
        let patch_args: Vec<&str> = [
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            base.as_str(),
        ]
        .to_vec();
        let patch = self.run(&patch_args).await?;
        let mut numstat_args = common.to_vec();
        numstat_args.extend(["--numstat", base.as_str()]);
        let numstat = self.run(&numstat_args).await?;
        let mut status_args = common.to_vec();
        status_args.extend(["--name-status", base.as_str()]);
        let name_status = self.run(&status_args).await?;
        let mut files = parse_name_status(&name_status);
        let counts = parse_numstat(&numstat);
        for f in &mut files {
            if let Some((ins, del)) = counts.iter().find(|(p, _)| *p == f.path).map(|(_, c)| *c) {
                match (ins, del) {
                    (Some(i), Some(d)) => {
                        f.insertions = i;
                        f.deletions = d;
                    }
                    _ => f.binary = true,
                }
            }
        }
        Ok(WorkDiff {
            patch,
            files,
            left_out,
        })
    }
}

fn status_word(code: char) -> &'static str {
    match code {
        'A' => "added",
        'D' => "deleted",
        'R' => "renamed",
        'C' => "copied",
        'T' => "type-changed",
        _ => "modified",
    }
}

/// Parses `git diff --name-status -z`.
pub fn parse_name_status(raw: &str) -> Vec<FileStat> {
    let mut out = Vec::new();
    let mut parts = raw.split('\0').filter(|s| !s.is_empty());
    while let Some(code) = parts.next() {
        let c = code.chars().next().unwrap_or('M');
        let (old_path, path) = if matches!(c, 'R' | 'C') {
            let old = parts.next().unwrap_or_default().to_string();
            (Some(old), parts.next().unwrap_or_default().to_string())
        } else {
            (None, parts.next().unwrap_or_default().to_string())
        };
        out.push(FileStat {
            path,
            status: status_word(c).to_string(),
            insertions: 0,
            deletions: 0,
            binary: false,
            old_path,
        });
    }
    out
}

/// Insertions and deletions; `None` for binary files.
pub type LineCounts = (Option<u64>, Option<u64>);

/// Parses `git diff --numstat -z` into (new path, (insertions, deletions)); binary files have `None`.
pub fn parse_numstat(raw: &str) -> Vec<(String, LineCounts)> {
    let mut out = Vec::new();
    let mut parts = raw.split('\0');
    while let Some(rec) = parts.next() {
        if rec.is_empty() {
            continue;
        }
        let mut fields = rec.splitn(3, '\t');
        let ins = fields.next().and_then(|s| s.parse().ok());
        let del = fields.next().and_then(|s| s.parse().ok());
        let path = match fields.next() {
            // A rename: the path field is empty and the old and new paths follow.
            Some("") | None => {
                let _old = parts.next();
                parts.next().unwrap_or_default().to_string()
            }
            Some(p) => p.to_string(),
        };
        out.push((path, (ins, del)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repositories_skip_ignored_trees_and_inner_repositories() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in [
            ".git",
            "fixture/.git",
            "fixture/inner/.git",
            "vendor/lib/.git",
            "deps/x/.git",
            "src",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join(".gitignore"), "vendor/\n").unwrap();
        let exclude = root.join("exclude");
        std::fs::write(&exclude, "deps/\n").unwrap();
        assert_eq!(nested_repositories(root, Some(&exclude)), ["fixture"]);
        assert_eq!(nested_repositories(root, None), ["deps/x", "fixture"]);
    }

    fn fresh_repo() -> (tempfile::TempDir, HostRepo) {
        let t = tempfile::tempdir().unwrap();
        let w = t.path().join("w");
        std::fs::create_dir_all(&w).unwrap();
        std::fs::write(w.join("a.txt"), "a\n").unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(&w)
            .status()
            .unwrap()
            .success()
            && std::process::Command::new("git")
                .args(["add", "a.txt"])
                .current_dir(&w)
                .status()
                .unwrap()
                .success();
        assert!(ok);
        let repo = HostRepo {
            git_dir: w.join(".git"),
            work_tree: Some(w),
        };
        (t, repo)
    }

    fn index_mtime(repo: &HostRepo) -> std::time::SystemTime {
        std::fs::metadata(repo.git_dir.join("index"))
            .unwrap()
            .modified()
            .unwrap()
    }

    #[tokio::test]
    async fn the_index_is_refreshed_once_its_second_has_passed() {
        let (_t, repo) = fresh_repo();
        let before = index_mtime(&repo);
        // The file as fresh as the index: racily clean for any git build.
        let w = repo.work_tree.clone().unwrap();
        std::fs::File::options()
            .write(true)
            .open(w.join("a.txt"))
            .unwrap()
            .set_modified(before)
            .unwrap();
        let refresh = repo.refresh_index_soon();
        // Not settled before it had its chance: settle drops a refresh that has not started.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while index_mtime(&repo) == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        refresh.settle().await;
        let after = index_mtime(&repo);
        let secs =
            |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(secs(after) > secs(before), "{before:?} → {after:?}");
        assert!(!repo.git_dir.join("index.lock").exists());
    }

    #[tokio::test]
    async fn a_refresh_not_yet_started_is_dropped_by_settle() {
        let (_t, repo) = fresh_repo();
        let before = index_mtime(&repo);
        repo.refresh_index_soon().settle().await;
        assert_eq!(index_mtime(&repo), before);
    }

    #[test]
    fn name_status_with_rename() {
        let files = parse_name_status("M\0a.rs\0R100\0old.rs\0new.rs\0A\0n.txt\0");
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].status, "modified");
        assert_eq!(files[1].status, "renamed");
        assert_eq!(files[1].path, "new.rs");
        assert_eq!(files[1].old_path.as_deref(), Some("old.rs"));
        assert_eq!(files[2].status, "added");
    }

    #[test]
    fn numstat_with_binary_and_rename() {
        let n = parse_numstat("3\t1\ta.rs\0-\t-\timg.png\x000\t0\t\0old.rs\0new.rs\0");
        assert_eq!(n[0], ("a.rs".to_string(), (Some(3), Some(1))));
        assert_eq!(n[1], ("img.png".to_string(), (None, None)));
        assert_eq!(n[2], ("new.rs".to_string(), (Some(0), Some(0))));
    }
}
