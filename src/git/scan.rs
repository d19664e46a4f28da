//! The host's own look at the work tree before `git add`: every nested repository and every file
//! too large for a patch, found by rules that nothing in the work tree can bend.
//!
//! Why not ask git, or the `ignore` crate? git decides a directory is a nested repository by
//! reading its `.git` — an agent-written `gitdir:` file points it at any repository on the host,
//! whose HEAD `git add` then records as `Subproject commit …`. And the `ignore` crate honours
//! `.ignore` files, which git does not, so a walk with it misses what git will see.
//!
//! Invariants: the walk honours no ignore file at all (so it sees at least what git sees); it
//! goes through a cap-std handle on the root, never follows a symlink and never opens a file
//! (sizes come from `lstat`); any entry named `.git` below the root — file, directory or
//! symlink — makes its directory a nested repository, not walked further; the root's own `.git`
//! (the git directory's mount point) is skipped; any other name git refuses to add as a `.git`
//! look-alike (`.GIT`, `.git.`, `git~1`, …: a `git add` of it fails, and with it the whole diff)
//! is listed in [`Scan::reserved`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// What the walk found; paths are relative to the root, as raw bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Directories holding a `.git` (outermost only), sorted.
    pub nested: Vec<Vec<u8>>,
    /// Regular files larger than the limit, with their sizes, sorted.
    pub large: Vec<(Vec<u8>, u64)>,
    /// Entries whose name git reserves ([`git_reserved`]), not walked, sorted.
    pub reserved: Vec<Vec<u8>>,
    /// Entries looked at (for the log: the walk's cost).
    pub entries: u64,
}

impl Scan {
    /// Every path found: nested repositories, reserved names, large files.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.nested
            .iter()
            .chain(&self.reserved)
            .map(Vec::as_slice)
            .chain(self.large.iter().map(|(p, _)| p.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.nested.is_empty() && self.reserved.is_empty() && self.large.is_empty()
    }
}

/// Walks the work tree at `root`; files over `max_file_bytes` are listed in [`Scan::large`].
pub fn scan(root: &Path, max_file_bytes: u64) -> std::io::Result<Scan> {
    let dir = Dir::open_ambient_dir(root, ambient_authority())?;
    let mut out = Scan::default();
    let mut stack: Vec<(Dir, Vec<u8>)> = vec![(dir, Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut subdirs = Vec::new();
        let mut is_repo = false;
        let mut large = Vec::new();
        let mut reserved = Vec::new();
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                // An unreadable directory: git cannot read it either.
                tracing::debug!("scan: {}: {e}", String::from_utf8_lossy(&rel));
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            out.entries += 1;
            let name = entry.file_name();
            if name == OsStr::new(".git") {
                if !rel.is_empty() {
                    is_repo = true;
                }
                continue;
            }
            if git_reserved(name.as_bytes()) {
                reserved.push(join(&rel, &name));
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                subdirs.push(entry);
            } else if kind.is_file() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.len() > max_file_bytes {
                    large.push((join(&rel, &name), meta.len()));
                }
            }
        }
        if is_repo {
            out.nested.push(rel);
            continue;
        }
        out.large.extend(large);
        out.reserved.extend(reserved);
        for entry in subdirs {
            let path = join(&rel, &entry.file_name());
            match entry.open_dir() {
                Ok(d) => stack.push((d, path)),
                Err(e) => tracing::debug!("scan: {}: {e}", String::from_utf8_lossy(&path)),
            }
        }
    }
    out.nested.sort();
    out.large.sort();
    out.reserved.sort();
    Ok(out)
}

/// Whether git refuses a path component of this name as a `.git` look-alike (its
/// `core.protectNTFS` rules, on by default everywhere): `.git` or `git~1` in any case, then only
/// dots and spaces, then the end or an NTFS stream (`:`).
pub fn git_reserved(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix(b".git")
        .or_else(|| lower.strip_prefix(b"git~1"))
    else {
        return false;
    };
    let rest: &[u8] = match rest.iter().position(|b| !matches!(b, b'.' | b' ')) {
        Some(i) => &rest[i..],
        None => &[],
    };
    rest.is_empty() || rest.starts_with(b":")
}

fn join(rel: &[u8], name: &OsStr) -> Vec<u8> {
    let mut p = rel.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dot_git_counts_whatever_ignores_it_and_nothing_is_followed() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in [
            ".git",
            "fixture/.git",
            "fixture/inner/.git",
            "vendor/lib/.git",
            "deps/x",
            "src/deep/er",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("deps/x/.git"), "gitdir: /elsewhere\n").unwrap();
        std::os::unix::fs::symlink("/", root.join("src/deep/.git")).unwrap();
        std::fs::write(root.join(".ignore"), "vendor/\ndeps/\n").unwrap();
        std::fs::write(root.join(".gitignore"), "vendor/\n").unwrap();
        std::fs::write(root.join("src/deep/er/big"), vec![0u8; 2048]).unwrap();
        std::fs::write(root.join("big"), vec![0u8; 4096]).unwrap();
        std::fs::write(root.join("small"), vec![0u8; 1024]).unwrap();
        // A link to a large file outside is not followed (and not a regular file).
        std::os::unix::fs::symlink("/proc/kcore", root.join("link")).unwrap();
        let s = scan(root, 1024).unwrap();
        let nested: Vec<&[u8]> = s.nested.iter().map(Vec::as_slice).collect();
        assert_eq!(
            nested,
            [&b"deps/x"[..], b"fixture", b"src/deep", b"vendor/lib"]
        );
        // Inside a nested repository nothing is looked at: src/deep/er/big is covered by it.
        assert_eq!(s.large, [(b"big".to_vec(), 4096)]);
    }

    #[test]
    fn names_git_refuses_are_found_and_not_walked() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/.GIT/deep/.git")).unwrap();
        std::fs::create_dir_all(root.join("b/git~1")).unwrap();
        std::fs::write(root.join("b/.git. "), "").unwrap();
        std::fs::write(root.join(".gitignore"), "").unwrap();
        std::fs::write(root.join(".gitx"), "").unwrap();
        let s = scan(root, 1 << 20).unwrap();
        let reserved: Vec<&[u8]> = s.reserved.iter().map(Vec::as_slice).collect();
        assert_eq!(reserved, [&b"a/.GIT"[..], b"b/.git. ", b"b/git~1"]);
        assert!(s.nested.is_empty(), "{:?}", s.nested);
        for (name, reserved) in [
            (&b".git"[..], true),
            (b".Git", true),
            (b".git..", true),
            (b".git:stream", true),
            (b"GIT~1", true),
            (b".gitmodules", false),
            (b".git~1", false),
            (b"git~2", false),
            (b"x.git", false),
        ] {
            assert_eq!(
                git_reserved(name),
                reserved,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
