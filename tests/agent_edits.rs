//! `edit_file` on ordinary files, with the real sandbox: CRLF files keep their endings, several
//! edits apply all or nothing, near misses are matched only when unambiguous, the result shows the
//! edited region, and a syntax error the edit introduced is reported (one that was there before
//! is not blamed on it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/toolbox.rs"]
mod toolbox;

use serde_json::{Value, json};
use tiny_backspace::agent::tools::Toolbox;
use tiny_backspace::event::Event;
use tokio_util::sync::CancellationToken;

struct Ws {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    tools: Toolbox,
}

fn workspace(files: &[(&str, &[u8])]) -> Ws {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    let tools = toolbox::toolbox(&root, git_dir, "test", 8000);
    Ws {
        _tmp: tmp,
        root,
        tools,
    }
}

async fn call(ws: &Ws, name: &str, input: Value) -> (String, bool, Vec<Event>) {
    let o = ws.tools.call(name, &input, &CancellationToken::new()).await;
    (o.content, o.is_error, o.events)
}

fn bytes(ws: &Ws, name: &str) -> Vec<u8> {
    std::fs::read(ws.root.join(name)).unwrap()
}

/// Every `\n` of the file is preceded by `\r`.
fn all_crlf(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'\n' || (i > 0 && b[i - 1] == b'\r'))
}

const CRLF_PY: &[u8] =
    b"def add(a, b):\r\n    return a + b\r\n\r\n\r\ndef divide(a, b):\r\n    return a / b\r\n";

#[tokio::test]
async fn a_crlf_file_edited_with_a_multi_line_old_str_keeps_crlf() {
    let ws = workspace(&[("calc.py", CRLF_PY)]);
    // read_file shows the lines without `\r`: that is what the model copies from.
    let (shown, _, _) = call(&ws, "read_file", json!({"path": "calc.py"})).await;
    assert!(
        shown.contains("5\tdef divide(a, b):\n6\t    return a / b\n"),
        "{shown}"
    );
    assert!(!shown.contains('\r'));
    let (out, err, events) = call(
        &ws,
        "edit_file",
        json!({"path": "calc.py",
               "old_str": "def divide(a, b):\n    return a / b\n",
               "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b\n"}),
    )
    .await;
    assert!(!err, "{out}");
    let after = bytes(&ws, "calc.py");
    assert!(all_crlf(&after), "{:?}", String::from_utf8_lossy(&after));
    assert_eq!(
        String::from_utf8(after).unwrap(),
        "def add(a, b):\r\n    return a + b\r\n\r\n\r\ndef divide(a, b):\r\n    if b == 0:\r\n        \
         raise ValueError(\"division by zero\")\r\n    return a / b\r\n"
    );
    // The result numbers the edited region, without `\r`.
    assert!(
        out.contains("6\t    if b == 0:\n7\t        raise ValueError") && !out.contains('\r'),
        "{out}"
    );
    assert!(matches!(&events[..], [Event::ToolEdit { filepath, .. }] if filepath == "calc.py"));

    // write_file over a CRLF file with `\n` lines keeps CRLF too.
    let (_, err, _) = call(
        &ws,
        "write_file",
        json!({"path": "calc.py", "content": "x = 1\ny = 2\n"}),
    )
    .await;
    assert!(!err);
    assert_eq!(bytes(&ws, "calc.py"), b"x = 1\r\ny = 2\r\n");
}

