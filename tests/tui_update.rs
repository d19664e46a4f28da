//! Unit tests of the pure `update`: keys and events in, model and actions out — no pipeline, no
//! terminal, no clock.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::pipeline::Command;
use tiny_backspace::tui::model::{Focus, Model, Overlay, RunState, field_text};
use tiny_backspace::tui::update::{Action, Msg, update};
use tui_support::{chr, ctrl, key};

fn model(repo: &str, prompt: &str) -> Model {
    tui_support::prefilled_model(repo, prompt, false, 120, 40)
}

fn status(stage: Stage) -> Msg {
    Msg::Pipeline(Event::Status {
        run_id: "r".into(),
        stage,
        message: "m".into(),
    })
}

fn started(m: &mut Model) {
    let acts = update(m, ctrl('s'));
    assert!(
        matches!(acts.as_slice(), [Action::Start { .. }]),
        "{acts:?}"
    );
}

#[test]
fn start_returns_the_request_and_resets_the_previous_run() {
    let mut m = model("octo/calc", "  Do it  ");
    update(&mut m, Msg::Tick(5000));
    let acts = update(&mut m, ctrl('s'));
    assert_eq!(
        acts,
        vec![Action::Start {
            repo: "octo/calc".into(),
            prompt: "  Do it  ".into(),
            base: None,
        }]
    );
    assert_eq!(m.state, RunState::Running(Stage::Validate));
    assert_eq!(m.run_started_ms, Some(5000));
    assert_eq!(m.focus, Focus::Steps);
    // A second Ctrl+S while running does nothing but explain.
    assert!(update(&mut m, ctrl('s')).is_empty());
    assert!(m.notice.as_deref().unwrap().contains("Ctrl+C"));
}

#[test]
fn focus_cycles_and_text_fields_keep_letters() {
    let mut m = model("", "");
    assert_eq!(
        m.focus,
        Focus::Repo,
        "an empty repo field gets the focus first"
    );
    let order: Vec<Focus> = (0..5)
        .map(|_| {
            update(&mut m, key(KeyCode::Tab));
            m.focus
        })
        .collect();
    assert_eq!(
        order,
        vec![
            Focus::Base,
            Focus::Prompt,
            Focus::Steps,
            Focus::Diff,
            Focus::Repo
        ]
    );
    update(&mut m, key(KeyCode::BackTab));
    assert_eq!(m.focus, Focus::Diff);
    // In a text field, q and ? are text.
    update(&mut m, key(KeyCode::Tab));
    for c in "q?e".chars() {
        assert!(update(&mut m, chr(c)).is_empty());
    }
    assert_eq!(field_text(&m.repo), "q?e");
    // Enter in the repository moves on instead of adding a line.
    update(&mut m, key(KeyCode::Enter));
    assert_eq!(m.focus, Focus::Base);
    assert_eq!(m.repo.lines().len(), 1);
    // Enter in the prompt is a newline.
    update(&mut m, key(KeyCode::Tab));
    update(&mut m, chr('a'));
    update(&mut m, key(KeyCode::Enter));
    update(&mut m, chr('b'));
    assert_eq!(field_text(&m.prompt), "a\nb");
    // Esc leaves the field; q then quits (nothing to lose).
    update(&mut m, key(KeyCode::Esc));
    assert!(!m.focus.is_text());
    assert_eq!(update(&mut m, chr('q')), vec![Action::Quit]);
    assert!(m.should_quit);
}

#[test]
fn key_releases_are_ignored() {
    let mut m = model("", "");
    let mut k = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
    k.kind = KeyEventKind::Release;
    update(&mut m, Msg::Key(k));
    assert_eq!(field_text(&m.repo), "");
}

#[test]
fn ctrl_c_cancels_once_then_quits() {
    let mut m = model("octo/calc", "p");
    started(&mut m);
    update(&mut m, status(Stage::Agent));
    assert_eq!(
        update(&mut m, ctrl('c')),
        vec![Action::Send(Command::Cancel)]
    );
    assert_eq!(m.state, RunState::Cancelling);
    assert_eq!(update(&mut m, ctrl('c')), vec![Action::Quit]);
}

