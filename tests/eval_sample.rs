//! `tiny-backspace eval` driven as a user would: the real binary on the offline sample in
//! assets/eval (scripted sessions, the real sandbox, grading by hidden tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::Env;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/eval")
}

fn eval(env: &Env, tasks: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    env.command()
        .arg("eval")
        .arg("--tasks")
        .arg(tasks)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Lines of the hidden tests that only they hold (imports and boilerplate left out).
fn hidden_lines() -> Vec<String> {
    let dir = sample().join("project/tests/hidden");
    let mut lines = vec!["SECRET-ORACLE-41".to_string()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| {
                    l.contains("oracle") || l.contains("Oracle") || l.starts_with("self.assert")
                })
                .map(String::from),
        );
    }
    assert!(lines.len() > 10, "{lines:?}");
    lines
}

#[test]
fn the_sample_resolves_exactly_the_right_tasks_and_never_shows_the_hidden_tests() {
    let env = Env::new();
    let out = env.path("ev");
    let run = eval(&env, &sample().join("tasks.jsonl"), &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr: {stderr}");
    let rows = results(&out);
    assert_eq!(rows.len(), 6, "{rows:?}");
    let resolved: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["resolved"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        resolved,
        BTreeSet::from(["chunks-unfinished", "palindrome", "slugify", "word-count"]),
        "stderr: {stderr}"
    );
    for r in &rows {
        for field in [
            "id",
            "repeat",
            "resolved",
            "turns",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "duration_ms",
            "stop_reason",
            "tool_errors",
            "model",
            "prompt_sha",
            "run_id",
            "grade",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
        assert_eq!(r["repeat"], 1);
        assert_eq!(r["prompt_sha"].as_str().unwrap().len(), 64, "{r}");
        assert!(r["model"].as_str().unwrap().starts_with("scripted"), "{r}");
        assert!(r["turns"].as_u64().unwrap() >= 2, "{r}");
    }
    let by_id = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("clamp")["grade"], "failed");
    assert_eq!(by_id("chunks-giveup")["grade"], "failed");
    // The script ends without a final answer: the run fails, its patch still passes the tests.
    assert_eq!(by_id("chunks-unfinished")["stop_reason"], "error");
    assert_eq!(by_id("palindrome")["tool_errors"], 1);
    assert_eq!(by_id("slugify")["stop_reason"], "completed");
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(summary.contains("66.7%"), "{summary}");
    assert!(out.join("logs/slugify.1.test.txt").is_file());

    // Nothing the agent saw or wrote holds the hidden tests: not the events (tool outputs), not
    // the patches.
    let secrets = hidden_lines();
    let runs = env.run_folders();
    assert_eq!(runs.len(), 6);
    for run in &runs {
        for name in ["events.jsonl", "patch.diff"] {
            let Ok(text) = std::fs::read_to_string(run.join(name)) else {
                continue;
            };
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{secret} in {}",
                    run.join(name).display()
                );
            }
        }
    }
    // The peeking session looked in the work tree, the history and every object of the git
    // directory: one commit, no hidden file anywhere.
    let peek = by_id("palindrome")["run_id"].as_str().unwrap().to_string();
    let events =
        std::fs::read_to_string(env.home().join("runs").join(&peek).join("events.jsonl")).unwrap();
    let bash: Value = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "Tool: Bash")
        .unwrap();
    let output = bash["output"].as_str().unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 3, "{output}");
    assert!(lines[0].contains("No such file"), "{output}");
    assert!(
        lines[1].ends_with(" Task base (hidden paths removed)"),
        "{output}"
    );
    assert_eq!(lines[2], "searched", "{output}");
    // Workspaces, grading checkouts and derived repositories are all gone.
    assert_eq!(env.leftover_workspaces(), Vec::<String>::new());
}

