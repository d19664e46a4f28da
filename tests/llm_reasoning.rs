//! Reasoning across turns, against a local server speaking the real wire formats, through the
//! real agent loop: Claude's thinking blocks (signed, and redacted) go back unchanged before the
//! tool calls of their turn; OpenAI's Responses API carries a reasoning model's encrypted
//! reasoning and the function-call outputs into the next request; a turn cut at
//! `max_output_tokens` is the same cut turn as elsewhere; error events, `response.failed` and
//! usage (cached tokens) are read as for the other providers. Streams: `tests/fixtures/llm/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/toolbox.rs"]
mod toolbox;

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::sync::Arc;
use std::time::Duration;

use mock_llm::{Handler, MockServer, Turn, Usage, anthropic_stream, responses_stream, turns_route};
use serde_json::{Value, json};
use tiny_backspace::agent::{AgentError, AgentLimits, AgentOutcome, AgentRun};
use tiny_backspace::emit::Emitter;
use tiny_backspace::event::{Event, UsageTotals};
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::openai::OpenAiProvider;
use tiny_backspace::llm::settings::{LlmSettings, OpenAiApi, ReasoningEffort};
use tiny_backspace::llm::{
    Block, ChatRequest, LlmError, Message, Provider, Reasoning, Role, StopReason, ToolCall, openai,
    responses,
};
use tiny_backspace::secret::Secret;
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/llm/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn settings() -> LlmSettings {
    LlmSettings {
        max_attempts: 1,
        read_timeout_ms: 5_000,
        ..Default::default()
    }
}

fn claude(server: &MockServer, model: &str, budget: Option<u32>) -> Arc<dyn Provider> {
    let s = LlmSettings {
        thinking_budget: budget,
        ..settings()
    };
    Arc::new(
        AnthropicProvider::new(Some(&server.url()), Some(Secret::new("k")), model, &s).unwrap(),
    )
}

fn responses_provider(server: &MockServer, model: &str) -> Arc<dyn Provider> {
    let s = LlmSettings {
        openai_api: OpenAiApi::Responses,
        reasoning_effort: Some(ReasoningEffort::High),
        ..settings()
    };
    Arc::new(
        OpenAiProvider::new(Some(&server.url_v1()), Some(Secret::new("k")), model, &s).unwrap(),
    )
}

struct Outcome {
    result: Result<AgentOutcome, AgentError>,
    requests: Vec<mock_llm::Request>,
    events: Vec<Event>,
}

/// Runs the real agent loop and tools on a fresh work tree (`a.py` holds `x = 1`).
async fn run(handler: Handler, provider: impl Fn(&MockServer) -> Arc<dyn Provider>) -> Outcome {
    let server = MockServer::start(handler).await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    let tools = toolbox::toolbox(&root, git_dir, "t", 4000);
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let emitter = Emitter::new("t", tx);
    let provider = provider(&server);
    let limits = AgentLimits {
        max_turns: 10,
        max_total_tokens: 1_000_000,
        max_duration: Duration::from_secs(600),
        max_output_tokens: 512,
        self_review: false,
    };
    let mut conversation = vec![Message::user_text("Task: look at a.py")];
    let result = AgentRun {
        provider: provider.as_ref(),
        tools: &tools,
        emitter: &emitter,
        system: "You are a test.",
        limits: &limits,
        cancel: &CancellationToken::new(),
        review: None,
    }
    .run(&mut conversation, &mut UsageTotals::default())
    .await;
    drop(emitter);
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Outcome {
        result,
        requests: server.requests(),
        events,
    }
}

fn done_turn(number: usize) -> Vec<u8> {
    anthropic_stream(&Turn::new("Done.", &[]), number, Usage::default()).concat()
}

/// The content of the `n`-th assistant message of an Anthropic request.
fn assistant(body: &Value, n: usize) -> Vec<Value> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .nth(n)
        .unwrap()["content"]
        .as_array()
        .unwrap()
        .clone()
}

