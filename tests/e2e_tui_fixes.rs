//! The real binary in tmux for issue 15's defects that only a real terminal shows: a resize during
//! the session leaves nothing of the UI on the shell's screen after quitting; `Ctrl+C` in a dialog
//! cancels a running run (and the "cancelling…" note goes once it is cancelled); the clock stops
//! while the review waits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use support::{Env, make_repo, script};
use tmux::{Tmux, shell_quote};

/// The app's command line in a clean environment, on a local repository; with `script`, the
/// scripted model plays it.
fn app_command(env: &Env, script_json: Option<String>) -> String {
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
    let model = script_json.map_or(String::new(), |s| {
        let path = env.write("script.json", &s);
        format!(
            " --model {}",
            shell_quote(&format!("scripted:{}", path.display()))
        )
    });
    format!(
        "env -i {} {} --repo {} --prompt 'Add a note'{model}",
        vars.join(" "),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        shell_quote(&repo.display().to_string()),
    )
}

/// Waits until `cond` holds for the screen (generous deadline: a debug build on a busy box).
fn wait_until(tmux: &Tmux, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = tmux.screen();
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The header's clock (`m:ss`, the last word of the first line).
fn clock(screen: &str) -> String {
    screen
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string()
}

#[test]
fn quitting_after_a_resize_leaves_no_ui_on_the_shell_screen() {
    let env = Env::new();
    let tmux = Tmux::start(
        env.path("tmux.sock"),
        100,
        30,
        None,
        "env -i PATH=\"$PATH\" PS1='shell> ' bash --norc --noprofile -i",
    );
    tmux.wait_for("shell>");
    tmux.send_text(&app_command(&env, None));
    tmux.send(&["Enter"]);
    tmux.wait_for("Repository");
    let out = tmux.cmd(&["resize-window", "-t", "e2e", "-x", "120", "-y", "40"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Redrawn at the new size: the status line is on row 40.
    wait_until(&tmux, "the 120×40 layout", |s| {
        s.lines().nth(39).is_some_and(|l| l.contains("Ctrl+S"))
    });
    tmux.send(&["C-c"]);
    let screen = wait_until(&tmux, "the shell", |s| {
        !s.contains("Repository") && s.lines().any(|l| l.trim_end() == "shell>")
    });
    for ch in ['│', '┌', '└', '─'] {
        assert!(
            !screen.contains(ch),
            "UI left on the shell screen:\n{screen}"
        );
    }
}

#[test]
fn ctrl_c_in_the_help_cancels_a_running_run_and_the_note_goes_with_it() {
    let env = Env::new();
    let turns = serde_json::json!([
        {"tool_calls": [{"name": "bash", "input": {"command": "sleep 60"}}]},
        {"text": "done"}
    ]);
    let command = app_command(&env, Some(script(turns)));
    let tmux = Tmux::start(env.path("tmux.sock"), 100, 30, None, &command);
    tmux.wait_for("Add a note");
    tmux.send(&["C-s"]);
    tmux.wait_for("running · agent");
    tmux.send(&["F1"]);
    tmux.wait_for("Keys");
    tmux.send(&["C-c"]);
    // The dialog closed and the run was cancelled (not left running behind the help).
    let screen = wait_until(&tmux, "the cancelled run", |s| s.contains(" cancelled "));
    assert!(!screen.contains("Keys ·"), "the help closed: {screen}");
    assert!(
        !screen.contains("Ctrl+C again"),
        "the cancelling note went with the run: {screen}"
    );
    assert!(tmux.alive(), "the first Ctrl+C does not quit");
}

#[test]
fn the_clock_stops_while_the_review_waits() {
    let env = Env::new();
    let turns = serde_json::json!([
        {"tool_calls": [{"name": "write_file", "input": {"path": "NOTES.md", "content": "a note\n"}}]},
        {"text": "Add a note"}
    ]);
    let command = app_command(&env, Some(script(turns)));
    let tmux = Tmux::start(env.path("tmux.sock"), 100, 30, None, &command);
    tmux.wait_for("Add a note");
    tmux.send(&["C-s"]);
    // The status bar (the last line) says review, and the header shows the clock.
    let screen = wait_until(&tmux, "the review", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with(" review "))
            && clock(s).contains(':')
    });
    let first = clock(&screen);
    assert!(
        first.contains(':'),
        "a clock in the header: {first:?}\n{}",
        tmux.screen()
    );
    // Long enough for a running clock to show another second, many times over.
    std::thread::sleep(Duration::from_secs(3));
    let later = clock(&tmux.screen());
    assert_eq!(first, later, "the clock ran on in review");
}
