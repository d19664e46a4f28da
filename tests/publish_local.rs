//! Publishing without a pull-request API: a local repository gets a branch, another git remote
//! gets a pushed branch, and both get a `git request-pull`-style summary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;

use git_http::{GitServer, git};
use publish_harness::{Env, calc_py};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_repository_gets_a_branch_and_a_request_pull_summary() {
    let env = Env::new(true).await;
    let local = tempfile::tempdir().unwrap();
    let dir = local.path();
    git(dir, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(dir.join("calc.py"), calc_py()).unwrap();
    std::fs::write(dir.join("README.md"), "# calc\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "Initial commit"]);
    let base = git(dir, &["rev-parse", "HEAD"]);
    // Hooks in the repository must not run when tiny-backspace creates the branch.
    let marker = local.path().join("hook-ran");
    for hook in [
        "reference-transaction",
        "post-checkout",
        "pre-commit",
        "post-merge",
    ] {
        let path = dir.join(".git/hooks").join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = env.default_script();
    let model = format!("scripted:{}", script.display());
    let out = env
        .tb(
            &[
                "run",
                "--repo",
                dir.to_str().unwrap(),
                "--prompt",
                "Make divide reject a zero divisor",
                "--yes",
                "--json",
                "--model",
                &model,
            ],
            &env.base_env(),
        )
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let done = out.last();
    assert_eq!(done["type"], "Done");
    assert!(done["pr_url"].is_null());
    let branch = done["branch"].as_str().unwrap();
    assert!(branch.starts_with("tb/make-divide-"), "{branch}");
    let content = git(dir, &["show", &format!("{branch}:calc.py")]);
    assert!(content.contains("raise ValueError") && content.contains("product of a and b"));
    assert_eq!(git(dir, &["rev-parse", &format!("{branch}^")]), base);
    // The user's checkout is untouched.
    assert_eq!(git(dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(dir, &["status", "--porcelain"]), "");
    assert!(!marker.exists(), "a repository hook ran");
    let summary = out
        .of_type("Status")
        .into_iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("The following changes since commit"))
        .expect("a request-pull summary")
        .to_string();
    assert!(
        summary.contains(&format!("since commit {base}")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "{} {branch}",
            dir.canonicalize().unwrap().display()
        )),
        "{summary}"
    );
    assert!(
        summary.contains("2 files changed, 4 insertions(+), 0 deletions(-)"),
        "{summary}"
    );
    let saved = std::fs::read_to_string(env.runs_dir().join(out.run_id()).join("request-pull.txt"))
        .unwrap();
    assert!(
        summary.ends_with(&saved),
        "the summary is kept in the run folder"
    );
    // No GitHub API call for a local repository.
    assert!(env.forge.requests().is_empty());

    // Publishing again finds the branch it made.
    let again = env.publish(&out.run_id(), &[]).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(again.last()["branch"], branch);
    let branches = git(dir, &["branch", "--list", "tb/*"]);
    assert_eq!(branches.lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_remote_gets_the_branch_but_never_the_github_token() {
    let env = Env::new(true).await;
    // A non-GitHub server that lets anyone push.
    let other = GitServer::start_with("unused", true).await;
    let base = other.create_repo("team", "calc", &[("calc.py", &calc_py())]);
    let script = env.default_script();
    let model = format!("scripted:{}", script.display());
    let url = other.url("team", "calc");
    let mut vars = env.base_env();
    vars.retain(|(k, _)| k != "GITHUB_API_URL");
    let out = env
        .tb(
            &[
                "run",
                "--repo",
                &url,
                "--prompt",
                "Make divide reject a zero divisor",
                "--yes",
                "--json",
                "--model",
                &model,
            ],
            &vars,
        )
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let branch = out.last()["branch"].as_str().unwrap().to_string();
    assert!(other.has_branch("team", "calc", &branch));
    assert_eq!(
        git(
            &other.path("team", "calc"),
            &["rev-parse", &format!("{branch}^")]
        ),
        base
    );
    let summary = out
        .of_type("Status")
        .into_iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("are available in the Git repository at"))
        .expect("summary")
        .to_string();
    assert!(summary.contains(&format!("{url} {branch}")), "{summary}");
    assert!(
        other.auth_seen().is_empty(),
        "credentials were sent to another host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_wants_credentials_is_refused_the_github_token() {
    let env = Env::new(true).await;
    // Another host that would accept the GitHub token if it were (wrongly) offered.
    let other = GitServer::start(&env.token).await;
    other.create_repo("team", "calc", &[("calc.py", &calc_py())]);
    let script = env.default_script();
    let model = format!("scripted:{}", script.display());
    let mut vars = env.base_env();
    vars.retain(|(k, _)| k != "GITHUB_API_URL");
    let out = env
        .tb(
            &[
                "run",
                "--repo",
                &other.url("team", "calc"),
                "--prompt",
                "Make divide reject a zero divisor",
                "--yes",
                "--json",
                "--model",
                &model,
            ],
            &vars,
        )
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let last = out.last();
    assert_eq!(last["stage"], "publish");
    let m = last["message"].as_str().unwrap();
    assert!(m.contains("push") && m.contains("rejected"), "{m}");
    assert!(other.branches("team", "calc") == vec!["main".to_string()]);
    assert!(
        other
            .auth_seen()
            .iter()
            .all(|h| !h.contains(&env.token[4..])),
        "the token went to another host"
    );
    assert!(other.auth_seen().is_empty());
}
