//! Host directories mounted read-only into the sandbox (`--ro-path`, `sandbox.ro_paths`,
//! `TB_RO_PATHS`): toolchains installed per user (`~/.rustup`, `~/.cargo/bin`, `~/.nvm`, `/opt/…`).
//!
//! Invariants: a path is resolved (`~` expanded, symlinks and `..` resolved) before it is checked,
//! and must exist; it is refused when it is, is inside, or contains a secret store of any home on
//! this machine (the caller's `HOME`, `/root`, every `/home/*`), when it is a home directory or a
//! parent of one, when it is or contains the state directory or `/etc` (masked files), and when it
//! would cover the sandbox's own mounts (`/`, `/proc`, `/dev`, `/sys`, `/tmp`, `/workspace`).
//! The refusal names the input, the resolved path, the secret it holds and what to do instead.

use std::path::{Path, PathBuf};

use super::state::RoPath;

/// Secret stores, relative to a home directory.
pub const SECRET_STORES: &[&str] = &[
    ".ssh",
    ".config/gh",
    ".aws",
    ".netrc",
    ".git-credentials",
    ".docker",
    ".kube",
    ".gnupg",
    ".config/gcloud",
    ".azure",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/tiny-backspace",
];

/// Paths the sandbox mounts itself; a read-only path may not be one of them or lie beneath one.
const OWN_MOUNTS: &[&str] = &["/proc", "/dev", "/sys", "/tmp", "/workspace"];

/// `PATH`, or `PATH:path` to also add its `bin` directory (or itself, when it is one) to `PATH`.
pub fn parse_entry(raw: &str) -> (String, bool) {
    let raw = raw.trim();
    match raw.strip_suffix(":path") {
        Some(p) => (p.to_string(), true),
        None => (raw.to_string(), false),
    }
}

fn expand_home(raw: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    if raw == "~" || raw.starts_with("~/") {
        let home = home.ok_or_else(|| format!("`{raw}`: HOME is not set to expand `~`"))?;
        return Ok(home.join(raw.trim_start_matches('~').trim_start_matches('/')));
    }
    let p = PathBuf::from(raw);
    if !p.is_absolute() {
        return Err(format!(
            "`{raw}` is not an absolute path: give it from `/` (or `~/…`)"
        ));
    }
    Ok(p)
}

/// Every home directory on this machine: the caller's, `/root` and each `/home/*`.
fn homes(home: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = home.into_iter().map(Path::to_path_buf).collect();
    out.push(PathBuf::from("/root"));
    if let Ok(dir) = std::fs::read_dir("/home") {
        out.extend(dir.flatten().map(|e| e.path()));
    }
    let resolved: Vec<PathBuf> = out
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .collect();
    out.extend(resolved);
    // The caller's own home first, so a refusal names its secret store.
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert(h.clone()));
    out
}

/// `path` with `.` and `..` removed without looking at the disk (for the check before it is
/// resolved, so a missing `~/.ssh` is still refused as a secret store).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Resolves and checks one entry; `state_dir` is tiny-backspace's state directory.
pub fn check(raw: &str, home: Option<&Path>, state_dir: &Path) -> Result<RoPath, String> {
    let (path_text, add_to_path) = parse_entry(raw);
    if path_text.is_empty() {
        return Err("an empty path was given".into());
    }
    let given = lexical(&expand_home(&path_text, home)?);
    // As written first (a secret store that does not exist yet is still refused), then resolved.
    refusal(raw, &given, &given, home, state_dir)?;
    let path = std::fs::canonicalize(&given).map_err(|e| {
        format!(
            "`{raw}`: {} cannot be mounted: {e}; give an existing directory",
            given.display()
        )
    })?;
    refusal(raw, &given, &path, home, state_dir)?;
    if !readable(&path) {
        return Err(format!(
            "`{raw}`: {} is not readable by this user, so the sandbox could not mount it; give a \
             directory you can read",
            path.display()
        ));
    }
    Ok(RoPath { path, add_to_path })
}

/// Whether the caller may read `path` (and enter it, when a directory).
fn readable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mode = if path.is_dir() {
        libc::R_OK | libc::X_OK
    } else {
        libc::R_OK
    };
    // SAFETY: access reads a NUL-terminated path and touches no other memory.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Why `path` (resolved from `given`) may not be mounted, if it may not.
