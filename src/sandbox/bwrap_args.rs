//! The bwrap command line, a pure function of the mounts and the policy (so it can be tested).
//!
//! Invariants: every namespace is unshared (the network too unless asked for), nested user
//! namespaces are disabled, the root is read-only, `/etc` secrets and what runc masks in `/proc`
//! are masked, `/proc` is read-only as a whole; the only writable places are the work tree and
//! the run's `/tmp` (the state directory of [`super::state`], `HOME` inside it, the repository's
//! cache at `HOME/.cache` when on) — or, without a state directory (the probe), a size-capped
//! tmpfs; read-only host paths (`sandbox.ro_paths`, checked before) are bound at their own path;
//! the environment is the allow-list of [`super::sandbox_env`] plus cache variables.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use super::SandboxMounts;
use super::bridge::{BINARY_FD, BRIDGE_ARG, BRIDGE_PORT};
use super::hostns::{STAGED_CACHE, STAGED_GIT_DIR, STAGED_STATE, STAGED_WORK_TREE, staged_ro};
use super::state::{CACHE_IN_HOME, RoPath, RunState, SANDBOX_HOME};

/// Where the work tree appears inside the sandbox.
pub const SANDBOX_WORKDIR: &str = "/workspace";

/// Host files under `/etc` that must never be visible, even read-only.
const MASKED_ETC: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/sudoers",
];
const MASKED_ETC_DIRS: &[&str] = &["/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private"];

/// What runc masks in `/proc` (`maskedPaths`): files become an unreadable device node,
/// directories an empty read-only tmpfs. Host knowledge (kernel memory, keys, timers, hardware).
const MASKED_PROC_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
];
const MASKED_PROC_DIRS: &[&str] = &["/proc/acpi", "/proc/asound", "/proc/scsi"];

fn push(args: &mut Vec<OsString>, parts: &[&str]) {
    args.extend(parts.iter().map(OsString::from));
}

/// Switches of one bwrap command line besides the mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BwrapPolicy {
    pub network: bool,
    /// Mode allowlist: the command starts through [`super::bridge`] (binary at fd 5, channel at
    /// fd 6) and gets the proxy variables.
    pub bridge: bool,
    /// Pass `--seccomp 3` (the caller puts the program at fd 3).
    pub seccomp_fd3: bool,
    /// Size of the private `/tmp` tmpfs, when this bwrap supports `--size`.
    pub tmp_bytes: Option<u64>,
    /// bwrap runs as an unprivileged host uid over the idmapped work tree and git directory that
    /// [`super::hostns`] stages: bind those, and be uid 0 inside as before.
    pub uid_drop: bool,
    /// The run's state directories: `/tmp` (and `HOME` in it) from disk, so they outlive this
    /// sandbox. Without (the probe): a tmpfs of `tmp_bytes`.
    pub state: Option<RunState>,
    /// Host paths bound read-only at their own path.
    pub ro_paths: Vec<RoPath>,
}

/// The bwrap command line for `command` without seccomp; see [`bwrap_args_with`].
pub fn bwrap_args(mounts: &SandboxMounts, network: bool, command: &str) -> Vec<OsString> {
    bwrap_args_with(
        mounts,
        &BwrapPolicy {
            network,
            ..BwrapPolicy::default()
        },
        command,
    )
}

