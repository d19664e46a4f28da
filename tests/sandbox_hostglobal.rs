//! Adversarial suite, part 3: host-global state. A command must not change anything that is
//! shared with the host — sysctls, `/proc/sysrq-trigger`, procfs entries, host device nodes,
//! sysfs — nor read what container runtimes mask, on every backend, as root and as an ordinary
//! user; and on bwrap a root caller's commands must not run as host uid 0.
//!
//! Every write here writes back the value the host already has (or only opens for writing), so
//! even a sandbox that fails changes nothing. The ordinary-user half re-executes this test
//! binary as `tbuser` (see [`host_global_state_as_ordinary_user`]).

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use sandbox_common::*;
use tiny_backspace::sandbox::SandboxKind;

/// Set in the re-executed child, which already runs as the ordinary user.
const CHILD_ENV: &str = "TB_HOSTGLOBAL_AS_USER";
/// Printed by the child after all its cases passed, so the parent knows they really ran.
const CHILD_DONE: &str = "hostglobal-child-ran-all-cases";

/// What runc masks (`maskedPaths`): files read as empty, directories list nothing.
const RUNC_MASKED_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
];
const RUNC_MASKED_DIRS: &[&str] = &["/proc/acpi", "/proc/asound", "/proc/scsi"];

fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

/// Top-level `/proc` files only root may read (kmsg, slabinfo, kpageflags, …): a sandbox that
/// runs as host uid 0 without masking them would read them.
fn root_only_proc_files() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if m.is_file() && m.uid() == 0 && m.permissions().mode() & 0o004 == 0 {
            out.push(format!("/proc/{name}"));
        }
    }
    out.sort();
    out
}

/// The script of one round: prints `ATTACK-WORKED: …` for every attack that succeeded and
/// `ROUND-DONE` at the end.
fn attack_script(kind: SandboxKind) -> String {
    let mut s = String::new();
    // Sysctls, written back with the host's own value (`net.*`: the host's network namespace
    // when the network is on).
    for name in [
        "kernel/core_pattern",
        "vm/panic_on_oom",
        "net/ipv4/ip_forward",
    ] {
        let path = format!("/proc/sys/{name}");
        let value = std::fs::read_to_string(&path).unwrap();
        s += &format!(
            "printf '%s\\n' {v} 2>/dev/null > {p} && echo 'ATTACK-WORKED: wrote {p}'\n",
            v = shq(value.trim_end_matches('\n')),
            p = path
        );
    }
    // A sysfs knob, same value (bwrap mounts no /sys at all).
    let ksm = "/sys/kernel/mm/ksm/run";
    if let Ok(v) = std::fs::read_to_string(ksm) {
        s += &format!(
            "printf '%s\\n' {v} 2>/dev/null > {ksm} && echo 'ATTACK-WORKED: wrote {ksm}'\n",
            v = shq(v.trim())
        );
    }
    s += "[ -d /sys ] && [ \"$(ls -A /sys 2>/dev/null | wc -l)\" != 0 ] && \
          echo 'ATTACK-WORKED: /sys lists entries'\n";
    // Opened for writing only (`:` with an appending redirection: no truncation, no byte
    // written).
    s += ": 2>/dev/null >> /proc/sysrq-trigger && \
          echo 'ATTACK-WORKED: opened /proc/sysrq-trigger for writing'\n";
    for dir in ["/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"] {
        s += &format!(
            "for f in $(find {dir} -type f -perm -u+w 2>/dev/null); do \
               : 2>/dev/null >> \"$f\" && {{ echo \"ATTACK-WORKED: $f opens for writing\"; break; }}; \
             done\n"
        );
    }
    // Masked files: nothing to read. `/proc/kmsg` is only opened: reading it takes the messages
    // away from the host's log.
    let mut files: Vec<String> = RUNC_MASKED_FILES.iter().map(|s| s.to_string()).collect();
    files.extend(root_only_proc_files());
    files.sort();
    files.dedup();
    for f in files.iter().filter(|f| Path::new(f).exists()) {
        s += &if f == "/proc/kmsg" {
            format!(": 2>/dev/null < {f} && echo 'ATTACK-WORKED: opened {f}'\n")
        } else {
            format!(
                "n=$(timeout 5 head -c 64 {f} 2>/dev/null | wc -c); [ \"$n\" != 0 ] && \
                 echo \"ATTACK-WORKED: read $n bytes of {f}\"\n"
            )
        };
    }
    for d in RUNC_MASKED_DIRS.iter().filter(|d| Path::new(d).exists()) {
        s += &format!(
            "n=$(ls -A {d} 2>/dev/null | wc -l); [ \"$n\" != 0 ] && \
             echo \"ATTACK-WORKED: {d} lists $n entries\"\n"
        );
    }
    // Metadata of procfs entries and host device nodes: chmod to the mode they already have.
    // bwrap only: Landlock has no right for metadata changes, landlock's own cases cover it (see
    // "host file metadata" in docs/sandbox.md).
    if kind == SandboxKind::Bwrap {
        for f in ["/proc/uptime", "/dev/null", "/dev/zero", "/dev/urandom"] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o7777;
            s += &format!("chmod {mode:o} {f} 2>/dev/null && echo 'ATTACK-WORKED: chmod {f}'\n");
        }
    }
    // The sandbox still works for what it is for.
    s += "echo in-workspace > hostglobal-probe && [ \"$(cat hostglobal-probe)\" = in-workspace ] \
          && echo x > /dev/null && head -c 4 /dev/urandom | wc -c | grep -q 4 && echo ROUND-DONE\n";
    s
}

