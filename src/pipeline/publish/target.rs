//! The target-specific end of a publish: a branch created in a local repository, pushed to another
//! remote, or pushed to GitHub (directly or to a fork) with a pull request opened or found.
//!
//! Invariants: a branch that already exists is only accepted when it holds our commit (same tree on
//! the same base), never overwritten; an open pull request for the same head is reported instead of
//! a second one; the request-pull summary lists only the files of the approved patch.

use tokio_util::sync::CancellationToken;

use super::{PrRecord, Published};
use crate::config::Config;
use crate::emit::Emitter;
use crate::event::{Event, Stage};
use crate::forge::github::GitHub;
use crate::forge::{self, ForgeError, Plan, Target, text};
use crate::git::GitError;
use crate::git::publish::{self as gitpub, Prepared, Remote};

pub(super) fn push_error(e: GitError, remote: &str) -> ForgeError {
    let network = e.is_network_failure();
    match e {
        GitError::Failed { what, stderr } if what == "push" => {
            // Which problem it is, only git's stderr says: every push failure exits 128.
            let (auth, detail) = if stderr.contains("could not read Username") {
                let hint = "the remote wants credentials; tiny-backspace sends the GitHub token \
                            only to the GitHub host, so push access here must not need one";
                (true, format!("{stderr} ({hint})"))
            } else if stderr.contains("401") || stderr.contains("Authentication failed") {
                (
                    true,
                    format!("{stderr} (the token was not accepted for pushing)"),
                )
            } else if stderr.contains("403") {
                let hint = "the token may not push here: it needs write access";
                (false, format!("{stderr} ({hint})"))
            } else {
                (false, stderr)
            };
            let remote = remote.to_string();
            if auth {
                ForgeError::PushAuth { remote, detail }
            } else {
                ForgeError::PushRejected { remote, detail }
            }
        }
        GitError::Failed { stderr, .. } if network => ForgeError::Network {
            what: remote.to_string(),
            detail: stderr,
        },
        other => ForgeError::Git(other),
    }
}

/// Pushes unless the branch already holds our commit; refuses to touch anyone else's branch.
async fn push_branch(
    prepared: &Prepared,
    remote: &Remote,
    branch: &str,
    emitter: &Emitter,
) -> Result<(), ForgeError> {
    let existing = gitpub::remote_branch(prepared, remote, branch)
        .await
        .map_err(|e| push_error(e, &remote.url))?;
    match existing {
        Some(sha) if gitpub::is_ours(prepared, Some(remote), &sha).await => {
            emitter
                .status(
                    Stage::Publish,
                    format!("branch {branch} already holds this commit; not pushing again"),
                )
                .await;
            Ok(())
        }
        Some(_) => Err(ForgeError::BranchTaken {
            branch: branch.to_string(),
            remote: remote.url.clone(),
        }),
        None => {
            emitter
                .status(
                    Stage::Publish,
                    format!("pushing {branch} to {}", remote.url),
                )
                .await;
            gitpub::push(prepared, remote, branch)
                .await
                .map_err(|e| push_error(e, &remote.url))
        }
    }
}