#[test]
fn the_pipeline_drives_the_state() {
    let mut m = model("octo/calc", "p");
    started(&mut m);
    for (stage, want) in [
        (Stage::Clone, RunState::Running(Stage::Clone)),
        (Stage::Agent, RunState::Running(Stage::Agent)),
        (Stage::Diff, RunState::Running(Stage::Diff)),
        (Stage::Review, RunState::Review),
    ] {
        update(&mut m, status(stage));
        assert_eq!(m.state, want);
    }
    // A late stage report after the review does not restart the spinner.
    update(&mut m, status(Stage::Cleanup));
    assert_eq!(m.state, RunState::Review);
    assert!(!m.animating());
    assert!(m.unpublished_work().is_some());
}

#[test]
fn review_only_commands_explain_themselves_elsewhere() {
    let mut m = model("octo/calc", "p");
    update(&mut m, key(KeyCode::Esc));
    for c in ['c', 'f'] {
        assert!(update(&mut m, chr(c)).is_empty());
        assert!(matches!(m.overlay, Overlay::None));
        assert!(m.notice.is_some(), "{c} says why it does nothing");
    }
}

#[test]
fn steps_select_expand_and_follow() {
    let mut m = model("octo/calc", "p");
    started(&mut m);
    for i in 0..5 {
        update(
            &mut m,
            Msg::Pipeline(Event::ToolBash {
                command: format!("cmd {i}"),
                output: format!("out {i}"),
                exit_code: i,
                run_id: None,
                duration_ms: 0,
                terminated: None,
            }),
        );
    }
    assert_eq!(m.log.selected, None, "follows the tail");
    update(&mut m, chr('k'));
    update(&mut m, chr('k'));
    assert_eq!(m.log.selected, Some(2));
    update(&mut m, key(KeyCode::Enter));
    assert!(m.log.entries[2].expanded);
    // New entries do not move a reader who scrolled up.
    update(
        &mut m,
        Msg::Pipeline(Event::ToolRead {
            filepath: "x".into(),
            run_id: None,
        }),
    );
    assert_eq!(m.log.selected, Some(2));
    update(&mut m, chr('G'));
    assert_eq!(m.log.selected, None);
    assert_eq!(
        m.log.entries[1].status,
        tiny_backspace::tui::steplog::EntryStatus::Failed,
        "a non-zero exit is marked"
    );
}

#[test]
fn space_changes_the_selection_only_in_review() {
    let mut m = model("octo/calc", "p");
    started(&mut m);
    let patch = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n";
    update(
        &mut m,
        Msg::Pipeline(Event::diff("r", vec![], patch.as_bytes(), None)),
    );
    assert_eq!(m.focus, Focus::Diff);
    update(&mut m, chr('n'));
    update(&mut m, chr(' '));
    assert!(
        m.diff.as_ref().unwrap().excluded_hunks.is_empty(),
        "still running"
    );
    update(&mut m, status(Stage::Review));
    update(&mut m, chr(' '));
    assert_eq!(m.diff.as_ref().unwrap().summary().hunks_in, 0);
    // Nothing selected: no PR dialog.
    update(&mut m, chr('c'));
    assert!(matches!(m.overlay, Overlay::None));
    assert!(m.notice.as_deref().unwrap().contains("nothing"));
}

#[test]
fn paste_normalizes_line_endings_and_drops_escapes() {
    let mut m = model("octo/calc", "");
    update(
        &mut m,
        Msg::Paste("a\r\nb\rc\x1b]52;c;ZXZpbA==\x07d".into()),
    );
    assert_eq!(field_text(&m.prompt), "a\nb\ncd");
}

#[test]
fn esc_then_a_key_read_as_alt_closes_the_dialog_first() {
    let mut m = model("octo/calc", "p");
    update(&mut m, key(KeyCode::Esc));
    update(&mut m, chr('?'));
    assert!(matches!(m.overlay, Overlay::Help { .. }));
    let alt_q = Msg::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::ALT));
    assert_eq!(update(&mut m, alt_q), vec![Action::Quit]);
    assert!(matches!(m.overlay, Overlay::None));
}
