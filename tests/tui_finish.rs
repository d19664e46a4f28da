//! Issue 15's last defects, key-driven through the pure `update`: the header names the agent
//! phase's network once a setup named it (not the configured allow-list the setup used), the
//! setup command stays out of the PR body's "commands run", and a search's marks stay on while
//! live diffs replace the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_support;

use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::model::{Model, Overlay, field_text};
use tiny_backspace::tui::update::{Msg, update};
use tui_support::{chr, ctrl, key, line_with, render_text};

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

fn bash(command: &str) -> Event {
    Event::ToolBash {
        command: command.into(),
        output: "ok\n".into(),
        exit_code: 0,
        run_id: None,
        duration_ms: 10,
        terminated: None,
    }
}

const PATCH: &str = "diff --git a/a.txt b/a.txt\nindex 1111111..2222222 100644\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n ctx\n-old needle\n+new needle\n";

/// A model whose configured sandbox has an allow-list (as `--allow-host` alone gives).
fn allowlisted(w: u16, h: u16) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, w, h);
    m.info.model = "replay · s.json".into();
    m.info.sandbox = "bwrap + allow-list proxy".into();
    m.info.network = false;
    m
}

fn setup_status(agent: &str) -> Event {
    status(
        Stage::Setup,
        &format!(
            "setup: running `./setup.sh` (the repository's script) · network allowlist \
             (127.0.0.1:9) · time limit 300 s; {}{agent}",
            tiny_backspace::pipeline::AGENT_NETWORK_NOTE
        ),
    )
}

#[test]
fn the_header_names_the_agent_network_after_a_setup() {
    for (w, h) in [(80, 24), (200, 60)] {
        let mut m = allowlisted(w, h);
        let idle = render_text(&m, w, h);
        assert!(
            idle.contains("proxy") || idle.contains("no-net"),
            "configured: {}",
            idle.lines().next().unwrap()
        );
        update(&mut m, ctrl('s'));
        ev(&mut m, status(Stage::Validate, "ok"));
        ev(&mut m, setup_status("off"));
        let top = render_text(&m, w, h).lines().next().unwrap().to_string();
        assert!(!top.contains("proxy"), "{w}x{h}: {top}");
        assert!(top.contains("no net"), "{w}x{h}: {top}");
        ev(&mut m, status(Stage::Agent, "agent started"));
        let top = render_text(&m, w, h).lines().next().unwrap().to_string();
        assert!(!top.contains("proxy"), "still the agent's: {top}");
    }
    // An agent given its own allow-list keeps the proxy; `on` says network on.
    let mut m = allowlisted(200, 60);
    update(&mut m, ctrl('s'));
    ev(&mut m, setup_status("allowlist"));
    let top = line_with(&render_text(&m, 200, 60), "tiny-backspace");
    assert!(
        top.contains("bwrap + allow-list proxy, no network"),
        "{top}"
    );
    ev(&mut m, setup_status("on"));
    let top = line_with(&render_text(&m, 200, 60), "tiny-backspace");
    assert!(top.contains("bwrap, network on"), "{top}");
}

#[test]
fn the_next_run_without_a_setup_shows_the_configured_network_again() {
    let mut m = allowlisted(200, 60);
    update(&mut m, ctrl('s'));
    ev(&mut m, setup_status("off"));
    assert!(!line_with(&render_text(&m, 200, 60), "tiny-backspace").contains("proxy"));
    m.reset_run();
    let top = line_with(&render_text(&m, 200, 60), "tiny-backspace");
    assert!(top.contains("bwrap + allow-list proxy"), "{top}");
}

