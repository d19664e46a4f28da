//! `pr.json` and `approved.diff`: what a publish will do, written to the run folder before any
//! network call and reused by every retry.
//!
//! Invariants: the record is created once per approval from the run's saved patch, meta and
//! events; a retry changes only what the user asks to change (title, body, draft), so the branch
//! name, commit message, author and commit time — hence the commit itself — stay the same.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ForgeError, Plan, text};
use crate::config::Config;
use crate::diff::Selection;
use crate::diff::selection::SavedSelection;
use crate::git::publish::{self as gitpub, Author};
use crate::repo::RepoSource;
use crate::store::{RunDir, RunMeta};

/// `pr.json`: what will be published, and how far an attempt got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrRecord {
    pub run_id: String,
    pub source: RepoSource,
    pub base: String,
    pub base_commit: String,
    pub branch: String,
    pub title: String,
    pub body: String,
    pub draft: bool,
    pub commit_message: String,
    /// Author and committer date (unix seconds), fixed so a retry makes the same commit.
    pub commit_time: i64,
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub author_email: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    /// Where the branch went (URL or path; never with credentials).
    #[serde(default)]
    pub pushed_to: Option<String>,
    /// `owner:branch` for GitHub pull requests.
    #[serde(default)]
    pub head: Option<String>,
    #[serde(default)]
    pub pr_url: Option<String>,
    #[serde(default)]
    pub pr_number: Option<u64>,
}

/// What the user approved; `None` fields keep the saved (or default) value. Built from the
/// pipeline's `PublishRequest` (front-ends never name this one).
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    /// `Some` starts from the run's patch again with this selection; `None` reuses `approved.diff`
    /// (or the whole patch if nothing was approved yet).
    pub selection: Option<Selection>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub draft: Option<bool>,
}

pub(crate) fn io(what: &str) -> impl Fn(std::io::Error) -> ForgeError + '_ {
    move |source| ForgeError::Io {
        what: what.to_string(),
        source,
    }
}

fn read_full_patch(run_dir: &RunDir, meta: &RunMeta) -> Result<Vec<u8>, ForgeError> {
    run_dir.read_patch().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ForgeError::Config(format!(
            "run {} has no saved patch (it ended before the diff); there is nothing to publish",
            meta.id
        )),
        _ => ForgeError::Io {
            what: "reading patch.diff".into(),
            source: e,
        },
    })
}

/// Loads (or first creates and saves) the approved patch and `pr.json`. A new selection is also
/// saved as the run's review selection (`selection.json`), so reopening the run shows it.
pub fn prepare_record(
    run_dir: &RunDir,
    meta: &RunMeta,
    config: &Config,
    request: &PublishRequest,
) -> Result<(PrRecord, Vec<u8>), ForgeError> {
    let saved = run_dir.pr_path().is_file() && run_dir.approved_patch_path().is_file();
    let (mut record, patch, scope) = if saved && request.selection.is_none() {
        let record: PrRecord = run_dir
            .read_json(&run_dir.pr_path())
            .map_err(io("reading pr.json"))?;
        let patch = run_dir
            .read_approved_patch()
            .map_err(io("reading approved.diff"))?;
        let full = read_full_patch(run_dir, meta).unwrap_or_else(|_| patch.clone());
        let scope = text::Scope::of(&full, &patch);
        (record, patch, scope)
    } else {
        let full = read_full_patch(run_dir, meta)?;
        let selection = request.selection.clone().unwrap_or_default();
        let patch = crate::diff::filter(&full, &selection);
        if request.selection.is_some()
            && let Err(e) = run_dir.write_selection(&SavedSelection::capture(&full, &selection))
        {
            tracing::warn!("could not save selection.json: {e}");
        }
        let scope = text::Scope::of(&full, &patch);
        let source = RepoSource::parse(&meta.repo, std::path::Path::new("/"))
            .map_err(|e| ForgeError::Config(e.to_string()))?;
        let (Some(base), Some(base_commit)) = (meta.base.clone(), meta.base_commit.clone()) else {
            return Err(ForgeError::Config(
                "the run has no base branch and commit (an empty repository?); there is nothing to \
                 open a pull request against"
                    .into(),
            ));
        };
        let summary = meta.summary.clone().unwrap_or_default();
        let title = text::default_title(&summary, &meta.prompt);
        let events = std::fs::read_to_string(run_dir.events_path()).unwrap_or_default();
        let body = text::pr_body(&text::BodyInput {
            summary: &summary,
            prompt: &meta.prompt,
            followups: &meta.followups,
            files: &text::file_changes(&patch),
            scope,
            commands: &text::commands_from_events(&events),
            model: &meta.model,
            run_id: &meta.id,
        });
        let record = PrRecord {
            run_id: meta.id.clone(),
            branch: text::branch_name(
                &config.publish.branch_prefix,
                &meta.prompt,
                &meta.id,
                Some(&base),
            ),
            source,
            base,
            base_commit,
            commit_message: String::new(),
            title,
            body,
            draft: config.publish.draft,
            commit_time: Utc::now().timestamp(),
            author_name: None,
            author_email: None,
            commit: None,
            pushed_to: None,
            head: None,
            pr_url: None,
            pr_number: None,
        };
        (record, patch, scope)
    };
    if patch.iter().all(u8::is_ascii_whitespace) {
        return Err(ForgeError::Config(
            "the approved selection is empty: every file and hunk was left out, so there is \
             nothing to publish"
                .into(),
        ));
    }
    if let Some(t) = request
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        record.title = t.to_string();
    }
    if let Some(b) = request.body.as_deref().filter(|b| !b.trim().is_empty()) {
        record.body = b.to_string();
    }
    if let Some(d) = request.draft {
        record.draft = d;
    }
    if record.commit.is_none() {
        record.commit_message = text::commit_message(
            &record.title,
            meta.summary.as_deref().unwrap_or(""),
            &meta.prompt,
            &meta.id,
            &scope,
        );
    }
    run_dir
        .write_approved_patch(&patch)
        .map_err(io("saving approved.diff"))?;
    run_dir
        .write_json(&run_dir.pr_path(), &record)
        .map_err(io("saving pr.json"))?;
    Ok((record, patch))
}

pub async fn author_for(config: &Config, plan: &Plan) -> Author {
    if let (Some(name), Some(email)) = (&config.publish.author_name, &config.publish.author_email) {
        return Author {
            name: name.clone(),
            email: email.clone(),
        };
    }
    if let Some(a) = gitpub::user_identity().await {
        return Author {
            name: config.publish.author_name.clone().unwrap_or(a.name),
            email: config.publish.author_email.clone().unwrap_or(a.email),
        };
    }
    let (name, email) = match (&plan.login, plan.user_id) {
        (Some(login), Some(id)) => (
            plan.user_name.clone().unwrap_or_else(|| login.clone()),
            format!("{id}+{login}@users.noreply.github.com"),
        ),
        _ => (
            "tiny-backspace".to_string(),
            "tiny-backspace@users.noreply.invalid".to_string(),
        ),
    };
    Author {
        name: config.publish.author_name.clone().unwrap_or(name),
        email: config.publish.author_email.clone().unwrap_or(email),
    }
}
