//! The headless `run` front-end driven as a user would: the real binary, a local repository, the
//! scripted model, the real sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use serde_json::json;
use support::{Env, events, git, make_repo, script, types};

fn calc_repo(env: &Env, branch: &str) -> std::path::PathBuf {
    make_repo(
        &env.path("calc"),
        branch,
        &[
            ("calc.py", "def divide(a, b):\n    return a / b\n"),
            ("README.md", "# calc\n"),
            (".gitignore", "build/\n"),
        ],
    )
}

#[test]
fn scripted_run_reports_real_tools_in_order_and_its_patch_reproduces_the_work() {
    let env = Env::new();
    let repo = calc_repo(&env, "trunk");
    let s = env.write(
        "script.json",
        &script(json!([
            {"text": "Reading the module first.", "tool_calls": [{"name": "read_file", "input": {"path": "calc.py"}}]},
            {"tool_calls": [
                {"name": "edit_file", "input": {"path": "calc.py", "old_str": "    return a / b",
                    "new_str": "    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b"}},
                {"name": "write_file", "input": {"path": "tests/test_calc.py", "content": "from calc import divide\n"}}
            ]},
            {"tool_calls": [{"name": "bash", "input": {"command": "echo out; echo err >&2; sed -i 's/# calc/# calc (safe)/' README.md; mkdir -p build; echo junk > build/x; exit 3"}}]},
            {"text": "Make divide reject a zero divisor\n\nRaises ValueError."}
        ])),
    );
    let out = env.run_scripted(&repo, "Make divide reject zero", &s, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let significant: Vec<String> = types(&evs)
        .into_iter()
        .filter(|t| !matches!(t.as_str(), "Status" | "Usage" | "Output" | "Live Diff"))
        .collect();
    // The command's output streamed (`Output`, with the call's id) before its `Tool: Bash`.
    let at = |ty: &str| evs.iter().position(|e| e["type"] == ty).unwrap();
    assert!(at("Output") < at("Tool: Bash"), "{evs:?}");
    let streamed: String = evs
        .iter()
        .filter(|e| e["type"] == "Output")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        streamed.contains("out") && streamed.contains("err"),
        "{streamed}"
    );
    assert!(
        evs.iter()
            .filter(|e| e["type"] == "Output")
            .all(|e| e["id"].is_string())
    );
    assert_eq!(
        significant,
        [
            "AI Message",
            "Tool: Read",
            "Tool: Edit",
            "Tool: Edit",
            "Tool: Bash",
            "AI Message",
            "Diff",
            "Done"
        ]
    );
    let read = evs.iter().find(|e| e["type"] == "Tool: Read").unwrap();
    assert_eq!(read["filepath"], "calc.py");
    let bash = evs.iter().find(|e| e["type"] == "Tool: Bash").unwrap();
    assert_eq!(bash["exit_code"], 3);
    // While it ran, a progress line named it (the TUI shows it on the agent's step).
    let at = evs.iter().position(|e| e["type"] == "Tool: Bash").unwrap();
    let command = bash["command"].as_str().unwrap();
    let first_line: String = command.lines().next().unwrap().chars().take(40).collect();
    assert!(
        evs[..at].iter().any(|e| e["type"] == "Status"
            && e["stage"] == "agent"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("running ") && m.contains(&first_line))),
        "no progress line before the command: {:?}",
        &evs[..at]
    );
    let output = bash["output"].as_str().unwrap();
    assert!(output.contains("out") && output.contains("err"), "{output}");
    let created = evs
        .iter()
        .filter(|e| e["type"] == "Tool: Edit")
        .nth(1)
        .unwrap();
    assert_eq!(created["old_str"], "");
    assert!(
        evs.iter()
            .all(|e| e["type"] == "Tool: Read" || e["run_id"].is_string())
    );
    assert_eq!(evs.last().unwrap()["type"], "Done");

    // The Diff covers tool edits, shell edits and new files, not ignored output.
    let diff = evs.iter().find(|e| e["type"] == "Diff").unwrap();
    let paths: Vec<&str> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["README.md", "calc.py", "tests/test_calc.py"]);
    let patch = diff["patch"].as_str().unwrap();

    // Applying it to a fresh clone reproduces the work exactly.
    let fresh = env.path("fresh");
    git(
        env.tmp.path(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            fresh.to_str().unwrap(),
        ],
    );
    std::fs::write(env.path("p.diff"), patch).unwrap();
    git(&fresh, &["apply", env.path("p.diff").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(fresh.join("calc.py")).unwrap(),
        "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b\n"
    );
    assert_eq!(
        std::fs::read_to_string(fresh.join("tests/test_calc.py")).unwrap(),
        "from calc import divide\n"
    );
    assert_eq!(
        std::fs::read_to_string(fresh.join("README.md")).unwrap(),
        "# calc (safe)\n"
    );

    // The run is on disk: events, patch, meta; the workspace is gone.
    let runs = env.run_folders();
    assert_eq!(runs.len(), 1);
    let stored = std::fs::read_to_string(runs[0].join("events.jsonl")).unwrap();
    // Streamed output and live diffs are transient: on stdout, not stored.
    let kept = evs
        .iter()
        .filter(|e| !matches!(e["type"].as_str(), Some("Output" | "Live Diff")))
        .count();
    assert_eq!(stored.lines().count(), kept);
    assert_eq!(
        std::fs::read_to_string(runs[0].join("patch.diff")).unwrap(),
        patch
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "finished");
    assert_eq!(
        meta["base"], "trunk",
        "the remote's default branch, not a hard-coded main"
    );
    assert!(meta["model"].as_str().unwrap().contains("replay"));
    assert!(env.leftover_workspaces().is_empty());

    // `runs` lists it.
    let listed = env.run(&["runs"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("finished") && text.contains("Make divide reject zero"),
        "{text}"
    );
    let folders = format!("{}/ID (", env.home().join("runs").display());
    assert!(text.contains(&folders), "where the runs are: {text}");

    // `show` prints it with numbered hunks around the patch, verbatim.
    let run_id = runs[0].file_name().unwrap().to_str().unwrap().to_string();
    let shown = env.run(&["show", &run_id]);
    assert_eq!(shown.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        shown.contains("prompt   Make divide reject zero"),
        "{shown}"
    );
    let body = &shown[shown.find("diff --git").unwrap()..];
    let unmarked: String = body
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(unmarked, patch);
    assert!(
        body.lines()
            .any(|l| l.starts_with("# ") && l.ends_with(":1"))
    );
    let missing = env.run(&["show", "20200101-000000-none"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run '20200101-000000-none'"));
}

#[test]
fn readable_log_goes_to_stderr_and_the_patch_path_to_stdout() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "write_file", "input": {"path": "x.txt", "content": "x\n"}}]},
            {"text": "Add x"}
        ])),
    );
    let out = env.run(&[
        "run",
        "--repo",
        repo.to_str().unwrap(),
        "--prompt",
        "add x",
        "--model",
        &format!("scripted:{}", s.display()),
        "--no-pr",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim().ends_with("patch.diff"), "{stdout}");
    assert!(std::path::Path::new(stdout.trim()).is_file());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("edit   x.txt") && stderr.contains("done in"),
        "{stderr}"
    );
}

