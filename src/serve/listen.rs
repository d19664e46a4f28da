//! Accepting connections: at most `max_connections` at once, each given `header_timeout` to send a
//! request's headers (the first, and each next one on a kept-alive connection).
//!
//! Why not `axum::serve`: it has no header read timeout and no connection limit, so 400 clients
//! that connect and say nothing hold the server's file descriptors for ever and lock everyone out.
//!
//! Invariants: a connection beyond the limit waits in the kernel's backlog until a slot frees (it
//! is not dropped); the limit stays below half the open-file limit, so runs always have
//! descriptors left for their processes; on shutdown no new connection is accepted, and the ones
//! open finish their current response (event streams end with their runs) before `serve` returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// The connection limit actually used: `wanted`, but at most half the open-file limit.
pub(super) fn connection_limit(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let budget = if ok && lim.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(lim.rlim_cur / 2).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    wanted.min(budget).max(1)
}

/// Serves `app` on `listener` until `stop` completes, then waits for open connections to finish.
pub(super) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let closing = CancellationToken::new();
    // Every connection task holds a sender; `recv` returns `None` once all are gone.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // slot goes back and accepting goes on after a breath.
                    tracing::warn!("serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let closing = closing.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut shutting = false;
            loop {
                tokio::select! {
                    done = conn.as_mut() => {
                        if let Err(e) = done {
                            tracing::debug!(%peer, "serve: connection ended: {e}");
                        }
                        break;
                    }
                    _ = closing.cancelled(), if !shutting => {
                        shutting = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop((slot, open));
        });
    }
    drop(listener);
    closing.cancel();
    drop(open_tx);
    let _ = open_rx.recv().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_descriptors_for_runs() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let n = connection_limit(usize::MAX);
        if lim.rlim_cur != libc::RLIM_INFINITY {
            assert_eq!(n as u64, lim.rlim_cur / 2);
        }
        assert_eq!(connection_limit(3), 3.min(n));
        assert_eq!(connection_limit(0), 1);
    }
}
