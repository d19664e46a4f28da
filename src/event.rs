//! The one event vocabulary every front-end consumes (TUI, `run --json`, `serve`).
//!
//! Invariants: the four challenge types (`Tool: Read`, `Tool: Edit`, `Tool: Bash`, `AI Message`) keep
//! their exact names and fields and are only ever emitted for tools that really ran. Fields may be
//! added, never renamed. Serialization is internally tagged by `"type"`.

use serde::{Deserialize, Serialize};

pub use crate::agent::plan::{PlanStatus, PlanStep, plan_lines};
pub use crate::error_code::ErrorCode;

/// Pipeline stage names as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Validate,
    Clone,
    /// The setup command (`--setup`, `.tiny-backspace/setup.sh`) before the agent.
    Setup,
    Agent,
    Diff,
    Review,
    Publish,
    Cleanup,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Clone => "clone",
            Stage::Setup => "setup",
            Stage::Agent => "agent",
            Stage::Diff => "diff",
            Stage::Review => "review",
            Stage::Publish => "publish",
            Stage::Cleanup => "cleanup",
        }
    }
}

/// How a file changed, as git's raw listing says (`A`, `M`, `D`, `R`, `C`, `T`); on the wire the
/// lowercase words (`type-changed` for `T`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    Added,
    #[default]
    Modified,
    Deleted,
    Renamed,
    Copied,
    TypeChanged,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Added => "added",
            FileStatus::Modified => "modified",
            FileStatus::Deleted => "deleted",
            FileStatus::Renamed => "renamed",
            FileStatus::Copied => "copied",
            FileStatus::TypeChanged => "type-changed",
        }
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed file in a `Diff` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub path: String,
    pub status: FileStatus,
    pub insertions: u64,
    pub deletions: u64,
    /// Binary files have no line counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// The previous path for renames and copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Why this change is not in the patch (nor the pull request): `too_large` (over
    /// `diff.max_file_mb`), `patch_too_large` (left out to keep the patch under
    /// `diff.max_patch_mb`), `nested_repository` (a directory holding a `.git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<String>,
    /// What a reviewer should know about the file (codes such as `too_large`, `git_control`).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Token counts and cost, per model call (`Usage`) or summed (`Done`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// `None` when any contributing model has no known price: never invented.
    pub cost_usd: Option<f64>,
}

