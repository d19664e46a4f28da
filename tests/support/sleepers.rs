//! Helpers for `tests/signals.rs`: uniquely named sandboxed processes to look for, the backends
//! to run on, and the real binary running a scripted `run`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tiny_backspace::sandbox::{self, SandboxKind};

use super::support::{Env, from_a_copy_others_can_run, make_repo, script};

pub const TBUSER: u32 = 1001;

/// The backends to test here. One that cannot run prints why — or fails the test when
/// `TB_EXPECT_BACKENDS` (comma-separated) names it.
pub fn backends(case: &str) -> Vec<&'static str> {
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

pub fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// Processes whose argv[0] is exactly `name`.
pub fn pids_named(name: &str) -> Vec<i32> {
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

pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out after {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sandboxed processes of one test: three uniquely named `sleep`s, killed if still there
/// when the test ends (a failing test leaves nothing behind either).
pub struct Sleepers {
    pub names: [String; 3],
}

impl Sleepers {
    pub fn new() -> Self {
        let tag: String = (0..16)
            .map(|_| char::from(b'a' + fastrand::u8(0..26)))
            .collect();
        Sleepers {
            names: ["a", "b", "c"].map(|s| format!("tb-sig-{tag}-{s}")),
        }
    }

    /// A `bash` command: a `setsid` child ignoring SIGTERM and SIGHUP, a double-forked child, and
    /// a foreground sleep that keeps the tool call (and the run) going.
    pub fn command(&self) -> String {
        let [a, b, c] = &self.names;
        format!(
            "setsid bash -c 'trap \"\" TERM HUP; exec -a {a} sleep 1000' </dev/null >/dev/null 2>&1 &\n\
             ( ( exec -a {b} sleep 1000 ) </dev/null >/dev/null 2>&1 & )\n\
             exec -a {c} sleep 1000"
        )
    }

    pub fn alive(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| !pids_named(n).is_empty())
            .cloned()
            .collect()
    }

    pub fn wait_all_started(&self, what: &dyn Fn() -> String) {
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

    pub fn wait_all_gone(&self, case: &str) {
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
pub fn sleeper_script(env: &Env, sleepers: &Sleepers) -> PathBuf {
    env.write(
        &format!("{}.json", sleepers.names[0]),
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": "printf 'TMPDIR=%s\\n' \"$TMPDIR\""}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": sleepers.command(), "timeout_secs": 600}}]},
            {"text": "not reached"}
        ])),
    )
}

pub fn repo(env: &Env) -> PathBuf {
    make_repo(
        &env.path("repo"),
        "main",
        &[("calc.py", "def divide(a, b):\n    return a / b\n")],
    )
}

/// Gives the whole test directory to `tbuser`, so a process running as that user can use it.
pub fn give_to_tbuser(dir: &Path) {
    std::os::unix::fs::lchown(dir, Some(TBUSER), Some(TBUSER)).unwrap();
    if dir.is_dir() && !dir.is_symlink() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            give_to_tbuser(&e.path());
        }
    }
}

/// `run --json --no-pr` on the sleeper script, as the current user or as `tbuser` (when root).
pub struct Running {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn start(env: &Env, backend: &str, script: &Path, as_tbuser: bool) -> Running {
        let repo = env.path("repo");
        let mut cmd = env.scripted_command(repo.to_str().unwrap(), "Sleep a lot", script, &[]);
        if as_tbuser {
            cmd = from_a_copy_others_can_run(&cmd, env.tmp.path());
            cmd.uid(TBUSER).gid(TBUSER);
        }
        cmd.env("TB_SANDBOX", backend)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A binary copied a moment ago can be "text file busy": another test thread forking at
        // that instant holds a writable descriptor to it. Retry, as tests/support/as_user.rs does.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => break other.unwrap(),
            }
        };
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

    pub fn describe(&self) -> String {
        format!(
            "stdout: {:?}\nstderr: {}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
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

    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The sandbox's TMPDIR as the first command printed it.
    pub fn sandbox_tmpdir(&self) -> PathBuf {
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

pub fn only_run(env: &Env) -> (String, PathBuf) {
    let folders = env.run_folders();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let dir = folders[0].clone();
    (dir.file_name().unwrap().to_string_lossy().into_owned(), dir)
}

pub fn meta(run_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("meta.json")).unwrap()).unwrap()
}

/// The sandbox's private temporary directory is gone (bwrap's is a tmpfs inside the sandbox: the
/// host path it reports is the host's own /tmp).
pub fn assert_tmpdir_gone(case: &str, tmpdir: &Path) {
    if tmpdir != Path::new("/tmp") {
        assert!(!tmpdir.exists(), "{case}: {} is left", tmpdir.display());
    }
}

/// `tiny-backspace serve` on a free loopback port, with a token and local repositories allowed.
pub struct Serve {
    pub child: Child,
    pub addr: String,
    token: String,
}

impl Serve {
    pub fn start(env: &Env, backend: &str) -> Serve {
        let token = format!("t{}", fastrand::u64(..));
        let mut cmd = env.command();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--allow-local"])
            .args(["--shutdown-grace-secs", "1"])
            .env("TB_SANDBOX", backend)
            .env("TB_SERVER_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line.trim().rsplit("http://").next().unwrap().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "first line: {line}");
        std::thread::spawn(move || for _ in stderr.lines() {});
        Serve { child, addr, token }
    }

    /// POSTs a run of `script` on `repo`; its event stream is read (and kept open) by a thread.
    pub fn post_run(&self, repo: &Path, script: &Path) -> Arc<Mutex<String>> {
        use std::io::{Read, Write};
        let body = json!({
            "repoUrl": repo.display().to_string(),
            "prompt": "Sleep a lot",
            "model": format!("scripted:{}", script.display()),
        })
        .to_string();
        let mut conn = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            conn,
            "POST /code HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        )
        .unwrap();
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        text
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    pub fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit within {secs}s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
