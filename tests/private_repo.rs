//! A private GitHub-shaped repository: the workspace clone authenticates with the token (offered
//! to that host only, never stored), and without a token the run stops at validation saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;

use publish_harness::{Env, OWNER, REPO, all_files};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_is_cloned_with_the_token_and_published() {
    let env = Env::new(true).await;
    env.git.set_private(OWNER, REPO);
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.last()["type"], "Done");
    assert!(out.last()["pr_url"].is_string());
    // The token never appears in what the run wrote or printed.
    assert!(!out.stdout.contains(&env.token) && !out.stderr.contains(&env.token));
    for (path, bytes) in all_files(env.home.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&env.token),
            "token in {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_a_private_repository_is_a_clear_validation_error() {
    let env = Env::new(true).await;
    env.git.set_private(OWNER, REPO);
    let script = env.default_script();
    let model = format!("scripted:{}", script.display());
    let mut vars = env.base_env();
    vars.retain(|(k, _)| k != "GITHUB_TOKEN");
    // --no-pr: no publishing pre-flight, so the clone's own check is what stops the run.
    let out = env
        .tb(
            &[
                "run",
                "--repo",
                &env.repo_url(),
                "--prompt",
                "p",
                "--no-pr",
                "--json",
                "--model",
                &model,
            ],
            &vars,
        )
        .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let msg = out.last()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("needs credentials") && msg.contains("GITHUB_TOKEN"),
        "{msg}"
    );
    assert!(
        !env.home.path().join("runs").exists()
            || std::fs::read_dir(env.runs_dir()).unwrap().next().is_none()
    );
}
