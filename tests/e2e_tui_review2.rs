//! The review workspace of issue 15, the real binary in tmux:
//! - `E` with a scripted `$EDITOR` (sed on its argument) changes a line of the agent's change; the
//!   diff is computed again, the steps say "You edited …", and the published branch has the line;
//! - a comment on a hunk (`C`), sent from the list (`L`, `Ctrl+S`) as a follow-up, arrives in the
//!   model's request with its `path:line` and the line's text (a local model server);
//! - after a follow-up, `d` shows only what the follow-up changed, and `d` again everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;
#[path = "support/tmux.rs"]
mod tmux;
mod tui_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mock_llm::{Format, MockServer, Model, Turn};
use serde_json::json;
use tmux::{Tmux, shell_quote};
use tui_support::{fixture_repo, two_hunk_script};

const PROMPT: &str = "Make divide reject a zero divisor";

/// The binary in a clean environment (`env -i` plus `vars`), in `dir`, at 120×34.
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

fn vars(dir: &Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".into(), dir.display().to_string()),
        ("TB_HOME".into(), dir.join("home").display().to_string()),
        (
            "TB_CONFIG".into(),
            dir.join("none.toml").display().to_string(),
        ),
        ("TERM".into(), "xterm-256color".into()),
    ]
}

fn scripted_args(repo: &Path, dir: &Path, script: &serde_json::Value) -> Vec<String> {
    let path = dir.join("script.json");
    std::fs::write(&path, script.to_string()).unwrap();
    vec![
        "--repo".into(),
        repo.display().to_string(),
        "--prompt".into(),
        PROMPT.into(),
        "--model".into(),
        format!("scripted:{}", path.display()),
    ]
}

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

fn to_review(tmux: &Tmux, hunks: &str) {
    tmux.wait_for(PROMPT);
    tmux.send(&["C-s"]);
    tmux.wait_for(hunks);
    tmux.wait_for(" review ");
}

