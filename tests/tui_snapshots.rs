//! Snapshot tests of whole screens (`TestBackend` buffers, styles included) for the main states,
//! at 80×24 and 200×60. States are built by feeding keys and pipeline events into the pure
//! `update`, with a pinned clock, so every snapshot is deterministic.

mod tui_support;

use crossterm::event::KeyCode;
use tiny_backspace::event::{Event, FileStat, Stage, UsageTotals};
use tiny_backspace::tui::model::{Info, Model, Prefill};
use tiny_backspace::tui::update::{Msg, update};
use tui_support::{chr, ctrl, key, line_with, render, render_text, sbs_sides};

const PATCH: &str = r#"diff --git a/calc/__init__.py b/calc/__init__.py
index 1111111..2222222 100644
--- a/calc/__init__.py
+++ b/calc/__init__.py
@@ -1,5 +1,7 @@
 def divide(a, b):
-    return a / b
+    if b == 0:
+        raise ValueError("division by zero")
+    return a / b if b else None
 
 
 def f0(x):
@@ -40,3 +42,4 @@ def f19(x):
 
 def mul(a, b):
+    # product of a and b
     return a * b
diff --git a/NOTES.md b/NOTES.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/NOTES.md
@@ -0,0 +1,2 @@
+# Notes
+divide() rejects a zero divisor.
diff --git a/docs/old.md b/docs/new.md
similarity index 100%
rename from docs/old.md
rename to docs/new.md
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..4444444
Binary files /dev/null and b/logo.png differ
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
"#;

fn ev(e: Event) -> Msg {
    Msg::Pipeline(e)
}

fn status(stage: Stage, m: &str) -> Msg {
    ev(Event::Status {
        run_id: "r1".into(),
        stage,
        message: m.into(),
    })
}

fn model(w: u16, h: u16, prefill: bool, no_color: bool) -> Model {
    let p = if prefill {
        Prefill {
            repo: "octo/calc".into(),
            prompt: "Make divide reject a zero divisor".into(),
            base: "main".into(),
        }
    } else {
        Prefill {
            repo: String::new(),
            prompt: String::new(),
            base: String::new(),
        }
    };
    let info = Info {
        model: "replay · demo.json".into(),
        sandbox: "bwrap".into(),
        network: false,
        tokens: 0,
        cost_usd: None,
    };
    let mut m = Model::new(p, "/nonexistent".into(), info, no_color);
    update(&mut m, Msg::Resize(w, h));
    m
}

fn feed(m: &mut Model, msgs: Vec<Msg>) {
    for msg in msgs {
        update(m, msg);
    }
}

fn running(w: u16, h: u16, no_color: bool) -> Model {
    let mut m = model(w, h, true, no_color);
    feed(
        &mut m,
        vec![
            Msg::Tick(0),
            ctrl('s'),
            Msg::Started("r1".into()),
            Msg::Tick(120),
            status(Stage::Validate, "octo/calc · model scripted:demo.json (replay) · sandbox bwrap, no network · run r1"),
            Msg::Tick(200),
            status(Stage::Clone, "cloning https://github.com/octo/calc"),
            Msg::Tick(600),
            status(Stage::Clone, "cloned main @ 1a2b3c4d5e"),
            status(Stage::Agent, "agent started"),
            ev(Event::AiDelta {
                run_id: "r1".into(),
                delta: "I'll look at the entry point first.".into(),
            }),
            ev(Event::AiMessage {
                message: "I'll look at the entry point first.".into(),
                run_id: Some("r1".into()),
            }),
            ev(Event::ToolRead {
                filepath: "calc/__init__.py".into(),
                run_id: Some("r1".into()),
            }),
            ev(Event::ToolEdit {
                filepath: "calc/__init__.py".into(),
                old_str: "    return a / b\n".into(),
                new_str: "    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b\n".into(),
                run_id: Some("r1".into()),
            }),
            ev(Event::ToolBash {
                command: "pytest -q".into(),
                output: "\x1b[32m3 passed\x1b[0m in 0.02s\x1b]52;c;ZXZpbA==\x07\n".into(),
                exit_code: 0,
                run_id: Some("r1".into()),
                duration_ms: 1200,
                terminated: None,
            }),
            ev(Event::Usage {
                run_id: "r1".into(),
                provider: "scripted".into(),
                model: "demo.json".into(),
                input_tokens: 12_000,
                output_tokens: 400,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: Some(0.03),
            }),
            ev(Event::AiDelta {
                run_id: "r1".into(),
                delta: "divide() now raises ValueError when the divisor is".into(),
            }),
            Msg::Tick(41_250),
        ],
    );
    m
}

