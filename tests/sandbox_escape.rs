//! Adversarial suite, part 1: filesystem, processes, network and forbidden system calls.
//! Every case runs on every backend available here (see `sandbox_common`).

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use sandbox_common::*;
use serde_json::json;
use tiny_backspace::agent::fs::WorkspaceFs;
use tiny_backspace::agent::tools::Toolbox;
use tokio_util::sync::CancellationToken;

/// Removes a planted host file even when the test fails.
struct Planted(std::path::PathBuf);
impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn host_secrets_and_system_files_are_not_readable() {
    let secret = random_token("host-secret-");
    // A key in the host's home and a file in the host's /tmp, both planted by the test.
    let home_file = host_home().join(format!(".tb-sandbox-test-{}", std::process::id()));
    std::fs::write(&home_file, &secret).unwrap();
    let _g1 = Planted(home_file.clone());
    let host_tmp = tempfile::Builder::new()
        .prefix("tb-host-tmp-")
        .tempdir_in("/tmp")
        .unwrap();
    let tmp_file = host_tmp.path().join("secret.txt");
    std::fs::write(&tmp_file, &secret).unwrap();

    for kind in backends("host secrets") {
        let fx = fixture(kind, false);
        let cmd = format!(
            "cat {home} {tmp} ~/.ssh/id_rsa {home_dir}/.ssh/id_rsa /etc/shadow /etc/gshadow 2>&1; \
             grep -r . /root 2>&1 | head -50",
            home = home_file.display(),
            tmp = tmp_file.display(),
            home_dir = host_home().display(),
        );
        let out = fx.sh(&cmd).await;
        let k = fx.kind();
        assert!(
            !out.output.contains(&secret),
            "[{k}] secret visible:\n{}",
            out.output
        );
        assert!(
            !out.output.contains("root:$")
                && !out.output.contains("root:*:")
                && !out.output.contains("root:!"),
            "[{k}] /etc/shadow readable:\n{}",
            out.output
        );
        let listing = fx
            .sh(&format!(
                "ls -a /root {} /tmp {} 2>/dev/null; true",
                host_home().display(),
                host_tmp.path().display()
            ))
            .await;
        assert!(
            !listing.output.contains(".tb-sandbox-test-")
                && !listing.output.contains("secret.txt")
                && !listing.output.contains("tb-host-tmp-"),
            "[{k}] host home or /tmp listed:\n{}",
            listing.output
        );
    }
}

/// A hard link in the work tree to a host file would make host git read it into the diff.
#[tokio::test]
async fn hard_links_to_host_files_cannot_be_made() {
    let secret = random_token("hardlink-secret-");
    let home_file = host_home().join(format!(".tb-sandbox-hl-{}", std::process::id()));
    std::fs::write(&home_file, &secret).unwrap();
    let _g = Planted(home_file.clone());
    for kind in backends("hard link to a host file") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(&format!(
                "ln {} hl1 2>&1; ln /etc/hostname hl2 2>&1; ln /etc/passwd hl3 2>&1; ls -l",
                home_file.display()
            ))
            .await;
        assert!(out.output.contains("total"), "[{k}] {}", out.output);
        for name in ["hl1", "hl2", "hl3"] {
            assert!(
                !fx.mounts.work_tree.join(name).exists(),
                "[{k}] hard link {name} made:\n{}",
                out.output
            );
        }
    }
}

#[tokio::test]
async fn writes_outside_the_work_tree_are_refused_and_never_reach_the_host() {
    for kind in backends("write outside") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let tag = random_token("w");
        let targets = [
            host_home().join(format!("{tag}-home")),
            std::path::PathBuf::from(format!("/usr/{tag}-usr")),
            std::path::PathBuf::from(format!("/tmp/{tag}-tmp")),
            std::path::PathBuf::from(format!("/etc/{tag}-etc")),
            fx.mounts.git_dir.join(format!("{tag}-git")),
        ];
        let mut cmd = String::new();
        for t in &targets {
            cmd.push_str(&format!(
                "echo x > {} 2>/dev/null && echo WROTE {}; ",
                t.display(),
                t.display()
            ));
        }
        cmd.push_str("echo inside > /workspace/ok 2>/dev/null || echo inside > ok; ");
        cmd.push_str("echo x > .git/config 2>/dev/null && echo WROTE .git/config; true");
        let out = fx.sh(&cmd).await;
        for t in &targets {
            assert_absent(t, "write outside", k);
        }
        assert!(
            fx.mounts.work_tree.join("ok").exists(),
            "[{k}] the work tree must be writable: {}",
            out.output
        );
        assert!(
            !fx.mounts.git_dir.join("config").exists(),
            "[{k}] git dir written"
        );
        // /tmp inside bwrap is a private tmpfs (writable, invisible to the host); elsewhere refused.
        for t in &targets[..2] {
            assert!(
                !out.output.contains(&format!("WROTE {}", t.display())),
                "[{k}] {}",
                out.output
            );
        }
        // bwrap mounts the real git dir read-only at .git. Landlock has no mounts: `.git` in the work
        // tree is an inert placeholder (host git always uses the separate git dir, and commands
        // inside get GIT_DIR pointing at the read-only real one), so only bwrap must refuse it.
        if k == "bwrap" {
            assert!(
                !out.output.contains("WROTE .git/config"),
                "[{k}] {}",
                out.output
            );
        }
    }
}

