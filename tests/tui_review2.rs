//! Key-driven tests of the review workspace of issue 15 (no terminal; the real pipeline with the
//! scripted model and a local repository): the focusable file list (`x`, `m`, `space`, `Enter`),
//! `E` (the reviewer's edit reaches the published branch, symlinks refused), `C`/`L` comments
//! sent as one follow-up (captured in the model's request), `d` (only what the follow-up
//! changed, earlier choices and viewed marks kept), and `review.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_support;

use std::sync::{Arc, Mutex};

use crossterm::event::KeyCode;
use tiny_backspace::event::Event;
use tiny_backspace::llm::scripted::ScriptedProvider;
use tiny_backspace::llm::{ChatRequest, ChatResponse, LlmError, ModelLabel, Provider, TextSink};
use tiny_backspace::tui::model::{Focus, Overlay, RunState};
use tiny_backspace::tui::{Action, App, Msg, Prefill};
use tui_support::*;

/// The scripted model, remembering every request's messages (Debug text).
struct Recorder {
    inner: ScriptedProvider,
    seen: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl Provider for Recorder {
    fn label(&self) -> ModelLabel {
        self.inner.label()
    }
    fn self_review(&self) -> bool {
        self.inner.self_review()
    }
    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{:?}", request.messages));
        self.inner.complete(request, on_text).await
    }
}

/// Two hunks in calc, NOTES.md, a symlink out of the work tree; then a follow-up that rewords
/// NOTES.md.
fn script() -> serde_json::Value {
    let mut s = two_hunk_script();
    let turns = s["turns"].as_array_mut().unwrap();
    let last = turns.pop().unwrap();
    turns.push(serde_json::json!({"tool_calls": [
        {"name": "bash", "input": {"command": "ln -s /etc/hostname host.txt"}}]}));
    turns.push(last);
    turns.push(serde_json::json!({"tool_calls": [
        {"name": "write_file", "input": {"path": "NOTES.md", "content": "divide rejects zero (reworded)\n"}}]}));
    turns.push(serde_json::json!({"text": "Reworded the notes"}));
    s
}

