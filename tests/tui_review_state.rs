//! The review is never lost by a key or a failure — key-driven, no terminal: Ctrl+S in review, a
//! publish that fails and is retried after the token is fixed, a follow-up that keeps the
//! left-out hunks and the edited PR title, and a review reopened from the runs list after its
//! process ended.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "support/forge.rs"]
mod forge;
#[path = "support/git_http.rs"]
mod git_http;
#[path = "support/publish_harness.rs"]
mod publish_harness;
mod tui_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crossterm::event::KeyCode;
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::event::Event;
use tiny_backspace::pipeline::Selection;
use tiny_backspace::pipeline::publish::ConfigReload;
use tiny_backspace::tui::model::{Focus, Model, Overlay, PrPhase, RunState, field_text};
use tiny_backspace::tui::update::current_selection;
use tiny_backspace::tui::{App, Msg, Prefill};
use tui_support::*;

fn in_review(m: &Model) -> bool {
    m.state == RunState::Review && m.diff.is_some()
}

/// calc's second hunk left out (files sort by path: NOTES.md, then calc with two hunks).
fn leave_out_calc_second_hunk(h: &mut Harness, calc: &str) -> Selection {
    h.keys([chr(']'), chr('n'), chr('n'), chr(' ')]);
    let selection = Selection {
        excluded_files: vec![],
        excluded_hunks: vec![(calc.to_string(), 1)],
        ..Default::default()
    };
    assert_eq!(current_selection(h.model()), selection);
    selection
}

fn dialog(m: &Model) -> &tiny_backspace::tui::model::PrDialog {
    match &m.overlay {
        Overlay::Pr(d) => d,
        other => panic!("the PR dialog is not open: {other:?}"),
    }
}

