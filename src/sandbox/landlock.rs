//! The built-in backend for machines without bubblewrap: Landlock + seccomp + no capabilities.
//!
//! Why raw syscalls: the ruleset is built in the parent, but it is enforced in the forked child
//! between fork and exec, where nothing may allocate; three syscalls and two `repr(C)` structs are
//! all it takes.
//!
//! Invariants: this backend needs Landlock ABI ≥ 6 (signal and abstract-socket scoping), else it
//! reports itself unavailable. Every command runs with: all capabilities dropped (bounding set,
//! ambient, and `SECBIT_NOROOT` so exec cannot bring them back), `no_new_privs`, a Landlock domain
//! allowing read/exec of the system directories, read of a filtered `/etc` (no shadow, sudoers,
//! ssh or private keys) and of the git directory, read/exec of the `ro_paths`, read/write of the
//! work tree and the run's state directory (`/tmp`, `HOME`; the repository's cache) only — no `/proc`, `/sys`, `/run`, home or host `/tmp` —, no signals or
//! abstract sockets outside its domain, no TCP while the network is off (allowlist: connects to the
//! proxy only, `super::landlock_net`); and the seccomp filter, which refuses `AF_UNIX` sockets
//! always (named host sockets — a container runtime's, init's — would be reachable) and others
//! while the network is off (allowlist: TCP only, connects checked by the supervisor),
//! refuses SysV IPC and POSIX message queues (the host's IPC namespace is shared), and sends every
//! call that changes a file's mode, owner, times or extended attributes to a supervisor thread
//! that performs it only beneath the work tree or the private temporary directory
//! (`super::metadata`; the listener reaches the host over a socket pair, `super::notify`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::limits::{self, Cgroup};
use super::metadata::Roots;
use super::notify::{self, Channel};
use super::process::{self, ChildSetup, ExecOutput, RunSpec};
use super::proxy::{Proxy, ProxyDecision};
use super::seccomp;
use super::state::RunState;
use super::{
    ExecRequest, NetworkMode, Sandbox, SandboxError, SandboxKind, SandboxMounts, SandboxSettings,
};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// The oldest ABI this backend accepts: 6 brings signal and abstract-socket scoping.
pub const MIN_ABI: i64 = 6;

pub use super::landlock_net::NetAccess;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, or why there is none.
pub fn abi() -> Result<i64, String> {
    // SAFETY: the version query takes no pointers.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel has no Landlock support".to_string(),
            Some(libc::EOPNOTSUPP) => {
                "Landlock is built in but disabled (add `landlock` to the kernel's `lsm=` list)"
                    .to_string()
            }
            _ => format!("Landlock is unavailable: {e}"),
        });
    }
    Ok(v)
}

fn fs_rights(abi: i64) -> u64 {
    let mut all = (1u64 << 13) - 1; // ABI 1: execute … make_sym
    if abi >= 2 {
        all |= 1 << 13; // refer
    }
    if abi >= 3 {
        all |= FS_TRUNCATE;
    }
    if abi >= 5 {
        all |= FS_IOCTL_DEV;
    }
    all
}

/// A Landlock ruleset plus the seccomp program, ready to be entered by a forked child.
pub struct Confinement {
    ruleset: OwnedFd,
    seccomp: Option<Vec<libc::sock_filter>>,
    drop_caps: bool,
    /// Where the supervisor lets metadata change; `Some` when the program notifies those calls.
    roots: Option<Arc<Roots>>,
}

impl Confinement {
    /// Builds the ruleset for `mounts` and `tmp` (the private temporary directory).
    pub fn build(mounts: &SandboxMounts, tmp: &Path, net: NetAccess) -> Result<Self, String> {
        Self::build_with(mounts, &[tmp], &[], net)
    }

