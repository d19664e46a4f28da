//! The providers' own recorded streams (tests/fixtures/llm, from the official SDKs' tests and the
//! API documentation), replayed by a local server byte for byte and split at every chunk boundary,
//! must end in the message the API meant: text, tool calls with parsed input, stop reason, usage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_llm::{End, Framing, MockServer, Reply};
use serde_json::{Value, json};
use tiny_backspace::llm::anthropic::{self, AnthropicProvider};
use tiny_backspace::llm::openai::{self, OpenAiProvider};
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::llm::sse;
use tiny_backspace::llm::{
    ChatRequest, ChatResponse, LlmError, Message, Observer, Provider, StopReason,
};
use tiny_backspace::secret::Secret;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llm")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Expect {
    file: &'static str,
    text: &'static str,
    calls: Vec<(&'static str, &'static str, Value)>,
    stop: StopReason,
    /// input, output, cache read, cache write
    usage: (u64, u64, u64, u64),
}

fn anthropic_expectations() -> Vec<Expect> {
    vec![
        Expect {
            file: "anthropic/basic-streaming-request-response.sse",
            text: "Hello!",
            calls: vec![],
            stop: StopReason::EndTurn,
            usage: (25, 15, 0, 0),
        },
        Expect {
            file: "anthropic/sdk-basic.sse",
            text: "Hello there!",
            calls: vec![],
            stop: StopReason::EndTurn,
            usage: (11, 6, 0, 0),
        },
        Expect {
            file: "anthropic/sdk-message-delta-omitted-usage.sse",
            text: "Hello there!",
            calls: vec![],
            stop: StopReason::EndTurn,
            usage: (25, 8, 5, 10),
        },
        Expect {
            file: "anthropic/sdk-unknown-events.sse",
            text: "Hello there!",
            calls: vec![],
            stop: StopReason::EndTurn,
            usage: (11, 6, 0, 0),
        },
        Expect {
            file: "anthropic/sdk-tool-use.sse",
            text: "I'll check the current weather in Paris for you.",
            calls: vec![(
                "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                "get_weather",
                json!({"location": "Paris"}),
            )],
            stop: StopReason::ToolUse,
            usage: (377, 65, 0, 0),
        },
        Expect {
            file: "anthropic/streaming-request-with-tool-use-response.sse",
            text: "Okay, let's check the weather for San Francisco, CA:",
            calls: vec![(
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                json!({"location": "San Francisco, CA", "unit": "fahrenheit"}),
            )],
            stop: StopReason::ToolUse,
            usage: (472, 89, 0, 0),
        },
    ]
}

fn openai_expectations() -> Vec<Expect> {
    vec![
        Expect {
            file: "openai/recorded-text.sse",
            text: "{\"",
            calls: vec![],
            stop: StopReason::MaxTokens,
            usage: (79, 1, 0, 0),
        },
        Expect {
            file: "openai/recorded-tool-calls-a.sse",
            text: "",
            calls: vec![(
                "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                "get_weather",
                json!({"city": "New York City"}),
            )],
            stop: StopReason::ToolUse,
            usage: (44, 16, 0, 0),
        },
        Expect {
            file: "openai/recorded-tool-calls-b.sse",
            text: "",
            calls: vec![(
                "call_CTf1nWJLqSeRgDqaCG27xZ74",
                "get_weather",
                json!({"city": "San Francisco", "state": "CA"}),
            )],
            stop: StopReason::ToolUse,
            usage: (48, 19, 0, 0),
        },
    ]
}

fn check(e: &Expect, r: &ChatResponse) {
    assert_eq!(r.text, e.text, "{}", e.file);
    let calls: Vec<(&str, &str, Value)> = r
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.input.clone()))
        .collect();
    let want: Vec<(&str, &str, Value)> = e
        .calls
        .iter()
        .map(|(a, b, c)| (*a, *b, c.clone()))
        .collect();
    assert_eq!(calls, want, "{}", e.file);
    assert_eq!(r.stop_reason, e.stop, "{}", e.file);
    let u = &r.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens
        ),
        e.usage,
        "{}",
        e.file
    );
}

/// Ways to deliver a body: whole, one byte per chunk, one SSE event per chunk, random cuts.
fn deliveries(body: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = vec![vec![body.to_vec()], body.iter().map(|b| vec![*b]).collect()];
    let mut per_event = Vec::new();
    let mut start = 0;
    for i in 0..body.len().saturating_sub(1) {
        if &body[i..i + 2] == b"\n\n" {
            per_event.push(body[start..i + 2].to_vec());
            start = i + 2;
        }
    }
    per_event.push(body[start..].to_vec());
    out.push(per_event);
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..12 {
        let mut cuts: Vec<usize> = (0..3).map(|_| rng.usize(0..=body.len())).collect();
        cuts.sort();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for c in cuts {
            pieces.push(body[prev..c].to_vec());
            prev = c;
        }
        pieces.push(body[prev..].to_vec());
        out.push(pieces);
    }
    out
}

