//! Helpers of `tests/sandbox_hostmeta.rs`: running a test again as the ordinary user, and what
//! a host file's metadata is (to compare before and after an attack).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ipc;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Set in the copy of this test binary that runs as the ordinary user.
pub const CHILD_ENV: &str = "TB_HOSTMETA_CHILD";
pub const ORDINARY_USER: &str = "tbuser";

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The uid and gid of `name`, from the passwd database.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).unwrap();
    // SAFETY: getpwnam with a valid C string; the result is read at once (single-threaded use of
    // the static buffer is acceptable in a test).
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    }
}

/// When this process is root (and not already the child), runs `test` again in a fresh process
/// as the ordinary user (`tbuser`, else `nobody`) with a HOME and TMPDIR it owns; says why if
/// that run failed or did not run the test. A non-root run is already the ordinary-user case.
pub fn rerun_as_ordinary_user(test: &str) -> Option<String> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return None;
    }
    if euid() != 0 {
        eprintln!(
            "running as uid {}: this run is the ordinary-user case",
            euid()
        );
        return None;
    }
    let (user, (uid, gid)) = [ORDINARY_USER, "nobody"]
        .into_iter()
        .find_map(|u| user_ids(u).map(|ids| (u, ids)))
        .expect("running as root, the ordinary-user half needs the user `tbuser` or `nobody`");
    let home = tempfile::Builder::new()
        .prefix("tb-hostmeta-user-")
        .tempdir()
        .unwrap();
    std::os::unix::fs::chown(home.path(), Some(uid), Some(gid)).unwrap();
    // Executed through a descriptor opened as root: the user needs no access to the directories
    // on the way to the test binary (a checkout under /root, say), only its execute bit.
    let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let program = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&exe));
    let out = std::process::Command::new(program)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD_ENV, "1")
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(home.path())
        .uid_gid(uid, gid)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- {test} as {user} (uid {uid}) ---\n{stdout}\n{stderr}--- end ---");
    (!(out.status.success() && stdout.contains("1 passed")))
        .then(|| format!("{test} failed as the ordinary user {user} (output above)"))
}

/// Fails with every collected failure, after the ordinary-user run of `test`.
pub fn conclude(test: &str, mut failures: Vec<String>) {
    failures.extend(rerun_as_ordinary_user(test));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

trait UidGid {
    fn uid_gid(&mut self, uid: u32, gid: u32) -> &mut Self;
}
impl UidGid for std::process::Command {
    fn uid_gid(&mut self, uid: u32, gid: u32) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // std drops the supplementary groups when root switches uid.
        self.gid(gid).uid(uid)
    }
}

/// Everything about a host file a sandboxed command must not be able to change.
#[derive(Debug, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub mtime: (i64, i64),
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub flags: Option<libc::c_long>,
}

pub fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: buffers of the sizes passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
    {
        let cname = CString::new(name).unwrap();
        let mut value = vec![0u8; 4096];
        // SAFETY: as above.
        let v = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        value.truncate(v.max(0) as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    out
}

/// The inode flags (`lsattr`), where the filesystem has them.
pub fn inode_flags(path: &Path) -> Option<libc::c_long> {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    let f = std::fs::File::open(path).ok()?;
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            FS_IOC_GETFLAGS,
            &mut flags,
        )
    };
    (r == 0).then_some(flags)
}

pub fn meta(path: &Path) -> Meta {
    let m = std::fs::symlink_metadata(path).unwrap();
    Meta {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        mtime: (m.mtime(), m.mtime_nsec()),
        xattrs: xattrs(path),
        flags: inode_flags(path),
    }
}

/// A host file as an attacker would find it: the caller's, mode 0644, an old mtime and an xattr.
pub fn plant_victim(path: &Path) {
    std::fs::write(path, "host file\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800); // 2000-01-01
    f.set_times(
        std::fs::FileTimes::new()
            .set_modified(old)
            .set_accessed(old),
    )
    .unwrap();
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C strings and a 4-byte value.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.keep".as_ptr(),
            c"kept".as_ptr().cast(),
            4,
            0,
        )
    };
    assert_eq!(r, 0, "the test needs user xattrs on {}", path.display());
}

pub fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

pub fn mtime_of(p: &Path) -> i64 {
    std::fs::symlink_metadata(p).unwrap().mtime()
}
