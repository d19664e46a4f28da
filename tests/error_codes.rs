//! Every stage's failure ends with an `Error` event whose `code` says why, through the real binary:
//! clients branch on the code, so each one a user can meet is pinned here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use serde_json::{Value, json};
use support::{Env, events, git, make_repo, script};

fn calc_repo(env: &Env) -> std::path::PathBuf {
    make_repo(
        &env.path("calc"),
        "main",
        &[("calc.py", "def divide(a, b):\n    return a / b\n")],
    )
}

/// The run's exit status and its last event, which must be an `Error`.
fn last_error(out: &std::process::Output) -> (Option<i32>, Value) {
    let last = events(&out.stdout).pop().expect("some events");
    assert_eq!(last["type"], "Error", "{last}");
    (out.status.code(), last)
}

fn done_script(env: &Env) -> std::path::PathBuf {
    env.write("s.json", &script(json!([{"text": "done"}])))
}

#[test]
fn bad_inputs_are_invalid_input_with_exit_2() {
    let env = Env::new();
    let repo = calc_repo(&env);
    let s = done_script(&env);
    for (repo_arg, prompt) in [
        ("/no/such/dir", "p"),
        ("ext::sh -c true", "p"),
        (repo.to_str().unwrap(), "   "),
    ] {
        let out = env.run_scripted(std::path::Path::new(repo_arg), prompt, &s, &[]);
        let (status, last) = last_error(&out);
        assert_eq!(status, Some(2), "{repo_arg}: {last}");
        assert_eq!(last["code"], "invalid_input", "{repo_arg}: {last}");
        assert_eq!(last["stage"], "validate");
    }
    // A base branch name git would refuse is bad input too.
    let out = env.run_scripted(&repo, "p", &s, &["--base", "a..b"]);
    let (status, last) = last_error(&out);
    assert_eq!(
        (status, last["code"].as_str()),
        (Some(2), Some("invalid_input")),
        "{last}"
    );
}

#[test]
fn a_missing_base_branch_is_base_not_found() {
    let env = Env::new();
    let repo = calc_repo(&env);
    let out = env.run_scripted(&repo, "p", &done_script(&env), &["--base", "nope"]);
    let (status, last) = last_error(&out);
    assert_eq!(status, Some(2));
    assert_eq!(last["code"], "base_not_found", "{last}");
}

#[test]
fn a_server_that_does_not_answer_is_repo_unreachable() {
    let env = Env::new();
    // A loopback port nobody listens on: bound, then closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/o/r.git");
    let out = env
        .scripted_command(&url, "p", &done_script(&env), &[])
        .output()
        .unwrap();
    let (status, last) = last_error(&out);
    assert_eq!(status, Some(2), "{last}");
    assert_eq!(last["code"], "repo_unreachable", "{last}");
    // curl says "Failed to connect … Couldn't connect to server": may work later.
    assert_eq!(last["retryable"], true, "{last}");
}

#[test]
fn an_agent_out_of_turns_is_model_budget() {
    let env = Env::new();
    let repo = calc_repo(&env);
    env.write("config.toml", "[agent]\nmax_turns = 2\n");
    let edit = json!({"tool_calls": [{"name": "write_file", "input": {"path": "b.txt", "content": "b\n"}}]});
    let s = env.write(
        "s.json",
        &script(json!([edit, edit, edit, {"text": "done"}])),
    );
    let out = env.run_scripted(&repo, "p", &s, &[]);
    let (status, last) = last_error(&out);
    assert_eq!(status, Some(1));
    assert_eq!(last["stage"], "agent");
    assert_eq!(last["code"], "model_budget", "{last}");
}

#[test]
fn a_script_that_runs_dry_is_a_model_request_failure() {
    let env = Env::new();
    let repo = calc_repo(&env);
    let read = json!({"tool_calls": [{"name": "read_file", "input": {"path": "calc.py"}}]});
    let s = env.write("s.json", &script(json!([read])));
    let out = env.run_scripted(&repo, "p", &s, &[]);
    let (status, last) = last_error(&out);
    assert_eq!(status, Some(1));
    assert_eq!(last["stage"], "agent");
    assert_eq!(last["code"], "model_request", "{last}");
}

#[test]
fn a_missing_sandbox_is_sandbox_unavailable() {
    let env = Env::new();
    let repo = calc_repo(&env);
    // A PATH with git but without bwrap.
    let bin = env.path("bin-without-bwrap");
    std::fs::create_dir_all(&bin).unwrap();
    let git_path = git(&repo, &["--exec-path"]);
    let git_bin = std::path::Path::new(git_path.trim()).join("git");
    std::os::unix::fs::symlink(&git_bin, bin.join("git")).unwrap();
    let out = env
        .scripted_command(
            repo.to_str().unwrap(),
            "p",
            &done_script(&env),
            &["--sandbox", "bwrap"],
        )
        .env("PATH", &bin)
        .output()
        .unwrap();
    let (status, last) = last_error(&out);
    assert_eq!(status, Some(2));
    assert_eq!(last["code"], "sandbox_unavailable", "{last}");
}

#[test]
fn an_old_error_event_without_a_code_reads_as_internal() {
    let old = r#"{"type":"Error","run_id":"r","stage":"agent","message":"m","retryable":false}"#;
    let event: tiny_backspace::event::Event = serde_json::from_str(old).unwrap();
    let Value::Object(v) = serde_json::to_value(&event).unwrap() else {
        panic!()
    };
    assert_eq!(v["code"], "internal");
}