fn git_out(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn e_with_a_scripted_editor_changes_a_line_that_reaches_the_published_branch() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/return x + 7$/return x + 700  # by the reviewer/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut v = vars(dir.path());
    v.push(("EDITOR".into(), editor.display().to_string()));
    let tmux = start(
        dir.path(),
        &v,
        &scripted_args(&repo, dir.path(), &two_hunk_script()),
    );
    to_review(&tmux, "3 of 3 hunks in the PR");
    // The file list (Shift+Tab from the diff), calc (second), E.
    tmux.send(&["BTab"]);
    tmux.wait_for("j/k file");
    tmux.send(&["j"]);
    tmux.send(&["E"]);
    tmux.wait_for("You edited calc/__init__.py (+1 −1)");
    tmux.wait_for("4 of 4 hunks in the PR");
    tmux.wait_for(" review ");
    tmux.send(&["c"]);
    tmux.wait_for("Create pull request");
    tmux.send(&["C-s"]);
    let s = tmux.wait_for("Published as branch");
    let branch = git_out(
        &repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
    )
    .lines()
    .find(|b| *b != "main")
    .map(str::to_string)
    .unwrap_or_else(|| panic!("no published branch: {s}"));
    let calc = git_out(&repo, &["show", &format!("{branch}:calc/__init__.py")]);
    assert!(
        calc.contains("return x + 700  # by the reviewer"),
        "the reviewer's edit is published: {calc}"
    );
    assert!(calc.contains("division by zero"), "and the agent's: {calc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunk_comment_arrives_in_the_follow_up_request_with_its_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let edit = json!({"path": "calc/__init__.py",
        "old_str": "def divide(a, b):\n    return a / b",
        "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b"});
    // The run, its self-review, then the follow-up (and spare answers).
    let turns = vec![
        Turn::new("", &[("edit_file", edit)]),
        Turn::new(PROMPT, &[]),
        Turn::new("Checked: nothing to add.", &[]),
        Turn::new("Noted, using a custom error type.", &[]),
        Turn::new("Done.", &[]),
        Turn::new("Done.", &[]),
    ];
    let model = Model::new(Format::Anthropic, turns);
    let server = MockServer::start(model.handler()).await;
    let mut v = vars(dir.path());
    v.push((
        "ANTHROPIC_API_KEY".into(),
        "sk-ant-api03-review2-aaaa".into(),
    ));
    v.push(("ANTHROPIC_BASE_URL".into(), server.url()));
    v.push(("TB_SANDBOX".into(), "none".into()));
    let args = vec![
        "--repo".into(),
        repo.display().to_string(),
        "--prompt".into(),
        PROMPT.into(),
    ];
    let tmux = tokio::task::block_in_place(|| {
        let tmux = start(dir.path(), &v, &args);
        to_review(&tmux, "1 of 1 hunks in the PR");
        // The cursor onto the hunk's header, then C.
        tmux.send(&["n"]);
        tmux.send(&["C"]);
        let s = tmux.wait_for("Comment · Ctrl+S saves");
        assert!(s.contains("calc/__init__.py:2"), "{s}");
        tmux.send_text("Use a custom error type here");
        tmux.wait_for("Use a custom error type here");
        tmux.send(&["C-s"]);
        tmux.wait_for("comment on calc/__init__.py:2 saved");
        tmux.send(&["L"]);
        tmux.wait_for("Comments · Ctrl+S sends");
        tmux.send(&["C-s"]);
        wait_until(&tmux, "the follow-up's answer", |s| {
            s.contains("Noted, using a custom error") && s.contains(" review ")
        });
        tmux
    });
    let requests = server.requests();
    let followup = requests
        .iter()
        .map(|r| r.body.to_string())
        .find(|b| b.contains("Use a custom error type here"))
        .unwrap_or_else(|| panic!("no request carried the comment: {requests:#?}"));
    assert!(followup.contains("calc/__init__.py:2"), "{followup}");
    assert!(
        followup.contains("if b == 0:"),
        "the line's text: {followup}"
    );
    // Kept with the run.
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("home/runs"))
        .unwrap()
        .flatten()
        .collect();
    let saved = std::fs::read_to_string(runs[0].path().join("review.json")).unwrap();
    assert!(
        saved.contains("Use a custom error type here") && saved.contains("\"sent\": true"),
        "{saved}"
    );
    drop(tmux);
}

#[test]
fn d_after_a_follow_up_shows_only_what_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let mut script = two_hunk_script();
    let turns = script["turns"].as_array_mut().unwrap();
    turns.push(json!({"tool_calls": [
        {"name": "write_file", "input": {"path": "B.md", "content": "added by the follow-up\n"}}]}));
    turns.push(json!({"text": "Also added B.md"}));
    let tmux = start(
        dir.path(),
        &vars(dir.path()),
        &scripted_args(&repo, dir.path(), &script),
    );
    to_review(&tmux, "3 of 3 hunks in the PR");
    tmux.send(&["d"]);
    tmux.wait_for("there was no follow-up yet");
    tmux.send(&["f"]);
    tmux.wait_for("Follow-up to the same workspace");
    tmux.send_text("Also add B");
    tmux.send(&["C-s"]);
    tmux.wait_for("4 of 4 hunks in the PR");
    tmux.wait_for(" review ");
    tmux.send(&["d"]);
    let s = tmux.wait_for("since last review");
    assert!(
        s.contains("+ added by the follow-up") || s.contains("added by the follow-up"),
        "{s}"
    );
    assert!(
        !s.contains("division by zero"),
        "the agent's earlier hunks are hidden: {s}"
    );
    assert!(!s.contains("divide rejects zero"), "{s}");
    tmux.send(&["d"]);
    let s = wait_until(&tmux, "the whole diff", |s| {
        !s.contains("since last review")
    });
    assert!(s.contains("division by zero"), "{s}");
}
