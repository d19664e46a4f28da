//! Where every command the agent asks for runs.
//!
//! Invariants: the agent's `bash` tool reaches the host only through a [`Sandbox`]; a sandbox gets
//! an environment built from an allow-list (never the caller's, so no token can leak in); every
//! command has a wall timeout and an output cap, and when it ends — normally, by timeout or by
//! cancellation — no process it started is left running. `none` exists only when asked for by name.
//!
//! Backends, strongest first: `bwrap` (namespaces, read-only root, seccomp, rlimits, cgroup) and
//! `landlock` (built in: Landlock + seccomp + no capabilities + rlimits + cgroup, for machines where
//! bwrap cannot create namespaces). Without an explicit choice the first that passes its probe is
//! used; when none does, [`open`] says why for each and what to do. See docs/sandbox.md.

pub mod allow;
mod bridge;
mod bwrap;
mod bwrap_args;
mod caps;
mod diskwatch;
pub mod e2b;
mod hostns;
pub mod landlock;
mod landlock_net;
mod leftovers;
mod limits;
mod metadata;
mod netguard;
mod notify;
mod process;
pub mod proxy;
pub mod ro_paths;
pub mod seccomp;
mod session;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use allow::{AllowHost, AllowHostError, NetworkMode};
pub use bridge::{BRIDGE_ARG, bridge_main, set_bridge_program};
pub use bwrap::BwrapSandbox;
pub use bwrap_args::{BwrapPolicy, SANDBOX_WORKDIR, bwrap_args, bwrap_args_with};
pub use landlock::LandlockSandbox;
pub(crate) use leftovers::{cgroup_owners, kill_cgroups_of};
pub(crate) use limits::cgroup_parents;
pub use limits::{Enforcement, Limits, enforcement};
pub use process::{ExecOutput, OutputTap, Termination, current_tap, with_tap};
pub use state::{RoPath, RunState, state_dir};

/// Which isolation a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    Bwrap,
    Landlock,
    None,
    /// A remote E2B sandbox ([`e2b::RemoteSandbox`]); not yet opened by [`open`] (issue 16).
    E2b,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Bwrap => "bwrap",
            SandboxKind::Landlock => "landlock",
            SandboxKind::None => "none",
            SandboxKind::E2b => "e2b",
        }
    }

    pub fn parse(s: &str) -> Result<Self, SandboxError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bwrap" | "bubblewrap" => Ok(SandboxKind::Bwrap),
            "landlock" => Ok(SandboxKind::Landlock),
            "none" => Ok(SandboxKind::None),
            "e2b" => Ok(SandboxKind::E2b),
            other => Err(SandboxError::Unknown(other.to_string())),
        }
    }
}

/// Limits and switches for one run's sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxSettings {
    /// `None` = pick the strongest backend that works here.
    pub kind: Option<SandboxKind>,
    /// The host's network (mode `on`); wins over `allow_hosts`.
    pub network: bool,
    /// Mode `allowlist`: only the run's proxy, forwarding to these hosts (an empty list refuses
    /// every request). See [`SandboxSettings::network_mode`].
    #[serde(default)]
    pub allow_hosts: Option<Vec<AllowHost>>,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Bytes of output kept (head and tail) per command.
    pub output_keep_bytes: usize,
    /// A command producing more than this is stopped.
    pub output_limit_bytes: u64,
    /// CPU, memory, processes, file and workspace size.
    pub limits: Limits,
    /// bwrap: a fresh sandbox per command instead of one per run (slower; for comparison).
    pub per_command: bool,
    /// Create cgroups where possible (limits, finding `setsid` children); `false` exercises the
    /// fallbacks.
    pub use_cgroups: bool,
    /// `sandbox.cache`: where per-repository package caches are kept between runs (`None`: off,
    /// caches last the run only). See [`state`].
    #[serde(default)]
    pub cache_root: Option<PathBuf>,
    /// Host paths mounted read-only at the same path, already checked ([`ro_paths`]).
    #[serde(default)]
    pub ro_paths: Vec<RoPath>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            kind: None,
            network: false,
            allow_hosts: None,
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            output_keep_bytes: 256 * 1024,
            output_limit_bytes: 64 * 1024 * 1024,
            limits: Limits::default(),
            per_command: false,
            use_cgroups: true,
            cache_root: None,
            ro_paths: Vec::new(),
        }
    }
}

