//! Validation of request bodies: every field of `POST /code` and `POST /runs/{id}/publish` is
//! checked before anything starts, and a refusal is a 400 naming the field. The bodies are
//! derived structs whose fields record a value of the wrong type instead of failing, so the
//! fields are checked in a fixed order and a fault names its field.
//!
//! Invariants: a model is `anthropic:NAME` or `openai:NAME` with a name of safe characters (no
//! `..`, no leading `/`), or — only with `--allow-local` — `scripted:` and an absolute path to a
//! `.json` file: a caller can never make the server read an arbitrary host file as a script.

use std::path::{Component, Path};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::AppState;
use super::routes::error;
use crate::pipeline::Selection;
use crate::pipeline::model::ModelSpec;
use crate::pipeline::publish::PublishRequest;
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
    // Only the canonical spelling: no `claude:`, no case or spacing variants, a model named.
    let spec: ModelSpec = m.parse().map_err(|_| not_a_model())?;
    if spec.to_string() != m {
        return Err(not_a_model());
    }
    match spec {
        ModelSpec::Scripted(_) if !allow_local => Err(bad(
            "this server does not accept scripted models",
            Some("model"),
        )),
        ModelSpec::Scripted(name) => {
            let path = Path::new(&name);
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
        ModelSpec::Anthropic(Some(name)) | ModelSpec::OpenAi(Some(name))
            if model_name_ok(&name) =>
        {
            Ok(())
        }
        _ => Err(not_a_model()),
    }
}

/// A request field as sent: absent, of the type asked for, or of another type (which the caller
/// refuses with a 400 naming the field). Reading a field never fails, so the checks below run in
/// a fixed order and the first fault named is always the same one.
#[derive(Debug, Default)]
enum Field<T> {
    #[default]
    Absent,
    Given(T),
    WrongType,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `null` is a value of the wrong type here, not an absent field.
        let value = Value::deserialize(d)?;
        Ok(T::deserialize(value).map_or(Field::WrongType, Field::Given))
    }
}

impl<T> Field<T> {
    fn get(self, wrong: impl FnOnce() -> BadRequest) -> Result<Option<T>, BadRequest> {
        match self {
            Field::Absent => Ok(None),
            Field::Given(v) => Ok(Some(v)),
            Field::WrongType => Err(wrong()),
        }
    }

    /// A string field, refused as "must be a string".
    fn string(self, field: &'static str) -> Result<Option<T>, BadRequest> {
        self.get(|| bad(format!("'{field}' must be a string"), Some(field)))
    }

    /// A boolean field, refused as "must be true or false".
    fn boolean(self, field: &'static str) -> Result<Option<T>, BadRequest> {
        self.get(|| bad(format!("'{field}' must be true or false"), Some(field)))
    }
}

/// The body of `POST /code` as sent (unknown fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeBody {
    #[serde(default)]
    repo_url: Field<String>,
    #[serde(default)]
    prompt: Field<String>,
    #[serde(default)]
    base: Field<String>,
    #[serde(default)]
    model: Field<String>,
    #[serde(default)]
    review: Field<bool>,
    #[serde(default)]
    draft: Field<bool>,
}

/// One `excludeHunks` item: an object `{"path": string, "hunk": integer ≥ 0}` (other keys ignored).
#[derive(Debug)]
struct HunkRef {
    path: String,
    hunk: u64,
}

impl<'de> Deserialize<'de> for HunkRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            path: String,
            hunk: u64,
        }
        // Only an object: a derived struct would also take the array `["a.txt", 1]`.
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let f = Fields::deserialize(Value::Object(map)).map_err(serde::de::Error::custom)?;
        Ok(HunkRef {
            path: f.path,
            hunk: f.hunk,
        })
    }
}

/// The body of `POST /runs/{id}/publish` as sent (unknown fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishBody {
    #[serde(default)]
    exclude_files: Field<Vec<Field<String>>>,
    #[serde(default)]
    exclude_hunks: Field<Vec<Field<HunkRef>>>,
    #[serde(default)]
    title: Field<String>,
    #[serde(default)]
    body: Field<String>,
    #[serde(default)]
    draft: Field<bool>,
}

/// Parses a body that must be a JSON object into `T` (whose fields never fail to read).
fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BadRequest> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))?;
    if !body.is_object() {
        // Checked first: a derived struct would also read a JSON array, field by position.
        return Err(bad("the body must be a JSON object", None));
    }
    T::deserialize(body).map_err(|e| bad(format!("the body must be a JSON object: {e}"), None))
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

