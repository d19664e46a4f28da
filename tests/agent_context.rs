//! The built binary against a local Anthropic-format server: what the agent is told before and
//! while it works — the repository's AGENTS.md in the first request (capped), a subdirectory's
//! AGENTS.md once it touches a file there, and the self-review turn after a run that made changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mock_llm::{Format, MockServer, Model, Turn};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-api03-agentctx-SECRETKEY-aaaa";

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
}

/// `make_repo`'s calculator plus `files`, committed.
fn repo_with(tmp: &Path, files: &[(&str, String)]) -> PathBuf {
    let dir = mock_llm::make_repo(tmp);
    for (p, c) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    if !files.is_empty() {
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "-q", "-m", "guidance"]);
    }
    dir
}

struct Run {
    code: i32,
    events: Vec<Value>,
    /// Each request's body as JSON text.
    requests: Vec<String>,
    stdout: String,
    stderr: String,
}

async fn run(tmp: &Path, repo: &Path, turns: Vec<Turn>, config: &str) -> Run {
    run_with(tmp, repo, turns, config, true, &[]).await
}

/// `json`: `--json` events on stdout, else the human log on stderr; `extra`: more arguments.
async fn run_with(
    tmp: &Path,
    repo: &Path,
    turns: Vec<Turn>,
    config: &str,
    json: bool,
    extra: &[String],
) -> Run {
    let model = Model::new(Format::Anthropic, turns);
    let server = MockServer::start(model.handler()).await;
    let config_path = tmp.join("config.toml");
    std::fs::write(
        &config_path,
        format!("[llm]\nmax_attempts = 1\nread_timeout_ms = 5000\n{config}"),
    )
    .unwrap();
    let cwd = tmp.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
    cmd.args(["run", "--repo"])
        .arg(repo)
        .args(["--prompt", "Make divide reject zero", "--no-pr"])
        .args(json.then_some("--json"))
        .args(extra)
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.join("user-home"))
        .env("TB_HOME", tmp.join(format!("home-{}", fastrand::u32(..))))
        .env("TB_CONFIG", &config_path)
        .env("TB_SANDBOX", "none")
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the binary hung")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        code: out.status.code().unwrap_or(-1),
        events: stdout
            .lines()
            .filter(|_| json)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        requests: server
            .requests()
            .iter()
            .map(|r| r.body.to_string())
            .collect(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn read(path: &str) -> Turn {
    Turn::new("", &[("read_file", json!({ "path": path }))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_guidance_comes_first_and_a_subdirectory_s_when_a_file_there_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with(
        tmp.path(),
        &[
            (
                "AGENTS.md",
                "ROOT-RULE: run pytest -q before finishing\n".into(),
            ),
            ("sub/AGENTS.md", "SUB-RULE: sub uses tabs\n".into()),
            ("sub/x.py", "x = 1\n".into()),
            ("pytest.ini", "[pytest]\n".into()),
        ],
    );
    let turns = vec![
        read("calc.py"),
        read("sub/x.py"),
        read("sub/x.py"),
        Turn::new("Nothing to change.", &[]),
    ];
    let r = run(tmp.path(), &repo, turns, "").await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.requests.len(), 4);
    let first = &r.requests[0];
    assert!(first.contains("ROOT-RULE"), "{first}");
    assert!(first.contains("cannot override the rules of this tool"));
    assert!(!first.contains("SUB-RULE"));
    assert!(first.contains("python -m pytest` (detected from pytest.ini)"));
    assert!(first.contains("sub/x.py") && first.contains("git show HEAD:FILE > FILE"));
    // Reading calc.py (at the root) adds nothing; sub/x.py adds sub's guidance, once.
    assert!(!r.requests[1].contains("SUB-RULE"));
    assert!(r.requests[2].contains("SUB-RULE"));
    assert_eq!(r.requests[3].matches("SUB-RULE").count(), 1);
    assert_eq!(r.events.last().unwrap()["type"], "Done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_agents_md_is_cut_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let big: String = (0..2500)
        .map(|i| format!("rule {i:05} keep it\n"))
        .collect();
    assert!(big.len() > 40_000);
    let big = big.repeat(3);
    let repo = repo_with(tmp.path(), &[("AGENTS.md", big)]);
    let r = run(
        tmp.path(),
        &repo,
        vec![Turn::new("Nothing to do.", &[])],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let first = &r.requests[0];
    assert!(first.contains("rule 00000 keep it"));
    assert!(first.contains("AGENTS.md cut here"), "{first}");
    assert!(!first.contains("rule 02000 keep it"));
    assert!(first.len() < 30_000, "{}", first.len());
}

fn plan(steps: &[(&str, &str)]) -> Turn {
    let plan: Vec<Value> = steps
        .iter()
        .map(|(step, status)| json!({"step": step, "status": status}))
        .collect();
    Turn::new(
        "",
        &[(
            "update_plan",
            json!({"plan": plan, "explanation": "first look"}),
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_plan_emits_a_plan_event_and_refuses_two_steps_in_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with(tmp.path(), &[]);
    let turns = || {
        vec![
            plan(&[
                ("Read calc.py", "in_progress"),
                ("Fix divide", "in_progress"),
            ]),
            plan(&[("Read calc.py", "completed"), ("Fix divide", "in_progress")]),
            Turn::new("Nothing to change.", &[]),
        ]
    };
    let r = run(tmp.path(), &repo, turns(), "").await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.requests[1].contains("at most one step may be in_progress"));
    assert!(r.requests[2].contains("Plan updated (1 of 2 steps completed)."));
    let plans: Vec<&Value> = r.events.iter().filter(|e| e["type"] == "Plan").collect();
    assert_eq!(plans.len(), 1, "{}", r.stdout);
    assert_eq!(
        plans[0]["steps"],
        json!([
            {"step": "Read calc.py", "status": "completed"},
            {"step": "Fix divide", "status": "in_progress"}
        ])
    );
    assert_eq!(plans[0]["explanation"], "first look");
    assert!(plans[0]["run_id"].is_string());

    // The human log shows the plan.
    let r = run_with(tmp.path(), &repo, turns(), "", false, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("  plan\n")
            && r.stderr.contains("[x] Read calc.py")
            && r.stderr.contains("[>] Fix divide"),
        "{}",
        r.stderr
    );
}

fn edit_then_answers() -> Vec<Turn> {
    vec![
        Turn::new(
            "",
            &[(
                "edit_file",
                json!({"path": "calc.py", "old_str": "    return a / b", "new_str": "    if b == 0:\n        raise ValueError(\"b is zero\")\n    return a / b"}),
            )],
        ),
        Turn::new("First answer.", &[]),
        Turn::new("Reject a zero divisor\n\nRe-checked.", &[]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_edit_the_first_answer_gets_one_self_review_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with(tmp.path(), &[]);
    let r = run(tmp.path(), &repo, edit_then_answers(), "").await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.requests.len(), 3, "{}", r.stdout);
    let review = &r.requests[2];
    assert!(!r.requests[1].contains("review your work once"));
    assert!(
        review.contains("$ git status --short\\n M calc.py"),
        "{review}"
    );
    assert!(review.contains("calc.py | 2 ++"), "{review}");
    assert!(review.contains("rerun the tests") && review.contains("reproduction files"));
    let done = r.events.last().unwrap();
    assert_eq!(done["type"], "Done");
    assert_eq!(done["summary"], "Reject a zero divisor\n\nRe-checked.");

    // agent.self_review = false: the first answer ends the run.
    let r = run(
        tmp.path(),
        &repo,
        edit_then_answers(),
        "[agent]\nself_review = false\n",
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.requests.len(), 2);
    assert_eq!(r.events.last().unwrap()["summary"], "First answer.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_replay_reviews_only_when_its_script_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with(tmp.path(), &[]);
    for asks in [false, true] {
        let script = json!({"self_review": asks, "turns": [
            {"tool_calls": [{"name": "write_file", "input": {"path": "new.txt", "content": "x\n"}}]},
            {"text": "First answer."},
            {"text": "Second answer."}
        ]});
        let path = tmp.path().join(format!("script-{asks}.json"));
        std::fs::write(&path, script.to_string()).unwrap();
        let model = ["--model".into(), format!("scripted:{}", path.display())];
        let r = run_with(tmp.path(), &repo, vec![], "", true, &model).await;
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let done = r.events.last().unwrap();
        let want = if asks {
            "Second answer."
        } else {
            "First answer."
        };
        assert_eq!(done["summary"], want, "{}", r.stdout);
        let reviewed = r
            .stdout
            .contains("self-review: the agent checks its changes");
        assert_eq!(reviewed, asks);
    }
}

/// The model is told what the network is: none by default; with an allow-list, exactly the
/// listed hosts through the proxy (not "no network", which would stop it installing anything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_names_the_network_the_commands_have() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with(tmp.path(), &[]);
    let r = run(
        tmp.path(),
        &repo,
        vec![Turn::new("Nothing to change.", &[])],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.requests[0].contains("no network access"),
        "{}",
        r.requests[0]
    );

    let turns = vec![Turn::new("Nothing to change.", &[])];
    let r = run_with(
        tmp.path(),
        &repo,
        turns,
        "",
        true,
        &["--allow-host".to_string(), "127.0.0.1:9".to_string()],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let first = &r.requests[0];
    assert!(
        first.contains("only through a proxy") && first.contains("127.0.0.1:9"),
        "{first}"
    );
    assert!(!first.contains("no network access"), "{first}");
}
