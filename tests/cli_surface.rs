//! The command-line surface the README names, exercised: help and version, `--keep-workspace`,
//! `--home`, `TB_LOG`, `--network` / `TB_NETWORK`, proxies for host git, and two `serve` switches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/repo.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use server::Server;
use support::{Env, events, make_repo, script};

#[test]
fn every_subcommand_has_help_with_examples_and_there_is_a_version() {
    let env = Env::new();
    for sub in ["run", "runs", "show", "config", "serve", "demo", "publish"] {
        let out = env.run(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "{sub} --help has examples: {text}"
        );
    }
    let out = env.run(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tiny-backspace demo"));
    let out = env.run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tiny-backspace {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn keep_workspace_home_and_log_filter() {
    let env = Env::new();
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "write_file", "input": {"path": "b.txt", "content": "b\n"}}]},
            {"text": "done"}
        ])),
    );
    let other_home = env.path("other-home");
    let out = env
        .scripted_command(
            repo.to_str().unwrap(),
            "p",
            &s,
            &["--keep-workspace", "--home", other_home.to_str().unwrap()],
        )
        .env("TB_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // --home wins over TB_HOME.
    assert!(env.run_folders().is_empty());
    let runs: Vec<_> = std::fs::read_dir(other_home.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    // --keep-workspace: the work tree is still there, with the agent's file.
    let kept = evs_message(&events(&out.stdout), "workspace kept at ");
    let path = std::path::PathBuf::from(kept.trim_start_matches("workspace kept at "));
    assert_eq!(
        std::fs::read_to_string(path.join("repo/b.txt")).unwrap(),
        "b\n"
    );
    // The log file under the state directory: per-stage lines at the default level, none at
    // TB_LOG=warn.
    let log = std::fs::read_to_string(other_home.join("logs/tiny-backspace.log")).unwrap();
    assert!(!log.contains("stage ended"), "{log}");
    let out = env
        .scripted_command(
            repo.to_str().unwrap(),
            "p",
            &s,
            &["--home", other_home.to_str().unwrap()],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = std::fs::read_to_string(other_home.join("logs/tiny-backspace.log")).unwrap();
    assert!(
        log.contains("stage ended") && log.contains("stage=Clone"),
        "{log}"
    );
    assert!(
        log.contains(events(&out.stdout)[0]["run_id"].as_str().unwrap()),
        "lines carry the run id"
    );
}

fn evs_message(evs: &[serde_json::Value], prefix: &str) -> String {
    evs.iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with(prefix))
        .unwrap_or_else(|| panic!("no message starting {prefix:?}"))
        .to_string()
}

#[test]
fn network_switch_from_flag_and_environment() {
    let env = Env::new();
    let shown = |extra_env: Option<(&str, &str)>, args: &[&str]| {
        let mut cmd = env.command();
        if let Some((k, v)) = extra_env {
            cmd.env(k, v);
        }
        let out = cmd.args(["config"]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("network"))
            .unwrap()
            .to_string()
    };
    assert!(shown(None, &[]).contains("false"));
    assert!(shown(None, &["--network"]).contains("true"));
    assert!(shown(Some(("TB_NETWORK", "1")), &[]).contains("true"));

    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    let out = env.run_scripted(&repo, "p", &s, &["--network"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        events(&out.stdout)[0]["message"]
            .as_str()
            .unwrap()
            .contains("network on")
    );
}

#[test]
fn host_git_goes_through_the_users_proxy() {
    let env = Env::new();
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    // A proxy on a loopback port nobody listens on: git must try it (and fail there), so
    // nothing leaves this machine.
    let out = env
        .scripted_command("https://github.com/octo/calc", "p", &s, &[])
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = events(&out.stdout).pop().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("127.0.0.1") && msg.contains("port 9"), "{msg}");
}

fn slow_script(env: &Env, seconds: u32) -> String {
    let path = env.write(
        "slow.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": format!("sleep {seconds}")}}]},
            {"text": "slept"}
        ])),
    );
    format!("scripted:{}", path.display())
}

#[tokio::test]
async fn serve_sends_heartbeats_while_a_command_runs() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local", "--heartbeat-secs", "1"]);
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "p", "model": slow_script(&env, 3)});
    let resp = server
        .client()
        .post(server.url("/code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let messages = server::read_stream(resp).await;
    assert!(
        messages.iter().any(|m| m.comment),
        "a keep-alive comment arrived during the 3 s command"
    );
    assert_eq!(server::events_of(&messages).last().unwrap()["type"], "Done");
}

#[tokio::test]
async fn serve_can_keep_a_run_going_when_its_client_leaves() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &[],
        &["--allow-local", "--keep-running-on-disconnect"],
    );
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "p", "model": slow_script(&env, 2)});
    let resp = server
        .client()
        .post(server.url("/code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("agent started") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    drop(stream);
    let run_id = server::parse_sse(&seen)[0].data.as_ref().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let meta = env.home().join("runs").join(run_id).join("meta.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&meta).unwrap_or_default();
        if text.contains("\"finished\"") {
            break;
        }
        assert!(
            !text.contains("\"cancelled\""),
            "the run was cancelled: {text}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