#[tokio::test]
async fn several_edits_apply_all_or_nothing() {
    let ws = workspace(&[("a.txt", b"one\ntwo\nthree\n")]);
    let (out, err, events) = call(
        &ws,
        "edit_file",
        json!({"path": "a.txt", "edits": [
            {"old_str": "one", "new_str": "ONE"},
            {"old_str": "four", "new_str": "FOUR"}
        ]}),
    )
    .await;
    assert!(err, "{out}");
    assert!(
        out.contains("edit 2 of 2: old_str was not found") && out.contains("unchanged"),
        "{out}"
    );
    assert_eq!(bytes(&ws, "a.txt"), b"one\ntwo\nthree\n", "nothing changed");
    assert!(
        !events.iter().any(|e| matches!(e, Event::ToolEdit { .. })),
        "no edit reported"
    );

    let (out, err, events) = call(
        &ws,
        "edit_file",
        json!({"path": "a.txt", "edits": [
            {"old_str": "one", "new_str": "ONE"},
            {"old_str": "three\n", "new_str": "THREE\n"}
        ]}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(bytes(&ws, "a.txt"), b"ONE\ntwo\nTHREE\n");
    assert!(
        out.contains("(2 edits)") && out.contains("1\tONE\n2\ttwo\n3\tTHREE\n"),
        "{out}"
    );
    // One `Tool: Edit` per edit, with the model's own strings.
    let edits: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ToolEdit {
                old_str, new_str, ..
            } => Some((old_str.clone(), new_str.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        edits,
        [
            ("one".into(), "ONE".into()),
            ("three\n".into(), "THREE\n".into())
        ]
    );

    // Both forms at once, or a malformed list, are refused with a usable message.
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "a.txt", "old_str": "ONE", "new_str": "x", "edits": []}),
    )
    .await;
    assert!(err && out.contains("not both"), "{out}");
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "a.txt", "edits": [{"old_str": "ONE"}]}),
    )
    .await;
    assert!(
        err && out.contains("edits[0]") && out.contains("new_str"),
        "{out}"
    );
}

#[tokio::test]
async fn near_misses_match_only_when_unambiguous() {
    let ws = workspace(&[
        ("t.py", b"class A:\n    def f(self):   \n        return 1\n"),
        ("twice.py", b"x = 1 \ny = 0\nx = 1\t\n"),
    ]);
    // Trailing spaces in the file and one indentation level missing in old_str.
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "t.py", "old_str": "def f(self):\n    return 1", "new_str": "def f(self):\n    return 2"}),
    )
    .await;
    assert!(!err, "{out}");
    assert!(out.contains("indentation shifted"), "{out}");
    assert_eq!(
        bytes(&ws, "t.py"),
        b"class A:\n    def f(self):\n        return 2\n"
    );
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "twice.py", "old_str": "x = 1\n", "new_str": "x = 2\n"}),
    )
    .await;
    assert!(err && out.contains("2 places"), "{out}");
    assert_eq!(bytes(&ws, "twice.py"), b"x = 1 \ny = 0\nx = 1\t\n");
}

#[tokio::test]
async fn a_python_syntax_error_is_reported_only_when_the_edit_made_it() {
    let ws = workspace(&[
        (
            "good.py",
            b"def f(a):\n    return a\n\n\ndef g():\n    return 2\n",
        ),
        (
            "bad.py",
            b"def f(a:\n    return a\n\n\ndef g():\n    return 2\n",
        ),
    ]);
    // The checker must really be there, or the assertions below would prove nothing.
    let (out, _, _) = call(&ws, "bash", json!({"command": "command -v python3"})).await;
    assert!(
        out.starts_with("exit code: 0"),
        "python3 in the sandbox: {out}"
    );

    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "good.py", "old_str": "    return a\n", "new_str": "    return (a\n"}),
    )
    .await;
    assert!(!err, "the edit is applied: {out}");
    assert!(
        out.contains("no longer parses (python3)") && out.contains("good.py:"),
        "{out}"
    );
    assert_eq!(
        bytes(&ws, "good.py"),
        b"def f(a):\n    return (a\n\n\ndef g():\n    return 2\n"
    );

    // bad.py did not parse before: an unrelated edit is not blamed.
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "bad.py", "old_str": "return 2", "new_str": "return 3"}),
    )
    .await;
    assert!(!err, "{out}");
    assert!(!out.contains("no longer parses"), "{out}");
    assert_eq!(
        bytes(&ws, "bad.py"),
        b"def f(a:\n    return a\n\n\ndef g():\n    return 3\n"
    );
    // A clean edit says nothing, and the check leaves no bytecode behind.
    let (out, _, _) = call(
        &ws,
        "edit_file",
        json!({"path": "good.py", "old_str": "return (a\n", "new_str": "return a\n"}),
    )
    .await;
    assert!(!out.contains("parses"), "{out}");
    assert!(!ws.root.join("__pycache__").exists());
}

#[tokio::test]
async fn a_shell_file_created_broken_is_reported() {
    let ws = workspace(&[]);
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "run.sh", "old_str": "", "new_str": "if true; then\n  echo hi\n"}),
    )
    .await;
    assert!(!err, "{out}");
    assert!(out.contains("no longer parses (bash)"), "{out}");
}