#[tokio::test]
async fn symlinks_and_dotdot_cannot_reach_host_files() {
    let secret = random_token("linked-secret-");
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("secret.txt");
    std::fs::write(&target, &secret).unwrap();
    for kind in backends("symlink escape") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        std::os::unix::fs::symlink(&target, fx.mounts.work_tree.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), fx.mounts.work_tree.join("linkdir")).unwrap();
        let tools = Toolbox {
            fs: WorkspaceFs::open(&fx.mounts.work_tree).unwrap(),
            sandbox: Arc::from(
                tiny_backspace::sandbox::open(&fx.settings, fx.mounts.clone()).unwrap(),
            ),
            sandbox_settings: fx.settings.clone(),
            run_id: "t".into(),
            output_cap_chars: 10_000,
        };
        let cancel = CancellationToken::new();
        let dotdot = format!("../../{}", target.strip_prefix("/").unwrap().display());
        for (tool, input) in [
            ("read_file", json!({"path": "link.txt"})),
            ("read_file", json!({"path": "linkdir/secret.txt"})),
            ("read_file", json!({"path": dotdot})),
            ("read_file", json!({"path": target.display().to_string()})),
            (
                "edit_file",
                json!({"path": "link.txt", "old_str": "linked", "new_str": "pwned"}),
            ),
            (
                "write_file",
                json!({"path": "linkdir/new.txt", "content": "pwned"}),
            ),
            (
                "bash",
                json!({"command": "cat link.txt linkdir/secret.txt; echo pwned > link.txt; cat ../*/secret.txt ../../*/*/secret.txt"}),
            ),
        ] {
            let out = tools.call(tool, &input, &cancel).await;
            assert!(
                !out.content.contains(&secret),
                "[{k}] {tool} {input}: {}",
                out.content
            );
        }
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            secret,
            "[{k}] host file modified"
        );
        assert!(
            !outside.path().join("new.txt").exists(),
            "[{k}] wrote through a symlinked dir"
        );
    }
}

#[tokio::test]
async fn host_processes_are_invisible_and_cannot_be_signalled() {
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
    for kind in backends("host processes") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(&format!(
                "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done; \
                 ls /proc/{me} 2>&1 | head -3; kill -0 {me} && echo SIGNALLED; kill -CONT {me} && echo STOPPED; \
                 kill -0 1 2>/dev/null; true"
            ))
            .await;
        assert!(
            !out.output.contains(&exe_name),
            "[{k}] host process visible:\n{}",
            out.output
        );
        assert!(
            !out.output
                .lines()
                .any(|l| l == "SIGNALLED" || l == "STOPPED"),
            "[{k}] {}",
            out.output
        );
        // Not in our session (no controlling terminal shared with the host).
        // SAFETY: getsid(0) has no preconditions.
        let our_sid = unsafe { libc::getsid(0) };
        let sid = fx
            .sh("exec python3 -c 'import os; print(os.getsid(0))'")
            .await;
        if sid.exit_code == 0 {
            assert_ne!(
                sid.output.trim(),
                our_sid.to_string(),
                "[{k}] shares our session"
            );
        } else {
            eprintln!("CANNOT RUN: session check on backend `{k}`: no python3 inside");
        }
    }
}

#[tokio::test]
async fn network_off_blocks_tcp_udp_and_dns_and_on_allows_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let tcp_port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let accepted = |l: &TcpListener| {
        let mut n = 0;
        for _ in 0..20 {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 16];
                s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                let _ = s.read(&mut b);
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    };
    for kind in backends("network") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(&format!(
                "(exec 3<>/dev/tcp/127.0.0.1/{tcp_port} && echo hi >&3 && echo TCP-OK) 2>&1; \
                 (echo ping > /dev/udp/127.0.0.1/{udp_port} && echo UDP-SENT) 2>&1; \
                 getent ahosts example.com && echo DNS-OK; \
                 python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_STREAM); print(\"INET6-OK\")' 2>&1; true"
            ))
            .await;
        assert!(
            !out.output.contains("TCP-OK"),
            "[{k}] TCP with network off:\n{}",
            out.output
        );
        assert!(
            !out.output.contains("UDP-SENT"),
            "[{k}] UDP with network off:\n{}",
            out.output
        );
        assert!(
            !out.output.contains("DNS-OK"),
            "[{k}] DNS with network off:\n{}",
            out.output
        );
        assert!(
            !out.output.contains("INET6-OK"),
            "[{k}] IPv6 socket with network off:\n{}",
            out.output
        );
        assert_eq!(
            accepted(&listener),
            0,
            "[{k}] the listener saw a connection"
        );
        let mut b = [0u8; 16];
        assert!(
            udp.recv_from(&mut b).is_err(),
            "[{k}] the UDP socket got a datagram"
        );

        let fx = fixture(kind, true);
        assert!(fx.sandbox.network());
        let out = fx
            .sh(&format!(
                "exec 3<>/dev/tcp/127.0.0.1/{tcp_port} && echo hi >&3 && echo TCP-OK"
            ))
            .await;
        assert!(
            out.output.contains("TCP-OK"),
            "[{k}] TCP with network on:\n{}",
            out.output
        );
        assert_eq!(
            accepted(&listener),
            1,
            "[{k}] the listener saw no connection with network on"
        );
    }
}