#[test]
fn bad_task_lines_are_refused_up_front_with_line_and_field() {
    let env = Env::new();
    let tasks = env.write(
        "tasks.jsonl",
        "{\"id\":\"a\",\"repo\":\"r\",\"prompt\":\"p\",\"test_cmd\":\"t\"}\n\
         {\"id\":\"b\",\"repo\":\"r\",\"prompt\":\"p\",\"test_cmd\":\"t\",\"hidden_paths\":[\"../etc\"]}\n",
    );
    let out = env.path("ev");
    let run = eval(&env, &tasks, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2: hidden_paths"), "{stderr}");
    assert!(!out.join("results.jsonl").exists());
    assert!(env.run_folders().is_empty());
}

#[test]
fn repeats_run_concurrently_and_resume_skips_what_is_done() {
    let env = Env::new();
    let s = sample();
    let line = |id: &str, session: &str, test: &str| {
        serde_json::json!({
            "id": id,
            "repo": s.join("project"),
            "prompt": "fix it",
            "test_cmd": format!("python3 -m unittest tests.hidden.{test}"),
            "hidden_paths": ["tests/hidden"],
            "model": format!("scripted:{}", s.join("sessions").join(session).display()),
        })
        .to_string()
    };
    let tasks = env.write(
        "tasks.jsonl",
        &format!(
            "{}\n{}\n",
            line("slugify", "slugify.json", "test_slugify"),
            line("clamp", "clamp.json", "test_clamp")
        ),
    );
    let out = env.path("ev");
    let run = eval(&env, &tasks, &out, &["--repeat", "2", "--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let rows = results(&out);
    let mut pairs: Vec<(String, u64, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["repeat"].as_u64().unwrap(),
                r["resolved"].as_bool().unwrap(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("clamp".into(), 1, false),
            ("clamp".into(), 2, false),
            ("slugify".into(), 1, true),
            ("slugify".into(), 2, true)
        ]
    );
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(
        summary.contains("mean") && summary.contains("50.0%"),
        "{summary}"
    );

    // The same out again: refused without --resume, nothing to do with it.
    let again = eval(&env, &tasks, &out, &["--repeat", "2"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    let resumed = eval(&env, &tasks, &out, &["--repeat", "3", "--resume"]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming: 4 of 6"), "{stderr}");
    let rows = results(&out);
    assert_eq!(rows.len(), 6);
    assert_eq!(rows.iter().filter(|r| r["repeat"] == 3).count(), 2);
}

#[test]
fn the_polyglot_converter_writes_task_lines_from_an_exercise_layout() {
    let env = Env::new();
    let dir = env.path("bench/python/exercises/practice/two-fer");
    env.write(
        "bench/python/exercises/practice/two-fer/.docs/instructions.md",
        "Say two-fer.",
    );
    env.write(
        "bench/python/exercises/practice/two-fer/.meta/config.json",
        r#"{"files": {"solution": ["two_fer.py"], "test": ["two_fer_test.py"]}}"#,
    );
    env.write(
        "bench/python/exercises/practice/two-fer/two_fer_test.py",
        "",
    );
    assert!(dir.is_dir());
    let out = env.path("poly.jsonl");
    let run = env
        .command()
        .args(["eval", "--polyglot"])
        .arg(env.path("bench"))
        .args(["--languages", "python", "--out-tasks"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let task: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(task["id"], "python-two-fer");
    assert_eq!(
        task["hidden_paths"],
        serde_json::json!([".meta", "two_fer_test.py"])
    );
    let bad = env
        .command()
        .args(["eval", "--polyglot"])
        .arg(env.path("bench"))
        .args(["--languages", "cobol", "--out-tasks"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown language `cobol`"));
}

#[test]
fn a_signal_stops_the_running_task_which_is_then_not_recorded() {
    let env = Env::new();
    let s = sample();
    let slow = env.write(
        "slow.json",
        r#"{"turns": [{"text": "thinking", "delay_ms": 60000, "tool_calls": [{"name": "list_files", "input": {}}]}, {"text": "done"}]}"#,
    );
    let task = serde_json::json!({
        "id": "slow", "repo": s.join("project"), "prompt": "fix it",
        "test_cmd": "true", "hidden_paths": ["tests/hidden"],
        "model": format!("scripted:{}", slow.display()),
    });
    let tasks = env.write("tasks.jsonl", &format!("{task}\n"));
    let out = env.path("ev");
    let child = env
        .command()
        .arg("eval")
        .arg("--tasks")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (generously) until the run is under way: its events file exists.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env
        .run_folders()
        .iter()
        .any(|r| r.join("events.jsonl").is_file())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let recorded = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    assert_eq!(recorded, "", "a stopped task must not be recorded");
    assert_eq!(env.leftover_workspaces(), Vec::<String>::new());
}
