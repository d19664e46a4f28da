//! End to end: the real binary inside tmux — fields prefilled from the flags, Ctrl+S, wait for
//! the review, deselect one hunk, `c`, change the title, Ctrl+S, then check what was approved.
//!
//! The fixture is a local repository, which takes no pull requests: publishing makes a branch in
//! it, so the test checks that branch (the edited title as the commit subject, the deselected hunk
//! absent). The `Some(url)` branch of `check_outcome` is where checks against a forge go.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/tmux.rs"]
mod tmux;
mod tui_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tmux::{Tmux, shell_quote};
use tui_support::{fixture_repo, two_hunk_script};

#[test]
fn tmux_run_review_deselect_and_approve() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let home = dir.path().join("home");
    let script = dir.path().join("script.json");
    std::fs::write(&script, two_hunk_script().to_string()).unwrap();
    let exit_file = dir.path().join("exit-code");
    let bin = env!("CARGO_BIN_EXE_tiny-backspace");
    let command = format!(
        "TB_HOME={home} TB_CONFIG={cfg} {bin} --repo {repo} --prompt {prompt} --model scripted:{script}; \
         echo $? > {exit}",
        home = shell_quote(&home.display().to_string()),
        cfg = shell_quote(&dir.path().join("none.toml").display().to_string()),
        bin = shell_quote(bin),
        repo = shell_quote(&repo.display().to_string()),
        prompt = shell_quote("Make divide reject a zero divisor"),
        script = shell_quote(&script.display().to_string()),
        exit = shell_quote(&exit_file.display().to_string()),
    );
    let tmux = Tmux::start(
        dir.path().join("tmux.sock"),
        100,
        30,
        Some(dir.path()),
        &command,
    );

    // Prefilled from the flags.
    let s = tmux.wait_for("Make divide reject a zero divisor");
    assert!(s.contains(&repo.display().to_string()[..20]), "{s}");
    assert!(
        s.contains("replay"),
        "the scripted model is labeled replay: {s}"
    );

    // Resizing re-lays out; too small says so; growing back restores the screen.
    let out = tmux.cmd(&["resize-window", "-t", "e2e", "-x", "50", "-y", "12"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait_for("Terminal too small: 50×12");
    tmux.cmd(&["resize-window", "-t", "e2e", "-x", "100", "-y", "30"]);
    tmux.wait_for("Make divide reject a zero divisor");

    tmux.send(&["C-s"]);
    tmux.wait_for("3 of 3 hunks in the PR");
    // The diff arrives just before the review state: wait for that too.
    let s = tmux.wait_for(" review ");
    assert!(s.contains("3 of 3 hunks in the PR"), "{s}");

    // Files: NOTES.md, then calc/__init__.py with two hunks: leave calc's second one out.
    tmux.send(&["]", "n", "n", "Space"]);
    let s = tmux.wait_for("2 of 3 hunks in the PR");
    assert!(s.contains("[ ] @@"), "{s}");

    tmux.send(&["c"]);
    tmux.wait_for("Create pull request");
    tmux.send(&["Home", "C-k"]);
    tmux.send_text("Reject zero divisors");
    tmux.wait_for("Reject zero divisors");
    tmux.send(&["C-s"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let s = loop {
        let s = tmux.screen();
        assert!(Instant::now() < deadline, "no outcome shown: {s}");
        if s.contains("Esc close") {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(tmux.alive(), "the app died: {s}");
    };
    check_outcome(&home, &repo, &s);

    // Quit cleanly: the outcome shows when the PR is made and the run ends a moment later
    // (cleanup); quitting before that rightly asks first, so wait for the end. Then close the
    // dialog and q (nothing unpublished is pending any more).
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
    // (Esc and q sent together would read as Alt+q: wait for the dialog to close first.)
    tmux.send(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmux.screen().contains("Create pull request") {
        assert!(Instant::now() < deadline, "dialog did not close");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.send(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut resend = Instant::now() + Duration::from_secs(5);
    while !exit_file.exists() {
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
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert_eq!(code.trim(), "0");
}

/// What the approval produced: read from the run folder's events, then checked where it went.
fn check_outcome(home: &Path, repo: &Path, screen: &str) {
    let runs: Vec<PathBuf> = std::fs::read_dir(home.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let done: serde_json::Value = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "Done")
        .expect("a Done event");
    match (done["pr_url"].as_str(), done["branch"].as_str()) {
        (Some(url), _) => {
            // A forge took a pull request: the TUI shows it. With a test forge, also check it
            // holds a PR titled "Reject zero divisors" whose branch lacks "# product".
            assert!(screen.contains("Pull request #"), "{screen}");
            assert!(screen.contains(&url[..url.len().min(40)]), "{screen}");
        }
        (None, Some(branch)) => {
            // A local repository takes no pull requests: the approved change is a branch in it,
            // committed with the edited title, without the deselected hunk.
            assert!(screen.contains("Published as branch"), "{screen}");
            let git = |args: &[&str]| {
                let out = Command::new("git")
                    .arg("-C")
                    .arg(repo)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "git {args:?}");
                String::from_utf8(out.stdout).unwrap()
            };
            assert_eq!(
                git(&["log", "-1", "--format=%s", branch]).trim(),
                "Reject zero divisors"
            );
            let calc = git(&["show", &format!("{branch}:calc/__init__.py")]);
            assert!(calc.contains("division by zero"), "{calc}");
            assert!(
                !calc.contains("# product"),
                "the deselected hunk is left out: {calc}"
            );
            let notes = git(&["show", &format!("{branch}:NOTES.md")]);
            assert!(notes.contains("divide rejects zero"));
        }
        (None, None) => {
            // Not published: the approved selection is saved next to the full patch.
            assert!(screen.contains("No pull request was created"), "{screen}");
            let approved = std::fs::read_to_string(run.join("approved.diff")).unwrap();
            assert!(approved.contains("division by zero"), "{approved}");
            assert!(!approved.contains("# product"), "{approved}");
        }
    }
}

#[test]
fn no_color_real_binary_draws_no_colors() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "NO_COLOR=1 TB_HOME={} TB_CONFIG={} {} --repo octo/calc --prompt p --model scripted:x.json",
        shell_quote(&dir.path().join("home").display().to_string()),
        shell_quote(&dir.path().join("none.toml").display().to_string()),
        shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
    );
    let tmux = Tmux::start(dir.path().join("tmux.sock"), 100, 30, None, &command);
    tmux.wait_for("Repository");
    let colored = tmux.cmd(&["capture-pane", "-e", "-p", "-t", "e2e"]).stdout;
    let text = String::from_utf8_lossy(&colored);
    // SGR parameters that set a color: 30–37, 40–47, 90–97, 100–107, 38;…, 48;…
    let sets_color = text.split("\x1b[").skip(1).any(|seq| {
        let params = seq.split('m').next().unwrap_or("");
        params.split(';').any(|p| {
            matches!(
                p.parse::<u32>(),
                Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
            )
        })
    });
    assert!(!sets_color, "NO_COLOR: no color codes expected:\n{text:?}");
    assert!(
        text.contains("\x1b[1m") || text.contains("\x1b[7m"),
        "modifiers stay"
    );
}
