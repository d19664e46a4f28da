//! The defects a new user found (issue 15) and the dangling `@` of issue 17, each pinned by keys
//! and events against the pure `update` and the drawn screen — no pipeline, no terminal.

mod tui_support;

use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::pipeline::Command;
use tiny_backspace::tui::model::{Focus, Model, Overlay, PrField, RunState, field_text};
use tiny_backspace::tui::update::{Action, Msg, update};
use tui_support::{chr, ctrl, key, render_text};

fn model(w: u16, h: u16) -> Model {
    tui_support::prefilled_model("octo/calc", "Make divide reject zero", false, w, h)
}

fn status(stage: Stage, message: &str) -> Msg {
    Msg::Pipeline(Event::Status {
        run_id: "r".into(),
        stage,
        message: message.into(),
    })
}

fn bash(command: &str, output: &str, exit_code: i32) -> Msg {
    Msg::Pipeline(Event::ToolBash {
        command: command.into(),
        output: output.into(),
        exit_code,
        run_id: None,
        duration_ms: 0,
        terminated: None,
    })
}

const PATCH: &str = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n\
diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-y = 1\n+y = 2\n";

/// A model in review of a two-file diff.
fn in_review(w: u16, h: u16) -> Model {
    let mut m = model(w, h);
    update(&mut m, ctrl('s'));
    update(
        &mut m,
        Msg::Pipeline(Event::diff("r", vec![], PATCH.as_bytes(), None)),
    );
    update(&mut m, status(Stage::Review, "review the diff"));
    assert_eq!(m.state, RunState::Review);
    m
}

#[test]
fn a_long_expanded_step_reads_line_by_line_to_its_end_with_its_title_on_top() {
    let mut m = model(100, 30);
    update(&mut m, ctrl('s'));
    let mut log: Vec<String> = (1..=300).map(|i| format!("test_{i:03} ... ok")).collect();
    log.push("FAILED".into());
    update(&mut m, bash("pytest -q", &log.join("\n"), 1));
    update(
        &mut m,
        Msg::Pipeline(Event::ToolRead {
            filepath: "after.py".into(),
            run_id: None,
        }),
    );
    assert_eq!(m.focus, Focus::Steps);
    update(&mut m, chr('k'));
    update(&mut m, key(KeyCode::Enter));
    let bash_at = m.log.entries.len() - 2;
    assert_eq!(m.log.selected, Some(bash_at));
    let screen = render_text(&m, 100, 30);
    assert!(screen.contains("Bash pytest -q → exit 1"), "{screen}");
    assert!(
        screen.contains("test_001 ... ok"),
        "opens at its top: {screen}"
    );
    let mut presses = 0;
    while !render_text(&m, 100, 30).contains("FAILED") {
        let before = m.log.scroll;
        update(&mut m, chr('j'));
        assert_eq!(m.log.selected, Some(bash_at), "j stays in the step");
        assert_eq!(m.log.scroll, before + 1, "one line per press");
        presses += 1;
        assert!(presses < 400, "the end is never reached");
    }
    let screen = render_text(&m, 100, 30);
    assert!(
        screen.contains("Bash pytest -q → exit 1"),
        "the title stays on top at the end: {screen}"
    );
    assert!(screen.contains("of 301 "), "the pane says where: {screen}");
    // At the end, j goes on to the next step; k comes back up line by line.
    update(&mut m, chr('j'));
    assert_eq!(
        m.log.selected, None,
        "the next (last) step: follows the tail"
    );
    update(&mut m, chr('k'));
    assert_eq!(m.log.selected, Some(bash_at));
    update(&mut m, key(KeyCode::PageDown));
    assert!(m.log.scroll > 0);
    update(&mut m, chr('k'));
    update(&mut m, key(KeyCode::PageUp));
    assert_eq!(m.log.scroll, 0);
}