impl UsageTotals {
    pub fn add(&mut self, other: &UsageTotals) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    /// Tokens processed afresh: input, output and cache writes. Cache reads are left out: they
    /// repeat the same prefix every turn and cost a tenth, so counting them would end long,
    /// well-cached runs early for no saving.
    pub fn fresh_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_write_tokens
    }

    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "Tool: Read")]
    ToolRead {
        filepath: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    #[serde(rename = "Tool: Edit")]
    ToolEdit {
        filepath: String,
        old_str: String,
        new_str: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    #[serde(rename = "Tool: Bash")]
    ToolBash {
        command: String,
        output: String,
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        #[serde(default)]
        duration_ms: u64,
        /// Why the command did not finish normally (timeout, output limit, cancelled).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terminated: Option<String>,
    },
    #[serde(rename = "AI Message")]
    AiMessage {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    /// Streaming text from the model as it arrives; the complete text follows as `AI Message`.
    #[serde(rename = "AI Delta")]
    AiDelta { run_id: String, delta: String },
    #[serde(rename = "Tool: Search")]
    ToolSearch {
        run_id: String,
        pattern: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        matches: u64,
    },
    #[serde(rename = "Tool: List")]
    ToolList {
        run_id: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        entries: u64,
    },
    /// A tool call the model made that was refused or failed; the model saw `message`.
    #[serde(rename = "Tool: Error")]
    ToolError {
        run_id: String,
        tool: String,
        message: String,
    },
    /// The agent's whole plan as it last set it with `update_plan`.
    Plan {
        run_id: String,
        steps: Vec<PlanStep>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<String>,
    },
    Status {
        run_id: String,
        stage: Stage,
        message: String,
    },
    Usage {
        run_id: String,
        provider: String,
        model: String,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        cost_usd: Option<f64>,
    },
    /// A running command's output as it comes (chunks, sanitized, rate-limited and capped per
    /// call); `Tool: Bash` still carries the whole (capped) output when the command ends. Not
    /// stored in `events.jsonl` (so it has no SSE id): a transient view of a running call.
    Output {
        run_id: String,
        /// The tool call's id (the model's `tool_use` / `tool_call` id).
        id: String,
        /// `combined`: stdout and stderr interleaved as the sandbox merges them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        text: String,
    },
    /// The accumulated diff so far while the agent works (same hardened host git and limits as
    /// the diff stage, at most every few seconds, after edits and commands). Provisional and
    /// read-only: the final diff, the one reviewed and approved, is the `Diff` event. Not stored.
    #[serde(rename = "Live Diff")]
    LiveDiff {
        run_id: String,
        files: Vec<FileStat>,
        /// The patch as text (lossy where not UTF-8), cut to whole files past a few hundred KB.
        patch: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        patch_truncated: bool,
    },
    /// The work's changes. Build it with [`Event::diff`], which keeps the line a few MB at most.
    Diff {
        run_id: String,
        files: Vec<FileStat>,
        /// The patch as text: exact where it is UTF-8, lossy (U+FFFD) where it is not.
        patch: String,
        /// The exact bytes of `patch`, in base64, when they are not UTF-8 (else absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patch_base64: Option<String>,
        /// `patch` holds only the first files (whole ones); the whole patch is at `patch_path`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        patch_truncated: bool,
        /// The run folder's `patch.diff`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patch_path: Option<String>,
        /// `files` lists those left out and then as many of the others as fit.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        files_truncated: bool,
    },
    #[serde(rename = "PR")]
    Pr {
        run_id: String,
        url: String,
        number: u64,
        branch: String,
        base: String,
    },
    Error {
        run_id: String,
        stage: Stage,
        message: String,
        retryable: bool,
        /// Why, for clients to branch on (see [`ErrorCode`]); `internal` in old logs.
        #[serde(default)]
        code: ErrorCode,
    },
    Done {
        run_id: String,
        pr_url: Option<String>,
        summary: String,
        branch: Option<String>,
        usage: UsageTotals,
        duration_ms: u64,
        /// Where the final patch was saved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patch_path: Option<String>,
    },
}

/// The most a `Diff` event carries of its patch (text and base64, as JSON) and of its file list,
/// so that no event line is more than a few MB.
pub const DIFF_PATCH_INLINE_MAX: usize = 2 << 20;
pub const DIFF_FILES_INLINE_MAX: usize = 1 << 20;
/// The most of its patch a `Live Diff` carries: it is sent again after every change.
pub const LIVE_DIFF_INLINE_MAX: usize = 512 << 10;

/// The length of `s` as a JSON string (serde_json escapes `"`, `\` and control characters).
fn json_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

impl Event {
    /// A `Diff` event for `patch` (bytes): the text, its exact base64 twin when the bytes are
    /// not UTF-8, and — past [`DIFF_PATCH_INLINE_MAX`] — only the first whole files, with
    /// `patch_truncated` set and `patch_path` saying where the rest is.
    pub fn diff(
        run_id: &str,
        files: Vec<FileStat>,
        patch: &[u8],
        patch_path: Option<String>,
    ) -> Event {
        use base64::Engine as _;
        let cost = |bytes: &[u8]| match std::str::from_utf8(bytes) {
            Ok(text) => json_len(text),
            Err(_) => json_len(&String::from_utf8_lossy(bytes)) + bytes.len().div_ceil(3) * 4 + 20,
        };
        let mut end = patch.len();
        let mut patch_truncated = false;
        if cost(patch) > DIFF_PATCH_INLINE_MAX {
            patch_truncated = true;
            end = 0;
            let mut used = 0;
            for r in crate::diff::file_ranges(patch) {
                let c = cost(&patch[r.clone()]);
                if used + c > DIFF_PATCH_INLINE_MAX {
                    break;
                }
                used += c;
                end = r.end;
            }
        }
        let shown = &patch[..end];
        let patch_base64 = std::str::from_utf8(shown)
            .is_err()
            .then(|| base64::engine::general_purpose::STANDARD.encode(shown));
        let (files, files_truncated) = bound_files(files);
        Event::Diff {
            run_id: run_id.to_string(),
            files,
            patch: String::from_utf8_lossy(shown).into_owned(),
            patch_base64,
            patch_truncated,
            patch_path,
            files_truncated,
        }
    }

    /// The wire name of this event's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ToolRead { .. } => "Tool: Read",
            Event::ToolEdit { .. } => "Tool: Edit",
            Event::ToolBash { .. } => "Tool: Bash",
            Event::AiMessage { .. } => "AI Message",
            Event::AiDelta { .. } => "AI Delta",
            Event::ToolSearch { .. } => "Tool: Search",
            Event::ToolList { .. } => "Tool: List",
            Event::ToolError { .. } => "Tool: Error",
            Event::Plan { .. } => "Plan",
            Event::Status { .. } => "Status",
            Event::Usage { .. } => "Usage",
            Event::Output { .. } => "Output",
            Event::LiveDiff { .. } => "Live Diff",
            Event::Diff { .. } => "Diff",
            Event::Pr { .. } => "PR",
            Event::Error { .. } => "Error",
            Event::Done { .. } => "Done",
        }
    }

    /// Events that are a passing view of work in progress (`AI Delta`, `Output`, `Live Diff`):
    /// not stored in `events.jsonl`, sent without an SSE id, dropped rather than waited for when
    /// a consumer is behind; what they show arrives whole in a stored event.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Event::AiDelta { .. } | Event::Output { .. } | Event::LiveDiff { .. }
        )
    }

    /// A `Live Diff` event for `patch`: its first whole files up to [`LIVE_DIFF_INLINE_MAX`].
    pub fn live_diff(run_id: &str, files: Vec<FileStat>, patch: &[u8]) -> Event {
        let mut end = patch.len();
        let patch_truncated = end > LIVE_DIFF_INLINE_MAX;
        if patch_truncated {
            end = crate::diff::file_ranges(patch)
                .into_iter()
                .map(|r| r.end)
                .take_while(|&e| e <= LIVE_DIFF_INLINE_MAX)
                .last()
                .unwrap_or(0);
        }
        let (files, _) = bound_files(files);
        Event::LiveDiff {
            run_id: run_id.to_string(),
            files,
            patch: String::from_utf8_lossy(&patch[..end]).into_owned(),
            patch_truncated,
        }
    }

    pub fn to_json_line(&self) -> String {
        // Serializing these plain structs cannot fail; fall back to a valid JSON error object anyway.
        let line = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"Error","stage":"agent","message":"event encoding failed: {e}","retryable":false,"code":"internal"}}"#)
        });
        escape_for_terminals(line)
    }
}

