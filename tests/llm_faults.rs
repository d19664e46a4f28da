//! Fault injection through the real pipeline: a local repository, the real agent loop and tools,
//! and local model servers that fail in the ways real APIs do. Each run must finish with the same
//! patch, the same tool executions and the same `AI Message`s as the fault-free run — or end with
//! a clear error; never hang, never run a tool twice, never lose the conversation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mock_llm::{Fault, Format, MockServer, Model};
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::{ErrorCode, Event};
use tiny_backspace::llm::Provider;
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::openai::OpenAiProvider;
use tiny_backspace::llm::retry::Chain;
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::pipeline::{self, Gate, RunRequest};
use tiny_backspace::secret::Secret;

const KEY_A: &str = "sk-ant-api03-faults-SECRET-a";
const KEY_O: &str = "sk-proj-faults-SECRET-o";

fn settings() -> LlmSettings {
    LlmSettings {
        max_attempts: 3,
        initial_backoff_ms: 5,
        max_backoff_ms: 20,
        max_retry_after_ms: 5_000,
        connect_timeout_ms: 2_000,
        response_timeout_ms: 5_000,
        read_timeout_ms: 1_000,
        ..Default::default()
    }
}

struct Servers {
    a_model: Arc<Model>,
    o_model: Arc<Model>,
    a: MockServer,
    o: MockServer,
}

async fn servers() -> Servers {
    let a_model = Model::new(Format::Anthropic, mock_llm::task_turns());
    let o_model = Model::new(Format::OpenAi, mock_llm::task_turns());
    let a = MockServer::start(a_model.handler()).await;
    let o = MockServer::start(o_model.handler()).await;
    Servers {
        a_model,
        o_model,
        a,
        o,
    }
}

impl Servers {
    fn anthropic(&self) -> Arc<dyn Provider> {
        Arc::new(
            AnthropicProvider::new(
                Some(&self.a.url()),
                Some(Secret::new(KEY_A)),
                "claude-sonnet-4-5",
                &settings(),
            )
            .unwrap(),
        )
    }

    fn openai(&self) -> Arc<dyn Provider> {
        Arc::new(
            OpenAiProvider::new(
                Some(&self.o.url_v1()),
                Some(Secret::new(KEY_O)),
                "gpt-4.1",
                &settings(),
            )
            .unwrap(),
        )
    }

    fn chain_anthropic_first(&self) -> Arc<dyn Provider> {
        Arc::new(Chain::new(
            vec![self.anthropic(), self.openai()],
            settings(),
        ))
    }

    fn chain_openai_first(&self) -> Arc<dyn Provider> {
        Arc::new(Chain::new(
            vec![self.openai(), self.anthropic()],
            settings(),
        ))
    }
}

#[derive(Debug)]
struct Run {
    events: Vec<Event>,
    patch: Option<String>,
    tools: Vec<String>,
    messages: Vec<String>,
    /// All streamed text, joined.
    deltas: String,
    statuses: Vec<String>,
    usage: Vec<String>,
    error: Option<(String, bool)>,
}

fn tool_signature(e: &Event) -> Option<String> {
    Some(match e {
        Event::ToolRead { filepath, .. } => format!("read {filepath}"),
        Event::ToolEdit { filepath, .. } => format!("edit {filepath}"),
        Event::ToolBash {
            command,
            output,
            exit_code,
            ..
        } => format!("bash {command} -> {exit_code} {output}"),
        Event::ToolSearch { pattern, .. } => format!("search {pattern}"),
        Event::ToolList { path, .. } => format!("list {path}"),
        Event::ToolError { tool, message, .. } => format!("error {tool}: {message}"),
        _ => return None,
    })
}

