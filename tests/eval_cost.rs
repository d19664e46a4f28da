//! `eval --max-cost` stops a task's run once its cost passes the cap: a real stop (the model is
//! asked no more), recorded as `cost_cap`, and the patch so far is still graded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::time::Duration;

use mock_llm::{Format, MockServer, Model};
use serde_json::Value;

async fn eval(tmp: &std::path::Path, url: &str, max_cost: Option<&str>) -> (Vec<Value>, String) {
    let repo = tmp.join("calc");
    let tasks = tmp.join("tasks.jsonl");
    let task = serde_json::json!({"id": "calc", "repo": repo, "prompt": "Make divide reject zero",
        "test_cmd": "grep -q ValueError calc.py"});
    std::fs::write(&tasks, format!("{task}\n")).unwrap();
    let out = tmp.join(format!("out-{}", max_cost.unwrap_or("none")));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
    cmd.arg("eval")
        .arg("--tasks")
        .arg(&tasks)
        .arg("--out")
        .arg(&out)
        .args(["--model", "anthropic:claude-sonnet-4-5"])
        .args(max_cost.map(|c| vec!["--max-cost", c]).unwrap_or_default())
        .current_dir(tmp)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.join("user-home"))
        .env("TB_HOME", tmp.join("home"))
        .env("TB_CONFIG", tmp.join("config.toml"))
        .env("ANTHROPIC_API_KEY", "sk-ant-test-eval-cost")
        .env("ANTHROPIC_BASE_URL", url)
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("eval hung")
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let rows = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (rows, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_cap_stops_the_run_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    mock_llm::make_repo(tmp.path());

    // Without a cap the seven-turn task (its last turn answers the self-review) runs to its end, at a known price.
    let model = Model::new(Format::Anthropic, mock_llm::task_turns());
    let server = MockServer::start(model.handler()).await;
    let (rows, stderr) = eval(tmp.path(), &server.url(), None).await;
    let full = &rows[0];
    assert_eq!(full["stop_reason"], "completed", "{stderr}");
    assert_eq!(full["turns"], 7, "{full}");
    assert_eq!(full["resolved"], true, "{full}");
    let full_cost = full["cost_usd"].as_f64().unwrap();
    assert!(full_cost > 0.0, "{full}");
    assert_eq!(server.requests().len(), 7);

    // A cap below one turn's cost: the run stops after its first answer.
    let model = Model::new(Format::Anthropic, mock_llm::task_turns());
    let server = MockServer::start(model.handler()).await;
    let cap = format!("{}", full_cost / 100.0);
    let (rows, stderr) = eval(tmp.path(), &server.url(), Some(&cap)).await;
    let capped = &rows[0];
    assert_eq!(capped["stop_reason"], "cost_cap", "{capped}\n{stderr}");
    assert!(capped["turns"].as_u64().unwrap() < 3, "{capped}");
    assert!(server.requests().len() < 3, "{}", server.requests().len());
    assert!(
        capped["error"].as_str().unwrap().contains("cost cap"),
        "{capped}"
    );
    assert_eq!(capped["resolved"], false, "{capped}");
}