    /// Builds the ruleset for `mounts`, the writable directories `rw` (the run's `/tmp`, the
    /// repository's cache) and the read-only (read and execute) host paths `ro`.
    pub fn build_with(
        mounts: &SandboxMounts,
        rw: &[&Path],
        ro: &[&Path],
        net: NetAccess,
    ) -> Result<Self, String> {
        let abi = abi()?;
        if abi < MIN_ABI {
            return Err(format!(
                "the kernel's Landlock ABI is {abi}; this backend needs {MIN_ABI} (Linux 6.12) to \
                 keep signals and abstract sockets inside the sandbox"
            ));
        }
        let all = fs_rights(abi);
        let file_rights = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
        let attr = RulesetAttr {
            handled_access_fs: all,
            handled_access_net: if net == NetAccess::All {
                0
            } else {
                NET_BIND_TCP | NET_CONNECT_TCP
            },
            scoped: SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
        };
        // SAFETY: attr is a valid ruleset_attr of the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(format!(
                "creating a Landlock ruleset failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh descriptor we own.
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let add = |path: &Path, rights: u64| -> Result<(), String> {
            let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
                return Ok(());
            };
            // SAFETY: a NUL-terminated path; the fd is closed by OwnedFd.
            let pfd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if pfd < 0 {
                return Ok(()); // missing paths are simply not granted
            }
            // SAFETY: a fresh descriptor we own.
            let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
            let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
            let rights = if is_dir { rights } else { rights & file_rights } & all;
            let rule = PathBeneathAttr {
                allowed_access: rights,
                parent_fd: pfd.as_raw_fd(),
            };
            // SAFETY: rule is a valid path_beneath_attr; both fds are open.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.as_raw_fd(),
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            if r != 0 {
                return Err(format!(
                    "Landlock rule for {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
            Ok(())
        };
        if let NetAccess::ConnectPort(port) = net {
            super::landlock_net::allow_connect(&ruleset, port, NET_CONNECT_TCP)?;
        }
        let read_exec = FS_READ_FILE | FS_READ_DIR | FS_EXECUTE;
        for sys in [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/opt",
            "/nix/store",
        ] {
            add(Path::new(sys), read_exec)?;
        }
        add(Path::new("/etc"), FS_READ_DIR)?;
        for entry in etc_entries() {
            add(&entry, FS_READ_FILE | FS_READ_DIR)?;
        }
        for dev in ["/dev/null", "/dev/zero", "/dev/full"] {
            add(Path::new(dev), FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE)?;
        }
        for dev in ["/dev/urandom", "/dev/random"] {
            add(Path::new(dev), FS_READ_FILE)?;
        }
        for path in ro {
            add(path, read_exec)?;
        }
        add(&mounts.git_dir, FS_READ_FILE | FS_READ_DIR)?;
        add(&mounts.work_tree, all)?;
        for dir in rw {
            add(dir, all)?;
        }
        let mut roots: Vec<&Path> = vec![&mounts.work_tree];
        roots.extend(rw.iter().copied());
        let roots = Roots::new(&roots)
            .map(|r| r.with_connect_port(net.connect_port()))
            .map_err(|e| format!("opening the work tree for the metadata supervisor: {e}"))?;
        Ok(Confinement {
            ruleset,
            seccomp: Some(super::landlock_net::seccomp_program(net)),
            drop_caps: true,
            roots: Some(Arc::new(roots)),
        })
    }

    /// Only Landlock's scoping — no abstract Unix sockets or signals outside the domain — with no
    /// filesystem or network rules, so bwrap can still build its namespaces under it. Used for
    /// bwrap with the network on, where the host's network namespace (and so its abstract sockets,
    /// a container shim's for instance) is shared.
    pub fn scope_only() -> Result<Self, String> {
        let abi = abi()?;
        if abi < MIN_ABI {
            return Err(format!("Landlock ABI {abi} has no scoping"));
        }
        let attr = RulesetAttr {
            handled_access_fs: 0,
            handled_access_net: 0,
            scoped: SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
        };
        // SAFETY: attr is a valid ruleset_attr of the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(Confinement {
            // SAFETY: a fresh descriptor we own.
            ruleset: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            seccomp: None,
            drop_caps: false,
            roots: None,
        })
    }

    /// The supervisor's roots when commands need one (see [`Self::enter`]).
    pub(crate) fn roots(&self) -> Option<&Arc<Roots>> {
        self.roots.as_ref()
    }

