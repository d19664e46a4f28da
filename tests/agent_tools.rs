//! Every agent tool and each refusal, on a real work tree with the real sandbox.

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
    outside: std::path::PathBuf,
    tools: Toolbox,
}

fn workspace() -> Ws {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let git_dir = tmp.path().join("git");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        "pub fn a() {}\npub fn b() {}\n// a again\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("target/junk.rs"), "pub fn a() {}\n").unwrap();
    std::fs::write(
        root.join("logo.png"),
        [0x89u8, b'P', b'N', b'G', 0, 0, 1, 2],
    )
    .unwrap();
    let outside = tmp.path().join("host-secret.txt");
    std::fs::write(&outside, "TOP SECRET host file\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("leak")).unwrap();
    let tools = toolbox::toolbox(&root, git_dir, "test", 2000);
    Ws {
        _tmp: tmp,
        root,
        outside,
        tools,
    }
}

async fn call(ws: &Ws, name: &str, input: Value) -> (String, bool, Option<Event>) {
    let o = ws.tools.call(name, &input, &CancellationToken::new()).await;
    (o.content, o.is_error, o.events.into_iter().next())
}

#[tokio::test]
async fn read_file_numbers_lines_and_pages() {
    let ws = workspace();
    let (out, err, ev) = call(&ws, "read_file", json!({"path": "src/main.rs"})).await;
    assert!(!err);
    assert_eq!(out, "1\tfn main() {\n2\t    println!(\"hi\");\n3\t}\n");
    assert!(matches!(ev, Some(Event::ToolRead { filepath, .. }) if filepath == "src/main.rs"));
    let (out, _, _) = call(
        &ws,
        "read_file",
        json!({"path": "src/main.rs", "offset": 2, "limit": 1}),
    )
    .await;
    assert!(
        out.starts_with("2\t    println") && out.contains("showing lines 2-2 of 3"),
        "{out}"
    );
}

#[tokio::test]
async fn list_and_search_respect_gitignore_and_globs() {
    let ws = workspace();
    let (out, err, ev) = call(&ws, "list_files", json!({})).await;
    assert!(!err);
    assert!(
        out.contains("src/main.rs") && out.contains(".gitignore"),
        "{out}"
    );
    assert!(
        !out.contains("target/junk.rs") && !out.contains(".git/"),
        "{out}"
    );
    assert!(matches!(ev, Some(Event::ToolList { .. })));
    let (out, _, _) = call(&ws, "list_files", json!({"pattern": "*.rs"})).await;
    assert_eq!(out.lines().count(), 2, "{out}");

    let (out, err, ev) = call(&ws, "search", json!({"pattern": "pub fn [ab]"})).await;
    assert!(!err);
    assert_eq!(
        out,
        "src/lib.rs:1: pub fn a() {}\nsrc/lib.rs:2: pub fn b() {}\n"
    );
    assert!(matches!(ev, Some(Event::ToolSearch { matches: 2, .. })));
    let (out, _, _) = call(&ws, "search", json!({"pattern": "fn", "glob": "main.rs"})).await;
    assert_eq!(out, "src/main.rs:1: fn main() {\n");
    let (out, err, _) = call(&ws, "search", json!({"pattern": "("})).await;
    assert!(err && out.contains("invalid regular expression"), "{out}");
    let (out, _, _) = call(&ws, "search", json!({"pattern": "TOP SECRET"})).await;
    assert!(
        out.starts_with("no matches"),
        "search does not follow symlinks out: {out}"
    );
}

#[tokio::test]
async fn edit_file_replaces_exactly_once_or_explains() {
    let ws = workspace();
    let (out, err, ev) = call(
        &ws,
        "edit_file",
        json!({"path": "src/main.rs", "old_str": "\"hi\"", "new_str": "\"hello\""}),
    )
    .await;
    assert!(!err, "{out}");
    assert!(matches!(ev, Some(Event::ToolEdit { ref old_str, .. }) if old_str == "\"hi\""));
    assert!(
        std::fs::read_to_string(ws.root.join("src/main.rs"))
            .unwrap()
            .contains("\"hello\"")
    );

    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "src/lib.rs", "old_str": "missing", "new_str": "x"}),
    )
    .await;
    assert!(err && out.contains("not found"), "{out}");
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "src/lib.rs", "old_str": "pub fn", "new_str": "fn"}),
    )
    .await;
    assert!(
        err && out.contains("matches 2 places") && out.contains("replace_all"),
        "{out}"
    );
    let (_, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "src/lib.rs", "old_str": "pub fn", "new_str": "fn", "replace_all": true}),
    )
    .await;
    assert!(!err);
    assert_eq!(
        std::fs::read_to_string(ws.root.join("src/lib.rs")).unwrap(),
        "fn a() {}\nfn b() {}\n// a again\n"
    );

    let (_, err, ev) = call(
        &ws,
        "edit_file",
        json!({"path": "new/file.txt", "old_str": "", "new_str": "n\n"}),
    )
    .await;
    assert!(!err);
    assert!(matches!(ev, Some(Event::ToolEdit { ref old_str, .. }) if old_str.is_empty()));
    assert_eq!(
        std::fs::read_to_string(ws.root.join("new/file.txt")).unwrap(),
        "n\n"
    );
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "src/main.rs", "old_str": "", "new_str": "x"}),
    )
    .await;
    assert!(err && out.contains("already exists"), "{out}");
    let (out, err, _) = call(
        &ws,
        "edit_file",
        json!({"path": "src/main.rs", "new_str": "x"}),
    )
    .await;
    assert!(err && out.contains("old_str"), "{out}");
}

