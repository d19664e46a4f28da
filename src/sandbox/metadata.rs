//! What the landlock backend allows of the calls Landlock does not govern: changing a file's mode,
//! owner, times or extended attributes (seccomp sends them here, see `super::notify`).
//!
//! Why: Landlock decides who may open and change a file's *contents*; `chmod`, `chown`, `utime`
//! and `setxattr` on any file the caller owns (every host file, for a root caller) went through,
//! by path or through a descriptor opened read-only. Ordinary work needs them inside the work tree
//! (`chmod +x`, `touch`, `cp -p`, `tar x`, installers), so they are performed here, on the
//! caller's behalf, only for objects beneath the work tree or the private temporary directory.
//!
//! Invariants:
//! - The object is resolved once, the way the kernel would for the caller (its working directory
//!   or descriptor via `/proc/<pid>`, magic links refused), into an `O_PATH` descriptor, and the
//!   operation is applied to that descriptor — never to a path looked up again, never by letting
//!   the caller's call continue.
//! - That object must have a name beneath a root: its path (from the descriptor) minus the root's
//!   canonical path, opened from the root's descriptor with `RESOLVE_BENEATH` and no symlinks,
//!   must be the same inode. Otherwise `EPERM`.
//! - A non-directory with more than one link is refused (`EPERM`) unless the change is a no-op:
//!   another name could be a host file's (Landlock refuses links from outside, so only the host
//!   could have made one; this keeps the rule true even then).
//! - Set-user-ID and set-group-ID bits are dropped from a non-directory's new mode.
//! - The supervisor thread has no capability but `CAP_SYS_PTRACE`, so the kernel's own checks
//!   (owner, groups, `user.` xattrs only) apply as they would to the caller, which has none.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::notify::{Call, errno};
use super::seccomp::{SYS_FCHMODAT2, SYS_REMOVEXATTRAT, SYS_SETXATTRAT};

const PATH_MAX: usize = 4096;
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const AT_FLAGS: u64 = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;

/// The directories beneath which metadata may change, each as its canonical path and a descriptor.
pub(crate) struct Roots {
    roots: Vec<(Vec<u8>, OwnedFd)>,
    /// Mode allowlist: the proxy's loopback port, the one `connect` destination.
    connect_port: Option<u16>,
}

impl Roots {
    pub(crate) fn new(dirs: &[&Path]) -> std::io::Result<Roots> {
        let mut roots = Vec::new();
        for dir in dirs {
            let canonical = std::fs::canonicalize(dir)?;
            let c = CString::new(canonical.as_os_str().as_bytes())?;
            // SAFETY: a NUL-terminated path; the descriptor is owned at once.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            roots.push((canonical.into_os_string().into_vec(), fd));
        }
        Ok(Roots {
            roots,
            connect_port: None,
        })
    }

    /// Lets `connect` reach `127.0.0.1:port` only (see [`super::netguard`]).
    pub(crate) fn with_connect_port(mut self, port: Option<u16>) -> Roots {
        self.connect_port = port;
        self
    }

    /// The status of `obj` if it has a name beneath a root (see the module invariants).
    fn inside(&self, obj: &OwnedFd) -> Result<libc::stat, i32> {
        let st = fstat(obj)?;
        let link = std::fs::read_link(format!("/proc/thread-self/fd/{}", obj.as_raw_fd()))
            .map_err(|_| libc::EPERM)?;
        let link = link.as_os_str().as_bytes();
        for (root, root_fd) in &self.roots {
            let Some(rest) = link.strip_prefix(root.as_slice()) else {
                continue;
            };
            let named = if rest.is_empty() {
                fstat(root_fd)?
            } else if let Some(rel) = rest.strip_prefix(b"/") {
                let Ok(again) = open_beneath(root_fd, rel) else {
                    continue;
                };
                fstat(&again)?
            } else {
                continue; // "/ws-other" is not beneath "/ws"
            };
            if (named.st_dev, named.st_ino) == (st.st_dev, st.st_ino) {
                return Ok(st);
            }
        }
        Err(libc::EPERM)
    }
}