async fn attack_round_in(fx: &Fixture, network: bool) {
    let kind = fx.sandbox.kind();
    let k = fx.kind();
    let out = fx.sh(&attack_script(kind)).await;
    let who = format!("[{k}, network {network}, uid {}]", uid());
    let worked: Vec<&str> = out
        .output
        .lines()
        .filter(|l| l.starts_with("ATTACK-WORKED"))
        .collect();
    assert!(
        worked.is_empty(),
        "{who} host-global attacks worked:\n{}",
        worked.join("\n")
    );
    assert!(
        out.output.contains("ROUND-DONE"),
        "{who} the round did not complete:\n{}",
        out.output
    );
}

/// The host's view of the process whose command line contains `token`: its real uid.
fn host_uid_of(token: &str, deadline: Instant) -> Option<u32> {
    while Instant::now() < deadline {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            if !String::from_utf8_lossy(&cmd).contains(token) {
                continue;
            }
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let real = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|u| u.parse().ok());
            if real.is_some() {
                return real;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Which host uid a command runs as, and that the work tree stays the caller's: a file the host
/// made can be changed inside, and a file made inside belongs to the caller on the host.
/// Checks the host uid a round's commands ran as.
fn check_host_uid(kind: SandboxKind, seen: u32, who: &str) {
    match (kind, uid()) {
        (SandboxKind::Bwrap, 0) => {
            if seen == 0 && std::env::var_os("TB_ALLOW_BWRAP_AS_ROOT").is_some() {
                eprintln!(
                    "CANNOT RUN: case `host uid` on backend `bwrap`: the command ran as host root \
                     (TB_ALLOW_BWRAP_AS_ROOT is set)"
                );
            } else {
                assert_ne!(
                    seen, 0,
                    "{who} a root caller's command runs as host uid 0 (set TB_ALLOW_BWRAP_AS_ROOT=1 \
                     on a machine where that cannot be avoided)"
                );
            }
        }
        // Never more than the caller.
        (_, caller) if caller != 0 => assert_eq!(seen, caller, "{who}"),
        // landlock keeps the caller's uid; it has no capabilities and Landlock rules instead.
        _ => {}
    }
}

/// The host uid the fixture's commands run as, checking on the way that the work tree stays
/// usable and the caller's.
async fn host_uid_in(fx: &Fixture) -> u32 {
    let k = fx.kind();
    let host_file = fx.mounts.work_tree.join("made-by-host");
    std::fs::write(&host_file, "host\n").unwrap();
    let token = random_token("hostuid");
    let cmd = format!(
        "echo inside >> made-by-host && echo inside > made-inside && \
         exec -a {token} bash -c 'while [ ! -e go ]; do sleep 0.05; done; echo released'"
    );
    let go = fx.mounts.work_tree.join("go");
    let poll = tokio::task::spawn_blocking(move || {
        let found = host_uid_of(&token, Instant::now() + Duration::from_secs(60));
        std::fs::write(&go, "").unwrap();
        found
    });
    let out = fx.sh_for(&cmd, Duration::from_secs(90)).await;
    let seen = poll.await.unwrap();
    let who = format!("[{k}, uid {}]", uid());
    assert!(out.output.contains("released"), "{who} {}", out.output);
    let seen = seen.unwrap_or_else(|| panic!("{who} the command's process was not found"));
    assert_eq!(
        std::fs::read_to_string(&host_file).unwrap(),
        "host\ninside\n",
        "{who}"
    );
    let made = std::fs::metadata(fx.mounts.work_tree.join("made-inside")).unwrap();
    assert_eq!(
        made.uid(),
        uid(),
        "{who} a file made inside is not the caller's on the host"
    );
    eprintln!("{who} the command ran as host uid {seen}");
    seen
}

/// A work tree on a file system that cannot be idmapped (ramfs): bwrap falls back to host uid 0
/// for a root caller, and still nothing host-global may be written.
async fn root_fallback_round() {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: umount2 on a NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let outer = tempfile::tempdir().unwrap();
    let c = std::ffi::CString::new(outer.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mount with NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"ramfs".as_ptr(),
            c.as_ptr(),
            c"ramfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(
        rc,
        0,
        "cannot mount a ramfs: {}",
        std::io::Error::last_os_error()
    );
    let _unmount = Unmount(outer.path().to_path_buf());
    for network in [false, true] {
        let tmp = tempfile::tempdir_in(outer.path()).unwrap();
        let work_tree = tmp.path().join("repo");
        let git_dir = tmp.path().join("git");
        std::fs::create_dir_all(work_tree.join(".git")).unwrap();
        std::fs::create_dir_all(&git_dir).unwrap();
        let mounts = tiny_backspace::sandbox::SandboxMounts { work_tree, git_dir };
        let fx = fixture_at(tmp, mounts, settings(SandboxKind::Bwrap, network));
        attack_round_in(&fx, network).await;
        let seen = host_uid_in(&fx).await;
        assert_eq!(seen, 0, "[bwrap on ramfs] expected the host-uid-0 fallback");
    }
}

/// The attacks and the host uid, in one sandbox.
async fn round(kind: SandboxKind, network: bool, per_command: bool) {
    let mut s = settings(kind, network);
    s.per_command = per_command;
    let fx = fixture_with(s);
    attack_round_in(&fx, network).await;
    let seen = host_uid_in(&fx).await;
    let who = format!(
        "[{}, network {network}, per command {per_command}, uid {}]",
        fx.kind(),
        uid()
    );
    check_host_uid(kind, seen, &who);
}

async fn all_rounds() {
    for kind in backends("host-global state") {
        for network in [false, true] {
            round(kind, network, false).await;
        }
        if kind == SandboxKind::Bwrap {
            // A fresh bwrap per command starts through another path.
            round(kind, false, true).await;
            if uid() == 0 {
                root_fallback_round().await;
            }
        }
    }
}

#[tokio::test]
async fn host_global_state_as_the_caller() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // the child runs only the ordinary-user test
    }
    all_rounds().await;
}

