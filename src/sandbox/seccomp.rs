//! A seccomp-BPF deny-list for sandboxed commands, written as a tiny assembler.
//!
//! Why hand-written: the program is ~80 instructions, has to check the x32 bit and syscall arguments
//! (socket domain, clone flags, sendto address) and must be installable from a forked child where
//! nothing may allocate; a dependency would not make any of that simpler.
//!
//! Invariants: a foreign architecture or the x32 ABI gets `EPERM` for everything; the deny-list
//! (ptrace, mount and the new mount API, namespaces, keyrings, bpf, perf, modules, kexec, reboot,
//! clocks, io_uring — which would bypass every other rule —, handle-based opens, …) gets `EPERM`;
//! `clone3` gets `ENOSYS` so libc falls back to `clone`, whose namespace flags are checked; while the
//! network is off, `socket` works for `AF_UNIX` only, and not even that when Unix sockets are
//! refused (backends that share the host filesystem, where named sockets such as a container
//! runtime's or the init system's are reachable; `socketpair` keeps working); a `chmod` that sets
//! the set-uid or set-gid bit gets `EPERM` (the work tree is on the host's disk).
//!
//! [`host_program`] is for the backend that shares the host's IPC namespace and filesystem
//! (landlock), which Landlock does not cover there: SysV IPC and POSIX message queues, inode-flag
//! ioctls and `file_setattr` get `EPERM`, and every call that changes a file's mode, owner, times or
//! extended attributes goes to the supervisor (`SECCOMP_RET_USER_NOTIF`, see `super::metadata`),
//! which performs it only beneath the work tree or the private temporary directory.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use libc::sock_filter;

/// BPF_LD | BPF_W | BPF_ABS (the first two are zero).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Every namespace flag `clone` could be asked for.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80) as u32; // CLONE_NEWTIME

/// Syscalls no sandboxed command needs and that an escape would.
fn denied() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        SYS_OPEN_TREE_ATTR,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_nfsservctl,
        libc::SYS__sysctl,
    ]);
    v
}

// System calls newer than the libc crate knows on every architecture (the numbers are shared by
// x86_64 and aarch64 since 424).
pub(crate) const SYS_FCHMODAT2: i64 = 452;
pub(crate) const SYS_SETXATTRAT: i64 = 463;
pub(crate) const SYS_REMOVEXATTRAT: i64 = 466;
const SYS_OPEN_TREE_ATTR: i64 = 467;
const SYS_FILE_SETATTR: i64 = 469;

/// Refused where the host's IPC namespace is shared: SysV IPC (the host's segments, queues and
/// semaphores would be readable and writable) and POSIX message queues (`mq_unlink` is not a
/// path operation Landlock sees). `file_setattr` sets inode flags like the ioctls below.
fn denied_on_host() -> Vec<i64> {
    vec![
        libc::SYS_shmget,
        libc::SYS_shmat,
        libc::SYS_shmctl,
        libc::SYS_shmdt,
        libc::SYS_msgget,
        libc::SYS_msgsnd,
        libc::SYS_msgrcv,
        libc::SYS_msgctl,
        libc::SYS_semget,
        libc::SYS_semop,
        libc::SYS_semtimedop,
        libc::SYS_semctl,
        libc::SYS_mq_open,
        libc::SYS_mq_unlink,
        libc::SYS_mq_timedsend,
        libc::SYS_mq_timedreceive,
        libc::SYS_mq_notify,
        libc::SYS_mq_getsetattr,
        SYS_FILE_SETATTR,
    ]
}

/// ioctl requests that change inode flags or attributes the owner may set on a file opened even
/// read-only (`chattr`, project ids, fs-verity, which makes a file read-only for good).
const DENIED_IOCTLS: [u32; 7] = [
    0x4008_6602, // FS_IOC_SETFLAGS
    0x4004_6602, // FS_IOC32_SETFLAGS
    0x401c_5820, // FS_IOC_FSSETXATTR
    0x4008_7602, // FS_IOC_SETVERSION
    0x4004_7602, // FS_IOC32_SETVERSION
    0x4080_6685, // FS_IOC_ENABLE_VERITY
    0x800c_6613, // FS_IOC_SET_ENCRYPTION_POLICY
];

/// Calls that change a file's mode, owner, times or extended attributes: Landlock does not
/// govern them, so the supervisor decides (`super::metadata`).
pub(crate) fn notified() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        SYS_FCHMODAT2,
        libc::SYS_fchown,
        libc::SYS_fchownat,
        libc::SYS_utimensat,
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        libc::SYS_removexattr,
        libc::SYS_lremovexattr,
        libc::SYS_fremovexattr,
        SYS_SETXATTRAT,
        SYS_REMOVEXATTRAT,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_utime,
        libc::SYS_utimes,
        libc::SYS_futimesat,
    ]);
    v
}

/// What the filter should allow besides the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Network sockets; `false` refuses every family but `AF_UNIX`.
    pub network: bool,
    /// `socket(AF_UNIX, …)`; `false` for backends that share the host's filesystem.
    pub unix_sockets: bool,
}

