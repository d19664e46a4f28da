//! Harness overhead: a 20-turn scripted session on a generated 10,000-file repository, end to end
//! (validate, clone, agent with real tools and sandbox, diff, cleanup), minus the scripted model's
//! own time. Median of 5 runs, twice: with a model that answers at once (every millisecond of
//! host work counts), and with one that takes 100 ms a turn (still far quicker than a real one),
//! where host work done while the model thinks (the index refresh) is not overhead.
//! Run: `cargo bench --bench harness`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::Event;
use tiny_backspace::llm::scripted::ScriptedProvider;
use tiny_backspace::pipeline::{self, Gate, Outcome, RunRequest};

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@b"])
        .args(args)
        .current_dir(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "git {args:?}");
}

fn generate_repo(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..files {
        let sub = dir.join(format!("src/m{:03}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        let body: String = (0..20)
            .map(|l| format!("pub fn f{i}_{l}(x: u32) -> u32 {{ x + {l} }}\n"))
            .collect();
        std::fs::write(sub.join(format!("f{i}.rs")), body).unwrap();
    }
    git(dir, &["add", "-A"]);
    // No detached auto-gc repacking the source under our clones; pack it now, like a real
    // repository would be.
    git(dir, &["-c", "gc.auto=0", "commit", "-qm", "generated"]);
    git(dir, &["gc", "-q"]);
}

fn script(delay_ms: u64) -> String {
    let mut turns = vec![];
    for i in 0..19 {
        let call = match i % 6 {
            0 => json!({"name": "list_files", "input": {"path": format!("src/m{:03}", i)}}),
            1 => {
                json!({"name": "read_file", "input": {"path": format!("src/m{:03}/f{}.rs", i, i * 100)}})
            }
            2 => {
                json!({"name": "search", "input": {"pattern": format!("fn f{}_3\\b", i * 100), "path": format!("src/m{:03}", i)}})
            }
            3 => {
                json!({"name": "edit_file", "input": {"path": format!("src/m{:03}/f{}.rs", i, i * 100),
                "old_str": format!("pub fn f{}_0(", i * 100), "new_str": format!("pub fn renamed_{}_0(", i * 100)}})
            }
            4 => {
                json!({"name": "write_file", "input": {"path": format!("notes/n{i}.md"), "content": "note\n"}})
            }
            _ => json!({"name": "bash", "input": {"command": "ls src | wc -l"}}),
        };
        turns
            .push(json!({"text": format!("step {i}"), "tool_calls": [call], "delay_ms": delay_ms}));
    }
    turns.push(
        json!({"text": "Done: renamed a few functions and added notes.", "delay_ms": delay_ms}),
    );
    serde_json::to_string(&json!({ "turns": turns })).unwrap()
}

async fn one_run(repo: &Path, home: &Path, script: &str) -> (Duration, Duration, String) {
    let env = |k: &str| match k {
        "TB_HOME" => Some(home.display().to_string()),
        _ => None,
    };
    let config = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
    let provider = Arc::new(ScriptedProvider::from_json("bench", script).unwrap());
    let request = RunRequest {
        repo: repo.display().to_string(),
        prompt: "rename things".into(),
        base: None,
        gate: Gate::NoPr,
        keep_workspace: false,
        provider: Some(provider.clone()),
        publish: Default::default(),
    };
    let started = Instant::now();
    let mut p = pipeline::start(request, Arc::new(config), repo.to_path_buf());
    let mut tools = 0;
    // Where each segment ends: the agent's first status (validate + clone + setup before it), its
    // "finished" status, the Diff event, and the end of the run (cleanup and the report).
    let mut marks: Vec<(&str, Instant)> = vec![];
    while let Some(e) = p.events.recv().await {
        let mark = match &e {
            Event::Status { stage, .. } if stage.as_str() == "agent" && marks.is_empty() => {
                Some("validate+clone")
            }
            Event::Status { stage, message, .. }
                if stage.as_str() == "agent" && message.starts_with("agent finished") =>
            {
                Some("agent")
            }
            Event::Diff { .. } => Some("diff"),
            _ => None,
        };
        if let Some(m) = mark {
            marks.push((m, Instant::now()));
        }
        if matches!(
            e,
            Event::ToolRead { .. }
                | Event::ToolEdit { .. }
                | Event::ToolBash { .. }
                | Event::ToolSearch { .. }
                | Event::ToolList { .. }
        ) {
            tools += 1;
        }
    }
    let outcome = p.task.await.unwrap();
    let wall = started.elapsed();
    assert!(matches!(outcome, Outcome::Finished { .. }), "{outcome:?}");
    assert_eq!(tools, 19);
    assert_eq!(provider.turns_used(), 20);
    marks.push(("cleanup+report", started + wall));
    let mut from = started;
    let breakdown: Vec<String> = marks
        .iter()
        .map(|(name, at)| {
            let ms = (*at - from).as_secs_f64() * 1000.0;
            from = *at;
            format!("{name} {ms:.0}ms")
        })
        .collect();
    (
        wall,
        Duration::from_millis(provider.model_time_ms()),
        breakdown.join(", "),
    )
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let t = Instant::now();
    generate_repo(&repo, 10_000);
    eprintln!(
        "generated 10,000-file repository in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for delay_ms in [0, 100] {
        series(&rt, &repo, tmp.path(), delay_ms);
    }
}

fn series(rt: &tokio::runtime::Runtime, repo: &Path, tmp: &Path, delay_ms: u64) {
    let script = script(delay_ms);
    let mut overheads = vec![];
    for i in 0..5 {
        let home = tmp.join(format!("home{delay_ms}-{i}"));
        let (wall, model, breakdown) = rt.block_on(one_run(repo, &home, &script));
        let overhead = wall - model;
        eprintln!(
            "run {}: wall {:.3}s, model {:.3}s, overhead {:.3}s ({breakdown})",
            i + 1,
            wall.as_secs_f64(),
            model.as_secs_f64(),
            overhead.as_secs_f64()
        );
        overheads.push(overhead);
    }
    overheads.sort();
    println!(
        "harness overhead, 20-turn scripted session, 10,000-file repo, model {delay_ms} ms/turn: median {:.3}s (min {:.3}s, max {:.3}s)",
        overheads[2].as_secs_f64(),
        overheads[0].as_secs_f64(),
        overheads[4].as_secs_f64()
    );
}
