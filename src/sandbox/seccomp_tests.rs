//! Unit tests of `seccomp.rs` (kept apart so the module stays readable).
use super::*;

#[test]
fn jumps_stay_in_the_program_and_end_in_returns() {
    for network in [false, true] {
        for (unix_sockets, host) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = build(
                Policy {
                    network,
                    unix_sockets,
                },
                host,
            );
            assert!(p.len() < 250, "{}", p.len());
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

/// Runs the BPF program (loads, conditional jumps, returns: all it uses) on one call.
fn verdict(prog: &[sock_filter], nr: i64, args: [u64; 6]) -> u32 {
    let mut data = [0u32; 16];
    data[0] = nr as u32;
    data[1] = AUDIT_ARCH;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let f = prog[pc];
        match f.code {
            BPF_LD_W_ABS => acc = data[f.k as usize / 4],
            BPF_ALU_AND_K => acc &= f.k,
            BPF_RET_K => return f.k,
            code => {
                let hit = match code {
                    BPF_JEQ_K => acc == f.k,
                    BPF_JGE_K => acc >= f.k,
                    BPF_JSET_K => acc & f.k != 0,
                    other => panic!("unexpected op {other:#x}"),
                };
                pc += usize::from(if hit { f.jt } else { f.jf });
            }
        }
        pc += 1;
    }
}

#[test]
fn tcp_only_allows_tcp_over_ip_and_nothing_else() {
    let refused = RET_ERRNO | libc::EAFNOSUPPORT as u32;
    for (unix_sockets, host) in [(true, false), (false, true)] {
        let policy = Policy {
            network: true,
            unix_sockets,
        }
        .tcp_only();
        let prog = if host {
            host_program_tcp_only(policy)
        } else {
            program_tcp_only(policy)
        };
        assert!(prog.len() < 250, "{}", prog.len());
        let sock = |domain: i32, ty: i32, proto: i32| {
            verdict(
                &prog,
                libc::SYS_socket,
                [domain as u64, ty as u64, proto as u64, 0, 0, 0],
            )
        };
        let stream_cloexec = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        assert_eq!(sock(libc::AF_INET, libc::SOCK_STREAM, 0), RET_ALLOW);
        assert_eq!(
            sock(libc::AF_INET6, stream_cloexec, libc::IPPROTO_TCP),
            RET_ALLOW
        );
        assert_eq!(sock(libc::AF_INET, libc::SOCK_DGRAM, 0), refused);
        assert_eq!(sock(libc::AF_INET6, libc::SOCK_DGRAM, 0), refused);
        assert_eq!(sock(libc::AF_INET, libc::SOCK_RAW, 1), refused);
        assert_eq!(sock(libc::AF_INET, libc::SOCK_STREAM, 132), refused); // SCTP
        assert_eq!(sock(libc::AF_INET, libc::SOCK_STREAM, 262), refused); // MPTCP
        assert_eq!(sock(libc::AF_NETLINK, libc::SOCK_RAW, 0), refused);
        assert_eq!(sock(libc::AF_VSOCK, libc::SOCK_STREAM, 0), refused);
        let unix = sock(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        assert_eq!(unix == RET_ALLOW, unix_sockets, "{unix:#x}");
        // The host flavour sends connect to the supervisor; Fast Open, which connects without it,
        // is refused.
        let connect = verdict(&prog, libc::SYS_connect, [3, 0, 16, 0, 0, 0]);
        assert_eq!(connect == RET_USER_NOTIF, host, "{connect:#x}");
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let fastopen = libc::MSG_FASTOPEN as u64;
        assert_eq!(
            verdict(&prog, libc::SYS_sendto, [3, 0, 1, fastopen, 0, 0]),
            eperm
        );
        assert_eq!(
            verdict(&prog, libc::SYS_sendmsg, [3, 0, fastopen, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            verdict(&prog, libc::SYS_sendto, [3, 0, 1, 0, 0, 0]),
            RET_ALLOW
        );
    }
}

#[test]
fn set_id_modes_are_refused_and_other_modes_pass() {
    let eperm = RET_ERRNO | libc::EPERM as u32;
    for network in [false, true] {
        let prog = program(Policy {
            network,
            unix_sockets: true,
        });
        // Every jump fits the u8 offset (the assembler would clamp a longer one).
        assert!(prog.len() < 256, "{} instructions", prog.len());
        for (nr, arg) in set_mode_calls() {
            let mut args = [3u64, 0, 0, 0, 0, 0];
            for (mode, want) in [
                (0o755, RET_ALLOW),
                (0o644, RET_ALLOW),
                (0o4755, eperm),
                (0o2755, eperm),
                (0o6755, eperm),
            ] {
                args[arg as usize] = mode;
                assert_eq!(verdict(&prog, nr, args), want, "{nr} {mode:o}");
            }
        }
    }
    let host = host_program(Policy {
        network: false,
        unix_sockets: false,
    });
    assert!(host.len() < 256, "{} instructions", host.len());
}

#[test]
fn host_program_notifies_metadata_calls_and_refuses_ipc() {
    let policy = Policy {
        network: false,
        unix_sockets: false,
    };
    let host = host_program(policy);
    let plain = program(policy);
    let eperm = RET_ERRNO | libc::EPERM as u32;
    for nr in notified() {
        assert_eq!(verdict(&host, nr, [0; 6]), RET_USER_NOTIF, "{nr}");
        assert_eq!(verdict(&plain, nr, [0; 6]), RET_ALLOW, "{nr}");
    }
    for nr in denied_on_host() {
        assert_eq!(verdict(&host, nr, [0; 6]), eperm, "{nr}");
        assert_eq!(verdict(&plain, nr, [0; 6]), RET_ALLOW, "{nr}");
    }
    for req in DENIED_IOCTLS {
        let args = [3, 0xffff_ffff_0000_0000 | u64::from(req), 0, 0, 0, 0];
        assert_eq!(verdict(&host, libc::SYS_ioctl, args), eperm, "{req:#x}");
    }
    let tcgets = [0, 0x5401, 0, 0, 0, 0];
    assert_eq!(verdict(&host, libc::SYS_ioctl, tcgets), RET_ALLOW);
    for nr in [libc::SYS_read, libc::SYS_openat, libc::SYS_linkat] {
        assert_eq!(verdict(&host, nr, [0; 6]), RET_ALLOW, "{nr}");
    }
    assert_eq!(verdict(&host, libc::SYS_ptrace, [0; 6]), eperm);
    assert_eq!(
        verdict(&host, libc::SYS_socket, [2, 1, 0, 0, 0, 0]),
        RET_ERRNO | 97
    );
}
