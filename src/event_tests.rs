//! Tests of the event vocabulary: wire names, bounded `Diff` events, terminal-safe JSON lines.

use super::*;
use serde_json::json;

#[test]
fn json_lines_escape_c1_and_invisible_characters_and_keep_the_value() {
    let text = "a\u{9b}2J\u{202E}b\u{200B}c\u{E0041}\u{7f}é";
    let e = Event::AiMessage {
        message: text.into(),
        run_id: None,
    };
    let line = e.to_json_line();
    assert!(
        line.is_ascii()
            || !line
                .chars()
                .any(|c| { ('\u{80}'..='\u{9F}').contains(&c) || crate::sanitize::is_hidden(c) }),
        "{line}"
    );
    assert!(
        line.contains("\\u009b") && line.contains("\\u202e") && line.contains("\\udb40\\udc41"),
        "{line}"
    );
    let back: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(back["message"], text);
}

fn rid() -> Option<String> {
    Some("r1".into())
}

#[test]
fn challenge_types_have_exact_json() {
    let read = Event::ToolRead {
        filepath: "src/main.rs".into(),
        run_id: rid(),
    };
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        json!({"type": "Tool: Read", "filepath": "src/main.rs", "run_id": "r1"})
    );
    let edit = Event::ToolEdit {
        filepath: "a.py".into(),
        old_str: "x".into(),
        new_str: "y".into(),
        run_id: rid(),
    };
    assert_eq!(
        serde_json::to_value(&edit).unwrap(),
        json!({"type": "Tool: Edit", "filepath": "a.py", "old_str": "x", "new_str": "y", "run_id": "r1"})
    );
    let bash = Event::ToolBash {
        command: "echo hi".into(),
        output: "hi\n".into(),
        exit_code: 0,
        run_id: rid(),
        duration_ms: 3,
        terminated: None,
    };
    assert_eq!(
        serde_json::to_value(&bash).unwrap(),
        json!({"type": "Tool: Bash", "command": "echo hi", "output": "hi\n", "exit_code": 0,
               "run_id": "r1", "duration_ms": 3})
    );
    let msg = Event::AiMessage {
        message: "done".into(),
        run_id: rid(),
    };
    assert_eq!(
        serde_json::to_value(&msg).unwrap(),
        json!({"type": "AI Message", "message": "done", "run_id": "r1"})
    );
}

