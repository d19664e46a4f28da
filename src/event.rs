//! The one event vocabulary every front-end consumes (TUI, `run --json`, `serve`).
//!
//! Invariants: the four challenge types (`Tool: Read`, `Tool: Edit`, `Tool: Bash`, `AI Message`) keep
//! their exact names and fields and are only ever emitted for tools that really ran. Fields may be
//! added, never renamed. Serialization is internally tagged by `"type"`.

use serde::{Deserialize, Serialize};

/// Pipeline stage names as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Validate,
    Clone,
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
            Stage::Agent => "agent",
            Stage::Diff => "diff",
            Stage::Review => "review",
            Stage::Publish => "publish",
            Stage::Cleanup => "cleanup",
        }
    }
}

/// One changed file in a `Diff` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, `copied`, `type-changed`.
    pub status: String,
    pub insertions: u64,
    pub deletions: u64,
    /// Binary files have no line counts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// The previous path for renames and copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
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
    Diff {
        run_id: String,
        files: Vec<FileStat>,
        patch: String,
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

impl Event {
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
            Event::Status { .. } => "Status",
            Event::Usage { .. } => "Usage",
            Event::Diff { .. } => "Diff",
            Event::Pr { .. } => "PR",
            Event::Error { .. } => "Error",
            Event::Done { .. } => "Done",
        }
    }

    pub fn to_json_line(&self) -> String {
        // Serializing these plain structs cannot fail; fall back to a valid JSON error object anyway.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"Error","stage":"agent","message":"event encoding failed: {e}","retryable":false}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rid() -> Option<String> {
        Some("r1".into())
    }

    #[test]
    fn challenge_types_have_exact_json() {
        let read = Event::ToolRead {
            filepath: "src/main.rs".into(),
            run_id: rid(),
        };
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            json!({"type": "Tool: Read", "filepath": "src/main.rs", "run_id": "r1"})
        );
        let edit = Event::ToolEdit {
            filepath: "a.py".into(),
            old_str: "x".into(),
            new_str: "y".into(),
            run_id: rid(),
        };
        assert_eq!(
            serde_json::to_value(&edit).unwrap(),
            json!({"type": "Tool: Edit", "filepath": "a.py", "old_str": "x", "new_str": "y", "run_id": "r1"})
        );
        let bash = Event::ToolBash {
            command: "echo hi".into(),
            output: "hi\n".into(),
            exit_code: 0,
            run_id: rid(),
            duration_ms: 3,
            terminated: None,
        };
        assert_eq!(
            serde_json::to_value(&bash).unwrap(),
            json!({"type": "Tool: Bash", "command": "echo hi", "output": "hi\n", "exit_code": 0,
                   "run_id": "r1", "duration_ms": 3})
        );
        let msg = Event::AiMessage {
            message: "done".into(),
            run_id: rid(),
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"type": "AI Message", "message": "done", "run_id": "r1"})
        );
    }

    #[test]
    fn challenge_types_parse_without_extra_fields() {
        let e: Event =
            serde_json::from_str(r#"{"type":"Tool: Read","filepath":"README.md"}"#).unwrap();
        assert_eq!(
            e,
            Event::ToolRead {
                filepath: "README.md".into(),
                run_id: None
            }
        );
        let e: Event = serde_json::from_str(
            r#"{"type":"Tool: Bash","command":"ls","output":"","exit_code":2}"#,
        )
        .unwrap();
        assert_eq!(e.type_name(), "Tool: Bash");
    }

    #[test]
    fn every_event_round_trips_and_names_its_type() {
        let events = vec![
            Event::Status {
                run_id: "r".into(),
                stage: Stage::Clone,
                message: "m".into(),
            },
            Event::Diff {
                run_id: "r".into(),
                files: vec![],
                patch: String::new(),
            },
            Event::Pr {
                run_id: "r".into(),
                url: "u".into(),
                number: 1,
                branch: "b".into(),
                base: "main".into(),
            },
            Event::Error {
                run_id: "r".into(),
                stage: Stage::Agent,
                message: "m".into(),
                retryable: true,
            },
            Event::Done {
                run_id: "r".into(),
                pr_url: None,
                summary: "s".into(),
                branch: None,
                usage: UsageTotals::default(),
                duration_ms: 1,
                patch_path: None,
            },
        ];
        for e in events {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.type_name());
            let back: Event = serde_json::from_value(v).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn usage_cost_is_unknown_if_any_part_is() {
        let mut t = UsageTotals {
            cost_usd: Some(1.0),
            ..Default::default()
        };
        t.add(&UsageTotals {
            input_tokens: 5,
            cost_usd: Some(0.5),
            ..Default::default()
        });
        assert_eq!(t.cost_usd, Some(1.5));
        t.add(&UsageTotals {
            input_tokens: 5,
            cost_usd: None,
            ..Default::default()
        });
        assert_eq!(t.cost_usd, None);
        assert_eq!(t.input_tokens, 10);
    }
}
