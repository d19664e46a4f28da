//! Publishing failures: each gives a clear error, and a run that fails at publishing stays
//! publishable with `tiny-backspace publish RUN_ID`, which is idempotent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;

use axum::http::Method;
use forge::Failure;
use publish_harness::{Env, OWNER, REPO};
use serde_json::json;

fn message(out: &publish_harness::Output) -> String {
    let last = out.last();
    assert_eq!(last["type"], "Error", "{}", out.stdout);
    last["message"].as_str().unwrap().to_string()
}

/// Pre-flight failures end the run before the agent: nothing ran, nothing was spent.
fn assert_failed_before_agent(out: &publish_harness::Output) {
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(out.last()["stage"], "validate");
    assert!(out.of_type("Tool: Read").is_empty() && out.of_type("Tool: Bash").is_empty());
    assert!(out.of_type("Usage").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_missing_repo_and_sso_fail_fast_with_what_to_do() {
    let env = Env::new(true).await;

    let out = env.run_yes(None, &[("GITHUB_TOKEN", "ghp_wrong")]).await;
    assert_failed_before_agent(&out);
    let m = message(&out);
    assert!(m.contains("401") && m.contains("GITHUB_TOKEN"), "{m}");
    assert!(!env.runs_dir().exists() || std::fs::read_dir(env.runs_dir()).unwrap().count() == 0);

    env.forge.fail_next(Failure::new(
        Method::GET,
        "/repos/octo/calc",
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository", "status": "404"}),
    ));
    let out = env.run_yes(None, &[]).await;
    assert_failed_before_agent(&out);
    let m = message(&out);
    assert!(
        m.contains("octo/calc") && m.contains("404") && m.contains("private"),
        "{m}"
    );

    env.forge.fail_next(
        Failure::new(
            Method::GET,
            "/repos/octo/calc",
            403,
            json!({"message": "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.", "documentation_url": "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/"}),
        )
        .header(
            "x-github-sso",
            "required; url=https://github.com/orgs/octo/sso?authorization_request=AB12",
        ),
    );
    let out = env.run_yes(None, &[]).await;
    assert_failed_before_agent(&out);
    let m = message(&out);
    assert!(
        m.contains("single sign-on")
            && m.contains("https://github.com/orgs/octo/sso?authorization_request=AB12"),
        "{m}"
    );

    env.forge.fail_next(Failure::new(
        Method::GET,
        "/repos/octo/calc",
        403,
        json!({"message": "Resource not accessible by personal access token", "documentation_url": "https://docs.github.com/rest"}),
    ));
    let out = env.run_yes(None, &[]).await;
    assert_failed_before_agent(&out);
    let m = message(&out);
    assert!(m.contains("403") && m.contains("not accessible"), "{m}");
    assert!(env.forge.pulls().is_empty() && env.tb_branches(OWNER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_refused_after_the_push_is_retried_into_exactly_one_branch_and_pr() {
    let env = Env::new(true).await;
    env.forge.fail_next(Failure::new(
        Method::POST,
        "/repos/octo/calc/pulls",
        422,
        json!({"message": "Validation Failed",
               "errors": [{"resource": "PullRequest", "code": "custom", "message": "No commits between main and feature"}],
               "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "422"}),
    ));
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let run_id = out.run_id();
    let last = out.last();
    assert_eq!(last["stage"], "publish");
    assert_eq!(last["retryable"], false);
    let m = message(&out);
    assert!(m.contains("422") && m.contains("No commits between"), "{m}");
    assert!(
        m.contains(&format!("tiny-backspace publish {run_id}")),
        "{m}"
    );
    // The push had happened; the PR had not.
    assert_eq!(env.tb_branches(OWNER).len(), 1);
    assert!(env.forge.pulls().is_empty());
    let run = env.runs_dir().join(&run_id);
    assert!(run.join("approved.diff").is_file() && run.join("pr.json").is_file());

    let again = env.publish(&run_id, &[]).await;
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.of_type("Status").iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("already holds this commit")),
        "{}",
        again.stdout
    );
    let done = again.last();
    assert_eq!(done["type"], "Done");
    let url = done["pr_url"].as_str().unwrap().to_string();
    assert_eq!(env.tb_branches(OWNER).len(), 1);
    assert_eq!(env.forge.pulls().len(), 1);
    assert_eq!(again.of_type("PR").len(), 1);

    // Idempotent: once more finds the same branch and PR.
    let third = env.publish(&run_id, &[]).await;
    assert_eq!(third.code, 0, "{}", third.stdout);
    assert_eq!(third.last()["pr_url"], url.as_str());
    assert_eq!(env.tb_branches(OWNER).len(), 1);
    assert_eq!(env.forge.pulls().len(), 1);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "published");
    assert_eq!(meta["pr_url"], url.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_when_short_and_reported_when_long() {
    let env = Env::new(true).await;
    // Secondary limit with retry-after: 1 during pre-flight: waited out, visibly.
    env.forge.fail_next(
        Failure::new(
            Method::GET,
            "/user",
            403,
            json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}),
        )
        .header("retry-after", "1"),
    );
    // Primary limit resetting in an hour when opening the PR: too long to wait.
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    env.forge.fail_next(
        Failure::new(
            Method::POST,
            "/repos/octo/calc/pulls",
            403,
            json!({"message": "API rate limit exceeded for user ID 4242.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"}),
        )
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-used", "5000")
        .header("x-ratelimit-reset", &reset.to_string()),
    );
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let waited = out.of_type("Status").iter().any(|e| {
        let m = e["message"].as_str().unwrap();
        m.contains("secondary rate limit") && m.contains("waiting 1s")
    });
    assert!(waited, "{}", out.stdout);
    let last = out.last();
    assert_eq!(last["stage"], "publish");
    assert_eq!(last["retryable"], true);
    let m = message(&out);
    assert!(
        m.contains("primary rate limit") && m.contains("publish"),
        "{m}"
    );

    // Later, the retry publishes.
    let again = env.publish(&out.run_id(), &["--draft"]).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].draft);
    assert_eq!(env.tb_branches(OWNER).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_branch_is_never_overwritten() {
    let env = Env::new(true).await;
    env.forge.fail_next(Failure::new(
        Method::POST,
        "/repos/octo/calc/pulls",
        502,
        json!({"message": "Server Error"}),
    ));
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.last()["retryable"], true, "a 5xx is worth retrying");
    let branch = env.tb_branches(OWNER).pop().unwrap();
    // Someone replaces the branch with their own work.
    let repo = env.git.path(OWNER, REPO);
    let work = tempfile::tempdir().unwrap();
    git_http::git(work.path(), &["clone", "-q", repo.to_str().unwrap(), "."]);
    std::fs::write(work.path().join("theirs.txt"), "mine\n").unwrap();
    git_http::git(work.path(), &["add", "."]);
    git_http::git(work.path(), &["commit", "-q", "-m", "their work"]);
    git_http::git(
        work.path(),
        &["push", "-q", "-f", "origin", &format!("HEAD:{branch}")],
    );
    let theirs = git_http::git(&repo, &["rev-parse", &branch]);

    let again = env.publish(&out.run_id(), &[]).await;
    assert_eq!(again.code, 1, "{}", again.stdout);
    let m = message(&again);
    assert!(
        m.contains("already exists") && m.contains("never overwrites"),
        "{m}"
    );
    assert_eq!(git_http::git(&repo, &["rev-parse", &branch]), theirs);
    assert!(env.forge.pulls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_a_retryable_network_error() {
    let env = Env::new(true).await;
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let api = format!("http://{closed}/api/v3");
    let out = env.run_yes(None, &[("GITHUB_API_URL", &api)]).await;
    assert_failed_before_agent(&out);
    let last = out.last();
    assert_eq!(last["retryable"], true);
    let m = message(&out);
    assert!(m.contains("cannot reach") && m.contains("network"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_rejected_by_the_server_says_why_and_can_be_retried() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(true).await;
    let hook = env.git.path(OWNER, REPO).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'GH013: Repository rule violations found: branch names must match release/*' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.last()["stage"], "publish");
    let m = message(&out);
    assert!(
        m.contains("push to") && m.contains("rejected") && m.contains("GH013"),
        "{m}"
    );
    assert!(env.tb_branches(OWNER).is_empty() && env.forge.pulls().is_empty());

    std::fs::remove_file(&hook).unwrap();
    let again = env.publish(&out.run_id(), &[]).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(env.tb_branches(OWNER).len(), 1);
    assert_eq!(env.forge.pulls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_leaves_out_what_it_is_told_and_refuses_what_the_patch_lacks() {
    let env = Env::new(true).await;
    let out = env.run_no_pr().await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let run_id = out.run_id();

    // Naming what is not in the patch: exit 2, a message listing what is, nothing pushed.
    let typo = env.publish(&run_id, &["--exclude", "calc.pyy"]).await;
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(
        typo.stderr
            .contains("--exclude: 'calc.pyy' is not in the run's patch")
            && typo.stderr.contains("calc.py (2 hunks)"),
        "{}",
        typo.stderr
    );
    let too_far = env.publish(&run_id, &["--exclude-hunk", "calc.py:3"]).await;
    assert_eq!(too_far.code, 2, "{}", too_far.stderr);
    assert!(
        too_far.stderr.contains("'calc.py' has 2 hunks") && too_far.stderr.contains("number 3"),
        "{}",
        too_far.stderr
    );
    let malformed = env.publish(&run_id, &["--exclude-hunk", "calc.py"]).await;
    assert_eq!(malformed.code, 2, "{}", malformed.stderr);
    assert!(malformed.stderr.contains("PATH:N"), "{}", malformed.stderr);
    assert!(env.tb_branches(OWNER).is_empty() && env.forge.pulls().is_empty());

    // The first hunk of calc.py and the whole of NOTES.md left out.
    let published = env
        .publish(
            &run_id,
            &["--exclude-hunk", "calc.py:1", "--exclude", "NOTES.md"],
        )
        .await;
    assert_eq!(
        published.code, 0,
        "{}\n{}",
        published.stdout, published.stderr
    );
    let branch = env.tb_branches(OWNER).pop().unwrap();
    let content = env.git.show(OWNER, REPO, &format!("{branch}:calc.py"));
    assert!(!content.contains("raise ValueError"), "{content}");
    assert!(content.contains("product of a and b"), "{content}");
    let tree = env.git.show(OWNER, REPO, &format!("{branch}^{{tree}}"));
    assert!(!tree.contains("NOTES.md"), "{tree}");
    assert_eq!(env.forge.pulls().len(), 1);
}
