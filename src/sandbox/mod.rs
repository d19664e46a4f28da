//! Where every command the agent asks for runs.
//!
//! Invariants: the agent's `bash` tool reaches the host only through a [`Sandbox`]; a sandbox gets
//! an environment built from an allow-list (never the caller's, so no token can leak in); every
//! command has a wall timeout and an output cap, and when it ends — normally, by timeout or by
//! cancellation — no process it started is left running. `none` exists only when asked for by name.

mod bwrap;
mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use bwrap::{BwrapSandbox, bwrap_args};
pub use process::{ExecOutput, Termination};

/// Which isolation a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    Bwrap,
    None,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Bwrap => "bwrap",
            SandboxKind::None => "none",
        }
    }

    pub fn parse(s: &str) -> Result<Self, SandboxError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bwrap" | "bubblewrap" => Ok(SandboxKind::Bwrap),
            "none" => Ok(SandboxKind::None),
            other => Err(SandboxError::Unknown(other.to_string())),
        }
    }
}

/// Limits and switches for one run's sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxSettings {
    /// `None` = pick the strongest backend that works here.
    pub kind: Option<SandboxKind>,
    pub network: bool,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Bytes of output kept (head and tail) per command.
    pub output_keep_bytes: usize,
    /// A command producing more than this is stopped.
    pub output_limit_bytes: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            kind: None,
            network: false,
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            output_keep_bytes: 256 * 1024,
            output_limit_bytes: 64 * 1024 * 1024,
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
         are allowed, or run without isolation by asking for it explicitly with `--sandbox none` \
         (TB_SANDBOX=none)"
    )]
    Unavailable { reason: String },
    #[error("unknown sandbox '{0}': use bwrap or none")]
    Unknown(String),
    #[error("could not start the sandboxed command: {0}")]
    Spawn(String),
}

#[async_trait]
pub trait Sandbox: Send + Sync {
    fn kind(&self) -> SandboxKind;
    fn network(&self) -> bool;
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

/// Opens the sandbox a run will use, or says why none can be had.
pub fn open(
    settings: &SandboxSettings,
    mounts: SandboxMounts,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    match settings.kind {
        Some(SandboxKind::None) => Ok(Box::new(process::UnsandboxedRunner::new(mounts, settings))),
        Some(SandboxKind::Bwrap) => {
            bwrap::probe()?;
            Ok(Box::new(BwrapSandbox::new(mounts, settings)))
        }
        None => {
            bwrap::probe()?;
            Ok(Box::new(BwrapSandbox::new(mounts, settings)))
        }
    }
}

/// Which backend `open` would choose here, without opening one.
pub fn resolve_kind(settings: &SandboxSettings) -> Result<SandboxKind, SandboxError> {
    match settings.kind {
        Some(SandboxKind::None) => Ok(SandboxKind::None),
        _ => bwrap::probe().map(|_| SandboxKind::Bwrap),
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
