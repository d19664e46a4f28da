//! Prompt-cache benchmark: a 20-turn scripted session through the real pipeline (clone, agent
//! loop, tools) against the local Anthropic-format server, which records for each request how many
//! bytes form a prefix — ending at a `cache_control` breakpoint, or up to 20 blocks before one —
//! identical to what an earlier request wrote to the cache. Reports total input, the cacheable
//! share, and the cost with and without caching (claude-sonnet-4-5 list prices, ~4 bytes/token).
//!
//! Run: `cargo bench --bench llm_cache`. Exits non-zero below the 85 % target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mock_llm/mod.rs"]
mod mock_llm;

use std::path::Path;
use std::sync::Arc;

use mock_llm::{Format, MockServer, Model, Turn};
use serde_json::json;
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::Event;
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::retry::Chain;
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::pipeline::{self, Gate, RunRequest};
use tiny_backspace::secret::Secret;

const MODULES: usize = 8;

fn module_source(k: usize) -> String {
    let mut s = format!("\"\"\"Module {k}: arithmetic helpers.\"\"\"\n\n");
    for j in 0..24 {
        s.push_str(&format!(
            "def func_{k}_{j}(x):\n    # Adds {j} to x after checking the input type.\n    \
             if not isinstance(x, (int, float)):\n        raise TypeError(\"x must be a number\")\n    \
             return x + {j}\n\n\n"
        ));
    }
    s
}

fn make_repo(parent: &Path) -> std::path::PathBuf {
    let dir = parent.join("bench-repo");
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    for k in 0..MODULES {
        std::fs::write(dir.join(format!("pkg/mod{k}.py")), module_source(k)).unwrap();
    }
    std::fs::write(
        dir.join("README.md"),
        "# pkg\n\nArithmetic helpers.\n".repeat(20),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=b", "-c", "user.email=b@example.com"])
            .args(args)
            .current_dir(&dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    dir
}

/// Twenty model turns: explore, read, search, edit, verify, answer.
fn session() -> Vec<Turn> {
    let mut t = vec![Turn::new(
        "Let me see how the package is laid out.",
        &[("list_files", json!({}))],
    )];
    for k in 0..MODULES {
        t.push(Turn::new(
            &format!("Reading module {k}."),
            &[("read_file", json!({"path": format!("pkg/mod{k}.py")}))],
        ));
    }
    t.push(Turn::new(
        "",
        &[("search", json!({"pattern": "raise TypeError"}))],
    ));
    for k in 0..5 {
        t.push(Turn::new(
            &format!("Tightening func_{k}_0."),
            &[(
                "edit_file",
                json!({"path": format!("pkg/mod{k}.py"),
                       "old_str": format!("def func_{k}_0(x):\n"),
                       "new_str": format!("def func_{k}_0(x):\n    \"\"\"Returns x unchanged.\"\"\"\n")}),
            )],
        ));
    }
    t.push(Turn::new(
        "",
        &[("bash", json!({"command": "wc -l pkg/*.py"}))],
    ));
    t.push(Turn::new(
        "",
        &[("read_file", json!({"path": "README.md"}))],
    ));
    t.push(Turn::new(
        "",
        &[(
            "write_file",
            json!({"path": "NOTES.md", "content": "func_k_0 documented.\n"}),
        )],
    ));
    t.push(Turn::new("", &[("bash", json!({"command": "ls -la pkg"}))]));
    t.push(Turn::new(
        "Document func_k_0\n\nAdded docstrings to func_0_0 … func_4_0.",
        &[],
    ));
    assert_eq!(t.len(), 20);
    t
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let repo = make_repo(tmp.path());
        let model = Model::new(Format::Anthropic, session());
        let server = MockServer::start(model.handler()).await;
        let settings = LlmSettings::default();
        let provider = AnthropicProvider::new(
            Some(&server.url()),
            Some(Secret::new("sk-ant-bench")),
            "claude-sonnet-4-5",
            &settings,
        )
        .unwrap();
        let chain = Chain::new(vec![Arc::new(provider)], settings);
        let overrides = Overrides {
            sandbox: Some("none".into()),
            home: Some(tmp.path().join("home")),
            ..Default::default()
        };
        let config = Config::load_from(&overrides, &|_| None, None, None).unwrap();
        let request = RunRequest {
            repo: repo.display().to_string(),
            prompt: "Document func_k_0 in the first five modules".into(),
            base: None,
            gate: Gate::NoPr,
            keep_workspace: false,
            publish: Default::default(),
            provider: Some(Arc::new(chain)),
        };
        let mut p = pipeline::start(request, Arc::new(config), tmp.path().to_path_buf());
        let mut done = None;
        while let Some(e) = p.events.recv().await {
            match e {
                Event::Done { usage, .. } => done = Some(usage),
                Event::Error { message, .. } => panic!("the run failed: {message}"),
                _ => {}
            }
        }
        let usage = done.expect("no Done event");
        let rows = model.ledger.lock().unwrap().rows.clone();
        assert_eq!(rows.len(), 20, "one request per turn");

        let total: u64 = rows.iter().map(|r| r.total).sum();
        let cached: u64 = rows.iter().map(|r| r.cached).sum();
        let share = cached as f64 / total as f64;
        println!("| request | prompt bytes | cacheable prefix bytes | share |");
        println!("|---:|---:|---:|---:|");
        for (i, r) in rows.iter().enumerate() {
            println!(
                "| {} | {} | {} | {:.1} % |",
                i + 1,
                r.total,
                r.cached,
                100.0 * r.cached as f64 / r.total as f64
            );
        }
        let input_all = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        let without = (input_all as f64 * 3.0 + usage.output_tokens as f64 * 15.0) / 1e6;
        let with = usage.cost_usd.unwrap_or(f64::NAN);
        println!();
        println!("requests: {}", rows.len());
        println!(
            "total input: {total} bytes (~{} tokens); cacheable: {cached} bytes",
            total / 4
        );
        println!("cacheable share: {:.1} %", 100.0 * share);
        println!(
            "tokens as reported: input {} · cache read {} · cache write {} · output {}",
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens
        );
        println!(
            "cost (claude-sonnet-4-5 list prices): ${with:.4} with caching, ${without:.4} without \
             ({:.0} % saved)",
            100.0 * (1.0 - with / without)
        );
        if share < 0.85 {
            eprintln!("below the 85 % target");
            std::process::exit(1);
        }
    });
}
