//! A `git update-index --refresh` in the background, started once the clock has passed the
//! second the index was written in.
//!
//! Why: git (built without nanosecond timestamps, as Debian's is) re-reads every file whose mtime
//! falls in the index's own second ("racily clean"); after a fresh clone that is every file, about
//! 10 ms per 1,000 files on the first diff. Refreshing while the model thinks moves that off the
//! way to the review. Invariants: once git has started it runs to the end (a killed git would
//! leave `index.lock` behind), so [`IndexRefresh::settle`] waits for it; submodules are not
//! looked at (`--ignore-submodules`), so a `.git` the agent planted at a submodule's path is
//! never followed.

use super::HostRepo;

/// The refresh, started; see the module docs.
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
            if let Err(e) = repo
                .run(&["update-index", "-q", "--ignore-submodules", "--refresh"])
                .await
            {
                tracing::debug!("index refresh: {e}");
            }
        });
        IndexRefresh { cancel, task }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh_repo() -> (tempfile::TempDir, HostRepo) {
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
        let repo = HostRepo::open(w.join(".git"), Some(w)).await.unwrap();
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
        let (_t, repo) = fresh_repo().await;
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
        let (_t, repo) = fresh_repo().await;
        let before = index_mtime(&repo);
        repo.refresh_index_soon().settle().await;
        assert_eq!(index_mtime(&repo), before);
    }
}
