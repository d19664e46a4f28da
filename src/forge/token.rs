//! Finding the GitHub token: `GITHUB_TOKEN`, `GH_TOKEN`, `GITHUB_PAT` (resolved by the config, in
//! that order, environment before `.env` before the config file), then `gh auth token` when the
//! GitHub CLI is installed.
//!
//! Invariants: the token is only held as a [`Secret`]; `gh`'s output is never logged; a missing
//! token is an error only when publishing needs one (GitHub targets).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::secret::Secret;

/// The configured token, else the one `gh auth token` prints for `host`.
pub async fn discover(config: &Config, host: &str) -> Option<Secret> {
    if let Some(t) = config
        .github_token
        .clone()
        .filter(|t| !t.expose().is_empty())
    {
        return Some(t);
    }
    gh_auth_token(std::env::var_os("PATH"), host).await
}

fn find_on_path(path: Option<&OsString>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `gh auth token --hostname HOST` (bounded to 10 s); `None` when gh is missing or has no token.
pub async fn gh_auth_token(path: Option<OsString>, host: &str) -> Option<Secret> {
    let gh = find_on_path(path.as_ref(), "gh")?;
    let mut cmd = tokio::process::Command::new(gh);
    cmd.args(["auth", "token"]);
    if !host.is_empty() && host != "github.com" {
        cmd.args(["--hostname", host]);
    }
    cmd.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        tracing::info!("gh auth token found no token for {host}");
        return None;
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then(|| Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_gh(dir: &std::path::Path, script: &str) -> OsString {
        let gh = dir.join("gh");
        std::fs::write(&gh, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(paths).unwrap()
    }

    #[tokio::test]
    async fn gh_fallback_reads_the_token_for_the_host() {
        let t = tempfile::tempdir().unwrap();
        let path = fake_gh(
            t.path(),
            r#"[ "$1 $2" = "auth token" ] || exit 3
if [ "$3" = "--hostname" ]; then echo "gho_for_$4"; else echo gho_public; fi"#,
        );
        let tok = gh_auth_token(Some(path.clone()), "github.com")
            .await
            .unwrap();
        assert_eq!(tok.expose(), "gho_public");
        let tok = gh_auth_token(Some(path), "ghe.example").await.unwrap();
        assert_eq!(tok.expose(), "gho_for_ghe.example");
    }

    #[tokio::test]
    async fn gh_without_a_login_or_missing_gives_none() {
        let t = tempfile::tempdir().unwrap();
        let path = fake_gh(t.path(), "echo 'not logged in' >&2; exit 1");
        assert!(gh_auth_token(Some(path), "github.com").await.is_none());
        let empty = tempfile::tempdir().unwrap();
        let none = Some(empty.path().as_os_str().to_os_string());
        assert!(gh_auth_token(none, "github.com").await.is_none());
    }
}
