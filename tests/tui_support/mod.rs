//! Shared helpers for the TUI tests: a local git repository, scripted model turns, a config that
//! points at a temporary state directory, and a key-driven harness around `tui::App`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tiny_backspace::config::{Config, Overrides};
use tiny_backspace::llm::scripted::ScriptedProvider;
use tiny_backspace::tui::{Action, App, Model, Msg, PipeMsg, Prefill, ProviderFactory};
use tokio::sync::mpsc;

/// The file the fixture repository starts with: long enough that two separate edits make two
/// hunks.
pub fn calc_source() -> String {
    let mut s = String::from("def divide(a, b):\n    return a / b\n");
    for i in 0..20 {
        s.push_str(&format!("\n\ndef f{i}(x):\n    return x + {i}\n"));
    }
    s.push_str("\n\ndef mul(a, b):\n    return a * b\n");
    s
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Proc::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A local repository with `calc/__init__.py` and a README, one commit on `main`.
pub fn fixture_repo(root: &Path) -> PathBuf {
    let repo = root.join("calc-repo");
    std::fs::create_dir_all(repo.join("calc")).unwrap();
    std::fs::write(repo.join("calc/__init__.py"), calc_source()).unwrap();
    std::fs::write(repo.join("README.md"), "# calc\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

/// A script that edits two places of calc (two hunks), adds NOTES.md, runs a command, and ends
/// with a summary whose first line becomes the PR title.
pub fn two_hunk_script() -> serde_json::Value {
    serde_json::json!({"turns": [
        {"text": "I'll look at the entry point first.",
         "tool_calls": [{"name": "read_file", "input": {"path": "calc/__init__.py"}}]},
        {"tool_calls": [
            {"name": "edit_file", "input": {"path": "calc/__init__.py",
                "old_str": "def divide(a, b):\n    return a / b",
                "new_str": "def divide(a, b):\n    if b == 0:\n        raise ValueError(\"division by zero\")\n    return a / b"}},
            {"name": "edit_file", "input": {"path": "calc/__init__.py",
                "old_str": "    return a * b", "new_str": "    # product\n    return a * b"}},
            {"name": "write_file", "input": {"path": "NOTES.md", "content": "divide rejects zero\n"}},
            {"name": "bash", "input": {"command": "echo checks pass"}}]},
        {"text": "Make divide reject a zero divisor\n\ndivide() raises ValueError for b == 0."}
    ]})
}

pub fn config(home: &Path, model: Option<String>) -> Config {
    let env = |_: &str| None::<String>;
    Config::load_from(
        &Overrides {
            model,
            sandbox: None,
            network: None,
            home: Some(home.to_path_buf()),
        },
        &env,
        None,
        None,
    )
    .unwrap()
}

pub fn factory(script: serde_json::Value) -> ProviderFactory {
    let text = script.to_string();
    Arc::new(move || Arc::new(ScriptedProvider::from_json("test-script.json", &text).unwrap()))
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn chr(c: char) -> Msg {
    key(KeyCode::Char(c))
}

pub struct Harness {
    pub app: App,
    pub rx: mpsc::Receiver<PipeMsg>,
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// Every event the current run sent, in order.
    pub events: Vec<tiny_backspace::event::Event>,
}

impl Harness {
    /// An app on a fresh fixture repo and state directory, with the given script for every run.
    pub fn new(script: serde_json::Value, prompt: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture_repo(dir.path());
        let home = dir.path().join("home");
        let cfg = config(&home, Some("scripted:test-script.json".into()));
        let (app, rx) = App::new(
            Arc::new(cfg),
            dir.path().to_path_buf(),
            Prefill {
                repo: repo.display().to_string(),
                prompt: prompt.into(),
                base: String::new(),
            },
            false,
            Some(factory(script)),
        );
        let mut h = Harness {
            app,
            rx,
            dir,
            repo,
            events: vec![],
        };
        h.send(Msg::Resize(120, 40));
        h
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn model(&self) -> &Model {
        &self.app.model
    }

    pub fn send(&mut self, msg: Msg) -> Vec<Action> {
        self.app.handle(msg)
    }

    pub fn keys(&mut self, msgs: impl IntoIterator<Item = Msg>) -> Vec<Action> {
        msgs.into_iter().flat_map(|m| self.app.handle(m)).collect()
    }

    pub fn type_str(&mut self, s: &str) {
        for c in s.chars() {
            self.app.handle(chr(c));
        }
    }

    /// Feeds pipeline events until `done(model)` holds (or fails after a generous deadline).
    pub async fn pump_until(&mut self, what: &str, done: impl Fn(&Model) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(&self.app.model) {
            let m = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; events: {:#?}", self.events)
                })
                .expect("channel open");
            if Some(m.run_id.as_str()) == self.app.run_id() {
                self.events.push(m.event.clone());
            }
            self.app.pipeline_event(m);
        }
    }

    pub fn screen(&self, w: u16, h: u16) -> String {
        render_text(&self.app.model, w, h)
    }
}

pub fn render(model: &Model, w: u16, h: u16) -> ratatui::buffer::Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| tiny_backspace::tui::draw(f, model)).unwrap();
    t.backend().buffer().clone()
}

/// The screen as plain text, one line per row.
pub fn render_text(model: &Model, w: u16, h: u16) -> String {
    let buf = render(model, w, h);
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The first line of `screen` that contains `needle`; fails showing the screen when none does.
pub fn line_with(screen: &str, needle: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} on the screen:\n{screen}"))
        .to_string()
}

/// The old and new halves of a side-by-side diff line of a whole screen (the diff pane starts at
/// the `││` where the left panes meet it; its halves are split by the first `│` after that).
pub fn sbs_sides(line: &str) -> (String, String) {
    let (_, pane) = line
        .split_once("││")
        .unwrap_or_else(|| panic!("no diff pane in {line:?}"));
    let pane = pane.strip_suffix('│').unwrap_or(pane);
    let (old, new) = pane
        .split_once('│')
        .unwrap_or_else(|| panic!("not a side-by-side line: {line:?}"));
    (old.to_string(), new.to_string())
}

/// An idle model with `repo` and `prompt` filled in, sized `w`×`h` (what `update` starts from).
pub fn prefilled_model(repo: &str, prompt: &str, no_color: bool, w: u16, h: u16) -> Model {
    let mut m = Model::new(
        Prefill {
            repo: repo.into(),
            prompt: prompt.into(),
            base: String::new(),
        },
        "/".into(),
        tiny_backspace::tui::model::Info::default(),
        no_color,
    );
    tiny_backspace::tui::update::update(&mut m, Msg::Resize(w, h));
    m
}
