use super::*;

fn status(stage: Stage, m: &str) -> Event {
    Event::Status {
        run_id: "r".into(),
        stage,
        message: m.into(),
    }
}

#[test]
fn a_publish_or_follow_up_that_did_not_go_through_is_marked_failed() {
    let mut log = StepLog::default();
    log.ingest(&status(Stage::Publish, "pushing tb/x"), 100);
    log.ingest(&status(Stage::Publish, "publishing failed: 401"), 300);
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].status, EntryStatus::Failed);
    assert_eq!(log.entries[0].duration_ms, Some(200));
    log.ingest(&status(Stage::Review, "review the diff"), 400);
    assert_eq!(log.entries[0].status, EntryStatus::Failed, "stays failed");
    log.ingest(
        &status(Stage::Agent, "the follow-up failed: out of turns"),
        500,
    );
    assert_eq!(log.entries[2].status, EntryStatus::Failed);
}

#[test]
fn stages_get_durations_and_tools_read_like_the_design() {
    let mut log = StepLog::default();
    log.ingest(&status(Stage::Clone, "cloning x"), 1000);
    log.ingest(&status(Stage::Clone, "Receiving objects 50%"), 1100);
    assert_eq!(log.entries.len(), 1, "progress updates the stage entry");
    log.ingest(&status(Stage::Agent, "running"), 1400);
    assert_eq!(log.entries[0].duration_ms, Some(400));
    log.ingest(
        &Event::ToolEdit {
            filepath: "src/main.rs".into(),
            old_str: "a\n".into(),
            new_str: "a\nb\nc\n".into(),
            run_id: None,
        },
        1500,
    );
    log.ingest(
        &Event::ToolBash {
            command: "cargo test".into(),
            output: "\x1b[32mok\x1b[0m\x1b]52;c;aGk=\x07".into(),
            exit_code: 0,
            run_id: None,
            duration_ms: 1200,
            terminated: None,
        },
        1600,
    );
    assert_eq!(
        log.entries[2].title, "Edit src/main.rs (+2 −0)",
        "counted like the diff"
    );
    assert_eq!(log.entries[2].detail, " a\n+b\n+c\n");
    assert_eq!(log.entries[3].title, "Bash cargo test → exit 0 · 1.2s");
    assert_eq!(log.entries[3].detail, "ok", "escapes stripped");
}

#[test]
fn streaming_text_accumulates_then_settles() {
    let mut log = StepLog::default();
    for d in ["I'll ", "look ", "first."] {
        log.ingest(
            &Event::AiDelta {
                run_id: "r".into(),
                delta: d.into(),
            },
            0,
        );
    }
    assert_eq!(log.entries.len(), 1);
    assert!(log.entries[0].streaming);
    log.ingest(
        &Event::AiMessage {
            message: "I'll look first.".into(),
            run_id: None,
        },
        0,
    );
    assert_eq!(log.entries.len(), 1);
    assert!(!log.entries[0].streaming);
    assert_eq!(log.entries[0].detail, "I'll look first.");
}

#[test]
fn memory_is_bounded_under_a_flood() {
    let mut log = StepLog::default();
    for i in 0..(MAX_ENTRIES + 500) {
        log.ingest(
            &Event::ToolRead {
                filepath: format!("f{i}"),
                run_id: None,
            },
            0,
        );
    }
    assert_eq!(log.entries.len(), MAX_ENTRIES);
    assert_eq!(log.dropped, 500);
    let big = "y".repeat(MAX_TEXT * 3);
    log.ingest(
        &Event::AiDelta {
            run_id: "r".into(),
            delta: big.clone(),
        },
        0,
    );
    log.ingest(
        &Event::AiDelta {
            run_id: "r".into(),
            delta: big,
        },
        0,
    );
    assert!(log.entries.back().unwrap().detail.len() <= 2 * MAX_TEXT);
}
