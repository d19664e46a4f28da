//! The live parts of the TUI, key-driven through the pure `update`: streamed `Output` in the
//! running step, the live diff (read-only, replaced by the final one, a review's selection kept
//! across a follow-up), tokens and cost per step and per follow-up, the full-screen pager, and
//! the mouse in the steps pane — with snapshots at 80×24 and 200×60.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_support;

use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::model::{Focus, Model, RunState};
use tiny_backspace::tui::steplog::EntryStatus;
use tiny_backspace::tui::update::{Msg, update};
use tui_support::{chr, ctrl, key, line_with, render, render_text};

fn ev(m: &mut Model, e: Event) {
    update(m, Msg::Pipeline(e));
}

fn status(stage: Stage, message: &str) -> Event {
    Event::Status {
        run_id: "r".into(),
        stage,
        message: message.into(),
    }
}

fn output(id: &str, text: &str) -> Event {
    Event::Output {
        run_id: "r".into(),
        id: id.into(),
        stream: Some("combined".into()),
        text: text.into(),
    }
}

fn bash(command: &str, output: &str) -> Event {
    Event::ToolBash {
        command: command.into(),
        output: output.into(),
        exit_code: 0,
        run_id: None,
        duration_ms: 1500,
        terminated: None,
    }
}

fn usage(tokens: u64, cost: f64) -> Event {
    Event::Usage {
        run_id: "r".into(),
        provider: "anthropic".into(),
        model: "m".into(),
        input_tokens: tokens,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: Some(cost),
    }
}

const PATCH: &str =
    "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n a\n+LIVE\n";
const PATCH2: &str = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n a\n+FINAL\ndiff --git a/b.txt b/b.txt\nnew file mode 100644\n--- /dev/null\n+++ b/b.txt\n@@ -0,0 +1 @@\n+b\n";

fn live(patch: &str) -> Event {
    Event::live_diff("r", vec![], patch.as_bytes())
}

/// A running model at `w`×`h`: the agent at work, a command streaming its output, a live diff.
fn running(w: u16, h: u16) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, w, h);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Validate, "ok"));
    ev(&mut m, status(Stage::Clone, "cloned"));
    ev(&mut m, status(Stage::Agent, "agent started (m)"));
    ev(
        &mut m,
        Event::AiDelta {
            run_id: "r".into(),
            delta: "I'll run the tests.".into(),
        },
    );
    ev(&mut m, usage(1200, 0.01));
    ev(
        &mut m,
        Event::AiMessage {
            message: "I'll run the tests.".into(),
            run_id: None,
        },
    );
    ev(&mut m, bash("echo LIVE >> a.txt", ""));
    ev(&mut m, live(PATCH));
    ev(&mut m, usage(800, 0.02));
    ev(&mut m, status(Stage::Agent, "running pytest -q"));
    for i in 1..=8 {
        ev(&mut m, output("call_2", &format!("test_{i} PASSED\n")));
    }
    m
}

#[test]
fn output_streams_into_the_running_step_and_tool_bash_finishes_it_in_place() {
    let mut m = running(100, 30);
    let steps = m.log.entries.len();
    let e = m.log.entries.back().unwrap();
    assert_eq!(e.status, EntryStatus::Running);
    assert_eq!(e.title, "Bash pytest -q → running");
    let screen = render_text(&m, 100, 30);
    // The last lines of the output, under the running step.
    assert!(screen.contains("test_8 PASSED"), "{screen}");
    assert!(
        !screen.contains("test_3 PASSED"),
        "five lines only: {screen}"
    );
    ev(&mut m, bash("pytest -q", "all 8 PASSED\n"));
    assert_eq!(m.log.entries.len(), steps, "one step, not two");
    let e = m.log.entries.back().unwrap();
    assert_eq!(e.status, EntryStatus::Ok);
    assert_eq!(e.detail, "all 8 PASSED\n");
    let screen = render_text(&m, 100, 30);
    assert!(!screen.contains("test_8 PASSED"), "folded again: {screen}");
    // Escape sequences in a chunk never reach the screen.
    ev(&mut m, output("call_3", "\x1b]52;c;aGk=\x07\x1b[31mred\n"));
    let screen = render_text(&m, 100, 30);
    assert!(
        screen.contains("red") && !screen.contains('\x1b'),
        "{screen}"
    );
}