impl SandboxSettings {
    pub fn network_mode(&self) -> NetworkMode {
        match (self.network, &self.allow_hosts) {
            (true, _) => NetworkMode::On,
            (false, Some(_)) => NetworkMode::Allowlist,
            (false, None) => NetworkMode::Off,
        }
    }
}

/// The paths a sandbox exposes: the work tree (writable) and its git directory (read-only).
#[derive(Debug, Clone)]
pub struct SandboxMounts {
    pub work_tree: PathBuf,
    pub git_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: String,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "no sandbox is available: {reason}. Install bubblewrap (Debian/Ubuntu: `sudo apt-get install \
         bubblewrap`, Fedora: `sudo dnf install bubblewrap`) and make sure unprivileged user namespaces \
         are allowed (in a container: allow user namespaces, e.g. Docker `--security-opt \
         seccomp=unconfined`), or use a kernel with Landlock ABI 6 (Linux 6.12+) for the built-in \
         backend, or run without isolation by asking for it explicitly with `--sandbox none` \
         (TB_SANDBOX=none)"
    )]
    Unavailable { reason: String },
    #[error("unknown sandbox '{0}': use bwrap, landlock or none")]
    Unknown(String),
    /// A backend that exists in part but cannot run an agent yet (today: `e2b`).
    #[error("{0}")]
    NotReady(String),
    #[error("could not start the sandboxed command: {0}")]
    Spawn(String),
}

impl SandboxError {
    /// The stable code an `Error` event carries for this failure.
    pub fn code(&self) -> crate::event::ErrorCode {
        match self {
            SandboxError::Unknown(_) => crate::event::ErrorCode::InvalidInput,
            SandboxError::Unavailable { .. }
            | SandboxError::NotReady(_)
            | SandboxError::Spawn(_) => crate::event::ErrorCode::SandboxUnavailable,
        }
    }
}

#[async_trait]
pub trait Sandbox: Send + Sync {
    fn kind(&self) -> SandboxKind;
    /// Whether commands share the host's network (mode `on`).
    fn network(&self) -> bool;
    /// The network mode commands run under.
    fn network_mode(&self) -> NetworkMode {
        if self.network() {
            NetworkMode::On
        } else {
            NetworkMode::Off
        }
    }
    /// Mode `allowlist`: the proxy's decisions, once (the pipeline turns them into events).
    fn take_proxy_decisions(&self) -> Option<tokio::sync::mpsc::Receiver<proxy::ProxyDecision>> {
        None
    }
    /// Runs `request.command` with `bash -c` at the repository root.
    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError>;
}

/// The environment every sandboxed command gets: an allow-list, nothing inherited.
pub fn sandbox_env(home: &str) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("TERM".into(), "dumb".into()),
        ("NO_COLOR".into(), "1".into()),
        ("GIT_PAGER".into(), "cat".into()),
        ("PAGER".into(), "cat".into()),
        ("CI".into(), "true".into()),
    ]
}

/// What tools inside need to use the proxy at `http://127.0.0.1:PORT`. `ALL_PROXY` is left out:
/// some tools read it as a SOCKS proxy. `NO_PROXY` is empty so nothing bypasses it.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "npm_config_proxy",
        "npm_config_https_proxy",
    ]
    .iter()
    .map(|k| (k.to_string(), url.clone()))
    .collect();
    env.push(("NO_PROXY".into(), String::new()));
    env.push(("no_proxy".into(), String::new()));
    env
}

/// Whether `kind` works on this machine (probed once per process).
pub fn probe(kind: SandboxKind) -> Result<(), SandboxError> {
    match kind {
        SandboxKind::Bwrap => bwrap::probe(),
        SandboxKind::Landlock => landlock::probe(),
        SandboxKind::None => Ok(()),
        SandboxKind::E2b => Err(e2b_not_ready()),
    }
}