pub(super) fn parse_code_request(
    state: &AppState,
    bytes: &[u8],
) -> Result<CodeRequest, BadRequest> {
    let body: CodeBody = object(bytes)?;
    let repo = body.repo_url.string("repoUrl")?;
    let repo = repo.as_deref().map(str::trim).unwrap_or("");
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
    let prompt = body.prompt.string("prompt")?;
    let prompt = prompt.as_deref().map(str::trim).unwrap_or("");
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
    let base = body.base.string("base")?;
    if let Some(b) = &base {
        crate::repo::check_branch_name(b).map_err(|m| bad(m, Some("base")))?;
    }
    let model = body.model.string("model")?;
    if let Some(m) = &model {
        check_model(m, state.options.allow_local)?;
    }
    let draft = body.draft.boolean("draft")?.unwrap_or(false);
    let review = body.review.boolean("review")?.unwrap_or(false);
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
    let body: PublishBody = object(bytes)?;
    let not_an_array =
        |field: &'static str| bad(format!("'{field}' must be an array"), Some(field));
    let excluded_files = body
        .exclude_files
        .get(|| not_an_array("excludeFiles"))?
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            f.get(|| bad("'excludeFiles' must list strings", Some("excludeFiles")))?
                .ok_or_else(|| bad("'excludeFiles' must list strings", Some("excludeFiles")))
        })
        .collect::<Result<Vec<String>, BadRequest>>()?;
    let excluded_hunks = body
        .exclude_hunks
        .get(|| not_an_array("excludeHunks"))?
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let wrong = || {
                bad(
                    "each of 'excludeHunks' must be {\"path\": string, \"hunk\": integer ≥ 0}",
                    Some("excludeHunks"),
                )
            };
            let h = h.get(wrong)?.ok_or_else(wrong)?;
            Ok((h.path, h.hunk as usize))
        })
        .collect::<Result<Vec<(String, usize)>, BadRequest>>()?;
    let title = body.title.string("title")?;
    let body_text = body.body.string("body")?;
    let draft = body.draft.boolean("draft")?;
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

    fn publish_error(body: &str) -> (String, Option<&'static str>) {
        let e = parse_publish_request(body.as_bytes()).err().unwrap();
        (e.message, e.field)
    }

    #[test]
    fn publish_bodies_name_the_field_at_fault() {
        let hunk_shape = Some("excludeHunks");
        for (body, field, want) in [
            (
                r#"{"excludeFiles": "a"}"#,
                Some("excludeFiles"),
                "must be an array",
            ),
            (
                r#"{"excludeFiles": null}"#,
                Some("excludeFiles"),
                "must be an array",
            ),
            (
                r#"{"excludeFiles": ["a", 1]}"#,
                Some("excludeFiles"),
                "must list strings",
            ),
            (r#"{"excludeHunks": {}}"#, hunk_shape, "must be an array"),
            (
                r#"{"excludeHunks": [["a", 1]]}"#,
                hunk_shape,
                "each of 'excludeHunks'",
            ),
            (
                r#"{"excludeHunks": [{"path": "a", "hunk": -1}]}"#,
                hunk_shape,
                "each of",
            ),
            (
                r#"{"excludeHunks": [{"path": "a", "hunk": 1.5}]}"#,
                hunk_shape,
                "each of",
            ),
            (
                r#"{"title": null}"#,
                Some("title"),
                "'title' must be a string",
            ),
            (r#"{"draft": "yes"}"#, Some("draft"), "true or false"),
            // Several faults: the first in the fixed order is named, whatever the key order.
            (
                r#"{"draft": 1, "title": 2}"#,
                Some("title"),
                "'title' must be a string",
            ),
            (r#"["a"]"#, None, "the body must be a JSON object"),
            ("{", None, "the body must be a JSON object: "),
        ] {
            let (message, f) = publish_error(body);
            assert_eq!(f, field, "{body}: {message}");
            assert!(message.contains(want), "{body}: {message}");
        }
        let r = parse_publish_request(
            br#"{"excludeHunks": [{"path": "a", "hunk": 2, "extra": 1}], "draft": false, "x": 1}"#,
        )
        .ok()
        .unwrap();
        assert_eq!(r.selection.unwrap().excluded_hunks, vec![("a".into(), 2)]);
        assert_eq!(r.draft, Some(false));
        assert!(
            parse_publish_request(b"  \n")
                .ok()
                .unwrap()
                .selection
                .is_none()
        );
    }

    #[test]
    fn code_body_fields_record_their_type() {
        let b: CodeBody = object(br#"{"repoUrl": 7, "prompt": null, "review": true}"#)
            .ok()
            .unwrap();
        assert!(matches!(b.repo_url, Field::WrongType));
        assert!(matches!(b.prompt, Field::WrongType));
        assert!(matches!(b.review, Field::Given(true)));
        assert!(matches!(b.base, Field::Absent));
    }

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