fn fstat(fd: &OwnedFd) -> Result<libc::stat, i32> {
    // SAFETY: fstat fills the struct; a zeroed stat is a valid initial value.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
            return Err(errno());
        }
        Ok(st)
    }
}

fn openat2(dir: libc::c_int, path: &[u8], flags: i32, resolve: u64) -> Result<OwnedFd, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: open_how is plain data; zeroed is valid and the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: a NUL-terminated path and an open_how of the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `rel` beneath `root`, with no symlink, magic link or mount crossing anywhere on the way.
fn open_beneath(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, i32> {
    openat2(
        root.as_raw_fd(),
        rel,
        libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV,
    )
}

/// What a call names: one of the caller's descriptors, or a path (relative to a descriptor or
/// its working directory).
enum Target {
    Fd(i64),
    Path {
        dirfd: i64,
        addr: u64,
        follow: bool,
        empty_ok: bool,
    },
}

fn at_fdcwd(fd: i64) -> bool {
    fd as i32 == libc::AT_FDCWD
}

fn path_at(dirfd: u64, addr: u64, flags: u64) -> Result<Target, i32> {
    if flags & !AT_FLAGS != 0 {
        return Err(libc::EINVAL);
    }
    Ok(Target::Path {
        dirfd: dirfd as i32 as i64,
        addr,
        follow: flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0,
        empty_ok: flags & libc::AT_EMPTY_PATH as u64 != 0,
    })
}

fn path(addr: u64, follow: bool) -> Target {
    Target::Path {
        dirfd: libc::AT_FDCWD as i64,
        addr,
        follow,
        empty_ok: false,
    }
}

fn fd(arg: u64) -> Target {
    Target::Fd(arg as i32 as i64)
}

/// The caller's object as an `O_PATH` descriptor, resolved as the kernel would for the caller.
fn resolve(call: &Call, target: Target) -> Result<OwnedFd, i32> {
    let (dirfd, addr, follow, empty_ok) = match target {
        Target::Fd(fd) if fd < 0 => return Err(libc::EBADF),
        Target::Fd(fd) => return call.open_proc_link(&format!("fd/{fd}")),
        Target::Path {
            dirfd,
            addr,
            follow,
            empty_ok,
        } => (dirfd, addr, follow, empty_ok),
    };
    let path = if addr == 0 && empty_ok {
        Vec::new()
    } else {
        call.read_cstr(addr, PATH_MAX - 1)?
            .ok_or(libc::ENAMETOOLONG)?
    };
    let base = |dirfd: i64| {
        if at_fdcwd(dirfd) {
            call.open_proc_link("cwd")
        } else if dirfd < 0 {
            Err(libc::EBADF)
        } else {
            call.open_proc_link(&format!("fd/{dirfd}"))
        }
    };
    if path.is_empty() {
        return if empty_ok {
            base(dirfd)
        } else {
            Err(libc::ENOENT)
        };
    }
    let flags = if follow { 0 } else { libc::O_NOFOLLOW };
    // `/proc/self/fd/N` (how libc emulates calls on `O_PATH` descriptors) names the caller's
    // descriptor; any other magic link would be resolved as the supervisor's: refused.
    if let Some((fd, rest)) = own_fd_path(&path) {
        let obj = call.open_proc_link(&format!("fd/{fd}"))?;
        if rest.is_empty() {
            return Ok(obj);
        }
        return openat2(obj.as_raw_fd(), rest, flags, libc::RESOLVE_NO_MAGICLINKS);
    }
    if path.starts_with(b"/") {
        openat2(libc::AT_FDCWD, &path, flags, libc::RESOLVE_NO_MAGICLINKS)
    } else {
        let dir = base(dirfd)?;
        openat2(dir.as_raw_fd(), &path, flags, libc::RESOLVE_NO_MAGICLINKS)
    }
}

/// `/proc/self/fd/N[/rest]`, `/proc/thread-self/fd/N[/rest]` or `/dev/fd/N[/rest]`: the
/// caller's descriptor N and what follows it.
fn own_fd_path(path: &[u8]) -> Option<(u32, &[u8])> {
    let rest = [
        &b"/proc/self/fd/"[..],
        b"/proc/thread-self/fd/",
        b"/dev/fd/",
    ]
    .iter()
    .find_map(|p| path.strip_prefix(*p))?;
    let end = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
    let fd = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    let tail = rest[end..].strip_prefix(b"/").unwrap_or(&rest[end..]);
    Some((fd, tail))
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn is_symlink(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// Refuses a change to a non-directory with other names (see the module invariants).
fn single_name(st: &libc::stat, no_op: bool) -> Result<(), i32> {
    if is_dir(st) || st.st_nlink <= 1 || no_op {
        Ok(())
    } else {
        Err(libc::EPERM)
    }
}

fn ok_or_errno(r: libc::c_long) -> Result<i64, i32> {
    if r < 0 { Err(errno()) } else { Ok(0) }
}

fn chmod(obj: &OwnedFd, st: &libc::stat, mode: u64) -> Result<i64, i32> {
    let mut mode = (mode as u32) & 0o7777;
    if !is_dir(st) {
        mode &= !(libc::S_ISUID | libc::S_ISGID);
    }
    single_name(st, mode == st.st_mode & 0o7777)?;
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH acts on the descriptor itself.
    ok_or_errno(unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            obj.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    })
}

fn chown(obj: &OwnedFd, st: &libc::stat, uid: u64, gid: u64) -> Result<i64, i32> {
    let (uid, gid) = (uid as u32, gid as u32);
    let no_op = (uid == u32::MAX || uid == st.st_uid) && (gid == u32::MAX || gid == st.st_gid);
    single_name(st, no_op)?;
    // SAFETY: as in `chmod`.
    ok_or_errno(unsafe {
        libc::fchownat(
            obj.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    } as libc::c_long)
}

fn set_times(
    obj: &OwnedFd,
    st: &libc::stat,
    times: Option<[libc::timespec; 2]>,
) -> Result<i64, i32> {
    single_name(st, false)?;
    let ptr = times.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    // SAFETY: as in `chmod`; `ptr` is null or two timespecs.
    ok_or_errno(unsafe {
        libc::utimensat(
            obj.as_raw_fd(),
            c"".as_ptr(),
            ptr,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    } as libc::c_long)
}

/// The object's path through our own descriptor; xattr calls on `O_PATH` descriptors need it.
/// A symlink has no `user.` attributes and the caller no capability for any other: `EPERM`.
fn xattr_path(obj: &OwnedFd, st: &libc::stat) -> Result<CString, i32> {
    if is_symlink(st) {
        return Err(libc::EPERM);
    }
    CString::new(format!("/proc/thread-self/fd/{}", obj.as_raw_fd())).map_err(|_| libc::EINVAL)
}

fn xattr_name(call: &Call, addr: u64) -> Result<CString, i32> {
    match call.read_cstr(addr, XATTR_NAME_MAX)? {
        Some(n) if !n.is_empty() => CString::new(n).map_err(|_| libc::ERANGE),
        _ => Err(libc::ERANGE),
    }
}

struct XattrValue {
    value: Vec<u8>,
    flags: i32,
}

fn set_xattr(obj: &OwnedFd, st: &libc::stat, name: &CString, v: &XattrValue) -> Result<i64, i32> {
    single_name(st, false)?;
    let p = xattr_path(obj, st)?;
    // SAFETY: NUL-terminated strings and a value buffer of the length passed.
    ok_or_errno(unsafe {
        libc::setxattr(
            p.as_ptr(),
            name.as_ptr(),
            v.value.as_ptr().cast(),
            v.value.len(),
            v.flags,
        )
    } as libc::c_long)
}

fn remove_xattr(obj: &OwnedFd, st: &libc::stat, name: &CString) -> Result<i64, i32> {
    single_name(st, false)?;
    let p = xattr_path(obj, st)?;
    // SAFETY: NUL-terminated strings.
    ok_or_errno(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) } as libc::c_long)
}

fn xattr_value(call: &Call, addr: u64, size: u64, flags: u64) -> Result<XattrValue, i32> {
    if size as usize > XATTR_SIZE_MAX {
        return Err(libc::E2BIG);
    }
    Ok(XattrValue {
        value: call.read(addr, size as usize)?,
        flags: flags as i32,
    })
}

/// `struct xattr_args` of `setxattrat`: value pointer, size, flags.
fn xattr_args(call: &Call, addr: u64, size: u64) -> Result<XattrValue, i32> {
    if size < 16 {
        return Err(libc::EINVAL);
    }
    let raw = call.read(addr, 16)?;
    let word = |i: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&raw[i..i + n]);
        u64::from_ne_bytes(b)
    };
    xattr_value(call, word(0, 8), word(8, 4), word(12, 4))
}