fn refusal(
    raw: &str,
    given: &Path,
    path: &Path,
    home: Option<&Path>,
    state_dir: &Path,
) -> Result<(), String> {
    let shown = if path == given {
        format!("`{raw}`")
    } else {
        format!("`{raw}` (resolved to {})", path.display())
    };
    let refuse = |why: String, instead: &str| Err(format!("{shown} is refused: {why}; {instead}"));
    for home in homes(home) {
        for store in SECRET_STORES {
            let secret = home.join(store);
            if overlaps(path, &secret) {
                let how = if path == secret {
                    "is"
                } else if path.starts_with(&secret) {
                    "is inside"
                } else {
                    "holds"
                };
                let instead = if store.starts_with(".cargo/") {
                    "mount `~/.cargo/bin` (and `~/.rustup`) instead of `~/.cargo`".to_string()
                } else {
                    "mount only the toolchain's own directory (for example its `bin`), never a \
                     directory holding credentials"
                        .to_string()
                };
                return refuse(
                    format!("it {how} the secret store {}", secret.display()),
                    &instead,
                );
            }
        }
        if home.starts_with(path) {
            return refuse(
                format!(
                    "it is or contains the home directory {} (with its secret stores)",
                    home.display()
                ),
                "mount only the toolchain's own directory, e.g. `~/.rustup` or `~/.cargo/bin`",
            );
        }
    }
    let state = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    if overlaps(path, &state) {
        return refuse(
            format!(
                "it overlaps tiny-backspace's state directory {} (other runs, tokens)",
                state.display()
            ),
            "mount only the toolchain's own directory",
        );
    }
    if overlaps(path, Path::new("/etc")) {
        return refuse(
            "it overlaps /etc, whose secrets (shadow, sudoers, ssh keys) the sandbox masks".into(),
            "system directories are already visible read-only; mount only a toolchain directory",
        );
    }
    for own in OWN_MOUNTS {
        // Beneath /tmp is allowed: it is mounted over the run's persistent /tmp.
        let covers = if *own == "/tmp" {
            Path::new(own).starts_with(path)
        } else {
            overlaps(path, Path::new(own))
        };
        if covers {
            return refuse(
                format!("it would cover the sandbox's own {own}"),
                "mount a directory outside /proc, /dev, /sys, /tmp and the work tree",
            );
        }
    }
    Ok(())
}

/// Checks every entry; the first refusal is the error.
pub fn check_all(
    entries: &[String],
    home: Option<&Path>,
    state_dir: &Path,
) -> Result<Vec<RoPath>, String> {
    let mut out: Vec<RoPath> = Vec::new();
    for e in entries.iter().filter(|e| !e.trim().is_empty()) {
        let ro = check(e, home, state_dir)?;
        match out.iter_mut().find(|o| o.path == ro.path) {
            Some(o) => o.add_to_path |= ro.add_to_path,
            None => out.push(ro),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_home() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        for d in [".ssh", ".cargo/bin", ".rustup", ".config/gh", "tools/bin"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        std::fs::write(home.join(".cargo/credentials.toml"), "x").unwrap();
        (t, home)
    }

    #[test]
    fn toolchains_pass_and_secrets_are_refused() {
        let (t, home) = fake_home();
        let state = t.path().join("state");
        let h = Some(home.as_path());
        let ok = check("~/.cargo/bin:path", h, &state).unwrap();
        assert!(ok.add_to_path && ok.path.ends_with(".cargo/bin"));
        assert!(check("~/.rustup", h, &state).is_ok());
        for bad in [
            "~/.ssh",
            "~/.cargo",
            "~",
            "~/.config",
            "~/.ssh/../.ssh",
            "/",
            "/home",
        ] {
            let e = check(bad, h, &state).unwrap_err();
            assert!(e.contains(bad) && e.contains("refused"), "{bad}: {e}");
        }
        let e = check("~/.cargo", h, &state).unwrap_err();
        assert!(
            e.contains("credentials") && e.contains("~/.cargo/bin"),
            "{e}"
        );
        std::os::unix::fs::symlink(home.join(".ssh"), home.join("tools/keys")).unwrap();
        let e = check("~/tools/keys", h, &state).unwrap_err();
        assert!(e.contains(".ssh"), "{e}");
        assert!(
            check("~/missing", h, &state)
                .unwrap_err()
                .contains("missing")
        );
        assert!(check("relative/dir", h, &state).is_err());
        for own in ["/proc", "/dev/shm", "/etc", "/tmp"] {
            assert!(check(own, h, &state).is_err(), "{own}");
        }
        std::fs::create_dir_all(&state).unwrap();
        assert!(check(&state.display().to_string(), h, &state).is_err());
    }
}