#[test]
fn the_setup_command_is_not_among_the_commands_run_in_the_pr_body() {
    let mut m = allowlisted(120, 40);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Validate, "ok"));
    ev(&mut m, setup_status("off"));
    ev(&mut m, bash("./setup.sh"));
    ev(&mut m, status(Stage::Setup, "setup: done in 1 s"));
    ev(&mut m, status(Stage::Agent, "agent started"));
    ev(&mut m, bash("cargo test"));
    ev(&mut m, Event::diff("r", vec![], PATCH.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    update(&mut m, chr('c'));
    let Overlay::Pr(d) = &m.overlay else {
        panic!("no PR dialog: {:?}", m.notice)
    };
    let body = field_text(&d.body);
    assert!(body.contains("`cargo test`"), "{body}");
    assert!(!body.contains("setup.sh"), "{body}");
    // The step log still shows the setup's command.
    assert!(
        m.log.entries.iter().any(|e| e.title.contains("setup.sh")),
        "the setup step is shown"
    );
}

#[test]
fn search_marks_stay_on_while_live_diffs_arrive() {
    let mut m = allowlisted(120, 40);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Agent, "agent started"));
    ev(&mut m, Event::live_diff("r", vec![], PATCH.as_bytes()));
    while m.focus != tiny_backspace::tui::model::Focus::Diff {
        update(&mut m, key(crossterm::event::KeyCode::Tab));
    }
    update(&mut m, chr('/'));
    for c in "needle".chars() {
        update(&mut m, chr(c));
    }
    update(&mut m, key(crossterm::event::KeyCode::Enter));
    assert!(m.diff.as_ref().unwrap().marks.is_some());
    ev(&mut m, Event::live_diff("r", vec![], PATCH.as_bytes()));
    assert!(
        m.diff.as_ref().unwrap().marks.is_some(),
        "the new live diff keeps the marks"
    );
}

/// Review of `patch` at 120×40 with the diff focused.
fn in_review(patch: &str) -> Model {
    let mut m = allowlisted(120, 40);
    update(&mut m, ctrl('s'));
    ev(&mut m, status(Stage::Agent, "agent started"));
    ev(&mut m, Event::diff("r", vec![], patch.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    assert_eq!(m.focus, tiny_backspace::tui::model::Focus::Diff);
    m
}

#[test]
fn a_line_left_out_stays_out_across_a_re_diff() {
    let head =
        "diff --git a/a.txt b/a.txt\nindex 1111111..2222222 100644\n--- a/a.txt\n+++ b/a.txt\n";
    let body = "@@ -20,2 +20,3 @@\n ctx\n-old line\n+new line\n+debug line\n";
    let before = format!("{head}{body}");
    let mut m = in_review(&before);
    // Down to `+debug line` and leave it out.
    let d = m.diff.as_ref().unwrap();
    let target = (0..d.rows.len())
        .find(|&i| d.line_text(&d.rows[i]).contains("debug line"))
        .unwrap();
    while m.diff.as_ref().unwrap().cursor < target {
        update(&mut m, chr('j'));
    }
    update(&mut m, chr('s'));
    assert_eq!(m.diff.as_ref().unwrap().selection().excluded_lines.len(), 1);
    // A follow-up adds a hunk above: the hunk moves from 0 to 1, the line stays out.
    ev(&mut m, status(Stage::Agent, "follow-up"));
    let after = format!(
        "{head}@@ -1,1 +1,2 @@\n top\n+added above\n{}",
        body.replace("-20,2 +20,3", "-20,2 +21,3")
    );
    ev(&mut m, Event::diff("r", vec![], after.as_bytes(), None));
    ev(&mut m, status(Stage::Review, "review"));
    let d = m.diff.as_ref().unwrap();
    let sel = d.selection();
    assert_eq!(sel.excluded_lines, vec![("a.txt".to_string(), 1, 3)]);
    let approved = tiny_backspace::diff::filter(after.as_bytes(), &sel);
    let text = String::from_utf8_lossy(&approved);
    assert!(
        text.contains("+added above") && text.contains("+new line"),
        "{text}"
    );
    assert!(!text.contains("debug line"), "{text}");
    assert!(
        m.notice.as_deref().unwrap_or("").contains("stays out"),
        "{:?}",
        m.notice
    );
}