/// The bwrap command line for `command`; a pure function so its policy can be tested.
pub fn bwrap_args_with(
    mounts: &SandboxMounts,
    policy: &BwrapPolicy,
    command: &str,
) -> Vec<OsString> {
    let network = policy.network;
    let mut a: Vec<OsString> = Vec::new();
    push(
        &mut a,
        &["--unshare-all", "--unshare-user", "--disable-userns"],
    );
    if network {
        push(&mut a, &["--share-net"]);
    }
    if policy.uid_drop {
        push(&mut a, &["--uid", "0", "--gid", "0"]);
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
    push(&mut a, &["--proc", "/proc"]);
    mask_proc(&mut a);
    push(&mut a, &["--dev", "/dev"]);
    let staged = |host: &Path, at: &str| -> OsString {
        if policy.uid_drop {
            at.into()
        } else {
            host.as_os_str().to_owned()
        }
    };
    match &policy.state {
        Some(state) => {
            // The uid-dropped bwrap binds `tmp` below the staged copy of the state root.
            a.push("--bind".into());
            a.push(staged(&state.tmp, &format!("{STAGED_STATE}/tmp")));
            a.push("/tmp".into());
            if let Some(cache) = &state.repo_cache {
                a.push("--bind".into());
                a.push(staged(cache, STAGED_CACHE));
                a.push(format!("{SANDBOX_HOME}/{CACHE_IN_HOME}").into());
            }
        }
        None => {
            if let Some(bytes) = policy.tmp_bytes {
                a.push("--size".into());
                a.push(bytes.to_string().into());
            }
            push(&mut a, &["--tmpfs", "/tmp", "--dir", SANDBOX_HOME]);
        }
    }
    for (n, ro) in policy.ro_paths.iter().enumerate() {
        a.push("--ro-bind".into());
        a.push(staged(&ro.path, &staged_ro(n)));
        a.push(ro.path.as_os_str().to_owned());
    }
    let (work_tree, git_dir) = if policy.uid_drop {
        (STAGED_WORK_TREE.into(), STAGED_GIT_DIR.into())
    } else {
        (mounts.work_tree.clone(), mounts.git_dir.clone())
    };
    a.push("--bind".into());
    a.push(work_tree.into_os_string());
    a.push(SANDBOX_WORKDIR.into());
    a.push("--ro-bind".into());
    a.push(git_dir.into_os_string());
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
    let mut env = super::sandbox_env(SANDBOX_HOME);
    if policy.state.is_some() {
        let cache = format!("{SANDBOX_HOME}/{CACHE_IN_HOME}");
        super::state::env_additions(&mut env, &cache, &policy.ro_paths);
    }
    for (k, v) in env {
        a.push("--setenv".into());
        a.push(k.into());
        a.push(v.into());
    }
    push(&mut a, &["--setenv", "TMPDIR", "/tmp"]);
    if policy.bridge {
        for (k, v) in super::proxy_env(BRIDGE_PORT) {
            push(&mut a, &["--setenv", &k, &v]);
        }
    }
    if policy.seccomp_fd3 {
        push(&mut a, &["--seccomp", "3"]);
    }
    a.push("--".into());
    if policy.bridge {
        a.push(format!("/proc/self/fd/{BINARY_FD}").into());
        a.push(BRIDGE_ARG.into());
    }
    a.push(super::shell().as_os_str().to_owned());
    a.push("-c".into());
    a.push(command.into());
    a
}

/// Masks after `--proc /proc`, then makes all of `/proc` read-only. A sandbox running as host
/// uid 0 (a root caller without the uid drop) would otherwise write sysctls (`test_perm` checks the
/// uid, not a capability; bwrap's own cover skips `/proc/sys`, whose directory mode is 0555),
/// `chmod` procfs entries for the whole host, and read root-only files. Per-process files
/// (`/proc/self/oom_score_adj`, …) become read-only too; nothing a build needs writes them.
fn mask_proc(a: &mut Vec<OsString>) {
    let mut files: Vec<String> = MASKED_PROC_FILES.iter().map(|f| f.to_string()).collect();
    files.extend(root_only_proc_files().iter().cloned());
    files.sort();
    files.dedup();
    for f in files.iter().filter(|f| Path::new(f).exists()) {
        push(a, &["--ro-bind", "/dev/null", f]);
    }
    for d in MASKED_PROC_DIRS.iter().filter(|d| Path::new(d).is_dir()) {
        push(a, &["--tmpfs", d, "--remount-ro", d]);
    }
    push(a, &["--remount-ro", "/proc"]);
}

/// Top-level `/proc` files only root may read (`kmsg`, `slabinfo`, `kpageflags`, …): the same on
/// the host as in the sandbox's own procfs, so listed once from ours.
fn root_only_proc_files() -> &'static [String] {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| {
                !e.file_name()
                    .as_encoded_bytes()
                    .iter()
                    .all(u8::is_ascii_digit)
            })
            .filter(|e| {
                std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
                    m.is_file() && m.uid() == 0 && m.permissions().mode() & 0o004 == 0
                })
            })
            .map(|e| format!("/proc/{}", e.file_name().to_string_lossy()))
            .collect()
    })
}

#[cfg(test)]
#[path = "bwrap_tests.rs"]
mod tests;
