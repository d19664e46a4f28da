//! The workspace size limit, checked while a command runs.
//!
//! Why its own type: measuring means walking the whole work tree (tens of milliseconds for 10,000
//! files, ten times that for a large monorepo), and doing that before every command made each
//! `bash` call that much slower.
//!
//! Invariants: the size before the command (the baseline) is measured on a blocking thread while
//! the command already runs, so a command that ends before the first check never waits for a walk;
//! a command is stopped only when the tree is over the limit *and* has grown since the baseline
//! (one that starts over the limit may still run, so the agent can clean up); checks are spaced so
//! that walking takes at most a tenth of the time (every 500 ms for small trees, less often for
//! large ones); a baseline walk still going when the command ends is abandoned.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::Termination;

/// The shortest gap between two checks.
const MIN_GAP: Duration = Duration::from_millis(500);
/// A check may take at most 1/`COST_SHARE` of the time between checks.
const COST_SHARE: u32 = 10;

/// Bytes used by regular files below `dirs` (not following symlinks); stops counting past
/// `stop_at`, or (returning what it has) once `give_up` is set.
fn disk_usage(dirs: &[PathBuf], stop_at: u64, give_up: &AtomicBool) -> u64 {
    let mut total = 0u64;
    for d in dirs {
        let mut stack = vec![d.clone()];
        while let Some(dir) = stack.pop() {
            if give_up.load(Ordering::Relaxed) {
                return total;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(meta) = e.path().symlink_metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    total += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
                    if total > stop_at {
                        return total;
                    }
                }
            }
        }
    }
    total
}

/// Watches the work tree of one running command.
pub(crate) struct DiskWatch {
    dirs: Vec<PathBuf>,
    cap: u64,
    baseline: Baseline,
    next_check: Instant,
    /// Set when the watch is dropped: a baseline walk still going stops.
    abandoned: Arc<AtomicBool>,
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

enum Baseline {
    Measuring(JoinHandle<u64>),
    Known(u64),
}

impl DiskWatch {
    /// Starts measuring the baseline; call as the command starts.
    pub(crate) fn start(dirs: Vec<PathBuf>, cap: u64) -> DiskWatch {
        let walk_dirs = dirs.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let give_up = abandoned.clone();
        let handle =
            tokio::task::spawn_blocking(move || disk_usage(&walk_dirs, u64::MAX, &give_up));
        DiskWatch {
            dirs,
            cap,
            baseline: Baseline::Measuring(handle),
            next_check: Instant::now() + MIN_GAP,
            abandoned,
        }
    }

    /// Measures; true when the command must be stopped (over the limit and grown).
    pub(crate) async fn over_limit(&mut self) -> bool {
        let baseline = match &mut self.baseline {
            Baseline::Known(b) => *b,
            // A walk that panicked counts as an empty tree: the limit still holds.
            Baseline::Measuring(handle) => handle.await.unwrap_or(0),
        };
        let dirs = self.dirs.clone();
        let stop_at = baseline.max(self.cap).saturating_add(1 << 20);
        let started = std::time::Instant::now();
        let used = tokio::task::spawn_blocking(move || {
            disk_usage(&dirs, stop_at, &AtomicBool::new(false))
        })
        .await
        .unwrap_or(u64::MAX);
        let cost = started.elapsed();
        self.next_check = Instant::now() + MIN_GAP.max(cost * COST_SHARE);
        if used > self.cap && used > baseline {
            return true;
        }
        self.baseline = Baseline::Known(used);
        false
    }
}

/// Several watched sets of directories, each with its own limit and what stopping for it means
/// (the work tree: [`Termination::DiskLimit`]; the run's `/tmp` and `HOME`:
/// [`Termination::TmpLimit`]).
pub(crate) struct Watches {
    list: Vec<(DiskWatch, Termination)>,
}

/// One watched set: its directories, its limit, and the reason a stop for it gets.
pub(crate) type WatchSpec = (Vec<PathBuf>, u64, Termination);

impl Watches {
    pub(crate) fn start(specs: Vec<WatchSpec>) -> Watches {
        Watches {
            list: specs
                .into_iter()
                .map(|(dirs, cap, why)| (DiskWatch::start(dirs, cap), why))
                .collect(),
        }
    }

    /// Resolves when a check is due; never without a watch.
    pub(crate) async fn due(&self) {
        match self.list.iter().map(|(w, _)| w.next_check).min() {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Checks the sets that are due; why the command must stop, if it must.
    pub(crate) async fn check(&mut self) -> Option<Termination> {
        let now = Instant::now();
        for (watch, why) in &mut self.list {
            if watch.next_check <= now && watch.over_limit().await {
                return Some(*why);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(bytes: usize) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), vec![1u8; bytes]).unwrap();
        t
    }

    #[tokio::test]
    async fn growth_past_the_limit_is_caught() {
        let t = tree_with(4096);
        let mut w = DiskWatch::start(vec![t.path().to_path_buf()], 64 << 10);
        assert!(!w.over_limit().await);
        std::fs::write(t.path().join("g"), vec![1u8; 256 << 10]).unwrap();
        assert!(w.over_limit().await);
    }

    #[tokio::test]
    async fn a_tree_already_over_the_limit_may_shrink_or_stay() {
        let t = tree_with(256 << 10);
        let mut w = DiskWatch::start(vec![t.path().to_path_buf()], 64 << 10);
        assert!(!w.over_limit().await, "unchanged");
        std::fs::write(t.path().join("f"), vec![1u8; 128 << 10]).unwrap();
        assert!(!w.over_limit().await, "shrunk");
        std::fs::write(t.path().join("g"), vec![1u8; 128 << 10]).unwrap();
        assert!(w.over_limit().await, "grew again while over");
    }
}
