//! The offline demo, headless: the recorded session really runs its tools and publishes a branch
//! to the demo's local origin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use support::{Env, events, git, types};

#[test]
fn headless_demo_runs_the_recorded_session_and_publishes_to_the_local_origin() {
    let env = Env::new();
    let out = env.run(&["demo", "--headless"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let kinds = types(&evs);
    assert_eq!(kinds.last().map(String::as_str), Some("Done"));
    assert!(
        evs[..3].iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("(replay)"))),
        "labeled replay"
    );

    // The tests really ran in the sandbox: a pass, one failure, then a pass.
    let runs: Vec<i64> = evs
        .iter()
        .filter(|e| e["type"] == "Tool: Bash")
        .map(|e| e["exit_code"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, [0, 1, 0]);
    let failing = evs
        .iter()
        .filter(|e| e["type"] == "Tool: Bash")
        .nth(1)
        .unwrap();
    assert!(
        failing["output"]
            .as_str()
            .unwrap()
            .contains("FAILED (errors=1)"),
        "{failing}"
    );

    let diff = evs.iter().find(|e| e["type"] == "Diff").unwrap();
    let files: Vec<&str> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["README.md", "calc/__init__.py", "tests/test_errors.py"]
    );

    // The branch is in the demo's origin, with the approved change.
    let demo_dirs: Vec<_> = std::fs::read_dir(env.home().join("demo"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(demo_dirs.len(), 1);
    let origin = demo_dirs[0].path().join("origin.git");
    let branches = git(&origin, &["branch", "--list", "tb/*"]);
    let branch = branches.trim().trim_start_matches("* ").to_string();
    assert!(branch.starts_with("tb/make-divide"), "{branches}");
    let module = git(&origin, &["show", &format!("{branch}:calc/__init__.py")]);
    assert!(
        module.contains("raise ValueError(\"cannot divide by zero\")")
            && module.contains("if not values:")
    );
    assert!(env.leftover_workspaces().is_empty());
}