#[test]
fn base_branch_is_honoured_and_a_missing_one_is_bad_input() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    git(&repo, &["checkout", "-q", "-b", "release"]);
    std::fs::write(repo.join("calc.py"), "# release\n").unwrap();
    git(&repo, &["commit", "-qam", "release"]);
    git(&repo, &["checkout", "-q", "main"]);
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "read_file", "input": {"path": "calc.py"}}]},
            {"text": "done"}
        ])),
    );
    let out = env.run_scripted(&repo, "p", &s, &["--base", "release"]);
    assert_eq!(out.status.code(), Some(0));
    let meta = std::fs::read_to_string(env.run_folders()[0].join("meta.json")).unwrap();
    assert!(meta.contains("\"base\": \"release\""), "{meta}");

    let out = env.run_scripted(&repo, "p", &s, &["--base", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let evs = events(&out.stdout);
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "Error");
    let msg = last["message"].as_str().unwrap();
    assert!(
        msg.contains("'nope' does not exist") && msg.contains("'main'"),
        "{msg}"
    );
    assert_eq!(
        env.run_folders().len(),
        1,
        "a rejected input leaves no run folder"
    );
    assert!(env.leftover_workspaces().is_empty());
}

#[test]
fn nested_repositories_the_agent_makes_are_left_out_of_the_diff() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command":
                "mkdir -p empty-repo fixture && git init -q empty-repo && cd fixture && git init -q && echo x > f && git -c user.name=a -c user.email=a@a add f && git -c user.name=a -c user.email=a@a commit -qm f"}},
                {"name": "write_file", "input": {"path": "kept.txt", "content": "kept\n"}}]},
            {"text": "done"}
        ])),
    );
    let out = env.run_scripted(&repo, "p", &s, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let evs = events(&out.stdout);
    let diff = evs.iter().find(|e| e["type"] == "Diff").unwrap();
    let paths: Vec<(&str, Option<&str>)> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["left_out"].as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("kept.txt", None),
            ("empty-repo", Some("nested_repository")),
            ("fixture", Some("nested_repository"))
        ]
    );
    assert!(evs.iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("left out of the diff: empty-repo, fixture"))
    }));
}

