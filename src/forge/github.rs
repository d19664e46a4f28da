//! The GitHub REST calls publishing needs (user, repository, fork, merge-upstream, pull requests),
//! made with octocrab's typed API and models, plus our own status and rate-limit handling.
//!
//! Invariants: octocrab is built without its retry feature (it retries a 429 at once, and turns a
//! 403 carrying `retry-after` into a plain error); instead, from the headers octocrab keeps in its
//! `GitHubError`, a primary (`x-ratelimit-remaining: 0` + `x-ratelimit-reset`) or secondary
//! (`retry-after`) limit is waited out visibly through `notify`, never longer than the configured
//! bound and never past a cancel. Every request sends `Accept: application/vnd.github+json`.
//! Errors are read in GitHub's documented shape (`message`, `errors[]`) and turned into a
//! [`ForgeError`]; octocrab's models are converted at once into the few fields publishing uses.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::ForgeError;
use crate::secret::Secret;

/// Reports a visible wait (rate limits, fork creation) to the user.
pub type Notify<'a> = &'a (dyn Fn(String) + Send + Sync);

pub struct GitHub<'a> {
    crab: Octocrab,
    api_url: String,
    max_wait: Duration,
    notify: Notify<'a>,
    cancel: CancellationToken,
}

#[derive(Debug, Clone)]
pub struct User {
    pub login: String,
    pub id: u64,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub admin: bool,
    pub maintain: bool,
    pub push: bool,
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub login: String,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub full_name: String,
    pub owner: Owner,
    pub default_branch: Option<String>,
    pub permissions: Option<Permissions>,
    pub clone_url: String,
    pub html_url: Option<String>,
}

impl Repo {
    pub fn can_push(&self) -> bool {
        self.permissions
            .as_ref()
            .is_some_and(|p| p.push || p.maintain || p.admin)
    }
}

#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub html_url: String,
    pub title: Option<String>,
    pub head: Ref,
    pub base: Ref,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<Value>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// How long a rate-limited response asks us to wait, and which limit it is; `None` when the
/// response is not a rate limit.
pub fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now_unix: u64,
) -> Option<(&'static str, u64)> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = header(headers, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(("secondary", secs));
    }
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let reset = header(headers, "x-ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(now_unix + 60);
        return Some(("primary", reset.saturating_sub(now_unix).max(1)));
    }
    let m = message.to_ascii_lowercase();
    if m.contains("secondary rate limit") || status == StatusCode::TOO_MANY_REQUESTS {
        // GitHub's documentation: without headers, wait at least a minute.
        return Some(("secondary", 60));
    }
    if m.contains("rate limit exceeded") {
        return Some(("primary", 60));
    }
    None
}

/// The readable parts of GitHub's `errors[]` (a string, a `message`, or `field: code`).
fn error_details(errors: &[Value]) -> Vec<String> {
    errors
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let field = o.get("field").and_then(Value::as_str)?;
                    let code = o.get("code").and_then(Value::as_str).unwrap_or("invalid");
                    Some(format!("{field}: {code}"))
                }),
            _ => None,
        })
        .collect()
}

fn error_message(body: &[u8], status: StatusCode) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => {
            let mut m = b
                .message
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
            let details = error_details(&b.errors);
            if !details.is_empty() {
                m = format!("{m}: {}", details.join("; "));
            }
            m
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text.chars().take(300).collect()
            }
        }
    }
}

/// Maps a non-success response to the error that says what to do.
pub fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> ForgeError {
    map_status(status, headers, error_message(body, status), what)
}

/// The message of an error octocrab decoded, in the same words [`error_message`] gives for
/// the raw body.
fn github_message(e: &octocrab::GitHubError) -> String {
    decoded_message(
        e.status_code,
        &e.message,
        e.errors.as_deref().unwrap_or_default(),
    )
}

/// octocrab puts the whole body into `message` when the body is not JSON, or is JSON without a
/// `message`; the latter reads as the status's reason, the former is cut to 300 characters.
fn decoded_message(status: StatusCode, message: &str, errors: &[Value]) -> String {
    let message = message.trim();
    let no_message = serde_json::from_str::<serde_json::Map<String, Value>>(message).is_ok();
    let mut m: String = if message.is_empty() || no_message {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message.chars().take(300).collect()
    };
    let details = error_details(errors);
    if !details.is_empty() {
        m = format!("{m}: {}", details.join("; "));
    }
    m
}