fn e2b_not_ready() -> SandboxError {
    SandboxError::NotReady(
        "`--sandbox e2b` cannot run an agent yet: E2B sandboxes can be created, but the agent's \
         file tools and the diff do not yet work on a remote work tree. Use `--sandbox bwrap` or \
         `--sandbox landlock`, or leave the choice out to get the strongest one that works here"
            .into(),
    )
}

/// Opens the sandbox a run will use, or says why none can be had.
pub fn open(
    settings: &SandboxSettings,
    mounts: SandboxMounts,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    let kind = resolve_kind(settings)?;
    match kind {
        SandboxKind::None => {
            tracing::warn!(
                "sandbox disabled by request (--sandbox none): commands run on this machine"
            );
            Ok(Box::new(process::UnsandboxedRunner::new(mounts, settings)))
        }
        SandboxKind::Bwrap => Ok(Box::new(BwrapSandbox::new(mounts, settings)?)),
        SandboxKind::Landlock => Ok(Box::new(LandlockSandbox::new(mounts, settings)?)),
        SandboxKind::E2b => Err(e2b_not_ready()),
    }
}

/// Which backend `open` would choose here, without opening one: the one asked for if it works,
/// else the strongest that passes its probe. `none` is never chosen unless asked for.
pub fn resolve_kind(settings: &SandboxSettings) -> Result<SandboxKind, SandboxError> {
    if let Some(kind) = settings.kind {
        if kind == SandboxKind::E2b {
            return Err(e2b_not_ready());
        }
        return match probe(kind) {
            Ok(()) => Ok(kind),
            Err(SandboxError::Unavailable { reason }) => {
                let alternatives: Vec<&str> = [SandboxKind::Bwrap, SandboxKind::Landlock]
                    .into_iter()
                    .filter(|k| *k != kind && probe(*k).is_ok())
                    .map(SandboxKind::as_str)
                    .collect();
                let alt = match alternatives.first() {
                    Some(a) => {
                        format!("; `{a}` works here: use `--sandbox {a}` or leave the choice out")
                    }
                    None => String::new(),
                };
                Err(SandboxError::Unavailable {
                    reason: format!("`{}` was asked for, but {reason}{alt}", kind.as_str()),
                })
            }
            Err(e) => Err(e),
        };
    }
    let mut reasons = Vec::new();
    for kind in [SandboxKind::Bwrap, SandboxKind::Landlock] {
        match probe(kind) {
            Ok(()) => return Ok(kind),
            Err(SandboxError::Unavailable { reason }) => {
                reasons.push(format!("{}: {reason}", kind.as_str()))
            }
            Err(e) => reasons.push(format!("{}: {e}", kind.as_str())),
        }
    }
    Err(SandboxError::Unavailable {
        reason: reasons.join("; "),
    })
}

/// How the sandbox is shown to the user, e.g. `bwrap, no network`.
pub fn describe(kind: SandboxKind, network: bool) -> String {
    let mode = if network {
        NetworkMode::On
    } else {
        NetworkMode::Off
    };
    match kind {
        SandboxKind::None => "none (NOT ISOLATED), host network".to_string(),
        k => format!("{}, {}", k.as_str(), network_label(k, mode)),
    }
}

/// The network part of the sandbox's label: `no network`, `network on`, `allow-listed network`,
/// or `host network` without a sandbox.
pub fn network_label(kind: SandboxKind, mode: NetworkMode) -> &'static str {
    match (kind, mode) {
        (SandboxKind::None, _) => "host network",
        (_, NetworkMode::Off) => "no network",
        (_, NetworkMode::Allowlist) => "allow-listed network",
        (_, NetworkMode::On) => "network on",
    }
}

pub(crate) fn clamp_timeout(settings: &SandboxSettings, asked_secs: Option<u64>) -> Duration {
    match asked_secs {
        Some(0) | None => settings.default_timeout,
        Some(s) => Duration::from_secs(s).min(settings.max_timeout),
    }
}

/// The first executable named `name` on this process's PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub(crate) fn shell() -> &'static Path {
    if Path::new("/bin/bash").exists() {
        Path::new("/bin/bash")
    } else {
        Path::new("/bin/sh")
    }
}
