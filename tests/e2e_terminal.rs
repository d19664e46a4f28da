//! The real binary in tmux, for what only a real terminal shows: `Ctrl+E` hands the focused field
//! to `$EDITOR` and takes its text back; `Ctrl+Z` suspends to the shell and `fg` brings the screen
//! back, still working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use support::{Env, make_repo};
use tmux::{Tmux, shell_quote};

/// The app's command line: a clean environment (PATH, HOME, TB_HOME and `extra`), a local
/// repository and a prompt, no model (nothing here runs the agent).
fn app_command(env: &Env, extra: &[(&str, String)]) -> String {
    let repo = make_repo(&env.path("repo"), "main", &[("a.txt", "a\n")]);
    let mut vars = vec![
        ("PATH", std::env::var("PATH").unwrap()),
        ("HOME", env.path("home").display().to_string()),
        ("TB_HOME", env.home().display().to_string()),
        ("TB_CONFIG", "/nonexistent/config.toml".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let vars: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    format!(
        "env -i {} {} --repo {} --prompt 'The prompt before'",
        vars.join(" "),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        shell_quote(&repo.display().to_string()),
    )
}

#[test]
fn ctrl_e_edits_the_prompt_in_the_editor() {
    let env = Env::new();
    let editor = env.path("editor.sh");
    let seen = env.path("editor-saw");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\ncp \"$1\" {}\nprintf 'Written in the editor\\n' > \"$1\"\n",
            shell_quote(&seen.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let command = app_command(&env, &[("EDITOR", editor.display().to_string())]);
    let tmux = Tmux::start(env.path("tmux.sock"), 100, 30, None, &command);
    tmux.wait_for("The prompt before");
    tmux.wait_for("Repository");
    tmux.send(&["C-e"]);
    let screen = tmux.wait_for("Written in the editor");
    assert!(!screen.contains("The prompt before"), "{screen}");
    // The editor was given the field's text, and the app came back in one piece.
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        "The prompt before"
    );
    assert!(screen.contains("Repository"), "{screen}");
}

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_resumes() {
    let env = Env::new();
    // An interactive shell, so there is job control to suspend to.
    let tmux = Tmux::start(
        env.path("tmux.sock"),
        100,
        30,
        None,
        "env -i PATH=\"$PATH\" PS1='shell> ' bash --norc --noprofile -i",
    );
    tmux.wait_for("shell>");
    tmux.send_text(&app_command(&env, &[]));
    tmux.send(&["Enter"]);
    // Only the app draws pane titles (the shell echoes the command line, prompt included).
    tmux.wait_for("Repository");
    tmux.send(&["C-z"]);
    let screen = tmux.wait_for("Stopped");
    assert!(
        !screen.contains("Repository"),
        "the app still draws: {screen}"
    );
    tmux.send_text("fg");
    tmux.send(&["Enter"]);
    tmux.wait_for("Repository");
    // Still taking keys, in raw mode: typing goes into the prompt field.
    tmux.send_text(" and after");
    tmux.wait_for("The prompt before and after");
    // Idle, with nothing to lose: Ctrl+C quits, back to the shell.
    tmux.send(&["C-c"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmux.screen().contains("Repository") {
        assert!(Instant::now() < deadline, "did not quit: {}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.send_text("echo exit-status-$?");
    tmux.send(&["Enter"]);
    tmux.wait_for("exit-status-0");
}
