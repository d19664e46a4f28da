//! Running one child process with merged output, a wall timeout, an output cap and cancellation.
//!
//! Invariants: the child is the leader of its own process group and every fd above 2 is marked
//! close-on-exec before exec, so nothing of ours leaks in (the one exception, a backend's fd 3, is
//! placed there on purpose); the child joins its cgroup, gets its rlimits and, for the Landlock
//! backend, its confinement before exec, with async-signal-safe calls only — the seccomp listener
//! of its metadata calls comes back over a socket pair and is handed to a supervisor thread
//! right after the spawn, or the command is killed at once. On timeout,
//! cancellation, output limit or workspace limit the whole group — and the cgroup, so `setsid`
//! children too — is killed with SIGKILL and reaped before `run` returns. Output is read only
//! through [`HeadTail`], which also hands each read to the task's [`OutputTap`], if one is set
//! ([`with_tap`]): that is how a running command's output streams, whatever the backend.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::diskwatch::{WatchSpec, Watches};
use super::landlock::Confinement;
use super::limits::{self, Cgroup, Rlimit};
use super::notify::{self, Channel};
use super::{ExecRequest, Sandbox, SandboxError, SandboxKind, SandboxMounts, SandboxSettings};

/// Why a command did not end on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    Timeout,
    OutputLimit,
    Cancelled,
    /// The work tree grew beyond its limit (`sandbox.workspace_mb`).
    DiskLimit,
    /// The run's `/tmp` and `HOME` (with the package caches) grew beyond `sandbox.tmp_mb`.
    TmpLimit,
}

