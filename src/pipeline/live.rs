//! The live diff: while the agent works, the accumulated diff so far is recomputed after edits
//! and commands and sent as a `Live Diff` event, so a front-end shows the change as it grows.
//!
//! Invariants: it runs the diff stage's own function (`HostRepo::work_diff`: the hardened host
//! git, the pre-add scan, the same limits) and nothing from the work tree; it only reacts to an
//! edit or a command the agent reported (`Emitter::changes`), at most once per [`MIN_GAP`] and
//! never more often than four times its last duration, so a large repository is not diffed
//! continuously; a diff once started is never dropped halfway (an interrupted `git add` would
//! leave the index locked for the real diff) — stopping waits for it; the index refresh started
//! after the clone is settled before the first live diff touches the index. The final diff, the
//! one reviewed, still comes from the diff stage.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::emit::Emitter;
use crate::event::Event;
use crate::git::{DiffLimits, HostRepo, IndexRefresh};

/// The least time between two live diffs.
pub const MIN_GAP: Duration = Duration::from_millis(1500);

pub(super) struct LiveDiff {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LiveDiff {
    /// Starts watching `emitter`'s changes; `refresh` is settled before the first diff.
    pub(super) fn start(
        emitter: Emitter,
        repo: HostRepo,
        base: Option<String>,
        limits: DiffLimits,
        refresh: Option<IndexRefresh>,
    ) -> LiveDiff {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let changes = emitter.changes();
        let task = tokio::spawn(async move {
            watch(emitter, repo, base, limits, refresh, changes, token).await;
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
    mut refresh: Option<IndexRefresh>,
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
        if let Some(r) = refresh.take() {
            r.settle().await;
        }
        let started = tokio::time::Instant::now();
        // Not raced against `stop`: see the module's invariants.
        let diff = repo.work_diff(base.as_deref(), &limits).await;
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
    if let Some(r) = refresh {
        r.settle().await;
    }
    tracing::debug!(?gap, "live diff stopped");
}
