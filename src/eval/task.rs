//! The task file of `eval`: one JSON object per line, checked whole before anything runs.
//!
//! Invariants: every task that reaches the runner has a non-empty id (unique in the file), repo,
//! prompt and test command; hidden paths are relative, without `..` or option-like leading `-`,
//! so they can only ever name files inside the repository; a bad line is reported with its line
//! number and the field at fault, and no task runs.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

/// One task of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub id: String,
    /// A local path (relative to the tasks file's folder) or a URL, as `run --repo` takes.
    pub repo: String,
    /// Branch, tag or commit id to start from (default: the repository's HEAD).
    pub base: Option<String>,
    pub prompt: String,
    /// Shell command run in the grading sandbox before `test_cmd`.
    pub setup: Option<String>,
    pub test_cmd: String,
    /// Files or folders the agent must not see (the tests that grade it).
    pub hidden_paths: Vec<String>,
    /// Model for this task only (e.g. `scripted:sessions/fix.json`, relative to the tasks file).
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {field}: {problem}")]
pub struct TaskError {
    pub file: String,
    pub line: usize,
    /// The field at fault, or `(line)` when the line itself is not a JSON object.
    pub field: String,
    pub problem: String,
}

const FIELDS: &[&str] = &[
    "id",
    "repo",
    "base",
    "prompt",
    "setup",
    "test_cmd",
    "hidden_paths",
    "model",
];

/// Parses the whole file; blank lines and lines starting with `#` are skipped.
pub fn parse_tasks(path: &Path, text: &str) -> Result<Vec<Task>, TaskError> {
    let file = path.display().to_string();
    let mut tasks = Vec::new();
    let mut ids = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let err = |field: &str, problem: String| TaskError {
            file: file.clone(),
            line,
            field: field.to_string(),
            problem,
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|e| err("(line)", format!("not JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(err("(line)", "not a JSON object".into()));
        };
        let task = parse_one(&obj).map_err(|(field, problem)| err(field, problem))?;
        if !ids.insert(task.id.clone()) {
            return Err(err(
                "id",
                format!("`{}` is used by an earlier line", task.id),
            ));
        }
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(TaskError {
            file,
            line: 0,
            field: "(file)".into(),
            problem: "no tasks in the file".into(),
        });
    }
    Ok(tasks)
}

type FieldError = (&'static str, String);

fn parse_one(obj: &Map<String, Value>) -> Result<Task, FieldError> {
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let field: &'static str = "(line)";
        return Err((
            field,
            format!("unknown field `{unknown}` (known: {})", FIELDS.join(", ")),
        ));
    }
    let id = required(obj, "id")?;
    if id.chars().any(|c| c.is_control() || c == '/') {
        return Err(("id", "must not hold control characters or `/`".into()));
    }
    let base = optional(obj, "base")?;
    if let Some(b) = &base
        && (b.starts_with('-') || b.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(("base", format!("`{b}` is not a branch, tag or commit id")));
    }
    let hidden_paths = match obj.get("hidden_paths") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => hidden_path(s),
                _ => Err(("hidden_paths", "every entry must be a string".into())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(("hidden_paths", "must be an array of paths".into())),
    };
    Ok(Task {
        id,
        repo: required(obj, "repo")?,
        base,
        prompt: required(obj, "prompt")?,
        setup: optional(obj, "setup")?,
        test_cmd: required(obj, "test_cmd")?,
        hidden_paths,
        model: optional(obj, "model")?,
    })
}

fn required(obj: &Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    optional(obj, field)?.ok_or((field, "is required (a non-empty string)".into()))
}

fn optional(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err((field, "must not be empty".into())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((field, "must be a string".into())),
    }
}

/// A hidden path, normalised (`./a/b/` → `a/b`); anything that could leave the repository or be
/// read as an option is refused.
fn hidden_path(raw: &str) -> Result<String, FieldError> {
    let bad = |why: &str| Err(("hidden_paths", format!("`{raw}`: {why}")));
    if raw.starts_with('/') {
        return bad("must be relative to the repository root");
    }
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return bad("names the whole repository");
    }
    if parts.contains(&"..") {
        return bad("must not contain `..`");
    }
    if parts[0].starts_with('-') || parts.iter().any(|p| p.chars().any(char::is_control)) {
        return bad("must not start with `-` or hold control characters");
    }
    if parts[0] == ".git" {
        return bad("is git's own folder");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Task>, TaskError> {
        parse_tasks(Path::new("t.jsonl"), text)
    }

    #[test]
    fn a_full_line_and_a_minimal_one_parse() {
        let tasks = parse(concat!(
            r#"{"id":"a","repo":"r","base":"main","prompt":"p","setup":"s","test_cmd":"t","hidden_paths":["./tests/","x.py"],"model":"scripted:s.json"}"#,
            "\n\n# a comment\n",
            r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t"}"#
        ))
        .unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].hidden_paths, ["tests", "x.py"]);
        assert_eq!(tasks[0].model.as_deref(), Some("scripted:s.json"));
        assert_eq!(tasks[1].base, None);
        assert!(tasks[1].hidden_paths.is_empty());
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let ok = r#"{"id":"a","repo":"r","prompt":"p","test_cmd":"t"}"#;
        let cases = [
            (r#"{"id":"b","repo":"r","prompt":"p"}"#, "test_cmd"),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":3}"#,
                "test_cmd",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"  ","test_cmd":"t"}"#,
                "prompt",
            ),
            (r#"{"id":"a","repo":"r","prompt":"p","test_cmd":"t"}"#, "id"),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","hidden_paths":["../x"]}"#,
                "hidden_paths",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","hidden_paths":["/etc"]}"#,
                "hidden_paths",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","hidden_paths":"x"}"#,
                "hidden_paths",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","hidden_paths":[".git/config"]}"#,
                "hidden_paths",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","base":"--upload-pack=x"}"#,
                "base",
            ),
            (
                r#"{"id":"b","repo":"r","prompt":"p","test_cmd":"t","tests":"x"}"#,
                "(line)",
            ),
            ("[1,2]", "(line)"),
            ("{nope", "(line)"),
        ];
        for (line, field) in cases {
            let e = parse(&format!("{ok}\n{line}\n")).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (2, field), "{line}: {e}");
            assert!(e.to_string().starts_with("t.jsonl line 2: "), "{e}");
        }
        assert_eq!(parse("\n# nothing\n").unwrap_err().field, "(file)");
    }
}
