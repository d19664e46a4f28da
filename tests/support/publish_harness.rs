//! Shared setup for the publishing tests: a git smart-HTTP server and a GitHub-shaped API, a
//! repository `octo/calc` on both, scripted agents, and running the built binary hermetically
//! (clean environment, its own TB_HOME, HOME and working directory).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::forge::Forge;
use super::git_http::GitServer;

pub const OWNER: &str = "octo";
pub const REPO: &str = "calc";

/// calc.py: 30 lines, so edits at the top and the bottom make two hunks.
pub fn calc_py() -> String {
    let mut s = String::from("def divide(a, b):\n    return a / b\n");
    for i in 3..=28 {
        s.push_str(&format!("# line {i}\n"));
    }
    s.push_str("def mul(a, b):\n    return a * b\n");
    s
}

pub struct Env {
    pub git: GitServer,
    pub forge: Forge,
    pub token: String,
    pub home: tempfile::TempDir,
    pub user_home: tempfile::TempDir,
    pub cwd: tempfile::TempDir,
    pub base_commit: String,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub events: Vec<Value>,
}

impl Output {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["type"] == t).collect()
    }

    pub fn last(&self) -> &Value {
        self.events.last().expect("no events")
    }

    pub fn run_id(&self) -> String {
        self.events
            .iter()
            .find_map(|e| e["run_id"].as_str())
            .expect("no run id")
            .to_string()
    }
}

impl Env {
    pub async fn new(push: bool) -> Env {
        let token = format!("ghp_tbtest{:016x}", fastrand_u64());
        let git = GitServer::start(&token).await;
        let base_commit = git.create_repo(
            OWNER,
            REPO,
            &[("calc.py", &calc_py()), ("README.md", "# calc\n")],
        );
        let forge = Forge::start(&token, "me", &git.base_url(), git.root.clone()).await;
        forge.add_repo(OWNER, REPO, push);
        Env {
            git,
            forge,
            token,
            home: tempfile::tempdir().unwrap(),
            user_home: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
            base_commit,
        }
    }

    pub fn repo_url(&self) -> String {
        self.git.url(OWNER, REPO)
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.home.path().join("runs")
    }

    /// Writes a scripted model file; returns its path.
    pub fn script(&self, turns: Value) -> PathBuf {
        let path = self
            .cwd
            .path()
            .join(format!("script-{}.json", fastrand_u64()));
        std::fs::write(&path, json!({ "turns": turns }).to_string()).unwrap();
        path
    }

    /// The default agent: two edits in calc.py (two hunks), a note file, two commands.
    pub fn default_script(&self) -> PathBuf {
        self.script(json!([
            {"text": "Looking at calc.py.", "tool_calls": [{"name": "read_file", "input": {"path": "calc.py"}}]},
            {"tool_calls": [
                {"name": "edit_file", "input": {"path": "calc.py", "old_str": "def divide(a, b):\n",
                    "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n"}},
                {"name": "edit_file", "input": {"path": "calc.py", "old_str": "    return a * b\n",
                    "new_str": "    # product of a and b\n    return a * b\n"}},
                {"name": "write_file", "input": {"path": "NOTES.md", "content": "divide rejects zero\n"}},
                {"name": "bash", "input": {"command": "python3 -c 'print(1)'"}},
                {"name": "bash", "input": {"command": "exit 3"}}
            ]},
            {"text": "Made divide reject a zero divisor.\n\nIt raises ValueError now."}
        ]))
    }

    /// The environment the binary runs with (nothing inherited but PATH).
    pub fn base_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), self.user_home.path().display().to_string()),
            ("TB_HOME".into(), self.home.path().display().to_string()),
            ("TB_CONFIG".into(), "/nonexistent/config.toml".into()),
            ("GITHUB_API_URL".into(), self.forge.api_url()),
            ("GITHUB_TOKEN".into(), self.token.clone()),
        ]
    }

    pub async fn tb(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiny-backspace"));
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.cwd.path())
            .stdin(std::process::Stdio::null());
        let out = cmd.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
            events,
        }
    }

    /// `run --yes --json` with the default script (or `script`) and the base environment plus `extra`.
    pub async fn run_yes(&self, script: Option<&Path>, extra: &[(&str, &str)]) -> Output {
        let default = self.default_script();
        let script = script.unwrap_or(&default);
        let mut env = self.base_env();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            if !v.is_empty() {
                env.push((k.to_string(), v.to_string()));
            }
        }
        self.run_scripted(script, "--yes", &env).await
    }

    /// `run --no-pr --json` with the default script: a finished run with its patch saved and
    /// nothing published.
    pub async fn run_no_pr(&self) -> Output {
        let script = self.default_script();
        self.run_scripted(&script, "--no-pr", &self.base_env())
            .await
    }

    /// `run --json` of the divide prompt with `script`, ending as `gate` (`--yes`, `--no-pr`) says.
    async fn run_scripted(&self, script: &Path, gate: &str, env: &[(String, String)]) -> Output {
        let model = format!("scripted:{}", script.display());
        self.tb(
            &[
                "run",
                "--repo",
                &self.repo_url(),
                "--prompt",
                "Make divide reject a zero divisor",
                gate,
                "--json",
                "--model",
                &model,
            ],
            env,
        )
        .await
    }

    pub async fn publish(&self, run_id: &str, extra: &[&str]) -> Output {
        let mut args = vec!["publish", run_id, "--json"];
        args.extend_from_slice(extra);
        self.tb(&args, &self.base_env()).await
    }

    /// Branches of octo/calc starting with `tb/`.
    pub fn tb_branches(&self, owner: &str) -> Vec<String> {
        if !self.git.path(owner, REPO).is_dir() {
            return vec![];
        }
        self.git
            .branches(owner, REPO)
            .into_iter()
            .filter(|b| b.starts_with("tb/"))
            .collect()
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

/// Every file under `dir`, recursively, with its bytes.
pub fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}
