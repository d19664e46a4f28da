//! `serve` with a real HTTP client reading the stream: order and vocabulary, auth, validation,
//! disconnects, replay, the queue and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/repo.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use server::{Server, events_of, parse_sse, read_stream};
use support::{Env, make_repo, script};

fn repo(env: &Env) -> String {
    make_repo(&env.path("r"), "main", &[("a.txt", "a\n")])
        .display()
        .to_string()
}

fn write_script(env: &Env, name: &str, turns: Value) -> String {
    format!("scripted:{}", env.write(name, &script(turns)).display())
}

fn quick_script(env: &Env) -> String {
    write_script(
        env,
        "quick.json",
        json!([
            {"text": "Editing.", "tool_calls": [{"name": "read_file", "input": {"path": "a.txt"}},
                {"name": "edit_file", "input": {"path": "a.txt", "old_str": "a", "new_str": "b"}},
                {"name": "bash", "input": {"command": "cat a.txt"}}]},
            {"text": "Change a to b"}
        ]),
    )
}

async fn post_code(server: &Server, body: Value) -> reqwest::Response {
    server
        .client()
        .post(server.url("/code"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_streams_the_event_vocabulary_in_order_and_ends_with_done() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let model = quick_script(&env);
    let resp = post_code(
        &server,
        json!({"repoUrl": repo(&env), "prompt": "a to b", "model": model}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let messages = read_stream(resp).await;
    let events = events_of(&messages);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| !matches!(*t, "Status" | "Usage" | "AI Delta" | "Output" | "Live Diff"))
        .collect();
    // The command's output streamed before it ended, as an SSE event without an id (not stored).
    let output = messages
        .iter()
        .find(|m| m.data.as_ref().is_some_and(|d| d["type"] == "Output"))
        .expect("an Output event");
    assert!(output.id.is_none());
    assert_eq!(output.data.as_ref().unwrap()["text"], "b\n");
    assert_eq!(
        kinds,
        [
            "AI Message",
            "Tool: Read",
            "Tool: Edit",
            "Tool: Bash",
            "AI Message",
            "Diff",
            "Done"
        ]
    );
    let bash = events.iter().find(|e| e["type"] == "Tool: Bash").unwrap();
    assert_eq!(bash["output"], "b\n");
    assert_eq!(bash["exit_code"], 0);

    // Stored events carry ids 1..n, in the order of events.jsonl.
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let stored =
        std::fs::read_to_string(env.home().join("runs").join(&run_id).join("events.jsonl"))
            .unwrap();
    let with_ids: Vec<&server::SseMessage> = messages.iter().filter(|m| m.id.is_some()).collect();
    assert_eq!(with_ids.len(), stored.lines().count());
    for (i, (m, line)) in with_ids.iter().zip(stored.lines()).enumerate() {
        assert_eq!(m.id.as_deref(), Some((i + 1).to_string().as_str()));
        assert_eq!(
            m.data.as_ref().unwrap(),
            &serde_json::from_str::<Value>(line).unwrap()
        );
    }

    // Replay resumes after Last-Event-ID.
    let replay = server
        .client()
        .get(server.url(&format!("/runs/{run_id}/events")))
        .header("Last-Event-ID", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let replayed = read_stream(replay).await;
    assert_eq!(replayed[0].id.as_deref(), Some("4"));
    assert_eq!(replayed.len(), stored.lines().count() - 3);
    assert_eq!(events_of(&replayed).last().unwrap()["type"], "Done");
    let missing = server
        .client()
        .get(server.url("/runs/nope/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn auth_is_required_when_a_token_is_set() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &[("TB_SERVER_TOKEN", "right-token-123")],
        &["--allow-local"],
    );
    let body = json!({"repoUrl": repo(&env), "prompt": "p", "model": quick_script(&env)});
    let plain = reqwest::Client::new();
    for header in [
        None,
        Some("Bearer wrong-token-123"),
        Some("Bearer right-token-12"),
        Some("Basic right-token-123"),
        Some("Bearerright-token-123"),
    ] {
        let mut req = plain.post(server.url("/code")).json(&body);
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{header:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("bearer token"));
        assert!(err["field"].is_null(), "{err}");
    }
    // The scheme is case-insensitive (RFC 7235); the token is not.
    let resp = plain
        .post(server.url("/code"))
        .header("authorization", "bearer right-token-123")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = events_of(&read_stream(resp).await);
    assert_eq!(events.last().unwrap()["type"], "Done");
    // Health and the OpenAPI document need no token.
    assert_eq!(
        plain
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let spec: Value = plain
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/code"]["post"].is_object());
}

#[tokio::test]
async fn validation_errors_are_400_naming_the_field() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--max-prompt-chars", "50"]);
    let local = repo(&env);
    let cases = [
        (json!({"prompt": "p"}), Some("repoUrl"), "required"),
        (
            json!({"repoUrl": "ext::sh -c x", "prompt": "p"}),
            Some("repoUrl"),
            "transport",
        ),
        (
            json!({"repoUrl": 7, "prompt": "p"}),
            Some("repoUrl"),
            "string",
        ),
        (
            json!({"repoUrl": local, "prompt": "p"}),
            Some("repoUrl"),
            "local paths",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "  "}),
            Some("prompt"),
            "empty",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "x".repeat(51)}),
            Some("prompt"),
            "longer than 50",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "p", "review": "yes"}),
            Some("review"),
            "true or false",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "p", "model": "scripted:/etc/passwd"}),
            Some("model"),
            "scripted",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "p", "model": "anthropic:../../x"}),
            Some("model"),
            "not a model",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "p", "model": "openai:/etc/passwd"}),
            Some("model"),
            "not a model",
        ),
        (
            json!({"repoUrl": "octo/calc", "prompt": "p", "model": "ollama:llama3"}),
            Some("model"),
            "not a model",
        ),
        (json!(["not", "an", "object"]), None, "JSON object"),
    ];
    for (body, field, want) in cases {
        let resp = post_code(&server, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["field"].as_str(), field, "{body}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains(want),
            "{body}: {err}"
        );
    }
    let resp = server
        .client()
        .post(server.url("/code"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let big = "x".repeat(100 * 1024);
    let resp = server
        .client()
        .post(server.url("/code"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(env.run_folders().is_empty());
}

/// Starts a run whose one command is `marker` (a long `sleep`), and never gets past it.
async fn post_sleeping_run(env: &Env, server: &Server, marker: &str) -> reqwest::Response {
    let model = write_script(
        env,
        "sleeping.json",
        json!([
            {"tool_calls": [{"name": "bash", "input": {"command": marker}}]},
            {"text": "never"}
        ]),
    );
    post_code(
        server,
        json!({"repoUrl": repo(env), "prompt": "p", "model": model}),
    )
    .await
}

fn sleeping(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_run_and_cleans_up() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let marker = "sleep 4321";
    let resp = post_sleeping_run(&env, &server, marker).await;
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("agent started") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    wait_until("the command starts", || sleeping(marker)).await;
    drop(stream);
    wait_until("the command is killed", || !sleeping(marker)).await;
    wait_until("the workspace is removed", || {
        env.leftover_workspaces().is_empty()
    })
    .await;
    let run_id = parse_sse(&seen)[0].data.as_ref().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let meta_path = env.home().join("runs").join(run_id).join("meta.json");
    wait_until("the run is recorded as cancelled", || {
        std::fs::read_to_string(&meta_path).is_ok_and(|m| m.contains("\"cancelled\""))
    })
    .await;
}

#[tokio::test]
async fn a_run_over_the_time_limit_is_stopped_saying_why_and_cleaned_up() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local", "--max-run", "2s"]);
    let marker = "sleep 4329";
    let resp = post_sleeping_run(&env, &server, marker).await;
    let events = events_of(&read_stream(resp).await);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "Error", "{last}");
    assert_eq!(last["code"], "stopped", "a server limit is a stop: {last}");
    let message = last["message"].as_str().unwrap();
    assert!(
        message.starts_with("stopped: the run went over this server's time limit of 2 s"),
        "{message}"
    );
    assert!(!sleeping(marker), "the command outlived the run");
    assert!(env.leftover_workspaces().is_empty());
    let run_id = last["run_id"].as_str().unwrap();
    let meta =
        std::fs::read_to_string(env.home().join("runs").join(run_id).join("meta.json")).unwrap();
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["status"], "cancelled");
    assert!(
        meta["error"]
            .as_str()
            .unwrap()
            .contains("time limit of 2 s"),
        "{meta}"
    );
}

