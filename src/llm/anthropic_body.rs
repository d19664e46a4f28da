//! The Anthropic Messages API request body: cache breakpoints, tool-result ordering and extended
//! thinking.
//!
//! Invariants: at most four `cache_control` breakpoints (the last tool, the system prompt, the last
//! block of the two most recent user turns); tool results come first in a user turn and same-role
//! neighbours are merged; with thinking on, `max_tokens` exceeds the budget, and each assistant
//! turn's thinking blocks go back unchanged, in order, before its text and tool calls.

use serde_json::{Map, Value, json};

use super::{Block, ChatRequest, Message, Reasoning, Role};

/// Tool-use ids must match `[a-zA-Z0-9_-]+`; ids from another provider are mapped consistently.
pub fn sanitize_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "id".into() } else { s }
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// The Messages API request body for `request`, with cache breakpoints, without thinking.
pub fn request_body(model: &str, request: &ChatRequest<'_>) -> Value {
    request_body_with(model, request, None)
}

/// Whether this request may carry `thinking`: the API refuses it when the last assistant turn
/// called tools without a thinking block first (a turn another provider answered after a
/// fallback, or one made before thinking was on); that request goes without.
pub fn thinking_allowed(messages: &[Message]) -> bool {
    let Some(last) = messages.iter().rev().find(|m| m.role == Role::Assistant) else {
        return true;
    };
    let calls = last.blocks.iter().any(|b| matches!(b, Block::ToolCall(_)));
    let thought = last.blocks.iter().any(|b| {
        matches!(
            b,
            Block::Reasoning(Reasoning::Thinking { .. } | Reasoning::RedactedThinking { .. })
        )
    });
    !calls || thought
}