/// As root: runs the same rounds again in this test binary, re-executed as an ordinary user.
/// Not as root: [`host_global_state_as_the_caller`] already is the ordinary-user run.
#[test]
fn host_global_state_as_ordinary_user() {
    if std::env::var_os(CHILD_ENV).is_some() {
        assert_ne!(uid(), 0, "the child still runs as root");
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(all_rounds());
        println!("{CHILD_DONE}");
        return;
    }
    if uid() != 0 {
        eprintln!(
            "the suite runs as uid {}: host_global_state_as_the_caller is the ordinary-user run",
            uid()
        );
        return;
    }
    let (user, group) = ordinary_user();
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(home.path(), Some(user), Some(group)).unwrap();
    // Executed through a descriptor opened as root: the user needs no access to the directories
    // on the way to the test binary (a checkout under /root, as CI's may be), only its execute bit.
    let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let program = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&exe));
    let mut cmd = std::process::Command::new(program);
    cmd.args([
        "host_global_state_as_ordinary_user",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .env("HOME", home.path())
    .env("TMPDIR", home.path())
    .current_dir(home.path());
    // SAFETY: setgroups/setgid/setuid are async-signal-safe syscalls on plain integers.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(group) != 0
                || libc::setuid(user) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- child as uid {user} ---\n{stderr}");
    assert!(
        out.status.success() && stdout.contains(CHILD_DONE),
        "the rounds as uid {user} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