#[tokio::test]
async fn write_file_creates_and_overwrites() {
    let ws = workspace();
    let (out, err, ev) = call(
        &ws,
        "write_file",
        json!({"path": "docs/a.md", "content": "# A\n"}),
    )
    .await;
    assert!(!err && out.starts_with("Created"), "{out}");
    assert!(matches!(ev, Some(Event::ToolEdit { ref new_str, .. }) if new_str == "# A\n"));
    let (out, _, _) = call(
        &ws,
        "write_file",
        json!({"path": "docs/a.md", "content": "# B\n"}),
    )
    .await;
    assert!(out.starts_with("Overwrote"), "{out}");
    assert_eq!(
        std::fs::read_to_string(ws.root.join("docs/a.md")).unwrap(),
        "# B\n"
    );
}

#[tokio::test]
async fn bash_runs_in_the_sandbox_with_real_output_and_exit_code() {
    let ws = workspace();
    let (out, err, ev) = call(
        &ws,
        "bash",
        json!({"command": "pwd; echo oops >&2; exit 7"}),
    )
    .await;
    assert!(!err);
    assert!(
        out.starts_with("exit code: 7\n") && out.contains("/workspace") && out.contains("oops"),
        "{out}"
    );
    match ev {
        Some(Event::ToolBash {
            exit_code, output, ..
        }) => {
            assert_eq!(exit_code, 7);
            assert!(output.contains("oops"));
        }
        other => panic!("{other:?}"),
    }
    // Output beyond the cap keeps head and tail with a marker.
    let (out, _, _) = call(&ws, "bash", json!({"command": "seq 1 5000"})).await;
    assert!(
        out.contains("\n1\n2\n") && out.contains("5000") && out.contains("characters cut"),
        "{}",
        &out[..200]
    );
    // Timeout.
    let (out, _, ev) = call(
        &ws,
        "bash",
        json!({"command": "sleep 30", "timeout_secs": 1}),
    )
    .await;
    assert!(out.contains("time limit"), "{out}");
    assert!(matches!(
        ev,
        Some(Event::ToolBash {
            terminated: Some(_),
            ..
        })
    ));
}