#[test]
fn ctrl_c_in_any_dialog_cancels_the_run_like_outside() {
    let open: [fn(&mut Model); 2] = [
        |m| {
            update(m, key(KeyCode::F(1)));
        },
        |m| {
            update(m, Msg::Runs(vec![]));
        },
    ];
    for open in open {
        let mut m = model(100, 30);
        update(&mut m, ctrl('s'));
        open(&mut m);
        assert!(!matches!(m.overlay, Overlay::None));
        let acts = update(&mut m, ctrl('c'));
        assert_eq!(acts, vec![Action::Send(Command::Cancel)]);
        assert_eq!(m.state, RunState::Cancelling);
        assert!(matches!(m.overlay, Overlay::None), "the dialog closes");
        // A second press quits, as outside.
        assert_eq!(update(&mut m, ctrl('c')), vec![Action::Quit]);
    }
    // A follow-up running with its box... and the PR dialog in review: Ctrl+C asks to quit, the
    // edited title kept.
    let mut m = in_review(100, 30);
    update(&mut m, chr('c'));
    update(&mut m, chr('!'));
    update(&mut m, ctrl('c'));
    assert!(matches!(m.overlay, Overlay::ConfirmQuit { .. }));
    update(&mut m, key(KeyCode::Esc));
    update(&mut m, chr('c'));
    match &m.overlay {
        Overlay::Pr(d) => assert!(field_text(&d.title).ends_with('!')),
        _ => panic!("no PR dialog"),
    }
    // Idle, with help open: Ctrl+C quits.
    let mut m = model(100, 30);
    update(&mut m, key(KeyCode::F(1)));
    assert_eq!(update(&mut m, ctrl('c')), vec![Action::Quit]);
}

#[test]
fn ctrl_c_in_the_publishing_pr_dialog_cancels_only_the_publish() {
    let mut m = in_review(100, 30);
    update(&mut m, chr('c'));
    let acts = update(&mut m, ctrl('s'));
    assert!(matches!(
        acts.as_slice(),
        [Action::Send(Command::Approve { .. })]
    ));
    assert_eq!(m.state, RunState::Publishing);
    let acts = update(&mut m, ctrl('c'));
    assert_eq!(acts, vec![Action::Send(Command::Cancel)]);
    assert!(matches!(m.overlay, Overlay::Pr(_)), "the dialog stays");
}

#[test]
fn pr_dialog_keeps_edits_across_esc_and_opens_the_body_at_its_top() {
    let mut m = in_review(100, 30);
    update(&mut m, chr('c'));
    match &m.overlay {
        Overlay::Pr(d) => assert_eq!(d.body.cursor(), (0, 0), "the body opens at its top"),
        _ => panic!("no PR dialog"),
    }
    for c in " edited".chars() {
        update(&mut m, chr(c));
    }
    update(&mut m, key(KeyCode::Tab));
    update(&mut m, chr('B'));
    update(&mut m, key(KeyCode::Esc));
    assert!(matches!(m.overlay, Overlay::None));
    update(&mut m, chr('c'));
    let Overlay::Pr(d) = &m.overlay else {
        panic!("no PR dialog");
    };
    assert!(
        field_text(&d.title).ends_with(" edited"),
        "{}",
        field_text(&d.title)
    );
    assert!(
        field_text(&d.body).starts_with('B'),
        "{}",
        field_text(&d.body)
    );
    assert_eq!(d.field, PrField::Title);
    assert_eq!(
        d.body.cursor(),
        (0, 0),
        "the kept body opens at its top too"
    );
    // Back from $EDITOR too.
    update(&mut m, key(KeyCode::Tab));
    update(
        &mut m,
        Msg::EditorDone(
            tiny_backspace::tui::model::Field::PrBody,
            Some("one\ntwo\nthree\n".into()),
        ),
    );
    let Overlay::Pr(d) = &m.overlay else {
        panic!("no PR dialog");
    };
    assert_eq!(field_text(&d.body), "one\ntwo\nthree");
    assert_eq!(d.body.cursor(), (0, 0));
}

#[test]
fn a_publish_error_is_shown_whole_and_a_branch_summary_scrolls_and_reopens() {
    let mut m = in_review(80, 24);
    update(&mut m, chr('c'));
    update(&mut m, ctrl('s'));
    let why = "publishing failed: the forge said 422 Unprocessable Entity: Validation Failed \
               (A pull request already exists for octo:tb/run-1.) Create it by hand or delete \
               the branch, then retry; the end of this message is here";
    update(&mut m, status(Stage::Publish, why));
    update(&mut m, status(Stage::Review, "review the diff"));
    let screen = render_text(&m, 80, 24);
    let flat: String = screen
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("the end of this message is here"),
        "the whole error: {screen}"
    );

    // A branch-only publish: its request-pull summary scrolls, closes and reopens with `c`.
    let mut m = in_review(80, 24);
    update(&mut m, chr('c'));
    update(&mut m, ctrl('s'));
    let mut summary: Vec<String> = (1..=40).map(|i| format!("summary line {i}")).collect();
    summary.push("LAST LINE".into());
    update(&mut m, status(Stage::Publish, &summary.join("\n")));
    update(
        &mut m,
        Msg::Pipeline(Event::Done {
            run_id: "r".into(),
            pr_url: None,
            patch_path: None,
            summary: String::new(),
            branch: Some("tb/run-1".into()),
            usage: Default::default(),
            duration_ms: 0,
        }),
    );
    assert!(!render_text(&m, 80, 24).contains("LAST LINE"));
    for _ in 0..60 {
        update(&mut m, chr('j'));
    }
    let screen = render_text(&m, 80, 24);
    assert!(screen.contains("LAST LINE"), "scrolls to its end: {screen}");
    update(&mut m, key(KeyCode::Esc));
    assert!(matches!(m.overlay, Overlay::None));
    update(&mut m, chr('c'));
    let screen = render_text(&m, 80, 24);
    assert!(screen.contains("summary line 1"), "reopens: {screen}");
}