fn review(w: u16, h: u16, no_color: bool) -> Model {
    let mut m = running(w, h, no_color);
    feed(
        &mut m,
        vec![
            ev(Event::AiMessage {
                message: "Make divide reject a zero divisor\n\ndivide() now raises ValueError when the divisor is 0.".into(),
                run_id: Some("r1".into()),
            }),
            status(Stage::Diff, "5 files changed, +6 −1"),
            ev(Event::diff(
                "r1",
                vec![FileStat {
                    path: "calc/__init__.py".into(),
                    status: tiny_backspace::event::FileStatus::Modified,
                    insertions: 4,
                    deletions: 1,
                    ..FileStat::default()
                }],
                PATCH.as_bytes(),
                None,
            )),
            Msg::Tick(41_500),
            status(Stage::Review, "review the diff; approve to publish"),
            // Leave the second hunk of calc/__init__.py out of the PR.
            chr('n'),
            chr('n'),
            chr(' '),
        ],
    );
    m
}

fn pr_dialog(w: u16, h: u16) -> Model {
    let mut m = review(w, h, false);
    update(&mut m, chr('c'));
    m
}

fn pr_created(w: u16, h: u16) -> Model {
    let mut m = pr_dialog(w, h);
    feed(
        &mut m,
        vec![
            ctrl('s'),
            status(Stage::Publish, "pushing tb/make-divide-reject-zero"),
            ev(Event::Pr {
                run_id: "r1".into(),
                url: "https://github.com/octo/calc/pull/12".into(),
                number: 12,
                branch: "tb/make-divide-reject-zero".into(),
                base: "main".into(),
            }),
            status(Stage::Cleanup, "workspace removed"),
            Msg::Tick(44_000),
            ev(Event::Done {
                run_id: "r1".into(),
                pr_url: Some("https://github.com/octo/calc/pull/12".into()),
                summary: "Make divide reject a zero divisor".into(),
                branch: Some("tb/make-divide-reject-zero".into()),
                usage: UsageTotals::default(),
                duration_ms: 44_000,
                patch_path: None,
            }),
        ],
    );
    m
}

fn error(w: u16, h: u16) -> Model {
    let mut m = model(w, h, true, false);
    feed(
        &mut m,
        vec![
            Msg::Tick(0),
            ctrl('s'),
            Msg::Started("r1".into()),
            status(Stage::Validate, "octo/calc · model scripted:demo.json (replay) · sandbox bwrap, no network · run r1"),
            Msg::Tick(300),
            status(Stage::Clone, "cloning https://github.com/octo/calc"),
            Msg::Tick(2300),
            ev(Event::Error {
                run_id: "r1".into(),
                stage: Stage::Clone,
                message: "repository https://github.com/octo/calc not found: check the URL, or set GITHUB_TOKEN for a private repository".into(),
                retryable: false,
                code: tiny_backspace::event::ErrorCode::RepoUnreachable,
            }),
        ],
    );
    m
}

fn help(w: u16, h: u16) -> Model {
    let mut m = review(w, h, false);
    update(&mut m, chr('?'));
    m
}

fn snap(name: &str, build: fn(u16, u16) -> Model) {
    for (w, h) in [(80, 24), (200, 60)] {
        let m = build(w, h);
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), format!("{buf:?}"));
    }
}

#[test]
fn empty_start() {
    snap("empty_start", |w, h| model(w, h, false, false));
}

#[test]
fn running_with_streaming_log() {
    snap("running", |w, h| running(w, h, false));
}

#[test]
fn review_multi_file_one_hunk_out() {
    snap("review", |w, h| review(w, h, false));
}

#[test]
fn pr_dialog_open() {
    snap("pr_dialog", pr_dialog);
}

#[test]
fn pr_created_state() {
    snap("pr_created", pr_created);
}

#[test]
fn error_state() {
    snap("error", error);
}

#[test]
fn help_overlay() {
    snap("help", help);
}

#[test]
fn no_color_keeps_meaning_without_colors() {
    let m = review(80, 24, true);
    let buf = render(&m, 80, 24);
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "no colors under NO_COLOR"
        );
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    let text = render_text(&m, 80, 24);
    assert!(
        text.contains("[ ] @@"),
        "the left-out marker is text: {text}"
    );
    assert!(text.contains("[~]"), "the partial file marker is text");
    insta::assert_snapshot!("review_no_color_80x24", format!("{buf:?}"));
}

