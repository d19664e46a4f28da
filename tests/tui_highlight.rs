//! The syntax colors' per-frame budget, on screen: a frame colors the lines its budget reaches and
//! draws the rest in the plain diff colors (the `+`/`-` gutter colors and word highlights kept),
//! the model asks for more frames until every visible line has its colors, then for none; and in
//! the real binary under tmux, the event loop draws those frames with no key pressed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/tmux.rs"]
mod tmux;
mod tui_support;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::diffview::DiffMode;
use tiny_backspace::tui::highlight::FRAME_BUDGET;
use tiny_backspace::tui::model::Model;
use tiny_backspace::tui::update::{Msg, update};
use tmux::{Tmux, shell_quote};
use tui_support::{chr, ctrl, fixture_repo};

const W: u16 = 200;
const H: u16 = 60;
/// Removed/added pairs in the one hunk: 80 lines, more than a screen and than a frame's budget.
const PAIRS: usize = 40;

fn patch() -> String {
    let mut p = String::from(
        "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,40 +1,40 @@\n",
    );
    for i in 0..PAIRS {
        p.push_str(&format!("-    let total_{i} = add(a, {i});\n"));
        p.push_str(&format!("+    let total_{i} = checked_add(a, {i})?;\n"));
    }
    p
}

fn review(no_color: bool) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", no_color, W, H);
    update(&mut m, ctrl('s'));
    for e in [
        Event::diff("r", vec![], patch().as_bytes(), None),
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

fn draw(t: &mut Terminal<TestBackend>, m: &Model) -> Buffer {
    t.draw(|f| tiny_backspace::tui::draw(f, m)).unwrap();
    t.backend().buffer().clone()
}

/// How the added line of pair `i` looks, if it is on screen: the foreground of its first code
/// cell (`let`), the style of its `+` sign and of its changed word (`checked_`).
struct Added {
    code_fg: Color,
    sign_fg: Color,
    word_bg: Color,
}

fn added_line(buf: &Buffer, i: usize) -> Option<Added> {
    let needle = format!("let total_{i} = checked_add");
    (0..buf.area.height).find_map(|y| {
        let row: Vec<&str> = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        let text = row.concat();
        let at = text.find(&needle)?;
        // Cells hold one character each here; count characters, not bytes, up to the match.
        let x = text[..at].chars().count() as u16;
        let word = x + "let total_ = ".len() as u16 + i.to_string().len() as u16;
        // The sign, a space, then the line's four-space indent.
        let sign = x - 6;
        assert_eq!(buf[(sign, y)].symbol(), "+", "the sign of {needle:?}");
        Some(Added {
            code_fg: buf[(x, y)].fg,
            sign_fg: buf[(sign, y)].fg,
            word_bg: buf[(word, y)].bg,
        })
    })
}

/// Draws frames the way the terminal loop does (another one while colors are pending); returns
/// the frames drawn.
fn frames(m: &Model, t: &mut Terminal<TestBackend>) -> Vec<Buffer> {
    let mut out = vec![];
    loop {
        out.push(draw(t, m));
        if !m.take_highlight_pending() {
            return out;
        }
        assert!(out.len() < 20, "the colors never filled in");
    }
}

fn fills_in_over_frames(mode: DiffMode) {
    let mut m = review(false);
    if m.diff.as_ref().unwrap().mode != mode {
        update(&mut m, chr('v'));
    }
    assert_eq!(m.diff.as_ref().unwrap().mode, mode);
    let mut t = Terminal::new(TestBackend::new(W, H)).unwrap();
    let frames = frames(&m, &mut t);
    let visible: Vec<usize> = (0..PAIRS)
        .filter(|&i| added_line(&frames[0], i).is_some())
        .collect();
    assert!(visible.len() > FRAME_BUDGET, "{mode:?}: {visible:?}");

    // The first frame: the budget reaches the first pairs (two lines each), not the later ones.
    let first = |i| added_line(&frames[0], i).unwrap();
    let colored = first(0);
    assert!(
        matches!(colored.code_fg, Color::Indexed(_)),
        "syntax color: {:?}",
        colored.code_fg
    );
    let late = first(*visible.last().unwrap());
    assert_eq!(late.code_fg, Color::Green, "plain added color this frame");
    for a in [&colored, &late] {
        assert_eq!(a.sign_fg, Color::Green, "the gutter keeps its color");
        assert_eq!(a.word_bg, Color::Indexed(28), "the changed word stands out");
    }
    let plain_first = visible
        .iter()
        .filter(|&&i| first(i).code_fg == Color::Green)
        .count();
    assert_eq!(plain_first, visible.len() - FRAME_BUDGET / 2, "{mode:?}");

    // Later frames fill in the rest; then the screen is settled and asks for nothing more.
    assert!(frames.len() > 1);
    assert!(
        frames.len() <= (2 * PAIRS).div_ceil(FRAME_BUDGET),
        "{}",
        frames.len()
    );
    let last = frames.last().unwrap();
    for &i in &visible {
        let a = added_line(last, i).unwrap();
        assert!(
            matches!(a.code_fg, Color::Indexed(_)),
            "{mode:?}: line {i} colored at the end"
        );
        assert_eq!(a.sign_fg, Color::Green);
    }
    assert_eq!(&draw(&mut t, &m), last, "an idle frame draws the same");
    assert!(!m.take_highlight_pending(), "and asks for no other");
}

#[test]
fn side_by_side_colors_fill_in_over_frames() {
    fills_in_over_frames(DiffMode::SideBySide);
}

#[test]
fn unified_colors_fill_in_over_frames() {
    fills_in_over_frames(DiffMode::Unified);
}

#[test]
fn without_colors_nothing_is_pending() {
    let m = review(true);
    let mut t = Terminal::new(TestBackend::new(W, H)).unwrap();
    assert_eq!(frames(&m, &mut t).len(), 1);
}

/// The real binary in tmux: a new file of long lines (4 budget units each, so its first screen
/// needs about a dozen frames) gets its syntax colors on every visible line with no key pressed —
/// the event loop draws the frames the highlighter asks for.
#[test]
fn tmux_colors_fill_in_without_input() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(dir.path());
    let content: String = (0..80)
        .map(|i| format!("x_{i} = \"{}\"\n", "a".repeat(290)))
        .collect();
    let script = serde_json::json!({"turns": [
        {"tool_calls": [{"name": "write_file", "input": {"path": "calc/long.py", "content": content}}]},
        {"text": "Add long.py"}
    ]});
    let script_path = dir.path().join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    let command = format!(
        "TB_HOME={home} TB_CONFIG={cfg} {bin} --repo {repo} --prompt p --model scripted:{script}",
        home = shell_quote(&dir.path().join("home").display().to_string()),
        cfg = shell_quote(&dir.path().join("none.toml").display().to_string()),
        bin = shell_quote(env!("CARGO_BIN_EXE_tiny-backspace")),
        repo = shell_quote(&repo.display().to_string()),
        script = shell_quote(&script_path.display().to_string()),
    );
    let tmux = Tmux::start(
        dir.path().join("tmux.sock"),
        W,
        H,
        Some(dir.path()),
        &command,
    );
    tmux.wait_for("Repository");
    tmux.send(&["C-s"]);
    tmux.wait_for("1 of 1 hunks in the PR");
    tmux.wait_for(" review ");
    // The lowest line of the file on screen, by its row.
    let screen = tmux.screen();
    let (row, last) = screen
        .lines()
        .enumerate()
        .filter_map(|(y, l)| {
            let at = l.find("x_")?;
            let n: usize = l[at + 2..].split(' ').next()?.parse().ok()?;
            Some((y, n))
        })
        .last()
        .unwrap_or_else(|| panic!("no file lines on screen:\n{screen}"));
    assert!(last * 4 > 2 * FRAME_BUDGET, "needs several frames: {last}");
    // With colors, an added line's code has the added tint as its background (48;5;22); the plain
    // added style has none.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = tmux.cmd(&["capture-pane", "-p", "-e", "-t", "e2e"]);
        let styled = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = styled.lines().nth(row).unwrap_or_default().to_string();
        if line.contains("48;5;22") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "line x_{last} never got its colors: {line:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(tmux.alive());
}
