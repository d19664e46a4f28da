//! The bubblewrap backend: one sandbox per run (a fresh one after a kill), or one per command.
//!
//! Invariants: bwrap itself starts with an empty environment (its own environment is readable as
//! `/proc/1/environ` inside) and no secret is ever in its arguments; the command line is
//! [`super::bwrap_args`]'s (all namespaces, read-only root, only the work tree and the run's
//! state directory writable, the git directory and `ro_paths` read-only, `/proc` read-only and
//! masked, no `/sys`). A seccomp program (see [`super::seccomp`]) is handed to bwrap as fd 3;
//! rlimits and a cgroup bound it; the disk watch bounds the work tree (`workspace_mb`) and the
//! run's `/tmp` and `HOME` (`tmp_mb`). For a root caller [`super::hostns`] also makes the host
//! device nodes read-only and, where it can, runs bwrap as an unprivileged host uid.

use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::bridge::{HostEnd, SpawnFds};
use super::bwrap_args::{BwrapPolicy, bwrap_args_with};
use super::hostns::{self, Extra, HostMode, HostPrep};
use super::landlock::Confinement;
use super::limits::{self, Cgroup};
use super::process::{self, ChildSetup, ExecOutput, RunSpec};
use super::proxy::{Proxy, ProxyDecision};
use super::seccomp;
use super::session::{self, Session};
use super::state::RunState;
use super::{
    ExecRequest, NetworkMode, Sandbox, SandboxError, SandboxKind, SandboxMounts, SandboxSettings,
};

pub struct BwrapSandbox {
    mounts: SandboxMounts,
    settings: SandboxSettings,
    /// With the network on: Landlock scoping around bwrap (abstract sockets, signals), when the
    /// kernel has it; otherwise Unix sockets are refused by seccomp instead.
    scope: Option<Arc<Confinement>>,
    /// The run's long-lived sandbox; started on first use, replaced after a kill.
    session: tokio::sync::Mutex<Option<Session>>,
    /// Mode allowlist: the run's proxy, reached through [`super::bridge`].
    proxy: Option<Arc<Proxy>>,
    /// The run's `/tmp`, `HOME` and caches on disk: they outlive every session.
    state: RunState,
}

