//! Validation of request bodies: every field of `POST /code` and `POST /runs/{id}/publish` is
//! checked before anything starts, and a refusal is a 400 naming the field.
//!
//! Invariants: a model is `anthropic:NAME` or `openai:NAME` with a name of safe characters (no
//! `..`, no leading `/`), or — only with `--allow-local` — `scripted:` and an absolute path to a
//! `.json` file: a caller can never make the server read an arbitrary host file as a script.

use std::path::{Component, Path};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::routes::error;
use crate::forge::record::PublishRequest;
use crate::pipeline::Selection;
use crate::repo::RepoSource;

/// A 400 naming the field at fault.
pub(super) struct BadRequest {
    message: String,
    field: Option<&'static str>,
}

pub(super) fn bad(message: impl Into<String>, field: Option<&'static str>) -> BadRequest {
    BadRequest {
        message: message.into(),
        field,
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.message, self.field)
    }
}

/// Longest model name accepted.
const MAX_MODEL_CHARS: usize = 100;

/// A model name: segments of letters, digits, `-`, `_` and `:`, each starting with a letter or
/// digit, joined by `.` or `/` (`gpt-4.1`, `qwen2.5-coder:7b`, `Qwen/Qwen2.5-Coder-7B`).
fn model_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MODEL_CHARS
        && name.split(['.', '/']).all(|segment| {
            segment.starts_with(|c: char| c.is_ascii_alphanumeric())
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c))
        })
}

fn check_model(m: &str, allow_local: bool) -> Result<(), BadRequest> {
    let not_a_model = || {
        bad(
            format!(
                "'{m}' is not a model: use anthropic:MODEL or openai:MODEL (letters, digits, \
                 '-', '_', ':', and '.' or '/' between them)"
            ),
            Some("model"),
        )
    };
    let (provider, name) = m.split_once(':').ok_or_else(not_a_model)?;
    match provider {
        "scripted" if !allow_local => Err(bad(
            "this server does not accept scripted models",
            Some("model"),
        )),
        "scripted" => {
            let path = Path::new(name);
            let plain = path.is_absolute()
                && path
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
                && path.extension().is_some_and(|e| e == "json");
            if plain {
                Ok(())
            } else {
                Err(bad(
                    "a scripted model must be scripted:/ABSOLUTE/PATH.json",
                    Some("model"),
                ))
            }
        }
        "anthropic" | "openai" if model_name_ok(name) => Ok(()),
        _ => Err(not_a_model()),
    }
}

/// A validated `POST /code` body.
pub(super) struct CodeRequest {
    pub repo: String,
    pub prompt: String,
    pub base: Option<String>,
    pub model: Option<String>,
    pub review: bool,
    pub draft: bool,
}

fn field_str<'a>(body: &'a Value, field: &'static str) -> Result<Option<&'a str>, BadRequest> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("'{field}' must be a string"), Some(field))),
    }
}

fn field_bool(body: &Value, field: &'static str) -> Result<bool, BadRequest> {
    match body.get(field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("'{field}' must be true or false"), Some(field))),
    }
}

