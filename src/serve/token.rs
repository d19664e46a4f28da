//! The bearer token `serve` requires: the configured one (`TB_SERVER_TOKEN`), else one generated
//! into `$TB_HOME/server-token` and reused on later starts.
//!
//! Invariants: a generated token holds 32 bytes from the kernel's CSPRNG; the file is created
//! with mode 0600 and only appears (by a hard link) once written in full, so no one ever reads it
//! half-written or with wider permissions; a token file that is a symlink, not a regular file, not
//! ours, readable or writable by group or others, or not a plausible token is refused, never
//! repaired or overwritten; the token itself is never printed or logged — only where it is.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::secret::Secret;

/// Generated tokens: this many random bytes, hex-encoded.
const RANDOM_BYTES: usize = 32;
/// A token file holding fewer characters than this is refused (a generated one has 64).
const MIN_CHARS: usize = 32;
const MAX_CHARS: usize = 512;
pub const FILE_NAME: &str = "server-token";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "refusing the token file {path}: {why}. Remove it to have a new token generated, or set \
         TB_SERVER_TOKEN"
    )]
    Unsafe { path: PathBuf, why: String },
    #[error("cannot use the token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read random bytes for a server token from /dev/urandom: {0}")]
    Random(std::io::Error),
}

/// Where the token in use came from, for the startup message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Configured,
    /// Read from (or, `created`, just written to) the token file.
    File {
        path: PathBuf,
        created: bool,
    },
}

/// The configured token, else the one in `$TB_HOME/server-token` (generated if absent).
pub fn resolve(config: &Config) -> Result<(Secret, TokenSource), TokenError> {
    if let Some(t) = &config.server_token {
        return Ok((t.clone(), TokenSource::Configured));
    }
    let path = config.home.join(FILE_NAME);
    if let Some(token) = load(&path)? {
        return Ok((
            token,
            TokenSource::File {
                path,
                created: false,
            },
        ));
    }
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&config.home).map_err(io)?;
    // `false`: another server created it first; use theirs.
    let created = create(&path).map_err(io)?;
    let token = load(&path)?.ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
    Ok((token, TokenSource::File { path, created }))
}

/// The token in `path`; `None` if there is no such file.
fn load(path: &Path) -> Result<Option<Secret>, TokenError> {
    let refuse = |why: &str| TokenError::Unsafe {
        path: path.to_path_buf(),
        why: why.into(),
    };
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link"));
    }
    if !meta.is_file() {
        return Err(refuse("it is not a regular file"));
    }
    // No following links and no blocking on a FIFO swapped in since the check; then check what
    // was actually opened.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(&format!(
            "it belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(&format!(
            "its mode is {mode:04o}: others could read or change it (it must be 0600)"
        )));
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(MAX_CHARS as u64 + 2)
        .read_to_string(&mut text)
        .map_err(|_| refuse("it does not hold a token (not text)"))?;
    let token = text.trim();
    let plausible = (MIN_CHARS..=MAX_CHARS).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_graphic());
    if !plausible {
        return Err(refuse(&format!(
            "it does not hold a token ({MIN_CHARS} to {MAX_CHARS} visible ASCII characters)"
        )));
    }
    Ok(Some(Secret::new(token)))
}

/// Writes a new random token to `path`; `false` if a file appeared there first.
fn create(path: &Path) -> std::io::Result<bool> {
    let token = random_hex()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{FILE_NAME}.{}.{}",
        std::process::id(),
        &token[..8]
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        // The umask can only narrow 0600; make sure nothing else widened it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        // A link never replaces an existing file, unlike a rename.
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(home: &Path) -> Config {
        let mut c = Config::load_from(&Default::default(), &|_| None, None, None).unwrap();
        c.home = home.to_path_buf();
        c
    }

    #[test]
    fn generated_once_then_reused_and_configured_wins() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let (a, src) = resolve(&config(&home)).unwrap();
        let path = home.join(FILE_NAME);
        assert_eq!(
            src,
            TokenSource::File {
                path: path.clone(),
                created: true
            }
        );
        assert_eq!(a.expose().len(), 2 * RANDOM_BYTES);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (b, src) = resolve(&config(&home)).unwrap();
        assert_eq!(a, b);
        assert!(matches!(src, TokenSource::File { created: false, .. }));
        // Nothing but the token file is left behind.
        let names: Vec<_> = std::fs::read_dir(&home).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        let mut c = config(&home);
        c.server_token = Some(Secret::new("configured-token"));
        let (t2, src) = resolve(&c).unwrap();
        assert_eq!(t2.expose(), "configured-token");
        assert_eq!(src, TokenSource::Configured);
        // Two draws differ.
        assert_ne!(random_hex().unwrap(), random_hex().unwrap());
    }

    #[test]
    fn unsafe_files_are_refused_without_echoing_them() {
        let t = tempfile::tempdir().unwrap();
        let secret = "s".repeat(40);
        let path = t.path().join(FILE_NAME);
        std::fs::write(&path, &secret).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        let e = resolve(&config(t.path())).unwrap_err().to_string();
        assert!(e.contains("0604") && !e.contains(&secret), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(resolve(&config(t.path())).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(resolve(&config(t.path())).unwrap().0.expose(), secret);
        std::fs::write(&path, "x y z and more text that is long enough").unwrap();
        let e = resolve(&config(t.path())).unwrap_err().to_string();
        assert!(e.contains("does not hold a token"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let fifo = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = resolve(&config(t.path())).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