    /// Drops capabilities, sets `no_new_privs`, enters the Landlock domain and installs seccomp;
    /// with `notify_sock` (when [`Self::roots`] is set) the filter's listener is sent there and
    /// closed here, so the command never holds it (without one, metadata calls get `ENOSYS`).
    /// Async-signal-safe: called in the forked child.
    pub(crate) fn enter(&self, notify_sock: Option<RawFd>) -> std::io::Result<()> {
        // SAFETY: plain syscalls with stack values; nothing allocates.
        unsafe {
            if self.drop_caps {
                super::caps::drop_capabilities()?;
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(
                libc::SYS_landlock_restrict_self,
                self.ruleset.as_raw_fd(),
                0u32,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            match (&self.seccomp, notify_sock) {
                (Some(prog), Some(sock)) if self.roots.is_some() => {
                    let listener = seccomp::install_with_listener(prog)?;
                    let sent = notify::send_fd(sock, listener);
                    libc::close(listener);
                    sent
                }
                (Some(prog), _) => seccomp::install(prog),
                (None, _) => Ok(()),
            }
        }
    }
}

/// Everything directly in `/etc` except credentials and keys.
fn etc_entries() -> Vec<PathBuf> {
    const MASKED: &[&str] = &[
        "shadow",
        "shadow-",
        "gshadow",
        "gshadow-",
        "sudoers",
        "sudoers.d",
        "ssh",
        "ssl",
        "security",
        "credstore",
        "credstore.encrypted",
        "mtab",
    ];
    let mut out: Vec<PathBuf> = std::fs::read_dir("/etc")
        .map(|d| {
            d.flatten()
                .filter(|e| !MASKED.contains(&e.file_name().to_string_lossy().as_ref()))
                .map(|e| e.path())
                .filter(|p| {
                    // A symlink out of /etc (to /proc, /run, …) is not followed into a grant.
                    std::fs::canonicalize(p)
                        .is_ok_and(|c| c.starts_with("/etc") || c.starts_with("/usr"))
                })
                .collect()
        })
        .unwrap_or_default();
    // Public CA certificates are needed for TLS, and OpenSSL's configuration (node exits when
    // it cannot read it); the private keys next to them are not granted.
    out.push(PathBuf::from("/etc/ssl/certs"));
    out.push(PathBuf::from("/etc/ssl/openssl.cnf"));
    out
}

/// Checks once per process that a confined command can run here.
pub(super) fn probe() -> Result<(), SandboxError> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let scratch =
                tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
            let mounts = SandboxMounts {
                work_tree: scratch.path().join("repo"),
                git_dir: scratch.path().join("git"),
            };
            std::fs::create_dir_all(&mounts.work_tree)
                .and_then(|_| std::fs::create_dir_all(&mounts.git_dir))
                .map_err(|e| format!("no temporary directory: {e}"))?;
            let confine = Confinement::build(&mounts, scratch.path(), NetAccess::None)?;
            // The listener's way to the host is part of what must work here.
            let channel =
                Channel::new().map_err(|e| format!("no socket pair for the supervisor: {e}"))?;
            let sock = channel.child_fd();
            let mut cmd = std::process::Command::new(super::shell());
            cmd.args(["-c", "true"])
                .env_clear()
                .current_dir(&mounts.work_tree)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            // SAFETY: see Confinement::enter.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(move || confine.enter(Some(sock)));
            }
            let out = cmd.output();
            if out.is_ok() {
                channel
                    .receive()
                    .map_err(|e| format!("the seccomp listener did not arrive: {e}"))?;
            }
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "a Landlock-confined test command failed ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("a Landlock-confined test command failed: {e}")),
            }
        })
        .clone()
        .map_err(|reason| SandboxError::Unavailable { reason })
}

/// Runs the command (`$1`) and then, or when told to stop (SIGTERM), SIGKILLs every other process
/// it can signal. Landlock's signal scoping makes that exactly the processes of this command's own
/// domain — `setsid` and `nohup` children included — and nothing else; as a guard, it does nothing
/// if it can signal the tiny-backspace process (which scoping forbids).
const SUPERVISOR: &str = r#"hp=$TB_HOST_PID; unset TB_HOST_PID
sweep() {
  if [ -z "$hp" ] || kill -0 "$hp" 2>/dev/null; then return; fi
  for ((i = 0; i < 100; i++)); do kill -9 -1 2>/dev/null || break; done
}
trap 'sweep; exit 143' TERM
/bin/bash -c "$1" &
wait "$!"; rc=$?
sweep
exit "$rc"
"#;

