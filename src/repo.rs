//! What the user typed as "repository", turned into something safe to clone — or a clear refusal.
//!
//! Invariants: only `https://` URLs, `http://` on loopback hosts, `owner/repo` (GitHub) and existing
//! local git repositories are accepted; no git transport syntax (`ext::`, `fd::`, `file::`), no
//! option-looking values, no credentials inside URLs. Local repositories are checked by looking at
//! files only: no git command runs in an untrusted repository to decide.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RepoSource {
    /// A repository on GitHub (or a GitHub Enterprise host given by URL).
    GitHub {
        host: String,
        owner: String,
        name: String,
        url: String,
    },
    /// Any other git server over https (or http on loopback).
    Remote { url: String },
    /// A git repository on this machine.
    Local { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository '{input}': {problem}. {fix}")]
pub struct RepoInputError {
    pub input: String,
    pub problem: String,
    pub fix: String,
}

fn refuse(input: &str, problem: impl Into<String>, fix: impl Into<String>) -> RepoInputError {
    RepoInputError {
        input: redact_userinfo(input),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// `scheme://user:secret@host/…` → `scheme://***@host/…`, so errors never echo credentials.
pub fn redact_userinfo(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => input.to_string(),
    }
}

const FORMS: &str = "Give https://github.com/OWNER/REPO, OWNER/REPO, another https:// git URL, or \
                     the path of a local git repository";

pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn valid_owner_repo(owner: &str, name: &str) -> bool {
    let ok = |s: &str, extra: &str| {
        !s.is_empty()
            && !s.starts_with(['-', '.'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(c))
    };
    ok(owner, "") && ok(name, "._") && name != "." && name != ".."
}

impl RepoSource {
    /// Parses user input. `cwd` resolves relative local paths.
    pub fn parse(raw: &str, cwd: &Path) -> Result<RepoSource, RepoInputError> {
        let input = raw.trim();
        if input.is_empty() {
            return Err(refuse(raw, "no repository was given", FORMS));
        }
        if input.starts_with('-') {
            return Err(refuse(
                input,
                "it starts with '-' and would be read as a git option",
                FORMS,
            ));
        }
        if input.contains("::") {
            return Err(refuse(
                input,
                "git transport syntax (ext::, fd::, file:: …) is not accepted because it can run commands",
                FORMS,
            ));
        }
        if input.chars().any(|c| c.is_control()) {
            return Err(refuse(input, "it contains control characters", FORMS));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            return Self::parse_url(input, &scheme.to_ascii_lowercase());
        }
        if input.starts_with("git@") || (input.contains(':') && !input.starts_with(['/', '.', '~']))
        {
            return Err(refuse(
                input,
                "SSH addresses are not supported (the push uses your token over https)",
                "Use the https form, e.g. https://github.com/OWNER/REPO",
            ));
        }
        let expanded = match input.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(rest),
            None => PathBuf::from(input),
        };
        let path = if expanded.is_absolute() {
            expanded
        } else {
            cwd.join(expanded)
        };
        if path.is_dir() {
            return Self::local(input, &path);
        }
        let looks_like_path = input.starts_with(['/', '.', '~']);
        if !looks_like_path {
            let mut parts = input.trim_end_matches('/').splitn(2, '/');
            if let (Some(owner), Some(name)) = (parts.next(), parts.next()) {
                let name = name.strip_suffix(".git").unwrap_or(name);
                if !name.contains('/') && valid_owner_repo(owner, name) {
                    return Ok(RepoSource::GitHub {
                        host: "github.com".into(),
                        owner: owner.into(),
                        name: name.into(),
                        url: format!("https://github.com/{owner}/{name}.git"),
                    });
                }
            }
        }
        if path.exists() {
            return Err(refuse(input, "it is a file, not a directory", FORMS));
        }
        Err(refuse(
            input,
            "no such directory, and it is not OWNER/REPO or a URL",
            FORMS,
        ))
    }

    fn local(input: &str, path: &Path) -> Result<RepoSource, RepoInputError> {
        let path = path
            .canonicalize()
            .map_err(|e| refuse(input, format!("cannot open it: {e}"), FORMS))?;
        let is_work_tree = path.join(".git").exists();
        let is_bare = path.join("HEAD").is_file()
            && path.join("objects").is_dir()
            && path.join("refs").is_dir();
        if !is_work_tree && !is_bare {
            return Err(refuse(
                input,
                "the directory is not a git repository (no .git inside)",
                "Run `git init` there and commit, or point at the repository's top-level directory",
            ));
        }
        Ok(RepoSource::Local { path })
    }

    fn parse_url(input: &str, scheme: &str) -> Result<RepoSource, RepoInputError> {
        if scheme != "https" && scheme != "http" {
            return Err(refuse(
                input,
                format!("the {scheme}:// scheme is not accepted"),
                FORMS,
            ));
        }
        let url = url::Url::parse(input)
            .map_err(|e| refuse(input, format!("not a valid URL ({e})"), FORMS))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                input,
                "the URL has credentials in it",
                "Remove them from the URL; the token is read from GITHUB_TOKEN, GH_TOKEN or `gh auth token` and never stored",
            ));
        }
        let host = url.host_str().unwrap_or_default().to_string();
        if host.is_empty() {
            return Err(refuse(input, "the URL has no host", FORMS));
        }
        if scheme == "http" && !is_loopback_host(&host) {
            return Err(refuse(
                input,
                "plain http:// is only allowed for loopback hosts",
                "Use https:// for remote servers",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse(
                input,
                "the URL has a query or fragment",
                "Give the repository's clone URL",
            ));
        }
        if host.eq_ignore_ascii_case("github.com") || host.eq_ignore_ascii_case("www.github.com") {
            let segs: Vec<&str> = url.path().trim_matches('/').split('/').collect();
            let (owner, name) = match segs.as_slice() {
                [o, n] => (*o, n.strip_suffix(".git").unwrap_or(n)),
                [o, n, "tree" | "blob" | "pull" | "pulls" | "issues", ..] => (*o, *n),
                _ => {
                    return Err(refuse(
                        input,
                        "a GitHub URL must name an owner and a repository",
                        "Use https://github.com/OWNER/REPO",
                    ));
                }
            };
            if !valid_owner_repo(owner, name) {
                return Err(refuse(
                    input,
                    "the owner or repository name is not valid",
                    FORMS,
                ));
            }
            return Ok(RepoSource::GitHub {
                host: "github.com".into(),
                owner: owner.into(),
                name: name.into(),
                url: format!("https://github.com/{owner}/{name}.git"),
            });
        }
        Ok(RepoSource::Remote {
            url: url.to_string(),
        })
    }

    /// The URL handed to `git clone` (local repositories as their absolute path).
    pub fn clone_url(&self) -> String {
        match self {
            RepoSource::GitHub { url, .. } | RepoSource::Remote { url } => url.clone(),
            RepoSource::Local { path } => path.display().to_string(),
        }
    }

    /// The `GIT_ALLOW_PROTOCOL` value for cloning this source.
    pub fn allowed_protocols(&self) -> &'static str {
        match self {
            RepoSource::GitHub { .. } => "https",
            RepoSource::Remote { url } if url.starts_with("http://") => "http",
            RepoSource::Remote { .. } => "https",
            RepoSource::Local { .. } => "file",
        }
    }

    /// How the repository is shown to people.
    pub fn display(&self) -> String {
        match self {
            RepoSource::GitHub { owner, name, .. } => format!("{owner}/{name}"),
            RepoSource::Remote { url } => url.clone(),
            RepoSource::Local { path } => path.display().to_string(),
        }
    }
}

