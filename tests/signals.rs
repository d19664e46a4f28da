//! Signals and hard kills, through the real binary on every sandbox backend:
//! - SIGTERM and SIGHUP do what Ctrl+C does (`run` and the TUI): the run is cancelled, every
//!   sandboxed process — a `setsid` child ignoring SIGTERM, a double-forked one — is killed, the
//!   workspace and the sandbox's temporary directory are removed, meta.json says why, exit code 1;
//!   the TUI also gives the terminal back;
//! - after SIGKILL (no handler runs) the next start (`tiny-backspace runs`) marks the run
//!   `interrupted`, kills what is left of its sandbox and removes its workspace, keeping its patch
//!   (as root and as an ordinary user);
//! - a run whose process is alive is never touched by another process's recovery.
//!
//! The sandboxed processes get a unique made-up name (`exec -a tb-sig-…`), and only processes whose
//! argv[0] is exactly that name are looked for (and killed when a test fails).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sleepers.rs"]
mod sleepers;
#[path = "support/repo.rs"]
mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::os::unix::process::CommandExt;
use std::path::Path;

use serde_json::{Value, json};
use sleepers::{
    Running, Serve, Sleepers, TBUSER, assert_tmpdir_gone, backends, give_to_tbuser, is_root, meta,
    only_run, repo, sleeper_script, wait_until,
};
use support::{Env, script};
use tmux::{Tmux, shell_quote};

#[test]
fn sigterm_and_sighup_cancel_run_and_leave_nothing_behind() {
    for backend in backends("signals: SIGTERM/SIGHUP to `run`") {
        for (sig, sig_name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
            let case = format!("{sig_name} to `run` on {backend}");
            let env = Env::new();
            repo(&env);
            let sleepers = Sleepers::new();
            let script = sleeper_script(&env, &sleepers);
            let mut run = Running::start(&env, backend, &script, false);
            sleepers.wait_all_started(&|| run.describe());
            run.signal(sig);
            let status = run.wait(60);
            assert_eq!(status.code(), Some(1), "{case}: {}", run.describe());
            sleepers.wait_all_gone(&case);
            let (id, dir) = only_run(&env);
            assert!(
                !env.home().join("work").join(&id).exists(),
                "{case}: workspace left"
            );
            assert!(
                env.leftover_workspaces().is_empty(),
                "{case}: {:?}",
                env.leftover_workspaces()
            );
            assert_tmpdir_gone(&case, &run.sandbox_tmpdir());
            let m = meta(&dir);
            assert_eq!(m["status"], "cancelled", "{case}: {m}");
            let error = m["error"].as_str().unwrap_or("");
            assert!(error.contains(sig_name), "{case}: {error}");
            let last = run.events().pop().unwrap();
            assert_eq!(last["type"], "Error", "{case}: {last}");
            assert_eq!(last["code"], "stopped", "{case}: a signal stops: {last}");
        }
    }
}