/// A named Unix socket on the host (think /var/run/docker.sock or the init system's) and an
/// abstract one (a container shim's) are not reachable, with the network off or on.
#[tokio::test]
async fn host_unix_sockets_are_unreachable() {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let abstract_name = random_token("tb-abstract-");
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let abstract_listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    abstract_listener.set_nonblocking(true).unwrap();
    for kind in backends("host unix socket") {
        for network in [false, true] {
            let fx = fixture(kind, network);
            let k = fx.kind();
            if fx.sh("command -v python3").await.exit_code != 0 {
                eprintln!(
                    "CANNOT RUN: case `host unix socket` on backend `{k}`: no python3 inside"
                );
                continue;
            }
            let script = format!(
                r#"python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect("{path}"); s.send(b"x"); print("CONNECTED")' 2>&1
python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect("\0{name}"); s.send(b"x"); print("ABSTRACT-CONNECTED")' 2>&1
python3 -c 'import socket; a,b=socket.socketpair(); a.send(b"p"); print("PAIR", b.recv(1))' 2>&1"#,
                path = path.display(),
                name = abstract_name
            );
            let out = fx.sh(&script).await;
            assert!(
                !out.output.contains("CONNECTED"),
                "[{k}] network={network}:\n{}",
                out.output
            );
            assert!(
                listener.accept().is_err(),
                "[{k}] the host socket saw a connection"
            );
            assert!(
                abstract_listener.accept().is_err(),
                "[{k}] the host's abstract socket saw a connection"
            );
            assert!(
                out.output.contains("PAIR b'p'"),
                "[{k}] socketpair must keep working:\n{}",
                out.output
            );
        }
    }
}

#[tokio::test]
async fn mount_unshare_chroot_ptrace_are_refused() {
    for kind in backends("privileged syscalls") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let cases = [
            (
                "mount",
                "mkdir -p m && mount -t tmpfs none m && echo ESCAPED",
            ),
            ("unshare -r", "unshare -r true && echo ESCAPED"),
            ("unshare -m", "unshare -m true && echo ESCAPED"),
            ("unshare -n", "unshare -n true && echo ESCAPED"),
            ("chroot", "chroot / true && echo ESCAPED"),
            (
                "strace (ptrace)",
                "strace -f -o /dev/null true && echo ESCAPED",
            ),
            (
                "ptrace(TRACEME)",
                "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); sys.exit(0 if l.ptrace(0,0,0,0)==0 else 1)' && echo ESCAPED",
            ),
            (
                "keyctl",
                "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); sys.exit(0 if l.syscall(250,0,-3,0,0,0)>=0 else 1)' && echo ESCAPED",
            ),
            (
                "bpf",
                "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); r=l.syscall(321,0,0,0); sys.exit(0 if ctypes.get_errno()!=1 else 1)' && echo ESCAPED",
            ),
            ("nsenter", "nsenter -t 1 -m true && echo ESCAPED"),
        ];
        for (name, cmd) in cases {
            if name.contains("python") || cmd.starts_with("python3") {
                let have = fx.sh("command -v python3").await;
                if have.exit_code != 0 {
                    eprintln!(
                        "CANNOT RUN: case `{name}` on backend `{k}`: python3 is not available inside"
                    );
                    continue;
                }
            }
            let out = fx.sh(&format!("{cmd} 2>&1")).await;
            assert!(
                !out.output.contains("ESCAPED"),
                "[{k}] {name} succeeded:\n{}",
                out.output
            );
        }
        // The sandbox is still usable afterwards.
        assert_eq!(fx.sh("echo alive").await.output.trim(), "alive");
    }
}

#[tokio::test]
async fn inherited_file_descriptors_do_not_leak_in() {
    let secret = random_token("fd-secret-");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.txt");
    std::fs::write(&path, &secret).unwrap();
    // Held open (without O_CLOEXEC games: std opens with CLOEXEC, so dup it to a plain fd).
    let f = std::fs::File::open(&path).unwrap();
    // SAFETY: dup of a valid fd; the duplicate has no close-on-exec flag.
    let raw = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    assert!(raw > 2);
    for kind in backends("inherited fds") {
        let fx = fixture(kind, false);
        let k = fx.kind();
        let out = fx
            .sh(&format!("cat /proc/self/fd/{raw} <&{raw} 2>&1; for f in /proc/self/fd/*; do n=${{f##*/}}; [ \"$n\" -gt 2 ] 2>/dev/null && timeout 2 cat $f 2>/dev/null; done; true"))
            .await;
        assert!(
            !out.output.contains(&secret),
            "[{k}] fd leaked:\n{}",
            out.output
        );
    }
    // SAFETY: closing the fd we dup'ed.
    unsafe { libc::close(raw) };
}