#[test]
fn tokens_and_cost_show_per_step_and_per_follow_up() {
    let mut m = running(200, 40);
    let screen = render_text(&m, 200, 40);
    let model = line_with(&screen, "I'll run the tests.");
    assert!(
        model.contains("1.2k tok · $0.01"),
        "the turn's step: {model}"
    );
    let agent = line_with(&screen, "agent ·");
    assert!(
        agent.contains("2.0k tok · $0.03"),
        "the agent's total: {agent}"
    );
    // A follow-up's agent step counts only the follow-up.
    ev(&mut m, bash("pytest -q", "ok\n"));
    ev(&mut m, Event::diff("r", vec![], PATCH.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    m.state = RunState::Running(Stage::Agent);
    ev(
        &mut m,
        status(Stage::Agent, "agent continues with the follow-up"),
    );
    ev(&mut m, usage(300, 0.005));
    let screen = render_text(&m, 200, 40);
    let follow = line_with(&screen, "agent continu");
    assert!(follow.contains("300 tok · $0.01"), "{follow}");
}

#[test]
fn the_live_diff_is_read_only_and_the_final_diff_replaces_it() {
    let mut m = running(120, 30);
    let screen = render_text(&m, 120, 30);
    assert!(screen.contains("Live diff (so far)"), "{screen}");
    assert!(screen.contains("LIVE"), "{screen}");
    assert_eq!(m.focus, Focus::Steps, "the focus stays where it was");
    m.focus = Focus::Diff;
    update(&mut m, chr(' '));
    assert!(m.diff.as_ref().unwrap().selection().is_everything());
    assert!(m.notice.as_deref().unwrap_or("").contains("in review"));
    ev(&mut m, Event::diff("r", vec![], PATCH2.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    let screen = render_text(&m, 120, 30);
    assert!(
        !screen.contains("Live diff") && screen.contains("FINAL"),
        "{screen}"
    );
    // In review, b.txt is left out; a follow-up's live diffs do not lose that choice.
    update(&mut m, chr(']'));
    update(&mut m, chr(' '));
    assert!(!m.diff.as_ref().unwrap().selection().is_everything());
    m.state = RunState::Running(Stage::Agent);
    ev(&mut m, live(PATCH));
    assert!(m.live_diff);
    ev(&mut m, Event::diff("r", vec![], PATCH2.as_bytes(), None));
    let sel = m.diff.as_ref().unwrap().selection();
    assert!(sel.excluded_files.iter().any(|f| f == "b.txt"), "{sel:?}");
    // A late live diff after the run ended is ignored.
    ev(&mut m, status(Stage::Review, "review"));
    ev(&mut m, live(PATCH));
    assert!(!m.live_diff);
}

/// A reviewed run whose one command printed `n` numbered lines, the steps pane focused.
fn with_long_output(w: u16, h: u16, n: usize) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, w, h);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Agent, "agent started (m)"));
    let out: String = (1..=n).map(|i| format!("{i}\n")).collect();
    ev(&mut m, bash("seq 1 5000", &out));
    ev(&mut m, status(Stage::Review, "review"));
    m.focus = Focus::Steps;
    m
}

#[test]
fn the_pager_reaches_the_last_line_of_5000_and_searches_them() {
    let mut m = with_long_output(80, 24, 5000);
    update(&mut m, chr('k'));
    update(&mut m, chr('v'));
    let screen = render_text(&m, 80, 24);
    assert!(screen.contains("lines 1–22 of 5000"), "{screen}");
    update(&mut m, chr('G'));
    let screen = render_text(&m, 80, 24);
    assert!(screen.contains("lines 4979–5000 of 5000"), "{screen}");
    assert_eq!(screen.lines().nth(22).unwrap().trim(), "5000", "{screen}");
    update(&mut m, key(KeyCode::PageUp));
    update(&mut m, chr('g'));
    assert!(render_text(&m, 80, 24).contains("lines 1–22"));
    update(&mut m, chr('/'));
    for c in "4321".chars() {
        update(&mut m, chr(c));
    }
    update(&mut m, key(KeyCode::Enter));
    let screen = render_text(&m, 80, 24);
    assert!(screen.contains("match 1 of 1"), "{screen}");
    assert!(screen.lines().any(|l| l.trim() == "4321"), "{screen}");
    update(&mut m, chr('n'));
    assert!(render_text(&m, 80, 24).contains("match 1 of 1"));
    // Esc ends the search, then leaves; q leaves too.
    update(&mut m, key(KeyCode::Esc));
    assert!(m.pager.is_some());
    update(&mut m, key(KeyCode::Esc));
    assert!(m.pager.is_none());
    update(&mut m, chr('v'));
    update(&mut m, chr('q'));
    assert!(m.pager.is_none());
    // Ctrl+C still works from the pager: it closes it and asks before quitting the review.
    update(&mut m, chr('v'));
    update(&mut m, ctrl('c'));
    assert!(m.pager.is_none());
    assert!(!matches!(
        m.overlay,
        tiny_backspace::tui::model::Overlay::None
    ));
}