impl Termination {
    pub fn describe(self, timeout: Duration) -> String {
        match self {
            Termination::Timeout => {
                format!("killed after the {}s time limit", timeout.as_secs())
            }
            Termination::OutputLimit => "killed: it produced more output than the limit".into(),
            Termination::Cancelled => "killed: the run was cancelled".into(),
            Termination::DiskLimit => {
                "killed: the work tree grew beyond the workspace size limit".into()
            }
            Termination::TmpLimit => {
                "killed: /tmp and HOME grew beyond their size limit (sandbox.tmp_mb)".into()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// stdout and stderr interleaved, head and tail kept when long.
    pub output: String,
    /// The exit status; 128+N when killed by signal N.
    pub exit_code: i32,
    pub terminated: Option<Termination>,
    pub total_bytes: u64,
    pub duration: Duration,
}

/// Receives a copy of a command's output as it is read (see [`with_tap`]). It must not block:
/// it runs in the read loop.
pub type OutputTap = Arc<dyn Fn(&[u8]) + Send + Sync>;

tokio::task_local! {
    static TAP: OutputTap;
}

/// Runs `fut` — a [`Sandbox::exec`] — with `tap` seeing the command's output as it is read.
/// Every backend reads through a [`HeadTail`] made in the task that awaits `exec`, which picks
/// the tap up; a task-local rather than a request field keeps every other caller unchanged.
pub async fn with_tap<F: std::future::Future>(tap: OutputTap, fut: F) -> F::Output {
    TAP.scope(tap, fut).await
}

/// The tap of the task's running [`with_tap`], if any.
pub fn current_tap() -> Option<OutputTap> {
    TAP.try_with(Arc::clone).ok()
}

/// Keeps the first and last `keep/2` bytes of a stream, counting the rest.
pub(crate) struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half: usize,
    total: u64,
    tap: Option<OutputTap>,
}

impl HeadTail {
    pub(crate) fn new(keep: usize) -> Self {
        HeadTail {
            head: Vec::new(),
            tail: VecDeque::new(),
            half: keep.max(2) / 2,
            total: 0,
            tap: current_tap(),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        if let Some(tap) = &self.tap {
            tap(bytes);
        }
        self.total += bytes.len() as u64;
        if self.head.len() < self.half {
            let take = (self.half - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    pub(crate) fn finish(self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            out.push_str(&format!(
                "\n[… {} bytes of output cut …]\n",
                self.total - kept
            ));
        }
        let tail: Vec<u8> = self.tail.into_iter().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// What the child does to itself between fork and exec.
#[derive(Default, Clone)]
pub(crate) struct ChildSetup {
    pub rlimits: Vec<Rlimit>,
    /// Descriptors handed to the program at fixed numbers (source, target ≥ 3), e.g. bwrap's
    /// `--seccomp 3`.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Landlock + seccomp + capability drop, for the built-in backend.
    pub confine: Option<Arc<Confinement>>,
    /// Kill the child if the spawning thread goes away.
    pub die_with_parent: bool,
    /// Start a new session (no controlling terminal) instead of only a new process group; the
    /// process group id is the child's pid either way.
    pub new_session: bool,
    /// Runs last, after everything above: a step that gives up privileges (bwrap's host uid
    /// drop, `hostns`) must come after the cgroup join and limits, which need them.
    pub last_step: Option<std::sync::Arc<dyn Fn() -> std::io::Result<()> + Send + Sync>>,
}

/// How one command is run and bounded.
pub(crate) struct RunSpec {
    pub timeout: Duration,
    pub keep_bytes: usize,
    pub output_limit: u64,
    /// Sets of directories whose total size is bounded, each with its bound.
    pub disk_watch: Vec<WatchSpec>,
    /// A cgroup for the command (limits, and killing everything at the end).
    pub cgroup: Option<Cgroup>,
    /// On a forced stop, SIGTERM the leader and give it a moment before the SIGKILLs (the
    /// Landlock supervisor uses it to kill what left the process group).
    pub term_leader_first: bool,
}

impl RunSpec {
    pub(crate) fn new(settings: &SandboxSettings, timeout: Duration) -> Self {
        RunSpec {
            timeout,
            keep_bytes: settings.output_keep_bytes,
            output_limit: settings.output_limit_bytes,
            disk_watch: Vec::new(),
            cgroup: None,
            term_leader_first: false,
        }
    }
}

/// Installs the `pre_exec` hook that applies `setup` in the child.
pub(crate) fn install_setup(
    command: &mut std::process::Command,
    setup: ChildSetup,
    cgroup_fds: Vec<RawFd>,
) {
    install_setup_with(command, setup, cgroup_fds, None);
}

/// [`install_setup`], sending the seccomp listener to `notify_sock` (see `Confinement::enter`).
fn install_setup_with(
    command: &mut std::process::Command,
    setup: ChildSetup,
    cgroup_fds: Vec<RawFd>,
    notify_sock: Option<RawFd>,
) {
    // SAFETY: everything in here is a plain syscall on memory prepared before the fork; nothing
    // allocates or takes a lock.
    unsafe {
        command.pre_exec(move || {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if setup.new_session && libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if setup.die_with_parent {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            }
            limits::join_cgroups(&cgroup_fds)?;
            limits::apply_rlimits(&setup.rlimits)?;
            // Before the descriptors move: the ruleset fd may sit where one of them goes.
            if let Some(c) = &setup.confine {
                c.enter(notify_sock)?;
            }
            // Move every source out of the way first, so a source may equal another's target.
            let mut moved = [-1 as RawFd; 8];
            for (i, &(src, _)) in setup.fds.iter().take(8).enumerate() {
                moved[i] = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64);
                if moved[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, &(_, target)) in setup.fds.iter().take(8).enumerate() {
                // dup2 clears close-on-exec on the target.
                if libc::dup2(moved[i], target) != target {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(step) = &setup.last_step {
                step()?;
            }
            Ok(())
        });
    }
}

/// Spawns `command` (already fully configured with program, args, env and cwd) and collects it.
pub(crate) async fn run(
    mut command: std::process::Command,
    setup: ChildSetup,
    spec: RunSpec,
    cancel: &CancellationToken,
) -> Result<ExecOutput, SandboxError> {
    let RunSpec {
        timeout,
        keep_bytes,
        output_limit,
        disk_watch,
        cgroup,
        term_leader_first,
    } = spec;
    let cgroup_fds = cgroup.as_ref().map(Cgroup::join_fds).unwrap_or_default();
    let started = Instant::now();
    let (reader, writer) = std::io::pipe().map_err(|e| SandboxError::Spawn(e.to_string()))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| SandboxError::Spawn(e.to_string()))?;
    command.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    if !setup.new_session {
        command.process_group(0);
    }
    // The landlock backend's metadata supervisor: its listener comes back over this channel.
    let notify = match setup.confine.as_ref().and_then(|c| c.roots()) {
        Some(roots) => Some((
            Channel::new().map_err(|e| SandboxError::Spawn(format!("supervisor channel: {e}")))?,
            roots.clone(),
        )),
        None => None,
    };
    let notify_sock = notify.as_ref().map(|(ch, _)| ch.child_fd());
    install_setup_with(&mut command, setup, cgroup_fds, notify_sock);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| SandboxError::Spawn(e.to_string()))?;
    // Our copies of the write end must go, or EOF never comes.
    drop(command);
    let pgid = child.id().map(|p| p as i32);
    if let Some((channel, roots)) = notify
        && let Err(e) = channel
            .receive()
            .and_then(|listener| notify::supervise(listener, roots))
    {
        if let Some(pgid) = pgid {
            // SAFETY: plain syscall on the process group we just created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = child.wait().await;
        return Err(SandboxError::Spawn(format!(
            "the metadata supervisor could not start: {e}"
        )));
    }
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
        .map_err(|e| SandboxError::Spawn(e.to_string()))?;

    let mut buf = HeadTail::new(keep_bytes);
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut disk_watch = Watches::start(disk_watch);
    let mut terminated = None;
    let mut status = None;
    let mut eof = false;
    // After the main process exits, give stragglers holding the pipe a moment, then stop.
    let mut drain_deadline: Option<tokio::time::Instant> = None;

    loop {
        if eof && status.is_some() {
            break;
        }
        let drain_sleep = async {
            match drain_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = pipe.read(&mut chunk), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    buf.push(&chunk[..n]);
                    if buf.total > output_limit {
                        terminated = Some(Termination::OutputLimit);
                        break;
                    }
                }
            },
            st = child.wait(), if status.is_none() => {
                status = Some(st.map_err(|e| SandboxError::Spawn(e.to_string()))?);
                drain_deadline = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            },
            _ = tokio::time::sleep_until(deadline) => {
                terminated = Some(Termination::Timeout);
                break;
            },
            _ = cancel.cancelled() => {
                terminated = Some(Termination::Cancelled);
                break;
            },
            _ = disk_watch.due() => {
                if let Some(why) = disk_watch.check().await {
                    terminated = Some(why);
                    break;
                }
            },
            _ = drain_sleep => break,
        }
    }

    if term_leader_first
        && status.is_none()
        && let Some(pid) = pgid
    {
        // SAFETY: plain syscall on our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if let Ok(Ok(st)) = tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
            status = Some(st);
        }
    }
    // Whatever happened, nothing of this command's process group survives.
    if let Some(pgid) = pgid {
        // SAFETY: plain syscall; a negative pid addresses the process group we created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    if let Some(cg) = cgroup {
        // Children that left the process group (setsid, nohup &) are still in the cgroup.
        let _ = tokio::task::spawn_blocking(move || drop(cg)).await;
    }
    let status = match status {
        Some(s) => s,
        None => child
            .wait()
            .await
            .map_err(|e| SandboxError::Spawn(e.to_string()))?,
    };
    // The leader is reaped; members forked while the first kill went through may remain. A few
    // more rounds catch them (killed orphans can stay zombies, still "in" the group, until init
    // reaps them, so this does not wait for ESRCH).
    if let Some(pgid) = pgid {
        for _ in 0..5 {
            // SAFETY: as above.
            if unsafe { libc::kill(-pgid, libc::SIGKILL) } != 0 {
                break; // ESRCH: the group is empty
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let exit_code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    };
    let total_bytes = buf.total;
    let mut output = buf.finish();
    if terminated.is_none()
        && let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status)
    {
        output.push_str(&format!("\n[{}]", describe_signal(sig)));
    }
    Ok(ExecOutput {
        output,
        exit_code,
        terminated,
        total_bytes,
        duration: started.elapsed(),
    })
}

pub(crate) fn describe_signal(sig: i32) -> String {
    match sig {
        libc::SIGXFSZ => "killed by SIGXFSZ: a file reached the file size limit".into(),
        libc::SIGXCPU => "killed by SIGXCPU: the CPU time limit was reached".into(),
        libc::SIGKILL => {
            "killed by SIGKILL (the memory limit is the usual reason when nothing else was hit)"
                .into()
        }
        libc::SIGSYS => "killed by SIGSYS: a forbidden system call".into(),
        other => format!("killed by signal {other}"),
    }
}

/// `--sandbox none`: runs on the host, in the work tree, with the allow-listed environment.
/// Only reachable when asked for by name; every front-end shows a warning.
pub(crate) struct UnsandboxedRunner {
    mounts: SandboxMounts,
    settings: SandboxSettings,
}

impl UnsandboxedRunner {
    pub(crate) fn new(mounts: SandboxMounts, settings: &SandboxSettings) -> Self {
        UnsandboxedRunner {
            mounts,
            settings: settings.clone(),
        }
    }
}

#[async_trait]
impl Sandbox for UnsandboxedRunner {
    fn kind(&self) -> SandboxKind {
        SandboxKind::None
    }

    fn network(&self) -> bool {
        true
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        let mut cmd = std::process::Command::new(super::shell());
        cmd.arg("-c")
            .arg(&request.command)
            .current_dir(&self.mounts.work_tree)
            .env_clear();
        let home = std::env::temp_dir().to_string_lossy().into_owned();
        for (k, v) in super::sandbox_env(&home) {
            cmd.env(k, v);
        }
        let mut spec = RunSpec::new(&self.settings, request.timeout);
        spec.cgroup = Cgroup::for_settings(&self.settings);
        let setup = ChildSetup {
            rlimits: limits::rlimits(&self.settings.limits, spec.cgroup.is_some()),
            ..Default::default()
        };
        run(cmd, setup, spec, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_keeps_both_ends() {
        let mut h = HeadTail::new(10);
        h.push(b"0123456789abcdefghij");
        let s = h.finish();
        assert!(s.starts_with("01234"), "{s}");
        assert!(s.ends_with("fghij"), "{s}");
        assert!(s.contains("10 bytes of output cut"), "{s}");
    }

    #[test]
    fn head_tail_small_output_is_untouched() {
        let mut h = HeadTail::new(100);
        h.push(b"hello ");
        h.push(b"world");
        assert_eq!(h.finish(), "hello world");
    }

    #[test]
    fn head_tail_many_small_pushes() {
        let mut h = HeadTail::new(6);
        for b in b"abcdefghijkl" {
            h.push(&[*b]);
        }
        let s = h.finish();
        assert!(s.starts_with("abc") && s.ends_with("jkl"), "{s}");
    }

    async fn sh(script: &str, timeout_ms: u64) -> ExecOutput {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(script);
        let spec = RunSpec {
            timeout: Duration::from_millis(timeout_ms),
            keep_bytes: 1024,
            output_limit: 1 << 20,
            disk_watch: Vec::new(),
            cgroup: None,
            term_leader_first: false,
        };
        run(c, ChildSetup::default(), spec, &CancellationToken::new())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_tap_sees_the_output_as_it_is_read() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let copy = seen.clone();
        let tap: OutputTap = Arc::new(move |b| copy.lock().unwrap().extend_from_slice(b));
        let out = with_tap(tap, sh("echo one; echo two >&2", 5000)).await;
        assert_eq!(out.exit_code, 0);
        assert_eq!(String::from_utf8_lossy(&seen.lock().unwrap()), "one\ntwo\n");
        // Outside the scope, nothing is tapped.
        assert!(HeadTail::new(10).tap.is_none());
    }

    #[tokio::test]
    async fn merges_output_and_reports_exit_code() {
        let out = sh("echo out; echo err >&2; exit 3", 5000).await;
        assert_eq!(out.exit_code, 3);
        assert!(out.output.contains("out") && out.output.contains("err"));
        assert_eq!(out.terminated, None);
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let out = sh("sleep 30", 200).await;
        assert_eq!(out.terminated, Some(Termination::Timeout));
        assert!(out.duration < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_limit_stops_a_flood() {
        let out = sh("yes", 10_000).await;
        assert_eq!(out.terminated, Some(Termination::OutputLimit));
        assert!(out.output.len() < 4096);
    }

    #[tokio::test]
    async fn background_child_holding_the_pipe_does_not_hang_us() {
        let out = sh("sleep 30 & echo started", 10_000).await;
        assert_eq!(out.exit_code, 0);
        assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
    }
}
