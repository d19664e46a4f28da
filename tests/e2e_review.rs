//! The review is never lost — the real binary in tmux:
//! - Ctrl+S in review opens the PR dialog; the diff and the selection stay (local repository);
//! - a publish that fails (a bad token in `.env`, against the test forge) is retried from the TUI
//!   after the token is fixed in `.env`, with the same selection, and the forge gets the PR;
//! - a follow-up keeps the left-out hunk left out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;
#[path = "support/tmux.rs"]
mod tmux;
mod tui_support;

use std::path::Path;
use std::time::{Duration, Instant};

use publish_harness::{Env, OWNER, REPO};
use tmux::{Tmux, shell_quote};
use tui_support::{fixture_repo, two_hunk_script};

const PROMPT: &str = "Make divide reject a zero divisor";

/// The binary in a clean environment (`env -i` plus `vars`), in `dir`, with `args`.
fn start(dir: &Path, vars: &[(String, String)], args: &[String]) -> Tmux {
    let vars: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    let argv: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let command = format!(
        "env -i {} {} {}; echo $? > {}",
        vars.join(" "),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        argv.join(" "),
        shell_quote(&dir.join("exit-code").display().to_string())
    );
    Tmux::start(dir.join("tmux.sock"), 120, 34, Some(dir), &command)
}

fn base_vars(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        ),
        ("HOME".to_string(), dir.display().to_string()),
        (
            "TB_HOME".to_string(),
            dir.join("home").display().to_string(),
        ),
        (
            "TB_CONFIG".to_string(),
            dir.join("none.toml").display().to_string(),
        ),
        ("TERM".to_string(), "xterm-256color".to_string()),
    ]
}

fn args(repo: &str, script: &Path) -> Vec<String> {
    vec![
        "--repo".into(),
        repo.into(),
        "--prompt".into(),
        PROMPT.into(),
        "--model".into(),
        format!("scripted:{}", script.display()),
    ]
}

fn write_script(dir: &Path, script: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("script.json");
    std::fs::write(&path, script.to_string()).unwrap();
    path
}

