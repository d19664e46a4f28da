//! Patches are bounded whatever the workspace holds: a file over `diff.max_file_mb` is left out
//! (never staged, never read by the host), the whole patch stays under `diff.max_patch_mb` by
//! leaving out the largest files first, memory stays flat, and no event line grows past a few MB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use serde_json::{Value, json};
use support::{Env, events, make_repo, script};

/// Runs the binary to completion; returns its stdout and its peak RSS in KiB (including the
/// largest of the processes it waited for: git, the sandbox).
// The child is reaped by `wait4`, which also reports its peak RSS.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: std::process::Command) -> (std::process::ExitStatus, Vec<u8>, u64) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unwaited child; `status` and `usage` are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let out = reader.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    (
        std::process::ExitStatus::from_raw(status),
        out,
        usage.ru_maxrss as u64,
    )
}

fn diff_event(evs: &[Value]) -> &Value {
    evs.iter()
        .find(|e| e["type"] == "Diff")
        .expect("a Diff event")
}

fn file<'a>(diff: &'a Value, path: &str) -> &'a Value {
    diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not listed: {diff}"))
}

#[test]
fn a_200_mb_file_is_left_out_and_costs_no_memory() {
    let env = Env::new();
    let repo = make_repo(&env.path("src"), "main", &[("README.md", "# r\n")]);
    let run = |name: &str, command: &str| {
        let s = env.write(
            &format!("{name}.json"),
            &script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command": command}}]},
                {"text": "Done."}
            ])),
        );
        let cmd = env.scripted_command(repo.to_str().unwrap(), "p", &s, &[]);
        let (status, stdout, peak_kib) = run_measured(cmd);
        assert!(status.success(), "{name}: {status:?}");
        (stdout, peak_kib)
    };
    let (_, small_kib) = run("small", "echo more >> README.md");
    let (stdout, big_kib) = run(
        "big",
        "head -c 200M /dev/urandom > big.bin && echo more >> README.md && ls -l big.bin",
    );
    let longest = stdout
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap();
    assert!(longest < 4 << 20, "an event line of {longest} bytes");
    let evs = events(&stdout);
    let bash = evs.iter().find(|e| e["type"] == "Tool: Bash").unwrap();
    assert!(
        bash["output"].as_str().unwrap().contains("209715200"),
        "the agent really wrote 200 MB: {bash}"
    );
    let diff = diff_event(&evs);
    let big = file(diff, "big.bin");
    assert_eq!(big["left_out"], "too_large", "{big}");
    assert!(
        big["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "too_large"),
        "{big}"
    );
    let patch = diff["patch"].as_str().unwrap();
    assert!(
        patch.contains("+more") && !patch.contains("big.bin"),
        "{patch}"
    );
    let saved = std::fs::read(env.run_folders().pop().unwrap().join("patch.diff")).unwrap();
    assert!(saved.len() < 4096, "patch.diff is {} bytes", saved.len());
    let grown_mib = big_kib.saturating_sub(small_kib) / 1024;
    eprintln!("peak RSS: {small_kib} KiB without the 200 MB file, {big_kib} KiB with it");
    assert!(
        grown_mib <= 100,
        "peak RSS {small_kib} KiB without the file, {big_kib} KiB with it"
    );
}

#[test]
fn file_and_patch_limits_come_from_the_config_and_leave_the_largest_out_first() {
    let env = Env::new();
    let repo = make_repo(&env.path("src"), "main", &[("README.md", "# r\n")]);
    // Lines of 40 bytes: over.txt (1.6 MB) is over a 1 MiB file limit; a (720 kB), b (600 kB)
    // and c (200 kB) each fit, but their patch is over 1 MiB: the largest, a, is left out.
    let lines = |name: &str, n: u32| {
        format!("seq -f '{name:<4} %010g padding padding padding' 1 {n} > {name}.txt")
    };
    let command = [
        lines("over", 40_000),
        lines("a", 18_000),
        lines("b", 15_000),
        lines("c", 5_000),
        "echo small > small.txt".to_string(),
    ]
    .join(" && ");
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": command}}]},
            {"text": "Done."}
        ])),
    );
    let mut cmd = env.scripted_command(repo.to_str().unwrap(), "p", &s, &[]);
    cmd.env("TB_DIFF_MAX_FILE_MB", "1")
        .env("TB_DIFF_MAX_PATCH_MB", "1");
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let diff = diff_event(&evs);
    assert_eq!(file(diff, "over.txt")["left_out"], "too_large", "{diff}");
    // a (0.7 MiB) and b (0.6 MiB) together are over 1 MiB: the largest, a, is left out.
    assert_eq!(file(diff, "a.txt")["left_out"], "patch_too_large", "{diff}");
    for kept in ["b.txt", "c.txt", "small.txt"] {
        assert!(file(diff, kept)["left_out"].is_null(), "{kept}: {diff}");
    }
    let saved = std::fs::read(env.run_folders().pop().unwrap().join("patch.diff")).unwrap();
    assert!(
        saved.len() <= 1 << 20,
        "patch.diff is {} bytes",
        saved.len()
    );
    let text = String::from_utf8_lossy(&saved);
    assert!(text.contains("b/b.txt") && text.contains("b/small.txt"));
    assert!(!text.contains("b/a.txt") && !text.contains("b/over.txt"));
    let status: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "Status")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        status
            .iter()
            .any(|m| m.contains("over.txt") && m.contains("diff.max_file_mb")),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|m| m.contains("a.txt") && m.contains("diff.max_patch_mb")),
        "{status:?}"
    );
}