#[derive(Default)]
struct Collect(Mutex<String>);

impl Observer for Collect {
    fn text(&self, delta: &str) {
        self.0.lock().unwrap().push_str(delta);
    }
}

fn settings() -> LlmSettings {
    LlmSettings {
        read_timeout_ms: 2_000,
        response_timeout_ms: 5_000,
        ..Default::default()
    }
}

fn request_messages() -> Vec<Message> {
    vec![Message::user_text("What is the weather?")]
}

async fn replay(provider: &dyn Provider) -> (Result<ChatResponse, LlmError>, String) {
    let messages = request_messages();
    let req = ChatRequest {
        system: "s",
        tools: &[],
        messages: &messages,
        max_output_tokens: 64,
    };
    let seen = Collect::default();
    let r = tokio::time::timeout(Duration::from_secs(10), provider.complete(&req, &seen))
        .await
        .expect("the provider hung");
    let text = seen.0.lock().unwrap().clone();
    (r, text)
}

/// A server that sends whatever `current` holds.
async fn server(current: Arc<Mutex<Reply>>) -> MockServer {
    MockServer::start(Arc::new(move |_| current.lock().unwrap().clone())).await
}

#[tokio::test]
async fn anthropic_recordings_replay_over_http_however_split() {
    let current = Arc::new(Mutex::new(Reply::sse(vec![])));
    let srv = server(current.clone()).await;
    let p = AnthropicProvider::new(
        Some(&srv.url()),
        Some(Secret::new("sk-ant-fixture")),
        "claude-sonnet-4-5",
        &settings(),
    )
    .unwrap();
    for e in anthropic_expectations() {
        let body = fixture(e.file);
        for (i, chunks) in deliveries(&body).into_iter().enumerate() {
            for framing in [Framing::Chunked, Framing::CloseDelimited] {
                *current.lock().unwrap() = Reply::Stream {
                    chunks: chunks.clone(),
                    framing,
                    end: End::Complete,
                };
                let (r, streamed) = replay(&p).await;
                let r = r.unwrap_or_else(|err| panic!("{} delivery {i}: {err}", e.file));
                check(&e, &r);
                assert_eq!(streamed, e.text, "{} streamed text", e.file);
                // claude-sonnet-4-5 has a list price: $3 in, $15 out, $0.30 read, $3.75 write.
                let (i_, o, cr, cw) = e.usage;
                let want =
                    (i_ as f64 * 3.0 + o as f64 * 15.0 + cr as f64 * 0.3 + cw as f64 * 3.75) / 1e6;
                assert!((r.usage.cost_usd.unwrap() - want).abs() < 1e-12);
            }
        }
    }
}

#[tokio::test]
async fn openai_recordings_replay_over_http_however_split() {
    let current = Arc::new(Mutex::new(Reply::sse(vec![])));
    let srv = server(current.clone()).await;
    // An unknown model name: usage is reported, the cost is unknown (never invented).
    let p = OpenAiProvider::new(Some(&srv.url_v1()), None, "local-model", &settings()).unwrap();
    let priced =
        OpenAiProvider::new(Some(&srv.url_v1()), None, "gpt-4o-2024-08-06", &settings()).unwrap();
    for e in openai_expectations() {
        let body = fixture(e.file);
        for (i, chunks) in deliveries(&body).into_iter().enumerate() {
            *current.lock().unwrap() = Reply::sse(chunks.clone());
            let (r, streamed) = replay(&p).await;
            let r = r.unwrap_or_else(|err| panic!("{} delivery {i}: {err}", e.file));
            check(&e, &r);
            assert_eq!(streamed, e.text);
            assert_eq!(r.usage.cost_usd, None);
        }
        *current.lock().unwrap() = Reply::sse(vec![body.clone()]);
        let (r, _) = replay(&priced).await;
        let r = r.unwrap();
        let want = (e.usage.0 as f64 * 2.5 + e.usage.1 as f64 * 10.0) / 1e6;
        assert!(
            (r.usage.cost_usd.unwrap() - want).abs() < 1e-12,
            "{}",
            e.file
        );
    }
}