#[test]
fn a_time_limit_that_is_not_a_duration_is_refused_with_an_example() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"))
        .args(["serve", "--max-run", "10 minutes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-run") && err.contains("30m"), "{err}");
}

#[tokio::test]
async fn the_queue_reports_positions_and_every_run_completes() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local", "--max-concurrent", "1"]);
    let model = write_script(
        &env,
        "think.json",
        json!([
            {"text": "thinking", "delay_ms": 300, "tool_calls": [{"name": "list_files", "input": {}}]},
            {"text": "done"}
        ]),
    );
    let repo = repo(&env);
    let requests = (0..4).map(|_| {
        let body = json!({"repoUrl": repo, "prompt": "p", "model": model, "review": true});
        let s = &server;
        async move { read_stream(post_code(s, body).await).await }
    });
    let results = futures::future::join_all(requests).await;
    let mut saw_position = false;
    for messages in &results {
        let events = events_of(messages);
        assert_eq!(events.last().unwrap()["type"], "Done", "{events:?}");
        saw_position |= events.iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("queued: position"))
        });
    }
    assert!(
        saw_position,
        "with one slot and four runs, someone waited in line"
    );
    let health: Value = server
        .client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["running"], 0);
    assert_eq!(health["queued"], 0);
}

#[tokio::test]
async fn a_reviewed_run_is_published_later_with_a_hunk_left_out() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let text = "one\n".to_string() + &"filler\n".repeat(20) + "nine\n";
    let repo = make_repo(&env.path("lib"), "main", &[("a.txt", &text)]);
    let model = write_script(
        &env,
        "two.json",
        json!([
            {"tool_calls": [
                {"name": "edit_file", "input": {"path": "a.txt", "old_str": "one\n", "new_str": "ONE\n"}},
                {"name": "edit_file", "input": {"path": "a.txt", "old_str": "nine\n", "new_str": "NINE\n"}}]},
            {"text": "Shout the ends"}
        ]),
    );
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "shout", "model": model, "review": true});
    let events = events_of(&read_stream(post_code(&server, body).await).await);
    assert_eq!(events.last().unwrap()["type"], "Done");
    assert!(events.last().unwrap()["pr_url"].is_null());
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let diff = events.iter().find(|e| e["type"] == "Diff").unwrap();
    let patch = diff["patch"].as_str().unwrap();
    assert_eq!(
        patch.matches("\n@@ ").count(),
        2,
        "two hunks: {patch} {events:?}"
    );

    let client = server.client();
    let url = server.url(&format!("/runs/{run_id}/publish"));
    let bad = client
        .post(&url)
        .json(&json!({"excludeHunks": [{"path": "a.txt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    for (body, field, want) in [
        (
            json!({"excludeFiles": ["b.txt"]}),
            "excludeFiles",
            "'b.txt' is not in the run's patch",
        ),
        (
            json!({"excludeHunks": [{"path": "a.txt", "hunk": 2}]}),
            "excludeHunks",
            "has 2 hunks",
        ),
    ] {
        let resp = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["field"], field, "{err}");
        assert!(err["error"].as_str().unwrap().contains(want), "{err}");
    }
    let resp = client
        .post(&url)
        .json(&json!({"excludeHunks": [{"path": "a.txt", "hunk": 1}], "title": "Shout the first line"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let result: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{result}");
    let branch = result["branch"].as_str().unwrap().to_string();
    assert!(branch.starts_with("tb/"), "{branch}");
    let content = support::git(&repo, &["show", &format!("{branch}:a.txt")]);
    assert!(
        content.starts_with("ONE\n") && content.ends_with("nine\n"),
        "the left-out hunk is absent: {content}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("a.txt"))
            .unwrap()
            .lines()
            .next(),
        Some("one"),
        "checkout untouched"
    );
    let missing = client
        .post(server.url("/runs/nope/publish"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn sigterm_gives_runs_a_grace_period_then_cancels_and_cleans_up() {
    let env = Env::new();
    let mut server = Server::start(&env, &[], &["--allow-local", "--shutdown-grace-secs", "1"]);
    let marker = "sleep 4322";
    let model = write_script(
        &env,
        "slow.json",
        json!([
            {"tool_calls": [{"name": "bash", "input": {"command": marker}}]},
            {"text": "never"}
        ]),
    );
    let resp = post_code(
        &server,
        json!({"repoUrl": repo(&env), "prompt": "p", "model": model}),
    )
    .await;
    let reader = tokio::spawn(read_stream(resp));
    wait_until("the command starts", || sleeping(marker)).await;
    let started = Instant::now();
    let code = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(20));
    let events = events_of(&reader.await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["type"], "Error");
    assert_eq!(last["code"], "cancelled", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("cancelled"),
        "{last}"
    );
    wait_until("the command is gone", || !sleeping(marker)).await;
    assert!(env.leftover_workspaces().is_empty());
}

#[tokio::test]
async fn a_failed_publish_answers_502_with_the_error_code() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let repo = make_repo(&env.path("gone"), "main", &[("a.txt", "one\n")]);
    let model = write_script(
        &env,
        "one.json",
        json!([
            {"tool_calls": [
                {"name": "edit_file", "input": {"path": "a.txt", "old_str": "one\n", "new_str": "ONE\n"}}]},
            {"text": "Shout"}
        ]),
    );
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "shout", "model": model, "review": true});
    let events = events_of(&read_stream(post_code(&server, body).await).await);
    assert_eq!(events.last().unwrap()["type"], "Done", "{events:?}");
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    // The repository goes away before the publish: the push cannot happen.
    std::fs::remove_dir_all(&repo).unwrap();
    let resp = server
        .client()
        .post(server.url(&format!("/runs/{run_id}/publish")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(status, 502, "{err}");
    let last = err["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "Error", "{err}");
    assert_eq!(err["code"], last["code"], "{err}");
    // The run's address no longer names a repository (`ForgeError::Config`).
    assert_eq!(err["code"], "invalid_input", "{err}");
}
