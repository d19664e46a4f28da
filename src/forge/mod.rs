//! Where approved changes go: GitHub (github.com or Enterprise, through octocrab), any other git
//! remote (push a branch, then a `git request-pull`-style summary), or a local repository (create a
//! branch in it, then the same summary).
//!
//! Invariants: the GitHub token is only ever sent to the GitHub API URL and to the repository's
//! own git host (never to another remote); plain `http://` is accepted for the API only on
//! loopback; every failure is a [`ForgeError`] whose message says what to do, and
//! [`ForgeError::is_retryable`] tells a transient failure from one that needs the user.

pub mod github;
pub mod record;
pub mod text;
pub mod token;

use crate::config::Config;
use crate::git::GitError;
use crate::repo::{RepoSource, is_loopback_host};
use crate::secret::Secret;

/// The public GitHub API.
pub const GITHUB_API: &str = "https://api.github.com";

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error(
        "publishing to {host} needs a GitHub token: set GITHUB_TOKEN (or GH_TOKEN / GITHUB_PAT), or \
         log in with `gh auth login` so that `gh auth token` prints one"
    )]
    NoToken { host: String },
    #[error(
        "GitHub rejected the token (401 Bad credentials): it is wrong, expired or revoked. Create a \
         new one (repo scope, or fine-grained with Contents and Pull requests: read and write) and \
         set GITHUB_TOKEN"
    )]
    BadCredentials,
    #[error(
        "GitHub refused (403): the organization uses SAML single sign-on and the token is not \
         authorized for it. Authorize it at {url} (or under Settings → Developer settings → \
         Personal access tokens → Configure SSO), then retry"
    )]
    SsoRequired { url: String },
    #[error(
        "GitHub refused (403): {message}. The token lacks permission for this: give it the repo \
         scope (or Contents and Pull requests: read and write), or ask for access to the repository"
    )]
    Forbidden { message: String },
    #[error(
        "{what} was not found (404). If it is private, the token cannot see it: check the owner and \
         name, and that the token has access to private repositories"
    )]
    NotFound { what: String },
    #[error("GitHub did not accept the request (422 Validation Failed): {message}")]
    Validation { message: String },
    #[error(
        "GitHub's {kind} rate limit is exhausted; it resets in {wait_secs}s, longer than the {max_secs}s \
         tiny-backspace waits. Try again later"
    )]
    RateLimited {
        kind: &'static str,
        wait_secs: u64,
        max_secs: u64,
    },
    #[error("the token cannot push to {repo} and {why}")]
    NoPushAccess { repo: String, why: String },
    #[error(
        "the branch '{branch}' already exists on {remote} with other commits; tiny-backspace never \
         overwrites someone's branch. Delete or rename that branch, or set a different \
         publish.branch_prefix"
    )]
    BranchTaken { branch: String, remote: String },
    #[error("the push to {remote} was rejected: {detail}")]
    PushRejected { remote: String, detail: String },
    /// A push the remote refused for want of (valid) credentials; same text as `PushRejected`.
    #[error("the push to {remote} was rejected: {detail}")]
    PushAuth { remote: String, detail: String },
    #[error("cannot reach {what}: {detail}. Check the network connection (and proxy settings)")]
    Network { what: String, detail: String },
    #[error("GitHub answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("{0}")]
    Config(String),
    #[error("git: {0}")]
    Git(#[from] GitError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

impl ForgeError {
    /// The stable code an `Error` event carries for this failure.
    pub fn code(&self) -> crate::event::ErrorCode {
        use crate::event::ErrorCode;
        match self {
            ForgeError::NoToken { .. }
            | ForgeError::BadCredentials
            | ForgeError::SsoRequired { .. }
            | ForgeError::PushAuth { .. } => ErrorCode::PublishAuth,
            ForgeError::Forbidden { .. }
            | ForgeError::NotFound { .. }
            | ForgeError::Validation { .. }
            | ForgeError::NoPushAccess { .. }
            | ForgeError::PushRejected { .. } => ErrorCode::PublishRejected,
            ForgeError::BranchTaken { .. } => ErrorCode::BranchTaken,
            ForgeError::RateLimited { .. } => ErrorCode::RateLimited,
            ForgeError::Network { .. } | ForgeError::Http { .. } | ForgeError::Git(_) => {
                ErrorCode::PublishFailed
            }
            ForgeError::Config(_) => ErrorCode::InvalidInput,
            ForgeError::Io { .. } => ErrorCode::Internal,
            ForgeError::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// Whether trying again later (`tiny-backspace publish RUN_ID`) can succeed without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForgeError::RateLimited { .. } | ForgeError::Network { .. } => true,
            ForgeError::Http { status, .. } => *status >= 500,
            ForgeError::Git(e) => e.is_retryable(),
            ForgeError::PushRejected { detail, .. } => {
                detail.contains("Could not resolve host") || detail.contains("Connection")
            }
            _ => false,
        }
    }
}

/// A repository on a GitHub server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRepo {
    /// The REST API base, e.g. `https://api.github.com` or `https://ghe.example/api/v3`.
    pub api_url: String,
    /// The git host the token may be sent to.
    pub git_host: String,
    pub owner: String,
    pub name: String,
    pub clone_url: String,
}

