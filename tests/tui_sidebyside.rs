//! Key-driven tests of the side-by-side diff layout through the pure `update`: the `v` toggle,
//! the session memory of it, the narrow-terminal fallback, and that hunk and file navigation and
//! the selection act the same in both layouts.

mod tui_support;

use crossterm::event::{KeyCode, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use tiny_backspace::diff::rows::RowKind;
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::diffview::{DiffMode, DiffView};
use tiny_backspace::tui::model::Model;
use tiny_backspace::tui::update::{Msg, current_selection, update};
use tui_support::{chr, ctrl, key, render_text};

const PATCH: &str = "diff --git a/a.py b/a.py
--- a/a.py
+++ b/a.py
@@ -1,4 +1,5 @@
 def divide(a, b):
-    return a / b
+    if b == 0:
+        raise ValueError
+    return a // b
 
@@ -20,3 +21,3 @@ def mul(a, b):
 x = 1
-y = 2
+y = 3
 z = 4
diff --git a/b.md b/b.md
new file mode 100644
--- /dev/null
+++ b/b.md
@@ -0,0 +1,2 @@
+one
+two
diff --git a/c.txt b/c.txt
deleted file mode 100644
--- a/c.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-gone
-too
";

fn model(w: u16, h: u16) -> Model {
    tui_support::prefilled_model("octo/calc", "p", false, w, h)
}

fn diff(patch: &str) -> Msg {
    Msg::Pipeline(Event::diff("r", vec![], patch.as_bytes(), None))
}

/// A model in review of `patch` at `w`×`h`.
fn review(w: u16, h: u16, patch: &str) -> Model {
    let mut m = model(w, h);
    update(&mut m, ctrl('s'));
    update(&mut m, diff(patch));
    update(
        &mut m,
        Msg::Pipeline(Event::Status {
            run_id: "r".into(),
            stage: Stage::Review,
            message: "review".into(),
        }),
    );
    m
}

#[allow(clippy::unwrap_used)]
fn d(m: &Model) -> &DiffView {
    m.diff.as_ref().unwrap()
}

/// Lines in the diff body at `w`×`h`.
fn body_height(m: &Model) -> usize {
    let files = d(m).files.len();
    tiny_backspace::tui::layout::panes(Rect::new(0, 0, m.width, m.height), files)
        .body
        .height as usize
}

/// 40 files of 5 hunks each, so hunks sit far below the first screen.
fn long_patch() -> String {
    let mut p = String::new();
    for f in 0..40 {
        p.push_str(&format!(
            "diff --git a/f{f}.rs b/f{f}.rs\n--- a/f{f}.rs\n+++ b/f{f}.rs\n"
        ));
        for h in 0..5 {
            let s = h * 100 + 1;
            p.push_str(&format!(
                "@@ -{s},6 +{s},5 @@\n ctx\n-a{h}\n-b{h}\n-c{h}\n+A{h}\n+B{h}\n ctx\n ctx\n"
            ));
        }
    }
    p
}

#[test]
fn side_by_side_by_default_when_wide_unified_when_narrow() {
    let m = review(200, 60, PATCH);
    assert!(m.side_by_side);
    assert_eq!(d(&m).mode, DiffMode::SideBySide);
    let m = review(120, 40, PATCH);
    assert_eq!(d(&m).mode, DiffMode::Unified, "a 73-column pane is unified");
    assert!(
        m.side_by_side,
        "the session choice is not changed by a narrow pane"
    );
}

#[test]
fn v_toggles_and_the_choice_lasts_the_session() {
    let mut m = review(200, 60, PATCH);
    update(&mut m, chr('v'));
    assert_eq!(d(&m).mode, DiffMode::Unified);
    assert!(!m.side_by_side);
    assert!(m.notice.is_none(), "a wide toggle needs no explanation");
    // A follow-up brings a new diff: still unified.
    update(&mut m, diff(PATCH));
    assert_eq!(d(&m).mode, DiffMode::Unified);
    // A resize keeps the choice.
    update(&mut m, Msg::Resize(220, 60));
    assert_eq!(d(&m).mode, DiffMode::Unified);
    update(&mut m, chr('v'));
    assert_eq!(d(&m).mode, DiffMode::SideBySide);
    // Narrower than the threshold: unified, and back when wide again.
    update(&mut m, Msg::Resize(150, 40));
    assert_eq!(d(&m).mode, DiffMode::Unified);
    update(&mut m, Msg::Resize(200, 60));
    assert_eq!(d(&m).mode, DiffMode::SideBySide);
    // `v` is a diff-pane key: in a text field (the prompt, three Tabs on) it is a letter.
    update(&mut m, key(KeyCode::Tab));
    update(&mut m, key(KeyCode::Tab));
    update(&mut m, key(KeyCode::Tab));
    update(&mut m, chr('v'));
    assert_eq!(d(&m).mode, DiffMode::SideBySide);
    assert_eq!(tiny_backspace::tui::model::field_text(&m.prompt), "pv");
}

#[test]
fn v_on_a_narrow_pane_explains_and_keeps_unified() {
    let mut m = review(100, 30, PATCH);
    update(&mut m, chr('v'));
    assert_eq!(d(&m).mode, DiffMode::Unified);
    assert!(m.side_by_side, "nothing to remember: nothing changed");
    let n = m.notice.clone().unwrap();
    assert!(
        n.contains("side-by-side needs a 120-column diff pane"),
        "{n}"
    );
    let text = render_text(&m, 100, 30);
    assert!(text.contains("side-by-side needs"), "{text}");
}

/// n/p, ]/[ and space in the two layouts: the same rows, the same selection, step by step.
#[test]
fn hunk_keys_and_selection_act_the_same_in_both_layouts() {
    let mut sbs = review(200, 60, PATCH);
    let mut uni = review(200, 60, PATCH);
    update(&mut uni, chr('v'));
    assert_eq!(d(&sbs).mode, DiffMode::SideBySide);
    assert_eq!(d(&uni).mode, DiffMode::Unified);
    let keys = "nn pn ]] [ n ]nn p[[pp  ]]] g n ";
    for (i, c) in keys.chars().enumerate() {
        update(&mut sbs, chr(c));
        update(&mut uni, chr(c));
        assert_eq!(d(&sbs).cursor, d(&uni).cursor, "step {i} ({c:?})");
        assert_eq!(d(&sbs).selection(), d(&uni).selection(), "step {i} ({c:?})");
    }
    let sel = current_selection(&sbs);
    assert!(
        !sel.excluded_files.is_empty() || !sel.excluded_hunks.is_empty(),
        "the keys changed the selection: {sel:?}"
    );
    assert_eq!(sel, current_selection(&uni));
    // The same keys after a PageDown/End (different screen lines) still agree on hunks.
    for m in [&mut sbs, &mut uni] {
        update(m, key(KeyCode::End));
        update(m, chr('p'));
        update(m, chr(' '));
    }
    assert_eq!(d(&sbs).cursor, d(&uni).cursor);
    assert_eq!(current_selection(&sbs), current_selection(&uni));
}

#[test]
fn j_and_k_move_by_screen_lines() {
    let mut m = review(200, 60, PATCH);
    let rows = d(&m).rows.clone();
    let kind = |m: &Model| rows[d(m).cursor].kind;
    update(&mut m, chr('n'));
    assert_eq!(kind(&m), RowKind::Hunk);
    update(&mut m, chr('j'));
    assert_eq!(kind(&m), RowKind::Context);
    // `-    return a / b` faces `+    if b == 0:`: one screen line for both.
    update(&mut m, chr('j'));
    assert_eq!(kind(&m), RowKind::Removed);
    let pair_line = d(&m).cursor_line();
    update(&mut m, chr('j'));
    assert_eq!(
        kind(&m),
        RowKind::Added,
        "the next line has only a new side"
    );
    assert_eq!(d(&m).cursor_line(), pair_line + 1);
    assert_eq!(
        d(&m).line_text(&rows[d(&m).cursor]),
        "+        raise ValueError"
    );
    update(&mut m, chr('k'));
    assert_eq!(kind(&m), RowKind::Removed);
    // Unified: the same three steps stop on the first added line.
    let mut u = review(200, 60, PATCH);
    update(&mut u, chr('v'));
    for c in "njjj".chars() {
        update(&mut u, chr(c));
    }
    assert_eq!(rows[d(&u).cursor].kind, RowKind::Added);
    assert_eq!(d(&u).line_text(&rows[d(&u).cursor]), "+    if b == 0:");
}

#[test]
fn toggling_keeps_the_cursor_on_its_hunk_and_on_screen() {
    let patch = long_patch();
    let mut m = review(200, 60, &patch);
    for _ in 0..57 {
        update(&mut m, chr('n'));
    }
    update(&mut m, chr('j'));
    update(&mut m, chr('j'));
    let body_h = body_height(&m);
    let (cursor, top, offset) = {
        let v = d(&m);
        (v.cursor, v.top, v.cursor_line() - v.top)
    };
    let row = d(&m).rows[cursor];
    assert_eq!((row.file, row.hunk), (11, 1), "the 57th hunk");
    assert!(top > 100, "far down: {top}");
    for mode in [DiffMode::Unified, DiffMode::SideBySide] {
        update(&mut m, chr('v'));
        let v = d(&m);
        assert_eq!(v.mode, mode);
        assert_eq!(v.cursor, cursor, "same row, so same hunk");
        let line = v.cursor_line();
        assert!(
            line >= v.top && line < v.top + body_h,
            "{line} in {}+{body_h}",
            v.top
        );
        assert_eq!(
            line - v.top,
            offset,
            "the cursor keeps its height on screen"
        );
    }
    assert_eq!(d(&m).top, top, "toggled twice: back where it was");
    let text = render_text(&m, 200, 60);
    assert!(text.contains("│"), "{text}");
}

#[test]
fn mouse_wheel_scrolls_screen_lines_and_keeps_the_cursor_visible() {
    let patch = long_patch();
    let mut m = review(200, 60, &patch);
    let wheel = |kind| {
        Msg::Mouse(MouseEvent {
            kind,
            column: 150,
            row: 30,
            modifiers: KeyModifiers::NONE,
        })
    };
    for _ in 0..20 {
        update(&mut m, wheel(MouseEventKind::ScrollDown));
    }
    let v = d(&m);
    assert_eq!(v.top, 60);
    assert!(v.cursor_line() >= v.top, "the cursor came along");
    let lines = v.sbs.lines.len();
    assert!(
        lines < v.rows.len(),
        "pairs share lines: {lines} < {}",
        v.rows.len()
    );
    update(&mut m, key(KeyCode::End));
    let v = d(&m);
    assert_eq!(v.cursor_line(), lines - 1);
    assert_eq!(
        v.top,
        lines - body_height(&m),
        "the last line at the bottom"
    );
}

#[test]
fn long_lines_are_cut_with_a_mark_on_each_side() {
    let long_old = format!("-{}old", "x".repeat(100));
    let long_new = format!("+{}new", "x".repeat(100));
    let patch = format!(
        "diff --git a/l.txt b/l.txt\n--- a/l.txt\n+++ b/l.txt\n@@ -1 +1 @@\n{long_old}\n{long_new}\n"
    );
    let m = review(200, 60, &patch);
    let text = render_text(&m, 200, 60);
    let line = text.lines().find(|l| l.contains("xxxxx")).unwrap();
    assert!(line.contains("x…│"), "the old side ends in a mark: {line}");
    assert!(line.trim_end_matches('│').ends_with("x…"), "{line}");
    assert!(!line.contains("old") && !line.contains("new"));
}

#[test]
fn a_deleted_file_has_only_an_old_side() {
    let mut m = review(200, 60, PATCH);
    update(&mut m, chr(']'));
    update(&mut m, chr(']'));
    let text = render_text(&m, 200, 60);
    assert!(text.contains("deleted file (mode 100644)"), "{text}");
    let (old, new) = tui_support::sbs_sides(&tui_support::line_with(&text, "gone"));
    assert!(old.contains("  1 - gone"), "{old}");
    assert!(new.trim().is_empty(), "nothing on the new side: {new:?}");
}

/// Should a frame be narrower than the model's size (it never is in the app), the view still
/// draws the unified layout, around the cursor.
#[test]
fn a_narrower_frame_than_the_model_draws_unified() {
    let mut m = review(200, 60, PATCH);
    update(&mut m, chr('n'));
    assert_eq!(d(&m).mode, DiffMode::SideBySide);
    let text = render_text(&m, 120, 40);
    assert!(text.contains("   2     -     return a / b"), "{text}");
    assert!(text.contains("▸[x] @@ -1,4 +1,5 @@"), "{text}");
}