fn mouse(m: &mut Model, kind: MouseEventKind, column: u16, row: u16) {
    update(
        m,
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }),
    );
}

#[test]
fn a_click_selects_the_step_under_it_and_the_wheel_scrolls_the_view_not_the_selection() {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, 100, 30);
    update(&mut m, ctrl('s'));
    for i in 0..40 {
        ev(
            &mut m,
            Event::ToolRead {
                filepath: format!("file{i}.txt"),
                run_id: None,
            },
        );
    }
    let steps = m.panes().steps;
    // Following the tail: the last step is on the last row.
    let screen = render_text(&m, 100, 30);
    let row = screen
        .lines()
        .position(|l| l.contains("file30.txt"))
        .unwrap() as u16;
    mouse(
        &mut m,
        MouseEventKind::Down(MouseButton::Left),
        steps.x + 3,
        row,
    );
    assert_eq!(m.focus, Focus::Steps);
    let picked = m.log.selected.unwrap();
    assert_eq!(m.log.entries[picked].title, "Read file30.txt");
    let screen = render_text(&m, 100, 30);
    assert!(line_with(&screen, "file30.txt").contains('▸'), "{screen}");
    assert_eq!(
        screen
            .lines()
            .position(|l| l.contains("file30.txt"))
            .unwrap() as u16,
        row,
        "the view did not move"
    );
    // The wheel: three rows up per notch, the selection unchanged.
    mouse(&mut m, MouseEventKind::ScrollUp, steps.x + 3, row);
    assert_eq!(m.log.selected, Some(picked));
    let screen = render_text(&m, 100, 30);
    assert_eq!(
        screen
            .lines()
            .position(|l| l.contains("file30.txt"))
            .unwrap() as u16,
        row + 3,
        "{screen}"
    );
    // A click after scrolling picks what is drawn there.
    let row = screen
        .lines()
        .position(|l| l.contains("file28.txt"))
        .unwrap() as u16;
    mouse(
        &mut m,
        MouseEventKind::Down(MouseButton::Left),
        steps.x + 3,
        row,
    );
    assert_eq!(
        m.log.entries[m.log.selected.unwrap()].title,
        "Read file28.txt"
    );
    // A key moves the selection and the view follows it again; G follows the tail.
    update(&mut m, chr('j'));
    assert_eq!(m.log.view_top, None);
    update(&mut m, chr('G'));
    assert!(render_text(&m, 100, 30).contains("file39.txt"));
}

#[test]
fn snapshots_of_the_live_states() {
    for (w, h) in [(80, 24), (200, 60)] {
        let m = running(w, h);
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("live_running_{w}x{h}"), format!("{buf:?}"));
        let mut m = with_long_output(w, h, 5000);
        update(&mut m, chr('k'));
        update(&mut m, chr('v'));
        update(&mut m, chr('G'));
        update(&mut m, chr('/'));
        for c in "4999".chars() {
            update(&mut m, chr(c));
        }
        update(&mut m, key(KeyCode::Enter));
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("pager_{w}x{h}"), format!("{buf:?}"));
        let mut m = edited(w, h);
        update(&mut m, chr('n'));
        update(&mut m, chr('t'));
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("hunk_to_step_{w}x{h}"), format!("{buf:?}"));
    }
}

fn edit(path: &str, old: &str, new: &str) -> Event {
    Event::ToolEdit {
        filepath: path.into(),
        old_str: old.into(),
        new_str: new.into(),
        run_id: None,
    }
}