/// A branch name that git would accept and that cannot be read as an option.
pub fn check_branch_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        Err(format!(
            "base branch '{name}' is not a valid branch name; give an existing branch such as main, \
             or leave it out to use the repository's default branch"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RepoSource, RepoInputError> {
        RepoSource::parse(s, Path::new("/nonexistent-cwd"))
    }

    #[test]
    fn github_forms() {
        for s in [
            "https://github.com/o/r",
            "https://github.com/o/r.git",
            "o/r",
            "o/r.git",
            "https://github.com/o/r/tree/main/src",
        ] {
            match parse(s).unwrap() {
                RepoSource::GitHub {
                    owner, name, url, ..
                } => {
                    assert_eq!((owner.as_str(), name.as_str()), ("o", "r"), "{s}");
                    assert_eq!(url, "https://github.com/o/r.git");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_urls() {
        assert!(matches!(
            parse("https://gitlab.com/a/b.git").unwrap(),
            RepoSource::Remote { .. }
        ));
        assert!(matches!(
            parse("http://127.0.0.1:8080/r.git").unwrap(),
            RepoSource::Remote { .. }
        ));
        assert!(matches!(
            parse("http://localhost/r.git").unwrap(),
            RepoSource::Remote { .. }
        ));
        assert_eq!(
            parse("http://127.0.0.1/r.git").unwrap().allowed_protocols(),
            "http"
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            ("", "no repository"),
            ("--upload-pack=touch /tmp/x", "starts with '-'"),
            ("ext::sh -c touch% /tmp/pwned", "transport syntax"),
            ("fd::3", "transport syntax"),
            ("file::/tmp/x", "transport syntax"),
            ("file:///tmp/x", "file:// scheme"),
            ("ssh://git@github.com/o/r", "ssh:// scheme"),
            ("git@github.com:o/r.git", "SSH"),
            ("http://example.com/r.git", "loopback"),
            ("https://user:pw@github.com/o/r", "credentials"),
            ("https://tok@github.com/o/r", "credentials"),
            ("https://github.com/o", "owner and a repository"),
            ("/definitely/not/here", "no such directory"),
            ("./relative/missing", "no such directory"),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.to_string().contains(want), "{input}: {err}");
            assert!(err.to_string().contains("repository '"), "{err}");
        }
    }

    #[test]
    fn local_directories() {
        let t = tempfile::tempdir().unwrap();
        let err = RepoSource::parse(t.path().to_str().unwrap(), Path::new("/")).unwrap_err();
        assert!(err.problem.contains("not a git repository"));
        std::fs::create_dir(t.path().join(".git")).unwrap();
        let ok = RepoSource::parse(t.path().to_str().unwrap(), Path::new("/")).unwrap();
        assert!(matches!(ok, RepoSource::Local { .. }));
        assert!(ok.clone_url().starts_with('/'));
        let f = t.path().join("file.txt");
        std::fs::write(&f, "x").unwrap();
        assert!(
            RepoSource::parse(f.to_str().unwrap(), Path::new("/"))
                .unwrap_err()
                .problem
                .contains("a file")
        );
    }

    #[test]
    fn credentials_are_never_echoed() {
        let e = parse("https://user:hunter2@github.com/o/r").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("https://***@github.com/o/r"), "{e}");
        assert_eq!(
            redact_userinfo("https://github.com/a@b"),
            "https://github.com/a@b"
        );
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "trunk", "release/1.2", "feature-x"] {
            assert!(check_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "--upload-pack=x",
            "a..b",
            "a b",
            "x.lock",
            "a:b",
            "/a",
            "a/",
        ] {
            assert!(check_branch_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.com"));
    }
}
