//! Shared helpers for the adversarial sandbox suite (`tests/sandbox_*.rs`).
//!
//! Every case runs on every backend this machine has; a backend that cannot run prints which and
//! why (never a silent skip), and fails the test instead when `TB_EXPECT_BACKENDS` (a
//! comma-separated list, e.g. `bwrap,landlock`, set by CI) names it. `none` is not a sandbox and
//! is not tested for containment.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tiny_backspace::sandbox::{
    self, ExecOutput, ExecRequest, Sandbox, SandboxKind, SandboxMounts, SandboxSettings,
};
use tokio_util::sync::CancellationToken;

pub const BACKENDS: [SandboxKind; 2] = [SandboxKind::Bwrap, SandboxKind::Landlock];

/// The backends `TB_EXPECT_BACKENDS` says must work on this machine; an unknown name panics, so a
/// typo cannot turn the check off.
pub fn expected_backends() -> Vec<SandboxKind> {
    let Some(list) = std::env::var_os("TB_EXPECT_BACKENDS") else {
        return Vec::new();
    };
    list.to_string_lossy()
        .split(',')
        .map(str::trim)
        // `e2b` is checked by tests/support/e2b_peer.rs, not by this local-backend suite.
        .filter(|s| !s.is_empty() && *s != "e2b")
        .map(|name| match SandboxKind::parse(name) {
            Ok(k) if BACKENDS.contains(&k) => k,
            _ => panic!("TB_EXPECT_BACKENDS names `{name}`: use bwrap and/or landlock"),
        })
        .collect()
}

/// A backend cannot run `case` here: the test fails when the backend is expected
/// (`TB_EXPECT_BACKENDS`), else it says so on stderr.
pub fn cannot_run(kind: SandboxKind, case: &str, reason: &dyn std::fmt::Display) {
    assert!(
        !expected_backends().contains(&kind),
        "backend `{}` is in TB_EXPECT_BACKENDS but cannot run case `{case}`: {reason}",
        kind.as_str()
    );
    eprintln!(
        "CANNOT RUN: case `{case}` on backend `{}`: {reason}",
        kind.as_str()
    );
}

/// The backends usable here; prints the reason for each one that is not (or fails, see
/// [`cannot_run`]).
pub fn backends(case: &str) -> Vec<SandboxKind> {
    expected_backends(); // a misspelt name fails even where every backend works
    let mut out = Vec::new();
    for kind in BACKENDS {
        match sandbox::probe(kind) {
            Ok(()) => out.push(kind),
            Err(e) => cannot_run(kind, case, &e),
        }
    }
    assert!(
        !out.is_empty() || std::env::var_os("TB_ALLOW_NO_SANDBOX").is_some(),
        "no sandbox backend works on this machine (set TB_ALLOW_NO_SANDBOX=1 to accept that)"
    );
    out
}

/// A work tree and a git directory laid out like the pipeline's, and a sandbox over them.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub mounts: SandboxMounts,
    pub sandbox: Box<dyn Sandbox>,
    pub settings: SandboxSettings,
}

pub fn settings(kind: SandboxKind, network: bool) -> SandboxSettings {
    let mut s = SandboxSettings {
        kind: Some(kind),
        network,
        ..SandboxSettings::default()
    };
    // Small limits so the hostile cases end quickly.
    s.limits.memory_bytes = 256 << 20;
    s.limits.max_processes = 64;
    s.limits.file_size_bytes = 8 << 20;
    s.limits.workspace_bytes = 32 << 20;
    s.limits.tmp_bytes = 16 << 20;
    s.limits.cpu_secs = 20;
    s.output_limit_bytes = 1 << 20;
    s.output_keep_bytes = 8 << 10;
    s
}

pub fn fixture(kind: SandboxKind, network: bool) -> Fixture {
    fixture_with(settings(kind, network))
}

pub fn fixture_with(settings: SandboxSettings) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let work_tree = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(work_tree.join(".git")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(git_dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let mounts = SandboxMounts { work_tree, git_dir };
    fixture_at(tmp, mounts, settings)
}

pub fn fixture_at(
    tmp: tempfile::TempDir,
    mounts: SandboxMounts,
    settings: SandboxSettings,
) -> Fixture {
    let sandbox = sandbox::open(&settings, mounts.clone()).unwrap();
    Fixture {
        tmp,
        mounts,
        sandbox,
        settings,
    }
}

impl Fixture {
    pub async fn sh(&self, command: &str) -> ExecOutput {
        self.sh_for(command, Duration::from_secs(60)).await
    }

    pub async fn sh_for(&self, command: &str, timeout: Duration) -> ExecOutput {
        let req = ExecRequest {
            command: command.to_string(),
            timeout,
        };
        self.sandbox
            .exec(&req, &CancellationToken::new())
            .await
            .unwrap()
    }

    pub fn kind(&self) -> &'static str {
        self.sandbox.kind().as_str()
    }
}

/// A random token that cannot appear by accident.
pub fn random_token(prefix: &str) -> String {
    let mut s = String::from(prefix);
    for _ in 0..32 {
        s.push(char::from(b'a' + fastrand::u8(0..26)));
    }
    s
}

/// Host processes whose command line contains `needle` (with their state letter), waiting up to
/// 10 s for them to go: hundreds of killed processes can take a while to exit on a loaded machine.
pub fn host_processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for _ in 0..100 {
        found.clear();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                // The state letter follows the parenthesised command name.
                let state = stat
                    .rsplit_once(") ")
                    .map_or("?", |(_, r)| &r[..1.min(r.len())]);
                found.push(format!("{name} [{state}]: {cmd}"));
            }
        }
        if found.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    found
}

/// A path on the host that must not exist.
pub fn assert_absent(path: &Path, case: &str, kind: &str) {
    assert!(
        !path.exists(),
        "[{kind}] {case}: {} appeared on the host",
        path.display()
    );
}

pub fn host_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// `tbuser`'s uid and gid, or an unnamed unprivileged pair where that user does not exist.
pub fn ordinary_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"tbuser") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or((64999, 64999))
}
