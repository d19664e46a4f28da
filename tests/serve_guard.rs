//! `serve` can be driven only by its owner: a token always (generated into a private file when none
//! is configured), no foreign `Host` (DNS rebinding) or `Origin` (web pages), JSON bodies only (no
//! CORS-free `text/plain` posts), held connections time out and are capped, a publish whose client
//! leaves still ends and frees its run, and replay follows a running run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;
#[path = "support/repo.rs"]
mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{Server, events_of, read_stream};
use support::{Env, make_repo, script};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request on its own connection, written by hand so `Host` and friends are exactly ours.
/// Returns the status and the body.
async fn raw(addr: &str, head: &[(&str, &str)], request_line: &str, body: &str) -> (u16, String) {
    let mut text = format!("{request_line}\r\n");
    for (k, v) in head {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    text.push_str("connection: close\r\n\r\n");
    text.push_str(body);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(text.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("the server answers")
        .unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn assert_error_shape(body: &str, want: &str) {
    let err: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(err["field"].is_null(), "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(message.contains(want), "{message}");
}

#[tokio::test]
async fn without_a_token_one_is_generated_into_a_private_file_and_reused() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    let path = env.home().join("server-token");
    let meta = std::fs::symlink_metadata(&path).expect("the token file exists");
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(token, server.token);
    assert!(token.len() >= 43, "at least 32 random bytes: {token}");
    // Said where it is, never what it is.
    let shown = path.display().to_string();
    wait_until("the server says where its token is", 30, || {
        server.stderr.lock().unwrap().contains(&shown)
    })
    .await;
    let said = server.stderr.lock().unwrap().clone();
    assert!(!said.contains(&token), "{said}");

    let events = server.url("/runs/nope/events");
    let plain = reqwest::Client::new();
    assert_eq!(plain.get(&events).send().await.unwrap().status(), 401);
    let wrong = plain.get(&events).bearer_auth("x".repeat(token.len()));
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    assert_eq!(
        server.client().get(&events).send().await.unwrap().status(),
        404
    );
    drop(server);

    // A restart reuses it: clients keep working.
    let again = Server::start(&env, &[], &[]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        token,
        "the same token"
    );
    let resp = plain
        .get(again.url("/runs/nope/events"))
        .bearer_auth(&token);
    assert_eq!(resp.send().await.unwrap().status(), 404);
    for log in std::fs::read_dir(env.home().join("logs"))
        .into_iter()
        .flatten()
    {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(&token), "the log holds the token");
    }
}

#[tokio::test]
async fn a_token_file_others_can_read_or_that_is_not_a_plain_file_is_refused() {
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef";
    type Setup = fn(&std::path::Path, &str);
    let cases: [(&str, Setup); 5] = [
        ("world-readable", |p, s| {
            std::fs::write(p, s).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }),
        ("group-readable", |p, s| {
            std::fs::write(p, s).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }),
        ("symlink", |p, s| {
            let target = p.with_file_name("elsewhere");
            std::fs::write(&target, s).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            symlink(&target, p).unwrap();
        }),
        ("directory", |p, _| std::fs::create_dir(p).unwrap()),
        ("too short", |p, _| {
            std::fs::write(p, "short").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }),
    ];
    let mut running = vec![];
    for (name, setup) in cases {
        let env = Env::new();
        std::fs::create_dir_all(env.home()).unwrap();
        setup(&env.home().join("server-token"), secret);
        let child = env
            .command()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        running.push((name, env, child));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && running
            .iter_mut()
            .any(|(_, _, c)| c.try_wait().unwrap().is_none())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every server still up is stopped before anything is asserted, so a failure leaks none.
    let mut outcomes = vec![];
    for (name, env, mut child) in running {
        let started = child.try_wait().unwrap().is_none();
        if started {
            let _ = child.kill();
        }
        outcomes.push((name, env, started, child.wait_with_output().unwrap()));
    }
    for (name, env, started, out) in outcomes {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !started,
            "{name}: the server started with an unsafe token file"
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let path = env.home().join("server-token");
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(!err.contains(secret) && !String::from_utf8_lossy(&out.stdout).contains(secret));
    }
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_on_every_route() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    let addr = server.addr().to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let auth = format!("Bearer {}", server.token);
    let routes = [
        ("GET /healthz HTTP/1.1", ""),
        ("GET /openapi.json HTTP/1.1", ""),
        (
            "POST /code HTTP/1.1",
            r#"{"repoUrl":"octo/calc","prompt":"p"}"#,
        ),
        ("GET /runs/nope/events HTTP/1.1", ""),
        ("POST /runs/nope/publish HTTP/1.1", "{}"),
    ];
    let evil_host = format!("evil.example:{port}");
    for (line, body) in routes {
        // DNS rebinding: the browser talks to us under the attacker's name.
        let head = [
            ("host", evil_host.as_str()),
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let (status, text) = raw(&addr, &head, line, body).await;
        assert_eq!(status, 403, "{line} with Host {evil_host}: {text}");
        assert_error_shape(&text, "Host");
        // A page elsewhere posting to us.
        let head = [
            ("host", addr.as_str()),
            ("origin", "http://evil.example"),
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let (status, text) = raw(&addr, &head, line, body).await;
        assert_eq!(status, 403, "{line} with a foreign Origin: {text}");
        assert_error_shape(&text, "Origin");
    }
    for origin in ["null", "http://127.0.0.1:1", "https://evil.example"] {
        let head = [("host", addr.as_str()), ("origin", origin)];
        let (status, _) = raw(&addr, &head, "GET /healthz HTTP/1.1", "").await;
        assert_eq!(status, 403, "Origin {origin}");
    }
    let (status, _) = raw(&addr, &[], "GET /healthz HTTP/1.1", "").await;
    assert_eq!(status, 403, "no Host at all");
    // The server's own names pass.
    let localhost = format!("localhost:{port}");
    let upper = format!("LOCALHOST:{port}");
    let own_origin = format!("http://{addr}");
    let local_origin = format!("http://{localhost}");
    for head in [
        vec![("host", addr.as_str())],
        vec![("host", localhost.as_str())],
        vec![("host", upper.as_str())],
        vec![("host", addr.as_str()), ("origin", own_origin.as_str())],
        vec![
            ("host", localhost.as_str()),
            ("origin", local_origin.as_str()),
        ],
    ] {
        let (status, text) = raw(&addr, &head, "GET /healthz HTTP/1.1", "").await;
        assert_eq!(status, 200, "{head:?}: {text}");
    }
}

#[tokio::test]
async fn a_configured_public_name_is_accepted() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--public-host", "tb.internal.example"]);
    let addr = server.addr().to_string();
    for (host, want) in [
        ("tb.internal.example", 200),
        ("tb.internal.example:8443", 200),
        ("other.example", 403),
    ] {
        let (status, text) = raw(&addr, &[("host", host)], "GET /healthz HTTP/1.1", "").await;
        assert_eq!(status, want, "{host}: {text}");
    }
    let env = Env::new();
    let server = Server::start(&env, &[("TB_SERVER_HOST", "tb.env.example")], &[]);
    let (status, _) = raw(
        server.addr(),
        &[("host", "tb.env.example")],
        "GET /healthz HTTP/1.1",
        "",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    let client = server.client();
    let body =
        json!({"repoUrl": "octo/calc", "prompt": "p", "model": "anthropic:../../x"}).to_string();
    for path in ["/code", "/runs/nope/publish"] {
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            None,
        ] {
            let mut req = client.post(server.url(path)).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 415, "{path} {content_type:?}");
            let text = resp.text().await.unwrap();
            assert_error_shape(&text, "application/json");
        }
    }
    // JSON, with or without a charset, goes on to validation.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;Charset=\"UTF-8\"",
    ] {
        let resp = client
            .post(server.url("/code"))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{content_type}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["field"], "model", "{err}");
    }
    // Publishing needs no body at all.
    let resp = client
        .post(server.url("/runs/nope/publish"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn scripted_models_over_http_are_json_files_by_absolute_path_only() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    for model in [
        "scripted:/etc/passwd",
        "scripted:relative.json",
        "scripted:/tmp/../etc/x.json",
        "scripted:",
    ] {
        let resp = server
            .client()
            .post(server.url("/code"))
            .json(&json!({"repoUrl": repo.display().to_string(), "prompt": "p", "model": model}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{model}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["field"], "model", "{model}: {err}");
    }
}

/// Lowers the server's open-file limit, as a service manager might.
fn limit_open_files(pid: u32, n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: prlimit on our own child with a valid rlimit and no old-value pointer.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn held_connections_do_not_starve_a_real_request() {
    let env = Env::new();
    let server = Server::start(&env, &[], &[]);
    // 400 idle connections exceed a 384-descriptor budget: held forever, they lock everyone out.
    limit_open_files(server.child.id(), 384);
    let mut held = vec![];
    for _ in 0..400 {
        let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(120),
        server.client().get(server.url("/healthz")).send(),
    )
    .await
    .expect("a real request is served while 400 connections are held")
    .unwrap();
    assert_eq!(resp.status(), 200);
    // The first held connection was dropped by the server for not finishing its headers.
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(60), held[0].read(&mut buf))
        .await
        .expect("the held connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

fn real_git() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_publish_whose_client_leaves_still_ends_and_frees_the_run() {
    let env = Env::new();
    // A `git` that, once armed, holds every fetch (publishing to a local repository fetches the
    // base, then fetches the commit into it) until the test releases it.
    let gate = env.path("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let wrapper = env.write(
        "bin/git",
        &format!(
            "#!/bin/sh\nif [ -e '{g}/armed' ]; then\n  for a in \"$@\"; do\n    if [ \"$a\" = fetch ]; then\n      \
             : > '{g}/held'\n      while [ ! -e '{g}/release' ]; do sleep 0.05; done\n      break\n    fi\n  \
             done\nfi\nexec '{git}' \"$@\"\n",
            g = gate.display(),
            git = real_git()
        ),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        wrapper.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let server = Server::start(&env, &[("PATH", &path)], &["--allow-local"]);
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let model = env.write(
        "edit.json",
        &script(json!([
            {"tool_calls": [{"name": "edit_file", "input": {"path": "a.txt", "old_str": "a", "new_str": "b"}}]},
            {"text": "a to b"}
        ])),
    );
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "p",
        "model": format!("scripted:{}", model.display()), "review": true});
    let resp = server
        .client()
        .post(server.url("/code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = events_of(&read_stream(resp).await);
    assert_eq!(events.last().unwrap()["type"], "Done", "{events:?}");
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    let publish = format!("/runs/{run_id}/publish");
    std::fs::write(gate.join("armed"), "").unwrap();

    // The first publish reaches git; its client goes away.
    let addr = server.addr().to_string();
    let auth = format!("Bearer {}", server.token);
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(
            format!(
                "POST {publish} HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\n\
                 content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    wait_until("publishing runs git", 60, || gate.join("held").exists()).await;
    drop(first);

    // While that publish is still going, a second one is told so.
    let client = server.client();
    let resp = client.post(server.url(&publish)).send().await.unwrap();
    assert_eq!(resp.status(), 409);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("being published"),
        "{err}"
    );

    // Once git may go on, the first publish finishes on its own and the run is free again.
    std::fs::write(gate.join("release"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, result) = loop {
        let resp = client.post(server.url(&publish)).send().await.unwrap();
        let status = resp.status();
        let result: Value = resp.json().await.unwrap();
        if status != 409 || Instant::now() > deadline {
            break (status, result);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 200, "{result}");
    let branch = result["branch"].as_str().unwrap();
    let branches = support::git(&repo, &["branch", "--list", branch]);
    assert!(
        branches.contains(branch),
        "the branch was pushed: {branches}"
    );
}

#[tokio::test]
async fn replay_follows_a_running_run_from_last_event_id() {
    let env = Env::new();
    let server = Server::start(&env, &[], &["--allow-local"]);
    let repo = make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let model = env.write(
        "slow.json",
        &script(json!([
            {"text": "one", "delay_ms": 700, "tool_calls": [{"name": "list_files", "input": {}}]},
            {"text": "two", "delay_ms": 700, "tool_calls": [{"name": "list_files", "input": {}}]},
            {"text": "done"}
        ])),
    );
    let body = json!({"repoUrl": repo.display().to_string(), "prompt": "p",
        "model": format!("scripted:{}", model.display()), "review": true});
    let client = server.client();
    let resp = client
        .post(server.url("/code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let live = tokio::spawn(read_stream(resp));
    // Find the run while it is still going.
    let runs = env.home().join("runs");
    wait_until("the run is stored", 60, || {
        std::fs::read_dir(&runs).is_ok_and(|mut d| d.next().is_some())
    })
    .await;
    let run_id = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .to_string();
    let replay = client
        .get(server.url(&format!("/runs/{run_id}/events")))
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let replayed = read_stream(replay).await;
    let live = live.await.unwrap();
    assert_eq!(events_of(&live).last().unwrap()["type"], "Done");
    let stored = std::fs::read_to_string(runs.join(&run_id).join("events.jsonl")).unwrap();
    let stored: Vec<Value> = stored
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<String> = replayed.iter().filter_map(|m| m.id.clone()).collect();
    let want: Vec<String> = (2..=stored.len()).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    assert_eq!(events_of(&replayed), stored[1..].to_vec());
}
