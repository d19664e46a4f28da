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
//! runtime's or the init system's are reachable; `socketpair` keeps working).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use libc::sock_filter;

/// BPF_LD | BPF_W | BPF_ABS (the first two are zero).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

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

/// What the filter should allow besides the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Network sockets; `false` refuses every family but `AF_UNIX`.
    pub network: bool,
    /// `socket(AF_UNIX, …)`; `false` for backends that share the host's filesystem.
    pub unix_sockets: bool,
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

/// The BPF program for `policy`.
pub fn program(policy: Policy) -> Vec<sock_filter> {
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

    // clone: refuse namespace flags (arg 0 on x86_64 and aarch64).
    let not_clone = a.label();
    a.jump(BPF_JEQ_K, libc::SYS_clone as u32, Next, Label(not_clone));
    a.op(BPF_LD_W_ABS, arg_lo(0));
    a.jump(BPF_JSET_K, CLONE_NS_FLAGS, Label(eperm), Label(allow));
    a.place(not_clone);

    if !(policy.network && policy.unix_sockets) {
        let not_socket = a.label();
        a.jump(BPF_JEQ_K, libc::SYS_socket as u32, Next, Label(not_socket));
        a.op(BPF_LD_W_ABS, arg_lo(0));
        let unix = if policy.unix_sockets {
            Label(allow)
        } else {
            Label(eafnosupport)
        };
        let other = if policy.network {
            Label(allow)
        } else {
            Label(eafnosupport)
        };
        a.jump(BPF_JEQ_K, libc::AF_UNIX as u32, unix, other);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_stay_in_the_program_and_end_in_returns() {
        for network in [false, true] {
            for unix_sockets in [false, true] {
                let p = program(Policy {
                    network,
                    unix_sockets,
                });
                assert!(p.len() < 200);
                for (i, f) in p.iter().enumerate() {
                    if f.code & 0x07 == 0x05 {
                        assert!(i + 1 + (f.jt as usize) < p.len());
                        assert!(i + 1 + (f.jf as usize) < p.len());
                        assert!(f.jt < u8::MAX && f.jf < u8::MAX);
                    }
                }
                assert_eq!(p.last().map(|f| f.code), Some(BPF_RET_K));
            }
        }
    }

    #[test]
    fn network_policy_changes_the_program() {
        let off = program(Policy {
            network: false,
            unix_sockets: true,
        });
        let on = program(Policy {
            network: true,
            unix_sockets: true,
        });
        let no_unix = program(Policy {
            network: true,
            unix_sockets: false,
        });
        assert!(no_unix.len() > on.len());
        assert!(off.len() > on.len());
        assert_eq!(to_bytes(&off).len(), off.len() * 8);
    }
}