#[test]
fn labels_do_not_outlive_what_they_say() {
    // The cancel notice goes once the run is cancelled.
    let mut m = model(100, 30);
    update(&mut m, ctrl('s'));
    update(&mut m, ctrl('c'));
    assert!(m.notice.as_deref().unwrap().starts_with("cancelling"));
    update(
        &mut m,
        Msg::Pipeline(Event::Error {
            run_id: "r".into(),
            stage: Stage::Agent,
            message: "cancelled".into(),
            retryable: false,
            code: tiny_backspace::event::ErrorCode::Cancelled,
        }),
    );
    assert_eq!(m.state, RunState::Cancelled);
    assert_eq!(m.notice, None);
    assert!(!render_text(&m, 100, 30).contains("Ctrl+C again"));

    // The side-by-side note goes with the size it was about.
    let mut m = in_review(80, 24);
    update(&mut m, chr('v'));
    assert!(m.notice.as_deref().unwrap().contains("side-by-side needs"));
    update(&mut m, Msg::Resize(200, 60));
    assert_eq!(m.notice, None);
}

#[test]
fn the_clock_stops_while_review_waits_for_the_human() {
    let mut m = model(100, 30);
    update(&mut m, Msg::Tick(1_000));
    update(&mut m, ctrl('s'));
    update(&mut m, Msg::Tick(5_000));
    update(
        &mut m,
        Msg::Pipeline(Event::diff("r", vec![], PATCH.as_bytes(), None)),
    );
    update(&mut m, status(Stage::Review, "review the diff"));
    update(&mut m, Msg::Tick(600_000));
    assert_eq!(m.elapsed_ms(), Some(4_000));
    assert!(render_text(&m, 100, 30).contains("0:04"));
    // A follow-up is work again: the clock goes on from where it stopped.
    update(&mut m, chr('f'));
    update(&mut m, chr('x'));
    update(&mut m, ctrl('s'));
    update(&mut m, Msg::Tick(603_000));
    assert_eq!(m.elapsed_ms(), Some(7_000));
}

#[test]
fn help_stops_at_its_last_line() {
    let mut m = model(80, 24);
    update(&mut m, key(KeyCode::F(1)));
    for _ in 0..200 {
        update(&mut m, chr('j'));
    }
    let Overlay::Help { scroll: max } = m.overlay else {
        panic!("help closed");
    };
    assert!(max > 0 && max < 60, "{max}");
    update(&mut m, chr('k'));
    assert!(
        matches!(m.overlay, Overlay::Help { scroll } if scroll == max - 1),
        "one k moves back at once"
    );
}

#[test]
fn y_does_not_claim_the_terminal_took_the_url() {
    let mut m = in_review(100, 30);
    m.pr_url = Some("https://example.invalid/pr/1".into());
    m.focus = Focus::Diff;
    let acts = update(&mut m, chr('y'));
    assert!(matches!(acts.as_slice(), [Action::Copy(_)]));
    let n = m.notice.clone().unwrap();
    assert!(n.contains("OSC 52") && !n.contains("copied"), "{n}");
}

#[test]
fn at_80_columns_the_header_drops_the_base_whole_and_results_stay_visible() {
    let mut m = tui_support::prefilled_model("octo/calculator-service", "p", false, 80, 24);
    m.base = tiny_backspace::tui::model::text_field("main", "", false);
    m.info.model = "replay · a-long-script-name.json".into();
    m.info.sandbox = "bwrap".into();
    update(&mut m, ctrl('s'));
    update(&mut m, Msg::Tick(41_000));
    update(
        &mut m,
        bash(
            "python3 -m pytest tests/test_calc.py -q --maxfail=1 -x",
            "",
            1,
        ),
    );
    let screen = render_text(&m, 80, 24);
    let header = screen.lines().next().unwrap();
    assert!(!header.contains('@'), "no dangling @: {header}");
    assert!(header.contains("octo/calculator-service"), "{header}");
    let step = tui_support::line_with(&screen, "✗ Bash python3");
    assert!(
        step.contains("… → exit 1"),
        "the command is cut, not the result: {step}"
    );
    // Wide: the base is there.
    let screen = render_text(&m, 200, 60);
    assert!(
        screen
            .lines()
            .next()
            .unwrap()
            .contains("octo/calculator-service @ main")
    );
}

