//! What the providers send, as a local server receives it: auth headers, `anthropic-version`,
//! the contract's tool schemas, tool_use/tool_result pairing, where the `cache_control`
//! breakpoints sit (and that each request's prefix is a cache hit), and that keys never reach logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::io::Write;
use std::sync::{Arc, Mutex};

use mock_llm::{Fault, Format, MockServer, Model};
use serde_json::{Value, json};
use tiny_backspace::agent::{prompt, tools};
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::openai::OpenAiProvider;
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::llm::{Block, ChatRequest, Message, Provider, Role, ToolSpec};
use tiny_backspace::secret::Secret;

const KEY_A: &str = "sk-ant-api03-requests-LOGSECRET-a";
const KEY_O: &str = "sk-proj-requests-LOGSECRET-o";

fn settings() -> LlmSettings {
    LlmSettings {
        max_attempts: 1,
        read_timeout_ms: 2_000,
        ..Default::default()
    }
}

/// Drives `provider` like the agent loop does, answering every tool call with a fixed result.
async fn converse(provider: &dyn Provider, turns: usize) -> Vec<Message> {
    let specs: Vec<ToolSpec> = tools::specs();
    let system = prompt::system_prompt(
        "octo/calc",
        Some("main"),
        &prompt::network_sentence(tiny_backspace::sandbox::NetworkMode::Off, &[]),
    );
    let mut conversation = vec![Message::user_text("Task: make divide reject zero")];
    for _ in 0..turns {
        let request = ChatRequest {
            system: &system,
            tools: &specs,
            messages: &conversation,
            max_output_tokens: 4096,
        };
        let r = provider.complete(&request, &|_: &str| {}).await.unwrap();
        let mut blocks = Vec::new();
        if !r.text.is_empty() {
            blocks.push(Block::Text(r.text.clone()));
        }
        blocks.extend(r.tool_calls.iter().cloned().map(Block::ToolCall));
        conversation.push(Message {
            role: Role::Assistant,
            blocks,
        });
        if r.tool_calls.is_empty() {
            break;
        }
        let results = r
            .tool_calls
            .iter()
            .map(|c| Block::ToolResult {
                call_id: c.id.clone(),
                content: format!("result of {} {}\n{}", c.name, c.input, "line\n".repeat(40)),
                is_error: false,
            })
            .collect();
        conversation.push(Message {
            role: Role::User,
            blocks: results,
        });
    }
    conversation
}

fn contract_tools() -> Vec<Value> {
    tools::specs()
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect()
}

#[tokio::test]
async fn anthropic_requests_auth_version_schemas_pairing_and_cache_breakpoints() {
    let model = Model::new(Format::Anthropic, mock_llm::task_turns());
    let server = MockServer::start(model.handler()).await;
    let p = AnthropicProvider::new(
        Some(&server.url()),
        Some(Secret::new(KEY_A)),
        "claude-sonnet-4-5",
        &settings(),
    )
    .unwrap();
    let conversation = converse(&p, 10).await;
    assert_eq!(
        conversation.len(),
        12,
        "task, five tool turns with results, the answer"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.headers["x-api-key"], KEY_A);
        assert_eq!(r.headers["anthropic-version"], "2023-06-01");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["accept"], "text/event-stream");
        assert!(!r.headers.contains_key("authorization"));
        let b = &r.body;
        assert_eq!(b["model"], "claude-sonnet-4-5");
        assert_eq!(b["stream"], true);
        assert_eq!(b["max_tokens"], 4096);
        assert!(
            b["system"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("You are a senior software engineer")
        );
        // The contract's tools (six and update_plan), exactly, in order (the breakpoint aside).
        let mut sent = b["tools"].as_array().unwrap().clone();
        sent.last_mut()
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("cache_control");
        assert_eq!(sent, contract_tools());
        mock_llm::check_anthropic_pairing(b).unwrap();
        // Breakpoints: last tool, system, the previous and the latest user turn — four at most.
        let msgs = b["messages"].as_array().unwrap();
        let last_block = |m: usize| msgs[m]["content"].as_array().unwrap().len() - 1;
        let last_tool = format!("tools[{}]", contract_tools().len() - 1);
        let mut want = vec![last_tool, "system[0]".to_string()];
        if i > 0 {
            want.push(format!(
                "messages[{}].content[{}]",
                2 * i - 2,
                last_block(2 * i - 2)
            ));
        }
        want.push(format!(
            "messages[{}].content[{}]",
            2 * i,
            last_block(2 * i)
        ));
        assert_eq!(mock_llm::cache_breakpoints(b), want, "request {i}");
    }
    // Each request's prefix up to the previous request's end is a cache hit.
    let rows = model.ledger.lock().unwrap().rows.clone();
    assert_eq!(rows[0].cached, 0);
    for i in 1..rows.len() {
        assert_eq!(rows[i].cached, rows[i - 1].total, "request {i}");
    }
}

#[tokio::test]
async fn openai_requests_auth_schemas_and_pairing() {
    let model = Model::new(Format::OpenAi, mock_llm::task_turns());
    let server = MockServer::start(model.handler()).await;
    let p = OpenAiProvider::new(
        Some(&server.url_v1()),
        Some(Secret::new(KEY_O)),
        "gpt-4.1",
        &settings(),
    )
    .unwrap();
    converse(&p, 10).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    let tools: Vec<Value> = tools::specs()
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
        .collect();
    for r in &requests {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY_O}"));
        assert!(!r.headers.contains_key("x-api-key"));
        assert!(!r.headers.contains_key("anthropic-version"));
        let b = &r.body;
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["tools"].as_array().unwrap(), &tools);
        assert_eq!(b["messages"][0]["role"], "system");
        mock_llm::check_openai_pairing(b).unwrap();
    }

    // A local server needs no key, and none is sent.
    let local =
        OpenAiProvider::new(Some(&server.url_v1()), None, "qwen2.5-coder", &settings()).unwrap();
    converse(&local, 1).await;
    let last = server.requests().pop().unwrap();
    assert!(!last.headers.contains_key("authorization"));
    assert_eq!(last.body["model"], "qwen2.5-coder");
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn keys_never_reach_logs_or_errors() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .unwrap();
    let a_model = Model::new(Format::Anthropic, mock_llm::task_turns());
    a_model.fault(
        1,
        Fault::status(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
    );
    let a = MockServer::start(a_model.handler()).await;
    let o = MockServer::start(Model::new(Format::OpenAi, mock_llm::task_turns()).handler()).await;
    let pa = AnthropicProvider::new(
        Some(&a.url()),
        Some(Secret::new(KEY_A)),
        "claude-sonnet-4-5",
        &settings(),
    )
    .unwrap();
    let po = OpenAiProvider::new(
        Some(&o.url_v1()),
        Some(Secret::new(KEY_O)),
        "gpt-4.1",
        &settings(),
    )
    .unwrap();
    converse(&po, 3).await;
    let specs = tools::specs();
    let conversation = converse(&pa, 1).await;
    let req = ChatRequest {
        system: "s",
        tools: &specs,
        messages: &conversation,
        max_output_tokens: 10,
    };
    let err = pa.complete(&req, &|_: &str| {}).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(err.is_request_error());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("LOGSECRET"), "{shown}");
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).to_string();
    assert!(logs.contains("anthropic request") && logs.contains("openai request"));
    assert!(!logs.contains("LOGSECRET"), "a key reached the logs");
}