fn map_status(status: StatusCode, headers: &HeaderMap, message: String, what: &str) -> ForgeError {
    match status.as_u16() {
        401 => ForgeError::BadCredentials,
        403 => match header(headers, "x-github-sso") {
            Some(sso) => ForgeError::SsoRequired {
                url: sso
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("url="))
                    .unwrap_or("https://github.com/settings/tokens")
                    .to_string(),
            },
            None => ForgeError::Forbidden { message },
        },
        404 => ForgeError::NotFound {
            what: what.to_string(),
        },
        422 => ForgeError::Validation { message },
        code => ForgeError::Http {
            status: code,
            message,
        },
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<'a> GitHub<'a> {
    pub fn new(
        api_url: &str,
        token: &Secret,
        max_wait: Duration,
        notify: Notify<'a>,
        cancel: CancellationToken,
    ) -> Result<Self, ForgeError> {
        let crab = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| ForgeError::Config(format!("GITHUB_API_URL '{api_url}': {e}")))?
            .personal_token(token.expose().to_string())
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_string(),
            )
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| ForgeError::Config(format!("cannot set up the GitHub client: {e}")))?;
        Ok(GitHub {
            crab,
            api_url: api_url.to_string(),
            max_wait,
            notify,
            cancel,
        })
    }

    /// One typed request through octocrab (its routing, error mapping and JSON decoding), with
    /// rate limits waited out (bounded). `send` is called again for each retry.
    async fn call<T, F, Fut>(&self, what: &str, send: F) -> Result<T, ForgeError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = octocrab::Result<T>>,
    {
        let mut waited = Duration::ZERO;
        loop {
            let source = match send().await {
                Ok(v) => return Ok(v),
                Err(octocrab::Error::GitHub { source, .. }) => source,
                Err(e @ (octocrab::Error::Serde { .. } | octocrab::Error::Json { .. })) => {
                    return Err(ForgeError::Http {
                        status: 200,
                        message: format!("unexpected answer for {what}: {e}"),
                    });
                }
                Err(e) => {
                    return Err(ForgeError::Network {
                        what: format!("the GitHub API at {}", self.api_url),
                        detail: e.to_string(),
                    });
                }
            };
            let status = source.status_code;
            let headers = source.headers.clone().unwrap_or_default();
            let message = github_message(&source);
            let Some((kind, secs)) = rate_limit_wait(status, &headers, &message, now_unix()) else {
                tracing::info!(%status, what, "GitHub error: {message}");
                return Err(map_status(status, &headers, message, what));
            };
            let wait = Duration::from_secs(secs);
            if waited + wait > self.max_wait {
                return Err(ForgeError::RateLimited {
                    kind,
                    wait_secs: secs,
                    max_secs: self.max_wait.as_secs(),
                });
            }
            (self.notify)(format!(
                "GitHub {kind} rate limit reached; waiting {secs}s before trying again"
            ));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => return Err(ForgeError::Cancelled),
            }
            waited += wait;
        }
    }

    /// The token's user.
    pub async fn user(&self) -> Result<User, ForgeError> {
        let what = "the token's user";
        let author = self
            .call(what, || async move { self.crab.current().user().await })
            .await?;
        Ok(User {
            login: author.login,
            id: author.id.0,
            name: author.name,
        })
    }

    pub async fn repo(&self, owner: &str, name: &str) -> Result<Repo, ForgeError> {
        let what = format!("the repository {owner}/{name}");
        let repo = self
            .call(
                &what,
                || async move { self.crab.repos(owner, name).get().await },
            )
            .await?;
        to_repo(repo, &what)
    }

    /// Forks `owner/name` to the token's account (GitHub returns the existing fork if there is
    /// one) and waits, bounded, until the fork answers.
    pub async fn fork(&self, owner: &str, name: &str) -> Result<Repo, ForgeError> {
        let what = format!("the repository {owner}/{name}");
        let fork = self
            .call(&what, || async move {
                self.crab.repos(owner, name).create_fork().send().await
            })
            .await?;
        let fork = to_repo(fork, &what)?;
        let mut delay = Duration::from_millis(500);
        let mut waited = Duration::ZERO;
        loop {
            match self.repo(&fork.owner.login, &fork.name).await {
                Ok(r) => return Ok(r),
                Err(ForgeError::NotFound { .. }) if waited < Duration::from_secs(120) => {
                    (self.notify)(format!(
                        "waiting for GitHub to create the fork {}",
                        fork.full_name
                    ));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => return Err(ForgeError::Cancelled),
                    }
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Brings the fork's `branch` up to date with its upstream (`merge-upstream`), so the base
    /// commit is there before a branch built on it is pushed.
    pub async fn sync_fork(&self, owner: &str, name: &str, branch: &str) -> Result<(), ForgeError> {
        self.call(&format!("the fork {owner}/{name}"), || async move {
            self.crab.repos(owner, name).merge_upstream(branch).await
        })
        .await?;
        Ok(())
    }

    /// The open pull request from `head` (`owner:branch`) into `base`, if there is one.
    pub async fn find_pull(
        &self,
        owner: &str,
        name: &str,
        head: &str,
        base: &str,
    ) -> Result<Option<Pull>, ForgeError> {
        let what = format!("the pull requests of {owner}/{name}");
        let page = self
            .call(&what, || async move {
                self.crab
                    .pulls(owner, name)
                    .list()
                    .state(octocrab::params::State::Open)
                    .head(head)
                    .base(base)
                    .per_page(100u8)
                    .send()
                    .await
            })
            .await?;
        let branch = head.split_once(':').map_or(head, |(_, b)| b);
        let found = page.items.into_iter().find(|p| {
            p.head.label.as_deref() == Some(head)
                || (p.head.label.is_none() && p.head.ref_field == branch)
        });
        found.map(|p| to_pull(p, &what)).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_pull(
        &self,
        owner: &str,
        name: &str,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
        draft: bool,
    ) -> Result<Pull, ForgeError> {
        let what = format!("the repository {owner}/{name}");
        let pull = self
            .call(&what, || async move {
                self.crab
                    .pulls(owner, name)
                    .create(title, head, base)
                    .body(body)
                    .draft(draft)
                    .maintainer_can_modify(true)
                    .send()
                    .await
            })
            .await?;
        to_pull(pull, &what)
    }
}

fn missing(what: &str, field: &str) -> ForgeError {
    ForgeError::Http {
        status: 200,
        message: format!("unexpected answer for {what}: no {field}"),
    }
}

/// The parts of octocrab's repository model publishing uses.
fn to_repo(r: octocrab::models::Repository, what: &str) -> Result<Repo, ForgeError> {
    let owner = r.owner.ok_or_else(|| missing(what, "owner"))?.login;
    Ok(Repo {
        full_name: r.full_name.unwrap_or_else(|| format!("{owner}/{}", r.name)),
        name: r.name,
        owner: Owner { login: owner },
        default_branch: r.default_branch,
        permissions: r.permissions.map(|p| Permissions {
            admin: p.admin,
            maintain: p.maintain,
            push: p.push,
        }),
        clone_url: r
            .clone_url
            .ok_or_else(|| missing(what, "clone_url"))?
            .to_string(),
        html_url: r.html_url.map(|u| u.to_string()),
    })
}

fn to_pull(p: octocrab::models::pulls::PullRequest, what: &str) -> Result<Pull, ForgeError> {
    Ok(Pull {
        number: p.number,
        html_url: p
            .html_url
            .ok_or_else(|| missing(what, "html_url"))?
            .to_string(),
        title: p.title,
        head: Ref {
            name: p.head.ref_field,
            label: p.head.label,
        },
        base: Ref {
            name: p.base.ref_field,
            label: p.base.label,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rate_limits_are_recognized() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, "API rate limit exceeded", 1000),
            Some(("primary", 30))
        );
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &h, "", 1000),
            Some(("secondary", 7))
        );
        let h = headers(&[]);
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &h,
                "You have exceeded a secondary rate limit",
                0
            ),
            Some(("secondary", 60))
        );
        let h = headers(&[("x-ratelimit-remaining", "12")]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, "Resource not accessible", 0),
            None
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &h, "", 0), None);
    }

    #[test]
    fn decoded_errors_read_like_raw_ones() {
        let errors = vec![serde_json::json!({"field": "head", "code": "invalid"})];
        for (status, body, message, errs) in [
            (StatusCode::BAD_GATEWAY, "{}", "{}", vec![]),
            (StatusCode::BAD_GATEWAY, "oops", "oops", vec![]),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"message":"Validation Failed","errors":[{"field":"head","code":"invalid"}]}"#,
                "Validation Failed",
                errors.clone(),
            ),
        ] {
            assert_eq!(
                decoded_message(status, message, &errs),
                error_message(body.as_bytes(), status)
            );
        }
        let long = "x".repeat(400);
        assert_eq!(
            decoded_message(StatusCode::BAD_GATEWAY, &long, &[]).len(),
            300
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"No commits between main and x"}],"documentation_url":"https://docs.github.com/rest"}"#;
        let e = status_error(StatusCode::UNPROCESSABLE_ENTITY, &headers(&[]), body, "r");
        assert!(e.to_string().contains("No commits between"), "{e}");
        let sso = headers(&[(
            "x-github-sso",
            "required; url=https://github.com/orgs/acme/sso?authorization_request=abc",
        )]);
        let e = status_error(StatusCode::FORBIDDEN, &sso, b"{}", "r");
        assert!(
            e.to_string().contains("https://github.com/orgs/acme/sso"),
            "{e}"
        );
        let e = status_error(StatusCode::UNAUTHORIZED, &headers(&[]), b"{}", "r");
        assert!(e.to_string().contains("GITHUB_TOKEN"));
        let e = status_error(
            StatusCode::NOT_FOUND,
            &headers(&[]),
            b"{}",
            "the repository o/r",
        );
        assert!(e.to_string().contains("o/r") && e.to_string().contains("private"));
        assert!(!e.is_retryable());
        let e = status_error(StatusCode::BAD_GATEWAY, &headers(&[]), b"oops", "r");
        assert!(e.is_retryable());
    }
}
