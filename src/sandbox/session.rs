//! One long-lived bwrap sandbox per run, with a small executor inside that runs each command.
//!
//! Why: a fresh bwrap per command costs tens of milliseconds (namespaces, mounts); running each
//! command from an executor already inside costs about as much as a bare spawn.
//!
//! Invariants:
//! - The executor (a short bash loop, [`EXECUTOR`]) reads one NUL-terminated command at a time,
//!   runs it with stdin from `/dev/null` and without the status descriptor, waits for it, then
//!   SIGKILLs every other process in the sandbox's pid namespace (`kill -9 -1`: all but itself and
//!   bwrap's pid 1) until none is left, and only then writes the exit status. So when the host reads
//!   a status, the command and anything it left behind (`setsid`, `nohup … &`) are dead and all
//!   their output is already in the pipe.
//! - The host trusts none of that for containment: on timeout, cancellation, output or workspace
//!   limit, an executor that dies or answers garbage, or (with a cgroup) processes left after a
//!   status, the whole sandbox is killed — process group, cgroup, and with bwrap's pid 1 the pid
//!   namespace — and the next command starts a fresh one. Dropping the session does the same, so
//!   nothing survives the run.
//! - bwrap is spawned from one long-lived thread, because `--die-with-parent` follows the spawning
//!   thread, not the process.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::SandboxError;
use super::diskwatch::Watches;
use super::limits::Cgroup;
use super::process::{self, ChildSetup, ExecOutput, HeadTail, Termination};

/// The executor, run as `bash -c EXECUTOR` inside bwrap. fd 0: requests; 1 and 2: output; 4: status.
pub const EXECUTOR: &str = r#"exec 3<&-
while IFS= read -r -d '' cmd; do
  ( exec 4>&- 0</dev/null; exec /bin/bash -c "$cmd" ) &
  wait "$!"; rc=$?
  for ((i = 0; i < 1000; i++)); do
    kill -9 -1 2>/dev/null || break
    wait 2>/dev/null
    p=(/proc/[0-9]*); [ "${#p[@]}" -le 2 ] && break
  done
  printf '%s\n' "$rc" >&4
done
"#;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the process-wide spawner thread and waits for it.
fn on_spawner_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SandboxError> {
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let _ = std::thread::Builder::new()
            .name("tb-sandbox-spawner".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        std::sync::Mutex::new(tx)
    });
    let (done_tx, done_rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = done_tx.send(job());
    });
    tx.lock()
        .map_err(|_| SandboxError::Spawn("spawner thread poisoned".into()))?
        .send(job)
        .map_err(|_| SandboxError::Spawn("spawner thread gone".into()))?;
    done_rx
        .recv()
        .map_err(|_| SandboxError::Spawn("spawner thread gone".into()))
}

fn spawn_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spawn(e.to_string())
}

/// A running sandbox with its executor.
pub(crate) struct Session {
    child: Option<std::process::Child>,
    pgid: i32,
    requests: tokio::net::unix::pipe::Sender,
    output: tokio::net::unix::pipe::Receiver,
    status: tokio::net::unix::pipe::Receiver,
    cgroup: Option<Cgroup>,
    /// Stops what serves this session from the host (the allowlist proxy's listener).
    _host_side: Option<tokio_util::sync::DropGuard>,
}

/// Processes in the session's cgroup while no command runs.
const IDLE_PROCS: usize = 3;

/// What one command did, and whether the session can run another.
pub(crate) struct Outcome {
    pub output: ExecOutput,
    pub reusable: bool,
}

impl Session {
    /// Starts bwrap (`args` end with `bash -c EXECUTOR`) with `setup` and `cgroup`.
    pub(crate) fn start(
        args: Vec<OsString>,
        mut setup: ChildSetup,
        seccomp_memfd: OwnedFd,
        cgroup: Option<Cgroup>,
        extra_fds: Vec<(std::os::fd::RawFd, std::os::fd::RawFd)>,
    ) -> Result<Session, SandboxError> {
        let (req_r, req_w) = std::io::pipe().map_err(spawn_err)?;
        let (out_r, out_w) = std::io::pipe().map_err(spawn_err)?;
        let (st_r, st_w) = std::io::pipe().map_err(spawn_err)?;
        let out_w2 = out_w.try_clone().map_err(spawn_err)?;
        // Resolved on our PATH, as for the per-command mode (the environment is cleared below).
        let program = super::find_program("bwrap").unwrap_or_else(|| "bwrap".into());
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear()
            .args(args)
            .current_dir("/")
            .stdin(Stdio::from(OwnedFd::from(req_r)))
            .stdout(Stdio::from(OwnedFd::from(out_w)))
            .stderr(Stdio::from(OwnedFd::from(out_w2)));
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let st_w: OwnedFd = st_w.into();
        setup.fds = vec![(seccomp_memfd.as_raw_fd(), 3), (st_w.as_raw_fd(), 4)];
        setup.fds.extend(extra_fds);
        setup.die_with_parent = true;
        let cgroup_fds = cgroup.as_ref().map(Cgroup::join_fds).unwrap_or_default();
        process::install_setup(&mut cmd, setup, cgroup_fds);
        let child = on_spawner_thread(move || {
            let r = cmd.spawn();
            // The parent's copies of the child's ends must close, or EOFs never come.
            drop(cmd);
            drop(st_w);
            drop(seccomp_memfd);
            r
        })?
        .map_err(spawn_err)?;
        let pgid = child.id() as i32;
        let requests =
            tokio::net::unix::pipe::Sender::from_owned_fd(req_w.into()).map_err(spawn_err)?;
        let output =
            tokio::net::unix::pipe::Receiver::from_owned_fd(out_r.into()).map_err(spawn_err)?;
        let status =
            tokio::net::unix::pipe::Receiver::from_owned_fd(st_r.into()).map_err(spawn_err)?;
        Ok(Session {
            child: Some(child),
            pgid,
            requests,
            output,
            status,
            cgroup,
            _host_side: None,
        })
    }