/// The reader of `run --json` goes away (like a terminal that hung up): the run is stopped and
/// cleaned up instead of abandoned.
#[test]
fn a_closed_output_stops_the_run_and_cleans_up() {
    let Some(backend) = backends("signals: closed output").first().copied() else {
        return;
    };
    let env = Env::new();
    let repo = repo(&env);
    let script = env.write(
        "script.json",
        &script(json!([
            {"text": "First a pause.", "tool_calls": [{"name": "bash", "input": {"command": "sleep 2"}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": "sleep 2"}}]},
            {"text": "Done."}
        ])),
    );
    let mut cmd = env.scripted_command(repo.to_str().unwrap(), "Pause", &script, &[]);
    let mut child = cmd
        .env("TB_SANDBOX", backend)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("\"Status\""), "{first}");
    // The reader is dropped with its BufReader: the next event cannot be written.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let (id, dir) = only_run(&env);
    let m = meta(&dir);
    assert_eq!(m["status"], "cancelled", "{m}");
    assert!(m["error"].as_str().unwrap().contains("output"), "{m}");
    assert!(!env.home().join("work").join(id).exists());
}

/// SIGKILL, then `tiny-backspace runs` (same user, same state dir) recovers the run.
fn sigkill_then_runs_recovers(backend: &str, as_tbuser: bool) {
    let case = format!(
        "SIGKILL on {backend} as {}",
        if as_tbuser { "tbuser" } else { "root" }
    );
    let env = Env::new();
    repo(&env);
    let sleepers = Sleepers::new();
    let script = sleeper_script(&env, &sleepers);
    if as_tbuser {
        std::fs::create_dir_all(env.home()).unwrap();
        give_to_tbuser(env.tmp.path());
    }
    let mut run = Running::start(&env, backend, &script, as_tbuser);
    sleepers.wait_all_started(&|| run.describe());
    run.signal(libc::SIGKILL);
    run.wait(30);
    let (id, dir) = only_run(&env);
    assert_eq!(meta(&dir)["status"], "running", "{case}: before recovery");
    if backend == "bwrap" {
        // bwrap dies with its parent, and its pid namespace with it: nothing waits for recovery.
        sleepers.wait_all_gone(&format!("{case}, before any recovery"));
    }

    let mut runs = env.command();
    runs.arg("runs");
    if as_tbuser {
        runs = support::from_a_copy_others_can_run(&runs, env.tmp.path());
        runs.uid(TBUSER).gid(TBUSER);
    }
    let out = runs.output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{case}: {out:?}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or("");
    assert!(row.contains("interrupted"), "{case}: {table}");
    sleepers.wait_all_gone(&case);
    assert!(
        env.leftover_workspaces().is_empty(),
        "{case}: {:?}",
        env.leftover_workspaces()
    );
    assert_tmpdir_gone(&case, &run.sandbox_tmpdir());
    let m = meta(&dir);
    assert_eq!(m["status"], "interrupted", "{case}: {m}");
    // The stored events end like every run's: with an Error.
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "Error", "{case}: {last}");
    assert_eq!(last["code"], "stopped", "{case}: {last}");
}

#[test]
fn after_sigkill_the_next_start_marks_the_run_interrupted_and_cleans_up() {
    for backend in backends("signals: SIGKILL, then recovery") {
        sigkill_then_runs_recovers(backend, false);
    }
}

#[test]
fn after_sigkill_an_ordinary_user_recovers_too() {
    if !is_root() {
        // Already an ordinary user: the case above is this one.
        for backend in backends("signals: SIGKILL as an ordinary user") {
            sigkill_then_runs_recovers(backend, false);
        }
        return;
    }
    for backend in backends("signals: SIGKILL as tbuser") {
        sigkill_then_runs_recovers(backend, true);
    }
}

#[test]
fn recovery_leaves_a_live_run_of_another_process_alone() {
    for backend in backends("signals: a live run is not recovered") {
        let case = format!("live run on {backend}");
        let env = Env::new();
        repo(&env);
        let sleepers = Sleepers::new();
        let script = sleeper_script(&env, &sleepers);
        let mut run = Running::start(&env, backend, &script, false);
        sleepers.wait_all_started(&|| run.describe());
        let (id, dir) = only_run(&env);
        let out = env.run(&["runs"]);
        let table = String::from_utf8_lossy(&out.stdout);
        let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or("");
        assert!(row.contains("running"), "{case}: {table}");
        assert_eq!(
            sleepers.alive().len(),
            3,
            "{case}: recovery killed a live run"
        );
        assert!(env.home().join("work").join(&id).join("repo").is_dir());
        assert_eq!(meta(&dir)["status"], "running");
        // It still ends cleanly.
        run.signal(libc::SIGTERM);
        assert_eq!(run.wait(60).code(), Some(1), "{case}: {}", run.describe());
        sleepers.wait_all_gone(&case);
    }
}

#[test]
fn sighup_to_serve_cancels_its_runs_and_cleans_up() {
    for backend in backends("signals: SIGHUP to serve") {
        let case = format!("SIGHUP to serve on {backend}");
        let env = Env::new();
        let repo = repo(&env);
        let sleepers = Sleepers::new();
        let script = sleeper_script(&env, &sleepers);
        let mut serve = Serve::start(&env, backend);
        let stream = serve.post_run(&repo, &script);
        sleepers.wait_all_started(&|| stream.lock().unwrap().clone());
        serve.signal(libc::SIGHUP);
        // A graceful shutdown: the run gets the grace period (1 s), then is cancelled.
        assert_eq!(serve.wait(60).code(), Some(0), "{case}");
        sleepers.wait_all_gone(&case);
        let (_, dir) = only_run(&env);
        assert_eq!(meta(&dir)["status"], "cancelled", "{case}");
        assert!(env.leftover_workspaces().is_empty(), "{case}");
        let stream = stream.lock().unwrap().clone();
        assert!(stream.contains("\"type\":\"Error\""), "{case}: {stream}");
    }
}

#[test]
fn after_sigkill_of_serve_all_its_runs_are_recovered() {
    for backend in backends("signals: SIGKILL of serve with two runs") {
        let case = format!("SIGKILL of serve on {backend}");
        let env = Env::new();
        let repo = repo(&env);
        let mut serve = Serve::start(&env, backend);
        let runs: Vec<Sleepers> = (0..2).map(|_| Sleepers::new()).collect();
        for s in &runs {
            let stream = serve.post_run(&repo, &sleeper_script(&env, s));
            s.wait_all_started(&|| stream.lock().unwrap().clone());
        }
        serve.signal(libc::SIGKILL);
        serve.wait(30);
        let out = env.run(&["runs"]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert_eq!(table.matches("interrupted").count(), 2, "{case}: {table}");
        for s in &runs {
            s.wait_all_gone(&case);
        }
        assert!(env.leftover_workspaces().is_empty(), "{case}");
    }
}

/// The pid of the tiny-backspace process using `home` as its state dir.
fn tb_pid(home: &Path) -> Option<i32> {
    let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_tiny-backspace")).unwrap();
    let marker = format!("TB_HOME={}", home.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == bin)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        })
}

