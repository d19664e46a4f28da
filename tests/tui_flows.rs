//! Key-driven tests of every TUI flow against the scripted model and a local git repository —
//! no terminal: keys go into `tui::App`, pipeline events come back from the real pipeline.

mod tui_support;

use crossterm::event::{KeyCode, KeyModifiers, MouseEvent, MouseEventKind};
use tiny_backspace::event::{Event, Stage, UsageTotals};
use tiny_backspace::pipeline::{Command, Selection};
use tiny_backspace::tui::Action;
use tiny_backspace::tui::model::{Focus, Overlay, PrPhase, RunState, field_text};
use tiny_backspace::tui::update::Msg;
use tui_support::*;

fn in_review(m: &tiny_backspace::tui::Model) -> bool {
    m.state == RunState::Review && m.diff.is_some()
}

fn finished(m: &tiny_backspace::tui::Model) -> bool {
    matches!(
        m.state,
        RunState::Done { .. } | RunState::Failed | RunState::Cancelled
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_review_deselect_and_approve_saves_only_the_selection() {
    let mut h = Harness::new(two_hunk_script(), "Make divide reject a zero divisor");
    assert_eq!(
        h.model().focus,
        Focus::Prompt,
        "prefilled repo: the prompt has focus"
    );
    let acts = h.send(ctrl('s'));
    assert!(acts.is_empty(), "start is performed by the app: {acts:?}");
    assert!(h.app.run_id().is_some());
    h.pump_until("review", in_review).await;

    let screen = h.screen(120, 40);
    assert!(screen.contains("Read calc/__init__.py"), "{screen}");
    // An edit counts its lines the way the diff does: +2 and +1 here, +3 −0 in the diff.
    assert!(screen.contains("Edit calc/__init__.py (+2 −0)"), "{screen}");
    assert!(screen.contains("Edit calc/__init__.py (+1 −0)"), "{screen}");
    assert!(
        line_with(&screen, "calc/__init__.py  +3 −0").contains("M"),
        "{screen}"
    );
    assert!(
        screen.contains("Bash echo checks pass → exit 0"),
        "{screen}"
    );
    assert!(
        screen.contains("2 files · 3 of 3 hunks in the PR"),
        "{screen}"
    );
    assert_eq!(h.model().focus, Focus::Diff);

    // Files sort by path: NOTES.md first, then calc/__init__.py with two hunks. Deselect the
    // second hunk of calc (the `mul` comment).
    h.keys([chr(']'), chr('n'), chr('n')]);
    let d = h.model().diff.as_ref().unwrap();
    let row = d.rows[d.cursor];
    assert_eq!((row.file, row.hunk), (1, 1), "on calc's second hunk");
    h.send(chr(' '));
    let screen = h.screen(120, 40);
    assert!(screen.contains("2 of 3 hunks in the PR"), "{screen}");
    assert!(
        screen.contains("[ ] @@"),
        "the left-out hunk is marked: {screen}"
    );

    h.send(chr('c'));
    let Overlay::Pr(d) = &h.model().overlay else {
        panic!("PR dialog expected")
    };
    assert_eq!(field_text(&d.title), "Make divide reject a zero divisor");
    // Replace the title.
    h.keys([key(KeyCode::Home), ctrl('k')]);
    h.type_str("Reject zero divisors");
    let acts = h.send(ctrl('s'));
    assert!(acts.is_empty());
    assert_eq!(h.model().state, RunState::Publishing);
    h.pump_until("the end", finished).await;

    let approve = h.events.iter().any(|e| {
        matches!(
            e,
            Event::Status {
                stage: Stage::Publish,
                ..
            }
        )
    });
    assert!(approve, "the pipeline got the approval");
    let done = h.events.iter().find_map(|e| match e {
        Event::Done {
            pr_url,
            patch_path,
            branch,
            ..
        } => Some((pr_url.clone(), branch.clone(), patch_path.clone())),
        _ => None,
    });
    let (pr_url, branch, patch_path) = done.expect("a Done event");
    match (pr_url, branch) {
        (Some(url), _) => {
            assert_eq!(h.model().pr_url.as_deref(), Some(url.as_str()));
            assert_eq!(h.model().state, RunState::Done { published: true });
        }
        (None, Some(branch)) => {
            // A local repository takes no PR: the approved selection is a branch in it.
            let git = |args: &[&str]| {
                let out = std::process::Command::new("git")
                    .arg("-C")
                    .arg(&h.repo)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "git {args:?}");
                String::from_utf8(out.stdout).unwrap()
            };
            assert_eq!(
                git(&["log", "-1", "--format=%s", &branch]).trim(),
                "Reject zero divisors"
            );
            let calc = git(&["show", &format!("{branch}:calc/__init__.py")]);
            assert!(calc.contains("division by zero"), "{calc}");
            assert!(
                !calc.contains("# product"),
                "deselected hunk left out: {calc}"
            );
            let Overlay::Pr(d) = &h.model().overlay else {
                panic!("the dialog stays to say what happened")
            };
            assert!(
                matches!(&d.phase, PrPhase::NotPublished { branch: Some(b), .. } if *b == branch)
            );
            assert_eq!(h.model().state, RunState::Done { published: true });
            assert!(h.screen(120, 40).contains("Published as branch"));
            let copied = h.send(chr('y'));
            assert!(
                matches!(copied.as_slice(), [Action::Copy(s)] if s.contains(&branch)),
                "y copies the request-pull summary: {copied:?}"
            );
        }
        (None, None) => {
            let patch_path = patch_path.expect("patch saved");
            let approved = std::path::Path::new(&patch_path).with_file_name("approved.diff");
            let approved = std::fs::read_to_string(approved).unwrap();
            assert!(approved.contains("division by zero"), "{approved}");
            assert!(!approved.contains("# product"), "{approved}");
            assert_eq!(h.model().state, RunState::Done { published: false });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_show_before_anything_runs() {
    let mut h = Harness::new(two_hunk_script(), "");
    h.send(ctrl('s'));
    assert!(h.app.run_id().is_none(), "nothing started");
    assert_eq!(h.model().state, RunState::Idle);
    assert!(h.model().errors.prompt.is_some());
    assert_eq!(h.model().focus, Focus::Prompt);
    let screen = h.screen(120, 40);
    assert!(
        screen.contains("✗ required: describe the change"),
        "{screen}"
    );

    // A repository that is not one: focus moves to it with its error.
    h.keys([key(KeyCode::BackTab), key(KeyCode::BackTab)]);
    assert_eq!(h.model().focus, Focus::Repo);
    h.keys([key(KeyCode::End)]);
    h.type_str("/definitely-missing");
    h.keys([key(KeyCode::Tab), key(KeyCode::Tab)]);
    h.type_str("do it");
    h.send(ctrl('s'));
    assert!(h.app.run_id().is_none());
    assert!(h.model().errors.repo.is_some(), "{:?}", h.model().errors);
    assert_eq!(h.model().focus, Focus::Repo);
    assert!(h.model().errors.prompt.is_none());
    // Typing in the field clears its error.
    h.send(key(KeyCode::Backspace));
    assert!(h.model().errors.repo.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_then_quits() {
    let slow = serde_json::json!({"turns": [
        {"text": "thinking", "delay_ms": 20000,
         "tool_calls": [{"name": "read_file", "input": {"path": "README.md"}}]},
        {"text": "done"}
    ]});
    let mut h = Harness::new(slow, "Slow change");
    h.send(ctrl('s'));
    h.pump_until("the agent stage", |m| {
        m.state == RunState::Running(Stage::Agent)
    })
    .await;
    let acts = h.send(ctrl('c'));
    assert!(
        acts.is_empty(),
        "the cancel command went to the pipeline: {acts:?}"
    );
    assert_eq!(h.model().state, RunState::Cancelling);
    h.pump_until("cancelled", finished).await;
    assert_eq!(h.model().state, RunState::Cancelled);
    assert!(h.screen(120, 40).contains(" cancelled "));
    // Nothing running any more: Ctrl+C (or q) quits without asking.
    let acts = h.send(ctrl('c'));
    assert_eq!(acts, vec![Action::Quit]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_ctrl_c_quits_while_cancelling() {
    let slow = serde_json::json!({"turns": [{"text": "x", "delay_ms": 20000}]});
    let mut h = Harness::new(slow, "Slow change");
    h.send(ctrl('s'));
    h.pump_until("the agent stage", |m| {
        m.state == RunState::Running(Stage::Agent)
    })
    .await;
    h.send(ctrl('c'));
    assert_eq!(h.send(ctrl('c')), vec![Action::Quit]);
    h.app.shutdown(std::time::Duration::from_secs(30)).await;
    assert!(!h.app.busy(), "the pipeline finished its cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_reruns_on_the_same_workspace() {
    let script = serde_json::json!({"turns": [
        {"tool_calls": [{"name": "write_file", "input": {"path": "A.md", "content": "a\n"}}]},
        {"text": "Added A"},
        {"tool_calls": [{"name": "write_file", "input": {"path": "B.md", "content": "b\n"}}]},
        {"text": "Added B too"}
    ]});
    let mut h = Harness::new(script, "Add A");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    assert_eq!(h.model().diff.as_ref().unwrap().files.len(), 1);
    h.send(chr('f'));
    assert!(matches!(h.model().overlay, Overlay::FollowUp(_)));
    h.type_str("Also add B");
    h.send(ctrl('s'));
    assert!(matches!(h.model().overlay, Overlay::None));
    assert_eq!(h.model().state, RunState::Running(Stage::Agent));
    h.pump_until("second review", |m| {
        in_review(m) && m.diff.as_ref().is_some_and(|d| d.files.len() == 2)
    })
    .await;
    let paths: Vec<&str> = h
        .model()
        .diff
        .as_ref()
        .unwrap()
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec!["A.md", "B.md"],
        "the follow-up built on the first change"
    );
    assert_eq!(h.model().summary, "Added B too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_rerun_starts_fresh_and_cancels_the_old_run() {
    let mut h = Harness::new(two_hunk_script(), "First try");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let first = h.app.run_id().unwrap().to_string();
    h.send(chr('e'));
    assert_eq!(h.model().focus, Focus::Prompt);
    h.type_str(" (again)");
    // In review the first Ctrl+S only asks: it would discard the review.
    h.send(ctrl('s'));
    assert_eq!(h.app.run_id(), Some(first.as_str()));
    assert!(h.model().diff.is_some() && h.model().state == RunState::Review);
    h.send(ctrl('s'));
    let second = h.app.run_id().unwrap().to_string();
    assert_ne!(first, second);
    assert!(h.model().diff.is_none(), "the old diff is cleared");
    h.events.clear();
    h.pump_until("review of the re-run", in_review).await;
    assert!(field_text(&h.model().prompt).ends_with("(again)"));
    // The first run was cancelled in the background and recorded as such.
    h.app.shutdown(std::time::Duration::from_secs(30)).await;
    let store = tiny_backspace::store::Store::open(&h.home()).unwrap();
    let runs = store.list();
    let old = runs.iter().find(|r| r.id == first).unwrap();
    assert_eq!(old.status.as_str(), "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_asks_when_work_is_unpublished() {
    let mut h = Harness::new(two_hunk_script(), "Change");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    assert!(h.send(chr('q')).is_empty());
    assert!(matches!(h.model().overlay, Overlay::ConfirmQuit { .. }));
    let screen = h.screen(120, 40);
    assert!(screen.contains("not published"), "{screen}");
    h.send(chr('n'));
    assert!(matches!(h.model().overlay, Overlay::None));
    h.send(chr('q'));
    assert_eq!(h.send(chr('y')), vec![Action::Quit]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_opens_a_past_run() {
    let mut h = Harness::new(two_hunk_script(), "Change");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    h.send(chr('c'));
    h.send(ctrl('s'));
    h.pump_until("done", finished).await;
    let id = h.app.run_id().map(str::to_string);
    assert!(id.is_none(), "no current pipeline after the end");
    h.send(key(KeyCode::Esc));
    h.send(ctrl('r'));
    let Overlay::Runs { runs, .. } = &h.model().overlay else {
        panic!("runs list expected")
    };
    assert_eq!(runs.len(), 1);
    let run_id = runs[0].id.clone();
    assert!(h.screen(120, 40).contains(&run_id));
    h.send(key(KeyCode::Enter));
    assert_eq!(h.model().viewing.as_deref(), Some(run_id.as_str()));
    let d = h.model().diff.as_ref().expect("the past diff");
    assert_eq!(d.files.len(), 2);
    assert!(
        h.model()
            .log
            .entries
            .iter()
            .any(|e| e.title.starts_with("Edit "))
    );
    // Read-only: space does not change the selection.
    h.send(chr('n'));
    h.send(chr(' '));
    assert_eq!(
        h.model().diff.as_ref().unwrap().selection(),
        Selection::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_editor_mouse_and_help() {
    let mut h = Harness::new(two_hunk_script(), "");
    h.send(Msg::Paste("first line\r\nsecond line".into()));
    assert_eq!(field_text(&h.model().prompt), "first line\nsecond line");
    h.keys([key(KeyCode::BackTab), key(KeyCode::BackTab)]);
    h.keys([ctrl('a'), ctrl('k')]);
    h.send(Msg::Paste("  https://github.com/octo/calc\r\n".into()));
    assert_eq!(field_text(&h.model().repo), "https://github.com/octo/calc");

    h.keys([key(KeyCode::Tab), key(KeyCode::Tab)]);
    let acts = h.send(ctrl('e'));
    assert_eq!(
        acts,
        vec![Action::Edit(
            tiny_backspace::tui::model::Field::Prompt,
            "first line\nsecond line".into()
        )]
    );
    h.send(Msg::EditorDone(
        tiny_backspace::tui::model::Field::Prompt,
        Some("from the editor\r\n".into()),
    ));
    assert_eq!(field_text(&h.model().prompt), "from the editor");

    // '?' types into a text field; outside one it opens the help.
    h.send(chr('?'));
    assert!(matches!(h.model().overlay, Overlay::None));
    h.send(key(KeyCode::Tab));
    h.send(chr('?'));
    assert!(matches!(h.model().overlay, Overlay::Help { .. }));
    assert!(h.screen(120, 40).contains("next / previous hunk"));
    h.send(key(KeyCode::Esc));
    assert!(matches!(h.model().overlay, Overlay::None));

    // Mouse wheel over the diff scrolls it.
    let mut patch = String::from(
        "diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ -0,0 +1,500 @@\n",
    );
    for i in 0..500 {
        patch.push_str(&format!("+line {i}\n"));
    }
    h.send(Msg::Pipeline(Event::diff(
        "x",
        vec![],
        patch.as_bytes(),
        None,
    )));
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 100,
        row: 20,
        modifiers: KeyModifiers::NONE,
    };
    h.send(Msg::Mouse(wheel));
    h.send(Msg::Mouse(wheel));
    assert_eq!(h.model().diff.as_ref().unwrap().top, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pr_dialog_keys_and_created_state() {
    let mut h = Harness::new(two_hunk_script(), "Change");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    h.send(chr('c'));
    h.send(ctrl('d'));
    let Overlay::Pr(d) = &h.model().overlay else {
        panic!()
    };
    assert!(d.draft);
    h.send(key(KeyCode::Esc));
    assert!(matches!(h.model().overlay, Overlay::None), "Esc cancels");
    assert_eq!(h.model().state, RunState::Review, "nothing was sent");

    // An empty title is refused next to the field.
    h.send(chr('c'));
    h.keys([key(KeyCode::Home), ctrl('k')]);
    h.send(ctrl('s'));
    let Overlay::Pr(d) = &h.model().overlay else {
        panic!()
    };
    assert_eq!(d.error.as_deref(), Some("the title is required"));
    h.type_str("T");
    h.send(ctrl('s'));
    assert_eq!(h.model().state, RunState::Publishing);

    // When the pipeline reports a PR, the dialog shows it; o opens, y copies.
    let run_id = h.app.run_id().unwrap().to_string();
    h.app.pipeline_event(tiny_backspace::tui::PipeMsg {
        run_id: run_id.clone(),
        event: Event::Pr {
            run_id: run_id.clone(),
            url: "https://github.com/octo/calc/pull/7".into(),
            number: 7,
            branch: "tb/change".into(),
            base: "main".into(),
        },
    });
    h.app.pipeline_event(tiny_backspace::tui::PipeMsg {
        run_id: run_id.clone(),
        event: Event::Done {
            run_id,
            pr_url: Some("https://github.com/octo/calc/pull/7".into()),
            summary: "s".into(),
            branch: Some("tb/change".into()),
            usage: UsageTotals::default(),
            duration_ms: 10,
            patch_path: None,
        },
    });
    assert_eq!(h.model().state, RunState::Done { published: true });
    let screen = h.screen(120, 40);
    assert!(screen.contains("Pull request #7 created"), "{screen}");
    assert_eq!(
        h.send(chr('y')),
        vec![Action::Copy("https://github.com/octo/calc/pull/7".into())]
    );
    assert_eq!(
        h.send(chr('o')),
        vec![Action::OpenUrl(
            "https://github.com/octo/calc/pull/7".into()
        )]
    );
    h.send(key(KeyCode::Esc));
    // After closing the dialog, o and y still work on the main screen.
    assert_eq!(
        h.send(chr('y')),
        vec![Action::Copy("https://github.com/octo/calc/pull/7".into())]
    );
    let _ = Command::Reject;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_run_that_was_never_published_is_published_from_the_runs_list() {
    let mut h = Harness::new(two_hunk_script(), "Change");
    // A headless --no-pr run in the same state directory: finished, patch saved, not published.
    let cfg = std::sync::Arc::new(config(&h.home(), None));
    let provider = factory(two_hunk_script())();
    let request = tiny_backspace::pipeline::RunRequest {
        repo: h.repo.display().to_string(),
        prompt: "Make divide reject a zero divisor".into(),
        base: None,
        gate: tiny_backspace::pipeline::Gate::NoPr,
        keep_workspace: false,
        provider: Some(provider),
        publish: Default::default(),
    };
    let mut p = tiny_backspace::pipeline::start(request, cfg, h.dir.path().to_path_buf());
    while p.events.recv().await.is_some() {}
    p.task.await.unwrap();

    h.send(ctrl('r'));
    h.send(key(KeyCode::Enter));
    // Never published, patch saved: it reopens for review (no pipeline behind it).
    assert!(h.model().reopened && h.model().viewing.is_none());
    assert_eq!(h.model().state, RunState::Review);
    h.send(chr('c'));
    assert!(
        matches!(h.model().overlay, Overlay::Pr(_)),
        "the PR dialog opens for it"
    );
    let actions = h.send(ctrl('s'));
    assert!(
        actions.is_empty(),
        "publishing is started by the app itself: {actions:?}"
    );
    h.pump_until("published", |m| {
        m.state == RunState::Done { published: true }
    })
    .await;
    let Overlay::Pr(d) = &h.model().overlay else {
        panic!("the dialog shows the outcome")
    };
    let PrPhase::NotPublished {
        branch: Some(branch),
        ..
    } = &d.phase
    else {
        panic!("published as a branch: {:?}", d.phase)
    };
    assert!(branch.starts_with("tb/"), "{branch}");
    let out = std::process::Command::new("git")
        .args(["-C", h.repo.to_str().unwrap(), "branch", "--list", "tb/*"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tb/"),
        "the branch is in the repository"
    );
}

/// What the run published of `path`: the file on the pushed branch, else the approved patch.
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn published(h: &Harness, path: &str) -> String {
    let (branch, patch_path) = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::Done {
                branch, patch_path, ..
            } => Some((branch.clone(), patch_path.clone())),
            _ => None,
        })
        .expect("a Done event");
    match branch {
        Some(b) => {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(&h.repo)
                .args(["show", &format!("{b}:{path}")])
                .output()
                .unwrap();
            assert!(out.status.success(), "git show {b}:{path}");
            String::from_utf8(out.stdout).unwrap()
        }
        None => {
            let p = std::path::Path::new(&patch_path.expect("patch saved"))
                .with_file_name("approved.diff");
            std::fs::read_to_string(p).unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_by_side_review_deselects_and_approves_like_unified() {
    let mut h = Harness::new(two_hunk_script(), "Make divide reject a zero divisor");
    h.send(Msg::Resize(200, 60));
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let screen = h.screen(200, 60);
    // Old line 2 is new line 4 (two lines were added above it, opposite blank old space).
    let (old, new) = sbs_sides(&line_with(&screen, "return a / b"));
    assert!(old.starts_with("   2       return a / b"), "{old}");
    assert!(new.starts_with("  4       return a / b"), "{new}");
    let (old, new) = sbs_sides(&line_with(&screen, "if b == 0:"));
    assert!(old.trim().is_empty(), "blank old side: {old:?}");
    assert!(new.starts_with("  2 +     if b == 0:"), "{new}");
    assert!(screen.contains("v unified"), "{screen}");

    // The same keys as in the unified flow: calc's second hunk out.
    h.keys([chr(']'), chr('n'), chr('n'), chr(' ')]);
    let d = h.model().diff.as_ref().unwrap();
    let (cursor, row) = (d.cursor, d.rows[d.cursor]);
    assert_eq!((row.file, row.hunk), (1, 1), "on calc's second hunk");
    let selection = Selection {
        excluded_files: vec![],
        excluded_hunks: vec![("calc/__init__.py".into(), 1)],
        ..Default::default()
    };
    assert_eq!(
        tiny_backspace::tui::update::current_selection(h.model()),
        selection
    );
    assert!(h.screen(200, 60).contains("[ ] @@"));
    // Unified and back: the selection and the cursor stay.
    h.send(chr('v'));
    let screen = h.screen(200, 60);
    assert!(
        screen.contains("[ ] @@") && screen.contains("v side-by-side"),
        "{screen}"
    );
    h.send(chr('v'));
    assert_eq!(h.model().diff.as_ref().unwrap().cursor, cursor);
    assert_eq!(
        tiny_backspace::tui::update::current_selection(h.model()),
        selection
    );

    h.send(chr('c'));
    h.send(ctrl('s'));
    h.pump_until("the end", finished).await;
    let calc = published(&h, "calc/__init__.py");
    assert!(calc.contains("division by zero"), "{calc}");
    assert!(
        !calc.contains("# product"),
        "deselected hunk left out: {calc}"
    );
}