/// Where a run's changes are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    GitHub(GitHubRepo),
    /// Another git server: push a branch, then summarize.
    Remote {
        url: String,
    },
    /// A repository on this machine: create a branch in it, then summarize.
    Local {
        path: std::path::PathBuf,
    },
}

fn url_host(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
}

/// Checks a configured API URL: https, or http on loopback only. Returns it without a trailing `/`.
pub fn check_api_url(raw: &str) -> Result<String, ForgeError> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        ForgeError::Config(format!(
            "GITHUB_API_URL '{raw}' is not a URL ({e}); use e.g. https://ghe.example.com/api/v3"
        ))
    })?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        _ => {
            return Err(ForgeError::Config(format!(
                "GITHUB_API_URL '{raw}' must use https:// (plain http:// only on loopback)"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ForgeError::Config(
            "GITHUB_API_URL must not contain credentials; the token comes from GITHUB_TOKEN".into(),
        ));
    }
    Ok(raw.trim().trim_end_matches('/').to_string())
}

/// Decides where `source` is published. A non-github.com URL counts as GitHub (Enterprise, or a
/// test server) when `GITHUB_API_URL` is set and names the same host (or `api.` + that host).
pub fn resolve(source: &RepoSource, config: &Config) -> Result<Target, ForgeError> {
    let api = config
        .github_api_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(check_api_url)
        .transpose()?;
    match source {
        RepoSource::GitHub {
            host,
            owner,
            name,
            url,
        } => Ok(Target::GitHub(GitHubRepo {
            api_url: api.unwrap_or_else(|| GITHUB_API.to_string()),
            git_host: host.to_ascii_lowercase(),
            owner: owner.clone(),
            name: name.clone(),
            clone_url: url.clone(),
        })),
        RepoSource::Remote { url } => {
            let host = url_host(url).unwrap_or_default();
            let api_host = api.as_deref().and_then(url_host);
            let matches = api_host
                .as_deref()
                .is_some_and(|a| a == host || a.strip_prefix("api.") == Some(host.as_str()));
            let segs: Vec<String> = url::Url::parse(url)
                .ok()
                .map(|u| {
                    u.path()
                        .trim_matches('/')
                        .split('/')
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            match (matches, api, segs.as_slice()) {
                (true, Some(api_url), [.., owner, name]) if !owner.is_empty() => {
                    Ok(Target::GitHub(GitHubRepo {
                        api_url,
                        git_host: host,
                        owner: owner.clone(),
                        name: name.strip_suffix(".git").unwrap_or(name).to_string(),
                        clone_url: url.clone(),
                    }))
                }
                _ => Ok(Target::Remote { url: url.clone() }),
            }
        }
        RepoSource::Local { path } => Ok(Target::Local { path: path.clone() }),
    }
}

/// What pre-flight found out: whom the token belongs to and where the branch will be pushed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub token: Option<Secret>,
    /// GitHub only: the authenticated user and whether the pull request comes from a fork.
    pub login: Option<String>,
    pub user_id: Option<u64>,
    pub user_name: Option<String>,
    pub fork: bool,
    pub default_branch: Option<String>,
    /// One line for people: where the changes will go.
    pub describe: String,
}

/// Pre-flight, before any model tokens are spent: for GitHub, a token exists, the repository is
/// reachable with it, and the token can push (else a fork will be used, or — forking off — a
/// clear error). Other remotes and local repositories need no network check here (the clone that
/// follows reaches them).
pub async fn preflight(
    source: &RepoSource,
    config: &Config,
    notify: github::Notify<'_>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Plan, ForgeError> {
    let target = resolve(source, config)?;
    let plan = |describe: String| Plan {
        target: target.clone(),
        token: None,
        login: None,
        user_id: None,
        user_name: None,
        fork: false,
        default_branch: None,
        describe,
    };
    let r = match &target {
        Target::GitHub(r) => r.clone(),
        Target::Remote { url } => {
            return Ok(plan(format!(
                "publishing pushes a branch to {url} (not GitHub: you get a request-pull summary \
                 instead of a pull request)"
            )));
        }
        Target::Local { path } => {
            return Ok(plan(format!(
                "publishing creates a branch in the local repository {}",
                path.display()
            )));
        }
    };
    let token = token::discover(config, &r.git_host)
        .await
        .ok_or_else(|| ForgeError::NoToken {
            host: r.git_host.clone(),
        })?;
    let gh = github::GitHub::new(
        &r.api_url,
        &token,
        config.publish.max_rate_limit_wait,
        notify,
        cancel,
    )?;
    let user = match gh.user().await {
        Ok(u) => Some(u),
        // Installation and Actions tokens cannot read /user; they can still push and open PRs.
        Err(ForgeError::Forbidden { .. } | ForgeError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let repo = gh.repo(&r.owner, &r.name).await?;
    let fork = !repo.can_push();
    let full = format!("{}/{}", r.owner, r.name);
    if fork && !config.publish.fork {
        return Err(ForgeError::NoPushAccess {
            repo: full,
            why: "forking is turned off (publish.fork = false / TB_FORK=false). Ask for write \
                  access, or allow forking so the pull request comes from your fork"
                .into(),
        });
    }
    if fork && user.is_none() {
        return Err(ForgeError::NoPushAccess {
            repo: full,
            why:
                "it cannot read its own user (GET /user), so it cannot fork either. Use a personal \
                  access token, or one with write access to the repository"
                    .into(),
        });
    }
    let describe = match (&user, fork) {
        (Some(u), true) => format!(
            "the token ({}) cannot push to {full}: publishing forks it and opens the pull request \
             from {}:BRANCH",
            u.login, u.login
        ),
        _ => format!("publishing pushes a branch to {full} and opens a pull request"),
    };
    Ok(Plan {
        target,
        token: Some(token),
        login: user.as_ref().map(|u| u.login.clone()),
        user_id: user.as_ref().map(|u| u.id),
        user_name: user.and_then(|u| u.name),
        fork,
        default_branch: repo.default_branch,
        describe,
    })
}

/// Checks a clone URL GitHub gave us (a fork's) before handing it the token: same host as the
/// repository, https (or http on loopback), no credentials, nothing option-like.
pub fn check_clone_url(url: &str, git_host: &str) -> Result<String, ForgeError> {
    let bad = |why: &str| ForgeError::Config(format!("GitHub gave the clone URL '{url}', {why}"));
    let parsed = url::Url::parse(url).map_err(|_| bad("which is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    if host != git_host {
        return Err(bad(&format!("which is not on {git_host}")));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        _ => return Err(bad("which is not https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || url.starts_with('-') {
        return Err(bad("which carries credentials"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(
            &Overrides::default(),
            &move |k| m.get(k).cloned(),
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn targets() {
        let gh = RepoSource::parse("octo/calc", std::path::Path::new("/")).unwrap();
        match resolve(&gh, &config(&[])).unwrap() {
            Target::GitHub(r) => {
                assert_eq!(r.api_url, GITHUB_API);
                assert_eq!((r.owner.as_str(), r.name.as_str()), ("octo", "calc"));
            }
            t => panic!("{t:?}"),
        }
        let remote = RepoSource::Remote {
            url: "http://127.0.0.1:9/octo/calc.git".into(),
        };
        assert!(matches!(
            resolve(&remote, &config(&[])).unwrap(),
            Target::Remote { .. }
        ));
        let c = config(&[("GITHUB_API_URL", "http://127.0.0.1:8/api/v3/")]);
        match resolve(&remote, &c).unwrap() {
            Target::GitHub(r) => {
                assert_eq!(r.api_url, "http://127.0.0.1:8/api/v3");
                assert_eq!(r.git_host, "127.0.0.1");
                assert_eq!((r.owner.as_str(), r.name.as_str()), ("octo", "calc"));
            }
            t => panic!("{t:?}"),
        }
        let ghe = RepoSource::Remote {
            url: "https://ghe.corp.example/a/b.git".into(),
        };
        let c = config(&[("GITHUB_API_URL", "https://api.ghe.corp.example")]);
        assert!(matches!(resolve(&ghe, &c).unwrap(), Target::GitHub(_)));
        let other = RepoSource::Remote {
            url: "https://gitlab.com/a/b.git".into(),
        };
        assert!(matches!(
            resolve(&other, &c).unwrap(),
            Target::Remote { .. }
        ));
        let c = config(&[("GITHUB_API_URL", "http://ghe.corp.example/api/v3")]);
        assert!(resolve(&gh, &c).unwrap_err().to_string().contains("https"));
    }

    #[test]
    fn fork_clone_urls_are_checked() {
        assert!(check_clone_url("https://github.com/me/r.git", "github.com").is_ok());
        assert!(check_clone_url("https://evil.example/me/r.git", "github.com").is_err());
        assert!(check_clone_url("http://github.com/me/r.git", "github.com").is_err());
        assert!(check_clone_url("https://u:p@github.com/me/r.git", "github.com").is_err());
        assert!(check_clone_url("http://127.0.0.1:5/me/r.git", "127.0.0.1").is_ok());
    }
}