impl Policy {
    /// Mode `allowlist`: [`Policy::network`] narrowed to TCP over IPv4/IPv6 (see [`tcp_only`]).
    pub fn tcp_only(self) -> TcpOnly {
        TcpOnly(self)
    }
}

/// A [`Policy`] whose network sockets are TCP only: `socket(AF_INET | AF_INET6, SOCK_STREAM,
/// 0 | IPPROTO_TCP)`; UDP (so DNS), raw, SCTP, MPTCP and every other family are refused, so
/// Landlock's TCP rules cover every network socket there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOnly(pub Policy);

/// The program for `policy` with network sockets narrowed to TCP.
pub fn program_tcp_only(policy: TcpOnly) -> Vec<sock_filter> {
    build_with(policy.0, false, true)
}

/// [`host_program`] with network sockets narrowed to TCP.
pub fn host_program_tcp_only(policy: TcpOnly) -> Vec<sock_filter> {
    build_with(policy.0, true, true)
}

#[derive(Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

struct Asm {
    code: Vec<(u16, Target, Target, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Self {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn place(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, Target::Next, Target::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.code.push((code, jt, jf, k));
    }
    fn finish(self) -> Vec<sock_filter> {
        let labels = self.labels;
        let rel = |at: usize, t: Target| -> u8 {
            match t {
                Target::Next => 0,
                Target::Label(l) => {
                    let to = labels[l].unwrap_or(at + 1);
                    // Forward jumps only; the program is small enough to fit in a u8 offset.
                    u8::try_from(to.saturating_sub(at + 1)).unwrap_or(u8::MAX)
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(i, &(code, jt, jf, k))| sock_filter {
                code,
                jt: rel(i, jt),
                jf: rel(i, jf),
                k,
            })
            .collect()
    }
}

/// `S_ISUID | S_ISGID`.
const SET_ID_BITS: u32 = 0o6000;

/// The calls that set a file's mode, with the index of their mode argument.
fn set_mode_calls() -> Vec<(i64, u32)> {
    let mut calls = vec![
        (libc::SYS_fchmod, 1),
        (libc::SYS_fchmodat, 2),
        (SYS_FCHMODAT2, 2),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.push((libc::SYS_chmod, 1));
    calls
}

/// The BPF program for `policy`.
pub fn program(policy: Policy) -> Vec<sock_filter> {
    build(policy, false)
}

/// The program for a backend sharing the host's IPC namespace and filesystem: [`program`] plus
/// the host rules (see the module documentation). Its metadata calls need a listener (see
/// [`install_with_listener`]); without one they fail with `ENOSYS`.
pub fn host_program(policy: Policy) -> Vec<sock_filter> {
    build(policy, true)
}

fn build(policy: Policy, host: bool) -> Vec<sock_filter> {
    build_with(policy, host, false)
}

fn build_with(policy: Policy, host: bool, tcp_only: bool) -> Vec<sock_filter> {
    use Target::{Label, Next};
    let mut a = Asm::new();
    let allow = a.label();
    let eperm = a.label();
    let enosys = a.label();
    let eafnosupport = a.label();

    a.op(BPF_LD_W_ABS, OFF_ARCH);
    a.jump(BPF_JEQ_K, AUDIT_ARCH, Next, Label(eperm));
    a.op(BPF_LD_W_ABS, OFF_NR);
    #[cfg(target_arch = "x86_64")]
    a.jump(BPF_JGE_K, 0x4000_0000, Label(eperm), Next);
    for nr in denied() {
        a.jump(BPF_JEQ_K, nr as u32, Label(eperm), Next);
    }
    a.jump(BPF_JEQ_K, libc::SYS_clone3 as u32, Label(enosys), Next);
    let notify = a.label();
    if host {
        for nr in denied_on_host() {
            a.jump(BPF_JEQ_K, nr as u32, Label(eperm), Next);
        }
        for nr in notified() {
            a.jump(BPF_JEQ_K, nr as u32, Label(notify), Next);
        }
        if tcp_only && policy.network {
            // The supervisor connects to the proxy's address only (super::netguard).
            a.jump(BPF_JEQ_K, libc::SYS_connect as u32, Label(notify), Next);
        }
        let not_ioctl = a.label();
        a.jump(BPF_JEQ_K, libc::SYS_ioctl as u32, Next, Label(not_ioctl));
        // The request is an unsigned int: its low 32 bits are what the kernel compares.
        a.op(BPF_LD_W_ABS, arg_lo(1));
        let (last, rest) = DENIED_IOCTLS.split_last().unwrap_or((&0, &[]));
        for &req in rest {
            a.jump(BPF_JEQ_K, req, Label(eperm), Next);
        }
        a.jump(BPF_JEQ_K, *last, Label(eperm), Label(allow));
        a.place(not_ioctl);
    }

    // Set-id bits: the work tree is on the host's disk, so a set-uid file made there would be one
    // on the host (owned by root for a root caller). The host program's chmods go to the
    // supervisor, which drops these bits itself.
    if !host {
        for (nr, mode_arg) in set_mode_calls() {
            let next = a.label();
            a.jump(BPF_JEQ_K, nr as u32, Next, Label(next));
            a.op(BPF_LD_W_ABS, arg_lo(mode_arg));
            a.jump(BPF_JSET_K, SET_ID_BITS, Label(eperm), Label(allow));
            a.place(next);
        }
    }

    // TCP Fast Open connects inside sendto/sendmsg, around a notified connect.
    if tcp_only && policy.network {
        for (nr, flags_arg) in [
            (libc::SYS_sendto, 3),
            (libc::SYS_sendmsg, 2),
            (libc::SYS_sendmmsg, 3),
        ] {
            let next = a.label();
            a.jump(BPF_JEQ_K, nr as u32, Next, Label(next));
            a.op(BPF_LD_W_ABS, arg_lo(flags_arg));
            a.jump(
                BPF_JSET_K,
                libc::MSG_FASTOPEN as u32,
                Label(eperm),
                Label(allow),
            );
            a.place(next);
        }
    }

    // clone: refuse namespace flags (arg 0 on x86_64 and aarch64).
    let not_clone = a.label();
    a.jump(BPF_JEQ_K, libc::SYS_clone as u32, Next, Label(not_clone));
    a.op(BPF_LD_W_ABS, arg_lo(0));
    a.jump(BPF_JSET_K, CLONE_NS_FLAGS, Label(eperm), Label(allow));
    a.place(not_clone);

    if !(policy.network && policy.unix_sockets) || tcp_only {
        let not_socket = a.label();
        a.jump(BPF_JEQ_K, libc::SYS_socket as u32, Next, Label(not_socket));
        a.op(BPF_LD_W_ABS, arg_lo(0));
        let unix = if policy.unix_sockets {
            Label(allow)
        } else {
            Label(eafnosupport)
        };
        let inet = a.label();
        let other = match (policy.network, tcp_only) {
            (true, false) => Label(allow),
            (true, true) => Label(inet),
            (false, _) => Label(eafnosupport),
        };
        a.jump(BPF_JEQ_K, libc::AF_UNIX as u32, unix, other);
        if policy.network && tcp_only {
            a.place(inet);
            let family_ok = a.label();
            a.jump(BPF_JEQ_K, libc::AF_INET as u32, Label(family_ok), Next);
            a.jump(
                BPF_JEQ_K,
                libc::AF_INET6 as u32,
                Label(family_ok),
                Label(eafnosupport),
            );
            a.place(family_ok);
            // The type without SOCK_NONBLOCK / SOCK_CLOEXEC.
            a.op(BPF_LD_W_ABS, arg_lo(1));
            a.op(BPF_ALU_AND_K, 0xf);
            let type_ok = a.label();
            a.jump(
                BPF_JEQ_K,
                libc::SOCK_STREAM as u32,
                Label(type_ok),
                Label(eafnosupport),
            );
            a.place(type_ok);
            a.op(BPF_LD_W_ABS, arg_lo(2));
            a.jump(BPF_JEQ_K, 0, Label(allow), Next);
            a.jump(
                BPF_JEQ_K,
                libc::IPPROTO_TCP as u32,
                Label(allow),
                Label(eafnosupport),
            );
        }
        a.place(not_socket);
    }

    a.place(allow);
    a.op(BPF_RET_K, RET_ALLOW);
    a.place(eperm);
    a.op(BPF_RET_K, RET_ERRNO | libc::EPERM as u32);
    a.place(enosys);
    a.op(BPF_RET_K, RET_ERRNO | libc::ENOSYS as u32);
    a.place(eafnosupport);
    a.op(BPF_RET_K, RET_ERRNO | libc::EAFNOSUPPORT as u32);
    if host {
        a.place(notify);
        a.op(BPF_RET_K, RET_USER_NOTIF);
    }
    a.finish()
}

/// The program as bytes, the format bwrap's `--seccomp FD` reads.
pub fn to_bytes(prog: &[sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for f in prog {
        out.extend_from_slice(&f.code.to_ne_bytes());
        out.push(f.jt);
        out.push(f.jf);
        out.extend_from_slice(&f.k.to_ne_bytes());
    }
    out
}

/// A close-on-exec memory file holding the program, positioned at its start.
pub fn memfd(prog: &[sock_filter]) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static NUL-terminated name; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(c"tb-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    file.write_all(&to_bytes(prog))?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    Ok(file.into())
}

/// Installs `prog` on the calling thread. Async-signal-safe: meant for a forked child before exec.
/// `no_new_privs` must already be set (or the caller hold CAP_SYS_ADMIN).
///
/// # Safety
/// `prog` must stay valid for the call; nothing here allocates.
pub unsafe fn install(prog: &[sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: fprog points at a valid program for the duration of the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Installs `prog` on the calling thread and returns the listener descriptor of its
/// `SECCOMP_RET_USER_NOTIF` calls (close-on-exec). Async-signal-safe, like [`install`]. A
/// notified task waits killably once the supervisor has received its call, so a signal cannot make
/// a call the supervisor already performed run again.
///
/// # Safety
/// As [`install`].
pub unsafe fn install_with_listener(prog: &[sock_filter]) -> std::io::Result<RawFd> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: fprog points at a valid program for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd as RawFd)
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