pub(super) async fn finish(
    record: &mut PrRecord,
    plan: &Plan,
    origin: &Remote,
    prepared: &Prepared,
    config: &Config,
    emitter: &Emitter,
    cancel: &CancellationToken,
) -> Result<Published, ForgeError> {
    let branch = record.branch.clone();
    let summary = |url: &str| {
        text::request_pull(&text::RequestPull {
            base_commit: &prepared.base_commit,
            base_subject: &prepared.base_line,
            url,
            branch: &branch,
            commit: &prepared.commit,
            subject: record.commit_message.lines().next().unwrap_or(""),
            message: &record.commit_message,
            author: record.author_name.as_deref().unwrap_or(""),
            files: &text::file_changes(
                &std::fs::read(prepared.git_dir.join("tb-approved.diff")).unwrap_or_default(),
            ),
        })
    };
    let r = match &plan.target {
        Target::Local { path } => {
            match gitpub::local_branch(path, &branch).await {
                Some(sha) if gitpub::is_ours(prepared, None, &sha).await => {}
                Some(_) => {
                    return Err(ForgeError::BranchTaken {
                        branch,
                        remote: path.display().to_string(),
                    });
                }
                None => gitpub::create_local_branch(path, prepared, &branch).await?,
            }
            record.pushed_to = Some(path.display().to_string());
            let text = summary(&path.display().to_string());
            emitter
                .status(
                    Stage::Publish,
                    format!("branch {branch} created in {}\n{text}", path.display()),
                )
                .await;
            return Ok(Published {
                branch,
                base: record.base.clone(),
                pr_url: None,
                pr_number: None,
                summary: Some(text),
            });
        }
        Target::Remote { url } => {
            push_branch(prepared, origin, &branch, emitter).await?;
            record.pushed_to = Some(url.clone());
            let text = summary(url);
            emitter
                .status(Stage::Publish, format!("branch {branch} pushed\n{text}"))
                .await;
            return Ok(Published {
                branch,
                base: record.base.clone(),
                pr_url: None,
                pr_number: None,
                summary: Some(text),
            });
        }
        Target::GitHub(r) => r,
    };
    let Some(token) = plan.token.as_ref() else {
        return Err(ForgeError::NoToken {
            host: r.git_host.clone(),
        });
    };
    let notify = super::notifier(emitter);
    let gh = GitHub::new(
        &r.api_url,
        token,
        config.publish.max_rate_limit_wait,
        &notify,
        cancel.clone(),
    )?;
    let (push_to, head) = if plan.fork {
        let login = plan.login.clone().unwrap_or_default();
        emitter
            .status(
                Stage::Publish,
                format!(
                    "no push access to {}/{}: forking it to {login}",
                    r.owner, r.name
                ),
            )
            .await;
        let fork = gh.fork(&r.owner, &r.name).await?;
        let url = forge::check_clone_url(&fork.clone_url, &r.git_host)?;
        // An old fork may lack the base commit; a shallow push on top of it would be refused.
        match gh
            .sync_fork(&fork.owner.login, &fork.name, &record.base)
            .await
        {
            Ok(()) => {
                emitter
                    .status(
                        Stage::Publish,
                        format!("fork {} is up to date with {}", fork.full_name, record.base),
                    )
                    .await
            }
            Err(ForgeError::Cancelled) => return Err(ForgeError::Cancelled),
            Err(e) => {
                emitter
                    .status(
                        Stage::Publish,
                        format!(
                            "could not sync the fork {} ({e}); pushing anyway",
                            fork.full_name
                        ),
                    )
                    .await
            }
        }
        let remote = Remote {
            url,
            allow: origin.allow.clone(),
            token: Some(token.clone()),
        };
        (remote, format!("{}:{branch}", fork.owner.login))
    } else {
        (origin.clone(), format!("{}:{branch}", r.owner))
    };
    record.head = Some(head.clone());
    match push_branch(prepared, &push_to, &branch, emitter).await {
        Err(ForgeError::PushRejected { detail, .. })
            if detail.contains("shallow update not allowed") =>
        {
            // The fork lacks the base's history (and could not be synced): send it along.
            emitter
                .status(
                    Stage::Publish,
                    "the fork lacks the base's history; fetching it and pushing again",
                )
                .await;
            gitpub::unshallow(prepared, origin, &record.base)
                .await
                .map_err(|e| push_error(e, &origin.url))?;
            push_branch(prepared, &push_to, &branch, emitter).await?;
        }
        other => other?,
    }
    record.pushed_to = Some(push_to.url.clone());

    let existing = gh.find_pull(&r.owner, &r.name, &head, &record.base).await?;
    let pull = match existing {
        Some(p) => {
            emitter
                .status(
                    Stage::Publish,
                    format!(
                        "an open pull request for {head} already exists: {}",
                        p.html_url
                    ),
                )
                .await;
            p
        }
        None => {
            emitter
                .status(
                    Stage::Publish,
                    format!("opening a pull request into {}", record.base),
                )
                .await;
            let created = gh
                .create_pull(
                    &r.owner,
                    &r.name,
                    &record.title,
                    &head,
                    &record.base,
                    &record.body,
                    record.draft,
                )
                .await;
            match created {
                Ok(p) => p,
                Err(ForgeError::Validation { message }) if message.contains("already exists") => gh
                    .find_pull(&r.owner, &r.name, &head, &record.base)
                    .await?
                    .ok_or(ForgeError::Validation { message })?,
                Err(e) => return Err(e),
            }
        }
    };
    record.pr_url = Some(pull.html_url.clone());
    record.pr_number = Some(pull.number);
    emitter
        .emit(Event::Pr {
            run_id: record.run_id.clone(),
            url: pull.html_url.clone(),
            number: pull.number,
            branch: branch.clone(),
            base: record.base.clone(),
        })
        .await;
    Ok(Published {
        branch,
        base: record.base.clone(),
        pr_url: Some(pull.html_url),
        pr_number: Some(pull.number),
        summary: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ErrorCode;

    fn push_failed(stderr: &str) -> ForgeError {
        let e = GitError::Failed {
            what: "push".into(),
            stderr: stderr.into(),
        };
        push_error(e, "origin")
    }

    #[test]
    fn a_push_refused_for_credentials_is_publish_auth_with_the_same_text() {
        let e = push_failed("fatal: Authentication failed for 'http://127.0.0.1/o/r.git/'");
        assert_eq!(e.code(), ErrorCode::PublishAuth);
        assert_eq!(
            e.to_string(),
            "the push to origin was rejected: fatal: Authentication failed for \
             'http://127.0.0.1/o/r.git/' (the token was not accepted for pushing)"
        );
        let e = push_failed(
            "fatal: could not read Username for 'https://h': terminal prompts disabled",
        );
        assert_eq!(e.code(), ErrorCode::PublishAuth);
        let e = push_failed("remote: Permission denied\nfatal: ... returned error: 403");
        assert_eq!(e.code(), ErrorCode::PublishRejected);
        let e = push_failed("! [remote rejected] main -> main (pre-receive hook declined)");
        assert_eq!(e.code(), ErrorCode::PublishRejected);
    }
}
