//! The Chat Completions request body, built from the provider-neutral conversation.
//!
//! Invariants: tool results become `tool` messages placed right after the assistant message that
//! called them (before any user text of the same turn); an assistant turn's calls travel as
//! `tool_calls` with their arguments as a JSON string; reasoning of any provider is never sent
//! (Chat Completions has no way to carry it back).

use serde_json::{Value, json};

use super::{Block, ChatRequest, Role};

/// The Chat Completions request body for `request`.
pub fn request_body(model: &str, request: &ChatRequest<'_>, official: bool) -> Value {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for m in request.messages {
        let text: Vec<&str> = m
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) if !t.trim().is_empty() => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let text = text.join("\n\n");
        match m.role {
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolCall(c) => Some(json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.input.to_string()},
                        })),
                        _ => None,
                    })
                    .collect();
                if text.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            Role::User => {
                // Tool results answer the preceding assistant message, so they come first.
                for b in &m.blocks {
                    if let Block::ToolResult {
                        call_id,
                        content,
                        is_error,
                    } = b
                    {
                        let content = match (*is_error, content.is_empty()) {
                            (true, _) => format!("Error: {content}"),
                            (false, true) => "(no output)".to_string(),
                            (false, false) => content.clone(),
                        };
                        messages.push(
                            json!({"role": "tool", "tool_call_id": call_id, "content": content}),
                        );
                    }
                }
                if !text.is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema}})
        })
        .collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let limit = if official {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit] = json!(request.max_output_tokens);
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    body
}
