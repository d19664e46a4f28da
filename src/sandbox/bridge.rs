//! How a bwrap sandbox in the `allowlist` mode reaches the host's proxy without any route out.
//!
//! Why: the sandbox keeps its private network namespace (loopback only), and tools expect an
//! `http://127.0.0.1:PORT` proxy. The host cannot create a socket in that namespace without
//! privileges, so the sandbox's first process does it: bwrap starts this very binary (passed as an
//! open descriptor, run as `/proc/self/fd/5`) with the hidden argument [`BRIDGE_ARG`]; it binds
//! `127.0.0.1:`[`BRIDGE_PORT`] inside, hands the listening socket to the host over a socket pair
//! (fd 6, `SCM_RIGHTS`), closes its copies, and execs the executor. From then on the host accepts
//! on that socket itself: nothing runs inside for the bridge, so nothing there can stop or
//! replace it, and the listener lives as long as the host holds it.
//!
//! Invariants: the bridge closes fds 5 and 6 before the exec, so no command holds the binary, the
//! channel or the listener; it does nothing else.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// The hidden first argument that makes the binary the bridge.
pub const BRIDGE_ARG: &str = "__tb-net-bridge";
/// The proxy's port on the sandbox's private loopback.
pub const BRIDGE_PORT: u16 = 3128;
/// Where bwrap finds the binary and the channel.
pub(crate) const BINARY_FD: RawFd = 5;
pub(crate) const CHANNEL_FD: RawFd = 6;

/// The bridge's entry point: `args` are what follows [`BRIDGE_ARG`]: the program and its
/// arguments to exec. Returns only on failure (an exit code).
pub fn bridge_main(args: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    let Some((program, rest)) = args.split_first() else {
        eprintln!("tiny-backspace bridge: nothing to run");
        return 2;
    };
    let listener = match std::net::TcpListener::bind(("127.0.0.1", BRIDGE_PORT)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tiny-backspace bridge: cannot listen on 127.0.0.1:{BRIDGE_PORT}: {e}");
            return 1;
        }
    };
    // SAFETY: CHANNEL_FD was put there by the host; the listener is open.
    let sent = unsafe { super::notify::send_fd(CHANNEL_FD, listener.as_raw_fd()) };
    drop(listener);
    // SAFETY: closing descriptors the host handed us, which nothing else here uses.
    unsafe {
        libc::close(CHANNEL_FD);
        libc::close(BINARY_FD);
    }
    if let Err(e) = sent {
        eprintln!("tiny-backspace bridge: cannot hand the listener to the host: {e}");
        return 1;
    }
    let e = std::process::Command::new(program).args(rest).exec();
    eprintln!("tiny-backspace bridge: cannot run {program:?}: {e}");
    127
}

/// Which binary bwrap runs as the bridge: this one, unless [`set_bridge_program`] named another.
pub(crate) fn bridge_program() -> std::io::Result<std::path::PathBuf> {
    match PROGRAM.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

static PROGRAM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// For callers that are not the tiny-backspace binary (integration tests): the binary that knows
/// [`BRIDGE_ARG`]. First call wins.
pub fn set_bridge_program(path: std::path::PathBuf) {
    let _ = PROGRAM.set(path);
}

/// The host side of one bridge: the channel and what to do with the listener once it arrives.
pub(crate) struct HostEnd {
    pub(crate) channel: super::notify::Channel,
    pub(crate) binary: std::fs::File,
}

impl HostEnd {
    pub(crate) fn new() -> std::io::Result<HostEnd> {
        Ok(HostEnd {
            channel: super::notify::Channel::new()?,
            binary: std::fs::File::open(bridge_program()?)?,
        })
    }

    /// The descriptors bwrap must have: (source, target).
    pub(crate) fn fds(&self) -> Vec<(RawFd, RawFd)> {
        vec![
            (self.binary.as_raw_fd(), BINARY_FD),
            (self.channel.child_fd(), CHANNEL_FD),
        ]
    }

    /// Copies of the descriptors bwrap must have, owned by the caller until its spawn is done
    /// (for a spawn that starts after [`HostEnd::adopt`] may have closed the originals).
    pub(crate) fn copies(&self) -> std::io::Result<SpawnFds> {
        Ok(SpawnFds {
            binary: self.binary.try_clone()?,
            channel: self.channel.child_copy()?,
        })
    }

    /// After the spawn: waits (off the async threads) for the listener and serves it with `proxy`
    /// until `stop`.
    pub(crate) fn adopt(
        self,
        proxy: &super::proxy::Proxy,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        // The binary's descriptor stays open until the listener arrives: by then bwrap has been
        // spawned (per-command mode calls this before the spawn, and a closed number could be
        // reused by another open file before the child copies it).
        let listener = receive_within(self.channel, Duration::from_secs(30));
        drop(self.binary);
        proxy.serve(listener?, stop)
    }
}

/// See [`HostEnd::copies`].
pub(crate) struct SpawnFds {
    binary: std::fs::File,
    channel: std::os::fd::OwnedFd,
}

impl SpawnFds {
    pub(crate) fn fds(&self) -> Vec<(RawFd, RawFd)> {
        vec![
            (self.binary.as_raw_fd(), BINARY_FD),
            (self.channel.as_raw_fd(), CHANNEL_FD),
        ]
    }
}

fn receive_within(
    channel: super::notify::Channel,
    wait: Duration,
) -> std::io::Result<std::net::TcpListener> {
    let mut pfd = libc::pollfd {
        fd: channel.parent_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one pollfd on the stack for an fd we own.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r <= 0 {
        return Err(std::io::Error::other(
            "the sandbox did not hand over the proxy listener",
        ));
    }
    let fd = channel.receive()?;
    Ok(std::net::TcpListener::from(fd))
}
