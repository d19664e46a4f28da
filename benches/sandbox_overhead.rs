//! Overhead of one sandboxed command against a bare spawn of the same command.
//!
//! `cargo bench --bench sandbox_overhead` (or `-- 500` for 500 runs per case). For each backend
//! that works here — bwrap with its long-lived per-run sandbox, bwrap with a fresh sandbox per
//! command (`bwrap/fresh`, for comparison) and landlock — runs `true` and `echo hi` N times
//! (default 300) through `Sandbox::exec`, and the same commands N times with a bare `bash -c`
//! spawn, and prints median and p95 of each and the median overhead. Backends that cannot run say
//! why.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tiny_backspace::sandbox::{self, ExecRequest, SandboxKind, SandboxMounts, SandboxSettings};
use tokio_util::sync::CancellationToken;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let p95 = ms(v[(v.len() * 95 / 100).min(v.len() - 1)]);
    (median, p95)
}

fn bare(command: &str, runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new("/bin/bash")
                .args(["-c", command])
                .env_clear()
                .output();
            assert!(out.is_ok_and(|o| o.status.success()));
            t.elapsed()
        })
        .collect()
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300)
        .max(200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("runs per case: {runs}");
    println!(
        "{:<10} {:<8} {:>10} {:>10} {:>16}",
        "backend", "command", "median ms", "p95 ms", "overhead ms (med)"
    );
    let mut baseline = Vec::new();
    for command in ["true", "echo hi"] {
        let (m, p) = stats(bare(command, runs));
        baseline.push(m);
        println!(
            "{:<10} {:<8} {:>10.2} {:>10.2} {:>16}",
            "bare", command, m, p, "-"
        );
    }
    for (kind, per_command) in [
        (SandboxKind::Bwrap, false),
        (SandboxKind::Bwrap, true),
        (SandboxKind::Landlock, false),
    ] {
        let label = if per_command {
            format!("{}/fresh", kind.as_str())
        } else {
            kind.as_str().to_string()
        };
        if let Err(e) = sandbox::probe(kind) {
            println!("{label:<10} cannot run here: {e}");
            continue;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let mounts = SandboxMounts {
            work_tree: tmp.path().join("repo"),
            git_dir: tmp.path().join("git"),
        };
        std::fs::create_dir_all(mounts.work_tree.join(".git")).expect("mkdir");
        std::fs::create_dir_all(&mounts.git_dir).expect("mkdir");
        let settings = SandboxSettings {
            kind: Some(kind),
            per_command,
            ..SandboxSettings::default()
        };
        let sb = sandbox::open(&settings, mounts).expect("open");
        let cancel = CancellationToken::new();
        for (i, command) in ["true", "echo hi"].into_iter().enumerate() {
            let req = ExecRequest {
                command: command.into(),
                timeout: Duration::from_secs(30),
            };
            // Warm-up (first spawn pays for page cache, probe and pool start-up).
            for _ in 0..5 {
                rt.block_on(sb.exec(&req, &cancel)).expect("exec");
            }
            let times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    let out = rt.block_on(sb.exec(&req, &cancel)).expect("exec");
                    assert_eq!(out.exit_code, 0, "{}", out.output);
                    t.elapsed()
                })
                .collect();
            let (m, p) = stats(times);
            println!(
                "{:<10} {:<8} {:>10.2} {:>10.2} {:>16.2}",
                label,
                command,
                m,
                p,
                m - baseline[i]
            );
        }
    }
}
