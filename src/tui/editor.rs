//! `E`: the reviewer edits a file of the agent's change in `$VISUAL`/`$EDITOR`, in the run's work
//! tree; the pipeline then computes the diff again (`Command::Rediff`) and the TUI shows the edit
//! as the reviewer's ("You edited PATH" in the steps, `✎ your edit` on its hunks).
//!
//! Invariants: the editor runs on the host, on files the agent wrote, so it is only ever given a
//! path beneath the work tree whose every component is a plain directory or, last, a regular
//! file — `..`, absolute paths and symlinks anywhere on the way are refused (checked with
//! `lstat`, which follows nothing; the agent is not running while the review waits). The editor
//! runs from the TUI's own directory, not the work tree (no project-local editor config).

use std::path::{Component, Path, PathBuf};

use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0} is not a path inside the work tree")]
    Outside(String),
    #[error("{0} is a symlink: the editor is not sent outside the work tree")]
    Symlink(String),
    #[error("{0} is not a regular file")]
    NotAFile(String),
    #[error("the run's work tree is gone (the workspace was cleaned up)")]
    NoWorkTree,
    #[error("cannot check {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the editor failed: {0}")]
    Editor(#[source] std::io::Error),
}

/// The work tree of `run_id` under the store at `home` (`work/<id>/repo`, or `work/<id>.N/repo`).
pub fn work_tree(home: &Path, run_id: &str) -> Option<PathBuf> {
    let store = Store::open(home).ok()?;
    store
        .workspaces_of(run_id)
        .into_iter()
        .filter(|w| !w.to_string_lossy().ends_with("-publish"))
        .map(|w| w.join("repo"))
        .find(|r| r.symlink_metadata().is_ok_and(|m| m.is_dir()))
}

/// `rel` (a path from the patch) as a regular file beneath `work_tree`, following no symlink.
pub fn resolve(work_tree: &Path, rel: &str) -> Result<PathBuf, EditError> {
    let rel_path = Path::new(rel);
    let parts: Vec<_> = rel_path.components().collect();
    if parts.is_empty() || !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
        return Err(EditError::Outside(rel.to_string()));
    }
    let mut at = work_tree.to_path_buf();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let meta = at.symlink_metadata().map_err(|source| EditError::Io {
            path: rel.to_string(),
            source,
        })?;
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() {
            return Err(EditError::Symlink(rel.to_string()));
        }
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return Err(EditError::NotAFile(rel.to_string()));
        }
    }
    Ok(at)
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi`.
pub fn editor_command() -> String {
    crate::config::Conventions::from_env()
        .editor
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into())
}

/// Runs the editor on `path` and waits for it (the caller has left the alternate screen).
pub fn run_editor(path: &Path) -> Result<(), EditError> {
    let editor = editor_command();
    // Through the shell so that EDITOR="code --wait" works; the path is passed as an argument.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(EditError::Editor)?;
    if status.success() {
        Ok(())
    } else {
        Err(EditError::Editor(std::io::Error::other(format!(
            "{editor} exited with {status}"
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_beneath_the_work_tree_without_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let wt = t.path().join("repo");
        std::fs::create_dir_all(wt.join("src")).unwrap();
        std::fs::write(wt.join("src/a.py"), "x\n").unwrap();
        std::fs::write(t.path().join("secret"), "key\n").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), wt.join("link")).unwrap();
        std::os::unix::fs::symlink(t.path(), wt.join("up")).unwrap();
        assert_eq!(resolve(&wt, "src/a.py").unwrap(), wt.join("src/a.py"));
        assert!(matches!(resolve(&wt, "link"), Err(EditError::Symlink(_))));
        assert!(matches!(
            resolve(&wt, "up/secret"),
            Err(EditError::Symlink(_))
        ));
        assert!(matches!(
            resolve(&wt, "../secret"),
            Err(EditError::Outside(_))
        ));
        assert!(matches!(
            resolve(&wt, "/etc/passwd"),
            Err(EditError::Outside(_))
        ));
        assert!(matches!(resolve(&wt, "src"), Err(EditError::NotAFile(_))));
        assert!(matches!(resolve(&wt, "gone.py"), Err(EditError::Io { .. })));
    }
}
