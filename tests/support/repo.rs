//! Shared test helpers: local git repositories, running the real binary in isolation, reading events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with one commit of `files` on `branch`.
pub fn make_repo(dir: &Path, branch: &str, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", branch]);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    if !files.is_empty() {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "initial"]);
    }
    dir.to_path_buf()
}

/// An isolated environment for the binary: its own state dir, no config file, no inherited keys.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Env {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("tb-home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("TB_HOME", self.home())
            .env("TB_CONFIG", self.path("config.toml"))
            .current_dir(self.tmp.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `run --repo REPO --prompt PROMPT --model scripted:SCRIPT --json --no-pr` plus `extra`, not yet
    /// started: the caller may add environment.
    pub fn scripted_command(
        &self,
        repo: &str,
        prompt: &str,
        script: &Path,
        extra: &[&str],
    ) -> Command {
        let mut cmd = self.command();
        cmd.args(["run", "--repo", repo, "--prompt", prompt, "--model"])
            .arg(format!("scripted:{}", script.display()))
            .args(["--json", "--no-pr"])
            .args(extra);
        cmd
    }

    /// [`Env::scripted_command`] for a local repository, run to completion.
    pub fn run_scripted(&self, repo: &Path, prompt: &str, script: &Path, extra: &[&str]) -> Output {
        self.scripted_command(repo.to_str().unwrap(), prompt, script, extra)
            .output()
            .unwrap()
    }

    /// Names of entries left in the state dir's workspace folder.
    pub fn leftover_workspaces(&self) -> Vec<String> {
        match std::fs::read_dir(self.home().join("work")) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => vec![],
        }
    }

    pub fn run_folders(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.home().join("runs")) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(_) => vec![],
        }
    }
}

pub fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

pub fn script(turns: Value) -> String {
    serde_json::to_string(&serde_json::json!({ "turns": turns })).unwrap()
}

/// `cmd` run from a copy of its program in `dir`: the build directory may lie under a home only
/// root can enter (as CI's checkout may), which an ordinary user could not execute from.
pub fn from_a_copy_others_can_run(cmd: &Command, dir: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("tiny-backspace-bin");
    if !copy.exists() {
        std::fs::copy(cmd.get_program(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = Command::new(&copy);
    c.env_clear().args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}
