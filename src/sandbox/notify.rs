//! The plumbing of the landlock backend's seccomp supervisor: handing the listener descriptor from
//! the confined child to the host, the supervisor thread, and reading a notified call's arguments.
//!
//! Why a thread per command: the child installs its filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`
//! in `pre_exec` and sends the listener over a socket pair (`SCM_RIGHTS`) before exec; the host
//! receives it right after the spawn (exec has happened by then, so it is already queued) and
//! gives it to a dedicated OS thread, which never touches the tokio runtime.
//!
//! Invariants: the listener exists only in the supervisor thread (the child closes its copy before
//! exec, every other copy is close-on-exec); the thread ends when no task uses the filter any more
//! (`POLLHUP`: the command's processes have ended) and its listener closes with it, so a call
//! still waiting, or made later, fails with `ENOSYS` instead of hanging. A call is never let
//! through (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`): the supervisor answers every call itself, so
//! nothing it read from the caller's memory can change under it. The thread keeps no capability
//! but `CAP_SYS_PTRACE` (to read the caller's memory where Yama would refuse), so what it does on
//! a command's behalf the kernel checks against the command's own uid, as the command's own call
//! would have been.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::metadata::{self, Roots};

/// A socket pair: the child sends its listener on `child`, the host receives it on `parent`.
pub(crate) struct Channel {
    parent: OwnedFd,
    child: OwnedFd,
}

impl Channel {
    pub(crate) fn new() -> std::io::Result<Channel> {
        let mut fds = [-1 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into the array we pass.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: two fresh descriptors we now own.
        let (parent, child) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Channel { parent, child })
    }

    /// The end the host receives on.
    pub(crate) fn parent_fd(&self) -> RawFd {
        self.parent.as_raw_fd()
    }

    /// Another descriptor of the child's end (close-on-exec), to hand to a spawn made later.
    pub(crate) fn child_copy(&self) -> std::io::Result<OwnedFd> {
        self.child.try_clone()
    }

    /// The end the child writes to (close-on-exec: gone once the command runs).
    pub(crate) fn child_fd(&self) -> RawFd {
        self.child.as_raw_fd()
    }

    /// The listener the child sent; the spawn must have succeeded (so the child sent it).
    pub(crate) fn receive(self) -> std::io::Result<OwnedFd> {
        drop(self.child);
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut space = [0u64; 4];
        // SAFETY: a zeroed msghdr is valid; its pointers are set to live buffers below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&space) as _;
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe {
            libc::recvmsg(
                self.parent.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel filled the control buffer; CMSG_* only walk it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                return Ok(OwnedFd::from_raw_fd(fd));
            }
        }
        Err(std::io::Error::other(
            "the sandboxed command sent no seccomp listener",
        ))
    }
}

/// Sends `fd` over the socket `sock`. Async-signal-safe: only stack buffers and one syscall.
///
/// # Safety
/// Both must be open descriptors.
pub(crate) unsafe fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut space = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; its pointers are set to live stack buffers, and the control
    // buffer holds CMSG_SPACE(sizeof(int)) bytes, aligned for cmsghdr.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Starts the supervisor thread for one command's `listener`.
pub(crate) fn supervise(listener: OwnedFd, roots: Arc<Roots>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tb-seccomp-notify".into())
        .spawn(move || serve(listener, &roots))?;
    Ok(())
}

fn serve(listener: OwnedFd, roots: &Roots) {
    if let Err(e) = keep_only_ptrace() {
        // Never act with the host's privileges: callers get ENOSYS once the listener closes.
        tracing::warn!("seccomp supervisor: could not drop capabilities ({e}); refusing");
        return;
    }
    let fd = listener.as_raw_fd();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if pfd.revents & libc::POLLIN == 0 {
            if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                break; // no task uses the filter any more
            }
            continue;
        }
        // SAFETY: the kernel requires a zeroed buffer of this struct's size.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills the struct we pass.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // The caller died or was interrupted before we took its call.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => break,
            }
        }
        let call = Call {
            listener: fd,
            id: notif.id,
            pid: notif.pid,
            nr: i64::from(notif.data.nr),
            args: notif.data.args,
            mem: std::cell::OnceCell::new(),
        };
        let (val, error) = match metadata::handle(&call, roots) {
            Ok(v) => (v, 0),
            Err(errno) => (0, -errno),
        };
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val,
            error,
            flags: 0,
        };
        // SAFETY: SEND reads the struct we pass. ENOENT (the caller is gone) needs nothing.
        unsafe {
            libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp);
        }
    }
}

