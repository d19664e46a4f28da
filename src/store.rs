//! Runs on disk: one folder per run under the state directory (`TB_HOME` overrides it).
//!
//! Invariants: a run folder and a workspace are created exclusively (`create_dir`), never reused:
//! two runs whose ids collide get two folders (the second picks a new id). A run folder holds from
//! its first moment `owner.json`, the process that runs it (pid and start time), so a later start
//! can tell a run whose process died from one still going (`recovery`). `events.jsonl` is appended
//! as events happen; `patch.diff` and `meta.json` are written (atomically, flushed to disk) before
//! any publishing starts, so a failed push or PR can be retried from the folder alone
//! (`approved.diff` and `pr.json` too, before publishing's first network call). Workspaces live
//! under `work/` and are removed at a run's end unless kept on purpose.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::UsageTotals;
use crate::recovery::Owner;

/// How many ids a new run (or workspace) tries before giving up: collisions are already rare (a
/// second's timestamp plus 16 random bits), so running out means something else is wrong.
const CREATE_ATTEMPTS: usize = 32;

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
    /// Its process ended without finishing it (SIGKILL, a crash, a power cut): found and cleaned
    /// up by a later start. Its patch, if one was saved, is kept.
    Interrupted,
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
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the run has not ended: its process is (or was, if it died) still working on it.
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Review)
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
    /// The workspace is kept at the end (`--keep-workspace`), also when the run is recovered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_workspace: bool,
    /// For an `interrupted` run: the status it had when its process ended (e.g. `review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_from: Option<RunStatus>,
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

