//! Runs on disk: one folder per run under the state directory (`TB_HOME` overrides it).
//!
//! Invariants: `events.jsonl` is appended as events happen; `patch.diff` and `meta.json` are
//! written (atomically, flushed to disk) before any publishing starts, so a failed push or PR can be
//! retried from the folder alone (`approved.diff` and `pr.json` too, before publishing's first
//! network call). Workspaces live under `work/` and are removed at a run's end
//! unless kept on purpose.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::UsageTotals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    /// The diff is ready and waits for approval.
    Review,
    /// Finished without publishing (e.g. `--no-pr`): the patch is saved.
    Finished,
    Published,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Review => "review",
            RunStatus::Finished => "finished",
            RunStatus::Published => "published",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub repo: String,
    pub base: Option<String>,
    pub base_commit: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub followups: Vec<String>,
    pub model: String,
    pub sandbox: String,
    pub status: RunStatus,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub branch: Option<String>,
    pub pr_url: Option<String>,
    #[serde(default)]
    pub usage: UsageTotals,
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

/// The default state directory: `$TB_HOME`, else the platform's state (or data) directory.
pub fn default_home(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(h) = env("TB_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    directories::ProjectDirs::from("", "", "tiny-backspace")
        .map(|d| d.state_dir().unwrap_or(d.data_local_dir()).to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("tiny-backspace"))
}

pub fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

impl Store {
    pub fn open(root: &Path) -> std::io::Result<Store> {
        std::fs::create_dir_all(root.join("runs"))?;
        std::fs::create_dir_all(root.join("work"))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn work_root(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn create_run(&self, meta: &RunMeta) -> std::io::Result<RunDir> {
        let path = self.root.join("runs").join(&meta.id);
        std::fs::create_dir_all(&path)?;
        let dir = RunDir {
            id: meta.id.clone(),
            path,
        };
        dir.write_meta(meta)?;
        Ok(dir)
    }

    pub fn run_dir(&self, id: &str) -> Option<RunDir> {
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return None;
        }
        let path = self.root.join("runs").join(id);
        path.join("meta.json").is_file().then(|| RunDir {
            id: id.to_string(),
            path,
        })
    }

    /// Past runs, newest first. Unreadable folders are skipped.
    pub fn list(&self) -> Vec<RunMeta> {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else {
            return vec![];
        };
        let mut runs: Vec<RunMeta> = entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("meta.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        runs
    }
}

impl RunDir {
    pub fn events_path(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    pub fn patch_path(&self) -> PathBuf {
        self.path.join("patch.diff")
    }

    pub fn open_events(&self) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.events_path())
    }

    pub fn write_meta(&self, meta: &RunMeta) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        write_atomic(&self.path.join("meta.json"), &json)
    }

    pub fn read_meta(&self) -> std::io::Result<RunMeta> {
        let bytes = std::fs::read(self.path.join("meta.json"))?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Saves the run's patch: bytes, exactly as git wrote them (files need not be UTF-8).
    pub fn write_patch(&self, patch: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.patch_path(), patch)
    }

    /// The run's patch, as bytes.
    pub fn read_patch(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.patch_path())
    }

    /// The patch the user approved (the run's patch minus deselected files and hunks).
    pub fn approved_patch_path(&self) -> PathBuf {
        self.path.join("approved.diff")
    }

    pub fn write_approved_patch(&self, patch: &[u8]) -> std::io::Result<()> {
        write_atomic(&self.approved_patch_path(), patch)
    }

    pub fn read_approved_patch(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.approved_patch_path())
    }

    /// The pull request's text and where publishing got to (written before any network call).
    pub fn pr_path(&self) -> PathBuf {
        self.path.join("pr.json")
    }

    pub fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        write_atomic(path, &json)
    }

    pub fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> std::io::Result<T> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> RunMeta {
        RunMeta {
            id: id.into(),
            created_at: Utc::now(),
            repo: "o/r".into(),
            base: None,
            base_commit: None,
            prompt: "p".into(),
            followups: vec![],
            model: "scripted:x".into(),
            sandbox: "bwrap".into(),
            status: RunStatus::Running,
            summary: None,
            error: None,
            branch: None,
            pr_url: None,
            usage: UsageTotals::default(),
            duration_ms: None,
        }
    }

    #[test]
    fn create_list_and_reload() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let a = store.create_run(&meta("20260101-000000-aaaa")).unwrap();
        a.write_patch(b"diff \xe9").unwrap();
        let mut m = a.read_meta().unwrap();
        m.status = RunStatus::Finished;
        a.write_meta(&m).unwrap();
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.list()[0].status, RunStatus::Finished);
        assert_eq!(a.read_patch().unwrap(), b"diff \xe9");
        assert!(store.run_dir("../x").is_none());
        assert!(store.run_dir("20260101-000000-aaaa").is_some());
    }

    #[test]
    fn run_ids_are_unique_enough_and_sortable() {
        let a = new_run_id();
        assert_eq!(a.len(), "20260101-000000-aaaa".len());
    }
}
