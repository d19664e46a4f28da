//! SIGINT, SIGTERM and SIGHUP as one request to stop, for every front-end that runs a pipeline
//! (`run`, `demo`, `publish`, the TUI, `serve`).
//!
//! Why: a service manager, `timeout` or a closing terminal sends SIGTERM or SIGHUP, not SIGINT;
//! left at their default they end the process at once, and its run's sandbox, workspace and
//! status stay behind. (SIGKILL runs no handler at all: the next start recovers, see `recovery`.)
//!
//! Invariants: [`watch`] installs the three handlers before it returns, so from then on none of
//! them ends the process by default — the caller must act on [`Stop::stopped`]. The first signal
//! is the one reported; later ones change nothing (the stop is already under way).

use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::pipeline::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// What a pipeline is told: Ctrl+C is a plain cancel (as it always was); the others say which
    /// signal stopped the run, which ends up in its error and meta.json.
    pub fn command(self) -> Command {
        match self {
            StopSignal::Interrupt => Command::Cancel,
            other => Command::Stop(format!("{} received", other.name())),
        }
    }
}

/// A handle on the stop request; clones share it.
#[derive(Clone)]
pub struct Stop {
    token: CancellationToken,
    signal: Arc<OnceLock<StopSignal>>,
}

impl Stop {
    /// Resolves with the first signal received.
    pub async fn stopped(&self) -> StopSignal {
        self.token.cancelled().await;
        self.signal.get().copied().unwrap_or(StopSignal::Terminate)
    }

    /// The first signal received so far, if any.
    pub fn signal(&self) -> Option<StopSignal> {
        self.signal.get().copied()
    }

    /// Cancelled at the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP and returns the stop request they feed.
/// Needs a tokio runtime.
pub fn watch() -> std::io::Result<Stop> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let stop = Stop {
        token: CancellationToken::new(),
        signal: Arc::new(OnceLock::new()),
    };
    let on_signal = stop.clone();
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                _ = int.recv() => StopSignal::Interrupt,
                _ = term.recv() => StopSignal::Terminate,
                _ = hup.recv() => StopSignal::Hangup,
            };
            tracing::info!(signal = got.name(), "stop requested by a signal");
            let _ = on_signal.signal.set(got);
            on_signal.token.cancel();
        }
    });
    Ok(stop)
}

/// Sends the pipeline behind `commands` the stop command at the first signal.
pub fn stop_pipeline(stop: &Stop, commands: tokio::sync::mpsc::Sender<Command>) {
    let stop = stop.clone();
    tokio::spawn(async move {
        let signal = stop.stopped().await;
        let _ = commands.send(signal.command()).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sighup_and_sigterm_stop_with_their_name_and_the_first_one_wins() {
        let stop = watch().unwrap();
        assert_eq!(stop.signal(), None);
        // SAFETY: raising a signal whose handler was just installed.
        unsafe {
            libc::raise(libc::SIGHUP);
        }
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), stop.stopped())
            .await
            .unwrap();
        assert_eq!(got, StopSignal::Hangup);
        assert_eq!(got.command(), Command::Stop("SIGHUP received".into()));
        assert_eq!(StopSignal::Interrupt.command(), Command::Cancel);
    }
}