/// Drops every capability of this thread (only) but `CAP_SYS_PTRACE` where it has it.
fn keep_only_ptrace() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const CAP_SYS_PTRACE: u32 = 19;
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data elements, for the calling thread.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let keep = data[0].permitted & (1 << CAP_SYS_PTRACE);
        let new = [
            Data {
                effective: keep,
                permitted: keep,
                inheritable: 0,
            },
            Data::default(),
        ];
        if libc::syscall(libc::SYS_capset, &header, new.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One notified call: its number and arguments, and access to the caller's descriptors, working
/// directory and memory. Every access through `/proc/<pid>` is followed by a check that the call
/// is still pending, so a recycled pid cannot stand in for the caller.
pub(crate) struct Call {
    listener: RawFd,
    id: u64,
    pid: u32,
    pub nr: i64,
    pub args: [u64; 6],
    /// The caller's memory, opened on first use.
    mem: std::cell::OnceCell<std::fs::File>,
}

impl Call {
    fn still_pending(&self) -> Result<(), i32> {
        let mut id = self.id;
        // SAFETY: ID_VALID reads one u64.
        let r = unsafe { libc::ioctl(self.listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) };
        if r == 0 { Ok(()) } else { Err(libc::ENOENT) }
    }

    /// `/proc/<pid>/<rel>` (`cwd`, `fd/N`) opened `O_PATH`, following that magic link: the
    /// object the caller's descriptor or working directory refers to.
    pub(crate) fn open_proc_link(&self, rel: &str) -> Result<OwnedFd, i32> {
        let path = format!("/proc/{}/{rel}\0", self.pid);
        // SAFETY: a NUL-terminated path; the result is owned at once.
        let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            // A descriptor the caller does not have is its EBADF.
            return Err(if rel.starts_with("fd/") {
                libc::EBADF
            } else {
                errno()
            });
        }
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        self.still_pending()?;
        Ok(fd)
    }

    fn mem(&self) -> Result<&std::fs::File, i32> {
        if let Some(f) = self.mem.get() {
            return Ok(f);
        }
        let f = std::fs::File::open(format!("/proc/{}/mem", self.pid)).map_err(|_| libc::EPERM)?;
        self.still_pending()?;
        Ok(self.mem.get_or_init(|| f))
    }

    /// A duplicate of the caller's descriptor `fd` (`pidfd_getfd`): the same open file, so what
    /// is done on it is done on the caller's.
    pub(crate) fn take_fd(&self, fd: u64) -> Result<OwnedFd, i32> {
        let fd = i32::try_from(fd).map_err(|_| libc::EBADF)?;
        // SAFETY: plain syscalls; the results are checked and owned at once.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if pidfd < 0 {
            return Err(errno());
        }
        // SAFETY: a fresh descriptor.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        self.still_pending()?;
        // SAFETY: as above.
        let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        if dup < 0 {
            return Err(errno());
        }
        // SAFETY: a fresh descriptor (pidfd_getfd sets close-on-exec).
        Ok(unsafe { OwnedFd::from_raw_fd(dup as RawFd) })
    }

    /// `len` bytes at `addr` in the caller's memory.
    pub(crate) fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; len];
        if len == 0 {
            return Ok(buf);
        }
        let mem = self.mem()?;
        mem.read_exact_at(&mut buf, addr)
            .map_err(|_| libc::EFAULT)?;
        Ok(buf)
    }

    /// The NUL-terminated string at `addr`, at most `max` bytes before the NUL (`None` when longer).
    pub(crate) fn read_cstr(&self, addr: u64, max: usize) -> Result<Option<Vec<u8>>, i32> {
        if addr == 0 {
            return Err(libc::EFAULT);
        }
        let mem = self.mem()?;
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() <= max {
            // Never read across a page boundary we do not need: the next page may be unmapped.
            let want = (4096 - (at % 4096) as usize).min(max + 1 - out.len());
            let mut buf = vec![0u8; want];
            let n = mem.read_at(&mut buf, at).map_err(|_| libc::EFAULT)?;
            if n == 0 {
                return Err(libc::EFAULT);
            }
            if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
                out.extend_from_slice(&buf[..end]);
                return Ok(Some(out));
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
        Ok(None)
    }
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use super::super::landlock::Confinement;
    use super::super::{ExecRequest, LandlockSandbox, Sandbox, SandboxMounts, SandboxSettings};
    use super::*;

    fn landlock_here() -> bool {
        match super::super::landlock::probe() {
            Ok(()) => true,
            Err(e) => {
                eprintln!("CANNOT RUN: the landlock backend does not work here: {e}");
                false
            }
        }
    }

    fn scratch() -> (tempfile::TempDir, SandboxMounts) {
        let tmp = tempfile::tempdir().unwrap();
        let mounts = SandboxMounts {
            work_tree: tmp.path().join("repo"),
            git_dir: tmp.path().join("git"),
        };
        std::fs::create_dir_all(&mounts.work_tree).unwrap();
        std::fs::create_dir_all(&mounts.git_dir).unwrap();
        (tmp, mounts)
    }

    fn supervisor_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("tb-seccomp-noti"))
            })
            .count()
    }

    /// Each command's supervisor ends when the command's processes have ended — normally, by
    /// timeout, or with a background child still using the filter for a while.
    #[tokio::test]
    async fn supervisor_threads_end_with_their_commands() {
        if !landlock_here() {
            return;
        }
        let (_tmp, mounts) = scratch();
        let sandbox = LandlockSandbox::new(mounts, &SandboxSettings::default()).unwrap();
        let run = |command: &str, secs: u64| ExecRequest {
            command: command.into(),
            timeout: Duration::from_secs(secs),
        };
        let cancel = CancellationToken::new();
        // While a command runs, its supervisor is there (so the check below is not vacuous).
        let watch = async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while supervisor_threads() == 0 {
                assert!(
                    Instant::now() < deadline,
                    "no supervisor thread while a command ran"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let first = run(
            "echo x > f && chmod 600 f && touch f && sleep 1 && stat -c %a f",
            60,
        );
        let (out, ()) = tokio::join!(sandbox.exec(&first, &cancel), watch);
        let out = out.unwrap();
        assert_eq!(
            (out.exit_code, out.output.trim()),
            (0, "600"),
            "{}",
            out.output
        );
        let out = sandbox
            .exec(&run("chmod 640 f; sleep 60", 1), &cancel)
            .await
            .unwrap();
        assert!(out.terminated.is_some(), "{out:?}");
        let out = sandbox
            .exec(&run("(sleep 0.3; chmod 644 f) & echo started", 60), &cancel)
            .await
            .unwrap();
        assert!(out.output.contains("started"), "{}", out.output);
        let deadline = Instant::now() + Duration::from_secs(30);
        while supervisor_threads() > 0 {
            assert!(
                Instant::now() < deadline,
                "a supervisor thread outlived its command"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// With the listener gone (a supervisor that died), a metadata call fails at once with
    /// `ENOSYS` instead of waiting forever.
    #[test]
    fn a_call_without_its_supervisor_fails_instead_of_hanging() {
        if !landlock_here() {
            return;
        }
        let (tmp, mounts) = scratch();
        std::fs::write(mounts.work_tree.join("f"), "x").unwrap();
        let confine =
            Confinement::build(&mounts, tmp.path(), super::super::landlock::NetAccess::None)
                .unwrap();
        let channel = Channel::new().unwrap();
        let sock = channel.child_fd();
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "sleep 0.2; chmod 600 f; echo rc=$?"])
            .current_dir(&mounts.work_tree)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // SAFETY: Confinement::enter is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || confine.enter(Some(sock)));
        }
        let mut child = cmd.spawn().unwrap();
        drop(channel.receive().unwrap()); // the supervisor "dies" before the call
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the metadata call hung without a supervisor");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("rc=1") && text.contains("not implemented"),
            "{text}"
        );
    }
}
