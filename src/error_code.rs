//! The stable, machine-readable reason a run failed: the `code` of an `Error` event.
//!
//! Why: clients (the TUI, `serve`'s HTTP answers, scripts reading `run --json`) branch on this, not
//! on English message text, which may change. Invariants: codes are snake_case on the wire, may be
//! added but never renamed or reused, and are derived from typed errors (each error enum's `code()`),
//! never from message text. An event without a code (older `events.jsonl`) reads as `internal`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bad input: repository address, prompt, base branch name, model or sandbox settings.
    InvalidInput,
    /// The repository could not be read (network, missing, or needs credentials).
    RepoUnreachable,
    /// The base branch does not exist in the repository.
    BaseNotFound,
    /// The sandbox could not be set up.
    SandboxUnavailable,
    /// The setup command (`--setup`, `.tiny-backspace/setup.sh`) failed or ran out of time.
    SetupFailed,
    /// The model provider refused the credentials (401/403).
    ModelAuth,
    /// The model provider refused or could not understand a request.
    ModelRequest,
    /// The model could not be reached or kept failing after its retries.
    ModelUnavailable,
    /// The agent ran out of its turn, token or time budget.
    ModelBudget,
    /// The agent stopped for another reason.
    AgentFailed,
    /// The diff could not be computed or saved.
    DiffFailed,
    /// Publishing needs a (valid, authorized) token.
    PublishAuth,
    /// The forge refused the push or the pull request (permissions, validation, not found).
    PublishRejected,
    /// The branch to publish already exists with other commits.
    BranchTaken,
    /// The forge's rate limit is exhausted.
    RateLimited,
    /// Publishing failed for another reason (network, server error).
    PublishFailed,
    /// The user cancelled the run.
    Cancelled,
    /// The run was stopped from outside (a signal, or a `serve` limit).
    Stopped,
    /// A failure of tiny-backspace or its machine (disk, state directory); also old events.
    #[default]
    Internal,
}

impl ErrorCode {
    /// The wire name (`invalid_input`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::RepoUnreachable => "repo_unreachable",
            ErrorCode::BaseNotFound => "base_not_found",
            ErrorCode::SandboxUnavailable => "sandbox_unavailable",
            ErrorCode::SetupFailed => "setup_failed",
            ErrorCode::ModelAuth => "model_auth",
            ErrorCode::ModelRequest => "model_request",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::ModelBudget => "model_budget",
            ErrorCode::AgentFailed => "agent_failed",
            ErrorCode::DiffFailed => "diff_failed",
            ErrorCode::PublishAuth => "publish_auth",
            ErrorCode::PublishRejected => "publish_rejected",
            ErrorCode::BranchTaken => "branch_taken",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PublishFailed => "publish_failed",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Stopped => "stopped",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether the run was cancelled or stopped rather than failing. An event from before codes
    /// existed reads as `internal`: its message is all there is to go by.
    pub fn is_stop(self, message: &str) -> bool {
        match self {
            ErrorCode::Cancelled | ErrorCode::Stopped => true,
            ErrorCode::Internal => {
                message.starts_with("cancelled") || message.starts_with("stopped")
            }
            _ => false,
        }
    }

    /// Whether the user cancelled the run (an old event without a code: by its message).
    pub fn is_cancelled(self, message: &str) -> bool {
        self == ErrorCode::Cancelled
            || (self == ErrorCode::Internal && message.starts_with("cancelled"))
    }

    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::InvalidInput,
        ErrorCode::RepoUnreachable,
        ErrorCode::BaseNotFound,
        ErrorCode::SandboxUnavailable,
        ErrorCode::SetupFailed,
        ErrorCode::ModelAuth,
        ErrorCode::ModelRequest,
        ErrorCode::ModelUnavailable,
        ErrorCode::ModelBudget,
        ErrorCode::AgentFailed,
        ErrorCode::DiffFailed,
        ErrorCode::PublishAuth,
        ErrorCode::PublishRejected,
        ErrorCode::BranchTaken,
        ErrorCode::RateLimited,
        ErrorCode::PublishFailed,
        ErrorCode::Cancelled,
        ErrorCode::Stopped,
        ErrorCode::Internal,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }

    #[test]
    fn openapi_and_readme_list_every_code() {
        let api: serde_json::Value =
            serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
        let listed: Vec<&str> = api["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
        let readme = include_str!("../README.md");
        for code in all {
            assert!(readme.contains(&format!("`{code}`")), "README lacks {code}");
        }
    }

    #[test]
    fn cancelled_and_stopped_read_from_the_code_or_an_old_message() {
        assert!(ErrorCode::Stopped.is_stop("anything"));
        assert!(ErrorCode::Internal.is_stop("stopped: SIGHUP received"));
        assert!(!ErrorCode::ModelBudget.is_stop("stopped? no"));
        assert!(ErrorCode::Cancelled.is_cancelled(""));
        assert!(!ErrorCode::Stopped.is_cancelled("cancelled"));
        assert!(ErrorCode::Internal.is_cancelled("cancelled"));
    }
}
