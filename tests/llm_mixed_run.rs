//! The built binary, configured only through its environment and config file like a user would,
//! against local Anthropic- and OpenAI-format servers: Anthropic fails for good after its third
//! turn, the OpenAI-compatible server finishes the task, and the patch equals the fault-free run's.
//! No key appears in stdout, stderr, the run folder or the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mock_llm::{Fault, Format, MockServer, Model};
use serde_json::Value;

const KEY_A: &str = "sk-ant-api03-mixedrun-SECRETKEY-aaaa";
const KEY_O: &str = "sk-proj-mixedrun-SECRETKEY-oooo";

struct Output {
    code: i32,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        "[llm]\nmax_attempts = 2\ninitial_backoff_ms = 5\nmax_backoff_ms = 20\n\
         read_timeout_ms = 2000\nresponse_timeout_ms = 5000\n",
    )
    .unwrap();
    path
}

async fn run_binary(tmp: &Path, repo: &Path, env: &[(&str, String)]) -> Output {
    let home = tmp.join(format!("home-{}", fastrand::u32(..)));
    let cwd = tmp.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
    cmd.args(["run", "--repo"])
        .arg(repo)
        .args([
            "--prompt",
            "Make divide reject a zero divisor",
            "--json",
            "--no-pr",
        ])
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.join("user-home"))
        .env("TB_HOME", &home)
        .env("TB_CONFIG", write_config(tmp))
        .env("TB_SANDBOX", "none")
        .env("TB_LOG", "trace")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the binary hung")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Nothing the run left behind may contain a key: events, meta, patch, logs.
    let mut files = vec![home.clone()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for entry in std::fs::read_dir(&p).unwrap() {
                files.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("SECRETKEY"),
                "a key leaked into {}",
                p.display()
            );
        }
    }
    assert!(!stdout.contains("SECRETKEY") && !stderr.contains("SECRETKEY"));
    if env.iter().any(|(k, _)| *k == "ANTHROPIC_BASE_URL") {
        // The check above covered real, verbose logs (TB_LOG=trace): requests were logged.
        let log = std::fs::read_to_string(home.join("logs/tiny-backspace.log")).unwrap();
        assert!(log.contains("anthropic request"), "{log}");
    }
    Output {
        code: out.status.code().unwrap_or(-1),
        events,
        stdout,
        stderr,
    }
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_fails_after_its_third_turn_and_openai_finishes_with_the_same_patch() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());

    let run_against = |fail_anthropic: bool| {
        let tmp = tmp.path().to_path_buf();
        let repo = repo.clone();
        async move {
            let a_model = Model::new(Format::Anthropic, mock_llm::task_turns());
            let o_model = Model::new(Format::OpenAi, mock_llm::task_turns());
            if fail_anthropic {
                a_model.fail_from(3, Fault::overloaded());
            }
            let a = MockServer::start(a_model.handler()).await;
            let o = MockServer::start(o_model.handler()).await;
            let env = [
                ("ANTHROPIC_API_KEY", KEY_A.to_string()),
                ("ANTHROPIC_BASE_URL", a.url()),
                ("OPENAI_API_KEY", KEY_O.to_string()),
                ("OPENAI_BASE_URL", o.url_v1()),
            ];
            let out = run_binary(&tmp, &repo, &env).await;
            (out, a.requests(), o.requests())
        }
    };

    let (base, base_a, base_o) = run_against(false).await;
    assert_eq!(base.code, 0, "{}\n{}", base.stdout, base.stderr);
    assert_eq!(base_a.len(), 7);
    assert!(base_o.is_empty());

    let (mixed, a_reqs, o_reqs) = run_against(true).await;
    assert_eq!(mixed.code, 0, "{}\n{}", mixed.stdout, mixed.stderr);
    assert_eq!(mixed.events.last().unwrap()["type"], "Done");

    let patch = |o: &Output| {
        of_type(&o.events, "Diff")[0]["patch"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(patch(&base).contains("raise ValueError"));
    assert_eq!(patch(&mixed), patch(&base));

    let usage: Vec<String> = of_type(&mixed.events, "Usage")
        .iter()
        .map(|u| {
            format!(
                "{}:{}",
                u["provider"].as_str().unwrap(),
                u["model"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        usage,
        [
            "anthropic:claude-sonnet-4-5",
            "anthropic:claude-sonnet-4-5",
            "anthropic:claude-sonnet-4-5",
            "openai:gpt-4.1",
            "openai:gpt-4.1",
            "openai:gpt-4.1",
            "openai:gpt-4.1"
        ]
    );
    let statuses: Vec<&str> = of_type(&mixed.events, "Status")
        .iter()
        .map(|s| s["message"].as_str().unwrap())
        .collect();
    assert!(
        statuses.iter().any(|m| m.contains("attempt 2 of 2")),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|m| m.contains("the same conversation continues with openai:gpt-4.1")),
        "{statuses:?}"
    );
    // Every tool ran exactly as often as in the fault-free run; every turn's message once.
    for t in ["Tool: Read", "Tool: Edit", "Tool: Bash", "AI Message"] {
        let strip = |o: &Output| -> Vec<Value> {
            of_type(&o.events, t)
                .into_iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.as_object_mut().unwrap().remove("run_id");
                    e.as_object_mut().unwrap().remove("duration_ms");
                    e
                })
                .collect()
        };
        assert_eq!(strip(&mixed), strip(&base), "{t}");
    }
    // Totals in Done: the sum of the Usage events (cost known: both models have list prices).
    let done = of_type(&mixed.events, "Done")[0];
    let sum: u64 = of_type(&mixed.events, "Usage")
        .iter()
        .map(|u| u["input_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(done["usage"]["input_tokens"].as_u64().unwrap(), sum);
    assert!(done["usage"]["cost_usd"].as_f64().unwrap() > 0.0);

    // Anthropic: three turns, then two attempts at the fourth. OpenAI: the rest of the same
    // conversation, with the Anthropic turns' tool calls and results in it.
    assert_eq!(a_reqs.len(), 5);
    assert_eq!(o_reqs.len(), 4);
    for r in &a_reqs {
        assert_eq!(r.headers["x-api-key"], KEY_A);
        mock_llm::check_anthropic_pairing(&r.body).unwrap();
    }
    for r in &o_reqs {
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY_O}"));
        assert!(!r.headers.contains_key("x-api-key"));
        mock_llm::check_openai_pairing(&r.body).unwrap();
    }
    let first_o = &o_reqs[0].body["messages"];
    let last_a = &a_reqs[3].body["messages"];
    assert_eq!(Model::turn_of(&o_reqs[0].body), 3);
    assert_eq!(
        first_o
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .count(),
        last_a
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .count()
    );
}

#[tokio::test]
async fn without_any_model_configured_the_error_says_what_to_set() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());
    let out = run_binary(tmp.path(), &repo, &[]).await;
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let error = of_type(&out.events, "Error")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "tiny-backspace demo",
    ] {
        assert!(error.contains(needle), "{needle} not in: {error}");
    }
}