/// [`request_body`] with extended thinking of `thinking` tokens when given (and allowed, see
/// [`thinking_allowed`]): `max_tokens` then grows by the budget, which the API requires to be
/// below it, so the answer keeps its own room. Thinking blocks are sent back, unchanged and in
/// order, only while thinking is on; other providers' reasoning never is.
pub fn request_body_with(model: &str, request: &ChatRequest<'_>, thinking: Option<u32>) -> Value {
    let thinking = thinking.filter(|_| thinking_allowed(request.messages));
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    if let Some(Value::Object(last)) = tools.last_mut() {
        last.insert("cache_control".into(), ephemeral());
    }

    // Tool results first in a user turn (the API requires it), empty turns dropped, same-role
    // neighbours merged so roles alternate.
    let mut messages: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in request.messages {
        let mut blocks: Vec<Value> = Vec::new();
        for b in &m.blocks {
            if let Block::ToolResult {
                call_id,
                content,
                is_error,
            } = b
            {
                let content = if content.is_empty() {
                    "(no output)"
                } else {
                    content
                };
                let mut v = json!({"type": "tool_result", "tool_use_id": sanitize_id(call_id), "content": content});
                if *is_error {
                    v["is_error"] = Value::Bool(true);
                }
                blocks.push(v);
            }
        }
        for b in &m.blocks {
            match b {
                Block::Reasoning(Reasoning::Thinking {
                    thinking: text,
                    signature,
                }) if thinking.is_some() => blocks
                    .push(json!({"type": "thinking", "thinking": text, "signature": signature})),
                Block::Reasoning(Reasoning::RedactedThinking { data }) if thinking.is_some() => {
                    blocks.push(json!({"type": "redacted_thinking", "data": data}))
                }
                Block::Text(t) if !t.trim().is_empty() => {
                    blocks.push(json!({"type": "text", "text": t}))
                }
                Block::ToolCall(c) => {
                    let input = if c.input.is_object() {
                        c.input.clone()
                    } else {
                        Value::Object(Map::new())
                    };
                    blocks.push(json!({"type": "tool_use", "id": sanitize_id(&c.id), "name": c.name, "input": input}))
                }
                _ => {}
            }
        }
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((role, existing)) if *role == m.role => existing.extend(blocks),
            _ => messages.push((m.role.clone(), blocks)),
        }
    }
    let user_turns: Vec<usize> = messages
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, (r, _))| *r == Role::User)
        .map(|(i, _)| i)
        .take(2)
        .collect();
    for i in user_turns {
        if let Some(Value::Object(last)) = messages[i].1.last_mut() {
            last.insert("cache_control".into(), ephemeral());
        }
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": content})
        })
        .collect();

    let mut body = json!({
        "model": model,
        "max_tokens": request.max_output_tokens,
        "stream": true,
        "messages": messages,
    });
    if !request.system.is_empty() {
        body["system"] =
            json!([{"type": "text", "text": request.system, "cache_control": ephemeral()}]);
    }
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if let Some(budget) = thinking {
        // No temperature or top_k is ever sent: both are refused with thinking.
        body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        body["max_tokens"] = json!(request.max_output_tokens.saturating_add(budget));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, ToolSpec};

    fn conversation() -> Vec<Message> {
        vec![
            Message::user_text("Task: fix it"),
            Message {
                role: Role::Assistant,
                blocks: vec![
                    Block::Text("Looking.".into()),
                    Block::ToolCall(ToolCall {
                        id: "call:1".into(),
                        name: "read_file".into(),
                        input: json!({"path": "a"}),
                    }),
                ],
            },
            Message {
                role: Role::User,
                blocks: vec![
                    Block::Text("Follow-up".into()),
                    Block::ToolResult {
                        call_id: "call:1".into(),
                        content: String::new(),
                        is_error: true,
                    },
                ],
            },
        ]
    }

    #[test]
    fn body_places_cache_breakpoints_and_orders_tool_results_first() {
        let tools = vec![
            ToolSpec {
                name: "a",
                description: "A",
                input_schema: json!({"type": "object"}),
            },
            ToolSpec {
                name: "b",
                description: "B",
                input_schema: json!({"type": "object"}),
            },
        ];
        let messages = conversation();
        let req = ChatRequest {
            system: "sys",
            tools: &tools,
            messages: &messages,
            max_output_tokens: 100,
        };
        let b = request_body("claude-x", &req);
        assert_eq!(b["stream"], true);
        assert_eq!(b["max_tokens"], 100);
        assert!(b["tools"][0].get("cache_control").is_none());
        assert_eq!(b["tools"][1]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["content"][1]["id"], "call_1");
        assert_eq!(m[2]["content"][0]["type"], "tool_result");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(m[2]["content"][0]["is_error"], true);
        assert_eq!(m[2]["content"][0]["content"], "(no output)");
        assert_eq!(m[2]["content"][1]["text"], "Follow-up");
        assert_eq!(m[2]["content"][1]["cache_control"]["type"], "ephemeral");
        assert_eq!(m[0]["content"][0]["cache_control"]["type"], "ephemeral");
        assert!(m[1]["content"][1].get("cache_control").is_none());
    }

    #[test]
    fn thinking_goes_back_before_tool_use_and_only_while_on() {
        let mut messages = conversation();
        messages[1].blocks.insert(
            0,
            Block::Reasoning(Reasoning::Thinking {
                thinking: "hmm".into(),
                signature: "sig==".into(),
            }),
        );
        messages[1].blocks.insert(
            1,
            Block::Reasoning(Reasoning::RedactedThinking {
                data: "opaque".into(),
            }),
        );
        messages[1].blocks.push(Block::Reasoning(Reasoning::OpenAi {
            summary: vec![],
            encrypted_content: "x".into(),
        }));
        let req = ChatRequest {
            system: "",
            tools: &[],
            messages: &messages,
            max_output_tokens: 100,
        };
        let b = request_body_with("claude-x", &req, Some(2048));
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert_eq!(b["max_tokens"], 2148);
        assert!(b.get("temperature").is_none() && b.get("top_k").is_none());
        let turn = b["messages"][1]["content"].as_array().unwrap();
        let kinds: Vec<&str> = turn.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["thinking", "redacted_thinking", "text", "tool_use"]);
        assert_eq!(turn[0]["signature"], "sig==");
        assert_eq!(turn[1]["data"], "opaque");
        // Off: no thinking block is sent.
        let b = request_body("claude-x", &req);
        assert!(b.get("thinking").is_none());
        let kinds: Vec<&str> = b["messages"][1]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["text", "tool_use"]);
        // A tool turn without thinking (another provider's) makes this request go without.
        let plain = conversation();
        let req = ChatRequest {
            messages: &plain,
            ..req
        };
        assert!(
            request_body_with("claude-x", &req, Some(2048))
                .get("thinking")
                .is_none()
        );
    }
}