#[tokio::test]
async fn refusals_are_errors_the_model_can_act_on() {
    let ws = workspace();
    let cases = [
        ("read_file", json!({"path": "../host-secret.txt"}), ".."),
        (
            "read_file",
            json!({"path": ws.outside.display().to_string()}),
            "absolute",
        ),
        (
            "read_file",
            json!({"path": "leak"}),
            "outside the repository",
        ),
        (
            "edit_file",
            json!({"path": "leak", "old_str": "TOP", "new_str": "x"}),
            "outside the repository",
        ),
        (
            "write_file",
            json!({"path": "leak", "content": "x"}),
            "outside the repository",
        ),
        (
            "write_file",
            json!({"path": "../escape.txt", "content": "x"}),
            "..",
        ),
        ("read_file", json!({"path": "logo.png"}), "binary"),
        ("read_file", json!({"path": "nope.rs"}), "does not exist"),
        (
            "edit_file",
            json!({"path": "nope.rs", "old_str": "a", "new_str": "b"}),
            "does not exist",
        ),
        ("read_file", json!({"path": ".git/config"}), ".git"),
        ("list_files", json!({"path": "../"}), ".."),
        (
            "search",
            json!({"pattern": "x", "path": "/etc"}),
            "absolute",
        ),
        ("bash", json!({"command": "  "}), "empty"),
        ("launch_rockets", json!({}), "no tool named"),
    ];
    for (tool, input, want) in cases {
        let (out, err, ev) = call(&ws, tool, input.clone()).await;
        assert!(err, "{tool} {input} should fail: {out}");
        assert!(out.contains(want), "{tool} {input}: {out}");
        assert!(!out.contains("TOP SECRET"), "{out}");
        assert!(matches!(ev, Some(Event::ToolError { .. })), "{ev:?}");
    }
    assert_eq!(
        std::fs::read_to_string(&ws.outside).unwrap(),
        "TOP SECRET host file\n"
    );
    assert!(!ws.root.parent().unwrap().join("escape.txt").exists());
    // A symlink planted from inside the sandbox is refused the same way.
    let (_, err, _) = call(
        &ws,
        "bash",
        json!({"command": "ln -s /etc/hostname planted"}),
    )
    .await;
    assert!(!err);
    let (out, err, _) = call(&ws, "read_file", json!({"path": "planted"})).await;
    assert!(err && out.contains("outside"), "{out}");
}

#[tokio::test]
async fn read_file_pages_long_files_at_line_boundaries() {
    let ws = workspace();
    let text: String = (1..=300)
        .map(|i| format!("line {i:03} of a long file\n"))
        .collect();
    std::fs::write(ws.root.join("long.txt"), &text).unwrap();
    let (out, err, _) = call(&ws, "read_file", json!({"path": "long.txt"})).await;
    assert!(!err, "{out}");
    assert!(out.chars().count() <= 2000, "within the cap: {}", out.len());
    assert!(!out.contains("characters cut"), "never cut mid-line: {out}");
    let (body, footer) = out.trim_end().rsplit_once('\n').unwrap();
    let shown = body.lines().count();
    for (i, line) in body.lines().enumerate() {
        assert_eq!(line, format!("{}\tline {:03} of a long file", i + 1, i + 1));
    }
    assert_eq!(
        footer,
        format!(
            "[showing lines 1-{shown} of 300; continue at offset {}]",
            shown + 1
        )
    );
    let (next, _, _) = call(
        &ws,
        "read_file",
        json!({"path": "long.txt", "offset": shown + 1}),
    )
    .await;
    assert!(
        next.starts_with(&format!("{}\tline {:03} of", shown + 1, shown + 1)),
        "{next}"
    );
}

#[tokio::test]
async fn search_shows_context_lines() {
    let ws = workspace();
    std::fs::write(
        ws.root.join("c.py"),
        "a = 1\nb = 2\nhit = 3\nc = 4\nd = 5\ne = 6\nf = 7\nhit = 8\n",
    )
    .unwrap();
    let (out, err, ev) = call(
        &ws,
        "search",
        json!({"pattern": "^hit", "path": "c.py", "context": 1}),
    )
    .await;
    assert!(!err, "{out}");
    assert_eq!(
        out,
        "c.py-2- b = 2\nc.py:3: hit = 3\nc.py-4- c = 4\n--\nc.py-7- f = 7\nc.py:8: hit = 8\n"
    );
    assert!(matches!(ev, Some(Event::ToolSearch { matches: 2, .. })));
    // Overlapping context is merged; the size is capped at 10 lines each side.
    let (out, _, _) = call(
        &ws,
        "search",
        json!({"pattern": "^hit", "path": "c.py", "context": 99}),
    )
    .await;
    assert_eq!(out.lines().count(), 8, "{out}");
    assert!(!out.contains("--"), "{out}");
}