async fn run(provider: Arc<dyn Provider>, tmp: &Path, repo: &Path) -> Run {
    let home = tmp.join(format!("home-{}", fastrand::u32(..)));
    let overrides = Overrides {
        sandbox: Some("none".into()),
        home: Some(home),
        ..Default::default()
    };
    let config = Config::load_from(&overrides, &|_| None, None, None).unwrap();
    let request = RunRequest {
        repo: repo.display().to_string(),
        prompt: "Make divide reject a zero divisor".into(),
        base: None,
        gate: Gate::NoPr,
        keep_workspace: false,
        publish: Default::default(),
        provider: Some(provider),
    };
    let mut p = pipeline::start(request, Arc::new(config), tmp.to_path_buf());
    let mut events = Vec::new();
    let collect = async {
        while let Some(e) = p.events.recv().await {
            events.push(e);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the run hung");
    p.task.await.unwrap();
    let mut r = Run {
        patch: None,
        tools: vec![],
        messages: vec![],
        deltas: String::new(),
        statuses: vec![],
        usage: vec![],
        error: None,
        events: vec![],
    };
    for e in &events {
        if let Some(s) = tool_signature(e) {
            r.tools.push(s);
        }
        match e {
            Event::Diff { patch, .. } => r.patch = Some(patch.clone()),
            Event::AiMessage { message, .. } => r.messages.push(message.clone()),
            Event::AiDelta { delta, .. } => r.deltas.push_str(delta),
            Event::Status { message, .. } => r.statuses.push(message.clone()),
            Event::Usage {
                provider, model, ..
            } => r.usage.push(format!("{provider}:{model}")),
            Event::Error {
                message, retryable, ..
            } => r.error = Some((message.clone(), *retryable)),
            _ => {}
        }
    }
    r.events = events;
    for line in r.events.iter().map(Event::to_json_line) {
        assert!(
            !line.contains("SECRET"),
            "a key leaked into an event: {line}"
        );
    }
    r
}

fn assert_same_work(base: &Run, got: &Run, case: &str) {
    assert_eq!(got.error, None, "{case}: {:?}", got.statuses);
    assert!(
        matches!(got.events.last(), Some(Event::Done { .. })),
        "{case}"
    );
    assert_eq!(got.patch, base.patch, "{case}: patch differs");
    assert_eq!(got.tools, base.tools, "{case}: tool executions differ");
    assert_eq!(got.messages, base.messages, "{case}: AI Messages differ");
    // Text a failed attempt streamed is not streamed again by the retry.
    assert_eq!(got.deltas, base.deltas, "{case}: streamed text differs");
    assert_eq!(
        got.usage.len(),
        base.usage.len(),
        "{case}: one Usage per turn"
    );
}

fn assert_pairing(s: &Servers) {
    for r in s.a.requests() {
        mock_llm::check_anthropic_pairing(&r.body).unwrap();
    }
    for r in s.o.requests() {
        mock_llm::check_openai_pairing(&r.body).unwrap();
    }
}

async fn baseline(tmp: &Path, repo: &Path) -> Run {
    let s = servers().await;
    let base = run(s.chain_anthropic_first(), tmp, repo).await;
    assert_eq!(base.error, None, "{:?}", base.statuses);
    let patch = base.patch.clone().unwrap();
    assert!(
        patch.contains("+        raise ValueError(\"division by zero\")"),
        "{patch}"
    );
    assert!(patch.contains("NOTES.md"), "{patch}");
    assert_eq!(base.usage, vec!["anthropic:claude-sonnet-4-5"; 7]);
    assert_eq!(base.tools.len(), 7, "{:?}", base.tools);
    assert_eq!(base.messages.len(), 5, "{:?}", base.messages);
    assert!(s.o.requests().is_empty());
    assert_pairing(&s);
    base
}

fn transient_faults() -> Vec<(&'static str, usize, Fault)> {
    vec![
        (
            "429 with retry-after",
            1,
            Fault::Status(
                429,
                vec![("retry-after-ms".into(), "300".into())],
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#
                    .into(),
            ),
        ),
        ("529 overloaded", 2, Fault::overloaded()),
        (
            "overloaded_error event mid-stream",
            0,
            Fault::ErrorEvent(4, "overloaded_error"),
        ),
        (
            "500",
            3,
            Fault::status(500, r#"{"error":{"message":"internal"}}"#),
        ),
        ("reset mid-stream", 1, Fault::Reset(5)),
        ("stream cut short", 3, Fault::Cut(6)),
        ("malformed JSON in an event", 4, Fault::Malformed(3)),
        ("stall past the read timeout", 2, Fault::Stall(3)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_with_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());
    let base = baseline(tmp.path(), &repo).await;
    for primary in [Format::Anthropic, Format::OpenAi] {
        for (case, turn, fault) in transient_faults() {
            let case = format!("{primary:?}: {case}");
            let s = servers().await;
            let (model, server, chain) = match primary {
                Format::Anthropic => (&s.a_model, &s.a, s.chain_anthropic_first()),
                Format::OpenAi => (&s.o_model, &s.o, s.chain_openai_first()),
            };
            model.fault(turn, fault.clone());
            let got = run(chain, tmp.path(), &repo).await;
            assert_same_work(&base, &got, &case);
            let retry = got
                .statuses
                .iter()
                .find(|m| m.contains("retrying in"))
                .unwrap_or_else(|| panic!("{case}: no retry status in {:?}", got.statuses));
            assert!(retry.contains("(attempt 2 of 3)"), "{case}: {retry}");
            let label = match primary {
                Format::Anthropic => "anthropic:claude-sonnet-4-5",
                Format::OpenAi => "openai:gpt-4.1",
            };
            assert!(retry.starts_with(label), "{case}: {retry}");
            assert_eq!(got.usage, vec![label; 7], "{case}");
            // One extra request, for the faulty turn; nothing went to the fallback.
            let requests = server.requests();
            assert_eq!(requests.len(), 8, "{case}");
            let other = match primary {
                Format::Anthropic => &s.o,
                Format::OpenAi => &s.a,
            };
            assert!(other.requests().is_empty(), "{case}");
            let same_turn: Vec<_> = requests
                .iter()
                .filter(|r| Model::turn_of(&r.body) == turn)
                .collect();
            assert_eq!(same_turn.len(), 2, "{case}");
            // The retry asks for exactly the same turn: the conversation was not changed.
            assert_eq!(same_turn[0].body, same_turn[1].body, "{case}");
            if case.contains("retry-after") {
                let gap = same_turn[1].at - same_turn[0].at;
                assert!(
                    gap >= Duration::from_millis(300),
                    "{case}: waited only {gap:?}"
                );
                assert!(retry.contains("retrying in 0.3 s"), "{case}: {retry}");
            }
            assert_pairing(&s);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_failing_for_good_hands_the_conversation_to_openai() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());
    let base = baseline(tmp.path(), &repo).await;
    let s = servers().await;
    s.a_model.fail_from(3, Fault::overloaded());
    let got = run(s.chain_anthropic_first(), tmp.path(), &repo).await;
    assert_same_work(&base, &got, "fallback");
    let mut want = vec!["anthropic:claude-sonnet-4-5"; 3];
    want.extend(vec!["openai:gpt-4.1"; 4]);
    assert_eq!(got.usage, want);
    let switch = got
        .statuses
        .iter()
        .find(|m| m.contains("continues with openai:gpt-4.1"))
        .unwrap_or_else(|| panic!("no fallback status: {:?}", got.statuses));
    assert!(switch.contains("gave up after 3 attempts"), "{switch}");
    // Three turns plus three attempts at the fourth; then OpenAI got the whole conversation.
    assert_eq!(s.a.requests().len(), 6);
    let o = s.o.requests();
    assert_eq!(o.len(), 4);
    let first = &o[0].body["messages"];
    let ids: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["toolu_0_0", "toolu_0_1", "toolu_1_0", "toolu_2_0"]);
    assert_pairing(&s);
}

/// The code of the run's final `Error` event.
fn error_code(events: &[Event]) -> Option<ErrorCode> {
    match events.last() {
        Some(Event::Error { code, .. }) => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_surface_and_exhaustion_is_a_clear_retryable_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());
    let base = baseline(tmp.path(), &repo).await;

    // A 400 is a bug to show, not something to retry or hide behind the fallback.
    let s = servers().await;
    s.a_model.fault(
        2,
        Fault::status(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}"#,
        ),
    );
    let got = run(s.chain_anthropic_first(), tmp.path(), &repo).await;
    let (message, retryable) = got.error.clone().expect("the run should fail");
    assert!(
        message.contains("400") && message.contains("invalid_request_error"),
        "{message}"
    );
    assert!(!retryable);
    assert_eq!(error_code(&got.events), Some(ErrorCode::ModelRequest));
    assert_eq!(s.a.requests().len(), 3, "no retry of a 400");
    assert!(s.o.requests().is_empty(), "no fallback on a 400");
    assert_eq!(
        got.tools,
        base.tools[..3],
        "the work before the error is kept, once"
    );
    assert!(matches!(got.events.last(), Some(Event::Error { .. })));

    // An auth error likewise.
    let s = servers().await;
    s.a_model.fault(
        0,
        Fault::status(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
    );
    let got = run(s.chain_anthropic_first(), tmp.path(), &repo).await;
    let (message, _) = got.error.clone().unwrap();
    assert!(message.contains("401"), "{message}");
    assert_eq!(error_code(&got.events), Some(ErrorCode::ModelAuth));
    assert!(s.o.requests().is_empty());

    // Everything down: a clear, retryable error naming both providers; no tool ran twice.
    let s = servers().await;
    s.a_model.fail_from(2, Fault::status(503, "unavailable"));
    s.o_model.fail_from(2, Fault::Cut(2));
    let got = run(s.chain_anthropic_first(), tmp.path(), &repo).await;
    let (message, retryable) = got.error.clone().unwrap();
    assert!(retryable, "{message}");
    assert!(message.contains("no model could answer"), "{message}");
    assert_eq!(error_code(&got.events), Some(ErrorCode::ModelUnavailable));
    assert!(message.contains("anthropic:claude-sonnet-4-5") && message.contains("openai:gpt-4.1"));
    assert_eq!(got.tools, base.tools[..3]);
    assert_eq!(s.a.requests().len(), 2 + 3);
    assert_eq!(s.o.requests().len(), 3);
    assert_pairing(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_primary_is_retried_then_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = mock_llm::make_repo(tmp.path());
    let base = baseline(tmp.path(), &repo).await;

    // Nothing listens on the Anthropic port: connection refused, retried, then OpenAI.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = servers().await;
    let dead: Arc<dyn Provider> = Arc::new(
        AnthropicProvider::new(
            Some(&dead_url),
            Some(Secret::new(KEY_A)),
            "claude-sonnet-4-5",
            &settings(),
        )
        .unwrap(),
    );
    let chain = Arc::new(Chain::new(vec![dead, s.openai()], settings()));
    let got = run(chain, tmp.path(), &repo).await;
    assert_same_work(&base, &got, "connection refused");
    assert_eq!(got.usage, vec!["openai:gpt-4.1"; 7]);
    assert!(
        got.statuses
            .iter()
            .any(|m| m.contains("could not reach the model server") && m.contains("attempt 2 of 3")),
        "{:?}",
        got.statuses
    );

    // A server that takes the request and never answers: the header wait is bounded.
    let s = servers().await;
    s.a_model.fault(1, Fault::Silence);
    let quick = LlmSettings {
        response_timeout_ms: 1_000,
        ..settings()
    };
    let a: Arc<dyn Provider> = Arc::new(
        AnthropicProvider::new(
            Some(&s.a.url()),
            Some(Secret::new(KEY_A)),
            "claude-sonnet-4-5",
            &quick,
        )
        .unwrap(),
    );
    let chain = Arc::new(Chain::new(vec![a, s.openai()], quick));
    let got = run(chain, tmp.path(), &repo).await;
    assert_same_work(&base, &got, "silent server");
    assert!(
        got.statuses.iter().any(|m| m.contains("no answer within")),
        "{:?}",
        got.statuses
    );
    assert_eq!(got.usage, vec!["anthropic:claude-sonnet-4-5"; 7]);
}