pub struct LandlockSandbox {
    mounts: SandboxMounts,
    settings: SandboxSettings,
    /// The run's `/tmp`, `HOME` and caches on disk (beside the work tree): they outlive this
    /// sandbox and go with the workspace.
    state: RunState,
    confine: Arc<Confinement>,
    /// Mode allowlist: the run's proxy and its host loopback port.
    proxy: Option<(Proxy, u16)>,
}

impl LandlockSandbox {
    pub fn new(mounts: SandboxMounts, settings: &SandboxSettings) -> Result<Self, SandboxError> {
        // Next to the work tree, i.e. inside the run's workspace: it belongs to its run and goes
        // with the workspace, even when this process is killed.
        let state = RunState::prepare(&mounts, settings)
            .map_err(|e| SandboxError::Spawn(format!("the sandbox's state directory: {e}")))?;
        let proxy = super::landlock_net::start_proxy(settings)?;
        let net = match &proxy {
            _ if settings.network => NetAccess::All,
            Some((_, port)) => NetAccess::ConnectPort(*port),
            None => NetAccess::None,
        };
        let mut rw: Vec<&Path> = vec![&state.tmp];
        rw.extend(state.repo_cache.as_deref());
        let ro: Vec<&Path> = settings.ro_paths.iter().map(|r| r.path.as_path()).collect();
        let confine = Confinement::build_with(&mounts, &rw, &ro, net)
            .map_err(|reason| SandboxError::Unavailable { reason })?;
        Ok(LandlockSandbox {
            mounts,
            settings: settings.clone(),
            state,
            confine: Arc::new(confine),
            proxy,
        })
    }
}

#[async_trait]
impl Sandbox for LandlockSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Landlock
    }

    fn network(&self) -> bool {
        self.settings.network
    }

    fn network_mode(&self) -> NetworkMode {
        self.settings.network_mode()
    }

    fn take_proxy_decisions(&self) -> Option<tokio::sync::mpsc::Receiver<ProxyDecision>> {
        self.proxy.as_ref().and_then(|(p, _)| p.take_decisions())
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        let mut spec = RunSpec::new(&self.settings, request.timeout);
        spec.cgroup = Cgroup::for_settings(&self.settings);
        let mut cmd = std::process::Command::new(super::shell());
        // The supervisor is a bash script (without bash, only the process group is killed).
        if spec.cgroup.is_some() || !Path::new("/bin/bash").exists() {
            cmd.arg("-c").arg(&request.command);
        } else {
            // No cgroup to find children that leave the process group: a supervisor inside the
            // command's own Landlock domain kills them (see SUPERVISOR).
            cmd.arg("-c")
                .arg(SUPERVISOR)
                .arg("tb-supervisor")
                .arg(&request.command);
            spec.term_leader_first = true;
        }
        cmd.current_dir(&self.mounts.work_tree).env_clear();
        if spec.term_leader_first {
            cmd.env("TB_HOST_PID", std::process::id().to_string());
        }
        let mut env = super::sandbox_env(&self.state.home.to_string_lossy());
        let cache = match &self.state.repo_cache {
            Some(dir) => dir.clone(),
            None => self.state.home.join(super::state::CACHE_IN_HOME),
        };
        super::state::env_additions(&mut env, &cache.to_string_lossy(), &self.settings.ro_paths);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some((_, port)) = &self.proxy {
            for (k, v) in super::proxy_env(*port) {
                cmd.env(k, v);
            }
        }
        cmd.env("TMPDIR", &self.state.tmp)
            .env("GIT_DIR", &self.mounts.git_dir)
            .env("GIT_WORK_TREE", &self.mounts.work_tree);
        spec.disk_watch = vec![
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
        ];
        let setup = ChildSetup {
            rlimits: limits::rlimits(&self.settings.limits, spec.cgroup.is_some()),
            confine: Some(self.confine.clone()),
            die_with_parent: true,
            // Like bwrap's --new-session: no controlling terminal to inject keystrokes into.
            new_session: true,
            ..Default::default()
        };
        process::run(cmd, setup, spec, cancel).await
    }
}
