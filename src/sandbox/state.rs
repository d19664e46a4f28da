//! State that lasts the run: the sandbox's `/tmp`, `HOME` and package caches, on disk beside the
//! work tree, so they survive every sandbox the run starts (bwrap restarts after a kill, a
//! follow-up's new sandbox, a setup phase) and go with the workspace.
//!
//! Why on disk and not a tmpfs: a tmpfs dies with the sandbox that mounted it, so a `pip install
//! --user` or an npm cache was lost whenever a command had to be killed.
//!
//! Invariants: the state directory is `<parent of the work tree>/sandbox-<work tree name>`
//! (`work/<id>/sandbox-repo`): outside the work tree (never in the diff), inside the run's
//! workspace (removed with it, by the pipeline and by crash recovery), one per work tree. Its
//! size is bounded by `sandbox.tmp_mb` through the disk watch (the kernel's tmpfs size no longer
//! applies). The host never reads, executes or follows anything in it: it creates the three
//! directories (refusing a symlink in their place), measures sizes without following symlinks and
//! removes the tree without following them. The per-repository cache (`sandbox.cache`) lives
//! under the state directory of tiny-backspace, keyed by a hash of the repository's identity,
//! and is read by later runs of the same repository only, inside their sandbox.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{SandboxMounts, SandboxSettings};

/// `HOME` inside bwrap (the state's `tmp/home`); on landlock the host path is used.
pub(crate) const SANDBOX_HOME: &str = "/tmp/home";
/// Where the cache appears under `HOME` (bwrap binds the per-repository cache there).
pub(crate) const CACHE_IN_HOME: &str = ".cache";

/// A read-only host directory mounted at the same path (see `sandbox.ro_paths`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoPath {
    /// Absolute, symlinks resolved, checked against the secret stores (`ro_paths::check`).
    pub path: PathBuf,
    /// Add `path/bin` (or `path` itself when it is a `bin` directory) to `PATH`.
    pub add_to_path: bool,
}

impl RoPath {
    /// The directory added to `PATH`, when asked for.
    pub fn bin_dir(&self) -> Option<PathBuf> {
        if !self.add_to_path {
            return None;
        }
        if self.path.file_name().is_some_and(|n| n == "bin") {
            Some(self.path.clone())
        } else {
            Some(self.path.join("bin"))
        }
    }
}

/// One run's state directories on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    /// `work/<id>/sandbox-repo`: everything below is the run's.
    pub root: PathBuf,
    /// The sandbox's `/tmp` (`TMPDIR`).
    pub tmp: PathBuf,
    /// `HOME`: `tmp/home`.
    pub home: PathBuf,
    /// The per-repository cache, when `sandbox.cache` is on; else caches go to `home/.cache`.
    pub repo_cache: Option<PathBuf>,
}

/// Where the state of a sandbox over `mounts` lives (nothing is created).
pub fn state_dir(mounts: &SandboxMounts) -> PathBuf {
    let name = mounts
        .work_tree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    let parent = mounts
        .work_tree
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    parent.join(format!("sandbox-{name}"))
}

