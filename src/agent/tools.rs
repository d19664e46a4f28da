//! The tools of the agent's contract (the six of the design, and `update_plan`): their schemas and their host-side execution.
//!
//! Invariants: tool names and inputs are those of the design contract (inputs are only ever added:
//! `edit_file.edits`, `search.context`); file tools go through [`WorkspaceFs`]; `bash` and the
//! post-edit syntax checks go through the run's [`Sandbox`] and nowhere else; every tool that ran
//! returns the events that report it, and a refused call returns an error the model can act on.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::check;
use super::edit;
use super::fs::{ToolError, WorkspaceFs, tool_err};
use super::input::{check_input, edit_specs, expected_input, opt_str, opt_u64, str_arg};
use super::search;
use super::stream::OutputStream;
use crate::event::Event;
use crate::llm::ToolSpec;
use crate::sandbox::{ExecRequest, Sandbox, SandboxSettings};

const READ_DEFAULT_LINES: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;
const LIST_CAP: usize = 1000;
/// Lines of the edited region shown after an edit.
const SNIPPET_LINES: usize = 60;

/// The tool schemas sent to the model.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "read_file",
            description: "Read a text file of the repository. Returns numbered lines (`N\\tline`). \
                Use offset (1-based line) and limit to page through long files.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Path relative to the repository root"},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to return (1-based)"},
                "limit": {"type": "integer", "minimum": 1, "description": "How many lines to return (default 2000)"}
            }, "required": ["path"]}),
        },
        ToolSpec {
            name: "list_files",
            description: "List files below a directory (default: the repository root), respecting \
                .gitignore. Optionally filter with a glob pattern such as `**/*.rs`.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Directory relative to the repository root"},
                "pattern": {"type": "string", "description": "Glob pattern, e.g. src/**/*.py"}
            }}),
        },
        ToolSpec {
            name: "search",
            description: "Search file contents with a regular expression (Rust regex syntax), \
                respecting .gitignore. Returns `path:line: text` for each match; with context, \
                the lines around it as `path-line- text`, groups separated by `--`.",
            input_schema: json!({"type": "object", "properties": {
                "pattern": {"type": "string", "description": "Regular expression"},
                "path": {"type": "string", "description": "Directory or file to search in"},
                "glob": {"type": "string", "description": "Only search files matching this glob, e.g. *.ts"},
                "context": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Lines shown before and after each match (default 0, at most 10)"}
            }, "required": ["pattern"]}),
        },
        ToolSpec {
            name: "edit_file",
            description: "Replace old_str with new_str in a file. old_str must match the file's text \
                exactly (whitespace included) and exactly once, unless replace_all is true. \
                An empty old_str creates a new file with new_str as its content. For several \
                changes to one file, give edits: [{old_str, new_str, replace_all?}, ...] instead; \
                they apply in order, all or none. Match lines as read_file shows them: a file \
                with CRLF line endings keeps them. When old_str is not found exactly, a match \
                ignoring trailing whitespace, a uniform indentation shift or typographic quotes \
                and dashes is used if it finds exactly one place. The result shows the edited \
                region with line numbers, and says if the file stopped parsing (Python, \
                JavaScript, shell, Go).",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "old_str": {"type": "string"},
                "new_str": {"type": "string"},
                "replace_all": {"type": "boolean"},
                "edits": {"type": "array", "description": "Several replacements, instead of old_str/new_str",
                    "items": {"type": "object", "properties": {
                        "old_str": {"type": "string"},
                        "new_str": {"type": "string"},
                        "replace_all": {"type": "boolean"}
                    }, "required": ["old_str", "new_str"]}}
            }, "required": ["path"]}),
        },
        ToolSpec {
            name: "write_file",
            description: "Create a file, or overwrite it entirely, with content.",
            input_schema: json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"}
            }, "required": ["path", "content"]}),
        },
        ToolSpec {
            name: "bash",
            description: "Run a shell command with bash at the repository root, in an isolated \
                sandbox (network off unless the user enabled it). Returns the exit code and the \
                combined stdout and stderr. Use it to build, run tests, and inspect with git.",
            input_schema: json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "timeout_secs": {"type": "integer", "minimum": 1, "description": "Wall-clock limit (default 120)"}
            }, "required": ["command"]}),
        },
        super::plan::spec(),
    ]
}

