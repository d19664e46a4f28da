//! The offline demo: a sample repository with a local bare origin, and a recorded (scripted)
//! session that really runs its tools against it.
//!
//! Invariants: everything is embedded in the binary, so `cargo install` needs no asset folder;
//! the model is the scripted replay and is labeled as such; nothing touches the network; the demo's
//! origin is kept in the state directory so the published branch can be inspected afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::pipeline::model::{Script, ScriptedProvider};

/// The sample repository's files, relative to its root.
const FILES: &[(&str, &str)] = &[
    (
        "calc/__init__.py",
        include_str!("../assets/demo/calc/calc/__init__.py"),
    ),
    (
        "tests/__init__.py",
        include_str!("../assets/demo/calc/tests/__init__.py"),
    ),
    (
        "tests/test_calc.py",
        include_str!("../assets/demo/calc/tests/test_calc.py"),
    ),
    ("README.md", include_str!("../assets/demo/calc/README.md")),
    (".gitignore", include_str!("../assets/demo/calc/.gitignore")),
];

/// The recorded session.
pub const SCRIPT: &str = include_str!("../assets/demo/script.json");

pub const PROMPT: &str = "Make divide() raise a ValueError with a clear message when the divisor \
is zero, and mean() when given an empty sequence. Add tests for both and document the behaviour.";

fn demo_dir(home: &Path, id: &str) -> std::io::Result<PathBuf> {
    let parent = home.join("demo");
    std::fs::create_dir_all(&parent)?;
    let mut id = id.to_string();
    for _ in 0..32 {
        match std::fs::create_dir(parent.join(&id)) {
            Ok(()) => return Ok(parent.join(id)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                id = crate::store::new_run_id();
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free demo folder name",
    ))
}

pub struct DemoSetup {
    /// Where the demo's files live (kept, for inspection).
    pub dir: PathBuf,
    /// The bare repository the demo works on and publishes to.
    pub origin: PathBuf,
    script: Script,
}

impl DemoSetup {
    /// A fresh replay of the recorded session (each run, re-runs included, starts at turn one).
    pub fn provider(&self) -> Arc<ScriptedProvider> {
        Arc::new(ScriptedProvider::from_script(
            "demo-session",
            self.script.clone(),
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("could not create the demo repository in {dir}: {message}")]
    Setup { dir: String, message: String },
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=tiny-backspace demo",
            "-c",
            "user.email=demo@tiny-backspace.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .map_err(|e| format!("git could not be started ({e}); install git"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates `<home>/demo/<id>/origin.git` holding the sample project, one commit on `main`.
/// Writes the sample project as a bare origin under `home/demo/<id>` — a folder of its own,
/// created exclusively (a taken `id` makes way for a fresh one).
pub fn prepare(home: &Path, id: &str) -> Result<DemoSetup, DemoError> {
    let dir = demo_dir(home, id).map_err(|e| DemoError::Setup {
        dir: home.join("demo").display().to_string(),
        message: e.to_string(),
    })?;
    let fail = |message: String| DemoError::Setup {
        dir: dir.display().to_string(),
        message,
    };
    let seed = dir.join("seed");
    for (path, content) in FILES {
        let p = seed.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        std::fs::write(&p, content).map_err(|e| fail(e.to_string()))?;
    }
    git(&seed, &["init", "-q"]).map_err(fail)?;
    git(&seed, &["add", "-A"]).map_err(fail)?;
    git(
        &seed,
        &["commit", "-q", "-m", "calc: arithmetic helpers with tests"],
    )
    .map_err(fail)?;
    git(&dir, &["clone", "-q", "--bare", "seed", "origin.git"]).map_err(fail)?;
    std::fs::remove_dir_all(&seed).map_err(|e| fail(e.to_string()))?;
    let script: Script = serde_json::from_str(SCRIPT)
        .map_err(|e| fail(format!("the embedded script is broken: {e}")))?;
    Ok(DemoSetup {
        origin: dir.join("origin.git"),
        dir,
        script,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepares_a_bare_origin_with_one_commit() {
        let t = tempfile::tempdir().unwrap();
        let setup = prepare(t.path(), "x").unwrap();
        assert!(setup.origin.join("HEAD").is_file());
        let log = Command::new("git")
            .args([
                "--git-dir",
                setup.origin.to_str().unwrap(),
                "log",
                "--oneline",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 1);
        assert!(!setup.dir.join("seed").exists());
        // The same id again gets a folder of its own.
        let second = prepare(t.path(), "x").unwrap();
        assert_ne!(second.dir, setup.dir);
        assert!(second.origin.join("HEAD").is_file());
    }
}