    /// Keeps `guard` until the session ends.
    pub(crate) fn hold(&mut self, guard: tokio_util::sync::DropGuard) {
        self._host_side = Some(guard);
    }

    fn procs_in_cgroup(&self) -> Option<usize> {
        self.cgroup.as_ref().and_then(Cgroup::count)
    }

    /// Runs one command. When `reusable` is false the session must be dropped.
    pub(crate) async fn run(
        &mut self,
        command: &str,
        spec: &process::RunSpec,
        cancel: &CancellationToken,
    ) -> Result<Outcome, SandboxError> {
        let started = Instant::now();
        let mut frame = command.as_bytes().to_vec();
        frame.push(0);
        let mut buf = HeadTail::new(spec.keep_bytes);
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + spec.timeout;
        let mut disk_watch = Watches::start(spec.disk_watch.clone());
        let mut terminated = None;
        let mut status_line = Vec::new();
        let mut sbuf = [0u8; 64];
        let mut exit_code = None;
        let mut written = false;

        let mut write = Box::pin(self.requests.write_all(&frame));
        loop {
            tokio::select! {
                w = &mut write, if !written => {
                    w.map_err(|e| SandboxError::Spawn(format!("the sandbox executor is gone: {e}")))?;
                    written = true;
                }
                read = self.output.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => break, // the sandbox died
                    Ok(n) => {
                        buf.push(&chunk[..n]);
                        if buf.total() > spec.output_limit {
                            terminated = Some(Termination::OutputLimit);
                            break;
                        }
                    }
                },
                st = self.status.read(&mut sbuf) => match st {
                    Ok(n) if n > 0 => {
                        status_line.extend_from_slice(&sbuf[..n]);
                        if status_line.ends_with(b"\n") {
                            exit_code = String::from_utf8_lossy(&status_line).trim().parse::<i32>().ok();
                            break;
                        }
                    }
                    _ => break, // the executor is gone
                },
                _ = tokio::time::sleep_until(deadline) => {
                    terminated = Some(Termination::Timeout);
                    break;
                }
                _ = cancel.cancelled() => {
                    terminated = Some(Termination::Cancelled);
                    break;
                }
                _ = disk_watch.due() => {
                    if let Some(why) = disk_watch.check().await {
                        terminated = Some(why);
                        break;
                    }
                }
            }
        }
        drop(write);
        let mut reusable = terminated.is_none() && exit_code.is_some();
        if reusable {
            // Everything the command wrote is in the pipe by now; take what is left.
            loop {
                match self.output.try_read(&mut chunk) {
                    Ok(n) if n > 0 => buf.push(&chunk[..n]),
                    _ => break,
                }
            }
            // With a cgroup, check that the executor really left nothing behind: an idle sandbox
            // is bwrap outside, bwrap's pid 1 and the executor. (A bwrap that needs more restarts
            // after every command: slower, never unsafe.)
            if let Some(n) = self.procs_in_cgroup()
                && n > IDLE_PROCS
            {
                tracing::warn!(n, "processes left in the sandbox; restarting it");
                reusable = false;
            }
        }
        let total_bytes = buf.total();
        let mut output = buf.finish();
        let exit_code = match (terminated, exit_code) {
            (None, Some(c)) => {
                if c > 128
                    && matches!(
                        c - 128,
                        libc::SIGXFSZ | libc::SIGXCPU | libc::SIGKILL | libc::SIGSYS
                    )
                {
                    output.push_str(&format!("\n[{}]", process::describe_signal(c - 128)));
                }
                c
            }
            (Some(_), _) => 128 + libc::SIGKILL,
            (None, None) => {
                output.push_str("\n[the sandbox ended unexpectedly]");
                128 + libc::SIGKILL
            }
        };
        Ok(Outcome {
            output: ExecOutput {
                total_bytes,
                output,
                exit_code,
                terminated,
                duration: started.elapsed(),
            },
            reusable,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: plain syscall on the process group we created.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        if let Some(cg) = self.cgroup.take() {
            drop(cg); // kills whatever is left in it
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}