/// What a tool call produced: the text for the model and, when it ran, the events that report it
/// (one per edit for a multi-edit `edit_file`).
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub content: String,
    pub is_error: bool,
    pub events: Vec<Event>,
}

pub struct Toolbox {
    pub fs: WorkspaceFs,
    pub sandbox: Arc<dyn Sandbox>,
    pub sandbox_settings: SandboxSettings,
    pub run_id: String,
    /// Cap on what one tool result may send to the model.
    pub output_cap_chars: usize,
}

/// Keeps the head and tail of `text` within `max` characters, saying how much was cut.
pub fn cap_text(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let half = max / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(count - half).collect();
    format!("{head}\n[… {} characters cut …]\n{tail}", count - 2 * half)
}

impl Toolbox {
    pub async fn call(&self, name: &str, input: &Value, cancel: &CancellationToken) -> ToolOutcome {
        self.call_streaming(name, input, cancel, None).await
    }

    /// [`Toolbox::call`], with a `bash` command's output streamed to `stream` as it runs.
    pub async fn call_streaming(
        &self,
        name: &str,
        input: &Value,
        cancel: &CancellationToken,
        stream: Option<OutputStream<'_>>,
    ) -> ToolOutcome {
        let result = match check_input(name, input) {
            Err(e) => {
                let hint = expected_input(name).unwrap_or_default();
                tool_err(format!(
                    "not run: {e}. {hint}; send the call again with complete, valid JSON"
                ))
            }
            Ok(()) => self.dispatch(name, input, cancel, stream).await,
        };
        match result {
            Ok((content, events)) => ToolOutcome {
                content: cap_text(&content, self.output_cap_chars),
                is_error: false,
                events,
            },
            Err(ToolError(message)) => ToolOutcome {
                content: cap_text(&message, self.output_cap_chars),
                is_error: true,
                events: vec![Event::ToolError {
                    run_id: self.run_id.clone(),
                    tool: name.to_string(),
                    message,
                }],
            },
        }
    }

    async fn dispatch(
        &self,
        name: &str,
        input: &Value,
        cancel: &CancellationToken,
        stream: Option<OutputStream<'_>>,
    ) -> Result<(String, Vec<Event>), ToolError> {
        let one = |r: Result<(String, Event), ToolError>| r.map(|(c, e)| (c, vec![e]));
        match name {
            "read_file" => one(self.read_file(input)),
            "list_files" => one(self.list_files(input)),
            "search" => one(search::run(self, input)),
            "edit_file" => self.edit_file(input, cancel).await,
            "write_file" => one(self.write_file(input)),
            "bash" => one(self.bash(input, cancel, stream).await),
            "update_plan" => one(super::plan::update(input, &self.run_id)),
            other => tool_err(format!(
                "there is no tool named '{other}'; the tools are read_file, list_files, search, \
                 edit_file, write_file, bash and update_plan"
            )),
        }
    }

    fn rid(&self) -> Option<String> {
        Some(self.run_id.clone())
    }

    fn read_file(&self, input: &Value) -> Result<(String, Event), ToolError> {
        let path = str_arg(input, "path")?;
        let text = self.fs.read_text(path)?;
        let offset = opt_u64(input, "offset").unwrap_or(1).max(1) as usize;
        let limit = opt_u64(input, "limit")
            .map(|l| l as usize)
            .unwrap_or(READ_DEFAULT_LINES)
            .max(1);
        let total = text.lines().count();
        if total > 0 && offset > total {
            return tool_err(format!(
                "'{path}' has {total} lines; offset {offset} is past the end"
            ));
        }
        // Whole lines only, within what one result may carry (room kept for the footer), so a
        // long file is paged instead of cut in the middle.
        let budget = self.output_cap_chars.saturating_sub(200).max(1);
        let mut out = String::new();
        let mut used = 0usize;
        let mut last = offset - 1;
        for (i, line) in text.lines().enumerate().skip(offset - 1).take(limit) {
            let line: String = if line.chars().count() > MAX_LINE_CHARS {
                format!(
                    "{}… [line cut]",
                    line.chars().take(MAX_LINE_CHARS).collect::<String>()
                )
            } else {
                line.to_string()
            };
            let entry = format!("{}\t{}\n", i + 1, line);
            let chars = entry.chars().count();
            if used + chars > budget && last >= offset {
                break;
            }
            used += chars;
            out.push_str(&entry);
            last = i + 1;
        }
        if total == 0 {
            out.push_str("(empty file)\n");
        } else if last < total {
            out.push_str(&format!(
                "[showing lines {offset}-{last} of {total}; continue at offset {}]\n",
                last + 1
            ));
        }
        Ok((
            out,
            Event::ToolRead {
                filepath: path.to_string(),
                run_id: self.rid(),
            },
        ))
    }