/// A name that stays one folder below `runs/` (no separators, not hidden, not empty).
fn valid_id(id: &str) -> bool {
    !(id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.'))
}

/// Removes a directory tree even where the agent made parts of it read-only. A missing tree is
/// not an error.
pub fn force_remove_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            let mut stack = vec![path.to_path_buf()];
            while let Some(d) = stack.pop() {
                let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755));
                if let Ok(entries) = std::fs::read_dir(&d) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(e.path());
                        }
                    }
                }
            }
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    }
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

    /// A new run folder with exactly `meta.id` (an existing one is an `AlreadyExists` error),
    /// holding the owner record and `meta`.
    pub fn create_run(&self, meta: &RunMeta) -> std::io::Result<RunDir> {
        let dir = self.reserve_run_with(&meta.id, || meta.id.clone(), 1)?;
        dir.write_meta(meta)?;
        Ok(dir)
    }

    /// A new run folder holding only the owner record (no `meta.json` yet, so listings skip it):
    /// `id` if it is free, else a fresh id. The folder is created exclusively, so it is this run's
    /// alone.
    pub fn reserve_run(&self, id: &str) -> std::io::Result<RunDir> {
        self.reserve_run_with(id, new_run_id, CREATE_ATTEMPTS)
    }

    fn reserve_run_with(
        &self,
        first: &str,
        mut next_id: impl FnMut() -> String,
        attempts: usize,
    ) -> std::io::Result<RunDir> {
        let mut id = first.to_string();
        for _ in 0..attempts {
            if !valid_id(&id) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("'{id}' is not a run id"),
                ));
            }
            let path = self.root.join("runs").join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let dir = RunDir { id, path };
                    if let Err(e) = dir.write_owner(Owner::current()) {
                        let _ = std::fs::remove_dir_all(&dir.path);
                        return Err(e);
                    }
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => id = next_id(),
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("no free run id after {attempts} tries (the last was {id})"),
        ))
    }

    /// A new workspace for `run_id`, created exclusively: `work/<id>`, or `work/<id>.N` if that
    /// exists already (left behind by something else; never shared).
    pub fn create_workspace(&self, run_id: &str) -> std::io::Result<PathBuf> {
        let work = self.work_root();
        for n in 0..CREATE_ATTEMPTS {
            let name = match n {
                0 => run_id.to_string(),
                n => format!("{run_id}.{n}"),
            };
            match std::fs::create_dir(work.join(&name)) {
                Ok(()) => return Ok(work.join(name)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "no free workspace name for run {run_id} in {}",
                work.display()
            ),
        ))
    }

    /// The workspaces [`Store::create_workspace`] may have made for `run_id`, and the clean
    /// repository its publishing works in (`<id>-publish`).
    pub fn workspaces_of(&self, run_id: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.work_root()) else {
            return vec![];
        };
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(run_id)) else {
                    return false;
                };
                rest.is_empty()
                    || rest == "-publish"
                    || rest
                        .strip_prefix('.')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|e| e.path())
            .collect()
    }

    /// Every run folder (with or without `meta.json`).
    pub fn run_dirs(&self) -> Vec<RunDir> {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else {
            return vec![];
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                valid_id(&id).then(|| RunDir { id, path: e.path() })
            })
            .collect()
    }

    pub fn run_dir(&self, id: &str) -> Option<RunDir> {
        if !valid_id(id) {
            return None;
        }
        let path = self.root.join("runs").join(id);
        path.join("meta.json").is_file().then(|| RunDir {
            id: id.to_string(),
            path,
        })
    }

    /// A run's folder as soon as its id is reserved, before validation has written `meta.json`
    /// (for a caller that knows the run is live).
    pub fn reserved_run_dir(&self, id: &str) -> Option<RunDir> {
        if !valid_id(id) {
            return None;
        }
        let path = self.root.join("runs").join(id);
        path.is_dir().then(|| RunDir {
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

    /// The process that runs this run (see [`Owner`]).
    pub fn owner_path(&self) -> PathBuf {
        self.path.join("owner.json")
    }

    pub fn write_owner(&self, owner: &Owner) -> std::io::Result<()> {
        self.write_json(&self.owner_path(), owner)
    }

    pub fn read_owner(&self) -> std::io::Result<Owner> {
        self.read_json(&self.owner_path())
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

    /// The review's include/exclude choices (`selection.json`), saved whenever they change so a
    /// review outlives its process.
    pub fn selection_path(&self) -> PathBuf {
        self.path.join("selection.json")
    }

    /// Saves the review's selection (atomically: a reader sees the old one or the new one).
    pub fn write_selection<T: Serialize>(&self, selection: &T) -> std::io::Result<()> {
        self.write_json(&self.selection_path(), selection)
    }

    /// The saved selection, `None` when there is none yet.
    pub fn read_selection<T: for<'de> Deserialize<'de>>(&self) -> std::io::Result<Option<T>> {
        match std::fs::read(self.selection_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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
            keep_workspace: false,
            interrupted_from: None,
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
    fn colliding_ids_get_their_own_folders() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let first = store.create_run(&meta("20260101-000000-aaaa")).unwrap();
        first.write_patch(b"first's patch").unwrap();
        // The same id again, as from a second process in the same second: an error, not a merge.
        let again = store.create_run(&meta("20260101-000000-aaaa")).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        // Reserving it picks the next id instead.
        let mut next = ["20260101-000000-aaaa", "20260101-000000-bbbb"].into_iter();
        let second = store
            .reserve_run_with("20260101-000000-aaaa", || next.next().unwrap().into(), 8)
            .unwrap();
        assert_eq!(second.id, "20260101-000000-bbbb");
        assert_eq!(second.read_owner().unwrap(), *Owner::current());
        assert!(!second.path.join("meta.json").exists());
        // The first run's folder is untouched.
        assert_eq!(
            std::fs::read_to_string(first.patch_path()).unwrap(),
            "first's patch"
        );
        assert_eq!(first.read_meta().unwrap().id, "20260101-000000-aaaa");
        // Bounded: an id that never frees up is an error after a few tries.
        let stuck = store
            .reserve_run_with("20260101-000000-aaaa", || "20260101-000000-aaaa".into(), 4)
            .unwrap_err();
        assert_eq!(stuck.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(store.run_dirs().len(), 2);
    }

    #[test]
    fn workspaces_are_created_exclusively() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let id = "20260101-000000-aaaa";
        let a = store.create_workspace(id).unwrap();
        std::fs::write(a.join("mine"), "x").unwrap();
        let b = store.create_workspace(id).unwrap();
        assert_ne!(a, b);
        assert_eq!(b.file_name().unwrap(), "20260101-000000-aaaa.1");
        assert!(std::fs::read_dir(&b).unwrap().next().is_none());
        store.create_workspace("20260101-000000-aaab").unwrap();
        let publish = store.work_root().join(format!("{id}-publish"));
        std::fs::create_dir(&publish).unwrap();
        std::fs::create_dir(store.work_root().join(format!("{id}-other"))).unwrap();
        let mut mine = store.workspaces_of(id);
        mine.sort();
        assert_eq!(mine, [a, publish, b]);
    }

    #[test]
    fn force_remove_handles_read_only_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("ws/a/b");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        std::fs::set_permissions(
            t.path().join("ws/a"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        force_remove_dir(&t.path().join("ws")).unwrap();
        assert!(!t.path().join("ws").exists());
        force_remove_dir(&t.path().join("ws")).unwrap();
    }

    #[test]
    fn the_selection_is_saved_and_read_back() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let dir = store.create_run(&meta("20260101-000000-bbbb")).unwrap();
        assert_eq!(dir.read_selection::<Vec<String>>().unwrap(), None);
        dir.write_selection(&vec!["a".to_string()]).unwrap();
        dir.write_selection(&vec!["b".to_string()]).unwrap();
        assert_eq!(
            dir.read_selection::<Vec<String>>().unwrap(),
            Some(vec!["b".to_string()])
        );
        assert!(!dir.path.join("selection.tmp").exists());
    }

    #[test]
    fn run_ids_are_unique_enough_and_sortable() {
        let a = new_run_id();
        assert_eq!(a.len(), "20260101-000000-aaaa".len());
    }
}