#[test]
fn empty_repository_gets_its_first_files() {
    let env = Env::new();
    let repo = make_repo(&env.path("empty"), "main", &[]);
    let s = env.write("s.json", &script(json!([
        {"tool_calls": [{"name": "list_files", "input": {}},
                        {"name": "write_file", "input": {"path": "README.md", "content": "# new\n"}}]},
        {"text": "Add a README"}
    ])));
    let out = env.run_scripted(&repo, "start the project", &s, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let evs = events(&out.stdout);
    let diff = evs.iter().find(|e| e["type"] == "Diff").unwrap();
    assert_eq!(diff["files"][0]["path"], "README.md");
    assert_eq!(diff["files"][0]["status"], "added");
    std::fs::write(env.path("p.diff"), diff["patch"].as_str().unwrap()).unwrap();
    git(&repo, &["apply", env.path("p.diff").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "# new\n"
    );
}

#[test]
fn bad_repository_inputs_exit_2_with_a_clear_message_and_leave_nothing() {
    let env = Env::new();
    let not_repo = env.path("plain-dir");
    std::fs::create_dir_all(&not_repo).unwrap();
    let file = env.write("a-file.txt", "x");
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    let model = format!("scripted:{}", s.display());
    let cases: Vec<(String, &str)> = vec![
        ("/no/such/dir".into(), "no such directory"),
        (not_repo.display().to_string(), "not a git repository"),
        (file.display().to_string(), "a file"),
        ("ext::sh -c touch% /tmp/tb-pwned".into(), "transport syntax"),
        ("fd::17".into(), "transport syntax"),
        ("file::/etc".into(), "transport syntax"),
        (
            "--upload-pack=touch /tmp/tb-pwned".into(),
            "starts with '-'",
        ),
        ("https://user:secret@github.com/o/r".into(), "credentials"),
        ("http://example.com/o/r.git".into(), "loopback"),
        ("git@github.com:o/r.git".into(), "SSH"),
        ("".into(), "no repository"),
    ];
    for (input, want) in cases {
        let repo_arg = format!("--repo={input}");
        let out = env.run(&[
            "run", &repo_arg, "--prompt", "p", "--model", &model, "--json", "--no-pr",
        ]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        let evs = events(&out.stdout);
        let last = evs.last().unwrap();
        assert_eq!(last["type"], "Error", "{input}");
        assert_eq!(last["stage"], "validate");
        let msg = last["message"].as_str().unwrap();
        assert!(msg.contains(want), "{input}: {msg}");
        let shown = input.trim().replace("user:secret@", "***@");
        assert!(
            msg.contains(&format!("repository '{shown}'")),
            "{input}: names the input: {msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
        assert!(env.run_folders().is_empty(), "{input} left a run folder");
        assert!(env.leftover_workspaces().is_empty());
    }
    assert!(!std::path::Path::new("/tmp/tb-pwned").exists());
}

#[test]
fn empty_prompt_and_missing_model_are_bad_input() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    let out = env.run(&[
        "run",
        "--repo",
        repo.to_str().unwrap(),
        "--prompt",
        "  ",
        "--model",
        &format!("scripted:{}", s.display()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let last = events(&out.stdout).pop().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("prompt is empty"),
        "{last}"
    );

    let out = env.run(&[
        "run",
        "--repo",
        repo.to_str().unwrap(),
        "--prompt",
        "p",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let msg = events(&out.stdout).pop().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("ANTHROPIC_API_KEY") && msg.contains("tiny-backspace demo"),
        "{msg}"
    );

    let out = env.run(&[
        "run",
        "--repo",
        repo.to_str().unwrap(),
        "--prompt",
        "p",
        "--model",
        "scripted:/no/such/script.json",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(env.run_folders().is_empty());
}

#[test]
fn without_a_sandbox_the_run_stops_before_the_agent_and_says_what_to_do() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": "touch /tmp/should-not-run"}}]},
            {"text": "done"}
        ])),
    );
    // A PATH with git but without bwrap.
    let bin = env.path("bin-without-bwrap");
    std::fs::create_dir_all(&bin).unwrap();
    let git_path = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git_path.trim(), bin.join("git")).unwrap();
    let out = env
        // Asked for by name: left to choose, the run would fall back to the built-in landlock
        // backend where the kernel has it (tests/sandbox_select.rs covers that).
        .scripted_command(repo.to_str().unwrap(), "p", &s, &["--sandbox", "bwrap"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let evs = events(&out.stdout);
    assert!(!evs.iter().any(|e| e["type"] == "Tool: Bash"));
    let msg = evs.last().unwrap()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("not installed")
            && msg.contains("apt-get install bubblewrap")
            && msg.contains("--sandbox none"),
        "{msg}"
    );
    assert!(env.run_folders().is_empty());
}

#[test]
fn sandbox_none_must_be_explicit_and_is_warned_about() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    let s = env.write(
        "s.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": "echo unsandboxed"}}]},
            {"text": "done"}
        ])),
    );
    let out = env.run_scripted(&repo, "p", &s, &["--sandbox", "none"]);
    assert_eq!(out.status.code(), Some(0));
    let evs = events(&out.stdout);
    assert!(evs.iter().any(|e| {
        e["type"] == "Status"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("WARNING: --sandbox none")
    }));
    assert!(evs[0]["message"].as_str().unwrap().contains("sandbox none"));
}