/// Waits until `done(screen)` holds (generous deadline: a debug build on a busy machine).
fn wait_until(tmux: &Tmux, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = tmux.screen();
        if done(&s) {
            return s;
        }
        assert!(tmux.alive(), "the app died waiting for {what}");
        assert!(Instant::now() < deadline, "no {what}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs to the review, then leaves calc's second hunk out (NOTES.md first, then calc with two).
fn review_with_one_hunk_out(tmux: &Tmux) {
    tmux.wait_for(PROMPT);
    tmux.send(&["C-s"]);
    tmux.wait_for("3 of 3 hunks in the PR");
    tmux.wait_for(" review ");
    tmux.send(&["]", "n", "n", "Space"]);
    let s = tmux.wait_for("2 of 3 hunks in the PR");
    assert!(s.contains("[ ] @@"), "{s}");
}

fn close_dialog(tmux: &Tmux) {
    tmux.send(&["Escape"]);
    wait_until(tmux, "the dialog closed", |s| {
        !s.contains("Create pull request")
    });
}

fn runs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("home/runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// `q`, confirming when asked; the process exits with 0.
fn quit(tmux: &Tmux, dir: &Path) {
    tmux.send(&["q"]);
    let exit = dir.join("exit-code");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut resend = Instant::now() + Duration::from_secs(5);
    while !exit.exists() {
        let s = tmux.screen();
        if s.contains("Quit?") {
            tmux.send(&["y"]);
        } else if Instant::now() > resend {
            // A key right after Esc can be read as Alt+key on a loaded machine: send it again.
            tmux.send(&["q"]);
            resend = Instant::now() + Duration::from_secs(5);
        }
        assert!(Instant::now() < deadline, "did not quit: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(exit).unwrap().trim(), "0");
}

#[test]
fn ctrl_s_in_review_keeps_the_diff_and_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let script = write_script(dir.path(), &two_hunk_script());
    let tmux = start(
        dir.path(),
        &base_vars(dir.path()),
        &args(&repo.display().to_string(), &script),
    );
    review_with_one_hunk_out(&tmux);

    // Ctrl+S in the diff: the PR dialog, for the same selection.
    tmux.send(&["C-s"]);
    let s = tmux.wait_for("Create pull request");
    assert!(s.contains("2 of 3 hunks"), "{s}");
    close_dialog(&tmux);
    let s = tmux.wait_for(" review ");
    assert!(
        s.contains("2 of 3 hunks in the PR") && s.contains("[ ] @@"),
        "{s}"
    );

    // In the prompt field (after `e`) the first Ctrl+S only warns.
    tmux.send(&["e"]);
    tmux.wait_for("Ctrl+S twice");
    tmux.send(&["C-s"]);
    let s = tmux.wait_for("Ctrl+S again discards this review");
    assert!(s.contains("2 of 3 hunks in the PR"), "{s}");
    assert_eq!(runs(dir.path()).len(), 1, "no second run was started");
    // The selection is on disk too.
    let saved = std::fs::read_to_string(runs(dir.path())[0].join("selection.json")).unwrap();
    assert!(saved.contains("calc/__init__.py"), "{saved}");
    // Leave the prompt field (Esc and a key sent together would read as Alt+key in it).
    tmux.send(&["Escape"]);
    wait_until(&tmux, "the focus out of the prompt", |s| {
        !s.contains("Enter newline") && s.contains("space in/out")
    });
    quit(&tmux, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_is_retried_from_the_tui_after_fixing_the_token() {
    let env = Env::new(true).await;
    let dir = tempfile::tempdir().unwrap();
    let script = env.default_script();
    // The token comes from `.env` in the working directory (not the environment, which a running
    // process cannot see change): first a wrong one.
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, "GITHUB_TOKEN=ghp_expired0000\n").unwrap();
    let mut vars = base_vars(dir.path());
    vars.push(("GITHUB_API_URL".into(), env.forge.api_url()));
    let tmux = tokio::task::block_in_place(|| {
        let tmux = start(dir.path(), &vars, &args(&env.repo_url(), &script));
        // The pre-flight warns; review anyway.
        review_with_one_hunk_out(&tmux);
        tmux.send(&["c"]);
        tmux.wait_for("Create pull request");
        tmux.send(&["Home", "C-k"]);
        tmux.send_text("Reject zero divisors");
        tmux.wait_for("Reject zero divisors");
        tmux.send(&["C-s"]);
        let s = tmux.wait_for("publishing failed");
        assert!(s.contains("401") || s.contains("token"), "{s}");
        assert!(s.contains("Create pull request"), "the dialog stays: {s}");
        assert!(s.contains("2 of 3 hunks"), "{s}");
        tmux
    });
    assert!(env.forge.pulls().is_empty());

    std::fs::write(&dotenv, format!("GITHUB_TOKEN={}\n", env.token)).unwrap();
    tokio::task::block_in_place(|| {
        tmux.send(&["C-s"]);
        let s = wait_until(&tmux, "the PR", |s| s.contains("Pull request #"));
        assert!(s.contains("created"), "{s}");
    });
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0].title, "Reject zero divisors");
    let calc = env
        .git
        .show(OWNER, REPO, &format!("{}:calc.py", pulls[0].head_ref));
    assert!(calc.contains("division by zero"), "{calc}");
    assert!(
        !calc.contains("# product of a and b"),
        "the left-out hunk stays out after the retry: {calc}"
    );
    tokio::task::block_in_place(|| {
        wait_until(&tmux, "the end of the run", |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("done"))
        });
        close_dialog(&tmux);
        quit(&tmux, dir.path());
    });
}

#[test]
fn a_follow_up_keeps_the_left_out_hunk_out() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let mut script = two_hunk_script();
    let turns = script["turns"].as_array_mut().unwrap();
    turns.push(serde_json::json!({"tool_calls": [
        {"name": "write_file", "input": {"path": "B.md", "content": "b\n"}}]}));
    turns.push(serde_json::json!({"text": "Also added B.md"}));
    let script = write_script(dir.path(), &script);
    let tmux = start(
        dir.path(),
        &base_vars(dir.path()),
        &args(&repo.display().to_string(), &script),
    );
    review_with_one_hunk_out(&tmux);
    tmux.send(&["f"]);
    tmux.wait_for("Follow-up to the same workspace");
    tmux.send_text("Also add B");
    tmux.send(&["C-s"]);
    let s = tmux.wait_for("3 of 4 hunks in the PR");
    assert!(s.contains("[ ] @@"), "the left-out hunk is still out: {s}");
    let s = tmux.wait_for(" review ");
    assert!(s.contains("B.md"), "{s}");
    let saved = std::fs::read_to_string(runs(dir.path())[0].join("selection.json")).unwrap();
    assert!(saved.contains("calc/__init__.py"), "{saved}");
    quit(&tmux, dir.path());
}
