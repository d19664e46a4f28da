//! What a command changed in the work tree, from two walks: before (every entry with its size,
//! modification time and inode) and after. Used by the setup stage to keep what it created out of
//! the diff and to name the repository files it changed.
//!
//! Invariants: the walks read directory entries and their metadata only — no symlink is followed,
//! no file opened, the top-level `.git` never entered; a directory absent before is reported once
//! (not descended into), so a large `node_modules/` costs one entry. Paths are bytes relative to
//! the work tree.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::git::SETUP_PATHS_FILE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dir: bool,
    size: u64,
    mtime_ns: i128,
    ino: u64,
}

/// The work tree's entries before a command ran.
#[derive(Debug, Default)]
pub struct Snapshot {
    entries: HashMap<Vec<u8>, Stamp>,
}

/// What changed between a [`Snapshot`] and now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// New paths, topmost only, with whether each is a directory.
    pub created: Vec<(Vec<u8>, bool)>,
    /// Files present before whose size, time or inode changed (or that changed type).
    pub modified: Vec<Vec<u8>>,
    /// Paths present before and gone now (topmost only).
    pub deleted: Vec<Vec<u8>>,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        dir: meta.is_dir(),
        size: if meta.is_dir() { 0 } else { meta.len() },
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ino: meta.ino(),
    }
}