/// Two `{seconds, sub-second}` pairs from the caller: `timespec`s, or `timeval`s (`micro`), whose
/// microseconds are checked as the kernel does.
fn times(call: &Call, addr: u64, micro: bool) -> Result<Option<[libc::timespec; 2]>, i32> {
    if addr == 0 {
        return Ok(None);
    }
    let raw = call.read(addr, 32)?;
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        i64::from_ne_bytes(b)
    };
    let mut out = [libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }; 2];
    for (i, t) in out.iter_mut().enumerate() {
        let (sec, sub) = (word(2 * i), word(2 * i + 1));
        t.tv_sec = sec as libc::time_t;
        t.tv_nsec = if micro {
            if !(0..1_000_000).contains(&sub) {
                return Err(libc::EINVAL);
            }
            (sub * 1000) as _
        } else {
            sub as _ // the kernel checks the range and UTIME_NOW / UTIME_OMIT
        };
    }
    Ok(Some(out))
}

/// `struct utimbuf`: access and modification seconds.
#[cfg(target_arch = "x86_64")]
fn utimbuf(call: &Call, addr: u64) -> Result<Option<[libc::timespec; 2]>, i32> {
    if addr == 0 {
        return Ok(None);
    }
    let raw = call.read(addr, 16)?;
    let mut out = [libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }; 2];
    for (i, t) in out.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        t.tv_sec = i64::from_ne_bytes(b) as libc::time_t;
    }
    Ok(Some(out))
}