/// Starts `args` in tmux; once the program ends, its exit code and the terminal's modes are
/// written to files and the pane stays (so its screen state can be read).
fn tmux_start(env: &Env, backend: &str, args: &[String]) -> Tmux {
    let argv: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let command = format!(
        "env -i PATH={path} HOME={home} TB_HOME={tbhome} TB_CONFIG=/nonexistent.toml TB_SANDBOX={backend} \
         {bin} {argv}; echo $? > {exit}; stty -a > {stty}; exec sleep 600",
        path = shell_quote(&std::env::var("PATH").unwrap_or_default()),
        home = shell_quote(&env.tmp.path().display().to_string()),
        tbhome = shell_quote(&env.home().display().to_string()),
        bin = shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        argv = argv.join(" "),
        exit = shell_quote(&env.path("exit-code").display().to_string()),
        stty = shell_quote(&env.path("stty").display().to_string()),
    );
    Tmux::start(
        env.path("tmux.sock"),
        120,
        34,
        Some(env.tmp.path()),
        &command,
    )
}

#[test]
fn sigterm_and_sighup_to_the_tui_restore_the_terminal_and_clean_up() {
    for backend in backends("signals: SIGTERM/SIGHUP to the TUI") {
        for (sig, sig_name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
            let case = format!("{sig_name} to the TUI on {backend}");
            let env = Env::new();
            let repo = repo(&env);
            let sleepers = Sleepers::new();
            let script = sleeper_script(&env, &sleepers);
            let args = [
                "--repo".to_string(),
                repo.display().to_string(),
                "--prompt".into(),
                "Sleep a lot".into(),
                "--model".into(),
                format!("scripted:{}", script.display()),
            ];
            let tmux = tmux_start(&env, backend, &args);
            tmux.wait_for("Sleep a lot");
            tmux.send(&["C-s"]);
            sleepers.wait_all_started(&|| tmux.screen());
            let pid = tb_pid(&env.home()).expect("the TUI's process");
            // SAFETY: plain syscall on the process under test.
            assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
            let exit = env.path("exit-code");
            wait_until(&format!("{case}: exit"), 60, || {
                std::fs::read_to_string(&exit).is_ok_and(|s| s.ends_with('\n'))
            });
            assert_eq!(
                std::fs::read_to_string(&exit).unwrap().trim(),
                "1",
                "{case}"
            );
            sleepers.wait_all_gone(&case);
            let alt = tmux.cmd(&[
                "display",
                "-p",
                "-t",
                "e2e",
                "#{alternate_on} #{cursor_flag}",
            ]);
            assert_eq!(
                String::from_utf8_lossy(&alt.stdout).trim(),
                "0 1",
                "{case}: alternate screen left on or cursor hidden"
            );
            wait_until(&format!("{case}: stty"), 10, || env.path("stty").exists());
            let stty = std::fs::read_to_string(env.path("stty")).unwrap();
            let modes: Vec<&str> = stty.split([' ', ';', '\n']).collect();
            assert!(
                modes.contains(&"icanon") && modes.contains(&"echo"),
                "{case}: terminal left in raw mode: {stty}"
            );
            let (id, dir) = only_run(&env);
            assert!(!env.home().join("work").join(&id).exists(), "{case}");
            assert_eq!(meta(&dir)["status"], "cancelled", "{case}");
        }
    }
}

/// A run killed while it waited for approval: `interrupted`, its patch kept, its workspace gone.
#[test]
fn a_run_killed_in_review_keeps_its_patch() {
    for backend in backends("signals: SIGKILL in review") {
        let case = format!("SIGKILL in review on {backend}");
        let env = Env::new();
        let repo = repo(&env);
        let script = env.write(
            "script.json",
            &script(json!([
                {"tool_calls": [{"name": "write_file", "input": {"path": "NOTES.md", "content": "notes\n"}}]},
                {"text": "Added notes."}
            ])),
        );
        // `run` without --json on a terminal asks for approval.
        let args = [
            "run".to_string(),
            "--repo".into(),
            repo.display().to_string(),
            "--prompt".into(),
            "Add notes".into(),
            "--model".into(),
            format!("scripted:{}", script.display()),
        ];
        let tmux = tmux_start(&env, backend, &args);
        tmux.wait_for("Approve this change?");
        let (id, dir) = only_run(&env);
        assert_eq!(meta(&dir)["status"], "review", "{case}");
        let pid = tb_pid(&env.home()).expect("the run's process");
        // SAFETY: plain syscall on the process under test.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        wait_until(&format!("{case}: killed"), 30, || {
            env.path("exit-code").exists()
        });
        let out = env.run(&["runs"]);
        let table = String::from_utf8_lossy(&out.stdout);
        let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or("");
        assert!(row.contains("interrupted"), "{case}: {table}");
        let m = meta(&dir);
        assert_eq!(m["status"], "interrupted", "{case}: {m}");
        let patch = std::fs::read_to_string(dir.join("patch.diff")).unwrap();
        assert!(patch.contains("+notes"), "{case}: {patch}");
        assert!(env.leftover_workspaces().is_empty(), "{case}");
        drop(tmux);
    }
}
