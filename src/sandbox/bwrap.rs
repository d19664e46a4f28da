//! The bubblewrap backend: one fresh set of namespaces per command.
//!
//! Invariants: bwrap itself starts with an empty environment (its own environment is readable as
//! `/proc/1/environ` inside) and no secret is ever in its arguments; all namespaces are unshared
//! (network too unless asked for), nested user namespaces are disabled, the root is read-only,
//! only the work tree is writable besides a private `/tmp`, the git directory is mounted read-only,
//! and the host's home, `/root` and `/tmp` are not there at all.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::process::{self, ExecOutput};
use super::{ExecRequest, Sandbox, SandboxError, SandboxKind, SandboxMounts, SandboxSettings};

/// Where the work tree appears inside the sandbox.
pub const SANDBOX_WORKDIR: &str = "/workspace";
const SANDBOX_HOME: &str = "/tmp/home";

/// Host files under `/etc` that must never be visible, even read-only.
const MASKED_ETC: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/sudoers",
];
const MASKED_ETC_DIRS: &[&str] = &["/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private"];

pub struct BwrapSandbox {
    mounts: SandboxMounts,
    settings: SandboxSettings,
}

impl BwrapSandbox {
    pub fn new(mounts: SandboxMounts, settings: &SandboxSettings) -> Self {
        BwrapSandbox {
            mounts,
            settings: settings.clone(),
        }
    }
}

fn push(args: &mut Vec<OsString>, parts: &[&str]) {
    args.extend(parts.iter().map(OsString::from));
}

/// The bwrap command line for `command`; a pure function so its policy can be tested.
pub fn bwrap_args(mounts: &SandboxMounts, network: bool, command: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    push(
        &mut a,
        &["--unshare-all", "--unshare-user", "--disable-userns"],
    );
    if network {
        push(&mut a, &["--share-net"]);
    }
    push(
        &mut a,
        &["--die-with-parent", "--new-session", "--cap-drop", "ALL"],
    );
    push(&mut a, &["--ro-bind", "/usr", "/usr"]);
    // Merged-/usr systems have symlinks here; others have real directories.
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let p = Path::new(top);
        match std::fs::read_link(p) {
            Ok(target) => {
                a.push("--symlink".into());
                a.push(target.into_os_string());
                a.push(top.into());
            }
            Err(_) if p.is_dir() => push(&mut a, &["--ro-bind", top, top]),
            Err(_) => {}
        }
    }
    push(&mut a, &["--ro-bind", "/etc", "/etc"]);
    for f in MASKED_ETC {
        if Path::new(f).exists() {
            push(&mut a, &["--ro-bind", "/dev/null", f]);
        }
    }
    for d in MASKED_ETC_DIRS {
        if Path::new(d).is_dir() {
            push(&mut a, &["--tmpfs", d]);
        }
    }
    push(
        &mut a,
        &[
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--dir",
            SANDBOX_HOME,
        ],
    );
    a.push("--bind".into());
    a.push(mounts.work_tree.clone().into_os_string());
    a.push(SANDBOX_WORKDIR.into());
    a.push("--ro-bind".into());
    a.push(mounts.git_dir.clone().into_os_string());
    a.push(format!("{SANDBOX_WORKDIR}/.git").into());
    push(
        &mut a,
        &[
            "--remount-ro",
            "/",
            "--chdir",
            SANDBOX_WORKDIR,
            "--clearenv",
        ],
    );
    for (k, v) in super::sandbox_env(SANDBOX_HOME) {
        a.push("--setenv".into());
        a.push(k.into());
        a.push(v.into());
    }
    a.push("--".into());
    a.push(super::shell().as_os_str().to_owned());
    a.push("-c".into());
    a.push(command.into());
    a
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

/// Checks once per process that bwrap exists and can create the namespaces we ask for.
pub(super) fn probe() -> Result<(), SandboxError> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if super::find_program("bwrap").is_none() {
                return Err("bubblewrap (`bwrap`) is not installed (not found on PATH)".to_string());
            }
            let scratch =
                tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
            let mounts = SandboxMounts {
                work_tree: scratch.path().join("repo"),
                git_dir: scratch.path().join("git"),
            };
            std::fs::create_dir_all(mounts.work_tree.join(".git"))
                .and_then(|_| std::fs::create_dir_all(&mounts.git_dir))
                .map_err(|e| format!("no temporary directory: {e}"))?;
            let args = bwrap_args(&mounts, false, "true");
            match bwrap_command(args).output() {
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
        })
        .clone()
        .map_err(|reason| SandboxError::Unavailable { reason })
}

#[async_trait]
impl Sandbox for BwrapSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Bwrap
    }

    fn network(&self) -> bool {
        self.settings.network
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        let args = bwrap_args(&self.mounts, self.settings.network, &request.command);
        process::run(
            bwrap_command(args),
            request.timeout,
            self.settings.output_keep_bytes,
            self.settings.output_limit_bytes,
            cancel,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn mounts() -> SandboxMounts {
        SandboxMounts {
            work_tree: PathBuf::from("/w/repo"),
            git_dir: PathBuf::from("/w/git"),
        }
    }

    fn joined(net: bool) -> String {
        bwrap_args(&mounts(), net, "echo hi")
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn isolates_by_default() {
        let a = joined(false);
        for must in [
            "--unshare-all",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--remount-ro /",
            "--bind /w/repo /workspace",
            "--ro-bind /w/git /workspace/.git",
            "--tmpfs /tmp",
        ] {
            assert!(a.contains(must), "missing {must}: {a}");
        }
        assert!(!a.contains("--share-net"));
        assert!(!a.contains("/root"));
        assert!(!a.contains("bind /home"));
        assert!(a.ends_with("-c echo hi"));
    }

    #[test]
    fn network_only_when_asked() {
        assert!(joined(true).contains("--share-net"));
    }

    #[test]
    fn no_secret_names_in_the_environment() {
        for (k, _) in super::super::sandbox_env("/tmp/home") {
            let k = k.to_ascii_uppercase();
            assert!(
                !["TOKEN", "KEY", "SECRET", "PASSWORD"]
                    .iter()
                    .any(|s| k.contains(s)),
                "{k}"
            );
        }
    }
}