#[test]
fn recordings_decode_identically_at_every_split_point() {
    let none = |_: &str| {};
    for (format, expectations) in [
        ("a", anthropic_expectations()),
        ("o", openai_expectations()),
    ] {
        for e in expectations {
            let body = fixture(e.file);
            let decode = |chunks: &[&[u8]]| match format {
                "a" => anthropic::decode_chunks(chunks.iter().copied(), &none),
                _ => openai::decode_chunks(chunks.iter().copied(), &none),
            };
            let whole = decode(&[&body]).unwrap();
            check(&e, &whole);
            // At every split point the events are the same as for the whole body, so the
            // message built from them is too (checked in full for byte-by-byte delivery).
            let events = sse::decode_all(&body).unwrap();
            for k in 0..=body.len() {
                let mut d = sse::SseDecoder::new();
                let mut got = Vec::new();
                d.push(&body[..k], &mut got).unwrap();
                d.push(&body[k..], &mut got).unwrap();
                d.finish(&mut got).unwrap();
                assert_eq!(got, events, "{} split at {k}", e.file);
            }
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(decode(&bytes).unwrap(), whole, "{} byte by byte", e.file);
            // CRLF line endings decode the same.
            let crlf = String::from_utf8(body.clone())
                .unwrap()
                .replace('\n', "\r\n");
            assert_eq!(
                decode(&[crlf.as_bytes()]).unwrap(),
                whole,
                "{} CRLF",
                e.file
            );
        }
    }
}

#[tokio::test]
async fn documentation_fragments_end_in_clear_errors_never_hangs() {
    let current = Arc::new(Mutex::new(Reply::sse(vec![])));
    let srv = server(current.clone()).await;
    let p =
        AnthropicProvider::new(Some(&srv.url()), None, "claude-sonnet-4-5", &settings()).unwrap();
    for file in [
        "anthropic/text-delta-text-delta.sse",
        "anthropic/input-json-delta-input-json-delta.sse",
    ] {
        *current.lock().unwrap() = Reply::sse(vec![fixture(file)]);
        let (r, _) = replay(&p).await;
        let err = r.unwrap_err();
        assert!(matches!(err, LlmError::Stream(_)), "{file}: {err:?}");
        assert!(err.is_retryable());
    }
    *current.lock().unwrap() =
        Reply::sse(vec![fixture("anthropic/error-events-example-error.sse")]);
    let (r, _) = replay(&p).await;
    match r.unwrap_err() {
        e @ LlmError::Http { status: 529, .. } => {
            assert!(e.is_retryable());
            assert!(e.to_string().contains("overloaded_error"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Every recorded stream cut anywhere before its end is an error, not a short answer.
    for e in anthropic_expectations() {
        let body = fixture(e.file);
        let stop = body
            .windows(b"message_delta".len())
            .position(|w| w == b"message_delta")
            .unwrap();
        for cut in (0..stop).step_by(37) {
            let r = anthropic::decode_chunks([&body[..cut]], &|_: &str| {});
            assert!(r.is_err(), "{} cut at {cut} was accepted", e.file);
        }
    }
    for e in openai_expectations() {
        let body = fixture(e.file);
        let stop = body
            .windows(b"finish_reason\":\"".len())
            .position(|w| w == b"finish_reason\":\"")
            .unwrap();
        for cut in (0..stop).step_by(37) {
            let r = openai::decode_chunks([&body[..cut]], &|_: &str| {});
            assert!(r.is_err(), "{} cut at {cut} was accepted", e.file);
        }
    }
}

#[tokio::test]
async fn servers_that_ignore_stream_true_and_answer_with_one_json_document() {
    let current = Arc::new(Mutex::new(Reply::Status {
        status: 200,
        headers: vec![],
        body: json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "tool_use", "id": "toolu_9", "name": "read_file", "input": {"path": "a"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 2}})
        .to_string(),
    }));
    let srv = server(current.clone()).await;
    let a =
        AnthropicProvider::new(Some(&srv.url()), None, "claude-sonnet-4-5", &settings()).unwrap();
    let (r, streamed) = replay(&a).await;
    let r = r.unwrap();
    assert_eq!((r.text.as_str(), streamed.as_str()), ("Hi", "Hi"));
    assert_eq!(r.tool_calls[0].id, "toolu_9");
    assert_eq!(r.tool_calls[0].input, json!({"path": "a"}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.cache_read_tokens
        ),
        (10, 3, 2)
    );

    *current.lock().unwrap() = Reply::Status {
        status: 200,
        headers: vec![],
        body: json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9",
                "type": "function", "function": {"name": "bash", "arguments": "{\"command\":\"ls\"}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 3}})
        .to_string(),
    };
    let o = OpenAiProvider::new(Some(&srv.url_v1()), None, "local", &settings()).unwrap();
    let (r, _) = replay(&o).await;
    let r = r.unwrap();
    assert_eq!(r.tool_calls[0].id, "call_9");
    assert_eq!(r.tool_calls[0].input, json!({"command": "ls"}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (10, 3));
}