#[test]
fn challenge_types_parse_without_extra_fields() {
    let e: Event = serde_json::from_str(r#"{"type":"Tool: Read","filepath":"README.md"}"#).unwrap();
    assert_eq!(
        e,
        Event::ToolRead {
            filepath: "README.md".into(),
            run_id: None
        }
    );
    let e: Event =
        serde_json::from_str(r#"{"type":"Tool: Bash","command":"ls","output":"","exit_code":2}"#)
            .unwrap();
    assert_eq!(e.type_name(), "Tool: Bash");
}

#[test]
fn every_event_round_trips_and_names_its_type() {
    let events = vec![
        Event::Status {
            run_id: "r".into(),
            stage: Stage::Clone,
            message: "m".into(),
        },
        Event::diff("r", vec![], b"", None),
        Event::Output {
            run_id: "r".into(),
            id: "call_1".into(),
            stream: Some("combined".into()),
            text: "ok\n".into(),
        },
        Event::live_diff("r", vec![], b"diff --git a/x b/x\n"),
        Event::diff(
            "r",
            vec![FileStat {
                path: "a".into(),
                left_out: Some("too_large".into()),
                warnings: vec!["too_large".into()],
                ..FileStat::default()
            }],
            b"x\xff\n",
            Some("/p".into()),
        ),
        Event::Pr {
            run_id: "r".into(),
            url: "u".into(),
            number: 1,
            branch: "b".into(),
            base: "main".into(),
        },
        Event::Error {
            run_id: "r".into(),
            stage: Stage::Agent,
            message: "m".into(),
            retryable: true,
            code: ErrorCode::ModelUnavailable,
        },
        Event::Done {
            run_id: "r".into(),
            pr_url: None,
            summary: "s".into(),
            branch: None,
            usage: UsageTotals::default(),
            duration_ms: 1,
            patch_path: None,
        },
    ];
    for e in events {
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], e.type_name());
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}

#[test]
fn a_diff_event_carries_exact_bytes_and_stays_small() {
    use base64::Engine as _;
    let e = Event::diff("r", vec![FileStat::default()], b"caf\xe9\n", None);
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["patch"], "caf\u{fffd}\n");
    let exact = base64::engine::general_purpose::STANDARD
        .decode(v["patch_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(exact, b"caf\xe9\n");
    assert_eq!(
        v["files"][0]["warnings"],
        json!([]),
        "warnings always present"
    );
    let utf8 = serde_json::to_value(Event::diff("r", vec![], "é\n".as_bytes(), None)).unwrap();
    assert!(utf8.get("patch_base64").is_none() && utf8.get("patch_truncated").is_none());

    // A big patch: whole files up to the limit, then the path of the rest.
    let file = |i: usize| {
        format!(
            "diff --git a/f{i} b/f{i}\n@@ -0,0 +1 @@\n+{}\n",
            "\u{1}".repeat(100_000)
        )
    };
    let patch: String = (0..20).map(file).collect();
    let e = Event::diff(
        "r",
        vec![],
        patch.as_bytes(),
        Some("/run/patch.diff".into()),
    );
    let line = e.to_json_line();
    assert!(line.len() <= 3 << 20, "{} bytes", line.len());
    let Event::Diff {
        patch: shown,
        patch_truncated,
        ..
    } = &e
    else {
        panic!()
    };
    assert!(*patch_truncated);
    assert!(patch.starts_with(shown.as_str()) && shown.ends_with("\n") && !shown.is_empty());
    assert_eq!(
        crate::diff::file_ranges(shown.as_bytes()).len(),
        3,
        "each file costs ~600 kB"
    );

    // A long file list keeps those left out.
    let mut files: Vec<FileStat> = (0..40_000)
        .map(|i| FileStat {
            path: format!("{i:0>40}"),
            ..FileStat::default()
        })
        .collect();
    files.push(FileStat {
        path: "big.bin".into(),
        left_out: Some("too_large".into()),
        ..FileStat::default()
    });
    let e = Event::diff("r", files, b"", None);
    assert!(e.to_json_line().len() <= 2 << 20);
    let Event::Diff {
        files,
        files_truncated,
        ..
    } = &e
    else {
        panic!()
    };
    assert!(*files_truncated);
    assert_eq!(files.last().unwrap().path, "big.bin");
}

#[test]
fn usage_cost_is_unknown_if_any_part_is() {
    let mut t = UsageTotals {
        cost_usd: Some(1.0),
        ..Default::default()
    };
    t.add(&UsageTotals {
        input_tokens: 5,
        cost_usd: Some(0.5),
        ..Default::default()
    });
    assert_eq!(t.cost_usd, Some(1.5));
    t.add(&UsageTotals {
        input_tokens: 5,
        cost_usd: None,
        ..Default::default()
    });
    assert_eq!(t.cost_usd, None);
    assert_eq!(t.input_tokens, 10);
}

#[test]
fn output_and_live_diff_are_transient_and_a_live_diff_stays_small() {
    let out = Event::Output {
        run_id: "r".into(),
        id: "c".into(),
        stream: None,
        text: "t".into(),
    };
    assert!(out.is_transient());
    assert_eq!(
        out.to_json_line(),
        r#"{"type":"Output","run_id":"r","id":"c","text":"t"}"#
    );
    let mut patch = Vec::new();
    for i in 0..40 {
        patch.extend_from_slice(format!("diff --git a/f{i} b/f{i}\n").as_bytes());
        patch.extend_from_slice(&vec![b'+'; 20_000]);
        patch.push(b'\n');
    }
    let Event::LiveDiff {
        patch: text,
        patch_truncated,
        ..
    } = Event::live_diff("r", vec![], &patch)
    else {
        panic!()
    };
    assert!(patch_truncated);
    assert!(text.len() <= LIVE_DIFF_INLINE_MAX && text.len() > LIVE_DIFF_INLINE_MAX / 2);
    assert!(text.ends_with("+\n"), "whole files only");
    assert!(!Event::diff("r", vec![], b"", None).is_transient());
}