    async fn edit_file(
        &self,
        input: &Value,
        cancel: &CancellationToken,
    ) -> Result<(String, Vec<Event>), ToolError> {
        let path = str_arg(input, "path")?;
        let edits = edit_specs(input)?;
        let events: Vec<Event> = edits
            .iter()
            .map(|e| Event::ToolEdit {
                filepath: path.to_string(),
                old_str: e.old_str.clone(),
                new_str: e.new_str.clone(),
                run_id: self.rid(),
            })
            .collect();
        if let [single] = edits.as_slice()
            && single.old_str.is_empty()
        {
            if self.fs.exists(path)? && !self.fs.read_text(path)?.is_empty() {
                return tool_err(format!(
                    "'{path}' already exists; give old_str to edit it, or use write_file to replace it"
                ));
            }
            self.fs.write_text(path, &single.new_str)?;
            let mut out = format!("Created {path} ({} lines)", single.new_str.lines().count());
            out.push_str(&self.syntax_note(path, None, cancel).await?);
            return Ok((out, events));
        }
        let original = self.fs.read_text(path)?;
        let applied = edit::apply_all(path, &original, &edits).map_err(ToolError)?;
        self.fs.write_text(path, &applied.text)?;
        let mut out = format!(
            "Edited {path} ({} edit{}{}{}). The edited region now reads:\n{}",
            edits.len(),
            if edits.len() == 1 { "" } else { "s" },
            if applied.notes.is_empty() { "" } else { "; " },
            applied.notes.join("; "),
            edit::snippet(&original, &applied.text, SNIPPET_LINES)
        );
        out.push_str(
            &self
                .syntax_note(path, Some((&original, &applied.text)), cancel)
                .await?,
        );
        Ok((out, events))
    }

    /// A note when the file no longer parses and did parse before the edit (`versions`: the text
    /// before and after; `None` for a new file). The file holds the new text when this returns.
    async fn syntax_note(
        &self,
        path: &str,
        versions: Option<(&str, &str)>,
        cancel: &CancellationToken,
    ) -> Result<String, ToolError> {
        let sandbox = self.sandbox.as_ref();
        let settings = &self.sandbox_settings;
        let Some((program, error)) = check::syntax_error(sandbox, settings, path, cancel).await
        else {
            return Ok(String::new());
        };
        if let Some((before, after)) = versions {
            // Checked against the file as it was: an error already there is not the edit's.
            self.fs.write_text(path, before)?;
            let earlier = check::syntax_error(sandbox, settings, path, cancel).await;
            self.fs.write_text(path, after)?;
            if earlier.is_some() {
                return Ok(String::new());
            }
        }
        Ok(format!(
            "\nWarning: after this change the file no longer parses ({program}):\n{error}\nFix it \
             before going on."
        ))
    }

    fn write_file(&self, input: &Value) -> Result<(String, Event), ToolError> {
        let path = str_arg(input, "path")?;
        let content = str_arg(input, "content")?;
        let existed = self.fs.exists(path)?;
        // Overwriting a CRLF file with `\n` lines (as read_file shows them) keeps its endings.
        let crlf = existed
            && !content.contains('\r')
            && self.fs.read_text(path).is_ok_and(|t| edit::is_crlf(&t));
        if crlf {
            self.fs.write_text(path, &content.replace('\n', "\r\n"))?;
        } else {
            self.fs.write_text(path, content)?;
        }
        let verb = if existed { "Overwrote" } else { "Created" };
        Ok((
            format!("{verb} {path} ({} lines)", content.lines().count()),
            Event::ToolEdit {
                filepath: path.to_string(),
                old_str: String::new(),
                new_str: content.to_string(),
                run_id: self.rid(),
            },
        ))
    }

