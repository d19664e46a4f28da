//! The self-review turn: the first time a run that changed files answers without a tool call, the
//! model is shown what it changed and a short checklist, and its next text-only answer ends the
//! run.
//!
//! Invariants: the changes are computed on the host with the hardened host git (never in the
//! sandbox, where `.git` is read-only and `git status` cannot refresh the index); a run with no
//! changes, or whose change listing fails, ends at once as without the review; the review happens
//! at most once per agent run.

use async_trait::async_trait;

use crate::git::HostRepo;

/// Lines of `git status` / `git diff --stat` shown to the model.
const MAX_LINES: usize = 80;

/// What the work changed, for the review note.
#[async_trait]
pub trait WorkChanges: Send + Sync {
    /// `git status --short` and `git diff --stat` of the work tree, or `None` when nothing changed
    /// (or the listing failed: the run then ends as it would without a review).
    async fn changes(&self) -> Option<String>;
}

/// The work tree of a cloned repository, listed with the host's hardened git.
pub struct HostChanges<'a> {
    pub repo: &'a HostRepo,
    /// The commit the work started from (`None` in an empty repository).
    pub base: Option<&'a str>,
}

#[async_trait]
impl WorkChanges for HostChanges<'_> {
    async fn changes(&self) -> Option<String> {
        let status = self
            .repo
            .run(&["status", "--short", "--untracked-files=all"])
            .await
            .ok()?;
        if status.trim().is_empty() {
            return None;
        }
        let stat = match self.base {
            Some(base) => self
                .repo
                .run(&["diff", "--stat", base, "--"])
                .await
                .unwrap_or_default(),
            None => String::new(),
        };
        Some(format!(
            "$ git status --short\n{}$ git diff --stat\n{}",
            first_lines(&status),
            first_lines(if stat.trim().is_empty() {
                "(no changes to tracked files)\n"
            } else {
                &stat
            })
        ))
    }
}

fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: String = lines
        .iter()
        .take(MAX_LINES)
        .map(|l| format!("{l}\n"))
        .collect();
    if lines.len() > MAX_LINES {
        out.push_str(&format!("[… {} more lines]\n", lines.len() - MAX_LINES));
    }
    out
}

/// The note that asks the model to review `changes` before finishing.
pub fn review_note(changes: &str) -> String {
    format!(
        "[tiny-backspace] Before you finish, review your work once. Your changes so far:\n\
         {changes}\n\
         Checklist:\n\
         - Did you rerun the tests (or build) after your last change, and did they pass?\n\
         - Are scratch, debug and reproduction files removed (nothing listed above that does not \
         belong in the pull request)?\n\
         - Does your summary say what changed and how you verified it?\n\
         Fix anything that is missing with tools. Then answer without any tool call: that answer \
         is the final pull request description (title line, blank line, what changed and how it \
         was verified) and ends the run."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_listings_are_capped() {
        let text: String = (0..100).map(|i| format!("?? f{i}\n")).collect();
        let out = first_lines(&text);
        assert_eq!(out.lines().count(), MAX_LINES + 1);
        assert!(out.ends_with("[… 20 more lines]\n"));
    }

    #[test]
    fn the_note_carries_the_changes_and_the_checklist() {
        let note = review_note(" M calc.py\n");
        assert!(note.contains(" M calc.py") && note.contains("rerun the tests"));
    }
}
