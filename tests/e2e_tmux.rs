//! The real binary in tmux, end to end:
//! - against the test forge (a real git smart-HTTP server and a GitHub-shaped API): prefilled
//!   fields, Ctrl+S, review, deselect one hunk, `c`, a new title, Ctrl+S — then the forge holds a
//!   PR with that title whose branch lacks the deselected hunk;
//! - `tiny-backspace demo`: the README's first command, through to a branch on the demo's origin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;
#[path = "support/tmux.rs"]
mod tmux;

use std::path::Path;
use std::time::{Duration, Instant};

use publish_harness::{Env, OWNER, REPO};
use tmux::{Tmux, shell_quote};

fn start(dir: &Path, env_vars: &[(String, String)], args: &[String]) -> Tmux {
    let vars: Vec<String> = env_vars
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

/// Waits for the outcome dialog of a publish (success or failure).
fn wait_outcome(tmux: &Tmux) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = tmux.screen();
        if s.contains("Esc close") {
            return s;
        }
        assert!(tmux.alive(), "the app died");
        assert!(Instant::now() < deadline, "no outcome shown: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quit(tmux: &Tmux, dir: &Path) {
    // The outcome shows when the PR (or branch) is made; the run ends a moment later (cleanup).
    // Quitting before that rightly asks first, so wait for the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let screen = tmux.screen();
        let status = screen
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if status.trim_start().starts_with("done") {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not end: {screen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.send(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmux.screen().contains("Esc close") {
        assert!(Instant::now() < deadline, "dialog did not close");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.send(&["q"]);
    let exit = dir.join("exit-code");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut resend = Instant::now() + Duration::from_secs(5);
    while !exit.exists() {
        let screen = tmux.screen();
        assert!(
            !screen.contains("Quit?"),
            "nothing is unpublished, yet quitting asks: {screen}"
        );
        assert!(Instant::now() < deadline, "did not quit: {screen}");
        // On a loaded machine a key sent right after Esc can be read as Alt+key: send it again.
        if Instant::now() > resend {
            tmux.send(&["q"]);
            resend = Instant::now() + Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(exit).unwrap().trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tui_publishes_a_pr_with_the_edited_title_and_without_the_deselected_hunk() {
    let env = Env::new(true).await;
    let script = env.default_script();
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "--repo".to_string(),
        env.repo_url(),
        "--prompt".into(),
        "Make divide reject a zero divisor".into(),
        "--model".into(),
        format!("scripted:{}", script.display()),
    ];
    let vars = env.base_env();
    let tmux = tokio::task::block_in_place(|| {
        let tmux = start(dir.path(), &vars, &args);
        let s = tmux.wait_for("Make divide reject a zero divisor");
        assert!(s.contains("replay"), "{s}");
        tmux.send(&["C-s"]);
        tmux.wait_for("3 of 3 hunks in the PR");
        // The diff arrives just before the review state; keys act on review.
        tmux.wait_for(" review ");
        // NOTES.md first, then calc.py with two hunks: leave calc.py's second one out.
        tmux.send(&["]", "n", "n", "Space"]);
        tmux.wait_for("2 of 3 hunks in the PR");
        tmux.send(&["c"]);
        tmux.wait_for("Create pull request");
        tmux.send(&["Home", "C-k"]);
        tmux.send_text("Reject zero divisors");
        tmux.wait_for("Reject zero divisors");
        tmux.send(&["C-s"]);
        let s = wait_outcome(&tmux);
        assert!(s.contains("Pull request #"), "{s}");
        tmux
    });

    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    assert_eq!(pr.title, "Reject zero divisors");
    assert_eq!(pr.base, "main");
    let calc = env
        .git
        .show(OWNER, REPO, &format!("{}:calc.py", pr.head_ref));
    assert!(calc.contains("division by zero"), "{calc}");
    assert!(
        !calc.contains("# product of a and b"),
        "the deselected hunk is absent: {calc}"
    );
    assert!(
        env.git
            .show(OWNER, REPO, &format!("{}:NOTES.md", pr.head_ref))
            .contains("divide rejects zero")
    );
    tokio::task::block_in_place(|| quit(&tmux, dir.path()));
}

#[test]
fn the_demo_runs_in_the_tui_through_to_a_branch_on_its_local_origin() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let vars = vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        ),
        ("HOME".to_string(), dir.path().display().to_string()),
        ("TB_HOME".to_string(), home.display().to_string()),
        (
            "TB_CONFIG".to_string(),
            dir.path().join("none.toml").display().to_string(),
        ),
        ("TERM".to_string(), "xterm-256color".to_string()),
    ];
    let tmux = start(dir.path(), &vars, &["demo".to_string()]);
    let s = tmux.wait_for("Make divide() raise a ValueError");
    assert!(s.contains("replay"), "{s}");
    tmux.send(&["C-s"]);
    tmux.wait_for("hunks in the PR");
    tmux.wait_for(" review ");
    tmux.send(&["c"]);
    tmux.wait_for("Create pull request");
    tmux.send(&["C-s"]);
    let s = wait_outcome(&tmux);
    assert!(s.contains("Published as branch"), "{s}");
    quit(&tmux, dir.path());

    let demo: Vec<_> = std::fs::read_dir(home.join("demo"))
        .unwrap()
        .flatten()
        .collect();
    let origin = demo[0].path().join("origin.git");
    let out = std::process::Command::new("git")
        .args([
            "--git-dir",
            origin.to_str().unwrap(),
            "branch",
            "--list",
            "tb/*",
        ])
        .output()
        .unwrap();
    let branch = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("* ")
        .to_string();
    assert!(branch.starts_with("tb/"), "{branch}");
    let show = std::process::Command::new("git")
        .args([
            "--git-dir",
            origin.to_str().unwrap(),
            "show",
            &format!("{branch}:tests/test_errors.py"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("test_divide_by_zero_is_a_value_error"));
}
