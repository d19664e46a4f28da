//! Publishing to a GitHub-shaped forge, end to end on loopback: a real `git http-backend` that
//! wants the token for pushes, and a GitHub-API-shaped server behind `GITHUB_API_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use publish_harness::{Env, OWNER, REPO, all_files, calc_py};
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::{ErrorCode, Event, Stage};
use tiny_backspace::llm::scripted::ScriptedProvider;
use tiny_backspace::pipeline::{self, Command, Gate, Outcome, RunRequest, Selection};

const PROMPT: &str = "Make divide reject a zero divisor";

fn library_config(env: &Env) -> Config {
    library_config_with_token(env, &env.token)
}

fn library_config_with_token(env: &Env, token: &str) -> Config {
    let vars: HashMap<String, String> = [
        ("GITHUB_TOKEN", token.to_string()),
        ("GITHUB_API_URL", env.forge.api_url()),
        ("TB_AUTHOR_NAME", "Ada Reviewer".to_string()),
        ("TB_AUTHOR_EMAIL", "ada@example.com".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let overrides = Overrides {
        home: Some(env.home.path().to_path_buf()),
        ..Default::default()
    };
    Config::load_from(&overrides, &move |k| vars.get(k).cloned(), None, None).unwrap()
}

/// Runs the pipeline in review mode; `before_approve` sees the run id; approves with `approve`.
async fn run_reviewed(
    env: &Env,
    before_approve: impl FnOnce(&str),
    approve: Command,
) -> (Outcome, Vec<Event>) {
    run_reviewed_with(env, library_config(env), before_approve, approve).await
}

async fn run_reviewed_with(
    env: &Env,
    config: Config,
    before_approve: impl FnOnce(&str),
    approve: Command,
) -> (Outcome, Vec<Event>) {
    let provider = ScriptedProvider::from_file(&env.default_script()).unwrap();
    let request = RunRequest {
        repo: env.repo_url(),
        prompt: PROMPT.into(),
        base: None,
        gate: Gate::Interactive,
        keep_workspace: false,
        provider: Some(Arc::new(provider)),
        publish: Default::default(),
    };
    let mut p = pipeline::start(request, Arc::new(config), env.cwd.path().to_path_buf());
    let mut before = Some(before_approve);
    let mut approve = Some(approve);
    let mut events = vec![];
    while let Some(e) = p.events.recv().await {
        if let Event::Status {
            stage: Stage::Review,
            message,
            ..
        } = &e
            && message.starts_with("review the diff")
        {
            if let Some(f) = before.take() {
                f(&p.run_id);
            }
            // A failed publish goes back to review; the second time round, reject (the run
            // then ends with the publish failure).
            let command = approve.take().unwrap_or(Command::Reject);
            p.commands.send(command).await.unwrap();
        }
        events.push(e);
    }
    (p.task.await.unwrap(), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pushed_branch_holds_exactly_the_approved_hunks_and_the_pr_is_right() {
    let env = Env::new(true).await;
    let approve = Command::Approve {
        selection: Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("calc.py".into(), 1)],
            ..Default::default()
        },
        title: Some("Reject zero divisors in divide()".into()),
        body: None,
        draft: true,
    };
    let (outcome, events) = run_reviewed(&env, |_| {}, approve).await;
    assert_eq!(outcome, Outcome::Published, "{events:#?}");

    let branches = env.tb_branches(OWNER);
    assert_eq!(branches.len(), 1, "{branches:?}");
    let branch = &branches[0];
    assert!(
        branch.starts_with("tb/make-divide-reject-a-zero-divisor-"),
        "{branch}"
    );
    // Exactly the approved change: the first hunk in, the deselected second hunk out.
    let expected = calc_py().replace(
        "def divide(a, b):\n",
        "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n",
    );
    let pushed = env.git.show(OWNER, REPO, &format!("{branch}:calc.py"));
    assert_eq!(format!("{pushed}\n"), expected);
    assert!(!pushed.contains("product of a and b"));
    assert_eq!(
        env.git.show(OWNER, REPO, &format!("{branch}:NOTES.md")),
        "divide rejects zero"
    );
    let repo = env.git.path(OWNER, REPO);
    let log = git_http::git(&repo, &["log", "-1", "--format=%P|%an <%ae>|%s", branch]);
    assert_eq!(
        log,
        format!(
            "{}|Ada Reviewer <ada@example.com>|Reject zero divisors in divide()",
            env.base_commit
        )
    );
    assert_eq!(
        git_http::git(&repo, &["rev-parse", "main"]),
        env.base_commit,
        "main is untouched"
    );

    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(pr.repo, "octo/calc");
    assert_eq!(pr.base, "main");
    assert_eq!(pr.head_label, format!("octo:{branch}"));
    assert_eq!(pr.title, "Reject zero divisors in divide()");
    assert!(pr.draft);
    for want in [
        "Made divide reject a zero divisor.",
        "`calc.py` +2 −0",
        "`NOTES.md` +1 −0",
        "`python3 -c 'print(1)'` → exit 0",
        "`exit 3` → exit 3",
        "> Make divide reject a zero divisor",
        "Made with tiny-backspace",
    ] {
        assert!(pr.body.contains(want), "missing {want:?} in:\n{}", pr.body);
    }

    let pr_event = events
        .iter()
        .find_map(|e| match e {
            Event::Pr {
                url,
                number,
                branch,
                base,
                ..
            } => Some((url.clone(), *number, branch.clone(), base.clone())),
            _ => None,
        })
        .expect("a PR event");
    assert_eq!(pr_event.1, 1);
    assert_eq!(&pr_event.2, branch);
    assert_eq!(pr_event.3, "main");
    match events.last().unwrap() {
        Event::Done {
            pr_url, branch: b, ..
        } => {
            assert_eq!(pr_url.as_deref(), Some(pr_event.0.as_str()));
            assert_eq!(b.as_deref(), Some(branch.as_str()));
        }
        other => panic!("last event {other:?}"),
    }
    // The run folder holds the approved patch and the PR text, and records the result.
    let run = std::fs::read_dir(env.runs_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let approved = std::fs::read_to_string(run.join("approved.diff")).unwrap();
    assert!(approved.contains("raise ValueError") && !approved.contains("product of a and b"));
    let full = std::fs::read_to_string(run.join("patch.diff")).unwrap();
    assert!(full.contains("product of a and b"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("pr.json")).unwrap()).unwrap();
    assert_eq!(record["pr_url"], pr_event.0.as_str());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "published");
    assert_eq!(meta["pr_url"], pr_event.0.as_str());
    assert_eq!(meta["branch"], branch.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_reaches_the_agent() {
    let env = Env::new(true).await;
    // Places a careless sandbox would leak from.
    let home = env.user_home.path();
    std::fs::write(
        home.join(".git-credentials"),
        format!("https://x-access-token:{}@github.com\n", env.token),
    )
    .unwrap();
    std::fs::create_dir_all(home.join(".config/gh")).unwrap();
    std::fs::write(
        home.join(".config/gh/hosts.yml"),
        format!(
            "github.com:\n    oauth_token: {}\n    user: me\n",
            env.token
        ),
    )
    .unwrap();
    let script = env.script(serde_json::json!([
        {"tool_calls": [
            {"name": "bash", "input": {"command": "env"}},
            {"name": "bash", "input": {"command": "tr '\\0' '\\n' < /proc/self/environ"}},
            {"name": "bash", "input": {"command": "cat /proc/1/environ | tr '\\0' '\\n'"}},
            {"name": "bash", "input": {"command": "git config -l"}},
            {"name": "bash", "input": {"command": "cat ~/.git-credentials"}},
            {"name": "bash", "input": {"command": "cat ~/.config/gh/hosts.yml"}},
            {"name": "bash", "input": {"command": format!("cat {}/.git-credentials", home.display())}},
            {"name": "edit_file", "input": {"path": "README.md", "old_str": "# calc\n", "new_str": "# calc\n\nA calculator.\n"}}
        ]},
        {"text": "Documented the calculator."}
    ]));
    let out = env.run_yes(Some(&script), &[]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let bash = out.of_type("Tool: Bash");
    assert_eq!(bash.len(), 7);
    // The commands really ran and printed things (an environment, git's answer).
    assert!(
        bash[0]["output"].as_str().unwrap().contains("PATH="),
        "{}",
        bash[0]
    );
    for e in &bash {
        assert!(
            !e["output"].as_str().unwrap().contains(&env.token),
            "leak in {e}"
        );
    }
    assert!(
        !out.stdout.contains(&env.token),
        "token in the event stream"
    );
    assert!(!out.stderr.contains(&env.token), "token on stderr");
    let files = all_files(env.home.path());
    assert!(files.iter().any(|(p, _)| p.ends_with("events.jsonl")));
    assert!(files.iter().any(|(p, _)| p.ends_with("tiny-backspace.log")));
    for (path, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(&env.token),
            "token in {}",
            path.display()
        );
    }
    // ...and yet publishing used it: the push authenticated with it, the PR exists.
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", env.token));
    assert!(
        env.git
            .auth_seen()
            .iter()
            .any(|h| h == &format!("Basic {expected}"))
    );
    assert_eq!(env.forge.pulls().len(), 1);
    assert_eq!(out.last()["type"], "Done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_push_access_the_branch_goes_to_a_fork() {
    let env = Env::new(false).await;
    // The user forked long ago; upstream has moved on since (the run's base is newer).
    env.git.fork_repo(OWNER, REPO, "me");
    env.git
        .commit_file(OWNER, REPO, "CHANGELOG.md", "- newer upstream work\n");
    let newer = env
        .git
        .commit_file(OWNER, REPO, "CHANGELOG.md", "- even newer upstream work\n");
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(env.tb_branches(OWNER).is_empty(), "nothing pushed upstream");
    let forked = env.tb_branches("me");
    assert_eq!(forked.len(), 1);
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].repo, "octo/calc");
    assert_eq!(pulls[0].head_label, format!("me:{}", forked[0]));
    assert_eq!(out.last()["branch"], forked[0].as_str());
    let fork = env.git.path("me", REPO);
    let parent = git_http::git(&fork, &["rev-parse", &format!("{}^", forked[0])]);
    assert_eq!(parent, newer, "built on the current upstream base");
    assert!(
        out.of_type("Status")
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("forking it to me"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_push_access_and_forking_off_it_fails_before_the_agent() {
    let env = Env::new(false).await;
    let out = env.run_yes(None, &[("TB_FORK", "false")]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let err = out.last();
    assert_eq!(err["type"], "Error");
    assert_eq!(err["stage"], "validate");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot push to octo/calc") && msg.contains("fork"),
        "{msg}"
    );
    assert!(out.of_type("Tool: Bash").is_empty() && out.of_type("Tool: Read").is_empty());
    assert!(env.forge.requests().iter().all(|(m, _)| m == "GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_pr_for_the_same_head_is_reported_not_duplicated() {
    let env = Env::new(true).await;
    let approve = Command::Approve {
        selection: Selection::default(),
        title: None,
        body: None,
        draft: false,
    };
    let existing = std::sync::Mutex::new(None);
    let (outcome, events) = run_reviewed(
        &env,
        |run_id| {
            let branch =
                tiny_backspace::forge::text::branch_name("tb/", PROMPT, run_id, Some("main"));
            let n = env
                .forge
                .add_pull("octo/calc", &format!("octo:{branch}"), "main");
            *existing.lock().unwrap() = Some(n);
        },
        approve,
    )
    .await;
    assert_eq!(outcome, Outcome::Published);
    assert_eq!(env.forge.pulls().len(), 1, "no second PR");
    let number = existing.lock().unwrap().unwrap();
    let reported = events
        .iter()
        .any(|e| matches!(e, Event::Status { message, .. } if message.contains("already exists")));
    assert!(reported);
    match events.last().unwrap() {
        Event::Done { pr_url, .. } => {
            assert!(
                pr_url
                    .as_deref()
                    .unwrap()
                    .ends_with(&format!("/octo/calc/pull/{number}"))
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_come_from_gh_auth_token() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(true).await;
    let bin = env.cwd.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"auth token\" ] && echo {}\n",
            env.token
        ),
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env
        .run_yes(None, &[("GITHUB_TOKEN", ""), ("PATH", &path)])
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(env.forge.pulls().len(), 1);

    // And with no token anywhere, the error names every place a token can come from.
    // (PATH holds only bwrap and git: no gh, whatever this machine has installed.)
    let only_bwrap = env.cwd.path().join("only-bwrap");
    std::fs::create_dir_all(&only_bwrap).unwrap();
    for tool in ["bwrap", "git"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap();
        std::os::unix::fs::symlink(found, only_bwrap.join(tool)).unwrap();
    }
    let out = env
        .run_yes(
            None,
            &[("GITHUB_TOKEN", ""), ("PATH", only_bwrap.to_str().unwrap())],
        )
        .await;
    assert_eq!(out.code, 2);
    let msg = out.last()["message"].as_str().unwrap().to_string();
    for want in ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "gh auth"] {
        assert!(msg.contains(want), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_rate_limit_wait_stops_publishing_and_the_run_stays_publishable() {
    let env = Env::new(true).await;
    env.forge.fail_next(
        forge::Failure::new(
            axum::http::Method::POST,
            "/repos/octo/calc/pulls",
            429,
            serde_json::json!({"message": "You have exceeded a secondary rate limit."}),
        )
        .header("retry-after", "80"),
    );
    let provider = ScriptedProvider::from_file(&env.default_script()).unwrap();
    let request = RunRequest {
        repo: env.repo_url(),
        prompt: PROMPT.into(),
        base: None,
        gate: Gate::AutoApprove,
        keep_workspace: false,
        provider: Some(Arc::new(provider)),
        publish: Default::default(),
    };
    let mut p = pipeline::start(
        request,
        Arc::new(library_config(&env)),
        env.cwd.path().to_path_buf(),
    );
    let mut last = None;
    while let Some(e) = p.events.recv().await {
        if let Event::Status { message, .. } = &e
            && message.contains("waiting 80s")
        {
            p.commands.send(Command::Cancel).await.unwrap();
        }
        last = Some(e);
    }
    let outcome = p.task.await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Cancelled {
            stage: Stage::Publish
        }
    );
    assert!(matches!(last, Some(Event::Error { .. })));
    assert!(env.forge.pulls().is_empty());

    let out = env.publish(&p.run_id, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(env.forge.pulls().len(), 1);
    assert_eq!(env.tb_branches(OWNER).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fork_that_cannot_be_synced_still_gets_the_branch() {
    let env = Env::new(false).await;
    env.git.fork_repo(OWNER, REPO, "me");
    env.git.commit_file(OWNER, REPO, "CHANGELOG.md", "- one\n");
    let newer = env.git.commit_file(OWNER, REPO, "CHANGELOG.md", "- two\n");
    env.forge.fail_next(forge::Failure::new(
        axum::http::Method::POST,
        "/merge-upstream",
        409,
        serde_json::json!({"message": "There are merge conflicts", "documentation_url": "https://docs.github.com/rest/branches/branches#sync-a-fork-branch-with-the-upstream-repository"}),
    ));
    let out = env.run_yes(None, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let statuses: Vec<&str> = out
        .of_type("Status")
        .into_iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|m| m.contains("could not sync the fork"))
    );
    assert!(
        statuses
            .iter()
            .any(|m| m.contains("fetching it and pushing again"))
    );
    let forked = env.tb_branches("me");
    assert_eq!(forked.len(), 1);
    let fork = env.git.path("me", REPO);
    let parent = git_http::git(&fork, &["rev-parse", &format!("{}^", forked[0])]);
    assert_eq!(parent, newer);
    assert_eq!(env.forge.pulls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_review_mode_a_bad_token_warns_first_and_the_run_stays_publishable() {
    let env = Env::new(true).await;
    let approve = Command::Approve {
        selection: Selection::default(),
        title: Some("Reject zero divisors".into()),
        body: Some("Custom body from the review dialog.".into()),
        draft: false,
    };
    let config = library_config_with_token(&env, "ghp_expired");
    let (outcome, events) = run_reviewed_with(&env, config, |_| {}, approve).await;
    let warned = events.iter().any(|e| {
        matches!(e, Event::Status { stage: Stage::Validate, message, .. }
            if message.starts_with("WARNING: publishing will fail") && message.contains("401"))
    });
    assert!(warned, "{events:#?}");
    assert!(
        events.iter().any(|e| matches!(e, Event::ToolBash { .. })),
        "the agent ran"
    );
    let Outcome::Failed {
        stage: Stage::Publish,
        message,
        retryable: false,
        code: ErrorCode::PublishAuth,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(
        message.contains("401") && message.contains("tiny-backspace publish"),
        "{message}"
    );
    let run_id = events
        .iter()
        .find_map(|e| match e {
            Event::Status { run_id, .. } => Some(run_id.clone()),
            _ => None,
        })
        .unwrap();

    // With a good token, the saved approval (title and body included) is published.
    let out = env.publish(&run_id, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].title, "Reject zero divisors");
    assert_eq!(pulls[0].body, "Custom body from the review dialog.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_pr_run_can_be_published_later_as_a_whole() {
    let env = Env::new(true).await;
    let out = env.run_no_pr().await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.last()["pr_url"].is_null());
    assert!(env.forge.pulls().is_empty() && env.tb_branches(OWNER).is_empty());
    // --no-pr does no pre-flight: the API was not called.
    assert!(env.forge.requests().is_empty());

    let published = env
        .publish(
            &out.run_id(),
            &["--title", "Divide by zero guard", "--draft"],
        )
        .await;
    assert_eq!(published.code, 0, "{}", published.stdout);
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].title, "Divide by zero guard");
    assert!(pulls[0].draft);
    let branch = env.tb_branches(OWNER).pop().unwrap();
    let content = env.git.show(OWNER, REPO, &format!("{branch}:calc.py"));
    assert!(content.contains("raise ValueError") && content.contains("product of a and b"));
    assert_eq!(published.of_type("PR").len(), 1);
    assert_eq!(published.last()["type"], "Done");
}