pub(super) fn parse_code_request(
    state: &AppState,
    bytes: &[u8],
) -> Result<CodeRequest, BadRequest> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))?;
    if !body.is_object() {
        return Err(bad("the body must be a JSON object", None));
    }
    let repo = field_str(&body, "repoUrl")?.map(str::trim).unwrap_or("");
    if repo.is_empty() {
        return Err(bad("'repoUrl' is required", Some("repoUrl")));
    }
    match RepoSource::parse(repo, &state.cwd) {
        Err(e) => {
            return Err(bad(e.to_string(), Some("repoUrl")));
        }
        Ok(RepoSource::Local { .. }) if !state.options.allow_local => {
            return Err(bad(
                "this server does not accept local paths; give an https:// URL or OWNER/REPO",
                Some("repoUrl"),
            ));
        }
        Ok(_) => {}
    }
    let prompt = field_str(&body, "prompt")?.map(str::trim).unwrap_or("");
    if prompt.is_empty() {
        return Err(bad(
            "'prompt' is required and must not be empty",
            Some("prompt"),
        ));
    }
    let max = state.options.max_prompt_chars;
    if prompt.chars().count() > max {
        return Err(bad(
            format!("'prompt' is longer than {max} characters"),
            Some("prompt"),
        ));
    }
    let base = field_str(&body, "base")?.map(str::to_string);
    if let Some(b) = &base {
        crate::repo::check_branch_name(b).map_err(|m| bad(m, Some("base")))?;
    }
    let model = field_str(&body, "model")?.map(str::to_string);
    if let Some(m) = &model {
        check_model(m, state.options.allow_local)?;
    }
    let draft = field_bool(&body, "draft")?;
    let review = field_bool(&body, "review")?;
    Ok(CodeRequest {
        repo: repo.to_string(),
        prompt: prompt.to_string(),
        base,
        model,
        review,
        draft,
    })
}

pub(super) fn parse_publish_request(bytes: &[u8]) -> Result<PublishRequest, BadRequest> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(PublishRequest::default());
    }
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))?;
    if !body.is_object() {
        return Err(bad("the body must be a JSON object", None));
    }
    let strings = |field: &'static str| -> Result<Vec<String>, BadRequest> {
        match body.get(field) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("'{field}' must list strings"), Some(field)))
                })
                .collect(),
            Some(_) => Err(bad(format!("'{field}' must be an array"), Some(field))),
        }
    };
    let excluded_files = strings("excludeFiles")?;
    let mut excluded_hunks = vec![];
    match body.get("excludeHunks") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let path = item.get("path").and_then(Value::as_str);
                let hunk = item.get("hunk").and_then(Value::as_u64);
                match (path, hunk) {
                    (Some(p), Some(h)) => excluded_hunks.push((p.to_string(), h as usize)),
                    _ => {
                        return Err(bad(
                            "each of 'excludeHunks' must be {\"path\": string, \"hunk\": integer ≥ 0}",
                            Some("excludeHunks"),
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(bad("'excludeHunks' must be an array", Some("excludeHunks"))),
    }
    let title = field_str(&body, "title")?.map(str::to_string);
    let body_text = field_str(&body, "body")?.map(str::to_string);
    let draft = match body.get("draft") {
        None => None,
        Some(_) => Some(field_bool(&body, "draft")?),
    };
    let selection =
        (!excluded_files.is_empty() || !excluded_hunks.is_empty()).then_some(Selection {
            excluded_files,
            excluded_hunks,
            ..Default::default()
        });
    Ok(PublishRequest {
        selection,
        title,
        body: body_text,
        draft,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for ok in [
            "anthropic:claude-sonnet-4-5",
            "openai:gpt-4.1",
            "openai:qwen2.5-coder:7b",
            "openai:Qwen/Qwen2.5-Coder-7B-Instruct",
            "openai:llama3.1:8b-instruct-q4_K_M",
        ] {
            assert!(check_model(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "anthropic:../../x",
            "anthropic:..",
            "openai:/etc/passwd",
            "openai:a//b",
            "openai:a/",
            "openai:.hidden",
            "openai:",
            "openai:a b",
            "anthropic",
            "ollama:llama3",
            " anthropic:x",
            "scripted:/tmp/s.json",
        ] {
            assert!(check_model(bad, false).is_err(), "{bad}");
        }
        assert!(check_model(&format!("openai:{}", "a".repeat(101)), false).is_err());
        assert!(check_model("scripted:/tmp/s.json", true).is_ok());
        for bad in [
            "scripted:/etc/passwd",
            "scripted:s.json",
            "scripted:/tmp/../etc/s.json",
            "scripted:",
        ] {
            assert!(check_model(bad, true).is_err(), "{bad}");
        }
    }
}
