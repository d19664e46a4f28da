//! The setup phase through the real binary, with real local peers on loopback: a PEP 503 index
//! serving a wheel the test builds, a listener the sandbox must not reach, a UDP sink playing DNS.
//! The model is a local Anthropic-format server, so the first request can be read.
//!
//! Proved on every backend available here (a backend that cannot run says so, and fails when
//! `TB_EXPECT_BACKENDS` names it): setup installs the package into a work-tree virtualenv through
//! the proxy; the agent's unittest imports it; the virtualenv is not in the patch (even with a
//! `.gitignore` negating it); the step log shows the proxied requests; during the agent phase
//! (network off) neither `curl` to another loopback listener nor `pip download` from the index
//! gets through; in allowlist mode a direct TCP connection and a DNS datagram fail; with the
//! setup's network off the index is unreachable and the run stops with `setup_failed` (exit 1,
//! workspace removed) unless `--setup-optional`; `.tiny-backspace/setup.sh` is found and run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;
#[path = "support/pypi.rs"]
mod pypi;
mod sandbox_common;
#[path = "support/repo.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mock_llm::{Format, MockServer, Model, Turn};
use sandbox_common::backends;
use serde_json::{Value, json};
use tiny_backspace::sandbox::SandboxKind;

const KEY: &str = "sk-ant-api03-setupphase-SECRETKEY-aaaa";

struct Run {
    code: i32,
    events: Vec<Value>,
    /// Each model request's body as JSON text.
    requests: Vec<String>,
    stdout: String,
    stderr: String,
    home: PathBuf,
}

