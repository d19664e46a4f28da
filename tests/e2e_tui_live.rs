//! The real binary in tmux for the live parts of issue 15: a running command's output appears
//! in its step before the command ends, the live diff shows the change before the run ends, the
//! full-screen pager reaches the last line of a 5,000-line output and searches it, and the mouse
//! (a click selects a step, the wheel scrolls the view).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;
#[path = "support/tmux.rs"]
mod tmux;

use support::{Env, make_repo, script};
use tmux::{Tmux, shell_quote};

/// The app on a local repository in a clean environment, the scripted model playing `turns`.
fn app_command(env: &Env, turns: serde_json::Value) -> String {
    let repo = make_repo(&env.path("repo"), "main", &[("a.txt", "a\n")]);
    let vars = [
        ("PATH", std::env::var("PATH").unwrap()),
        ("HOME", env.path("home").display().to_string()),
        ("TB_HOME", env.home().display().to_string()),
        ("TB_CONFIG", "/nonexistent/config.toml".to_string()),
    ];
    let vars: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    let path = env.write("script.json", &script(turns));
    format!(
        "env -i {} {} --repo {} --prompt 'Go live' --model {}",
        vars.join(" "),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        shell_quote(&repo.display().to_string()),
        shell_quote(&format!("scripted:{}", path.display())),
    )
}

/// A file written, then a slow command that prints before and after a long sleep, then a
/// 5,000-line output.
fn live_turns() -> serde_json::Value {
    serde_json::json!([
        {"tool_calls": [{"name": "bash", "input": {"command": "echo LIVE-LINE > live.txt"}}]},
        {"tool_calls": [{"name": "bash", "input": {
            "command": "echo STREAM-START; sleep 25; echo STREAM-END", "timeout_secs": 100}}]},
        {"tool_calls": [{"name": "bash", "input": {"command": "seq 1 5000"}}]},
        {"text": "Went live"}
    ])
}

fn in_review(tmux: &Tmux) -> String {
    tmux.wait_until("the review", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with(" review "))
    })
}

/// An SGR mouse report (`CSI < b ; x ; y M`, 1-based cells) typed into the pane.
fn mouse(tmux: &Tmux, button: u8, x: u16, y: u16) {
    let seq = format!("\x1b[<{button};{};{}M", x + 1, y + 1);
    let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
    let mut args = vec!["send-keys", "-t", "e2e", "-H"];
    args.extend(hex.iter().map(String::as_str));
    assert!(tmux.cmd(&args).status.success());
}

#[test]
fn output_streams_and_the_live_diff_shows_before_the_end_then_the_pager_reads_5000_lines() {
    let env = Env::new();
    let tmux = Tmux::start(
        env.path("tmux.sock"),
        120,
        30,
        None,
        &app_command(&env, live_turns()),
    );
    tmux.wait_for("Go live");
    tmux.send(&["C-s"]);
    // The slow command's first line is on screen while it still runs (its end 25 s later).
    // (The agent step names the command as it starts: wait for the output line itself.)
    let screen = tmux.wait_until("streamed output", |s| {
        s.lines()
            .any(|l| l.contains("STREAM-START") && !l.contains("echo STREAM-START"))
    });
    assert!(!screen.contains("STREAM-END"), "{screen}");
    assert!(screen.contains("→ running"), "the step runs: {screen}");
    // The live diff: the file the first command wrote, before the run ends.
    let screen = tmux.wait_until("the live diff", |s| {
        s.contains("Live diff") && s.contains("LIVE-LINE")
    });
    assert!(!screen.contains("STREAM-END"), "before the end: {screen}");
    assert!(!screen.contains(" review "), "{screen}");

    let screen = in_review(&tmux);
    assert!(!screen.contains("Live diff"), "the final diff: {screen}");
    // The steps pane. Mouse: a click on the first step's row selects it.
    tmux.send(&["BTab"]);
    let screen = tmux.screen();
    let row = screen
        .lines()
        .position(|l| l.starts_with("│") && l.contains("validate"))
        .expect("the validate step is on screen") as u16;
    mouse(&tmux, 0, 4, row);
    tmux.wait_until("the clicked step selected", |s| {
        s.lines()
            .any(|l| l.starts_with("│▸") && l.contains("validate"))
    });
    // The steps search selects the 5,000-line step; `v` opens it full screen.
    tmux.send(&["/"]);
    tmux.send_text("4999");
    tmux.send(&["Enter"]);
    tmux.wait_until("the step found", |s| s.contains("match 1 of 1"));
    tmux.send(&["Escape"]);
    tmux.send(&["v"]);
    tmux.wait_until("the pager", |s| s.contains("of 5000"));
    tmux.send(&["G"]);
    let screen = tmux.wait_until("the last line", |s| s.contains("–5000 of 5000"));
    assert!(
        screen.lines().any(|l| l.trim() == "5000"),
        "the last line shows: {screen}"
    );
    tmux.send(&["/"]);
    tmux.send_text("4321");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_until("the match", |s| s.contains("match 1 of 1"));
    assert!(screen.lines().any(|l| l.trim() == "4321"), "{screen}");
    tmux.send(&["q"]);
    tmux.wait_until("back to the steps", |s| s.contains(" review "));
    // Expanded, the step is read in the pane; the wheel scrolls its lines, the selection stays.
    tmux.send(&["Enter"]);
    let screen = tmux.wait_until("the step expanded", |s| s.contains("lines 1–"));
    let row = screen
        .lines()
        .position(|l| l.starts_with("│▸"))
        .expect("the selected step") as u16;
    mouse(&tmux, 65, 4, row + 2);
    let screen = tmux.wait_until("the wheel scrolled", |s| s.contains("lines 4–"));
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("│▸") && l.contains("seq 1 5000")),
        "{screen}"
    );
}
