//! Backend selection as the user sees it, through the real binary: the strongest backend that
//! works is chosen, the choice (and the network state) is shown, a backend asked for by name is
//! never silently replaced, and `none` warns.

#![allow(clippy::unwrap_used)]

mod sandbox_common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tiny_backspace::sandbox::SandboxKind;

fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

/// Runs `tiny-backspace run` on a tiny repository with a one-command script; returns the events.
fn run(root: &Path, path: &str, extra: &[&str]) -> (Option<i32>, Vec<Value>) {
    let repo = root.join("repo");
    if !repo.exists() {
        std::fs::create_dir_all(&repo).unwrap();
        sh(
            &repo,
            "git init -q -b main . && echo hi > a.txt && git add . && \
             git -c user.name=t -c user.email=t@t commit -q -m init",
        );
        std::fs::write(
            root.join("s.json"),
            r#"{"turns": [{"tool_calls": [{"name": "bash", "input": {"command": "echo ran-inside"}}]}, {"text": "done"}]}"#,
        )
        .unwrap();
    }
    let mut args = extra.to_vec();
    let script = format!("scripted:{}", root.join("s.json").display());
    let repo_s = repo.display().to_string();
    args.extend([
        "run", "--repo", &repo_s, "--prompt", "p", "--model", &script, "--json", "--no-pr",
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_tiny-backspace"))
        .args(&args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", root)
        .env("TB_HOME", root.join("home"))
        .env("TB_CONFIG", root.join("none.toml"))
        .current_dir(root)
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.code(), events)
}

fn validate_message(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "Status" && e["stage"] == "validate")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn bash_ran(events: &[Value]) -> bool {
    events.iter().any(|e| {
        e["type"] == "Tool: Bash" && e["output"].as_str().unwrap_or("").contains("ran-inside")
    })
}

/// A PATH with git (and the shell tools) but without bwrap.
fn path_without_bwrap(root: &Path) -> String {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["git", "bash", "sh"] {
        let p = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::os::unix::fs::symlink(p.trim(), bin.join(tool)).unwrap();
    }
    bin.display().to_string()
}

#[test]
fn the_strongest_working_backend_is_chosen_and_shown() {
    let t = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap();
    let (code, ev) = run(t.path(), &path, &[]);
    let shown = validate_message(&ev);
    match tiny_backspace::sandbox::probe(SandboxKind::Bwrap) {
        Ok(()) => {
            assert_eq!(code, Some(0), "{ev:?}");
            assert!(shown.contains("sandbox bwrap, no network"), "{shown}");
            // A failed run cannot pass this: the command must really have run.
            assert!(bash_ran(&ev), "{ev:?}");
        }
        Err(e) => sandbox_common::cannot_run(SandboxKind::Bwrap, "backend choice", &e),
    }

    let (code, ev) = run(t.path(), &path, &["--network"]);
    if code == Some(0) {
        assert!(validate_message(&ev).contains("network on"), "{ev:?}");
    }
}

#[test]
fn without_bwrap_landlock_is_used_and_asking_for_bwrap_fails() {
    let t = tempfile::tempdir().unwrap();
    let path = path_without_bwrap(t.path());
    let landlock = tiny_backspace::sandbox::probe(SandboxKind::Landlock);
    let (code, ev) = run(t.path(), &path, &[]);
    match &landlock {
        Ok(()) => {
            assert_eq!(code, Some(0), "{ev:?}");
            assert!(
                validate_message(&ev).contains("sandbox landlock, no network"),
                "{ev:?}"
            );
            assert!(bash_ran(&ev), "{ev:?}");
        }
        Err(e) => {
            sandbox_common::cannot_run(SandboxKind::Landlock, "backend choice", e);
            assert_ne!(code, Some(0));
            assert!(!bash_ran(&ev));
        }
    }
    // Asked for by name, bwrap is never silently replaced.
    let (code, ev) = run(t.path(), &path, &["--sandbox", "bwrap"]);
    assert_ne!(code, Some(0), "{ev:?}");
    assert!(!bash_ran(&ev), "{ev:?}");
    let last = ev.last().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        last.contains("not installed") && last.contains("landlock"),
        "{last}"
    );
}

#[test]
fn none_runs_only_when_asked_and_warns() {
    let t = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap();
    let (code, ev) = run(t.path(), &path, &["--sandbox", "none"]);
    assert_eq!(code, Some(0), "{ev:?}");
    let shown = validate_message(&ev);
    assert!(
        shown.contains("WARNING") && shown.contains("sandbox none"),
        "{shown}"
    );
}
