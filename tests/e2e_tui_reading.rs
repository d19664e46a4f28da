//! The real binary in tmux for reading a big diff (issue 15, "Reading"): `/` finds a line deep in
//! a 50,000-line diff and jumps there; `w` shows the end of a 500-character line at 80×24.

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
        "env -i {} {} --repo {} --prompt 'Read it' --model {}",
        vars.join(" "),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        shell_quote(&repo.display().to_string()),
        shell_quote(&format!("scripted:{}", path.display())),
    )
}

/// An agent that writes `big.txt` (50,000 lines, `needle` on line 40,000 only) and `long.txt`
/// (one 500-character line ending in `THE-END`).
fn big_turns() -> serde_json::Value {
    let cmd = "awk 'BEGIN{for(i=0;i<50000;i++){if(i==40000)print \"line \" i \" needle\"; else print \"line \" i}}' > big.txt && awk 'BEGIN{s=\"\";for(i=0;i<493;i++)s=s sprintf(\"%c\",97+i%26);print s \"THE-END\"}' > long.txt";
    serde_json::json!([
        {"tool_calls": [{"name": "bash", "input": {"command": cmd}}]},
        {"text": "Read it"}
    ])
}

/// The diff pane's text at 80 columns (right of the 30-column left pane), rows joined without
/// blanks or borders, so a word wrapped across two rows reads whole.
fn diff_text(screen: &str) -> String {
    screen
        .lines()
        .flat_map(|l| l.chars().skip(31))
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

fn in_review(tmux: &Tmux) -> String {
    tmux.wait_until("the review", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with(" review "))
            && s.contains("big.txt")
    })
}

#[test]
fn slash_finds_a_line_deep_in_a_50000_line_diff() {
    let env = Env::new();
    let tmux = Tmux::start(
        env.path("tmux.sock"),
        80,
        24,
        None,
        &app_command(&env, big_turns()),
    );
    tmux.wait_for("Read it");
    tmux.send(&["C-s"]);
    let screen = in_review(&tmux);
    assert!(screen.contains("+50000"), "the whole diff is in: {screen}");
    tmux.send(&["/"]);
    tmux.send_text("needle");
    tmux.wait_until("the prompt", |s| s.contains("/needle"));
    tmux.send(&["Enter"]);
    let screen = tmux.wait_until("the match", |s| s.contains("line 40000 needle"));
    assert!(screen.contains("match 1 of 1"), "{screen}");
    assert!(screen.contains("▸"), "{screen}");
    // n wraps around to the same (only) match; Esc ends the search.
    tmux.send(&["n"]);
    tmux.send(&["Escape"]);
    let screen = tmux.wait_until("the search ended", |s| !s.contains("match 1 of 1"));
    assert!(screen.contains("line 40000 needle"), "{screen}");
}

#[test]
fn w_shows_the_end_of_a_500_character_line_at_80x24() {
    let env = Env::new();
    let tmux = Tmux::start(
        env.path("tmux.sock"),
        80,
        24,
        None,
        &app_command(&env, big_turns()),
    );
    tmux.wait_for("Read it");
    tmux.send(&["C-s"]);
    in_review(&tmux);
    // The second file is long.txt.
    tmux.send(&["]"]);
    let screen = tmux.wait_until("long.txt", |s| s.contains("abcdefghij"));
    assert!(
        !diff_text(&screen).contains("E-END"),
        "cut before wrapping: {screen}"
    );
    tmux.send(&["w"]);
    tmux.wait_until("wrapping", |s| s.contains("· wrap"));
    // Down onto the line (past the file's note and hunk header): its row starts on screen and,
    // wrapped, ends on it too.
    tmux.send(&["j", "j", "j"]);
    let screen = tmux.wait_until("the wrapped line", |s| diff_text(s).contains("THE-END"));
    assert!(screen.contains("· wrap"), "{screen}");
    // Unwrapped again, l scrolls sideways to the same end.
    tmux.send(&["w"]);
    tmux.wait_until("unwrapped", |s| !s.contains("THE-END"));
    // Half the text's width (16 columns here, with 5-digit line numbers) per press.
    for _ in 0..40 {
        tmux.send(&["l"]);
    }
    let screen = tmux.wait_until("the end by l", |s| s.contains("THE-END"));
    assert!(screen.contains("· col "), "{screen}");
}