impl BwrapSandbox {
    pub fn new(mounts: SandboxMounts, settings: &SandboxSettings) -> Result<Self, SandboxError> {
        let state = RunState::prepare(&mounts, settings)
            .map_err(|e| SandboxError::Spawn(format!("the sandbox's state directory: {e}")))?;
        let scope = if settings.network {
            match Confinement::scope_only() {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    tracing::info!("no Landlock scoping ({e}); Unix sockets refused instead");
                    None
                }
            }
        } else {
            None
        };
        let proxy = match &settings.allow_hosts {
            Some(hosts) if !settings.network => Some(Arc::new(Proxy::new(hosts.clone()))),
            _ => None,
        };
        Ok(BwrapSandbox {
            mounts,
            settings: settings.clone(),
            scope,
            session: tokio::sync::Mutex::new(None),
            proxy,
            state,
        })
    }

    /// What besides the work tree and git directory a root caller's bwrap needs staged.
    fn extra(&self) -> Extra<'_> {
        Extra {
            state: Some(&self.state.root),
            cache: self.state.repo_cache.as_deref(),
            ro: self
                .settings
                .ro_paths
                .iter()
                .map(|r| r.path.as_path())
                .collect(),
        }
    }

    /// The host uid step for this caller over the run's mounts.
    fn prep(&self) -> Option<HostPrep> {
        HostPrep::for_caller(&self.mounts, &self.extra())
    }

    /// The work tree bounded by `workspace_mb`, the run's `/tmp` and `HOME` by `tmp_mb`.
    fn disk_watch(&self) -> Vec<super::diskwatch::WatchSpec> {
        vec![
            (
                vec![self.mounts.work_tree.clone()],
                self.settings.limits.workspace_bytes,
                super::Termination::DiskLimit,
            ),
            (
                self.state.watched(),
                self.settings.limits.tmp_bytes,
                super::Termination::TmpLimit,
            ),
        ]
    }

    /// Mode allowlist: the bridge's host end for one bwrap about to start.
    fn bridge(&self) -> Result<Option<HostEnd>, SandboxError> {
        match &self.proxy {
            Some(_) => HostEnd::new()
                .map(Some)
                .map_err(|e| SandboxError::Spawn(format!("preparing the proxy bridge: {e}"))),
            None => Ok(None),
        }
    }

    /// After bwrap started with `end`: serves the listener it hands over until the guard drops.
    fn adopt(&self, end: Option<HostEnd>) -> Option<tokio_util::sync::DropGuard> {
        let (proxy, end) = (self.proxy.clone()?, end?);
        let stop = proxy.child_token();
        let guard = stop.clone().drop_guard();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = end.adopt(&proxy, stop) {
                tracing::warn!("the sandbox's proxy bridge did not come up: {e}");
            }
        });
        Some(guard)
    }

    fn policy(&self, prep: Option<&HostPrep>) -> BwrapPolicy {
        BwrapPolicy {
            network: self.settings.network,
            bridge: self.proxy.is_some(),
            seccomp_fd3: true,
            tmp_bytes: supports_size().then_some(self.settings.limits.tmp_bytes),
            uid_drop: prep.is_some_and(HostPrep::drops_uid),
            state: Some(self.state.clone()),
            ro_paths: self.settings.ro_paths.clone(),
        }
    }

    fn seccomp_memfd(&self) -> Result<std::os::fd::OwnedFd, SandboxError> {
        if self.proxy.is_some() {
            // A private network namespace; TCP only, so no DNS even to its own loopback.
            let prog = seccomp::program_tcp_only(
                seccomp::Policy {
                    network: true,
                    unix_sockets: true,
                }
                .tcp_only(),
            );
            return seccomp::memfd(&prog).map_err(|e| SandboxError::Spawn(e.to_string()));
        }
        let prog = seccomp::program(seccomp::Policy {
            network: self.settings.network,
            // Shared network namespace without scoping: its abstract sockets would be reachable.
            unix_sockets: !self.settings.network || self.scope.is_some(),
        });
        seccomp::memfd(&prog).map_err(|e| SandboxError::Spawn(e.to_string()))
    }

    fn start_session(&self) -> Result<Session, SandboxError> {
        let prep = self.prep();
        let args = bwrap_args_with(&self.mounts, &self.policy(prep.as_ref()), session::EXECUTOR);
        let cgroup = Cgroup::for_settings(&self.settings);
        let setup = ChildSetup {
            rlimits: limits::rlimits(&self.settings.limits, cgroup.is_some()),
            confine: self.scope.clone(),
            last_step: prep.map(HostPrep::into_step),
            ..Default::default()
        };
        let end = self.bridge()?;
        let fds = end.as_ref().map(HostEnd::fds).unwrap_or_default();
        let mut session = Session::start(args, setup, self.seccomp_memfd()?, cgroup, fds)?;
        if let Some(guard) = self.adopt(end) {
            session.hold(guard);
        }
        Ok(session)
    }

    /// The original mode: a fresh bwrap for this one command (used when `per_command` is set).
    async fn exec_fresh(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        let prep = self.prep();
        let args = bwrap_args_with(&self.mounts, &self.policy(prep.as_ref()), &request.command);
        let memfd = self.seccomp_memfd()?;
        let mut spec = RunSpec::new(&self.settings, request.timeout);
        spec.cgroup = Cgroup::for_settings(&self.settings);
        spec.disk_watch = self.disk_watch();
        let end = self.bridge()?;
        // Our own copies: `adopt` below may close the originals before the spawn.
        let copies = match &end {
            Some(e) => Some(e.copies().map_err(|e| SandboxError::Spawn(e.to_string()))?),
            None => None,
        };
        let mut fds = vec![(std::os::fd::AsRawFd::as_raw_fd(&memfd), 3)];
        fds.extend(copies.as_ref().map(SpawnFds::fds).unwrap_or_default());
        let setup = ChildSetup {
            rlimits: limits::rlimits(&self.settings.limits, spec.cgroup.is_some()),
            fds,
            die_with_parent: true,
            confine: self.scope.clone(),
            new_session: false,
            last_step: prep.map(HostPrep::into_step),
        };
        // The listener arrives once bwrap has started; it is served while the command runs.
        let guard = self.adopt(end);
        let out = process::run(bwrap_command(args), setup, spec, cancel).await;
        drop(guard);
        drop((memfd, copies));
        out
    }
}

/// Whether this bwrap knows `--size` (0.7 and later).
fn supports_size() -> bool {
    static SIZE: OnceLock<bool> = OnceLock::new();
    *SIZE.get_or_init(|| {
        std::process::Command::new("bwrap")
            .arg("--help")
            .env_clear()
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--size"))
    })
}