/// Calls `visit(relative path, metadata)` for every entry below `root` (not `.git` at the top);
/// descends into a directory only when `visit` returns true. Returns the directories it could
/// not read.
fn walk(
    root: &Path,
    visit: &mut dyn FnMut(&[u8], &std::fs::Metadata) -> bool,
) -> std::io::Result<Vec<Vec<u8>>> {
    // The top must be readable; below it, a directory the command made unreadable is skipped
    // (its entries count as unchanged) rather than failing the run.
    std::fs::read_dir(root)?;
    let mut unreadable = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![vec![]];
    while let Some(rel) = stack.pop() {
        let dir = root.join(std::ffi::OsStr::from_bytes(&rel));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            unreadable.push(rel);
            continue;
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            if rel.is_empty() && name.as_bytes() == b".git" {
                continue;
            }
            let mut path = rel.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            // DirEntry::metadata does not follow a symlink.
            let Ok(meta) = entry.metadata() else { continue };
            if visit(&path, &meta) && meta.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(unreadable)
}

/// Every entry of the work tree at `root`.
pub fn snapshot(root: &Path) -> std::io::Result<Snapshot> {
    let mut entries = HashMap::new();
    walk(root, &mut |path, meta| {
        entries.insert(path.to_vec(), stamp(meta));
        true
    })?;
    Ok(Snapshot { entries })
}

impl Snapshot {
    /// What changed under `root` since the snapshot.
    pub fn compare(&self, root: &Path) -> std::io::Result<Delta> {
        let mut delta = Delta::default();
        let mut seen = HashSet::new();
        let unreadable = walk(root, &mut |path, meta| {
            let now = stamp(meta);
            match self.entries.get(path) {
                None => {
                    delta.created.push((path.to_vec(), now.dir));
                    false
                }
                Some(was) => {
                    seen.insert(path.to_vec());
                    if was.dir != now.dir || (!now.dir && was != &now) {
                        delta.modified.push(path.to_vec());
                    }
                    now.dir && was.dir
                }
            }
        })?;
        let below_unreadable = |p: &[u8]| {
            unreadable
                .iter()
                .any(|d| p.len() > d.len() && p.starts_with(d) && p[d.len()] == b'/')
        };
        let gone: HashSet<&Vec<u8>> = self
            .entries
            .keys()
            .filter(|p| !seen.contains(*p) && !below_unreadable(p))
            .collect();
        delta.deleted = gone
            .iter()
            .filter(|p| {
                // Topmost only: a path whose parent is gone too is covered by the parent.
                p.iter()
                    .rposition(|b| *b == b'/')
                    .is_none_or(|i| !gone.contains(&p[..i].to_vec()))
            })
            .map(|p| p.to_vec())
            .collect();
        delta.created.sort();
        delta.modified.sort();
        delta.deleted.sort();
        Ok(delta)
    }
}

/// A git exclude pattern matching exactly `path` from the top (`None` for a name with a newline,
/// which a pattern line cannot hold: the paths file still covers it).
fn exclude_pattern(path: &[u8], dir: bool) -> Option<Vec<u8>> {
    if path.contains(&b'\n') || path.contains(&b'\r') {
        return None;
    }
    let mut out = vec![b'/'];
    for b in path {
        if b"\\*?[]! #".contains(b) {
            out.push(b'\\');
        }
        out.push(*b);
    }
    if dir {
        out.push(b'/');
    }
    Some(out)
}

impl Delta {
    /// Appends the created paths to `<git_dir>/info/exclude` (so listings and `git status` skip
    /// them) and to [`SETUP_PATHS_FILE`] (so the diff never stages them, whatever a `.gitignore`
    /// negation says).
    pub fn write_excludes(&self, git_dir: &Path) -> std::io::Result<()> {
        let info = git_dir.join("info");
        std::fs::create_dir_all(&info)?;
        let mut exclude = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(info.join("exclude"))?;
        let mut text = b"\n# added by tiny-backspace: made by the setup command\n".to_vec();
        for (path, dir) in &self.created {
            if let Some(p) = exclude_pattern(path, *dir) {
                text.extend_from_slice(&p);
                text.push(b'\n');
            }
        }
        exclude.write_all(&text)?;
        let mut paths = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(git_dir.join(SETUP_PATHS_FILE))?;
        let list: Vec<u8> = self
            .created
            .iter()
            .flat_map(|(p, _)| p.iter().copied().chain([0]))
            .collect();
        paths.write_all(&list)
    }

    /// The created paths as shown (`dir/` for directories).
    pub fn created_display(&self) -> Vec<String> {
        self.created
            .iter()
            .map(|(p, dir)| {
                let s = String::from_utf8_lossy(p);
                if *dir {
                    format!("{s}/")
                } else {
                    s.into_owned()
                }
            })
            .collect()
    }

    /// The repository's files the command changed or removed, as shown.
    pub fn modified_display(&self) -> Vec<String> {
        self.modified
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .chain(
                self.deleted
                    .iter()
                    .map(|p| format!("{} (deleted)", String::from_utf8_lossy(p))),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn created_directories_are_reported_once_and_changes_by_name() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "src/a.py", "a");
        write(root, "src/b.py", "b");
        write(root, "gone/x", "x");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let before = snapshot(root).unwrap();
        write(root, ".venv/lib/site/pkg.py", "p");
        write(root, "src/new.py", "n");
        write(root, "src/a.py", "changed");
        write(root, ".git/ignored", "");
        std::fs::remove_dir_all(root.join("gone")).unwrap();
        let d = before.compare(root).unwrap();
        assert_eq!(
            d.created,
            vec![(b".venv".to_vec(), true), (b"src/new.py".to_vec(), false)]
        );
        assert_eq!(d.modified, vec![b"src/a.py".to_vec()]);
        assert_eq!(d.deleted, vec![b"gone".to_vec()]);
        assert_eq!(d.created_display(), [".venv/", "src/new.py"]);
    }

    #[test]
    fn a_symlink_is_an_entry_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "deep/secret", "s");
        let before = snapshot(t.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
        let d = before.compare(t.path()).unwrap();
        assert_eq!(d.created, vec![(b"link".to_vec(), false)]);
    }

    #[test]
    fn exclude_patterns_are_anchored_and_escaped() {
        assert_eq!(exclude_pattern(b".venv", true).unwrap(), b"/.venv/");
        assert_eq!(
            exclude_pattern(b"a b*[x]", false).unwrap(),
            b"/a\\ b\\*\\[x\\]"
        );
        assert_eq!(exclude_pattern(b"!x#", false).unwrap(), b"/\\!x\\#");
        assert!(exclude_pattern(b"a\nb", false).is_none());
        let t = tempfile::tempdir().unwrap();
        let d = Delta {
            created: vec![(b".venv".to_vec(), true), (b"n\nl".to_vec(), false)],
            ..Delta::default()
        };
        d.write_excludes(t.path()).unwrap();
        let ex = std::fs::read_to_string(t.path().join("info/exclude")).unwrap();
        assert!(ex.ends_with("setup command\n/.venv/\n"), "{ex}");
        let paths = std::fs::read(t.path().join(SETUP_PATHS_FILE)).unwrap();
        assert_eq!(paths, b".venv\0n\nl\0");
    }
}
