//! Hidden characters in the diff are drawn, not hidden (issue 12, cases 3 and 4): a bidi
//! override, a zero-width space, a terminal escape sequence and a CRLF flip, in the unified
//! (80×24) and side-by-side (200×60) layouts, with the `⚠` of the file list. Snapshots include
//! the styles, so the warning style of every stand-in is pinned too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_support;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::model::Model;
use tiny_backspace::tui::update::{Msg, update};
use tui_support::{chr, ctrl, line_with, render, render_text};

/// A Trojan Source file, a CRLF flip and a `.gitattributes`.
const PATCH: &str = "diff --git a/access.js b/access.js
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/access.js
@@ -0,0 +1,4 @@
+var isAdmin = false;
+/*\u{202E} } \u{2066}if (isAdmin)\u{2069} \u{2066} begin admins only */
+var token\u{200B} = 1; // \x1b]0;pwned\x07\x1b[1A\x1b[2K
+done();
diff --git a/notes.txt b/notes.txt
index 2222222..3333333 100644
--- a/notes.txt
+++ b/notes.txt
@@ -1,3 +1,3 @@
 one
-two
+two\r
 three
diff --git a/.gitattributes b/.gitattributes
new file mode 100644
index 0000000..4444444
--- /dev/null
+++ b/.gitattributes
@@ -0,0 +1 @@
+*.js -diff
";

fn review(w: u16, h: u16, no_color: bool) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", no_color, w, h);
    update(&mut m, ctrl('s'));
    for e in [
        Event::diff("r", vec![], PATCH.as_bytes(), None),
        Event::Status {
            run_id: "r".into(),
            stage: Stage::Review,
            message: "review".into(),
        },
    ] {
        update(&mut m, Msg::Pipeline(e));
    }
    m
}

/// No cell holds a character a terminal would obey or hide.
fn assert_nothing_raw(buf: &Buffer) {
    for cell in buf.content() {
        for c in cell.symbol().chars() {
            assert!(
                !c.is_control() && !tiny_backspace::sanitize::is_hidden(c),
                "raw {c:?} drawn"
            );
        }
    }
}

/// The cells of the first `needle` on the screen.
fn cells_of<'b>(buf: &'b Buffer, needle: &str) -> Vec<&'b ratatui::buffer::Cell> {
    let w = buf.area.width;
    for y in 0..buf.area.height {
        let row: Vec<&str> = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        let line = row.concat();
        if let Some(byte) = line.find(needle) {
            let x0 = line[..byte].chars().count();
            let n = needle.chars().count();
            return (x0..x0 + n).map(|x| &buf[(x as u16, y)]).collect();
        }
    }
    panic!("{needle:?} not on the screen");
}

fn assert_warning_style(buf: &Buffer, needle: &str, no_color: bool) {
    for cell in cells_of(buf, needle) {
        if no_color {
            assert!(
                cell.modifier.contains(Modifier::REVERSED),
                "{needle}: {cell:?}"
            );
        } else {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Black, Color::Yellow),
                "{needle}"
            );
        }
    }
}

#[test]
fn unified_80x24_draws_every_hidden_character() {
    let m = review(80, 24, false);
    let buf = render(&m, 80, 24);
    let text = render_text(&m, 80, 24);
    assert_nothing_raw(&buf);
    assert!(line_with(&text, "access.js").contains('⚠'), "{text}");
    assert!(line_with(&text, "notes.txt").contains('⚠'), "{text}");
    assert!(line_with(&text, ".gitattributes").contains('⚠'), "{text}");
    let trojan = line_with(&text, "/*");
    assert!(trojan.contains("/*<U+202E> } <U+2066>if"), "{trojan}");
    assert!(line_with(&text, "var token").contains("token<U+200B> = 1"));
    for s in ["<U+202E>", "<U+2066>", "<U+200B>", "⚠"] {
        assert_warning_style(&buf, s, false);
    }
    insta::assert_snapshot!("hidden_unified_80x24", format!("{buf:?}"));
}

#[test]
fn an_escape_sequence_and_a_crlf_flip_are_visible_further_down() {
    let mut m = review(80, 24, false);
    // Down to the escape sequence (the line is long: its end is past the edge at 80 columns,
    // so look at it at 120), then to the next file.
    let text = render_text(&m, 120, 30);
    let esc = line_with(&text, "var token");
    assert!(esc.contains("// ␛]0;pwned␇␛[1A␛[2K"), "{esc}");
    update(&mut m, chr(']'));
    update(&mut m, chr(']'));
    let buf = render(&m, 80, 24);
    let text = render_text(&m, 80, 24);
    assert_nothing_raw(&buf);
    assert!(line_with(&text, "+ two").contains("+ two␍"), "{text}");
    assert!(!line_with(&text, "- two").contains('␍'), "{text}");
    assert!(
        line_with(&text, "M notes.txt").contains("⚠ line endings change"),
        "the file title says why: {text}"
    );
    assert_warning_style(&buf, "␍", false);
    assert!(
        line_with(&text, "A .gitattributes").contains("⚠ git config"),
        "{text}"
    );
}

#[test]
fn side_by_side_200x60_draws_every_hidden_character() {
    let m = review(200, 60, false);
    let buf = render(&m, 200, 60);
    let text = render_text(&m, 200, 60);
    assert_nothing_raw(&buf);
    // The removed line faces its CRLF twin; only the new side has the `␍`.
    let flip = line_with(&text, "+ two");
    let (old, new) = flip.split_once("+ two").unwrap();
    assert!(old.contains("- two") && !old.contains('␍'), "{flip}");
    assert!(new.starts_with('␍'), "{flip}");
    assert!(text.contains("// ␛]0;pwned␇␛[1A␛[2K"), "{text}");
    assert!(text.contains("⚠ hidden or bidi characters, control characters"));
    for s in ["<U+202E>", "<U+200B>", "␛", "␇", "␍"] {
        assert_warning_style(&buf, s, false);
    }
    insta::assert_snapshot!("hidden_side_by_side_200x60", format!("{buf:?}"));
}

#[test]
fn without_color_the_stand_ins_are_reversed() {
    let m = review(200, 60, true);
    let buf = render(&m, 200, 60);
    assert_nothing_raw(&buf);
    for s in ["<U+202E>", "␍", "⚠"] {
        assert_warning_style(&buf, s, true);
    }
}

#[test]
fn the_pr_dialog_names_the_warned_files_in_the_pr_before_confirming() {
    let mut m = review(120, 40, false);
    update(&mut m, chr('c'));
    let text = render_text(&m, 120, 40);
    for want in [
        "⚠ in this PR: access.js (hidden or bidi characters",
        "⚠ in this PR: notes.txt (line endings change",
        "⚠ in this PR: .gitattributes (git configuration",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    // A file left out of the PR is no longer named there.
    let mut m = review(120, 40, false);
    update(&mut m, chr(' ')); // the cursor starts on access.js's file header
    update(&mut m, chr('c'));
    let text = render_text(&m, 120, 40);
    assert!(!text.contains("⚠ in this PR: access.js"), "{text}");
    assert!(text.contains("⚠ in this PR: notes.txt"), "{text}");
}