fn kinds(blocks: &[Value]) -> Vec<&str> {
    blocks.iter().map(|b| b["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn claude_thinking_blocks_go_back_unchanged_before_their_tool_use() {
    let out = run(
        turns_route(vec![
            fixture("anthropic/thinking-tool-use.sse"),
            fixture("anthropic/redacted-thinking-tool-use.sse"),
            done_turn(2),
        ]),
        |s| claude(s, "claude-sonnet-4-5", Some(2048)),
    )
    .await;
    assert_eq!(out.result.unwrap().summary, "Done.");
    assert_eq!(out.requests.len(), 3);
    for r in &out.requests {
        assert_eq!(
            r.body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert_eq!(r.body["max_tokens"], 512 + 2048, "above the budget");
        assert!(r.body.get("temperature").is_none() && r.body.get("top_k").is_none());
    }
    // The signed block exactly as streamed: thinking text joined, signature whole, first.
    let turn = assistant(&out.requests[1].body, 0);
    assert_eq!(kinds(&turn), ["thinking", "text", "tool_use"]);
    assert_eq!(
        turn[0]["thinking"],
        "The task is to look at a.py first. I should read it before changing anything."
    );
    assert!(
        turn[0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("EqQBCgIYAhIM1gbcDa9GJw")
    );
    assert!(
        turn[0]["signature"]
            .as_str()
            .unwrap()
            .ends_with("0B4CVbhR7jjPMQ===")
    );
    assert_eq!(turn[2]["id"], "toolu_01ThinkRead");
    // The next request keeps both turns' blocks, the redacted one verbatim.
    let first = assistant(&out.requests[2].body, 0);
    assert_eq!(
        first, turn,
        "an earlier turn is sent the same way again (cache prefix)"
    );
    let second = assistant(&out.requests[2].body, 1);
    assert_eq!(kinds(&second), ["redacted_thinking", "tool_use"]);
    let data = fixture("anthropic/redacted-thinking-tool-use.sse");
    let data = String::from_utf8(data).unwrap();
    let start: Value = serde_json::from_str(
        data.lines()
            .find(|l| l.contains("redacted_thinking"))
            .unwrap()
            .trim_start_matches("data: "),
    )
    .unwrap();
    assert_eq!(second[0]["data"], start["content_block"]["data"]);
    // The thinking is not the answer: no AI text carries it.
    let shown: String = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AiMessage { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(!shown.contains("I should read it"), "{shown}");
}

#[tokio::test]
async fn a_model_without_thinking_gets_none_and_the_run_says_so() {
    let out = run(
        turns_route(vec![
            anthropic_stream(
                &Turn::new("", &[("read_file", json!({"path": "a.py"}))]),
                0,
                Usage::default(),
            )
            .concat(),
            done_turn(1),
        ]),
        |s| claude(s, "claude-3-5-haiku-20241022", Some(2048)),
    )
    .await;
    out.result.unwrap();
    for r in &out.requests {
        assert!(r.body.get("thinking").is_none());
        assert_eq!(r.body["max_tokens"], 512);
    }
    let said = out.events.iter().any(|e| {
        matches!(e, Event::Status { message, .. }
            if message.contains("thinking_budget") && message.contains("ignored"))
    });
    assert!(said, "{:?}", out.events);
}

fn thinking_conversation() -> Vec<Message> {
    vec![
        Message::user_text("Task"),
        Message {
            role: Role::Assistant,
            blocks: vec![
                Block::Reasoning(Reasoning::Thinking {
                    thinking: "secret plan".into(),
                    signature: "SIGNATURE".into(),
                }),
                Block::Reasoning(Reasoning::RedactedThinking {
                    data: "REDACTED".into(),
                }),
                Block::ToolCall(ToolCall {
                    id: "toolu_1".into(),
                    name: "read_file".into(),
                    input: json!({"path": "a.py"}),
                }),
            ],
        },
        Message {
            role: Role::User,
            blocks: vec![Block::ToolResult {
                call_id: "toolu_1".into(),
                content: "x = 1".into(),
                is_error: false,
            }],
        },
    ]
}

#[test]
fn another_provider_never_gets_claudes_thinking() {
    let messages = thinking_conversation();
    let req = ChatRequest {
        system: "s",
        tools: &[],
        messages: &messages,
        max_output_tokens: 100,
    };
    for body in [
        openai::request_body("gpt-4.1", &req, true),
        responses::request_body("o4-mini", &req, responses::Options::default()),
    ] {
        let text = body.to_string();
        for secret in ["secret plan", "SIGNATURE", "REDACTED"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("toolu_1"),
            "the call and its result stay: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The Responses API

fn input_of(r: &mock_llm::Request) -> Vec<Value> {
    r.body["input"].as_array().unwrap().clone()
}

#[tokio::test]
async fn responses_carry_the_reasoning_item_and_the_function_call_output() {
    let out = run(
        turns_route(vec![
            fixture("responses/reasoning-tool-call.sse"),
            fixture("responses/text.sse"),
        ]),
        |s| responses_provider(s, "o4-mini"),
    )
    .await;
    let outcome = out.result.unwrap();
    assert_eq!(outcome.summary, "Done: a.py sets x to 1.");
    assert_eq!(out.requests.len(), 2);
    for r in &out.requests {
        assert_eq!(r.path, "/v1/responses");
        assert_eq!(r.headers["authorization"], "Bearer k");
        let b = &r.body;
        assert_eq!(
            (b["stream"].clone(), b["store"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(b["reasoning"], json!({"effort": "high"}));
        assert_eq!(b["max_output_tokens"], 512);
        assert_eq!(b["instructions"], "You are a test.");
        let read = b["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "read_file");
        assert_eq!(read.unwrap()["type"], "function");
        assert!(
            input_of(r).iter().all(|i| i.get("id").is_none()),
            "stateless: no ids"
        );
    }
    let input = input_of(&out.requests[1]);
    let kinds: Vec<&str> = input
        .iter()
        .map(|i| i["type"].as_str().or(i["role"].as_str()).unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["user", "reasoning", "function_call", "function_call_output"]
    );
    assert!(
        input[1]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAAABoZ1t6")
    );
    assert_eq!(input[2]["call_id"], "call_unLAR8MvFNptuiZK6K6HCy5k");
    assert_eq!(input[2]["name"], "read_file");
    assert_eq!(input[2]["arguments"], r#"{"path":"a.py"}"#);
    assert_eq!(input[3]["call_id"], "call_unLAR8MvFNptuiZK6K6HCy5k");
    assert!(
        input[3]["output"].as_str().unwrap().contains("x = 1"),
        "{}",
        input[3]
    );
    // Usage: cached tokens are cache reads, priced at o4-mini's list prices.
    let usage: Vec<(u64, u64, u64, Option<f64>)> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Usage {
                provider,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cost_usd,
                ..
            } => {
                assert_eq!(provider, "openai");
                Some((*input_tokens, *output_tokens, *cache_read_tokens, *cost_usd))
            }
            _ => None,
        })
        .collect();
    assert_eq!(usage.len(), 2);
    assert_eq!((usage[0].0, usage[0].1, usage[0].2), (564, 95, 1536));
    assert_eq!((usage[1].0, usage[1].1, usage[1].2), (352, 12, 2048));
    let cost = usage[0].3.unwrap();
    let want = (564.0 * 1.10 + 95.0 * 4.40 + 1536.0 * 0.275) / 1e6;
    assert!((cost - want).abs() < 1e-9, "{cost} vs {want}");
    assert_eq!(outcome.usage.cache_read_tokens, 1536 + 2048);
}

#[tokio::test]
async fn a_response_cut_at_max_output_tokens_is_a_cut_turn() {
    let out = run(
        turns_route(vec![
            fixture("responses/incomplete-max-output.sse"),
            fixture("responses/text.sse"),
        ]),
        |s| responses_provider(s, "o4-mini"),
    )
    .await;
    assert_eq!(out.result.unwrap().summary, "Done: a.py sets x to 1.");
    let input = input_of(&out.requests[1]);
    let result = input
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap();
    assert_eq!(result["call_id"], "call_cutWriteFile");
    let output = result["output"].as_str().unwrap();
    assert!(
        output.contains("not run") && output.contains("output-token limit"),
        "{output}"
    );
    let note = input.last().unwrap();
    assert_eq!(note["role"], "user");
    assert!(
        note.to_string()
            .contains("cut off at the output-token limit"),
        "{note}"
    );
    // The reasoning of the cut turn is kept too.
    assert!(input.iter().any(|i| i["type"] == "reasoning"));
    let said = out.events.iter().any(|e| {
        matches!(e, Event::Status { message, .. } if message.contains("cut at the output-token limit"))
    });
    assert!(said);
}

#[tokio::test]
async fn error_events_and_failed_responses_are_errors_with_their_status() {
    for (file, status) in [
        ("responses/error-event.sse", 503),
        ("responses/failed.sse", 500),
    ] {
        let server = MockServer::start(turns_route(vec![fixture(file)])).await;
        let p = responses_provider(&server, "o4-mini");
        let messages = vec![Message::user_text("hi")];
        let req = ChatRequest {
            system: "s",
            tools: &[],
            messages: &messages,
            max_output_tokens: 64,
        };
        let e = p.complete(&req, &|_: &str| {}).await.unwrap_err();
        assert!(
            matches!(e, LlmError::Http { status: s, .. } if s == status),
            "{file}: {e:?}"
        );
        assert!(e.is_retryable(), "{file}");
    }
}

#[test]
fn every_responses_fixture_decodes_the_same_however_split() {
    for file in [
        "responses/reasoning-tool-call.sse",
        "responses/text.sse",
        "responses/incomplete-max-output.sse",
    ] {
        let body = fixture(file);
        let whole = responses::decode_chunks([&body[..]], &|_: &str| {}).unwrap();
        for k in (0..body.len()).step_by(7) {
            let split = responses::decode_chunks([&body[..k], &body[k..]], &|_: &str| {}).unwrap();
            assert_eq!(split, whole, "{file} split at {k}");
            // Cut before its end, a stream is an error, never a short answer.
            if k + 40 < body.len() {
                let cut = responses::decode_chunks([&body[..k]], &|_: &str| {});
                assert!(cut.is_err(), "{file} cut at {k}");
            }
        }
        if file.contains("incomplete") {
            assert_eq!(whole.stop_reason, StopReason::MaxTokens);
            assert!(tiny_backspace::llm::input_error(&whole.tool_calls[0].input).is_some());
        }
    }
}

#[tokio::test]
async fn the_mock_route_speaks_the_responses_wire_format() {
    // A built stream (not a fixture) through the same route, as other tests may use it.
    let turn = Turn::new("Hello there, world.", &[("bash", json!({"command": "ls"}))]);
    let body = responses_stream(
        &turn,
        0,
        Usage {
            input: 10,
            output: 5,
            cache_read: 90,
            cache_write: 0,
        },
        Some("ENC"),
    )
    .concat();
    let server = MockServer::start(turns_route(vec![body])).await;
    let p = responses_provider(&server, "gpt-5");
    let messages = vec![Message::user_text("hi")];
    let req = ChatRequest {
        system: "s",
        tools: &[],
        messages: &messages,
        max_output_tokens: 64,
    };
    let r = p.complete(&req, &|_: &str| {}).await.unwrap();
    assert_eq!(r.text, "Hello there, world.");
    assert_eq!(r.tool_calls[0].input, json!({"command": "ls"}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        r.reasoning,
        vec![Reasoning::OpenAi {
            summary: vec![],
            encrypted_content: "ENC".into()
        }]
    );
    assert_eq!((r.usage.input_tokens, r.usage.cache_read_tokens), (10, 90));
}

#[tokio::test]
async fn chat_completions_carry_reasoning_effort() {
    let body = mock_llm::openai_stream(&Turn::new("ok", &[]), 0, Usage::default()).concat();
    let server = MockServer::start(turns_route(vec![body])).await;
    let s = LlmSettings {
        reasoning_effort: Some(ReasoningEffort::Medium),
        ..settings()
    };
    // A compatible server: Chat Completions, and the effort as configured.
    let p = OpenAiProvider::new(Some(&server.url_v1()), None, "gpt-oss-20b", &s).unwrap();
    let messages = vec![Message::user_text("hi")];
    let req = ChatRequest {
        system: "s",
        tools: &[],
        messages: &messages,
        max_output_tokens: 64,
    };
    assert_eq!(p.complete(&req, &|_: &str| {}).await.unwrap().text, "ok");
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.body["reasoning_effort"], "medium");
    assert!(r.body.get("reasoning").is_none());
}

#[tokio::test]
async fn the_thinking_budget_counts_against_the_context_window() {
    use tiny_backspace::llm::retry::Chain;
    // ~10k estimated tokens of old tool output against a 20k window: it fits without thinking,
    // not with a 10k budget, which `max_tokens` adds.
    let mut messages = vec![Message::user_text("Task")];
    for i in 0..3 {
        messages.push(Message {
            role: Role::Assistant,
            blocks: vec![Block::ToolCall(ToolCall {
                id: format!("toolu_{i}"),
                name: "read_file".into(),
                input: json!({"path": "big"}),
            })],
        });
        messages.push(Message {
            role: Role::User,
            blocks: vec![Block::ToolResult {
                call_id: format!("toolu_{i}"),
                content: "y".repeat(10_000),
                is_error: false,
            }],
        });
    }
    let mut elided = vec![];
    for budget in [None, Some(10_000)] {
        let body = done_turn(0);
        let server = MockServer::start(Arc::new(move |_: &mock_llm::Request| {
            mock_llm::Reply::sse(mock_llm::per_event(&body))
        }))
        .await;
        let s = LlmSettings {
            context_window: Some(20_000),
            thinking_budget: budget,
            ..settings()
        };
        let chain = Chain::new(vec![claude(&server, "claude-sonnet-4-5", budget)], s);
        let req = ChatRequest {
            system: "s",
            tools: &[],
            messages: &messages,
            max_output_tokens: 512,
        };
        chain.complete(&req, &|_: &str| {}).await.unwrap();
        let sent = server.requests()[0].body.to_string();
        elided.push(sent.contains("output elided"));
    }
    assert_eq!(elided, [false, true]);
}
