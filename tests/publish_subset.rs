//! Publishing part of a run: what the PR text and the commit say when files or hunks were left out
//! at review (`tiny-backspace publish RUN_ID --exclude PATH`, to a local repository so the commit
//! and the request-pull summary can be read back).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;

use git_http::git;
use publish_harness::{Env, calc_py};
use serde_json::json;

const LEFT_OUT: &str = "tests/test_guard.py";

/// A local repository with calc.py and a README, one commit on main.
fn local_repo(dir: &std::path::Path) {
    git(dir, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(dir.join("calc.py"), calc_py()).unwrap();
    std::fs::write(dir.join("README.md"), "# calc\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "Initial commit"]);
}

/// Guards divide (calc.py), adds a note and a test file, runs the tests; the summary claims they
/// pass and names no file.
fn script(env: &Env) -> std::path::PathBuf {
    env.script(json!([
        {"tool_calls": [
            {"name": "edit_file", "input": {"path": "calc.py", "old_str": "def divide(a, b):\n",
                "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n"}},
            {"name": "write_file", "input": {"path": "NOTES.md", "content": "divide rejects zero\n"}},
            {"name": "write_file", "input": {"path": LEFT_OUT, "content": "def test_guard():\n    assert True\n"}},
            {"name": "bash", "input": {"command": "python3 -c 'print(\"7 passed\")'"}}
        ]},
        {"text": "Reject a zero divisor\n\nDivision by zero now raises ValueError; all 7 tests pass."}
    ]))
}

/// `tiny-backspace run` of `script` on the local repository `dir`, with `gate` (`--no-pr` or
/// `--yes`); the run must succeed.
async fn run_on(
    env: &Env,
    dir: &std::path::Path,
    script: &std::path::Path,
    gate: &str,
) -> publish_harness::Output {
    let model = format!("scripted:{}", script.display());
    let out = env
        .tb(
            &[
                "run",
                "--repo",
                dir.to_str().unwrap(),
                "--prompt",
                "Make divide reject a zero divisor",
                gate,
                "--json",
                "--model",
                &model,
            ],
            &env.base_env(),
        )
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_out_is_named_neither_in_the_pr_text_nor_in_the_commit() {
    let env = Env::new(true).await;
    let local = tempfile::tempdir().unwrap();
    let dir = local.path();
    local_repo(dir);
    let out = run_on(&env, dir, &script(&env), "--no-pr").await;
    let run_id = out.run_id();
    let run_dir = env.runs_dir().join(&run_id);
    let full = std::fs::read_to_string(run_dir.join("patch.diff")).unwrap();
    assert!(full.contains(LEFT_OUT), "the agent's change has the file");

    let published = env.publish(&run_id, &["--exclude", LEFT_OUT]).await;
    assert_eq!(
        published.code, 0,
        "{}\n{}",
        published.stdout, published.stderr
    );
    let branch = published.last()["branch"].as_str().unwrap().to_string();
    let tree = git(dir, &["ls-tree", "-r", "--name-only", &branch]);
    assert!(!tree.contains(LEFT_OUT), "{tree}");
    assert!(tree.contains("NOTES.md"), "{tree}");

    // The PR text (pr.json), the request-pull summary and the commit message.
    let pr: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("pr.json")).unwrap()).unwrap();
    let body = pr["body"].as_str().unwrap();
    let request_pull = std::fs::read_to_string(run_dir.join("request-pull.txt")).unwrap();
    let message = git(dir, &["log", "-1", "--format=%B", &branch]);
    for (what, text) in [
        ("PR body", body),
        ("request-pull summary", request_pull.as_str()),
        ("commit message", message.as_str()),
    ] {
        assert!(
            !text.contains(LEFT_OUT) && !text.contains("test_guard"),
            "the {what} names the left-out file:\n{text}"
        );
    }
    // The body lists only what is in the PR, marks the agent's summary as describing the whole
    // change, and says the tests ran against the whole change.
    assert!(
        body.contains(
            "### Agent's summary (of the full change; 2 of 3 files are in this PR)\n\n\
             Reject a zero divisor\n"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "### Files changed (2 files, +3 −0)\n\n- `NOTES.md` +1 −0\n- `calc.py` +2 −0\n"
        ),
        "{body}"
    );
    assert!(body.contains("Left out at review: 1 file"), "{body}");
    assert!(
        body.contains("ran against the agent's full change"),
        "{body}"
    );
    assert!(
        message.contains(
            "Agent's summary (of the full change; 2 of 3 files are in this commit):\n\n\
             Division by zero now raises ValueError; all 7 tests pass."
        ),
        "{message}"
    );
    assert!(
        request_pull.contains("2 files changed, 3 insertions(+), 0 deletions(-)"),
        "{request_pull}"
    );
    assert!(
        request_pull.contains("of the full change; 2 of 3 files are in this commit"),
        "{request_pull}"
    );
    // The left-out choice is the run's saved review selection now.
    let selection = std::fs::read_to_string(run_dir.join("selection.json")).unwrap();
    assert!(selection.contains(LEFT_OUT), "{selection}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_everything_keeps_the_plain_text() {
    let env = Env::new(true).await;
    let local = tempfile::tempdir().unwrap();
    let dir = local.path();
    local_repo(dir);
    let out = run_on(&env, dir, &script(&env), "--yes").await;
    let run_dir = env.runs_dir().join(out.run_id());
    let pr: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("pr.json")).unwrap()).unwrap();
    let body = pr["body"].as_str().unwrap();
    assert!(
        body.starts_with("Reject a zero divisor\n") && !body.contains("Agent's summary"),
        "{body}"
    );
    assert!(body.contains(&format!("- `{LEFT_OUT}` +2 −0")), "{body}");
    let branch = out.last()["branch"].as_str().unwrap().to_string();
    let message = git(dir, &["log", "-1", "--format=%B", &branch]);
    assert!(!message.contains("full change"), "{message}");
}

