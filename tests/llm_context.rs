//! Near the model's context window, older tool outputs are elided with a note instead of the run
//! failing — both ahead of time (our estimate) and when the server says the prompt is too long.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::sync::{Arc, Mutex};

use mock_llm::{Fault, Format, MockServer, Model, Turn};
use serde_json::{Value, json};
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::retry::Chain;
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::llm::{Block, ChatRequest, Message, Observer, Provider, Role, ToolCall};
use tiny_backspace::secret::Secret;

#[derive(Default)]
struct Statuses(Mutex<Vec<String>>);

impl Observer for Statuses {
    fn text(&self, _: &str) {}
    fn status(&self, m: &str) {
        self.0.lock().unwrap().push(m.to_string());
    }
}

/// A conversation of `n` tool turns whose outputs are `size` bytes each.
fn long_conversation(n: usize, size: usize) -> Vec<Message> {
    let mut c = vec![Message::user_text("Task: read everything")];
    for i in 0..n {
        c.push(Message {
            role: Role::Assistant,
            blocks: vec![Block::ToolCall(ToolCall {
                id: format!("toolu_{i}"),
                name: "read_file".into(),
                input: json!({"path": format!("f{i}")}),
            })],
        });
        c.push(Message {
            role: Role::User,
            blocks: vec![Block::ToolResult {
                call_id: format!("toolu_{i}"),
                content: format!("{i}:{}", "x".repeat(size)),
                is_error: false,
            }],
        });
    }
    c
}

fn results(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap().clone())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].as_str().unwrap().to_string())
        .collect()
}

fn chain(url: &str, window: Option<u64>) -> Chain {
    let settings = LlmSettings {
        max_attempts: 2,
        initial_backoff_ms: 1,
        context_window: window,
        ..Default::default()
    };
    let p = AnthropicProvider::new(
        Some(url),
        Some(Secret::new("k")),
        "claude-sonnet-4-5",
        &settings,
    )
    .unwrap();
    Chain::new(vec![Arc::new(p)], settings)
}

fn done_turns() -> Vec<Turn> {
    (0..40).map(|_| Turn::new("done", &[])).collect()
}

#[tokio::test]
async fn old_outputs_are_elided_near_the_window_and_the_elision_is_stable() {
    let model = Model::new(Format::Anthropic, done_turns());
    let server = MockServer::start(model.handler()).await;
    // 12 outputs of 12 kB ≈ 48k tokens by our estimate, against a 40k window.
    let c = chain(&server.url(), Some(40_000));
    let mut conversation = long_conversation(12, 12_000);
    let statuses = Statuses::default();
    let request = ChatRequest {
        system: "s",
        tools: &[],
        messages: &conversation,
        max_output_tokens: 1000,
    };
    let r = c.complete(&request, &statuses).await.unwrap();
    assert_eq!(r.text, "done");
    let sent = server.requests().pop().unwrap().body;
    let out = results(&sent);
    assert_eq!(out.len(), 12, "every call keeps its result");
    let elided = out.iter().filter(|o| o.contains("elided")).count();
    assert!(elided > 0 && elided < 12, "{elided}");
    assert!(out[0].contains("elided") && out[0].len() < 300);
    assert!(out[11].starts_with("11:"), "the latest output is kept");
    mock_llm::check_anthropic_pairing(&sent).unwrap();
    assert!(
        statuses
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.contains("elided")),
        "the elision is reported"
    );
    // The caller's conversation is untouched.
    match &conversation[2].blocks[0] {
        Block::ToolResult { content, .. } => assert_eq!(content.len(), 12_002),
        other => panic!("{other:?}"),
    }
    // The next turn elides the same outputs, so the cached prefix stays the same.
    conversation.push(Message {
        role: Role::Assistant,
        blocks: vec![Block::Text("ok".into())],
    });
    conversation.push(Message::user_text("one more thing"));
    let request = ChatRequest {
        system: "s",
        tools: &[],
        messages: &conversation,
        max_output_tokens: 1000,
    };
    c.complete(&request, &statuses).await.unwrap();
    let again = results(&server.requests().pop().unwrap().body);
    assert_eq!(again, out);
    let rows = model.ledger.lock().unwrap().rows.clone();
    assert_eq!(rows[1].cached, rows[0].total, "the elided prefix is reused");
}

#[tokio::test]
async fn a_too_long_answer_from_the_server_elides_and_retries_instead_of_failing() {
    let model = Model::new(Format::Anthropic, done_turns());
    model.fault(
        7,
        Fault::status(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 250000 tokens > 200000 maximum"}}"#,
        ),
    );
    let server = MockServer::start(model.handler()).await;
    // Our estimate says it fits (default 200k window); the server disagrees once.
    let c = chain(&server.url(), None);
    let conversation = long_conversation(7, 40_000);
    let statuses = Statuses::default();
    let request = ChatRequest {
        system: "s",
        tools: &[],
        messages: &conversation,
        max_output_tokens: 1000,
    };
    let r = c.complete(&request, &statuses).await.unwrap();
    assert_eq!(r.text, "done");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(results(&reqs[0].body).iter().all(|o| !o.contains("elided")));
    assert!(results(&reqs[1].body)[0].contains("elided"));
    assert!(
        statuses
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.contains("too long")),
        "{:?}",
        statuses.0.lock().unwrap()
    );
}