fn bwrap_command(args: Vec<OsString>) -> std::process::Command {
    // Resolved on the caller's PATH: with a cleared environment, exec would otherwise fall back to
    // a default search path and find a binary the user did not choose.
    let program = super::find_program("bwrap").unwrap_or_else(|| "bwrap".into());
    let mut cmd = std::process::Command::new(program);
    // bwrap keeps its own environment; it must have none of ours.
    cmd.env_clear().args(args).current_dir("/");
    cmd
}

/// Checks once per process that bwrap exists and can create the namespaces we ask for (for a
/// root caller: in the strongest way [`super::hostns`] found, plain bwrap last).
pub(super) fn probe() -> Result<(), SandboxError> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if super::find_program("bwrap").is_none() {
                return Err("bubblewrap (`bwrap`) is not installed (not found on PATH)".to_string());
            }
            match hostns::host_mode() {
                HostMode::Caller => probe_with(|_| Ok(None)),
                HostMode::Unavailable(reason) => Err(reason.clone()),
                // Probed on the way.
                HostMode::DropUid(_) | HostMode::PrivateNs | HostMode::Plain => Ok(()),
            }
        })
        .clone()
        .map_err(|reason| SandboxError::Unavailable { reason })
}

/// Runs `true` in a sandbox over scratch directories the way sessions start one, with the
/// host-side step `prep` makes for those directories.
pub(super) fn probe_with(
    prep: impl FnOnce(&SandboxMounts) -> std::io::Result<Option<HostPrep>>,
) -> Result<(), String> {
    let scratch = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    let mounts = SandboxMounts {
        work_tree: scratch.path().join("repo"),
        git_dir: scratch.path().join("git"),
    };
    std::fs::create_dir_all(mounts.work_tree.join(".git"))
        .and_then(|_| std::fs::create_dir_all(&mounts.git_dir))
        .map_err(|e| format!("no temporary directory: {e}"))?;
    let prep = prep(&mounts).map_err(|e| e.to_string())?;
    let policy = BwrapPolicy {
        seccomp_fd3: true,
        tmp_bytes: supports_size().then_some(1 << 20),
        uid_drop: prep.as_ref().is_some_and(HostPrep::drops_uid),
        ..BwrapPolicy::default()
    };
    let args = bwrap_args_with(&mounts, &policy, "true");
    let prog = seccomp::program(seccomp::Policy {
        network: false,
        unix_sockets: true,
    });
    let memfd = seccomp::memfd(&prog).map_err(|e| format!("could not prepare seccomp: {e}"))?;
    let mut cmd = bwrap_command(args);
    let setup = ChildSetup {
        fds: vec![(std::os::fd::AsRawFd::as_raw_fd(&memfd), 3)],
        last_step: prep.map(HostPrep::into_step),
        ..Default::default()
    };
    process::install_setup(&mut cmd, setup, Vec::new());
    let out = cmd.output();
    drop(cmd);
    drop(memfd);
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "bubblewrap is installed but could not create a sandbox here ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("bubblewrap (`bwrap`) is not installed".to_string())
        }
        Err(e) => Err(format!("bubblewrap could not be started: {e}")),
    }
}

#[async_trait]
impl Sandbox for BwrapSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Bwrap
    }

    fn network(&self) -> bool {
        self.settings.network
    }

    fn network_mode(&self) -> NetworkMode {
        self.settings.network_mode()
    }

    fn take_proxy_decisions(&self) -> Option<tokio::sync::mpsc::Receiver<ProxyDecision>> {
        self.proxy.as_ref().and_then(|p| p.take_decisions())
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        if request.command.contains('\0') {
            return Err(SandboxError::Spawn(
                "the command contains a NUL byte".into(),
            ));
        }
        // The executor is a bash script; without bash, a fresh sandbox per command.
        if self.settings.per_command || !Path::new("/bin/bash").exists() {
            return self.exec_fresh(request, cancel).await;
        }
        let mut spec = RunSpec::new(&self.settings, request.timeout);
        spec.disk_watch = self.disk_watch();
        let mut guard = self.session.lock().await;
        let mut session = match guard.take() {
            Some(s) => s,
            None => self.start_session()?,
        };
        let result = session.run(&request.command, &spec, cancel).await;
        match result {
            Ok(outcome) if outcome.reusable => {
                *guard = Some(session);
                Ok(outcome.output)
            }
            other => {
                // Killing the sandbox waits for it; keep that off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(session)).await;
                other.map(|o| o.output)
            }
        }
    }
}