#[test]
fn a_long_unified_line_ends_in_an_ellipsis_and_the_title_keeps_its_totals() {
    let mut m = model(80, 24);
    update(&mut m, ctrl('s'));
    let long = "z".repeat(200);
    let patch =
        format!("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+{long}\n");
    update(
        &mut m,
        Msg::Pipeline(Event::diff("r", vec![], patch.as_bytes(), None)),
    );
    let screen = render_text(&m, 80, 24);
    assert!(
        tui_support::line_with(&screen, "zzzz").contains("z…│"),
        "{screen}"
    );
    assert!(screen.contains("+1 −1 "), "totals in the title: {screen}");
}

#[test]
fn a_click_focuses_the_pane_and_picks_the_row_and_the_wheel_scrolls() {
    let mut m = in_review(100, 30);
    let click = |column, row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let p = tiny_backspace::tui::layout::panes(ratatui::layout::Rect::new(0, 0, 100, 30), 2);
    update(&mut m, click(p.prompt.x + 2, p.prompt.y + 1));
    assert_eq!(m.focus, Focus::Prompt);
    update(&mut m, click(p.steps.x + 2, p.steps.y + 1));
    assert_eq!(m.focus, Focus::Steps);
    // The second file in the list (the list takes the focus).
    update(&mut m, click(p.files.x + 4, p.files.y + 1));
    assert_eq!(m.focus, Focus::Files);
    assert_eq!(m.diff.as_ref().unwrap().current_file(), 1);
    // A body row: the cursor goes to the row clicked.
    update(&mut m, click(p.body.x + 4, p.body.y + 2));
    assert_eq!(m.focus, Focus::Diff);
    let d = m.diff.as_ref().unwrap();
    assert_eq!(d.cursor_line(), d.top + 2);
}

#[test]
fn a_past_run_shows_its_own_repository_in_the_header() {
    let mut m = model(120, 30);
    update(&mut m, ctrl('s'));
    update(
        &mut m,
        Msg::Pipeline(Event::Error {
            run_id: "r".into(),
            stage: Stage::Clone,
            message: "no such repository".into(),
            retryable: false,
            code: tiny_backspace::event::ErrorCode::RepoUnreachable,
        }),
    );
    let meta: tiny_backspace::store::RunMeta = serde_json::from_value(serde_json::json!({
        "id": "20260101-000000-abcd", "created_at": "2026-01-01T00:00:00Z",
        "repo": "octo/other-project", "base": "develop", "base_commit": null,
        "prompt": "Old prompt", "model": "scripted:old.json", "sandbox": "bwrap",
        "status": "failed", "summary": null, "error": "x", "branch": null, "pr_url": null,
        "duration_ms": 1000
    }))
    .unwrap();
    update(
        &mut m,
        Msg::PastRun(Box::new(tiny_backspace::tui::model::PastRun {
            meta,
            events: vec![],
            patch: None,
            selection: None,
            pr: None,
        })),
    );
    let screen = render_text(&m, 120, 30);
    let header = screen.lines().next().unwrap();
    assert!(header.contains("octo/other-project @ develop"), "{header}");
    assert!(!header.contains("octo/calc"), "{header}");
}

#[test]
fn the_wheel_scrolls_the_diff_view_and_leaves_a_visible_cursor_where_it_is() {
    let mut m = model(100, 30);
    update(&mut m, ctrl('s'));
    let added: String = (1..=200).map(|i| format!("+line {i}\n")).collect();
    let patch =
        format!("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -0,0 +1,200 @@\n{added}");
    update(
        &mut m,
        Msg::Pipeline(Event::diff("r", vec![], patch.as_bytes(), None)),
    );
    m.side_by_side = false;
    update(&mut m, Msg::Resize(100, 30));
    for _ in 0..8 {
        update(&mut m, chr('j'));
    }
    let (cursor, top) = {
        let d = m.diff.as_ref().unwrap();
        (d.cursor, d.top)
    };
    let p = tiny_backspace::tui::layout::panes(ratatui::layout::Rect::new(0, 0, 100, 30), 1);
    let wheel = Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: p.body.x + 5,
        row: p.body.y + 3,
        modifiers: KeyModifiers::NONE,
    });
    update(&mut m, wheel);
    let d = m.diff.as_ref().unwrap();
    assert_eq!(d.top, top + 3, "the view moved");
    assert_eq!(d.cursor, cursor, "the cursor, still on screen, stayed");
}