fn replace_title(h: &mut Harness, title: &str) {
    h.keys([key(KeyCode::Home), ctrl('k')]);
    h.type_str(title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_s_in_review_opens_the_pr_dialog_and_never_starts_a_run() {
    let mut h = Harness::new(two_hunk_script(), "Make divide reject a zero divisor");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let run_id = h.app.run_id().unwrap().to_string();
    let selection = leave_out_calc_second_hunk(&mut h, "calc/__init__.py");

    // In the diff pane: the PR dialog, nothing else.
    let actions = h.send(ctrl('s'));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(h.app.run_id(), Some(run_id.as_str()), "no new run");
    assert_eq!(h.model().state, RunState::Review);
    assert_eq!(dialog(h.model()).phase, PrPhase::Editing);
    let screen = h.screen(120, 40);
    assert!(screen.contains("Create pull request"), "{screen}");
    assert!(screen.contains("2 of 3 hunks"), "{screen}");
    h.send(key(KeyCode::Esc));
    assert_eq!(current_selection(h.model()), selection);

    // From the file list and the steps pane too.
    h.send(key(KeyCode::BackTab));
    assert_eq!(h.model().focus, Focus::Files);
    h.send(ctrl('s'));
    assert!(matches!(h.model().overlay, Overlay::Pr(_)));
    h.send(key(KeyCode::Esc));
    h.send(key(KeyCode::BackTab));
    assert_eq!(h.model().focus, Focus::Steps);
    h.send(ctrl('s'));
    assert!(matches!(h.model().overlay, Overlay::Pr(_)));
    h.send(key(KeyCode::Esc));

    // In the prompt field a first Ctrl+S only says what a second one would do; another key
    // disarms it.
    h.send(chr('e'));
    assert_eq!(h.model().focus, Focus::Prompt);
    h.send(ctrl('s'));
    assert!(
        h.model()
            .notice
            .as_deref()
            .unwrap()
            .contains("Ctrl+S again"),
        "{:?}",
        h.model().notice
    );
    h.send(key(KeyCode::End));
    h.send(ctrl('s'));
    assert_eq!(h.app.run_id(), Some(run_id.as_str()), "still the same run");
    assert_eq!(h.model().state, RunState::Review);
    assert!(h.model().diff.is_some());
    assert_eq!(current_selection(h.model()), selection);
    // The selection was saved through the store as it changed.
    let saved = std::fs::read_to_string(h.home().join("runs").join(&run_id).join("selection.json"))
        .unwrap();
    assert!(saved.contains("calc/__init__.py"), "{saved}");
}

fn forge_config(env: &publish_harness::Env, home: &Path, token: &str) -> Config {
    let vars: HashMap<String, String> = [
        ("GITHUB_TOKEN", token.to_string()),
        ("GITHUB_API_URL", env.forge.api_url()),
        ("TB_AUTHOR_NAME", "Ada Reviewer".to_string()),
        ("TB_AUTHOR_EMAIL", "ada@example.com".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let overrides = Overrides {
        home: Some(home.to_path_buf()),
        ..Default::default()
    };
    Config::load_from(&overrides, &move |k| vars.get(k).cloned(), None, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_keeps_the_review_and_a_retry_finds_the_fixed_token() {
    let env = publish_harness::Env::new(true).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let script: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.default_script()).unwrap()).unwrap();
    let (mut app, rx) = App::new(
        Arc::new(forge_config(&env, &home, "ghp_expired")),
        dir.path().to_path_buf(),
        Prefill {
            repo: env.repo_url(),
            prompt: "Make divide reject a zero divisor".into(),
            base: String::new(),
        },
        false,
        Some(factory(script)),
    );
    // What the user fixes while the TUI runs (the terminal front-end rereads .env and the file).
    let token = Arc::new(Mutex::new("ghp_expired".to_string()));
    let (reload_api, reload_home, reload_token) =
        (env.forge.api_url(), home.clone(), token.clone());
    app.set_config_reload(ConfigReload::new(move || {
        let vars: HashMap<String, String> = [
            (
                "GITHUB_TOKEN".to_string(),
                reload_token.lock().unwrap().clone(),
            ),
            ("GITHUB_API_URL".to_string(), reload_api.clone()),
        ]
        .into_iter()
        .collect();
        let overrides = Overrides {
            home: Some(reload_home.clone()),
            ..Default::default()
        };
        Config::load_from(&overrides, &move |k| vars.get(k).cloned(), None, None)
            .map_err(|e| e.to_string())
    }));
    let mut h = Harness {
        app,
        rx,
        dir,
        repo: env.cwd.path().to_path_buf(),
        events: vec![],
    };
    h.send(Msg::Resize(120, 40));
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let run_id = h.app.run_id().unwrap().to_string();
    let selection = leave_out_calc_second_hunk(&mut h, "calc.py");
    h.send(chr('c'));
    replace_title(&mut h, "Reject zero divisors");
    h.send(ctrl('s'));
    assert_eq!(h.model().state, RunState::Publishing);

    // The publish fails (401): back to review, the dialog says why, nothing is lost.
    h.pump_until("the failed publish", |m| {
        m.state == RunState::Review && matches!(&m.overlay, Overlay::Pr(d) if d.error.is_some())
    })
    .await;
    let d = dialog(h.model());
    let error = d.error.clone().unwrap();
    assert!(
        error.contains("publishing failed") && error.contains("401") && error.contains("Ctrl+S"),
        "{error}"
    );
    assert_eq!(d.phase, PrPhase::Editing);
    assert_eq!(
        field_text(&d.title),
        "Reject zero divisors",
        "the title is kept"
    );
    assert_eq!(current_selection(h.model()), selection);
    assert_eq!(h.app.run_id(), Some(run_id.as_str()), "the same pipeline");
    assert!(
        h.app.busy(),
        "the run waits in review; its workspace is kept"
    );
    assert!(env.forge.pulls().is_empty());
    assert!(
        !h.events.iter().any(|e| matches!(e, Event::Error { .. })),
        "the run did not end"
    );
    let workspace = h.home().join("work").join(&run_id);
    assert!(workspace.is_dir(), "the workspace is kept for a retry");

    // The user fixes the token; Ctrl+S retries, reading it again.
    *token.lock().unwrap() = env.token.clone();
    h.send(ctrl('s'));
    h.pump_until("the published PR", |m| {
        m.state == RunState::Done { published: true }
    })
    .await;
    let pulls = env.forge.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0].title, "Reject zero divisors");
    assert!(
        pulls[0]
            .body
            .contains("Agent's summary (of the full change; 2 of 3 hunks are in this PR)"),
        "{}",
        pulls[0].body
    );
    let calc = env.git.show(
        publish_harness::OWNER,
        publish_harness::REPO,
        &format!("{}:calc.py", pulls[0].head_ref),
    );
    assert!(calc.contains("division by zero") && !calc.contains("product of a and b"));
}

/// The two-hunk script, then a follow-up that adds B.md.
fn follow_up_script() -> serde_json::Value {
    let mut script = two_hunk_script();
    let turns = script["turns"].as_array_mut().unwrap();
    turns.push(serde_json::json!({"tool_calls": [
        {"name": "write_file", "input": {"path": "B.md", "content": "b\n"}}]}));
    turns.push(serde_json::json!({"text": "Also added B.md"}));
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_keeps_left_out_hunks_out_and_the_edited_title() {
    let mut h = Harness::new(follow_up_script(), "Make divide reject a zero divisor");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let selection = leave_out_calc_second_hunk(&mut h, "calc/__init__.py");
    h.send(chr('c'));
    replace_title(&mut h, "My own title");
    h.send(key(KeyCode::Esc));

    h.send(chr('f'));
    h.type_str("Also add B");
    h.send(ctrl('s'));
    assert_eq!(
        h.model().state,
        RunState::Running(tiny_backspace::event::Stage::Agent)
    );
    h.pump_until("the second review", |m| {
        in_review(m) && m.diff.as_ref().is_some_and(|d| d.files.len() == 3)
    })
    .await;
    assert_eq!(
        current_selection(h.model()),
        selection,
        "the hunk the follow-up did not change stays out"
    );
    let screen = h.screen(120, 40);
    assert!(screen.contains("3 of 4 hunks in the PR"), "{screen}");
    assert!(
        h.model()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("stays out"),
        "{:?}",
        h.model().notice
    );
    h.send(chr('c'));
    let d = dialog(h.model());
    assert_eq!(
        field_text(&d.title),
        "My own title",
        "the edited title is kept"
    );
    let body = field_text(&d.body);
    assert!(
        body.contains("3 of 4 hunks are in this PR") && body.contains("`B.md`"),
        "{body}"
    );
    // Generated text follows the run: the body has the follow-up, the default title would still be
    // the first summary's (not the follow-up's "Also added B.md").
    assert!(body.contains("> Also add B"), "{body}");
    assert_eq!(d.generated_title, "Make divide reject a zero divisor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_whose_process_ended_reopens_with_its_selection_and_publishes() {
    let mut first = Harness::new(two_hunk_script(), "Make divide reject a zero divisor");
    first.send(ctrl('s'));
    first.pump_until("review", in_review).await;
    let run_id = first.app.run_id().unwrap().to_string();
    let selection = leave_out_calc_second_hunk(&mut first, "calc/__init__.py");
    // `first` stays in review (its run's status is `review` on disk) like a terminal closed
    // mid-review: another app on the same state directory opens it from the runs list.
    let cfg = config(&first.home(), Some("scripted:test-script.json".into()));
    let (app, rx) = App::new(
        Arc::new(cfg),
        first.dir.path().to_path_buf(),
        Prefill {
            repo: String::new(),
            prompt: String::new(),
            base: String::new(),
        },
        false,
        Some(factory(two_hunk_script())),
    );
    let mut h = Harness {
        app,
        rx,
        dir: tempfile::tempdir().unwrap(),
        repo: first.repo.clone(),
        events: vec![],
    };
    h.send(Msg::Resize(120, 40));
    h.send(ctrl('r'));
    let Overlay::Runs { runs, .. } = &h.model().overlay else {
        panic!("the runs list")
    };
    assert_eq!(runs[0].id, run_id);
    assert_eq!(runs[0].status.as_str(), "review");
    h.send(key(KeyCode::Enter));
    assert!(h.model().reopened, "{:?}", h.model().notice);
    assert_eq!(h.model().state, RunState::Review);
    assert_eq!(
        current_selection(h.model()),
        selection,
        "its saved selection"
    );
    assert!(h.screen(120, 40).contains("2 of 3 hunks in the PR"));
    // No agent behind it: a follow-up is refused with a reason.
    h.send(chr('f'));
    assert!(matches!(h.model().overlay, Overlay::None));
    assert!(h.model().notice.as_deref().unwrap().contains("follow-ups"));

    // A publish that fails (the repository is gone for a moment) keeps the reopened review.
    let moved = first.repo.with_extension("away");
    std::fs::rename(&first.repo, &moved).unwrap();
    h.send(chr('c'));
    replace_title(&mut h, "Reopened and published");
    h.send(ctrl('s'));
    assert_eq!(h.model().state, RunState::Publishing);
    h.pump_until("the failed publish", |m| {
        m.state == RunState::Review && matches!(&m.overlay, Overlay::Pr(d) if d.error.is_some())
    })
    .await;
    assert!(h.model().reopened);
    assert_eq!(current_selection(h.model()), selection);
    std::fs::rename(&moved, &first.repo).unwrap();
    h.send(ctrl('s'));
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
        panic!("a branch in the local repository: {:?}", d.phase)
    };
    let show = |what: &str| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&first.repo)
            .args(["show", what])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let calc = show(&format!("{branch}:calc/__init__.py"));
    assert!(
        calc.contains("division by zero") && !calc.contains("# product"),
        "{calc}"
    );
    assert!(show(branch).contains("Reopened and published"));
    first.app.shutdown(std::time::Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_that_fails_keeps_the_review() {
    // The script has no turns for a follow-up: the model fails it.
    let mut h = Harness::new(two_hunk_script(), "Make divide reject a zero divisor");
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
    let run_id = h.app.run_id().unwrap().to_string();
    let selection = leave_out_calc_second_hunk(&mut h, "calc/__init__.py");
    h.send(chr('f'));
    h.type_str("And more");
    h.send(ctrl('s'));
    h.pump_until("the failed follow-up", |m| {
        m.notice
            .as_deref()
            .is_some_and(|n| n.contains("follow-up failed"))
    })
    .await;
    h.pump_until("review again", in_review).await;
    assert_eq!(h.app.run_id(), Some(run_id.as_str()), "the run goes on");
    assert_eq!(current_selection(h.model()), selection);
    assert!(h.screen(120, 40).contains("2 of 3 hunks in the PR"));
    assert!(
        !h.events.iter().any(|e| matches!(e, Event::Error { .. })),
        "the run did not end"
    );
}

// ---- The same rules on the pure `update`: events in, model and actions out. ----

mod pure {
    use super::*;
    use tiny_backspace::event::Stage;
    use tiny_backspace::pipeline::Command;
    use tiny_backspace::tui::Action;
    use tiny_backspace::tui::update::update;

    fn file(path: &str, hunks: &[&str]) -> String {
        let mut s = format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n");
        for (i, added) in hunks.iter().enumerate() {
            let at = 1 + i * 20;
            s.push_str(&format!("@@ -{at},1 +{at},2 @@\n ctx{i}\n+{added}\n"));
        }
        s
    }

    fn status(stage: Stage, message: &str) -> Msg {
        Msg::Pipeline(Event::Status {
            run_id: "r1".into(),
            stage,
            message: message.into(),
        })
    }

    fn diff(patch: String) -> Msg {
        Msg::Pipeline(Event::diff("r1", vec![], patch.as_bytes(), None))
    }

    /// A model in review of a.py (two hunks) and b.md, with a.py's second hunk left out.
    fn reviewing() -> Model {
        let mut m = prefilled_model("octo/calc", "Guard divide", false, 120, 40);
        for msg in [
            ctrl('s'),
            Msg::Started("r1".into()),
            Msg::Pipeline(Event::AiMessage {
                message: "Guard divide\n\nAll tests pass.".into(),
                run_id: Some("r1".into()),
            }),
            diff(format!(
                "{}{}",
                file("a.py", &["guard", "comment"]),
                file("b.md", &["note"])
            )),
            status(Stage::Review, "review the diff; approve to publish"),
        ] {
            update(&mut m, msg);
        }
        assert_eq!(m.state, RunState::Review);
        for k in [chr('n'), chr('n'), chr(' ')] {
            update(&mut m, k);
        }
        assert_eq!(
            current_selection(&m).excluded_hunks,
            vec![("a.py".to_string(), 1)]
        );
        m
    }

    fn approve(m: &mut Model) -> Command {
        match update(m, ctrl('s')).as_slice() {
            [Action::Send(c @ Command::Approve { .. })] => c.clone(),
            other => panic!("expected one Approve, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_publish_reopens_the_dialog_with_why_and_the_same_text() {
        let mut m = reviewing();
        update(&mut m, chr('c'));
        let body = field_text(&dialog(&m).body);
        assert!(
            body.contains("2 of 3 hunks are in this PR") && body.contains("All tests pass."),
            "{body}"
        );
        let first = approve(&mut m);
        assert_eq!(m.state, RunState::Publishing);
        // Hidden while publishing (Esc), then the failure: the dialog comes back by itself.
        update(&mut m, key(KeyCode::Esc));
        assert!(matches!(m.overlay, Overlay::None));
        update(
            &mut m,
            status(
                Stage::Publish,
                "publishing failed: GitHub said 401 Bad credentials",
            ),
        );
        update(
            &mut m,
            status(
                Stage::Review,
                "review the diff; approve to publish, or reject",
            ),
        );
        assert_eq!(m.state, RunState::Review);
        let d = dialog(&m);
        assert_eq!(d.phase, PrPhase::Editing);
        let error = d.error.as_deref().unwrap();
        assert!(
            error.contains("Ctrl+S retries") && error.contains("401"),
            "{error}"
        );
        assert_eq!(field_text(&d.body), body, "the text is as it was");
        // The retry sends the same approval.
        assert_eq!(approve(&mut m), first);
        assert!(
            m.log
                .entries
                .iter()
                .any(|e| e.title.contains("publishing failed"))
        );
    }

    #[test]
    fn ctrl_c_while_publishing_cancels_the_publish_not_the_review() {
        let mut m = reviewing();
        update(&mut m, chr('c'));
        approve(&mut m);
        assert_eq!(
            update(&mut m, ctrl('c')),
            vec![Action::Send(Command::Cancel)]
        );
        assert_eq!(m.state, RunState::Cancelling);
        update(
            &mut m,
            status(
                Stage::Publish,
                "publishing cancelled; nothing was published",
            ),
        );
        update(&mut m, status(Stage::Review, "review the diff"));
        assert_eq!(m.state, RunState::Review);
        assert!(!m.quit_armed, "a further Ctrl+C does not quit at once");
        assert!(
            dialog(&m)
                .error
                .as_deref()
                .unwrap()
                .contains("Ctrl+S publishes")
        );
    }

    #[test]
    fn a_re_diff_keeps_the_choices_of_unchanged_hunks_and_edited_text() {
        let mut m = reviewing();
        update(&mut m, chr('c'));
        update(&mut m, key(KeyCode::Tab));
        for c in "Edited. ".chars() {
            update(&mut m, chr(c));
        }
        update(&mut m, key(KeyCode::Esc));
        assert!(m.pr_text.body.as_deref().unwrap().starts_with("Edited. "));
        update(&mut m, chr('f'));
        for c in "more".chars() {
            update(&mut m, chr(c));
        }
        assert!(matches!(
            update(&mut m, ctrl('s')).as_slice(),
            [Action::Send(Command::FollowUp(_))]
        ));
        // The follow-up reworded b.md's hunk and added c.md; a.py is unchanged.
        update(
            &mut m,
            diff(format!(
                "{}{}{}",
                file("a.py", &["guard", "comment"]),
                file("b.md", &["note, reworded"]),
                file("c.md", &["new"])
            )),
        );
        update(
            &mut m,
            status(Stage::Review, "review the diff; approve to publish"),
        );
        assert_eq!(
            current_selection(&m),
            Selection {
                excluded_files: vec![],
                excluded_hunks: vec![("a.py".into(), 1)],
                ..Default::default()
            }
        );
        update(&mut m, chr('c'));
        let d = dialog(&m);
        assert!(
            field_text(&d.body).starts_with("Edited. "),
            "the edited body is kept"
        );
        // The change moved on under the edited body: the dialog says so.
        assert!(
            d.error.as_deref().unwrap_or("").contains("moved on"),
            "{:?}",
            d.error
        );
    }
}