/// serde escapes C0 controls but writes C1 controls (U+009B is a CSI to some terminals) and
/// invisible or bidi characters as they are: escaped as `\uXXXX` (same JSON value), so a JSON line
/// shown in a terminal can neither drive it nor hide text. They can only occur inside strings.
fn escape_for_terminals(line: String) -> String {
    let needs = |c: char| {
        ('\u{80}'..='\u{9F}').contains(&c) || crate::sanitize::is_hidden(c) || c == '\u{7F}'
    };
    if !line.chars().any(needs) {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if needs(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The files a `Diff` event lists: all, or — past [`DIFF_FILES_INLINE_MAX`] — those left out
/// and then as many others as fit, in their order.
fn bound_files(files: Vec<FileStat>) -> (Vec<FileStat>, bool) {
    let cost = |f: &FileStat| serde_json::to_string(f).map_or(0, |s| s.len()) + 1;
    if files.iter().map(cost).sum::<usize>() <= DIFF_FILES_INLINE_MAX {
        return (files, false);
    }
    let mut used: usize = files
        .iter()
        .filter(|f| f.left_out.is_some())
        .map(cost)
        .sum();
    let kept = files
        .into_iter()
        .filter(|f| {
            if f.left_out.is_some() {
                return true;
            }
            used += cost(f);
            used <= DIFF_FILES_INLINE_MAX
        })
        .collect();
    (kept, true)
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
