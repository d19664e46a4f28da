//! A small task for end-to-end runs: make `divide` reject zero.

use serde_json::json;

use super::Turn;

/// The final answer, given twice: before and after the self-review turn.
const SUMMARY: &str = "Make divide reject a zero divisor\n\ndivide() now raises ValueError instead \
     of ZeroDivisionError's bare message; NOTES.md says so.";

/// The model's side of the task, seven turns; every tool of the contract (but `update_plan`) is
/// used once or more. The run made changes, so its first text-only answer (turn 6) is followed
/// by the agent's self-review request, which the last turn answers.
pub fn task_turns() -> Vec<Turn> {
    vec![
        Turn::new(
            "I'll look at the code first.",
            &[
                ("list_files", json!({})),
                ("read_file", json!({"path": "calc.py"})),
            ],
        ),
        Turn::new(
            "",
            &[(
                "edit_file",
                json!({"path": "calc.py", "old_str": "def divide(a, b):\n    return a / b",
                       "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b"}),
            )],
        ),
        Turn::new(
            "Adding a short note for reviewers.",
            &[(
                "write_file",
                json!({"path": "NOTES.md", "content": "divide() rejects a zero divisor.\n"}),
            )],
        ),
        Turn::new(
            "",
            &[
                ("bash", json!({"command": "cat NOTES.md"})),
                ("search", json!({"pattern": "ValueError"})),
            ],
        ),
        Turn::new(
            "Checking the result once more.",
            &[("read_file", json!({"path": "calc.py"}))],
        ),
        Turn::new(SUMMARY, &[]),
        Turn::new(SUMMARY, &[]),
    ]
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository with `calc.py` and a README, one commit on `main`.
pub fn make_repo(parent: &std::path::Path) -> std::path::PathBuf {
    let dir = parent.join("calc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("calc.py"),
        "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n    return a / b\n",
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "# calc\n\nTiny calculator.\n").unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    dir
}
