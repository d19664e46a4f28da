//! The live diff: while the agent works, the accumulated diff so far is recomputed after edits
//! and commands and sent as a `Live Diff` event, so a front-end shows the change as it grows.
//!
//! Invariants: it runs the diff stage's own function (`HostRepo::work_diff`: the hardened host
//! git, the pre-add scan, the same limits) and nothing from the work tree; it only reacts to an
//! edit or a command the agent reported (`Emitter::changes`), at most once per [`MIN_GAP`] and
//! never more often than four times its last duration, so a large repository is not diffed
//! continuously; it stages into its own index (a copy of the repository's, made at its first
//! diff, in the protected git directory), so the index the diff stage, the agent's self-review
//! and the post-clone refresh use is never locked or changed by it; a diff once started is
//! never dropped halfway — stopping waits for it. The final diff, the one reviewed, still comes
//! from the diff stage.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::emit::Emitter;
use crate::event::Event;
use crate::git::{DiffLimits, HostRepo};

/// The least time between two live diffs.
pub const MIN_GAP: Duration = Duration::from_millis(1500);

pub(super) struct LiveDiff {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LiveDiff {
    /// Starts watching `emitter`'s changes.
    pub(super) fn start(
        emitter: Emitter,
        repo: HostRepo,
        base: Option<String>,
        limits: DiffLimits,
    ) -> LiveDiff {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let changes = emitter.changes();
        let task = tokio::spawn(async move {
            watch(emitter, repo, base, limits, changes, token).await;
        });
        LiveDiff { stop, task }
    }

    /// Stops after the diff in progress, if any.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn watch(
    emitter: Emitter,
    repo: HostRepo,
    base: Option<String>,
    limits: DiffLimits,
    changes: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let mut gap = MIN_GAP;
    let mut last_sent: Option<u64> = None;
    let mut next_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = changes.notified() => {}
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next_at) => {}
        }
        let live = match own_index(&repo) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("live diff off: {e}");
                break;
            }
        };
        let started = tokio::time::Instant::now();
        // Not raced against `stop`: see the module's invariants.
        let diff = live.work_diff(base.as_deref(), &limits).await;
        gap = MIN_GAP.max(started.elapsed() * 4);
        next_at = tokio::time::Instant::now() + gap;
        match diff {
            Ok(d) => {
                let hash = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    d.patch.hash(&mut h);
                    h.finish()
                };
                if last_sent == Some(hash) {
                    continue;
                }
                let event = Event::live_diff(emitter.run_id(), d.files, &d.patch);
                if emitter.try_emit_transient(event).is_ok() {
                    last_sent = Some(hash);
                }
            }
            Err(e) => tracing::debug!("live diff skipped: {e}"),
        }
    }
    tracing::debug!(?gap, "live diff stopped");
}

/// `repo` staging into its live index, a copy of its own index made the first time (a fresh
/// index would make git hash every file of the work tree once).
fn own_index(repo: &HostRepo) -> std::io::Result<HostRepo> {
    let live = repo.git_dir.join(LIVE_INDEX);
    if !live.exists() {
        let own = repo.git_dir.join("index");
        if own.exists() {
            std::fs::copy(&own, &live)?;
        }
    }
    Ok(repo.with_index(live))
}

/// The live diff's index, next to the repository's own.
pub const LIVE_INDEX: &str = "tb-live-index";