/// A directory made by us (0700), or the one already there if it is a real directory.
fn ensure_dir(path: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory (a symlink or file was put there)",
                    path.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

impl RunState {
    /// Creates (or finds) the run's state directories for `mounts`, and the repository's cache
    /// when `settings.cache_root` is set.
    pub fn prepare(mounts: &SandboxMounts, settings: &SandboxSettings) -> io::Result<RunState> {
        let root = state_dir(mounts);
        let tmp = root.join("tmp");
        let home = tmp.join("home");
        ensure_dir(&root)?;
        ensure_dir(&tmp)?;
        ensure_dir(&home)?;
        let repo_cache = match (&settings.cache_root, repository_key(&mounts.git_dir)) {
            (Some(cache_root), Some(key)) => {
                std::fs::create_dir_all(cache_root)?;
                let dir = cache_root.join(key);
                ensure_dir(&dir)?;
                Some(dir)
            }
            (Some(_), None) => {
                // No identity to key on: caches last this run only (never shared, never left).
                tracing::warn!("no repository identity (origin URL) to key the cache on");
                None
            }
            (None, _) => None,
        };
        Ok(RunState {
            root,
            tmp,
            home,
            repo_cache,
        })
    }

    /// Directories whose total size `sandbox.tmp_mb` bounds.
    pub(crate) fn watched(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.root.clone()];
        dirs.extend(self.repo_cache.clone());
        dirs
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The repository's identity, normalized: the `origin` URL host git recorded in the (read-only
/// in the sandbox) git directory at clone time, lowercased scheme and host, without a trailing
/// `/` or `.git`; hashed so it is a safe file name.
pub fn repository_key(git_dir: &Path) -> Option<String> {
    let config = std::fs::read_to_string(git_dir.join("config")).ok()?;
    let url = origin_url(&config)?;
    Some(hex(&Sha256::digest(normalize_identity(&url).as_bytes()))[..32].to_string())
}

fn origin_url(config: &str) -> Option<String> {
    let mut in_origin = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_origin = line
                .replace(' ', "")
                .eq_ignore_ascii_case("[remote\"origin\"]");
            continue;
        }
        if in_origin
            && let Some((k, v)) = line.split_once('=')
            && k.trim().eq_ignore_ascii_case("url")
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// `HTTPS://GitHub.com/Octo/Calc.git/` and `https://github.com/Octo/Calc` are one repository.
pub fn normalize_identity(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url
        .strip_suffix(".git")
        .unwrap_or(url)
        .trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            format!(
                "{}://{}/{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => url.to_string(),
    }
}

/// Cache variables so package managers cache under `cache` (`HOME/.cache`, or the repository's
/// cache), and `PATH` with the requested toolchain `bin` directories first.
pub(crate) fn env_additions(base: &mut Vec<(String, String)>, cache: &str, ro_paths: &[RoPath]) {
    let bins: Vec<String> = ro_paths
        .iter()
        .filter_map(RoPath::bin_dir)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if !bins.is_empty()
        && let Some((_, path)) = base.iter_mut().find(|(k, _)| k == "PATH")
    {
        *path = format!("{}:{path}", bins.join(":"));
    }
    for (k, sub) in [
        ("XDG_CACHE_HOME", ""),
        ("PIP_CACHE_DIR", "/pip"),
        ("npm_config_cache", "/npm"),
        ("YARN_CACHE_FOLDER", "/yarn"),
        ("GOCACHE", "/go-build"),
        ("GOMODCACHE", "/go-mod"),
        ("CARGO_HOME", "/cargo"),
    ] {
        base.push((k.into(), format!("{cache}{sub}")));
    }
    // rustup's proxies (`~/.cargo/bin/cargo`) find their toolchains through RUSTUP_HOME, which
    // would otherwise be the sandbox's own empty `HOME/.rustup`.
    if let Some(rustup) = ro_paths
        .iter()
        .find(|r| r.path.file_name().is_some_and(|n| n == ".rustup"))
    {
        base.push(("RUSTUP_HOME".into(), rustup.path.to_string_lossy().into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_normalize() {
        assert_eq!(
            normalize_identity("HTTPS://GitHub.com/Octo/Calc.git/"),
            "https://github.com/Octo/Calc"
        );
        assert_eq!(
            normalize_identity("https://github.com/Octo/Calc"),
            "https://github.com/Octo/Calc"
        );
        assert_eq!(normalize_identity("/srv/repos/x.git"), "/srv/repos/x");
    }

    #[test]
    fn origin_is_read_from_the_git_config() {
        let cfg = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://a/b\n[remote \"origin\"]\n\turl = https://Example.org/o/r.git\n";
        assert_eq!(
            origin_url(cfg).as_deref(),
            Some("https://Example.org/o/r.git")
        );
        assert_eq!(origin_url("[core]\n"), None);
    }

    #[test]
    fn state_is_beside_the_work_tree_and_refuses_a_planted_symlink() {
        let t = tempfile::tempdir().unwrap();
        let mounts = SandboxMounts {
            work_tree: t.path().join("repo"),
            git_dir: t.path().join("git"),
        };
        let s = RunState::prepare(&mounts, &SandboxSettings::default()).unwrap();
        assert_eq!(s.root, t.path().join("sandbox-repo"));
        assert!(s.home.is_dir() && s.home.starts_with(&s.tmp));
        assert_eq!(
            RunState::prepare(&mounts, &SandboxSettings::default()).unwrap(),
            s
        );
        std::fs::remove_dir(&s.home).unwrap();
        std::os::unix::fs::symlink("/etc", &s.home).unwrap();
        assert!(RunState::prepare(&mounts, &SandboxSettings::default()).is_err());
    }

    #[test]
    fn bin_dirs_go_first_on_path_and_caches_under_the_cache() {
        let mut env = vec![("PATH".to_string(), "/usr/bin".to_string())];
        let ro = [
            RoPath {
                path: "/opt/node".into(),
                add_to_path: true,
            },
            RoPath {
                path: "/home/u/.cargo/bin".into(),
                add_to_path: true,
            },
            RoPath {
                path: "/home/u/.rustup".into(),
                add_to_path: false,
            },
        ];
        env_additions(&mut env, "/tmp/home/.cache", &ro);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("PATH"),
            Some("/opt/node/bin:/home/u/.cargo/bin:/usr/bin")
        );
        assert_eq!(get("npm_config_cache"), Some("/tmp/home/.cache/npm"));
        assert_eq!(get("RUSTUP_HOME"), Some("/home/u/.rustup"));
    }
}