fn harness() -> (Harness, Arc<Mutex<Vec<String>>>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let home = dir.path().join("home");
    let cfg = config(&home, Some("scripted:test-script.json".into()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let text = script().to_string();
    let s2 = seen.clone();
    let factory: tiny_backspace::tui::ProviderFactory = Arc::new(move || {
        Arc::new(Recorder {
            inner: ScriptedProvider::from_json("test-script.json", &text).unwrap(),
            seen: s2.clone(),
        })
    });
    let (app, rx) = App::new(
        Arc::new(cfg),
        dir.path().to_path_buf(),
        Prefill {
            repo: repo.display().to_string(),
            prompt: "Make divide reject a zero divisor".into(),
            base: String::new(),
        },
        false,
        Some(factory),
    );
    let mut h = Harness {
        app,
        rx,
        dir,
        repo,
        events: vec![],
    };
    h.send(Msg::Resize(120, 40));
    (h, seen)
}

fn in_review(m: &tiny_backspace::tui::Model) -> bool {
    m.state == RunState::Review && m.diff.is_some()
}

fn file_index(h: &Harness, path: &str) -> usize {
    let d = h.model().diff.as_ref().unwrap();
    d.files.iter().position(|f| f.path == path).unwrap()
}

/// Puts the file list's cursor on `path` (from the top of the list).
fn list_to(h: &mut Harness, path: &str) {
    h.send(chr('g'));
    for _ in 0..file_index(h, path) {
        h.send(chr('j'));
    }
    assert_eq!(
        h.model().diff.as_ref().unwrap().current_file(),
        file_index(h, path)
    );
}

fn review_json(h: &Harness) -> serde_json::Value {
    let id = h.model().run_id.clone().unwrap();
    let p = h.home().join("runs").join(id).join("review.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

async fn start(h: &mut Harness) {
    h.send(ctrl('s'));
    h.pump_until("review", in_review).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_list_takes_the_focus_and_collapses_marks_and_selects_whole_files() {
    let (mut h, _) = harness();
    start(&mut h).await;
    assert_eq!(h.model().focus, Focus::Diff);
    h.send(key(KeyCode::BackTab));
    assert_eq!(
        h.model().focus,
        Focus::Files,
        "Shift+Tab from the diff: its file list"
    );
    let screen = h.screen(120, 40);
    assert!(screen.contains("j/k file · Enter to diff"), "{screen}");

    list_to(&mut h, "NOTES.md");
    h.send(chr('m'));
    let notes = file_index(&h, "NOTES.md");
    let calc = file_index(&h, "calc/__init__.py");
    let d = h.model().diff.as_ref().unwrap();
    assert!(d.review.viewed.contains(&notes) && d.review.collapsed.contains(&notes));
    assert_eq!(
        d.current_file(),
        calc,
        "m moves on to the next file not viewed"
    );
    let screen = h.screen(120, 40);
    assert!(screen.contains("1/3 viewed"), "{screen}");
    assert!(
        screen.contains("✓ viewed"),
        "the title row says so: {screen}"
    );
    assert!(
        !screen.contains("+divide rejects zero") && !screen.contains("+ divide rejects zero"),
        "a viewed file shows its title only: {screen}"
    );
    let saved = review_json(&h);
    assert_eq!(saved["viewed"][0]["path"], "NOTES.md", "{saved}");

    // space: the whole file out; x: collapsed; Enter: to the diff at that file.
    h.send(chr(' '));
    assert_eq!(
        h.model().diff.as_ref().unwrap().file_included(calc),
        Some(false)
    );
    let screen = h.screen(120, 40);
    assert!(screen.contains("2 of 4 hunks in the PR"), "{screen}");
    h.send(chr(' '));
    assert_eq!(
        h.model().diff.as_ref().unwrap().file_included(calc),
        Some(true)
    );
    h.send(chr('x'));
    let screen = h.screen(120, 40);
    assert!(screen.contains("(collapsed"), "{screen}");
    h.send(chr('x'));
    h.send(key(KeyCode::Enter));
    assert_eq!(h.model().focus, Focus::Diff);
    let d = h.model().diff.as_ref().unwrap();
    assert_eq!(
        d.cursor, d.info[calc].first_row,
        "Enter: the diff at the file's title"
    );
    // Ctrl+D still pages (d alone is "since last review").
    let before = d.cursor;
    h.send(ctrl('d'));
    assert!(
        h.model().diff.as_ref().unwrap().cursor > before,
        "Ctrl+D paged"
    );
    assert!(!h.model().diff.as_ref().unwrap().review.only_since);
    h.send(ctrl('u'));
    // Tab order: the diff, then around to the fields; the list comes back after the steps.
    h.keys([
        key(KeyCode::Tab),
        key(KeyCode::Tab),
        key(KeyCode::Tab),
        key(KeyCode::Tab),
    ]);
    assert_eq!(h.model().focus, Focus::Steps);
    h.send(key(KeyCode::Tab));
    assert_eq!(h.model().focus, Focus::Files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewers_edit_is_recomputed_marked_as_theirs_and_published() {
    let (mut h, _) = harness();
    start(&mut h).await;
    // The agent's symlink out of the work tree: E refuses it.
    h.send(key(KeyCode::BackTab));
    list_to(&mut h, "host.txt");
    let acts = h.send(chr('E'));
    assert!(acts.is_empty(), "{acts:?}");
    let notice = h.model().notice.clone().unwrap_or_default();
    assert!(notice.contains("symlink"), "{notice}");

    list_to(&mut h, "calc/__init__.py");
    let acts = h.send(chr('E'));
    let [Action::RunEditor { path, rel }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(rel, "calc/__init__.py");
    assert!(
        path.ends_with("repo/calc/__init__.py"),
        "{}",
        path.display()
    );
    // What a scripted $EDITOR does: change a line in place.
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, text.replace("return x + 7", "return x + 700")).unwrap();
    h.send(Msg::FileEdited {
        rel: rel.clone(),
        error: None,
    });
    assert!(h.model().state.is_busy(), "waiting for the new diff");
    h.pump_until("the re-diff", |m| {
        in_review(m) && m.diff.as_ref().is_some_and(|d| d.patch.contains("x + 700"))
    })
    .await;
    let screen = h.screen(160, 50);
    assert!(
        screen.contains("You edited calc/__init__.py (+1 −1)"),
        "{screen}"
    );
    let d = h.model().diff.as_ref().unwrap();
    assert_eq!(d.review.yours.len(), 1, "{:?}", d.review.yours);
    h.send(key(KeyCode::Enter));
    let d = h.model().diff.as_ref().unwrap();
    let yours = d.review.yours.iter().next().copied().unwrap();
    let row = d
        .rows
        .iter()
        .position(|r| (r.file as usize, r.hunk as usize) == yours)
        .unwrap();
    h.app.model.diff.as_mut().unwrap().jump(row, 20);
    let screen = h.screen(160, 50);
    assert!(screen.contains("✎ your edit"), "{screen}");

    // Publish (a local repository: a branch in it) and find the edit there.
    h.send(chr('c'));
    assert!(matches!(h.model().overlay, Overlay::Pr(_)));
    h.send(ctrl('s'));
    h.pump_until("published", |m| {
        matches!(m.state, RunState::Done { .. } | RunState::Failed)
    })
    .await;
    let branch = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::Done { branch, .. } => branch.clone(),
            _ => None,
        })
        .expect("a branch");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&h.repo)
        .args(["show", &format!("{branch}:calc/__init__.py")])
        .output()
        .unwrap();
    let published = String::from_utf8_lossy(&out.stdout);
    assert!(published.contains("return x + 700"), "{published}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_go_out_as_one_follow_up_and_d_shows_only_what_it_changed() {
    let (mut h, seen) = harness();
    start(&mut h).await;
    let calc = file_index(&h, "calc/__init__.py");
    let notes = file_index(&h, "NOTES.md");
    // Leave calc's second hunk out and mark calc viewed: both must survive the follow-up.
    let d = h.model().diff.as_ref().unwrap();
    let second = d
        .rows
        .iter()
        .position(|r| r.file as usize == calc && r.hunk == 1)
        .unwrap();
    h.app.model.diff.as_mut().unwrap().jump(second, 20);
    h.send(chr(' '));

    // A comment on calc's first hunk (its header).
    let first = h
        .model()
        .diff
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .position(|r| r.file as usize == calc && r.hunk == 0)
        .unwrap();
    h.app.model.diff.as_mut().unwrap().jump(first, 20);
    h.send(chr('C'));
    assert!(matches!(h.model().overlay, Overlay::Comment(_)));
    let screen = h.screen(120, 40);
    assert!(screen.contains("calc/__init__.py:2"), "{screen}");
    h.type_str("Use a custom error type here");
    h.send(ctrl('s'));
    assert_eq!(h.model().comments.len(), 1);
    assert_eq!(review_json(&h)["comments"][0]["line"], 2);
    h.send(chr('m'));
    assert!(
        h.model()
            .diff
            .as_ref()
            .unwrap()
            .review
            .viewed
            .contains(&calc)
    );

    h.send(chr('L'));
    assert!(matches!(h.model().overlay, Overlay::Comments { .. }));
    let screen = h.screen(120, 40);
    assert!(screen.contains("Use a custom error type here"), "{screen}");
    let acts = h.send(ctrl('s'));
    assert!(acts.is_empty(), "sent by the app: {acts:?}");
    assert_eq!(
        h.model().state,
        RunState::Running(tiny_backspace::event::Stage::Agent)
    );
    h.pump_until("the follow-up's review", |m| {
        in_review(m)
            && m.diff
                .as_ref()
                .is_some_and(|d| d.patch.contains("reworded"))
    })
    .await;
    let requests = seen.lock().unwrap().clone();
    let followup = requests.last().unwrap();
    assert!(
        followup.contains("calc/__init__.py:2") && followup.contains("if b == 0:"),
        "the comment with its path:line and the line's text: {followup}"
    );
    assert!(
        followup.contains("Use a custom error type here"),
        "{followup}"
    );

    // d: only NOTES.md's new hunk; calc keeps its left-out hunk and its viewed mark.
    let d = h.model().diff.as_ref().unwrap();
    assert!(
        d.review.viewed.contains(&calc),
        "calc did not change: still viewed"
    );
    assert!(!d.hunk_included(calc, 1), "the left-out hunk stays out");
    h.send(chr('d'));
    let d = h.model().diff.as_ref().unwrap();
    assert!(d.review.only_since);
    let shown_hunks: Vec<(u32, u32)> = d
        .rows
        .iter()
        .filter(|r| r.kind == tiny_backspace::diff::rows::RowKind::Hunk)
        .map(|r| (r.file, r.hunk))
        .collect();
    assert_eq!(shown_hunks, vec![(notes as u32, 0)]);
    let screen = h.screen(120, 40);
    assert!(screen.contains("since last review"), "{screen}");
    assert!(screen.contains("reworded"), "{screen}");
    assert!(!screen.contains("if b == 0"), "{screen}");
    h.send(chr('d'));
    assert!(!h.model().diff.as_ref().unwrap().review.only_since);
    // The comment list says it was sent; sending again has nothing to send.
    h.send(chr('L'));
    assert!(h.screen(120, 40).contains("(sent)"));
    h.send(ctrl('s'));
    assert!(
        h.model()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("sent already")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_leaves_one_line_out_and_the_published_patch_lacks_only_that_line() {
    let (mut h, _) = harness();
    start(&mut h).await;
    let calc = file_index(&h, "calc/__init__.py");
    let d = h.model().diff.as_ref().unwrap();
    let raise = d
        .rows
        .iter()
        .position(|r| r.file as usize == calc && d.line_text(r).contains("raise ValueError"))
        .unwrap();
    // On a hunk header or a context line, s says what it does.
    let header = d.info[calc].first_row;
    h.app.model.diff.as_mut().unwrap().jump(header, 20);
    h.send(chr('s'));
    assert!(
        h.model()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("s leaves")
    );
    h.app.model.diff.as_mut().unwrap().jump(raise, 20);
    h.send(chr('s'));
    let d = h.model().diff.as_ref().unwrap();
    assert_eq!(d.excluded_lines.len(), 1);
    assert_eq!(d.hunk_state(calc, 0), None, "the hunk is partly in");
    let screen = h.screen(120, 40);
    assert!(screen.contains("[~] @@ -1,"), "{screen}");
    assert!(screen.contains("4 of 4 hunks in the PR"), "{screen}");
    let sel = tiny_backspace::tui::update::current_selection(h.model());
    assert_eq!(
        sel.excluded_lines,
        vec![("calc/__init__.py".to_string(), 0, 2)]
    );
    // s again brings it back; once more out, then publish.
    h.send(chr('s'));
    assert!(h.model().diff.as_ref().unwrap().excluded_lines.is_empty());
    h.send(chr('s'));
    h.send(chr('c'));
    assert!(matches!(h.model().overlay, Overlay::Pr(_)));
    h.send(ctrl('s'));
    h.pump_until("published", |m| {
        matches!(m.state, RunState::Done { .. } | RunState::Failed)
    })
    .await;
    let branch = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::Done { branch, .. } => branch.clone(),
            _ => None,
        })
        .expect("a branch");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&h.repo)
        .args(["show", &format!("{branch}:calc/__init__.py")])
        .output()
        .unwrap();
    let published = String::from_utf8_lossy(&out.stdout);
    assert!(published.contains("if b == 0:"), "{published}");
    assert!(!published.contains("raise ValueError"), "{published}");
    assert!(
        published.contains("# product"),
        "the other hunk is in: {published}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewed_marks_and_comments_come_back_when_the_run_is_reopened() {
    let (mut first, _) = harness();
    start(&mut first).await;
    let run_id = first.app.run_id().unwrap().to_string();
    let calc = file_index(&first, "calc/__init__.py");
    let d = first.model().diff.as_ref().unwrap();
    let hunk = d
        .rows
        .iter()
        .position(|r| r.file as usize == calc && r.hunk == 0)
        .unwrap();
    first.app.model.diff.as_mut().unwrap().jump(hunk, 20);
    first.send(chr('C'));
    first.type_str("Check this");
    first.send(ctrl('s'));
    first.send(chr('m'));
    // Another app on the same state directory (the first one's terminal was closed in review).
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
        None,
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
    h.send(key(KeyCode::Enter));
    assert!(h.model().reopened, "{:?}", h.model().notice);
    assert_eq!(h.model().comments.len(), 1);
    assert_eq!(h.model().comments[0].text, "Check this");
    let d = h.model().diff.as_ref().unwrap();
    assert!(d.review.viewed.contains(&calc), "{:?}", d.review);
    assert!(h.screen(120, 40).contains("1/3 viewed"));
    // A reopened run has no agent: the comments cannot be sent, and E has no work tree.
    h.send(chr('L'));
    h.send(ctrl('s'));
    assert!(
        h.model()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("live review")
    );
}

// ---- Snapshots of the new states at 80×24 and 200×60 (pure `update`, pinned clock). ----

mod snapshots {
    use super::*;
    use tiny_backspace::event::{FileStat, Stage};
    use tiny_backspace::tui::Model;
    use tiny_backspace::tui::model::{Info, Prefill as P};
    use tiny_backspace::tui::update::update;

    const PATCH: &str = "diff --git a/calc/__init__.py b/calc/__init__.py
index 1111111..2222222 100644
--- a/calc/__init__.py
+++ b/calc/__init__.py
@@ -1,5 +1,7 @@
 def divide(a, b):
-    return a / b
+    if b == 0:
+        raise ValueError(\"division by zero\")
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
diff --git a/src/util.py b/src/util.py
index 1111111..2222222 100644
--- a/src/util.py
+++ b/src/util.py
@@ -1,2 +1,2 @@
-def helper():
+def helper(x):
     pass
";

    fn diff_event(patch: &str) -> Msg {
        Msg::Pipeline(Event::diff(
            "r1",
            vec![FileStat {
                path: "calc/__init__.py".into(),
                status: tiny_backspace::event::FileStatus::Modified,
                ..FileStat::default()
            }],
            patch.as_bytes(),
            None,
        ))
    }

    fn status(stage: Stage, m: &str) -> Msg {
        Msg::Pipeline(Event::Status {
            run_id: "r1".into(),
            stage,
            message: m.into(),
        })
    }

    fn review(w: u16, h: u16) -> Model {
        let info = Info {
            model: "replay · demo.json".into(),
            sandbox: "bwrap".into(),
            network: false,
            tokens: 0,
            cost_usd: None,
        };
        let p = P {
            repo: "octo/calc".into(),
            prompt: "Make divide reject a zero divisor".into(),
            base: "main".into(),
        };
        let mut m = Model::new(p, "/nonexistent".into(), info, false);
        for msg in [
            Msg::Resize(w, h),
            Msg::Tick(0),
            ctrl('s'),
            Msg::Started("r1".into()),
            status(Stage::Agent, "agent started"),
            Msg::Tick(20_000),
            status(Stage::Diff, "3 files changed, +7 −2"),
            diff_event(PATCH),
            status(Stage::Review, "review the diff; approve to publish"),
        ] {
            update(&mut m, msg);
        }
        m
    }

    fn snap(name: &str, build: fn(u16, u16) -> Model) {
        for (w, h) in [(80, 24), (200, 60)] {
            let m = build(w, h);
            let buf = render(&m, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), format!("{buf:?}"));
        }
    }

    fn files_focused(w: u16, h: u16) -> Model {
        let mut m = review(w, h);
        // The patch order: calc/__init__.py, NOTES.md, src/util.py. calc viewed (the cursor moves
        // on to NOTES.md), util collapsed.
        for k in [
            key(KeyCode::BackTab),
            chr('m'),
            chr('j'),
            chr('x'),
            chr('k'),
        ] {
            update(&mut m, k);
        }
        m
    }

    fn comment_dialog(w: u16, h: u16) -> Model {
        let mut m = review(w, h);
        for k in [chr(']'), chr('n'), chr('C')] {
            update(&mut m, k);
        }
        for c in "Use a custom error type here".chars() {
            update(&mut m, chr(c));
        }
        m
    }

    fn comment_list(w: u16, h: u16) -> Model {
        let mut m = comment_dialog(w, h);
        update(&mut m, ctrl('s'));
        for k in [chr('n'), chr('j'), chr('C')] {
            update(&mut m, k);
        }
        for c in "Is None right here?".chars() {
            update(&mut m, chr(c));
        }
        update(&mut m, ctrl('s'));
        update(&mut m, chr('L'));
        m
    }

    /// A follow-up reworded NOTES.md; `d` shows only that.
    fn since_last_review(w: u16, h: u16) -> Model {
        let mut m = review(w, h);
        let next = PATCH.replace(
            "+divide() rejects a zero divisor.",
            "+divide() raises ValueError for 0.",
        );
        for msg in [
            status(Stage::Agent, "follow-up started"),
            diff_event(&next),
            status(Stage::Review, "review the diff; approve to publish"),
            chr('d'),
        ] {
            update(&mut m, msg);
        }
        m
    }

    /// Back from `E` on src/util.py: its changed hunk is the reviewer's.
    fn your_edit(w: u16, h: u16) -> Model {
        let mut m = review(w, h);
        let _ = update(
            &mut m,
            Msg::FileEdited {
                rel: "src/util.py".into(),
                error: None,
            },
        );
        let next = PATCH.replace("     pass\n", "-    pass\n+    return x\n");
        for msg in [
            status(
                Stage::Diff,
                "you edited src/util.py; computing the diff again",
            ),
            diff_event(&next),
            status(Stage::Review, "review the diff; approve to publish"),
            chr('G'),
        ] {
            update(&mut m, msg);
        }
        m
    }

    /// `s` left one added line of calc's first hunk out.
    fn line_out(w: u16, h: u16) -> Model {
        let mut m = review(w, h);
        for k in [chr('n'), chr('j'), chr('j'), chr('j'), chr('s')] {
            update(&mut m, k);
        }
        m
    }

    #[test]
    fn a_warning_from_the_diff_event_is_marked_in_the_file_list() {
        let mut m = review(120, 30);
        let stat = |path: &str, warnings: &[&str]| FileStat {
            path: path.into(),
            status: tiny_backspace::event::FileStatus::Modified,
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
            ..FileStat::default()
        };
        // The patch has nothing hidden; the pipeline said util.py's line endings change.
        update(
            &mut m,
            Msg::Pipeline(Event::diff(
                "r1",
                vec![
                    stat("src/util.py", &["line_endings", "no_such_code"]),
                    stat("NOTES.md", &[]),
                ],
                PATCH.as_bytes(),
                None,
            )),
        );
        let t = render_text(&m, 120, 30);
        let row = t
            .lines()
            .find(|l| l.contains("src/util.py") && l.contains("+1 −1"))
            .unwrap();
        assert!(row.contains('⚠'), "{t}");
        assert!(
            !t.lines()
                .find(|l| l.contains("A NOTES.md"))
                .unwrap()
                .contains('⚠'),
            "{t}"
        );
        assert!(t.contains("⚠ line endings"), "the title says why: {t}");
    }

    #[test]
    fn review2_one_line_left_out() {
        snap("review2_line_out", line_out);
        let t = render_text(&line_out(80, 24), 80, 24);
        assert!(t.contains("[~] @@ -1,5 +1,7 @@"), "{t}");
        assert!(t.contains("+6 −2"), "one + line fewer in the totals: {t}");
    }

    #[test]
    fn review2_file_list_focused_viewed_and_collapsed() {
        snap("review2_files", files_focused);
        let m = files_focused(80, 24);
        let t = render_text(&m, 80, 24);
        assert!(t.contains("1/3 viewed"), "{t}");
    }

    #[test]
    fn review2_comment_dialog_and_list() {
        snap("review2_comment_dialog", comment_dialog);
        snap("review2_comment_list", comment_list);
        assert_eq!(comment_list(80, 24).comments.len(), 2);
    }

    #[test]
    fn review2_since_last_review_and_your_edit() {
        snap("review2_since", since_last_review);
        snap("review2_your_edit", your_edit);
        let t = render_text(&your_edit(200, 60), 200, 60);
        assert!(t.contains("You edited src/util.py"), "{t}");
        assert!(t.contains("✎ your edit"), "{t}");
    }
}
