//! The TUI bench's scenarios with the review workspace in use and with live diffs arriving
//! (see the bench's module doc); they share its model, terminal and scroll loop.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;

fn ch(c: char) -> Msg {
    key(KeyCode::Char(c))
}

/// `/query` + Enter: a search whose matches the diff marks on screen.
fn search(m: &mut Model, query: &str) {
    update(m, ch('/'));
    for c in query.chars() {
        update(m, ch(c));
    }
    update(m, key(KeyCode::Enter));
    let s = m.search.as_ref().expect("a search");
    assert!(s.matches.len() > 10_000, "matches: {}", s.matches.len());
    assert!(m.diff.as_ref().unwrap().marks.is_some(), "marks on");
}

/// The review workspace in use on the 200k diff (long lines): files viewed and collapsed, single
/// lines and whole hunks left out, wrap on, a search marking 20,000 rows — then the same scroll.
pub fn review_workspace() {
    let patch = big_patch(true);
    let mut m = model();
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
    );
    update(&mut m, Msg::Pipeline(whole_diff(&patch)));
    update(
        &mut m,
        Msg::Pipeline(Event::Status {
            run_id: "b".into(),
            stage: Stage::Review,
            message: "review".into(),
        }),
    );
    assert_eq!(m.focus, Focus::Diff);
    // Ten files viewed (each `m` moves on to the next), every other of the next ten collapsed,
    // and in each of the next 40 files a hunk out and two single lines out.
    for _ in 0..10 {
        update(&mut m, ch('m'));
    }
    for f in 0..10 {
        if f % 2 == 0 {
            update(&mut m, ch('x'));
        }
        update(&mut m, ch(']'));
    }
    for _ in 0..40 {
        update(&mut m, ch('n'));
        update(&mut m, ch(' '));
        update(&mut m, ch('n'));
        update(&mut m, ch('j'));
        update(&mut m, ch('j'));
        update(&mut m, ch('s'));
        update(&mut m, ch('j'));
        update(&mut m, ch('s'));
        update(&mut m, ch(']'));
    }
    {
        let d = m.diff.as_ref().unwrap();
        assert_eq!(d.review.viewed.len(), 10, "viewed");
        assert!(
            d.review.collapsed.len() >= 15,
            "collapsed: {}",
            d.review.collapsed.len()
        );
        let sel = d.selection();
        assert!(!sel.excluded_lines.is_empty(), "lines left out");
        assert!(!sel.excluded_hunks.is_empty(), "hunks left out");
    }
    tiny_backspace::tui::highlight::warm_up();
    let mut term = terminal();
    // Unified: wrapping applies to that layout.
    update(&mut m, ch('v'));
    update(&mut m, ch('w'));
    assert!(m.diff.as_ref().unwrap().wrap);
    search(&mut m, "total_1");
    scroll(
        &mut m,
        &mut term,
        "review: wrap, search marks, viewed/collapsed/lines out",
        None,
    );
    assert!(m.diff.as_ref().unwrap().marks.is_some(), "marks still on");
}

/// While the agent works: the live diff (the whole 200k patch, past the 512 KB the real event
/// carries, so the worst case) arrives every 94 frames while the user scrolls it with wrap on and
/// a search marking matches. Then one arrival of the live diff as the pipeline really sends it.
pub fn live_diff() {
    let patch = big_patch(true);
    let whole = Event::LiveDiff {
        run_id: "l".into(),
        files: vec![],
        patch: patch.clone(),
        patch_truncated: false,
    };
    let mut m = model();
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
    );
    update(
        &mut m,
        Msg::Pipeline(Event::Status {
            run_id: "l".into(),
            stage: Stage::Agent,
            message: "agent".into(),
        }),
    );
    update(&mut m, Msg::Pipeline(whole.clone()));
    assert!(
        m.diff.as_ref().is_some_and(|d| d.rows.len() > 200_000),
        "the live diff is shown"
    );
    tiny_backspace::tui::highlight::warm_up();
    let mut term = terminal();
    term.draw(|f| draw(f, &m)).unwrap();
    // The diff pane takes the keys (Tab from the steps).
    while m.focus != Focus::Diff {
        update(&mut m, key(KeyCode::Tab));
    }
    if m.diff.as_ref().unwrap().mode != DiffMode::Unified {
        update(&mut m, ch('v'));
    }
    update(&mut m, ch('w'));
    search(&mut m, "total_1");
    scroll(
        &mut m,
        &mut term,
        "live diff arriving, wrap, search marks",
        Some(&whole),
    );
    assert!(
        m.diff.as_ref().unwrap().marks.is_some(),
        "marks kept across live diffs"
    );
    let capped = Event::live_diff("l", vec![], patch.as_bytes());
    let Event::LiveDiff { patch: ref cut, .. } = capped else {
        unreachable!()
    };
    let lines = cut.lines().count();
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        update(&mut m, Msg::Pipeline(capped.clone()));
        term.draw(|f| draw(f, &m)).unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "a live diff as sent (cut to {} KB, {lines} lines) arriving: frame median {}, max {}",
        cut.len() / 1024,
        ms(pct(&samples, 0.5)),
        ms(*samples.last().unwrap())
    );
}
