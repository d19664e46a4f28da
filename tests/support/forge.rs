//! A GitHub-API-shaped server for tests on 127.0.0.1, reached through `GITHUB_API_URL`: the token's
//! user, repositories with permissions, forks (backed by the git server's repositories), pull
//! requests (list with `head`/`base`/`state` filters, create with GitHub's validations), and
//! injected failures — 401/403/404/422, primary and secondary rate limits — in GitHub's documented
//! JSON shapes and headers. Requests without `Accept: application/vnd.github+json` get a 400, as
//! some GitHub-compatible servers answer.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct RepoEntry {
    pub owner: String,
    pub name: String,
    pub push: bool,
    pub fork_of: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PullEntry {
    pub number: u64,
    pub repo: String,
    pub title: String,
    pub body: String,
    pub head_label: String,
    pub head_ref: String,
    pub base: String,
    pub draft: bool,
    pub open: bool,
}

/// A response served once, instead of the normal one, to the first request matching.
#[derive(Debug, Clone)]
pub struct Failure {
    pub method: Method,
    pub path_contains: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Failure {
    pub fn new(method: Method, path_contains: &str, status: u16, body: Value) -> Self {
        Failure {
            method,
            path_contains: path_contains.into(),
            status,
            headers: vec![],
            body,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

#[derive(Default)]
pub struct ForgeState {
    pub token: String,
    pub login: String,
    pub repos: BTreeMap<String, RepoEntry>,
    pub pulls: Vec<PullEntry>,
    pub failures: VecDeque<Failure>,
    /// (method, path and query) of every request.
    pub requests: Vec<(String, String)>,
    /// Every Authorization header received.
    pub auth_seen: Vec<String>,
    git_base: String,
    git_root: PathBuf,
    api_base: String,
}

pub struct Forge {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<ForgeState>>,
}

fn reply(status: u16, headers: &[(String, String)], body: &Value) -> Response<Body> {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json; charset=utf-8")
        .header("x-github-media-type", "github.v3; format=json");
    for (k, v) in headers {
        r = r.header(k.as_str(), v.as_str());
    }
    r.body(Body::from(body.to_string())).unwrap()
}

fn not_found() -> Response<Body> {
    reply(
        404,
        &[],
        &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

/// A user in GitHub's full `simple-user` shape (octocrab's model requires every field).
fn author_json(s: &ForgeState, login: &str, id: u64) -> Value {
    let u = format!("{}/users/{login}", s.api_base);
    json!({
        "login": login, "id": id, "node_id": "U_test", "type": "User", "site_admin": false,
        "avatar_url": format!("{}/avatars/{login}", s.api_base), "gravatar_id": "",
        "url": u, "html_url": format!("{}/{login}", s.api_base),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following"),
        "gists_url": format!("{u}/gists"), "starred_url": format!("{u}/starred"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"), "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events"), "received_events_url": format!("{u}/received_events"),
    })
}

fn repo_json(s: &ForgeState, r: &RepoEntry) -> Value {
    let full = format!("{}/{}", r.owner, r.name);
    json!({
        "id": 1000 + s.repos.keys().position(|k| *k == full).unwrap_or(0),
        "node_id": "R_test",
        "name": r.name,
        "full_name": full,
        "owner": author_json(s, &r.owner, 7),
        "private": false,
        "fork": r.fork_of.is_some(),
        "html_url": format!("{}/{full}", s.api_base),
        "url": format!("{}/repos/{full}", s.api_base),
        "clone_url": format!("{}/{full}.git", s.git_base),
        "default_branch": "main",
        "permissions": {"admin": false, "maintain": false, "push": r.push, "triage": true, "pull": true},
    })
}

fn pull_json(s: &ForgeState, p: &PullEntry) -> Value {
    json!({
        "id": 5000 + p.number,
        "number": p.number,
        "state": if p.open { "open" } else { "closed" },
        "title": p.title,
        "body": p.body,
        "draft": p.draft,
        "html_url": format!("{}/{}/pull/{}", s.api_base, p.repo, p.number),
        "url": format!("{}/repos/{}/pulls/{}", s.api_base, p.repo, p.number),
        "locked": false,
        "head": {"ref": p.head_ref, "label": p.head_label, "sha": "0000000000000000000000000000000000000000"},
        "base": {"ref": p.base, "sha": "0000000000000000000000000000000000000000", "label": format!("{}:{}", p.repo.split('/').next().unwrap_or(""), p.base)},
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn git_has_branch(root: &std::path::Path, repo: &str, branch: &str) -> bool {
    let path = root.join(format!("{repo}.git"));
    std::process::Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(&path)
        .env("GIT_DIR", &path)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

async fn handle(State(state): State<Arc<Mutex<ForgeState>>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let full_path = parts.uri.path().trim_end_matches('/');
    // The API lives under /api/v3, as on GitHub Enterprise Server.
    let path = full_path
        .strip_prefix("/api/v3")
        .unwrap_or(full_path)
        .to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let mut s = state.lock().unwrap();
    s.requests
        .push((parts.method.to_string(), format!("{path}?{query}")));
    let accept = parts
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept.contains("application/vnd.github+json") {
        return reply(
            400,
            &[],
            &json!({"message": "Accept header must be application/vnd.github+json"}),
        );
    }
    if let Some(i) = s
        .failures
        .iter()
        .position(|f| f.method == parts.method && path.contains(&f.path_contains))
    {
        let f = s.failures.remove(i).unwrap();
        return reply(f.status, &f.headers, &f.body);
    }
    let auth = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    s.auth_seen.push(auth.clone());
    let token_ok = auth == format!("Bearer {}", s.token) || auth == format!("token {}", s.token);
    if !token_ok {
        return reply(
            401,
            &[],
            &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rate = [
        ("x-ratelimit-limit".to_string(), "5000".to_string()),
        ("x-ratelimit-remaining".to_string(), "4999".to_string()),
    ];
    match (parts.method.clone(), segs.as_slice()) {
        (Method::GET, ["user"]) => reply(200, &rate, &author_json(&s, &s.login, 4242)),
        (Method::GET, ["repos", owner, name]) => {
            match s.repos.get(&format!("{owner}/{name}")).cloned() {
                Some(r) => reply(200, &rate, &repo_json(&s, &r)),
                None => not_found(),
            }
        }
        (Method::POST, ["repos", owner, name, "forks"]) => {
            let Some(_) = s.repos.get(&format!("{owner}/{name}")) else {
                return not_found();
            };
            let fork = RepoEntry {
                owner: s.login.clone(),
                name: name.to_string(),
                push: true,
                fork_of: Some(format!("{owner}/{name}")),
            };
            let from = s.git_root.join(format!("{owner}/{name}.git"));
            let to = s.git_root.join(format!("{}/{name}.git", s.login));
            if !to.exists() {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                let ok = std::process::Command::new("git")
                    .args(["clone", "-q", "--bare"])
                    .arg(&from)
                    .arg(&to)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "fork clone failed");
            }
            let key = format!("{}/{name}", s.login);
            s.repos.insert(key, fork.clone());
            reply(202, &rate, &repo_json(&s, &fork))
        }
        (Method::POST, ["repos", owner, name, "merge-upstream"]) => {
            let Some(fork) = s.repos.get(&format!("{owner}/{name}")).cloned() else {
                return not_found();
            };
            let Some(upstream) = fork.fork_of.clone() else {
                return reply(
                    422,
                    &[],
                    &json!({"message": "This repository is not a fork."}),
                );
            };
            let branch = body["branch"].as_str().unwrap_or("main").to_string();
            let dir = s.git_root.join(format!("{owner}/{name}.git"));
            let ok = std::process::Command::new("git")
                .arg("fetch")
                .arg("-q")
                .arg(s.git_root.join(format!("{upstream}.git")))
                .arg(format!("refs/heads/{branch}:refs/heads/{branch}"))
                .env("GIT_DIR", &dir)
                .current_dir(&dir)
                .status()
                .unwrap()
                .success();
            if !ok {
                return reply(409, &[], &json!({"message": "There are merge conflicts"}));
            }
            reply(
                200,
                &rate,
                &json!({"message": format!("Successfully fetched and fast-forwarded from upstream {}:{branch}.", upstream.replace('/', ":").split(':').next().unwrap_or("")),
                        "merge_type": "fast-forward", "base_branch": format!("{upstream}:{branch}")}),
            )
        }
        (Method::GET, ["repos", owner, name, "pulls"]) => {
            let repo = format!("{owner}/{name}");
            if !s.repos.contains_key(&repo) {
                return not_found();
            }
            let head = query_param(&query, "head");
            let base = query_param(&query, "base");
            let state_filter = query_param(&query, "state").unwrap_or_else(|| "open".into());
            let list: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| p.repo == repo)
                .filter(|p| head.as_ref().is_none_or(|h| *h == p.head_label))
                .filter(|p| base.as_ref().is_none_or(|b| *b == p.base))
                .filter(|p| state_filter == "all" || (state_filter == "open") == p.open)
                .map(|p| pull_json(&s, p))
                .collect();
            reply(200, &rate, &Value::Array(list))
        }
        (Method::POST, ["repos", owner, name, "pulls"]) => {
            let repo = format!("{owner}/{name}");
            if !s.repos.contains_key(&repo) {
                return not_found();
            }
            let title = body["title"].as_str().unwrap_or("").to_string();
            let head = body["head"].as_str().unwrap_or("").to_string();
            let base = body["base"].as_str().unwrap_or("").to_string();
            let invalid = |field: &str, code: &str| {
                reply(
                    422,
                    &[],
                    &json!({"message": "Validation Failed",
                            "errors": [{"resource": "PullRequest", "field": field, "code": code}],
                            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                            "status": "422"}),
                )
            };
            if title.is_empty() {
                return invalid("title", "missing_field");
            }
            let (head_owner, head_ref) = head
                .split_once(':')
                .map(|(o, b)| (o.to_string(), b.to_string()))
                .unwrap_or((owner.to_string(), head.clone()));
            let head_repo = format!("{head_owner}/{name}");
            if !git_has_branch(&s.git_root, &head_repo, &head_ref) {
                return invalid("head", "invalid");
            }
            if !git_has_branch(&s.git_root, &repo, &base) {
                return invalid("base", "invalid");
            }
            let label = format!("{head_owner}:{head_ref}");
            if s.pulls
                .iter()
                .any(|p| p.repo == repo && p.head_label == label && p.open)
            {
                return reply(
                    422,
                    &[],
                    &json!({"message": "Validation Failed",
                            "errors": [{"resource": "PullRequest", "code": "custom",
                                        "message": format!("A pull request already exists for {label}.")}],
                            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                            "status": "422"}),
                );
            }
            let pull = PullEntry {
                number: s.pulls.len() as u64 + 1,
                repo,
                title,
                body: body["body"].as_str().unwrap_or("").to_string(),
                head_label: label,
                head_ref,
                base,
                draft: body["draft"].as_bool().unwrap_or(false),
                open: true,
            };
            s.pulls.push(pull.clone());
            reply(201, &rate, &pull_json(&s, &pull))
        }
        _ => not_found(),
    }
}

impl Forge {
    /// `git_base` is the git server's `http://127.0.0.1:PORT`, `git_root` its repositories.
    pub async fn start(token: &str, login: &str, git_base: &str, git_root: PathBuf) -> Forge {
        let state = Arc::new(Mutex::new(ForgeState {
            token: token.into(),
            login: login.into(),
            git_base: git_base.into(),
            git_root,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        state.lock().unwrap().api_base = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Forge { addr, state }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api/v3", self.addr)
    }

    pub fn add_repo(&self, owner: &str, name: &str, push: bool) {
        self.state.lock().unwrap().repos.insert(
            format!("{owner}/{name}"),
            RepoEntry {
                owner: owner.into(),
                name: name.into(),
                push,
                fork_of: None,
            },
        );
    }

    pub fn fail_next(&self, f: Failure) {
        self.state.lock().unwrap().failures.push_back(f);
    }

    pub fn clear_failures(&self) {
        self.state.lock().unwrap().failures.clear();
    }

    pub fn pulls(&self) -> Vec<PullEntry> {
        self.state.lock().unwrap().pulls.clone()
    }

    pub fn add_pull(&self, repo: &str, head_label: &str, base: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        let number = s.pulls.len() as u64 + 1;
        s.pulls.push(PullEntry {
            number,
            repo: repo.into(),
            title: "made by hand".into(),
            body: String::new(),
            head_label: head_label.into(),
            head_ref: head_label.split_once(':').map(|x| x.1).unwrap_or("").into(),
            base: base.into(),
            draft: false,
            open: true,
        });
        number
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().requests.clone()
    }
}
