//! `serve`: the original HTTP interface — `POST /code` streaming the run's events as Server-Sent
//! Events — with auth, limits, replay and graceful shutdown.
//!
//! Invariants: the server never runs without a bearer token (an open server spends the owner's
//! model credits and pushes with the owner's token, and a loopback one is open to every local
//! process, the sandbox and, through the browser, every web page): the configured one, else one
//! generated into `$TB_HOME/server-token`; tokens are compared in constant time; every request
//! passes [`guard`] (Host, Origin, token, JSON, body limits); connections are capped and must send
//! their headers in time ([`listen`]); every stream ends with `Done` or `Error`; a client that
//! disconnects cancels its run (unless configured otherwise) and the run still cleans up; on
//! shutdown no run is abandoned half-done: runs get a grace period, then are cancelled and
//! cleaned up.

mod guard;
#[cfg(test)]
mod limits_tests;
mod listen;
mod queue;
mod replay;
mod routes;
mod token;
mod validate;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::Command;
use crate::secret::Secret;
pub use queue::RunQueue;
pub use token::TokenError;

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
    /// Open connections at most (also capped at half the open-file limit); more wait to be accepted.
    pub max_connections: usize,
    /// How long a client has to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client has to send a request's body, once its headers are in.
    pub body_timeout: Duration,
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
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Token(#[from] TokenError),
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
    pub token: Secret,
    /// The names requests may address this server by (`Host`, `Origin`).
    pub authorities: guard::Authorities,
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

/// Binds, prints the address and where the token is, serves until SIGTERM, SIGHUP or Ctrl+C, then
/// shuts down gracefully.
pub async fn serve(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    // SIGTERM, SIGINT and SIGHUP (a closed terminal) all shut down gracefully.
    let signals = crate::signals::watch()?;
    let bound = bind(config, options).await?;
    run(bound, async move {
        let signal = signals.stopped().await;
        eprintln!("tiny-backspace serve: {} received", signal.name());
    })
    .await;
    eprintln!("tiny-backspace serve: stopped");
    Ok(())
}

/// A bound, not yet serving server.
pub(crate) struct Bound {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

/// Finds the token (making one if needed), binds and says where (never the token itself).
pub(crate) async fn bind(config: Config, options: ServeOptions) -> Result<Bound, ServeError> {
    let (token, source) = token::resolve(&config)?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let local = listener.local_addr()?;
    let authorities = guard::Authorities::new(local, config.server_hosts.clone());
    eprintln!("tiny-backspace serve: listening on http://{local}");
    let whence = match &source {
        token::TokenSource::Configured => {
            "the configured server token (TB_SERVER_TOKEN or server.token)".into()
        }
        token::TokenSource::File { path, created } => format!(
            "the token in {} ({})",
            path.display(),
            if *created { "new" } else { "kept from before" }
        ),
    };
    eprintln!("tiny-backspace serve: clients send `Authorization: Bearer <token>` with {whence}");
    tracing::info!(%local, "serve listening");
    let state = Arc::new(AppState {
        config: Arc::new(config),
        queue: RunQueue::new(options.max_concurrent),
        options,
        token,
        authorities,
        cwd: std::env::current_dir()?,
        active: Mutex::new(HashMap::new()),
        publishing: Mutex::new(Default::default()),
        shutting_down: CancellationToken::new(),
    });
    Ok(Bound { listener, state })
}

impl Bound {
    #[cfg(test)]
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Serves until `stop` completes, then shuts down gracefully.
pub(crate) async fn run(bound: Bound, stop: impl Future<Output = ()>) {
    let Bound { listener, state } = bound;
    let app = routes::router(state.clone());
    let limit = listen::connection_limit(state.options.max_connections);
    if limit < state.options.max_connections {
        tracing::info!(limit, "serve: connections capped by the open-file limit");
    }
    let shutdown_state = state.clone();
    listen::serve_connections(
        listener,
        app,
        limit,
        state.options.header_timeout,
        async move {
            stop.await;
            begin_shutdown(shutdown_state).await;
        },
    )
    .await;
    wait_for_runs(&state).await;
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