#[test]
fn too_small_says_the_minimum() {
    let m = model(50, 10, true, false);
    let text = render_text(&m, 50, 10);
    assert!(text.contains("at least 60×16"), "{text}");
}

#[test]
fn tool_output_escapes_are_never_drawn() {
    let mut m = running(120, 40, false);
    // Select the Bash entry (the steps pane has focus while running) and expand it.
    assert_eq!(m.focus, tiny_backspace::tui::model::Focus::Steps);
    let idx = m
        .log
        .entries
        .iter()
        .position(|e| e.title.starts_with("Bash"))
        .unwrap();
    m.log.selected = Some(idx);
    update(&mut m, key(KeyCode::Enter));
    let text = render_text(&m, 120, 40);
    assert!(text.contains("3 passed in 0.02s"), "{text}");
    assert!(!text.contains('\x1b') && !text.contains("52;c"), "{text}");
}

#[test]
fn wide_streaming_text_shows_the_newest_words() {
    let m = running(80, 24, false);
    let text = render_text(&m, 80, 24);
    assert!(text.contains("◆"), "{text}");
    assert!(
        text.contains("divisor is"),
        "the tail of the stream is visible: {text}"
    );
}

/// The review at 200×60 is side-by-side by default: old on the left, new on the right, a removed
/// line opposite its replacement, blank filler on the side that has fewer lines.
#[test]
fn review_is_side_by_side_when_wide() {
    let m = review(200, 60, false);
    let text = render_text(&m, 200, 60);
    let (old, new) = sbs_sides(&line_with(&text, "return a / b  "));
    assert!(old.starts_with("   2 -     return a / b"), "{old}");
    assert!(
        new.starts_with("  2 +     if b == 0:"),
        "the removed line faces its replacement: {new}"
    );
    let (old, new) = sbs_sides(&line_with(&text, "raise ValueError"));
    assert!(old.trim().is_empty(), "nothing on the old side: {old:?}");
    assert!(new.starts_with("  3 +         raise ValueError"), "{new}");
    let (old, new) = sbs_sides(&line_with(&text, "# Notes"));
    assert!(old.trim().is_empty(), "new file: old side empty: {old:?}");
    assert!(new.starts_with("  1 + # Notes"), "{new}");
    assert!(
        text.contains("[ ] @@ -40,3 +42,4 @@"),
        "the left-out marker stays"
    );
    assert!(text.contains("binary file: contents not shown"));
    assert!(text.contains("mode 100644 → 100755"));
    assert!(text.contains("v unified"), "the toggle is hinted");
}

/// `v` on the same review: the unified layout at the same size, the cursor on the same hunk.
#[test]
fn review_toggled_to_unified() {
    let mut m = review(200, 60, false);
    update(&mut m, chr('v'));
    assert!(!m.side_by_side);
    let buf = render(&m, 200, 60);
    let text = render_text(&m, 200, 60);
    assert!(text.contains("   2     -     return a / b"), "{text}");
    assert!(text.contains("v side-by-side"), "{text}");
    insta::assert_snapshot!("review_unified_200x60", format!("{buf:?}"));
}

/// At 80×24 the pane is too narrow: `v` keeps the unified layout and says why.
#[test]
fn review_narrow_stays_unified() {
    let mut m = review(80, 24, false);
    update(&mut m, chr('v'));
    assert!(
        m.side_by_side,
        "the session choice is kept for a wider terminal"
    );
    let buf = render(&m, 80, 24);
    let text = render_text(&m, 80, 24);
    assert!(
        text.contains("side-by-side needs a 120-column diff pane (this one has 48)"),
        "{text}"
    );
    assert!(!text.contains("v side-by-side") && !text.contains("v unified"));
    insta::assert_snapshot!("review_narrow_toggle_80x24", format!("{buf:?}"));
}

#[test]
fn side_by_side_keeps_meaning_without_colors() {
    let m = review(200, 60, true);
    let buf = render(&m, 200, 60);
    for cell in buf.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    let text = render_text(&m, 200, 60);
    assert!(text.contains("[ ] @@ -40,3 +42,4 @@"), "{text}");
    assert!(text.contains("[~] M calc/__init__.py"), "{text}");
    assert!(
        text.contains("  2 -     return a / b"),
        "signs are text: {text}"
    );
    insta::assert_snapshot!("review_no_color_200x60", format!("{buf:?}"));
}
