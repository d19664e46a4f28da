//! The request body of OpenAI's Responses API, built from the provider-neutral conversation.
//!
//! Invariants: the request is stateless (`store: false`) and so carries no item ids — a stored
//! item cannot be referred to, and an id the server did not keep is refused; a reasoning model's
//! reasoning comes back as its encrypted content (`include: ["reasoning.encrypted_content"]`) and
//! is sent again, in order, before the turn's message and function calls, so the model keeps its
//! reasoning across tool turns; tool results are `function_call_output` items placed before the
//! user text of the same turn; reasoning of another wire format (Anthropic thinking) is never sent.

use serde_json::{Value, json};

use super::settings::ReasoningEffort;
use super::{Block, ChatRequest, Reasoning, Role};

/// What the model takes besides the conversation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The model reasons: its reasoning is asked for (encrypted) so it can be sent back.
    pub reasoning_model: bool,
    /// `reasoning: {"effort": …}`, when given.
    pub effort: Option<ReasoningEffort>,
}

/// The Responses API request body for `request`.
pub fn request_body(model: &str, request: &ChatRequest<'_>, options: Options) -> Value {
    let mut input: Vec<Value> = Vec::new();
    for m in request.messages {
        match m.role {
            Role::Assistant => {
                for b in &m.blocks {
                    match b {
                        Block::Reasoning(Reasoning::OpenAi {
                            summary,
                            encrypted_content,
                        }) => {
                            let summary: Vec<Value> = summary
                                .iter()
                                .map(|s| json!({"type": "summary_text", "text": s}))
                                .collect();
                            input.push(json!({"type": "reasoning", "summary": summary,
                                "encrypted_content": encrypted_content}));
                        }
                        Block::Text(t) if !t.trim().is_empty() => {
                            input.push(json!({"role": "assistant", "content": t}))
                        }
                        Block::ToolCall(c) => input.push(json!({
                            "type": "function_call",
                            "call_id": c.id,
                            "name": c.name,
                            "arguments": c.input.to_string(),
                        })),
                        _ => {}
                    }
                }
            }
            Role::User => {
                // Results answer the preceding function calls, so they come first.
                for b in &m.blocks {
                    if let Block::ToolResult {
                        call_id,
                        content,
                        is_error,
                    } = b
                    {
                        let output = match (*is_error, content.is_empty()) {
                            (true, _) => format!("Error: {content}"),
                            (false, true) => "(no output)".to_string(),
                            (false, false) => content.clone(),
                        };
                        input.push(json!({"type": "function_call_output", "call_id": call_id,
                            "output": output}));
                    }
                }
                let text: Vec<&str> = m
                    .blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text(t) if !t.trim().is_empty() => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                if !text.is_empty() {
                    input.push(json!({"role": "user",
                        "content": [{"type": "input_text", "text": text.join("\n\n")}]}));
                }
            }
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "name": t.name, "description": t.description,
                "parameters": t.input_schema, "strict": false})
        })
        .collect();
    let mut body = json!({
        "model": model,
        "input": input,
        "stream": true,
        "store": false,
        "max_output_tokens": request.max_output_tokens,
    });
    if !request.system.is_empty() {
        body["instructions"] = json!(request.system);
    }
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if options.reasoning_model {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    if let Some(effort) = options.effort {
        body["reasoning"] = json!({"effort": effort.as_str()});
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ToolCall, ToolSpec};

    #[test]
    fn items_follow_the_conversation_without_ids() {
        let tools = vec![ToolSpec {
            name: "read_file",
            description: "R",
            input_schema: json!({"type": "object"}),
        }];
        let messages = vec![
            Message::user_text("Task"),
            Message {
                role: Role::Assistant,
                blocks: vec![
                    Block::Reasoning(Reasoning::Thinking {
                        thinking: "anthropic's".into(),
                        signature: "s".into(),
                    }),
                    Block::Reasoning(Reasoning::OpenAi {
                        summary: vec!["Plan".into()],
                        encrypted_content: "gAAA".into(),
                    }),
                    Block::Text("Looking.".into()),
                    Block::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "read_file".into(),
                        input: json!({"path": "a"}),
                    }),
                ],
            },
            Message {
                role: Role::User,
                blocks: vec![
                    Block::ToolResult {
                        call_id: "call_1".into(),
                        content: "nope".into(),
                        is_error: true,
                    },
                    Block::Text("[note]".into()),
                ],
            },
        ];
        let req = ChatRequest {
            system: "sys",
            tools: &tools,
            messages: &messages,
            max_output_tokens: 64,
        };
        let b = request_body(
            "o4-mini",
            &req,
            Options {
                reasoning_model: true,
                effort: Some(ReasoningEffort::High),
            },
        );
        assert_eq!(b["instructions"], "sys");
        assert_eq!(
            (b["store"].clone(), b["stream"].clone()),
            (json!(false), json!(true))
        );
        assert_eq!(b["max_output_tokens"], 64);
        assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(b["reasoning"], json!({"effort": "high"}));
        assert_eq!(b["tools"][0]["name"], "read_file");
        assert_eq!(b["tools"][0]["type"], "function");
        let input = b["input"].as_array().unwrap();
        let kinds: Vec<String> = input
            .iter()
            .map(|i| {
                i.get("type")
                    .map(|t| t.as_str().unwrap().to_string())
                    .unwrap_or_else(|| i["role"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "user",
                "reasoning",
                "assistant",
                "function_call",
                "function_call_output",
                "user"
            ]
        );
        assert_eq!(input[1]["encrypted_content"], "gAAA");
        assert_eq!(input[1]["summary"][0]["text"], "Plan");
        assert_eq!(input[3]["arguments"], r#"{"path":"a"}"#);
        assert_eq!(input[4]["output"], "Error: nope");
        assert!(input.iter().all(|i| i.get("id").is_none()));
        let plain = request_body("gpt-4.1", &req, Options::default());
        assert!(plain.get("include").is_none() && plain.get("reasoning").is_none());
    }
}
