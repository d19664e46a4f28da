//! Budgets and cancellation, through the real binary: each ends the run with a clear `Error`, keeps
//! the work so far, and leaves no process and no workspace behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Env, events, make_repo, script};

fn repo(env: &Env) -> String {
    make_repo(&env.path("r"), "main", &[("a.txt", "a\n")])
        .display()
        .to_string()
}

fn run_with_config(
    env: &Env,
    config: &str,
    turns: serde_json::Value,
) -> (Option<i32>, Vec<serde_json::Value>) {
    env.write("config.toml", config);
    let s = env.write("s.json", &script(turns));
    let out = env.run_scripted(std::path::Path::new(&&repo(env)), "p", &s, &[]);
    (out.status.code(), events(&out.stdout))
}

#[test]
fn turn_budget_ends_the_run_and_keeps_the_patch() {
    let env = Env::new();
    let edit = json!({"tool_calls": [{"name": "write_file", "input": {"path": "b.txt", "content": "b\n"}}]});
    let (code, evs) = run_with_config(
        &env,
        "[agent]\nmax_turns = 2\n",
        json!([edit, edit, edit, {"text": "done"}]),
    );
    assert_eq!(code, Some(1));
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "Error");
    assert_eq!(last["stage"], "agent");
    let msg = last["message"].as_str().unwrap();
    assert!(
        msg.contains("all 2 turns") && msg.contains("max_turns"),
        "{msg}"
    );
    assert!(
        evs.iter().any(|e| e["type"] == "Diff"),
        "the work so far is diffed"
    );
    let patch = std::fs::read_to_string(env.run_folders()[0].join("patch.diff")).unwrap();
    assert!(patch.contains("+b"));
    assert!(env.leftover_workspaces().is_empty());
}

#[test]
fn token_budget_ends_the_run() {
    let env = Env::new();
    let turn = json!({"tool_calls": [{"name": "list_files", "input": {}}], "usage": {"input_tokens": 80, "output_tokens": 40}});
    let (code, evs) = run_with_config(
        &env,
        "[agent]\nmax_tokens = 200\n",
        json!([turn, turn, turn, {"text": "done"}]),
    );
    assert_eq!(code, Some(1));
    let msg = evs.last().unwrap()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("240 tokens") && msg.contains("budget of 200"),
        "{msg}"
    );
    let usage: Vec<_> = evs.iter().filter(|e| e["type"] == "Usage").collect();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0]["input_tokens"], 80);
}

#[test]
fn time_budget_ends_the_run_while_the_model_thinks() {
    let env = Env::new();
    let started = Instant::now();
    let (code, evs) = run_with_config(
        &env,
        "[agent]\nmax_seconds = 1\n",
        json!([{"text": "slow", "delay_ms": 30000}]),
    );
    assert_eq!(code, Some(1));
    assert!(started.elapsed() < Duration::from_secs(20));
    let msg = evs.last().unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("time budget"), "{msg}");
}

#[test]
fn running_out_of_script_is_an_error_not_an_invented_answer() {
    let env = Env::new();
    let (code, evs) = run_with_config(
        &env,
        "",
        json!([{"tool_calls": [{"name": "list_files", "input": {}}]}]),
    );
    assert_eq!(code, Some(1));
    let msg = evs.last().unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("1 turns") && msg.contains("turn 2"), "{msg}");
}

fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn ctrl_c_during_a_long_command_cleans_up_everything() {
    let env = Env::new();
    let marker = format!("sleep 4{}", std::process::id() % 1000 + 1000);
    let s = env.write("s.json", &script(json!([
        {"tool_calls": [{"name": "write_file", "input": {"path": "partial.txt", "content": "p\n"}}]},
        {"tool_calls": [{"name": "bash", "input": {"command": format!("{marker} & {marker}")}}]},
        {"text": "never reached"}
    ])));
    let mut child = env
        .command()
        .args([
            "run",
            "--repo",
            &repo(&env),
            "--prompt",
            "p",
            "--model",
            &format!("scripted:{}", s.display()),
            "--json",
            "--no-pr",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = vec![];
    // Wait until the partial edit is reported: the next call is the long command.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("\"Tool: Edit\"");
        seen.push(line);
        if done {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_matching(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the long command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let evs: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "Error");
    assert!(
        last["message"].as_str().unwrap().contains("cancelled"),
        "{last}"
    );
    let bash = evs
        .iter()
        .find(|e| e["type"] == "Tool: Bash")
        .expect("the interrupted command is reported");
    assert!(
        bash["terminated"].as_str().unwrap().contains("cancelled"),
        "{bash}"
    );
    // SIGKILL is delivered at once; the kernel may take a moment to finish tearing them down.
    let gone_by = Instant::now() + Duration::from_secs(5);
    while !processes_matching(&marker).is_empty() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        processes_matching(&marker).is_empty(),
        "left running: {:?}",
        processes_matching(&marker)
    );
    assert!(
        env.leftover_workspaces().is_empty(),
        "{:?}",
        env.leftover_workspaces()
    );
    let patch = std::fs::read_to_string(env.run_folders()[0].join("patch.diff")).unwrap();
    assert!(
        patch.contains("partial.txt"),
        "the work before the cancel is kept"
    );
}
