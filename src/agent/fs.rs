//! File access to the work tree that cannot leave it.
//!
//! Invariants: every host-side read and write of a workspace file goes through a capability handle
//! on the repository root (cap-std), so `..`, absolute paths and symlinks resolving outside are
//! refused by the OS-level lookup, not by string checks; the git directory is never addressable.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// A tool failure the model can act on; the message is sent to it verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

pub fn tool_err<T>(msg: impl Into<String>) -> Result<T, ToolError> {
    Err(ToolError(msg.into()))
}

pub struct WorkspaceFs {
    root: Dir,
    root_path: PathBuf,
}

/// Files larger than this are not read whole (the model gets a hint to page or grep).
pub const MAX_TEXT_FILE_BYTES: u64 = 8 * 1024 * 1024;

impl WorkspaceFs {
    pub fn open(root: &Path) -> std::io::Result<Self> {
        Ok(WorkspaceFs {
            root: Dir::open_ambient_dir(root, ambient_authority())?,
            root_path: root.to_path_buf(),
        })
    }

    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    pub fn dir(&self) -> &Dir {
        &self.root
    }

    /// Checks the shape of a model-supplied path and returns it relative to the root.
    pub fn relative(&self, path: &str) -> Result<PathBuf, ToolError> {
        let trimmed = path.trim();
        if trimmed.is_empty() {
            return tool_err(
                "the path is empty; give a path relative to the repository root, e.g. src/main.rs",
            );
        }
        let p = Path::new(trimmed);
        if p.is_absolute() {
            return tool_err(format!(
                "'{trimmed}' is an absolute path; paths are relative to the repository root \
                 (e.g. src/main.rs)"
            ));
        }
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::CurDir => {}
                Component::ParentDir => {
                    return tool_err(format!(
                        "'{trimmed}' uses '..'; only files inside the repository can be accessed"
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return tool_err(format!("'{trimmed}' is not a relative path"));
                }
            }
        }
        if out
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git")
        {
            return tool_err(
                "the .git directory is managed by tiny-backspace and cannot be accessed; use `git` commands through bash to inspect history",
            );
        }
        Ok(out)
    }

    fn io_err(&self, path: &str, e: std::io::Error) -> ToolError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ToolError(format!(
                "'{path}' does not exist; use list_files or search to find the right path"
            )),
            std::io::ErrorKind::PermissionDenied => ToolError(format!(
                "'{path}' resolves outside the repository (through a symlink or '..') and cannot be accessed"
            )),
            _ if e.to_string().contains("outside") || e.to_string().contains("escape") => {
                ToolError(format!(
                    "'{path}' resolves outside the repository (through a symlink) and cannot be accessed"
                ))
            }
            std::io::ErrorKind::IsADirectory => ToolError(format!(
                "'{path}' is a directory; use list_files to see what is in it"
            )),
            _ => ToolError(format!("cannot access '{path}': {e}")),
        }
    }

    /// Reads a text file whole. Binary and oversized files are refused with a usable message.
    pub fn read_text(&self, path: &str) -> Result<String, ToolError> {
        let rel = self.relative(path)?;
        let meta = self.root.metadata(&rel).map_err(|e| self.io_err(path, e))?;
        if meta.is_dir() {
            return tool_err(format!(
                "'{path}' is a directory; use list_files to see what is in it"
            ));
        }
        if meta.len() > MAX_TEXT_FILE_BYTES {
            return tool_err(format!(
                "'{path}' is {} MB, too large to read whole; use bash with head, tail, sed -n or grep",
                meta.len() >> 20
            ));
        }
        let mut file = self.root.open(&rel).map_err(|e| self.io_err(path, e))?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io_err(path, e))?;
        if bytes.iter().take(8192).any(|b| *b == 0) {
            return tool_err(format!(
                "'{path}' is a binary file ({} bytes) and cannot be shown as text; use bash (e.g. `file`, `xxd | head`) to inspect it",
                bytes.len()
            ));
        }
        String::from_utf8(bytes).or_else(|_| {
            tool_err(format!(
                "'{path}' is not UTF-8 text; use bash (e.g. `iconv`, `xxd | head`) to inspect it"
            ))
        })
    }

    pub fn exists(&self, path: &str) -> Result<bool, ToolError> {
        let rel = self.relative(path)?;
        match self.root.symlink_metadata(&rel) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err(path, e)),
        }
    }

    /// Creates or overwrites a file, creating parent directories.
    pub fn write_text(&self, path: &str, content: &str) -> Result<(), ToolError> {
        let rel = self.relative(path)?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.root
                .create_dir_all(parent)
                .map_err(|e| self.io_err(path, e))?;
        }
        if let Ok(meta) = self.root.metadata(&rel)
            && meta.is_dir()
        {
            return tool_err(format!("'{path}' is a directory"));
        }
        self.root
            .write(&rel, content.as_bytes())
            .map_err(|e| self.io_err(path, e))
    }

    /// A directory below the root, for walking; refuses anything that escapes.
    pub fn dir_path(&self, path: Option<&str>) -> Result<(PathBuf, PathBuf), ToolError> {
        let Some(p) = path.filter(|p| !p.trim().is_empty() && p.trim() != ".") else {
            return Ok((PathBuf::new(), self.root_path.clone()));
        };
        let rel = self.relative(p)?;
        // Opening through the capability proves it stays inside (symlinks included).
        let meta = self.root.metadata(&rel).map_err(|e| self.io_err(p, e))?;
        let link = self
            .root
            .symlink_metadata(&rel)
            .map_err(|e| self.io_err(p, e))?;
        if link.file_type().is_symlink() {
            return tool_err(format!("'{p}' is a symlink; give the real path"));
        }
        let _ = meta;
        Ok((rel.clone(), self.root_path.join(rel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> (tempfile::TempDir, WorkspaceFs) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.txt"), "hello\n").unwrap();
        let fs = WorkspaceFs::open(t.path()).unwrap();
        (t, fs)
    }

    #[test]
    fn refuses_escapes() {
        let (t, fs) = ws();
        assert!(fs.read_text("../etc/passwd").unwrap_err().0.contains(".."));
        assert!(
            fs.read_text("/etc/passwd")
                .unwrap_err()
                .0
                .contains("absolute")
        );
        std::os::unix::fs::symlink("/etc/hostname", t.path().join("link")).unwrap();
        let e = fs.read_text("link").unwrap_err();
        assert!(e.0.contains("outside"), "{e}");
        assert!(fs.write_text("link", "x").is_err());
        assert!(fs.read_text(".git/config").unwrap_err().0.contains(".git"));
    }

    #[test]
    fn reads_writes_and_explains_missing() {
        let (_t, fs) = ws();
        assert_eq!(fs.read_text("./a.txt").unwrap(), "hello\n");
        fs.write_text("new/dir/b.txt", "b").unwrap();
        assert_eq!(fs.read_text("new/dir/b.txt").unwrap(), "b");
        assert!(
            fs.read_text("nope.txt")
                .unwrap_err()
                .0
                .contains("does not exist")
        );
    }

    #[test]
    fn binary_is_refused() {
        let (t, fs) = ws();
        std::fs::write(t.path().join("bin"), [0u8, 1, 2, 3]).unwrap();
        assert!(fs.read_text("bin").unwrap_err().0.contains("binary"));
    }
}