/// A review of two edits of calc.py, a command on gen.txt and a file no step names.
fn edited(w: u16, h: u16) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, w, h);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Agent, "agent started (m)"));
    let said = |m: &mut Model, text: &str| {
        ev(
            m,
            Event::AiMessage {
                message: text.into(),
                run_id: None,
            },
        )
    };
    said(&mut m, "First the guard.");
    ev(
        &mut m,
        edit(
            "calc.py",
            "def div(a, b):\n",
            "def div(a, b):\n    if b == 0:\n        raise ValueError\n",
        ),
    );
    said(&mut m, "Now the notes.");
    ev(&mut m, edit("NOTES.md", "", "divide checks zero\n"));
    said(&mut m, "And a tweak at the end of calc.");
    ev(
        &mut m,
        edit(
            "calc.py",
            "    return a / b\n",
            "    return a / b  # checked\n",
        ),
    );
    ev(&mut m, bash("sed -i s/x/y/ gen.txt", ""));
    let patch = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,4 @@\n def div(a, b):\n+    if b == 0:\n+        raise ValueError\n     return a / b\n@@ -10,1 +12,1 @@\n-    return a / b\n+    return a / b  # checked\ndiff --git a/gen.txt b/gen.txt\n--- a/gen.txt\n+++ b/gen.txt\n@@ -1 +1 @@\n-x\n+y\ndiff --git a/other.txt b/other.txt\n--- a/other.txt\n+++ b/other.txt\n@@ -1 +1 @@\n-o\n+p\n";
    ev(&mut m, Event::diff("r", vec![], patch.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    m.focus = Focus::Diff;
    m
}

#[test]
fn t_on_a_hunk_selects_the_step_that_last_changed_it_and_t_or_esc_goes_back() {
    let mut m = edited(120, 30);
    let title = |m: &Model| m.log.entries[m.log.selected.unwrap()].title.clone();
    // The first hunk: the guard's edit, not the later edit of the same file.
    update(&mut m, chr('n'));
    update(&mut m, chr('j'));
    let cursor = m.diff.as_ref().unwrap().cursor;
    update(&mut m, chr('t'));
    assert_eq!(m.focus, Focus::Steps);
    assert_eq!(title(&m), "Edit calc.py (+2 −0)");
    let screen = render_text(&m, 120, 30);
    assert!(
        screen.contains("First the guard."),
        "the words before it: {screen}"
    );
    assert!(screen.contains("t or Esc: back to it"), "{screen}");
    update(&mut m, key(KeyCode::Esc));
    assert_eq!(m.focus, Focus::Diff);
    assert_eq!(m.diff.as_ref().unwrap().cursor, cursor, "back where it was");
    // The second hunk: the later edit; `t` goes back too.
    update(&mut m, chr('n'));
    update(&mut m, chr('t'));
    assert_eq!(title(&m), "Edit calc.py (+1 −1)");
    update(&mut m, chr('t'));
    assert_eq!(m.focus, Focus::Diff);
    // A file only a command changed: the command naming it.
    update(&mut m, chr(']'));
    update(&mut m, chr('n'));
    update(&mut m, chr('t'));
    assert!(
        title(&m).starts_with("Bash sed -i s/x/y/ gen.txt"),
        "{}",
        title(&m)
    );
    update(&mut m, chr('t'));
    // A file no step names: said so, the focus stays.
    update(&mut m, chr(']'));
    update(&mut m, chr('t'));
    assert_eq!(m.focus, Focus::Diff);
    assert!(
        m.notice
            .as_deref()
            .unwrap_or("")
            .contains("no step edited other.txt")
    );
}

#[test]
fn an_expanded_running_command_follows_its_output_until_a_key_moves_it() {
    let mut m = running(100, 30);
    for i in 9..=60 {
        ev(&mut m, output("call_2", &format!("test_{i} PASSED\n")));
    }
    m.focus = Focus::Steps;
    update(&mut m, key(KeyCode::Enter));
    let screen = render_text(&m, 100, 30);
    assert!(screen.contains("test_60 PASSED"), "at its end: {screen}");
    ev(&mut m, output("call_2", "test_61 PASSED\n"));
    let screen = render_text(&m, 100, 30);
    assert!(screen.contains("test_61 PASSED"), "follows: {screen}");
    assert!(screen.contains("of 61"), "{screen}");
    update(&mut m, chr('k'));
    ev(&mut m, output("call_2", "test_62 PASSED\n"));
    let screen = render_text(&m, 100, 30);
    assert!(
        !screen.contains("test_62 PASSED"),
        "a key stops following: {screen}"
    );
    // Finished, the whole output replaces the streamed one; the step stays readable.
    ev(&mut m, bash("pytest -q", "62 passed\n"));
    let screen = render_text(&m, 100, 30);
    assert!(screen.contains("62 passed"), "{screen}");
}
