//! `review.json` in the run's folder: what the reviewer did besides the selection (which is
//! `selection.json`) — files marked viewed and review comments — so both survive the process
//! and come back when the run is reopened.
//!
//! Invariants: viewed files are named by path and content (a file that changed since is not
//! viewed any more); the file is written through the store (atomically) only when it changed.

use serde::{Deserialize, Serialize};

use super::comments::Comment;
use super::filelist::file_key;
use super::model::Model;
use crate::store::RunDir;

pub const FILE: &str = "review.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewedFile {
    pub path: String,
    /// FNV-1a of the file's part of the patch ([`super::filelist::content_key`]).
    pub content: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFile {
    #[serde(default)]
    pub viewed: Vec<ViewedFile>,
    #[serde(default)]
    pub comments: Vec<Comment>,
}

/// The review marks of the model as saved.
pub fn capture(model: &Model) -> ReviewFile {
    let viewed = model.diff.as_ref().map_or_else(Vec::new, |d| {
        d.review
            .viewed
            .iter()
            .filter(|&&f| f < d.files.len())
            .map(|&f| ViewedFile {
                path: d.files[f].path.clone(),
                content: file_key(d, f),
            })
            .collect()
    });
    ReviewFile {
        viewed,
        comments: model.comments.clone(),
    }
}

/// Puts saved marks back on the model's diff (a reopened run).
pub fn apply(saved: &ReviewFile, model: &mut Model) {
    model.comments = saved.comments.clone();
    let Some(d) = model.diff.as_mut() else {
        return;
    };
    for f in 0..d.files.len() {
        let key = file_key(d, f);
        if saved
            .viewed
            .iter()
            .any(|v| v.path == d.files[f].path && v.content == key)
        {
            d.review.viewed.insert(f);
            d.review.collapsed.insert(f);
        }
    }
    d.reindex();
}

/// Writes `review.json` for the model's run when its marks differ from `saved` (what was last
/// written, for which run); a failure is logged and said in the status line.
pub fn save(home: &std::path::Path, model: &mut Model, saved: &mut Option<(String, ReviewFile)>) {
    let (Some(run_id), Some(_)) = (&model.run_id, &model.diff) else {
        return;
    };
    if model.viewing.is_some() {
        return;
    }
    let review = capture(model);
    let unchanged = match saved {
        Some((id, r)) => id == run_id && *r == review,
        None => review == ReviewFile::default(),
    };
    if unchanged {
        return;
    }
    let Some(dir) = crate::store::Store::open(home)
        .ok()
        .and_then(|s| s.run_dir(run_id))
    else {
        return;
    };
    match write(&dir, &review) {
        Ok(()) => *saved = Some((run_id.clone(), review)),
        Err(e) => {
            tracing::warn!("could not save review.json: {e}");
            model.notice = Some(format!("could not save the viewed marks and comments: {e}"));
        }
    }
}

pub fn write(dir: &RunDir, review: &ReviewFile) -> std::io::Result<()> {
    dir.write_json(&dir.path.join(FILE), review)
}

/// The saved marks, `None` when there are none (or they cannot be read: logged).
pub fn read(dir: &RunDir) -> Option<ReviewFile> {
    let path = dir.path.join(FILE);
    if !path.is_file() {
        return None;
    }
    match dir.read_json::<ReviewFile>(&path) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("unreadable {}: {e}", path.display());
            None
        }
    }
}