/// A run that adds a file with bidi controls (Trojan Source) and a plain note, saved for review.
async fn warned_run(env: &Env, dir: &std::path::Path) -> String {
    let script = env.script(json!([
        {"tool_calls": [
            {"name": "write_file", "input": {"path": "access.js",
                "content": "var isAdmin = false;\n/*\u{202E} } \u{2066}if (isAdmin)\u{2069} \u{2066} admins only */\n"}},
            {"name": "write_file", "input": {"path": "NOTES.md", "content": "plain\n"}}
        ]},
        {"text": "Added notes."}
    ]));
    run_on(env, dir, &script, "--no-pr").await.run_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_warned_file_needs_an_explicit_yes_and_names_it_first() {
    let env = Env::new(true).await;
    let local = tempfile::tempdir().unwrap();
    let dir = local.path();
    local_repo(dir);
    let run_id = warned_run(&env, dir).await;
    let branches = || git(dir, &["branch", "--list"]).lines().count();

    // Refused before anything is pushed, naming the file and what is wrong with it.
    let refused = env.publish(&run_id, &[]).await;
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("access.js (hidden or bidi characters)")
            && refused.stderr.contains("--accept-warnings"),
        "{}",
        refused.stderr
    );
    assert_eq!(branches(), 1, "nothing was pushed");

    // Left out, nothing warned remains: it publishes, and a plain retry of that publish (the
    // saved approved patch) is not refused either.
    let without = env.publish(&run_id, &["--exclude", "access.js"]).await;
    assert_eq!(without.code, 0, "{}\n{}", without.stdout, without.stderr);
    assert_eq!(branches(), 2);
    let retry = env.publish(&run_id, &[]).await;
    assert_eq!(retry.code, 0, "{}\n{}", retry.stdout, retry.stderr);

    // Accepted explicitly (another run): publishes, and the publish log names the warning.
    let run_id = warned_run(&env, dir).await;
    let accepted = env.publish(&run_id, &["--accept-warnings"]).await;
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.stdout, accepted.stderr);
    assert!(
        accepted
            .stdout
            .contains("publishing files with warnings: access.js"),
        "{}",
        accepted.stdout
    );
}
