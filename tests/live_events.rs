//! The live events through the real binary (`run --json`): a `Live Diff` with the change so far
//! arrives while the agent still works and before the final `Diff`, made by the same diff as the
//! diff stage (a file over the size limit is left out of it too); a noisy command's streamed
//! `Output` stays within its cap while `Tool: Bash` still carries its output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use serde_json::json;
use support::{Env, events, make_repo, script};

#[test]
fn a_live_diff_arrives_before_the_final_one_with_the_same_limits() {
    let env = Env::new();
    let repo = make_repo(&env.path("repo"), "main", &[("a.txt", "a\n")]);
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command":
                "echo changed > a.txt; head -c 2000000 /dev/zero | tr '\\0' x > big.txt"}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": "sleep 4; echo done"}}]},
            {"text": "Changed a"}
        ])),
    );
    // A 1 MB file limit: big.txt is left out of both diffs.
    env.write("config.toml", "[diff]\nmax_file_mb = 1\n");
    let out = env.run_scripted(&repo, "change a", &s, &["--keep-workspace"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| evs.iter().position(pred);
    let live = at(&|e| e["type"] == "Live Diff").expect("a live diff");
    let second_done = at(&|e| e["type"] == "Tool: Bash" && e["output"] == "done\n").unwrap();
    let fin = at(&|e| e["type"] == "Diff").unwrap();
    assert!(live < second_done, "while the agent still worked");
    assert!(live < fin);
    let l = &evs[live];
    assert!(l["patch"].as_str().unwrap().contains("+changed"), "{l}");
    let files = l["files"].as_array().unwrap();
    let big = files
        .iter()
        .find(|f| f["path"] == "big.txt")
        .expect("listed");
    assert_eq!(big["left_out"], "too_large", "{big}");
    assert!(!l["patch"].as_str().unwrap().contains("xxxx"));
    // It staged into its own index, next to the one the diff stage used.
    let run_id = evs[0]["run_id"].as_str().unwrap();
    let git_dir = env.home().join("work").join(run_id).join("git");
    assert!(git_dir.join("index").exists());
    assert!(git_dir.join("tb-live-index").exists(), "{git_dir:?}");
}

#[test]
fn a_noisy_command_streams_within_its_cap() {
    let env = Env::new();
    let repo = make_repo(&env.path("repo"), "main", &[("a.txt", "a\n")]);
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command":
                "printf '\\033]52;c;aGk=\\007\\033[31mstart\\n'; yes 'noise noise noise' | head -c 3000000; echo end"}}]},
            {"text": "Noisy"}
        ])),
    );
    let out = env.run_scripted(&repo, "noise", &s, &[]);
    assert_eq!(out.status.code(), Some(0));
    let evs = events(&out.stdout);
    let streamed: String = evs
        .iter()
        .filter(|e| e["type"] == "Output")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(streamed.len() < 300 << 10, "{}", streamed.len());
    assert!(streamed.contains("streaming stopped after 256 KiB"));
    assert!(
        streamed.starts_with("start\n"),
        "the escapes removed: {:?}",
        &streamed[..40]
    );
    assert!(!streamed.contains('\u{1b}'));
    let bash = evs.iter().find(|e| e["type"] == "Tool: Bash").unwrap();
    assert!(bash["output"].as_str().unwrap().contains("end"));
}

#[test]
fn both_sandbox_backends_stream_a_commands_output() {
    for backend in ["bwrap", "landlock"] {
        let env = Env::new();
        let repo = make_repo(&env.path("repo"), "main", &[("a.txt", "a\n")]);
        let s = env.write(
            "script.json",
            &script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command": "echo one; sleep 1; echo two"}}]},
                {"text": "Streamed"}
            ])),
        );
        let out = env.run_scripted(&repo, "stream", &s, &["--sandbox", backend]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evs = events(&out.stdout);
        let first = evs
            .iter()
            .position(|e| e["type"] == "Output")
            .unwrap_or_else(|| panic!("{backend}: no Output"));
        let bash = evs.iter().position(|e| e["type"] == "Tool: Bash").unwrap();
        assert!(first < bash, "{backend}");
        assert_eq!(
            evs[first]["text"], "one\n",
            "{backend}: the first line alone, before the sleep"
        );
    }
}