impl Run {
    fn statuses(&self, stage: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["type"] == "Status" && e["stage"] == stage)
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    }

    /// The `Tool: Bash` events: (command, output, exit code).
    fn bash(&self) -> Vec<(String, String, i64)> {
        self.events
            .iter()
            .filter(|e| e["type"] == "Tool: Bash")
            .map(|e| {
                (
                    e["command"].as_str().unwrap().to_string(),
                    e["output"].as_str().unwrap().to_string(),
                    e["exit_code"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    fn last(&self) -> &Value {
        self.events.last().expect("some event")
    }

    fn leftover_workspaces(&self) -> Vec<String> {
        std::fs::read_dir(self.home.join("work"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `run --json --no-pr --sandbox KIND` on `repo` with `extra` arguments and the model's `turns`.
async fn run(tmp: &Path, kind: SandboxKind, repo: &Path, turns: Vec<Turn>, extra: &[&str]) -> Run {
    let model = Model::new(Format::Anthropic, turns);
    let server = MockServer::start(model.handler()).await;
    let config_path = tmp.join("config.toml");
    std::fs::write(
        &config_path,
        "[llm]\nmax_attempts = 1\nread_timeout_ms = 60000\n[agent]\nself_review = false\n",
    )
    .unwrap();
    let home = tmp.join(format!("home-{}", fastrand::u32(..)));
    let cwd = tmp.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
    cmd.args(["run", "--repo"])
        .arg(repo)
        .args(["--prompt", "Add a feature module", "--no-pr", "--json"])
        .args(["--sandbox", kind.as_str()])
        .args(extra)
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.join("user-home"))
        .env("TB_HOME", &home)
        .env("TB_CONFIG", &config_path)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("the binary hung")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        code: out.status.code().unwrap_or(-1),
        events: stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        requests: server
            .requests()
            .iter()
            .map(|r| r.body.to_string())
            .collect(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        home,
    }
}

const TEST_PY: &str = "import unittest\n\nimport tbpkg\n\n\nclass T(unittest.TestCase):\n    \
def test_value(self):\n        self.assertEqual(tbpkg.VALUE, 42)\n\n\nif __name__ == \"__main__\":\n    \
unittest.main()\n";

/// A repository whose test needs the package; its `.gitignore` tries to re-include `.venv`.
fn python_repo(dir: &Path) -> PathBuf {
    support::make_repo(
        dir,
        "main",
        &[
            ("test_pkg.py", TEST_PY),
            ("notes.txt", "notes\n"),
            (".gitignore", "!.venv/\n!/.venv/**\n"),
        ],
    )
}

fn bash(command: &str) -> Turn {
    Turn::new("", &[("bash", json!({ "command": command }))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_installs_through_the_proxy_and_the_agent_works_offline() {
    let tmp = tempfile::tempdir().unwrap();
    pypi::build_wheel(&tmp.path().join("wheels"));
    let index = pypi::Index::start(&tmp.path().join("wheels"));
    let other = pypi::Counter::start();
    let repo = python_repo(&tmp.path().join("repo"));
    let allow = format!("127.0.0.1:{}", index.port);
    let setup = format!(
        "python3 -m venv .venv && .venv/bin/pip install --index-url {} {} && echo \
         setup-was-here >> notes.txt",
        index.url(),
        pypi::PACKAGE
    );
    for kind in backends("setup installs through the proxy") {
        let k = kind.as_str();
        let before = index.requests().len();
        let turns = vec![
            bash(".venv/bin/python -m unittest -v test_pkg"),
            bash(&format!(
                "curl -sS --max-time 10 http://127.0.0.1:{}/; echo curl-exit=$?",
                other.port
            )),
            bash(&format!(
                ".venv/bin/pip download --no-deps --retries 0 --timeout 5 --index-url {} \
                 -d /tmp/dl {}; echo pip-exit=$?",
                index.url(),
                pypi::PACKAGE
            )),
            Turn::new(
                "",
                &[(
                    "write_file",
                    json!({"path": "feature.py", "content": "FEATURE = 1\n"}),
                )],
            ),
            Turn::new("Added feature.py.", &[]),
        ];
        let r = run(
            tmp.path(),
            kind,
            &repo,
            turns,
            &["--setup", &setup, "--allow-host", &allow],
        )
        .await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);

        let validate = r.statuses("validate");
        assert!(
            validate[0].contains(&format!(
                "no network for the agent, setup network allowlist ({allow})"
            )),
            "[{k}] {validate:#?}"
        );
        // The setup: a step of its own, through the proxy, to the index.
        let setup_log = r.statuses("setup");
        assert!(
            setup_log[0].contains(&format!("network allowlist ({allow})"))
                && setup_log[0].contains("the agent then runs with network off"),
            "[{k}] {setup_log:#?}"
        );
        let proxied = format!("proxy: allowed GET 127.0.0.1:{}", index.port);
        assert!(
            setup_log.iter().any(|s| s.starts_with(&proxied)),
            "[{k}] no proxied request in the step log: {setup_log:#?}"
        );
        assert!(
            setup_log
                .iter()
                .any(|s| s.starts_with("kept out of the diff") && s.contains(".venv/")),
            "[{k}] {setup_log:#?}"
        );
        assert!(
            setup_log
                .iter()
                .any(|s| s.starts_with("WARNING: the setup changed") && s.contains("notes.txt")),
            "[{k}] {setup_log:#?}"
        );
        let steps = r.bash();
        assert_eq!(steps[0].0, setup, "[{k}] the setup is the first Tool: Bash");
        assert_eq!(steps[0].2, 0, "[{k}] setup output: {}", steps[0].1);
        let served = index.requests()[before..].to_vec();
        assert!(
            served.iter().any(|p| p.starts_with("/simple/tbpkg"))
                && served.iter().any(|p| p.ends_with(pypi::WHEEL)),
            "[{k}] the index saw: {served:?}"
        );

        // The agent: the package imports; nothing else gets out.
        assert_eq!(steps[1].2, 0, "[{k}] unittest: {}", steps[1].1);
        assert!(steps[1].1.contains("OK"), "[{k}] {}", steps[1].1);
        assert!(
            !steps[2].1.contains("REACHED") && !steps[2].1.contains("curl-exit=0"),
            "[{k}] curl from the agent phase: {}",
            steps[2].1
        );
        assert_eq!(other.hits(), 0, "[{k}] the other listener was reached");
        assert!(
            !steps[3].1.contains("pip-exit=0"),
            "[{k}] pip download from the agent phase: {}",
            steps[3].1
        );
        let after_setup = index.requests().len();
        assert_eq!(
            index.requests()[before..].len(),
            served.len(),
            "[{k}] the agent phase reached the index ({after_setup} requests)"
        );

        // The patch: the agent's file and the setup's tracked change, no virtualenv.
        let diff = r.events.iter().find(|e| e["type"] == "Diff").unwrap();
        let patch = diff["patch"].as_str().unwrap();
        assert!(patch.contains("feature.py"), "[{k}] {patch}");
        assert!(patch.contains("setup-was-here"), "[{k}] {patch}");
        assert!(
            !patch.contains(".venv"),
            "[{k}] the virtualenv is in the patch"
        );

        // The model was told.
        let first = &r.requests[0];
        for want in [
            "## Setup (already done)",
            "succeeded (exit 0",
            &format!("Network by phase: setup allowlist ({allow}); agent (your commands) off"),
            "Toolchains on PATH: python3 3.",
            ".venv/",
            "no network access",
        ] {
            assert!(
                first.contains(want),
                "[{k}] first request lacks {want:?}: {first}"
            );
        }
    }
}

/// Allowlist mode in the setup: around the proxy nothing gets out — a direct TCP connection to
/// the (allow-listed) index and a DNS datagram to a loopback "resolver" both fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlist_setup_cannot_skip_the_proxy_or_send_dns() {
    let tmp = tempfile::tempdir().unwrap();
    pypi::build_wheel(&tmp.path().join("wheels"));
    let index = pypi::Index::start(&tmp.path().join("wheels"));
    let dns = pypi::UdpSink::start();
    let repo = python_repo(&tmp.path().join("repo"));
    let allow = format!("127.0.0.1:{}", index.port);
    let setup = format!(
        "if timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{p}' 2>/dev/null; then echo \
         DIRECT-CONNECTED; else echo DIRECT-REFUSED; fi; python3 -c \"import socket; \
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'\\x12\\x34\\x01\\x00\
         \\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03org\\x00\\x00\\x01\\x00\\x01', \
         ('127.0.0.1', {d})); print('DNS-SENT')\" 2>&1 || echo DNS-REFUSED",
        p = index.port,
        d = dns.port
    );
    for kind in backends("allowlist setup around the proxy") {
        let k = kind.as_str();
        let before = index.requests().len();
        let r = run(
            tmp.path(),
            kind,
            &repo,
            vec![Turn::new("Nothing to do.", &[])],
            &["--setup", &setup, "--allow-host", &allow],
        )
        .await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);
        let steps = r.bash();
        let out = &steps[0].1;
        assert!(out.contains("DIRECT-REFUSED"), "[{k}] {out}");
        assert!(
            out.contains("DNS-REFUSED") && !out.contains("DNS-SENT"),
            "[{k}] {out}"
        );
        assert!(
            !dns.received(),
            "[{k}] a datagram reached the loopback resolver"
        );
        assert_eq!(
            index.requests().len(),
            before,
            "[{k}] the index was reached directly"
        );
    }
}

/// `--setup-network off`: the index is unreachable, so the setup fails and the run stops with
/// `setup_failed` before any model call, leaving no workspace; `--setup-optional` goes on and
/// tells the model how the setup failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_without_network_fails_the_run_unless_optional() {
    let tmp = tempfile::tempdir().unwrap();
    pypi::build_wheel(&tmp.path().join("wheels"));
    let index = pypi::Index::start(&tmp.path().join("wheels"));
    let repo = python_repo(&tmp.path().join("repo"));
    let allow = format!("127.0.0.1:{}", index.port);
    let setup = format!(
        "python3 -c \"import urllib.request; urllib.request.urlopen('{}/tbpkg/', timeout=5)\"",
        index.url()
    );
    for kind in backends("setup without network") {
        let k = kind.as_str();
        let args = [
            "--setup",
            setup.as_str(),
            "--allow-host",
            &allow,
            "--setup-network",
            "off",
        ];
        let r = run(tmp.path(), kind, &repo, vec![], &args).await;
        assert_eq!(r.code, 1, "[{k}] {}\n{}", r.stdout, r.stderr);
        let last = r.last();
        assert_eq!(last["type"], "Error", "[{k}] {}", r.stdout);
        assert_eq!(last["code"], "setup_failed", "[{k}] {last}");
        assert_eq!(last["stage"], "setup", "[{k}] {last}");
        let message = last["message"].as_str().unwrap();
        assert!(
            message.contains("FAILED with exit code 1")
                && message.contains("without network")
                && message.contains("--allow-host")
                && message.contains("--setup-optional")
                && message.contains("URLError"),
            "[{k}] {message}"
        );
        assert!(r.requests.is_empty(), "[{k}] the model was asked");
        assert!(r.leftover_workspaces().is_empty(), "[{k}] workspace left");
        assert!(index.requests().is_empty(), "[{k}] the index was reached");

        let mut optional = args.to_vec();
        optional.push("--setup-optional");
        let r = run(
            tmp.path(),
            kind,
            &repo,
            vec![Turn::new("Could not verify.", &[])],
            &optional,
        )
        .await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);
        let first = &r.requests[0];
        assert!(
            first.contains("FAILED with exit code 1") && first.contains("the setup is optional"),
            "[{k}] {first}"
        );
        assert!(
            r.statuses("setup")
                .iter()
                .any(|s| s.contains("--setup-optional: the agent runs anyway")),
            "[{k}] {}",
            r.stdout
        );
    }
}

/// Without `--setup`, an executable `.tiny-backspace/setup.sh` runs (what it makes stays out of the
/// patch); one that is not executable does not, nor one turned off with `--setup ""`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_s_setup_script_is_found_and_run() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let script = "#!/bin/sh\nmkdir -p build-cache && echo x > build-cache/x && echo SCRIPT-RAN\n";
    support::make_repo(&dir, "main", &[("a.txt", "a\n")]);
    let path = dir.join(".tiny-backspace/setup.sh");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    support::git(&dir, &["add", "-A"]);
    support::git(&dir, &["commit", "-qm", "setup script"]);
    let plain = tmp.path().join("plain");
    support::make_repo(&plain, "main", &[(".tiny-backspace/setup.sh", script)]);
    for kind in backends("setup script discovery") {
        let k = kind.as_str();
        let turns = vec![
            Turn::new(
                "",
                &[("write_file", json!({"path": "b.txt", "content": "b\n"}))],
            ),
            Turn::new("Added b.", &[]),
        ];
        let r = run(tmp.path(), kind, &dir, turns, &[]).await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);
        let steps = r.bash();
        assert_eq!(steps[0].0, "./.tiny-backspace/setup.sh", "[{k}]");
        assert!(steps[0].1.contains("SCRIPT-RAN"), "[{k}] {}", steps[0].1);
        let diff = r.events.iter().find(|e| e["type"] == "Diff").unwrap();
        let patch = diff["patch"].as_str().unwrap();
        assert!(
            patch.contains("b.txt") && !patch.contains("build-cache"),
            "[{k}] {patch}"
        );

        let r = run(
            tmp.path(),
            kind,
            &plain,
            vec![Turn::new("Nothing.", &[])],
            &[],
        )
        .await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);
        assert!(r.statuses("setup").is_empty(), "[{k}] {}", r.stdout);
        assert!(r.bash().is_empty(), "[{k}] {}", r.stdout);

        // `--setup ""` turns the script off.
        let r = run(
            tmp.path(),
            kind,
            &dir,
            vec![Turn::new("Nothing.", &[])],
            &["--setup", ""],
        )
        .await;
        assert_eq!(r.code, 0, "[{k}] {}\n{}", r.stdout, r.stderr);
        assert!(r.bash().is_empty(), "[{k}] {}", r.stdout);
    }
}

/// A setup that outlives its time limit is killed and fails the run, saying which flag gives it
/// more time; a cancel (SIGTERM) during the setup ends the run `cancelled` with nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_setup_times_out_and_a_cancel_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = support::make_repo(&tmp.path().join("repo"), "main", &[("a.txt", "a\n")]);
    let script = tmp.path().join("script.json");
    std::fs::write(&script, support::script(json!([{"text": "never reached"}]))).unwrap();
    for kind in backends("setup timeout and cancel") {
        let k = kind.as_str();
        let r = run(
            tmp.path(),
            kind,
            &repo,
            vec![],
            &["--setup", "echo started; sleep 600", "--setup-timeout", "2"],
        )
        .await;
        assert_eq!(r.code, 1, "[{k}] {}\n{}", r.stdout, r.stderr);
        let last = r.last();
        assert_eq!(last["code"], "setup_failed", "[{k}] {last}");
        let message = last["message"].as_str().unwrap();
        assert!(
            message.contains("time limit") && message.contains("--setup-timeout"),
            "[{k}] {message}"
        );
        assert!(r.leftover_workspaces().is_empty(), "[{k}] workspace left");

        // SIGTERM while the setup runs.
        let home = tmp.path().join(format!("home-cancel-{k}"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"))
            .args(["run", "--repo"])
            .arg(&repo)
            .args(["--prompt", "p", "--no-pr", "--json", "--model"])
            .arg(format!("scripted:{}", script.display()))
            .args(["--sandbox", k, "--setup", "echo started; sleep 600"])
            .current_dir(tmp.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", tmp.path().join("user-home"))
            .env("TB_HOME", &home)
            .env("TB_CONFIG", tmp.path().join("none.toml"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let started = line.contains("\"stage\":\"setup\"");
            seen.push(line);
            if started {
                break;
            }
        }
        assert!(
            seen.last().is_some_and(|l| l.contains("setup: running")),
            "[{k}] {seen:#?}"
        );
        // SAFETY: kill(2) on the child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "[{k}] {rest:#?}");
        let last: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
        assert_eq!(last["type"], "Error", "[{k}] {last}");
        assert_eq!(last["stage"], "setup", "[{k}] {last}");
        assert!(
            last["code"] == "stopped" || last["code"] == "cancelled",
            "[{k}] {last}"
        );
        let work: Vec<_> = std::fs::read_dir(home.join("work"))
            .map(|rd| rd.flatten().collect())
            .unwrap_or_default();
        assert!(work.is_empty(), "[{k}] workspace left after the cancel");
    }
}