/// `utimensat`/`futimesat` with a null path act on the descriptor itself.
fn times_target(dirfd: u64, addr: u64, flags: u64) -> Result<Target, i32> {
    if addr != 0 {
        return path_at(dirfd, addr, flags);
    }
    if at_fdcwd(dirfd as i32 as i64) {
        return Err(libc::EFAULT);
    }
    if flags != 0 {
        return Err(libc::EINVAL);
    }
    Ok(fd(dirfd))
}

/// Answers one notified call: performs it beneath a root, or returns the errno the caller gets.
pub(crate) fn handle(call: &Call, roots: &Roots) -> Result<i64, i32> {
    let a = call.args;
    let with = |target: Target| -> Result<(OwnedFd, libc::stat), i32> {
        let obj = resolve(call, target)?;
        let st = roots.inside(&obj)?;
        Ok((obj, st))
    };
    match call.nr {
        libc::SYS_connect => match roots.connect_port {
            Some(port) => super::netguard::connect(call, port),
            None => Err(libc::EACCES),
        },
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chmod => with(path(a[0], true)).and_then(|(o, st)| chmod(&o, &st, a[1])),
        libc::SYS_fchmod => with(fd(a[0])).and_then(|(o, st)| chmod(&o, &st, a[1])),
        libc::SYS_fchmodat => {
            with(path_at(a[0], a[1], 0)?).and_then(|(o, st)| chmod(&o, &st, a[2]))
        }
        SYS_FCHMODAT2 => with(path_at(a[0], a[1], a[3])?).and_then(|(o, st)| chmod(&o, &st, a[2])),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chown => with(path(a[0], true)).and_then(|(o, st)| chown(&o, &st, a[1], a[2])),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lchown => with(path(a[0], false)).and_then(|(o, st)| chown(&o, &st, a[1], a[2])),
        libc::SYS_fchown => with(fd(a[0])).and_then(|(o, st)| chown(&o, &st, a[1], a[2])),
        libc::SYS_fchownat => {
            with(path_at(a[0], a[1], a[4])?).and_then(|(o, st)| chown(&o, &st, a[2], a[3]))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_utime => {
            let t = utimbuf(call, a[1])?;
            with(path(a[0], true)).and_then(|(o, st)| set_times(&o, &st, t))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_utimes => {
            let t = times(call, a[1], true)?;
            with(path(a[0], true)).and_then(|(o, st)| set_times(&o, &st, t))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_futimesat => {
            let t = times(call, a[2], true)?;
            with(times_target(a[0], a[1], 0)?).and_then(|(o, st)| set_times(&o, &st, t))
        }
        libc::SYS_utimensat => {
            let target = times_target(a[0], a[1], a[3])?;
            let t = times(call, a[2], false)?;
            with(target).and_then(|(o, st)| set_times(&o, &st, t))
        }
        libc::SYS_setxattr | libc::SYS_lsetxattr | libc::SYS_fsetxattr => {
            let target = match call.nr {
                libc::SYS_fsetxattr => fd(a[0]),
                nr => path(a[0], nr == libc::SYS_setxattr),
            };
            let name = xattr_name(call, a[1])?;
            let value = xattr_value(call, a[2], a[3], a[4])?;
            with(target).and_then(|(o, st)| set_xattr(&o, &st, &name, &value))
        }
        SYS_SETXATTRAT => {
            let target = path_at(a[0], a[1], a[2])?;
            let name = xattr_name(call, a[3])?;
            let value = xattr_args(call, a[4], a[5])?;
            with(target).and_then(|(o, st)| set_xattr(&o, &st, &name, &value))
        }
        libc::SYS_removexattr | libc::SYS_lremovexattr | libc::SYS_fremovexattr => {
            let target = match call.nr {
                libc::SYS_fremovexattr => fd(a[0]),
                nr => path(a[0], nr == libc::SYS_removexattr),
            };
            let name = xattr_name(call, a[1])?;
            with(target).and_then(|(o, st)| remove_xattr(&o, &st, &name))
        }
        SYS_REMOVEXATTRAT => {
            let target = path_at(a[0], a[1], a[2])?;
            let name = xattr_name(call, a[3])?;
            with(target).and_then(|(o, st)| remove_xattr(&o, &st, &name))
        }
        _ => Err(libc::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_descriptor_paths() {
        assert_eq!(own_fd_path(b"/proc/self/fd/3"), Some((3, &b""[..])));
        assert_eq!(
            own_fd_path(b"/proc/thread-self/fd/12/a/b"),
            Some((12, &b"a/b"[..]))
        );
        assert_eq!(own_fd_path(b"/dev/fd/0/"), Some((0, &b""[..])));
        assert_eq!(own_fd_path(b"/proc/self/fd/x"), None);
        assert_eq!(own_fd_path(b"/proc/self/cwd/a"), None);
        assert_eq!(own_fd_path(b"/proc/1/fd/3"), None);
        assert_eq!(own_fd_path(b"proc/self/fd/3"), None);
    }
}
