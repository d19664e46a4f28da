//! Reading a tool call's input: its shape checked against the tool's schema (so every tool
//! reports the same complete message, with the parser's own error for broken JSON), and the
//! typed accessors the tools use.
//!
//! Invariants: a call whose input fails [`check_input`] is never run; integers are read leniently
//! (`"10"` is 10) because models send them both ways.

use serde_json::Value;

use super::edit::EditSpec;
use super::fs::{ToolError, tool_err};
use super::tools::specs;

pub(crate) fn str_arg<'a>(input: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    match input.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => tool_err(format!("'{key}' must be a string")),
        None => tool_err(format!("missing required input '{key}'")),
    }
}

/// The edits of an `edit_file` call: `edits: [...]`, or the single `old_str`/`new_str` form.
pub(crate) fn edit_specs(input: &Value) -> Result<Vec<EditSpec>, ToolError> {
    let flag = |v: &Value| {
        v.get("replace_all")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let Some(list) = input.get("edits") else {
        return Ok(vec![EditSpec {
            old_str: str_arg(input, "old_str")?.to_string(),
            new_str: str_arg(input, "new_str")?.to_string(),
            replace_all: flag(input),
        }]);
    };
    if input.get("old_str").is_some() || input.get("new_str").is_some() {
        return tool_err("give either old_str and new_str, or edits, not both");
    }
    let list = list.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        ToolError("edits must be a non-empty array of {old_str, new_str, replace_all?}".into())
    })?;
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let field = |k: &str| {
                str_arg(e, k)
                    .map(str::to_string)
                    .map_err(|ToolError(m)| ToolError(format!("edits[{i}]: {m}")))
            };
            Ok(EditSpec {
                old_str: field("old_str")?,
                new_str: field("new_str")?,
                replace_all: flag(e),
            })
        })
        .collect()
}

pub(crate) fn opt_str<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn opt_u64(input: &Value, key: &str) -> Option<u64> {
    input.get(key).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// What a tool's input should look like, from its schema: `path: string, offset?: integer`.
pub fn expected_input(name: &str) -> Option<String> {
    let specs = specs();
    let spec = specs.iter().find(|s| s.name == name)?;
    let required: Vec<&str> = spec.input_schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = spec.input_schema["properties"].as_object()?;
    let fields: Vec<String> = props
        .iter()
        .map(|(k, v)| {
            let opt = if required.contains(&k.as_str()) {
                ""
            } else {
                "?"
            };
            let ty = v["type"].as_str().unwrap_or("any");
            format!("{k}{opt}: {ty}")
        })
        .collect();
    Some(format!(
        "{name} expects a JSON object {{{}}}",
        fields.join(", ")
    ))
}

/// Checks the input's shape against the tool's schema (required keys, scalar types) so every
/// tool reports the same, complete message.
pub(crate) fn check_input(name: &str, input: &Value) -> Result<(), String> {
    if let Some(e) = crate::llm::input_error(input) {
        return Err(format!(
            "the input of this {name} call could not be read: {e}"
        ));
    }
    let specs = specs();
    let Some(spec) = specs.iter().find(|s| s.name == name) else {
        return Ok(());
    };
    let Some(obj) = input.as_object() else {
        return Err(format!(
            "the input of this {name} call is not a JSON object"
        ));
    };
    for key in spec.input_schema["required"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap_or_default();
        if !obj.contains_key(key) {
            return Err(format!(
                "this {name} call is missing its required input '{key}'"
            ));
        }
    }
    for (key, schema) in spec.input_schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let Some(v) = obj.get(key) else { continue };
        let ok = match schema["type"].as_str() {
            Some("string") => v.is_string(),
            // Lenient like the tools themselves: "10" is read as 10.
            Some("integer") => {
                v.is_number() || v.as_str().is_some_and(|s| s.parse::<u64>().is_ok())
            }
            Some("boolean") => v.is_boolean(),
            Some("array") => v.is_array(),
            _ => true,
        };
        if !ok {
            let want = schema["type"].as_str().unwrap_or("value");
            return Err(format!("in this {name} call, '{key}' must be a {want}"));
        }
    }
    Ok(())
}
