//! What the host does, as root, between fork and exec of bwrap: a private mount namespace, host
//! device nodes rebound read-only, and a host uid that owns nothing.
//!
//! Why: bwrap maps the sandbox's uid 0 to the caller's uid. For a root caller that is host uid 0,
//! and whatever the kernel checks by uid rather than by capability is then open to the sandbox:
//! sysctls (`core_pattern`: a host root shell), procfs files only root may read, the owner's right
//! to `chmod` host device nodes (`/dev/null`) and procfs entries, root's per-user counters. The
//! bwrap command line makes `/proc` read-only and masks what runc masks (see `bwrap.rs`); this
//! module removes the cause where it can:
//!
//! 1. the child enters a private mount namespace (nothing propagates back to the host) and rebinds
//!    the device nodes bwrap's `--dev` exposes read-only: I/O still works, metadata cannot change;
//! 2. when bwrap can run as an unprivileged user here and the work tree's file system supports
//!    idmapped mounts, the work tree and git directory are attached idmapped (host uid 0 on disk
//!    shows as [`SANDBOX_UID`]) at [`STAGED_WORK_TREE`] / [`STAGED_GIT_DIR`] on a private tmpfs,
//!    and the child becomes [`SANDBOX_UID`] for good before exec'ing bwrap. Files stay host uid 0
//!    on disk, so host git, the agent's host-side tools and the cleanup see no change. The run's
//!    state directory and the repository's cache are idmapped the same way ([`STAGED_STATE`],
//!    [`STAGED_CACHE`]); read-only host paths are cloned read-only as they are ([`staged_ro`]),
//!    so one under a 0700 home stays reachable after the uid drop.
//!
//! Which of these work is probed once per process by starting bwrap each way ([`host_mode`]);
//! what does not work is logged and the next weaker way used (down to plain bwrap as host uid 0,
//! e.g. as root without `CAP_SYS_ADMIN` in a container), so this never makes bwrap unusable where
//! it worked before. `/proc` stays read-only in every case.
//!
//! Invariants: only for a root caller (another caller owns nothing shared, and bwrap already runs
//! as that caller); everything the child does is a raw syscall on memory prepared before the fork,
//! run after the cgroup join and limits, which need root; a failing step fails the spawn, so bwrap
//! never starts half-prepared.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::SandboxMounts;

/// The host uid (and gid) a root caller's bwrap runs as: `nobody`, which owns no file the sandbox
/// can reach (the work tree is idmapped, everything else read-only).
pub(crate) const SANDBOX_UID: u32 = 65534;
/// Where the idmapped work tree and git directory are attached in the private mount namespace.
pub(crate) const STAGED_WORK_TREE: &str = "/tmp/tb-work-tree";
pub(crate) const STAGED_GIT_DIR: &str = "/tmp/tb-git-dir";
/// The run's state directory (`super::state`) and the repository's cache, idmapped like the work
/// tree; read-only host paths (`sandbox.ro_paths`) at `/tmp/tb-ro-N`, not idmapped.
pub(crate) const STAGED_STATE: &str = "/tmp/tb-state";
pub(crate) const STAGED_CACHE: &str = "/tmp/tb-cache";
const STAGE: &CStr = c"/tmp";

/// Where the `n`th read-only path is attached for a uid-dropped bwrap.
pub(crate) fn staged_ro(n: usize) -> String {
    format!("/tmp/tb-ro-{n}")
}

/// The host device nodes bwrap's `--dev` binds into the sandbox.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The child's last step before exec (see [`super::process::ChildSetup::last_step`]).
pub(crate) type Step = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// Detached mounts (the work tree, git directory and state idmapped; read-only paths as they
/// are), each with where it is attached in the child.
struct Idmapped {
    mounts: Vec<(OwnedFd, CString)>,
}

/// The host-side preparation of one bwrap start.
pub(crate) struct HostPrep {
    /// Device nodes and the flags of the mount each is on (kept: a container may lock them).
    devices: Vec<(CString, libc::c_ulong)>,
    idmapped: Option<Idmapped>,
}

