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

#[path = "support/repo.rs"]
mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Env, make_repo, script};
use tiny_backspace::sandbox::{self, SandboxKind};
use tmux::{Tmux, shell_quote};

const TBUSER: u32 = 1001;

/// The backends to test here. One that cannot run prints why — or fails the test when
/// `TB_EXPECT_BACKENDS` (comma-separated) names it.
fn backends(case: &str) -> Vec<&'static str> {
    let expected = std::env::var("TB_EXPECT_BACKENDS").unwrap_or_default();
    let expected: Vec<&str> = expected.split(',').map(str::trim).collect();
    let mut out = Vec::new();
    for kind in [SandboxKind::Bwrap, SandboxKind::Landlock] {
        match sandbox::probe(kind) {
            Ok(()) => out.push(kind.as_str()),
            Err(e) => {
                assert!(
                    !expected.contains(&kind.as_str()),
                    "backend `{}` is expected (TB_EXPECT_BACKENDS) but cannot run: {e}",
                    kind.as_str()
                );
                eprintln!(
                    "CANNOT RUN: case `{case}` on backend `{}`: {e}",
                    kind.as_str()
                );
            }
        }
    }
    assert!(
        !out.is_empty() || std::env::var_os("TB_ALLOW_NO_SANDBOX").is_some(),
        "no sandbox backend works on this machine (set TB_ALLOW_NO_SANDBOX=1 to accept that)"
    );
    out
}

fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// Processes whose argv[0] is exactly `name`.
fn pids_named(name: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).next() == Some(name.as_bytes()))
        })
        .collect()
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out after {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sandboxed processes of one test: three uniquely named `sleep`s, killed if still there
/// when the test ends (a failing test leaves nothing behind either).
struct Sleepers {
    names: [String; 3],
}

impl Sleepers {
    fn new() -> Self {
        let tag: String = (0..16)
            .map(|_| char::from(b'a' + fastrand::u8(0..26)))
            .collect();
        Sleepers {
            names: ["a", "b", "c"].map(|s| format!("tb-sig-{tag}-{s}")),
        }
    }

    /// A `bash` command: a `setsid` child ignoring SIGTERM and SIGHUP, a double-forked child, and
    /// a foreground sleep that keeps the tool call (and the run) going.
    fn command(&self) -> String {
        let [a, b, c] = &self.names;
        format!(
            "setsid bash -c 'trap \"\" TERM HUP; exec -a {a} sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             ( ( exec -a {b} sleep 1000 ) </dev/null >/dev/null 2>&1 & )\n\
             exec -a {c} sleep 1000"
        )
    }

    fn alive(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| !pids_named(n).is_empty())
            .cloned()
            .collect()
    }

    fn wait_all_started(&self, what: &dyn Fn() -> String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.alive().len() < 3 {
            assert!(
                Instant::now() < deadline,
                "the sandboxed processes did not start: {}",
                what()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_all_gone(&self, case: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.alive().is_empty() {
            assert!(
                Instant::now() < deadline,
                "{case}: still running 10 s later: {:?}",
                self.alive()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for n in &self.names {
            for pid in pids_named(n) {
                // SAFETY: plain syscall on a process that carries this test's unique name.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Turn 1 reports the sandbox's TMPDIR, turn 2 starts the sleepers and waits.
fn sleeper_script(env: &Env, sleepers: &Sleepers) -> PathBuf {
    env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": "printf 'TMPDIR=%s\\n' \"$TMPDIR\""}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": sleepers.command(), "timeout_secs": 600}}]},
            {"text": "not reached"}
        ])),
    )
}

fn repo(env: &Env) -> PathBuf {
    make_repo(
        &env.path("repo"),
        "main",
        &[("calc.py", "def divide(a, b):\n    return a / b\n")],
    )
}

/// Gives the whole test directory to `tbuser`, so a process running as that user can use it.
fn give_to_tbuser(dir: &Path) {
    std::os::unix::fs::lchown(dir, Some(TBUSER), Some(TBUSER)).unwrap();
    if dir.is_dir() && !dir.is_symlink() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            give_to_tbuser(&e.path());
        }
    }
}

/// `run --json --no-pr` on the sleeper script, as the current user or as `tbuser` (when root).
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(env: &Env, backend: &str, script: &Path, as_tbuser: bool) -> Running {
        let repo = env.path("repo");
        let mut cmd = env.scripted_command(repo.to_str().unwrap(), "Sleep a lot", script, &[]);
        cmd.env("TB_SANDBOX", backend)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if as_tbuser {
            cmd.uid(TBUSER).gid(TBUSER);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        let text = stderr.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut t = text.lock().unwrap();
                t.push_str(&l);
                t.push('\n');
            }
        });
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn describe(&self) -> String {
        format!(
            "stdout: {:?}\nstderr: {}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit within {secs}s: {}", self.describe());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn events(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The sandbox's TMPDIR as the first command printed it.
    fn sandbox_tmpdir(&self) -> PathBuf {
        let events = self.events();
        let out = events
            .iter()
            .find_map(|e| e["output"].as_str().and_then(|o| o.strip_prefix("TMPDIR=")))
            .unwrap_or_else(|| panic!("no TMPDIR reported: {}", self.describe()));
        PathBuf::from(out.trim())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn only_run(env: &Env) -> (String, PathBuf) {
    let folders = env.run_folders();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let dir = folders[0].clone();
    (dir.file_name().unwrap().to_string_lossy().into_owned(), dir)
}

fn meta(run_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("meta.json")).unwrap()).unwrap()
}

/// The sandbox's private temporary directory is gone (bwrap's is a tmpfs inside the sandbox: the
/// host path it reports is the host's own /tmp).
fn assert_tmpdir_gone(case: &str, tmpdir: &Path) {
    if tmpdir != Path::new("/tmp") {
        assert!(!tmpdir.exists(), "{case}: {} is left", tmpdir.display());
    }
}

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
        }
    }
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

    let mut runs = env.command();
    runs.arg("runs");
    if as_tbuser {
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