    pub(super) fn walker(
        &self,
        path: Option<&str>,
        glob: Option<&str>,
    ) -> Result<(std::path::PathBuf, ignore::Walk), ToolError> {
        let (_, abs) = self.fs.dir_path(path)?;
        let mut builder = crate::git::worktree_walker(&abs);
        builder.sort_by_file_name(|a, b| a.cmp(b));
        if let Some(g) = glob {
            let mut ob = ignore::overrides::OverrideBuilder::new(self.fs.root_path());
            ob.add(g)
                .map_err(|e| ToolError(format!("invalid glob '{g}': {e}")))?;
            let ov = ob
                .build()
                .map_err(|e| ToolError(format!("invalid glob '{g}': {e}")))?;
            builder.overrides(ov);
        }
        Ok((abs, builder.build()))
    }

    pub(super) fn relative_display(&self, p: &std::path::Path) -> Option<String> {
        p.strip_prefix(self.fs.root_path())
            .ok()
            .map(|r| r.to_string_lossy().into_owned())
    }

    fn list_files(&self, input: &Value) -> Result<(String, Event), ToolError> {
        let path = opt_str(input, "path");
        let pattern = opt_str(input, "pattern");
        let (_, walk) = self.walker(path, pattern)?;
        let mut entries = Vec::new();
        let mut total = 0usize;
        for entry in walk.flatten() {
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                continue;
            }
            let Some(rel) = self.relative_display(entry.path()) else {
                continue;
            };
            total += 1;
            if entries.len() < LIST_CAP {
                let link = entry.path_is_symlink();
                entries.push(if link {
                    format!("{rel} (symlink)")
                } else {
                    rel
                });
            }
        }
        let mut out = entries.join("\n");
        if total > entries.len() {
            out.push_str(&format!(
                "\n[… {} more files; narrow with path or pattern]",
                total - entries.len()
            ));
        }
        if total == 0 {
            out = "(no files)".into();
        }
        Ok((
            out,
            Event::ToolList {
                run_id: self.run_id.clone(),
                path: path.unwrap_or(".").to_string(),
                pattern: pattern.map(str::to_string),
                entries: total as u64,
            },
        ))
    }

    async fn bash(
        &self,
        input: &Value,
        cancel: &CancellationToken,
        stream: Option<OutputStream<'_>>,
    ) -> Result<(String, Event), ToolError> {
        let command = str_arg(input, "command")?;
        if command.trim().is_empty() {
            return tool_err("the command is empty");
        }
        let timeout =
            crate::sandbox::clamp_timeout(&self.sandbox_settings, opt_u64(input, "timeout_secs"));
        let request = ExecRequest {
            command: command.to_string(),
            timeout,
        };
        let out = super::stream::run(stream, self.sandbox.exec(&request, cancel))
            .await
            .map_err(|e| ToolError(format!("the command could not be started: {e}")))?;
        let note = out.terminated.map(|t| t.describe(timeout));
        let mut for_model = cap_text(&out.output, self.output_cap_chars);
        if let Some(n) = &note {
            for_model.push_str(&format!("\n[{n}]"));
        }
        let content = format!("exit code: {}\n{}", out.exit_code, for_model);
        Ok((
            content,
            Event::ToolBash {
                command: command.to_string(),
                output: for_model,
                exit_code: out.exit_code,
                run_id: self.rid(),
                duration_ms: out.duration.as_millis() as u64,
                terminated: note,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_text_keeps_head_and_tail() {
        let s: String = (0..100)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let c = cap_text(&s, 20);
        assert!(c.starts_with(&s[..10]));
        assert!(c.ends_with(&s[90..]));
        assert!(c.contains("80 characters cut"));
        assert_eq!(cap_text("short", 20), "short");
    }

    #[test]
    fn tool_names_match_the_contract() {
        let names: Vec<_> = specs().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "read_file",
                "list_files",
                "search",
                "edit_file",
                "write_file",
                "bash",
                "update_plan"
            ]
        );
    }
}