#[test]
fn clone_size_limit_is_a_clear_error() {
    let env = Env::new();
    let repo = calc_repo(&env, "main");
    env.write("config.toml", "[clone]\nmax_size_mb = 0\n");
    let s = env.write("s.json", &script(json!([{"text": "done"}])));
    let out = env.run_scripted(&repo, "p", &s, &[]);
    assert_eq!(out.status.code(), Some(1));
    let last = events(&out.stdout).pop().unwrap();
    assert_eq!(last["stage"], "clone");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("clone.max_size_mb"),
        "{last}"
    );
    assert!(env.leftover_workspaces().is_empty());
}

#[test]
fn config_masks_secrets_and_names_sources() {
    let env = Env::new();
    env.write("config.toml", "model = \"anthropic:claude-sonnet-4-5\"\n");
    env.write(".env", "OPENAI_API_KEY=sk-from-dotenv-abcdefgh\n");
    let out = env
        .command()
        .args(["config"])
        .env("GITHUB_TOKEN", "ghp_secretvalue_9876")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("secretvalue") && !text.contains("from-dotenv"),
        "{text}"
    );
    assert!(
        text.contains("****9876") && text.contains("environment"),
        "{text}"
    );
    assert!(text.contains("****efgh") && text.contains(".env"), "{text}");
    assert!(
        text.contains("anthropic:claude-sonnet-4-5") && text.contains("config file"),
        "{text}"
    );
}
