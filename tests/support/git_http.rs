//! A real git smart-HTTP server for tests: `git http-backend` behind a small axum CGI bridge on
//! 127.0.0.1. Pushes (and reads of repositories marked private) require the token by HTTP basic
//! auth, like GitHub; every Authorization header seen is recorded so tests can check what was sent.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use base64::Engine;
use tokio::io::AsyncWriteExt;

pub struct GitServer {
    pub addr: SocketAddr,
    pub root: PathBuf,
    state: Arc<GitState>,
    _dir: tempfile::TempDir,
}

struct GitState {
    root: PathBuf,
    token: String,
    /// Let anyone push (an "other remote" that needs no token).
    open_push: bool,
    private: Mutex<HashSet<String>>,
    auth_seen: Mutex<Vec<String>>,
}

/// Runs git (the test's own, plain) and returns stdout; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn authorized(state: &GitState, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    state.auth_seen.lock().unwrap().push(value.to_string());
    let Some(b64) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let raw = String::from_utf8_lossy(&raw).to_string();
    raw.split_once(':').is_some_and(|(_, pw)| pw == state.token)
}

async fn handle(State(state): State<Arc<GitState>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 512 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let push = query.contains("service=git-receive-pack") || path.ends_with("/git-receive-pack");
    let repo_key: String = path
        .trim_start_matches('/')
        .split(".git/")
        .next()
        .unwrap_or("")
        .to_string();
    let private = state.private.lock().unwrap().contains(&repo_key);
    let needs_auth = (push && !state.open_push) || private;
    let authed = authorized(&state, &parts.headers);
    if needs_auth && !authed {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"tests\"")
            .body(Body::from("authentication required\n"))
            .unwrap();
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &state.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if push || authed {
        cmd.env("REMOTE_USER", "tester");
    }
    if let Some(ct) = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(ce) = parts
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("HTTP_CONTENT_ENCODING", ce);
    }
    if let Some(gp) = parts
        .headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("GIT_PROTOCOL", gp);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let _ = writer.await;
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, sep)) = split else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(out.stderr))
            .unwrap();
    };
    let head = String::from_utf8_lossy(&raw[..at]).to_string();
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
            status = StatusCode::from_u16(code).unwrap();
        } else {
            response = response.header(k.trim(), v);
        }
    }
    response
        .status(status)
        .body(Body::from(raw[at + sep..].to_vec()))
        .unwrap()
}

impl GitServer {
    pub async fn start(token: &str) -> GitServer {
        Self::start_with(token, false).await
    }

    pub async fn start_with(token: &str, open_push: bool) -> GitServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        std::fs::create_dir_all(&root).unwrap();
        let state = Arc::new(GitState {
            root: root.clone(),
            token: token.to_string(),
            open_push,
            private: Mutex::default(),
            auth_seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GitServer {
            addr,
            root,
            state,
            _dir: dir,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, owner: &str, name: &str) -> String {
        format!("http://{}/{owner}/{name}.git", self.addr)
    }

    pub fn path(&self, owner: &str, name: &str) -> PathBuf {
        self.root.join(owner).join(format!("{name}.git"))
    }

    /// A bare repository `owner/name` whose `main` holds `files` in one commit; returns its id.
    pub fn create_repo(&self, owner: &str, name: &str, files: &[(&str, &str)]) -> String {
        let bare = self.path(owner, name);
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "--initial-branch=main"]);
        let work = tempfile::tempdir().unwrap();
        git(work.path(), &["init", "-q", "--initial-branch=main"]);
        for (path, content) in files {
            let p = work.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(work.path(), &["add", "-A"]);
        git(work.path(), &["commit", "-q", "-m", "Initial commit"]);
        git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
        git(&bare, &["rev-parse", "main"])
    }

    /// Adds a commit writing `content` to `path` on `main` of `owner/name`; returns its id.
    pub fn commit_file(&self, owner: &str, name: &str, path: &str, content: &str) -> String {
        let bare = self.path(owner, name);
        let work = tempfile::tempdir().unwrap();
        git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "."]);
        std::fs::write(work.path().join(path), content).unwrap();
        git(work.path(), &["add", "-A"]);
        git(
            work.path(),
            &["commit", "-q", "-m", &format!("Update {path}")],
        );
        git(work.path(), &["push", "-q", "origin", "HEAD:main"]);
        git(&bare, &["rev-parse", "main"])
    }

    /// A copy of `from` as `to_owner/name` (what forking does on the server).
    pub fn fork_repo(&self, from_owner: &str, name: &str, to_owner: &str) {
        let dst = self.path(to_owner, name);
        if dst.exists() {
            return;
        }
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        git(
            &self.root,
            &[
                "clone",
                "-q",
                "--bare",
                self.path(from_owner, name).to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
    }

    pub fn set_private(&self, owner: &str, name: &str) {
        self.state
            .private
            .lock()
            .unwrap()
            .insert(format!("{owner}/{name}"));
    }

    /// Branch names of `owner/name`.
    pub fn branches(&self, owner: &str, name: &str) -> Vec<String> {
        let out = git(
            &self.path(owner, name),
            &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
        );
        out.lines().map(str::to_string).collect()
    }

    pub fn has_branch(&self, owner: &str, name: &str, branch: &str) -> bool {
        self.path(owner, name).is_dir() && self.branches(owner, name).iter().any(|b| b == branch)
    }

    /// `git show REV:PATH` in `owner/name`.
    pub fn show(&self, owner: &str, name: &str, rev_path: &str) -> String {
        git(&self.path(owner, name), &["show", rev_path])
    }

    /// Every Authorization header the server received.
    pub fn auth_seen(&self) -> Vec<String> {
        self.state.auth_seen.lock().unwrap().clone()
    }
}
