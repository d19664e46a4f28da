//! Load on loopback, bounded in count and time: 20 concurrent `POST /code` requests with the
//! scripted model against a server that runs 2 at a time. Reports completion, queue positions,
//! latencies and the server's peak memory. Run: `cargo bench --bench serve_load`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

const REQUESTS: usize = 20;
const TOKEN: &str = "serve-load-bench-token-0123456789abcdef";

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@b"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "a"]);
    let script = tmp.path().join("s.json");
    std::fs::write(
        &script,
        json!({"turns": [
            {"text": "looking", "delay_ms": 200, "tool_calls": [{"name": "read_file", "input": {"path": "a.txt"}}]},
            {"tool_calls": [{"name": "edit_file", "input": {"path": "a.txt", "old_str": "a", "new_str": "b"}},
                            {"name": "bash", "input": {"command": "cat a.txt"}}]},
            {"text": "Change a to b"}
        ]})
        .to_string(),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_tiny-backspace"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--allow-local",
            "--max-concurrent",
            "2",
        ])
        .env("TB_HOME", tmp.path().join("home"))
        .env("TB_CONFIG", tmp.path().join("none.toml"))
        .env("TB_SERVER_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = format!("http://{}", line.trim().rsplit("http://").next().unwrap());
    std::thread::spawn(move || for _ in stderr.lines() {});
    let rss_idle = peak_rss_kib(child.id());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let results = rt.block_on(async {
        let client = reqwest::Client::new();
        let body = json!({"repoUrl": repo.display().to_string(), "prompt": "a to b",
            "model": format!("scripted:{}", script.display()), "review": true});
        let tasks = (0..REQUESTS).map(|_| {
            let req = client
                .post(format!("{base}/code"))
                .bearer_auth(TOKEN)
                .json(&body);
            async move {
                let t0 = Instant::now();
                let resp = req.send().await.unwrap();
                let mut stream = resp.bytes_stream();
                let mut first_byte = None;
                let mut text = String::new();
                let read = async {
                    while let Some(chunk) = stream.next().await {
                        first_byte.get_or_insert(t0.elapsed());
                        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                    }
                };
                tokio::time::timeout(Duration::from_secs(300), read)
                    .await
                    .expect("bounded in time");
                let done = text.contains("\"type\":\"Done\"");
                let queued = text.contains("queued: position");
                (first_byte.unwrap_or_default(), t0.elapsed(), done, queued)
            }
        });
        futures::future::join_all(tasks).await
    });
    let total = started.elapsed();
    let rss_peak = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    let completed = results.iter().filter(|r| r.2).count();
    let queued = results.iter().filter(|r| r.3).count();
    let mut firsts: Vec<Duration> = results.iter().map(|r| r.0).collect();
    let mut ends: Vec<Duration> = results.iter().map(|r| r.1).collect();
    firsts.sort();
    ends.sort();
    println!("serve load: {REQUESTS} concurrent requests, limit 2 running");
    println!("  completed with Done: {completed}/{REQUESTS}; saw a queue position: {queued}");
    println!(
        "  first byte: median {:.0} ms, max {:.0} ms",
        firsts[REQUESTS / 2].as_secs_f64() * 1e3,
        firsts[REQUESTS - 1].as_secs_f64() * 1e3
    );
    println!(
        "  completion: median {:.2} s, max {:.2} s; all done in {:.2} s",
        ends[REQUESTS / 2].as_secs_f64(),
        ends[REQUESTS - 1].as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  server peak RSS: {} KiB idle, {} KiB after the load",
        rss_idle, rss_peak
    );
    assert_eq!(completed, REQUESTS, "every request completes");
}
