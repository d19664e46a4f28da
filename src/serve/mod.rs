//! `serve`: the original HTTP interface — `POST /code` streaming the run's events as Server-Sent
//! Events — with auth, limits, replay and graceful shutdown.
//!
//! Invariants: a server reachable beyond loopback never runs without a bearer token (an open server
//! spends the owner's model credits and pushes with the owner's token); tokens are compared in
//! constant time; every stream ends with `Done` or `Error`; a client that disconnects cancels its
//! run (unless configured otherwise) and the run still cleans up; on shutdown no run is abandoned
//! half-done: runs get a grace period, then are cancelled and cleaned up.

mod queue;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::pipeline::Command;
pub use queue::RunQueue;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub max_concurrent: usize,
    pub max_body_bytes: usize,
    pub max_prompt_chars: usize,
    pub max_run: Duration,
    pub heartbeat: Duration,
    /// Keep a run going when its client disconnects.
    pub keep_running_on_disconnect: bool,
    /// Accept local repository paths and `scripted:` models from clients (tests, trusted setups).
    pub allow_local: bool,
    /// How long running runs may continue after a shutdown signal before they are cancelled.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_concurrent: 2,
            max_body_bytes: 64 * 1024,
            max_prompt_chars: 20_000,
            max_run: Duration::from_secs(30 * 60),
            heartbeat: Duration::from_secs(15),
            keep_running_on_disconnect: false,
            allow_local: false,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could spend your model \
         credits and push with your GitHub token. Set TB_SERVER_TOKEN, or bind to 127.0.0.1"
    )]
    OpenServer(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct AppState {
    pub config: Arc<Config>,
    pub options: ServeOptions,
    pub queue: Arc<RunQueue>,
    pub token: Option<Secret>,
    pub cwd: PathBuf,
    /// Runs in flight: how to cancel them.
    pub active: Mutex<HashMap<String, mpsc::Sender<Command>>>,
    /// Runs being published right now (one publish per run at a time).
    pub publishing: Mutex<std::collections::HashSet<String>>,
    pub shutting_down: CancellationToken,
}

/// Constant-time comparison, so response timing says nothing about how much of a token matched.
pub fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= usize::from(g ^ e);
    }
    diff == 0
}

/// Binds, prints the address, serves until SIGTERM, SIGHUP or Ctrl+C, then shuts down gracefully.
pub async fn serve(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    let token = config.server_token.clone();
    if token.is_none() && !options.addr.ip().is_loopback() {
        return Err(ServeError::OpenServer(options.addr));
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let local = listener.local_addr()?;
    let state = Arc::new(AppState {
        config: Arc::new(config),
        queue: RunQueue::new(options.max_concurrent),
        options,
        token,
        cwd: std::env::current_dir()?,
        active: Mutex::new(HashMap::new()),
        publishing: Mutex::new(Default::default()),
        shutting_down: CancellationToken::new(),
    });
    eprintln!("tiny-backspace serve: listening on http://{local}");
    tracing::info!(%local, "serve listening");
    let app = routes::router(state.clone());
    let shutdown_state = state.clone();
    // SIGTERM, SIGINT and SIGHUP (a closed terminal) all shut down gracefully.
    let stop = crate::signals::watch()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let signal = stop.stopped().await;
            eprintln!("tiny-backspace serve: {} received", signal.name());
            begin_shutdown(shutdown_state).await;
        })
        .await?;
    wait_for_runs(&state).await;
    eprintln!("tiny-backspace serve: stopped");
    Ok(())
}

/// After the last connection closed, runs may still be cleaning up (a client that left, or
/// `--keep-running-on-disconnect`): wait for them — cancelled after the grace period — so none is
/// cut off half-way; a run cut off anyway is recovered by the next start.
async fn wait_for_runs(state: &AppState) {
    let running = || state.active.lock().map(|a| a.len()).unwrap_or(0);
    let deadline =
        tokio::time::Instant::now() + state.options.shutdown_grace + Duration::from_secs(60);
    while running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stop taking runs; give running ones the grace period, then cancel what is left.
async fn begin_shutdown(state: Arc<AppState>) {
    state.shutting_down.cancel();
    let running = state.active.lock().map(|a| a.len()).unwrap_or(0);
    eprintln!(
        "tiny-backspace serve: shutting down; {running} run(s) get {}s to finish",
        state.options.shutdown_grace.as_secs()
    );
    let grace_state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(grace_state.options.shutdown_grace).await;
        let senders: Vec<_> = grace_state
            .active
            .lock()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default();
        for s in senders {
            let _ = s.send(Command::Cancel).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(tokens_match(b"secret-token", b"secret-token"));
        assert!(!tokens_match(b"secret-tokeN", b"secret-token"));
        assert!(!tokens_match(b"secret", b"secret-token"));
        assert!(!tokens_match(b"secret-token-and-more", b"secret-token"));
        assert!(!tokens_match(b"", b"x"));
    }
}