/// How a root caller's bwrap is started on this machine (probed once).
pub(crate) enum HostMode {
    /// Not root: bwrap runs as the caller, nothing to do.
    Caller,
    /// Everything; the descriptor is the user namespace that maps host uid 0 on disk to
    /// [`SANDBOX_UID`] for the idmapped mounts.
    DropUid(OwnedFd),
    /// Private mount namespace and read-only device nodes; the sandbox runs as host uid 0.
    PrivateNs,
    /// Plain bwrap as host uid 0 (only the read-only `/proc` of its command line).
    Plain,
    /// bwrap does not start at all; why.
    Unavailable(String),
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl HostPrep {
    /// What a sandbox over `mounts` needs here, by [`host_mode`]; `None` when nothing. The uid
    /// drop falls back to [`HostMode::PrivateNs`] (logged) when `mounts` cannot be idmapped.
    pub(crate) fn for_caller(mounts: &SandboxMounts, extra: &Extra<'_>) -> Option<HostPrep> {
        match host_mode() {
            HostMode::Caller | HostMode::Plain | HostMode::Unavailable(_) => None,
            HostMode::PrivateNs => Some(HostPrep::private_ns()),
            HostMode::DropUid(ns) => match HostPrep::dropping(mounts, extra, ns.as_raw_fd()) {
                Ok(prep) => Some(prep),
                Err(e) => {
                    tracing::warn!(
                        "this sandbox runs as host uid 0 (procfs and device nodes read-only): {e}"
                    );
                    Some(HostPrep::private_ns())
                }
            },
        }
    }

    /// The private mount namespace and read-only device nodes.
    fn private_ns() -> HostPrep {
        HostPrep {
            devices: DEVICES
                .iter()
                .filter_map(|d| Some((CString::new(*d).ok()?, mount_flags(d)?)))
                .collect(),
            idmapped: None,
        }
    }

    /// Everything, with the idmapping user namespace `userns`.
    fn dropping(mounts: &SandboxMounts, extra: &Extra<'_>, userns: RawFd) -> io::Result<HostPrep> {
        let mut prep = HostPrep::private_ns();
        prep.idmapped = Some(idmap(mounts, extra, userns)?);
        Ok(prep)
    }

    /// Whether bwrap will run as [`SANDBOX_UID`] and must bind the staged paths.
    pub(crate) fn drops_uid(&self) -> bool {
        self.idmapped.is_some()
    }

    /// The child's step. It holds the idmapped mounts until the command that runs it is dropped.
    pub(crate) fn into_step(self) -> Step {
        Arc::new(move || self.in_child())
    }

    /// Runs in the forked child: raw syscalls only, nothing allocates (an error is only its errno,
    /// which is all `spawn` reports anyway).
    fn in_child(&self) -> io::Result<()> {
        // SAFETY: unshare, mount, mkdir, move_mount, setgroups, setres[ug]id and prctl are
        // async-signal-safe syscalls on NUL-terminated strings and descriptors prepared before
        // the fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            let none = std::ptr::null::<libc::c_char>();
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            for (dev, flags) in &self.devices {
                let remount = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags;
                if libc::mount(
                    dev.as_ptr(),
                    dev.as_ptr(),
                    none,
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                    || libc::mount(none, dev.as_ptr(), none, remount, std::ptr::null()) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            let Some(ids) = &self.idmapped else {
                return Ok(());
            };
            if libc::mount(
                c"tmpfs".as_ptr(),
                STAGE.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"mode=1777,size=1m".as_ptr().cast(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            for (fd, at) in &ids.mounts {
                let fd = fd.as_raw_fd();
                if libc::mkdir(at.as_ptr(), 0o755) != 0
                    || libc::syscall(
                        libc::SYS_move_mount,
                        fd,
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        at.as_ptr(),
                        libc::MOVE_MOUNT_F_EMPTY_PATH,
                    ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // setuid clears the parent-death signal; keep the one set before.
            let mut pdeath: libc::c_int = 0;
            libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeath as *mut libc::c_int);
            let id = SANDBOX_UID;
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(id, id, id) != 0
                || libc::setresuid(id, id, id) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if pdeath != 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, pdeath as libc::c_ulong);
            }
        }
        Ok(())
    }
}

/// Besides the work tree and git directory, what a sandbox mounts from the host.
#[derive(Default)]
pub(crate) struct Extra<'a> {
    /// The run's state directory (`super::state`), writable.
    pub state: Option<&'a Path>,
    /// The repository's cache, writable.
    pub cache: Option<&'a Path>,
    /// Read-only host paths, in order (staged as [`staged_ro`]).
    pub ro: Vec<&'a Path>,
}

/// A detached copy of each mount: the work tree, git directory (read-only), state and cache
/// idmapped; the read-only paths as they are (recursively, read-only).
fn idmap(mounts: &SandboxMounts, extra: &Extra<'_>, userns: RawFd) -> io::Result<Idmapped> {
    let at = |s: &str| CString::new(s).map_err(io::Error::other);
    let mut list = vec![
        (
            idmapped_clone(&mounts.work_tree, Some(userns), false)?,
            at(STAGED_WORK_TREE)?,
        ),
        (
            idmapped_clone(&mounts.git_dir, Some(userns), true)?,
            at(STAGED_GIT_DIR)?,
        ),
    ];
    if let Some(state) = extra.state {
        list.push((
            idmapped_clone(state, Some(userns), false)?,
            at(STAGED_STATE)?,
        ));
    }
    if let Some(cache) = extra.cache {
        list.push((
            idmapped_clone(cache, Some(userns), false)?,
            at(STAGED_CACHE)?,
        ));
    }
    for (n, ro) in extra.ro.iter().enumerate() {
        list.push((idmapped_clone(ro, None, true)?, at(&staged_ro(n))?));
    }
    Ok(Idmapped { mounts: list })
}

/// A detached clone of the mount at `path`: idmapped through `userns` when given (else recursive,
/// submounts included), read-only when asked.
fn idmapped_clone(path: &Path, userns: Option<RawFd>, read_only: bool) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if userns.is_none() {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: open_tree reads a NUL-terminated path and returns a new descriptor we own.
    let raw = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if raw < 0 {
        return Err(last_err(&format!(
            "cloning the mount of {}",
            path.display()
        )));
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let attr = libc::mount_attr {
        attr_set: if userns.is_some() {
            libc::MOUNT_ATTR_IDMAP
        } else {
            0
        } | if read_only {
            libc::MOUNT_ATTR_RDONLY
        } else {
            0
        },
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.unwrap_or(0) as u64,
    };
    // SAFETY: mount_setattr reads `attr` (its size is passed) on the descriptor we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH
                | if userns.is_none() {
                    libc::AT_RECURSIVE
                } else {
                    0
                },
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(last_err(&format!(
            "idmapping {} (its file system may not support idmapped mounts)",
            path.display()
        )));
    }
    // Above the numbers the child's descriptors are moved to (3, 4), so they survive until used.
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own.
    let high = unsafe { libc::fcntl(tree.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if high < 0 {
        return Err(last_err("moving a descriptor"));
    }
    // SAFETY: `high` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// The mount flags of the mount `path` is on, as `mount(2)` flags; `None` if it does not exist.
fn mount_flags(path: &str) -> Option<libc::c_ulong> {
    let c = CString::new(path).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs fills `st` from a NUL-terminated path; read only on success.
    let st = unsafe {
        if libc::statvfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    Some(
        pairs
            .iter()
            .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
            .fold(libc::MS_NOSUID, |acc, (_, ms)| acc | ms),
    )
}

/// How bwrap is started for a root caller here: the strongest way that starts a sandbox, probed
/// once per process; [`HostMode::Caller`] when not root (nothing probed).
pub(crate) fn host_mode() -> &'static HostMode {
    static MODE: OnceLock<HostMode> = OnceLock::new();
    MODE.get_or_init(|| {
        if !is_root() {
            return HostMode::Caller;
        }
        let drop_err = match idmap_userns() {
            Ok(ns) => {
                let fd = ns.as_raw_fd();
                match super::bwrap::probe_with(|m| {
                    HostPrep::dropping(m, &Extra::default(), fd).map(Some)
                }) {
                    Ok(()) => return HostMode::DropUid(ns),
                    Err(e) => format!("bubblewrap cannot run as uid {SANDBOX_UID} here: {e}"),
                }
            }
            Err(e) => e,
        };
        let ns_err = match super::bwrap::probe_with(|_| Ok(Some(HostPrep::private_ns()))) {
            Ok(()) => {
                tracing::warn!(
                    "sandboxes run as host uid 0 (procfs and device nodes read-only): {drop_err}"
                );
                return HostMode::PrivateNs;
            }
            Err(e) => e,
        };
        match super::bwrap::probe_with(|_| Ok(None)) {
            Ok(()) => {
                tracing::warn!(
                    "sandboxes run as host uid 0 with host device nodes writable ({drop_err}; no \
                     private mount namespace: {ns_err}); procfs is read-only"
                );
                HostMode::Plain
            }
            Err(e) => HostMode::Unavailable(e),
        }
    })
}

/// A user namespace mapping uid and gid 0 to [`SANDBOX_UID`], held by a descriptor (made by a
/// short-lived child that unshares it, as a namespace needs a process to be created in).
fn idmap_userns() -> Result<OwnedFd, String> {
    let mut cmd = std::process::Command::new(super::shell());
    cmd.args(["-c", "read -r _"])
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: unshare is an async-signal-safe syscall.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("no user namespace for idmapped mounts: {e}"))?;
    let proc_dir = format!("/proc/{}", child.id());
    let map = format!("0 {SANDBOX_UID} 1");
    let result = std::fs::write(format!("{proc_dir}/uid_map"), &map)
        .and_then(|_| std::fs::write(format!("{proc_dir}/gid_map"), &map))
        .and_then(|_| std::fs::File::open(format!("{proc_dir}/ns/user")))
        .map(OwnedFd::from)
        .map_err(|e| format!("cannot set up the idmapping user namespace: {e}"));
    let _ = child.kill();
    let _ = child.wait();
    result
}
