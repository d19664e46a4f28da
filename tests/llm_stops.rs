//! When the agent stops, against local servers speaking the real wire formats: a turn cut at the
//! output-token limit never ends the run (its interrupted tool call is not run, and the next
//! request says why); a tool input that is not valid JSON is answered with the parser's own
//! error; the last turn of the turn budget says so, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/toolbox.rs"]
mod toolbox;

#[path = "support/mock_llm/mod.rs"]
mod mock_llm;

use std::sync::Arc;
use std::time::Duration;

use mock_llm::{CutInput, Fault, Format, MockServer, Model, Turn};
use serde_json::{Value, json};
use tiny_backspace::agent::{AgentError, AgentLimits, AgentOutcome, AgentRun};
use tiny_backspace::emit::Emitter;
use tiny_backspace::event::{Event, UsageTotals};
use tiny_backspace::llm::anthropic::AnthropicProvider;
use tiny_backspace::llm::openai::OpenAiProvider;
use tiny_backspace::llm::settings::LlmSettings;
use tiny_backspace::llm::{Message, Provider};
use tiny_backspace::secret::Secret;
use tokio_util::sync::CancellationToken;

struct Outcome {
    result: Result<AgentOutcome, AgentError>,
    requests: Vec<Value>,
    events: Vec<Event>,
    root: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

fn provider(format: Format, server: &MockServer) -> Arc<dyn Provider> {
    let settings = LlmSettings {
        max_attempts: 1,
        read_timeout_ms: 5_000,
        ..Default::default()
    };
    match format {
        Format::Anthropic => Arc::new(
            AnthropicProvider::new(
                Some(&server.url()),
                Some(Secret::new("k")),
                "claude-sonnet-4-5",
                &settings,
            )
            .unwrap(),
        ),
        Format::OpenAi => Arc::new(
            OpenAiProvider::new(
                Some(&server.url_v1()),
                Some(Secret::new("k")),
                "gpt-4.1",
                &settings,
            )
            .unwrap(),
        ),
    }
}

/// Runs the real agent loop and tools on a fresh work tree against `model`.
async fn run(format: Format, model: Arc<Model>, limits: AgentLimits) -> Outcome {
    let server = MockServer::start(model.handler()).await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    let tools = toolbox::toolbox(&root, git_dir, "t", 4000);
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let emitter = Emitter::new("t", tx);
    let provider = provider(format, &server);
    let cancel = CancellationToken::new();
    let mut conversation = vec![Message::user_text("Task: do it")];
    let mut usage = UsageTotals::default();
    let result = AgentRun {
        provider: provider.as_ref(),
        tools: &tools,
        emitter: &emitter,
        system: "You are a test.",
        limits: &limits,
        cancel: &cancel,
        review: None,
    }
    .run(&mut conversation, &mut usage)
    .await;
    drop(emitter);
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Outcome {
        result,
        requests: server.requests().into_iter().map(|r| r.body).collect(),
        events,
        root,
        _tmp: tmp,
    }
}

/// Everything the request sends after the model's last turn, as text (both wire formats).
fn after_last_turn(body: &Value) -> String {
    let msgs = body["messages"].as_array().unwrap();
    let last = msgs.iter().rposition(|m| m["role"] == "assistant").unwrap();
    serde_json::to_string(&msgs[last + 1..]).unwrap()
}

fn limits() -> AgentLimits {
    AgentLimits {
        max_turns: 10,
        max_total_tokens: 1_000_000,
        max_duration: Duration::from_secs(600),
        max_output_tokens: 512,
        self_review: false,
    }
}

fn edits(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ToolEdit { filepath, .. } => Some(filepath.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_tool_call_cut_at_max_tokens_is_not_run_and_the_model_is_told() {
    for format in [Format::Anthropic, Format::OpenAi] {
        let big = "line of a long file\n".repeat(40);
        let model = Model::new(
            format,
            vec![
                Turn::new(
                    "Writing the file.",
                    &[(
                        "write_file",
                        json!({"path": "big.txt", "content": big.clone()}),
                    )],
                ),
                Turn::new(
                    "",
                    &[(
                        "write_file",
                        json!({"path": "small.txt", "content": "part 1\n"}),
                    )],
                ),
                Turn::new("Wrote small.txt in parts.", &[]),
            ],
        );
        model.fault(
            0,
            Fault::CutInput(CutInput {
                keep: 60,
                max_tokens: true,
            }),
        );
        let out = run(format, model, limits()).await;
        let outcome = out.result.unwrap();
        assert_eq!(outcome.summary, "Wrote small.txt in parts.", "{format:?}");
        assert_eq!(out.requests.len(), 3, "{format:?}");
        let next = after_last_turn(&out.requests[1]);
        assert!(
            next.contains("cut off at the output-token limit (512 tokens)")
                && next.contains("while you were writing the input of a write_file call"),
            "{format:?}: {next}"
        );
        assert!(
            next.contains("not run: your output hit the output-token limit")
                && next.contains("EOF while parsing a string"),
            "{format:?}: the cut call's result says why: {next}"
        );
        assert!(!out.root.join("big.txt").exists(), "the cut call never ran");
        assert_eq!(edits(&out.events), ["small.txt"], "{format:?}");
        assert!(out.events.iter().any(|e| matches!(e,
            Event::Status { message, .. } if message.contains("cut at the output-token limit"))));
    }
}

#[tokio::test]
async fn a_text_answer_cut_at_max_tokens_does_not_end_the_run() {
    for format in [Format::Anthropic, Format::OpenAi] {
        let model = Model::new(
            format,
            vec![
                Turn::new("Here is a very long plan that goes on and", &[]),
                Turn::new("Done, in short.", &[]),
            ],
        );
        model.fault(
            0,
            Fault::CutInput(CutInput {
                keep: 0,
                max_tokens: true,
            }),
        );
        let out = run(format, model, limits()).await;
        assert_eq!(out.result.unwrap().summary, "Done, in short.", "{format:?}");
        assert_eq!(out.requests.len(), 2);
        let next = after_last_turn(&out.requests[1]);
        assert!(
            next.contains("cut off at the output-token limit") && next.contains("smaller steps"),
            "{format:?}: {next}"
        );
    }
}

#[tokio::test]
async fn an_invalid_tool_input_is_answered_with_the_parser_error() {
    for format in [Format::Anthropic, Format::OpenAi] {
        let model = Model::new(
            format,
            vec![
                Turn::new(
                    "",
                    &[(
                        "edit_file",
                        json!({"path": "a.py", "old_str": "x = 1", "new_str": "x = 2"}),
                    )],
                ),
                Turn::new("Gave up.", &[]),
            ],
        );
        // `{"new_str":"x = 2","old_str":"x = 1","path":"a.` — a string left open.
        model.fault(
            0,
            Fault::CutInput(CutInput {
                keep: 40,
                max_tokens: false,
            }),
        );
        let out = run(format, model, limits()).await;
        assert_eq!(out.result.unwrap().summary, "Gave up.");
        let next = after_last_turn(&out.requests[1]);
        assert!(
            next.contains("EOF while parsing a string at line 1 column 40"),
            "{format:?}: the real parse error: {next}"
        );
        assert!(
            next.contains("edit_file expects a JSON object") && next.contains("path: string"),
            "{format:?}: what is expected: {next}"
        );
        assert!(!next.contains("missing required input"), "{next}");
        assert_eq!(
            std::fs::read_to_string(out.root.join("a.py")).unwrap(),
            "x = 1\n"
        );
    }
}

#[tokio::test]
async fn the_last_turn_of_the_budget_asks_for_a_summary_once() {
    let list = || Turn::new("", &[("list_files", json!({}))]);
    let model = Model::new(
        Format::Anthropic,
        vec![
            list(),
            list(),
            Turn::new("Summary: listed files twice.", &[]),
        ],
    );
    let mut l = limits();
    l.max_turns = 3;
    let out = run(Format::Anthropic, model, l).await;
    assert_eq!(out.result.unwrap().summary, "Summary: listed files twice.");
    let notes: Vec<usize> = out
        .requests
        .iter()
        .map(|r| r.to_string().matches("This is your last turn").count())
        .collect();
    // Present from the third request on (the conversation keeps it), sent once.
    assert_eq!(notes, [0, 0, 1]);
    let last = after_last_turn(&out.requests[2]);
    assert!(
        last.contains("it is turn 3 of the 3 allowed") && last.contains("Stop making changes"),
        "{last}"
    );
}
