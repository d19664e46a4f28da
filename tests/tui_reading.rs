//! Reading a big diff in the TUI, key-driven through the pure `update`: `/` search in the diff
//! and the steps (smart case, `n`/`N`, the status line), `w` wrapping, `h`/`l` horizontal
//! scrolling and `z` zoom — with snapshots at 80×24 and 200×60.

mod tui_support;

use crossterm::event::KeyCode;
use ratatui::layout::Rect;
use tiny_backspace::event::{Event, Stage};
use tiny_backspace::tui::diffview::DiffView;
use tiny_backspace::tui::model::{Focus, Model};
use tiny_backspace::tui::update::{Msg, update};
use tui_support::{chr, ctrl, key, render, render_text};

fn diff(patch: &str) -> Msg {
    Msg::Pipeline(Event::diff("r", vec![], patch.as_bytes(), None))
}

/// A model in review of `patch` at `w`×`h`, the diff focused.
fn review(w: u16, h: u16, patch: &str) -> Model {
    let mut m = tui_support::prefilled_model("octo/calc", "p", false, w, h);
    update(&mut m, ctrl('s'));
    update(&mut m, diff(patch));
    update(
        &mut m,
        Msg::Pipeline(Event::Status {
            run_id: "r".into(),
            stage: Stage::Review,
            message: "review".into(),
        }),
    );
    m.focus = Focus::Diff;
    m
}

#[allow(clippy::unwrap_used)]
fn d(m: &Model) -> &DiffView {
    m.diff.as_ref().unwrap()
}

fn typed(m: &mut Model, s: &str) {
    for c in s.chars() {
        update(m, chr(c));
    }
}

fn search(m: &mut Model, q: &str) {
    update(m, chr('/'));
    typed(m, q);
    update(m, key(KeyCode::Enter));
}

/// The status line (the last row) of the screen.
fn status(m: &Model) -> String {
    let text = render_text(m, m.width, m.height);
    text.lines().last().unwrap_or("").to_string()
}

/// One file of `n` added lines `line i`, with `needle` on the lines in `at`.
fn big_patch(n: usize, at: &[usize], needle: &str) -> String {
    let mut p = format!(
        "diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ -0,0 +1,{n} @@\n"
    );
    for i in 0..n {
        if at.contains(&i) {
            p.push_str(&format!("+line {i} {needle}\n"));
        } else {
            p.push_str(&format!("+line {i}\n"));
        }
    }
    p
}

/// The diff row of hunk line `i` of the one-file patch (file row, hunk row, then lines).
fn row_of(i: usize) -> usize {
    i + 2
}

#[test]
fn slash_jumps_to_the_first_match_at_or_after_the_cursor_and_n_moves_on() {
    let mut m = review(80, 24, &big_patch(50_000, &[10, 30_000, 49_000], "needle"));
    update(&mut m, key(KeyCode::Down));
    update(&mut m, chr('/'));
    typed(&mut m, "NEEDLE");
    assert!(status(&m).contains("/NEEDLE"), "{}", status(&m));
    // Smart case: an uppercase letter makes the search case-sensitive: no match.
    update(&mut m, key(KeyCode::Enter));
    assert!(
        status(&m).contains("no match for “NEEDLE”"),
        "{}",
        status(&m)
    );
    assert_eq!(d(&m).cursor, 1, "no match: the cursor stays");

    search(&mut m, "needle");
    assert_eq!(d(&m).cursor, row_of(10));
    assert!(status(&m).contains("match 1 of 3"), "{}", status(&m));
    let text = render_text(&m, 80, 24);
    assert!(text.contains("line 10 needle"), "{text}");
    update(&mut m, chr('n'));
    assert_eq!(d(&m).cursor, row_of(30_000));
    assert!(status(&m).contains("match 2 of 3"), "{}", status(&m));
    assert!(render_text(&m, 80, 24).contains("line 30000 needle"));
    update(&mut m, chr('n'));
    update(&mut m, chr('n'));
    assert_eq!(d(&m).cursor, row_of(10), "n wraps around at the end");
    update(&mut m, chr('N'));
    assert_eq!(d(&m).cursor, row_of(49_000), "N wraps around at the top");
    // From the cursor: a new search starts at or after it.
    update(&mut m, key(KeyCode::Up));
    search(&mut m, "needle");
    assert_eq!(d(&m).cursor, row_of(49_000));
    // Esc ends the search; n is the next hunk again (there is none: the cursor stays).
    update(&mut m, key(KeyCode::Esc));
    assert!(m.search.is_none());
    let before = d(&m).cursor;
    update(&mut m, chr('n'));
    assert_eq!(d(&m).cursor, before);
    assert!(!status(&m).contains("match"));
}

#[test]
fn the_prompt_owns_the_keys_and_esc_cancels_it() {
    let mut m = review(80, 24, &big_patch(100, &[50], "x"));
    update(&mut m, chr('/'));
    typed(&mut m, "q?");
    assert!(!m.should_quit, "q is text in the prompt");
    assert!(matches!(
        m.overlay,
        tiny_backspace::tui::model::Overlay::None
    ));
    update(&mut m, key(KeyCode::Backspace));
    update(&mut m, key(KeyCode::Esc));
    assert!(m.search.is_none());
    assert_eq!(d(&m).cursor, 0, "a cancelled search does not move");
    // Outside a search, n/p keep their hunk meaning.
    let mut m = review(80, 24, &two_hunks());
    update(&mut m, chr('n'));
    let first = d(&m).cursor;
    update(&mut m, chr('n'));
    assert!(d(&m).cursor > first, "n moved to the next hunk");
}

fn two_hunks() -> String {
    "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,3 @@\n x\n+Needle here\n z\n@@ -10,2 +11,2 @@\n p\n-q needle\n+r\n".into()
}

#[test]
fn smart_case_matches_any_case_for_a_lowercase_query() {
    let mut m = review(80, 24, &two_hunks());
    search(&mut m, "needle");
    assert_eq!(m.search.as_ref().map(|s| s.matches.len()), Some(2));
    search(&mut m, "Needle");
    assert_eq!(m.search.as_ref().map(|s| s.matches.len()), Some(1));
}

#[test]
fn search_in_the_steps_selects_the_matching_step() {
    let mut m = review(120, 40, &two_hunks());
    for (i, t) in ["alpha", "beta", "gamma", "beta again"].iter().enumerate() {
        update(
            &mut m,
            Msg::Pipeline(Event::AiMessage {
                run_id: Some("r".into()),
                message: format!("{t} {i}"),
            }),
        );
    }
    m.focus = Focus::Steps;
    m.log.selected = Some(0);
    search(&mut m, "beta");
    let sel = m.log.selected.unwrap();
    assert!(
        m.log.entries[sel].detail.contains("beta 1"),
        "{:?}",
        m.log.entries[sel]
    );
    update(&mut m, chr('n'));
    let sel = m.log.selected.unwrap();
    assert!(
        m.log.entries[sel].detail.contains("beta again"),
        "{:?}",
        m.log.entries[sel]
    );
    let text = render_text(&m, 120, 40);
    assert!(text.contains("beta again"), "{text}");
    assert!(status(&m).contains("match 2 of 2"), "{}", status(&m));
    // The diff's n is untouched by a steps search.
    m.focus = Focus::Diff;
    update(&mut m, chr('n'));
    assert!(m.search.is_some());
}

/// The cells of the diff body that carry the search-match style.
fn marked_cells(m: &Model) -> String {
    let buf = render(m, m.width, m.height);
    let files = d(m).files.len();
    let body = tiny_backspace::tui::layout::panes(Rect::new(0, 0, m.width, m.height), files).body;
    let mut out = String::new();
    for y in body.y..body.bottom() {
        for x in body.x..body.right() {
            let c = &buf[(x, y)];
            if c.modifier.contains(ratatui::style::Modifier::REVERSED)
                && c.modifier.contains(ratatui::style::Modifier::BOLD)
            {
                out.push_str(c.symbol());
            }
        }
    }
    out
}

#[test]
fn matches_on_screen_are_marked() {
    for (w, h) in [(80, 24), (200, 60)] {
        let mut m = review(w, h, &two_hunks());
        assert_eq!(marked_cells(&m), "");
        search(&mut m, "needle");
        assert_eq!(marked_cells(&m).to_lowercase(), "needleneedle", "{w}x{h}");
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("search_{w}x{h}"), format!("{buf:?}"));
    }
}

/// A file whose second added line is 500 characters long and ends in `THE-END`.
fn long_line_patch() -> String {
    let long: String = (0..493)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    format!(
        "diff --git a/long.txt b/long.txt\n--- a/long.txt\n+++ b/long.txt\n@@ -1,1 +1,3 @@\n first\n+{long}THE-END\n+short\n"
    )
}

#[test]
fn w_wraps_long_lines_so_their_end_shows_at_80x24() {
    let mut m = review(80, 24, &long_line_patch());
    assert!(
        !render_text(&m, 80, 24).contains("THE-END"),
        "cut without wrap"
    );
    update(&mut m, chr('w'));
    assert!(d(&m).wrap);
    let text = render_text(&m, 80, 24);
    assert!(text.contains("THE-END"), "{text}");
    assert!(text.contains("· wrap "), "the title says so: {text}");
    assert!(
        text.contains("short"),
        "the next row follows the wrapped one"
    );
    // The cursor's row stays on screen when it wraps below the body.
    update(&mut m, key(KeyCode::End));
    assert!(render_text(&m, 80, 24).contains("▸      3 + short"));
    // h/l say why they do nothing while wrapping.
    update(&mut m, chr('l'));
    assert!(
        status(&m).contains("w turns wrapping off"),
        "{}",
        status(&m)
    );
    update(&mut m, chr('w'));
    assert!(!d(&m).wrap);
    assert!(!render_text(&m, 80, 24).contains("THE-END"));
}

#[test]
fn w_in_side_by_side_shows_the_unified_layout_wrapped() {
    let mut m = review(200, 60, &long_line_patch());
    assert_eq!(
        d(&m).mode,
        tiny_backspace::tui::diffview::DiffMode::SideBySide
    );
    update(&mut m, chr('w'));
    assert_eq!(d(&m).mode, tiny_backspace::tui::diffview::DiffMode::Unified);
    assert!(
        status(&m).contains("wrap in the unified layout"),
        "{}",
        status(&m)
    );
    let text = render_text(&m, 200, 60);
    assert!(text.contains("THE-END"), "{text}");
    let buf = render(&m, 200, 60);
    insta::assert_snapshot!("wrap_200x60", format!("{buf:?}"));
    update(&mut m, chr('w'));
    assert_eq!(
        d(&m).mode,
        tiny_backspace::tui::diffview::DiffMode::SideBySide,
        "w again goes back to the chosen layout"
    );
}

#[test]
fn wrap_snapshot_80x24() {
    let mut m = review(80, 24, &long_line_patch());
    update(&mut m, chr('w'));
    let buf = render(&m, 80, 24);
    insta::assert_snapshot!("wrap_80x24", format!("{buf:?}"));
}

#[test]
fn l_scrolls_sideways_to_the_end_of_a_500_character_line_at_80x24() {
    let mut m = review(80, 24, &long_line_patch());
    let mut presses = 0;
    while !render_text(&m, 80, 24).contains("THE-END") {
        update(&mut m, chr('l'));
        presses += 1;
        assert!(
            presses < 40,
            "never reached the end: {}",
            render_text(&m, 80, 24)
        );
    }
    assert!(d(&m).hscroll > 0);
    let text = render_text(&m, 80, 24);
    assert!(
        text.contains(&format!("· col {}→", d(&m).hscroll + 1)),
        "{text}"
    );
    // More l presses stop at the end of the longest line on screen.
    for _ in 0..40 {
        update(&mut m, key(KeyCode::Right));
    }
    assert!(render_text(&m, 80, 24).contains("THE-END"));
    // The gutter stays: line numbers are still drawn.
    assert!(render_text(&m, 80, 24).contains("      2 + "));
    while d(&m).hscroll > 0 {
        update(&mut m, key(KeyCode::Left));
    }
    assert!(render_text(&m, 80, 24).contains("first"));
    assert!(!render_text(&m, 80, 24).contains("· col"));
}

#[test]
fn z_zooms_the_focused_pane_and_back() {
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut m = review(w, h, &long_line_patch());
        let normal = m.panes();
        update(&mut m, chr('z'));
        let p = m.panes();
        assert_eq!(p.diff, Rect::new(0, 1, w, h - 2), "{w}x{h}");
        assert!(p.body.width > normal.body.width);
        assert_eq!(p.steps.area(), 0);
        let text = render_text(&m, w, h);
        assert!(!text.contains("Repository"), "{text}");
        assert!(text.contains("tiny-backspace"), "the header stays: {text}");
        assert!(
            text.lines().last().unwrap_or("").contains("review"),
            "the footer stays"
        );
        let buf = render(&m, w, h);
        insta::assert_snapshot!(format!("zoom_diff_{w}x{h}"), format!("{buf:?}"));
        // Tab takes the zoom to the steps (the diff's file list keeps the diff zoomed); a text
        // field shows the usual layout.
        update(&mut m, key(KeyCode::BackTab));
        assert_eq!(m.focus, Focus::Files);
        assert_eq!(m.panes(), p);
        update(&mut m, key(KeyCode::BackTab));
        assert_eq!(m.focus, Focus::Steps);
        assert_eq!(m.panes().steps, Rect::new(0, 1, w, h - 2));
        update(&mut m, key(KeyCode::BackTab));
        assert_eq!(m.panes(), normal);
        update(&mut m, key(KeyCode::Tab));
        update(&mut m, chr('z'));
        assert_eq!(m.panes(), normal, "z again is the usual layout");
    }
}

#[test]
fn a_click_in_the_zoomed_diff_moves_the_cursor_there() {
    let mut m = review(80, 24, &two_hunks());
    update(&mut m, chr('z'));
    let body = m.panes().body;
    update(
        &mut m,
        Msg::Mouse(crossterm::event::MouseEvent {
            kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: body.x + 10,
            row: body.y + 2,
            modifiers: crossterm::event::KeyModifiers::NONE,
        }),
    );
    assert_eq!(d(&m).cursor, 2);
}

#[test]
fn a_wrapped_last_row_shows_its_end_when_the_cursor_is_just_above() {
    // Many short rows, then the long line last: `]`/End put the cursor near it.
    let mut p =
        String::from("diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -0,0 +1,40 @@\n");
    for i in 0..40 {
        p.push_str(&format!("+row {i}\n"));
    }
    p.push_str(
        &long_line_patch()
            .replace("+short\n", "")
            .replace("+1,3 @@", "+1,2 @@"),
    );
    let mut m = review(80, 24, &p);
    update(&mut m, chr(']'));
    update(&mut m, chr('w'));
    // On the file's title, at the end of the diff: the view moves up so the last rows show.
    let text = render_text(&m, 80, 24);
    assert!(
        text.contains("▸[x] M long.txt"),
        "the cursor row stays: {text}"
    );
    assert!(text.contains("THE-END"), "{text}");
    // Down onto the long line itself: it starts on screen and ends on it.
    update(&mut m, chr('j'));
    update(&mut m, chr('j'));
    update(&mut m, chr('j'));
    let text = render_text(&m, 80, 24);
    assert!(text.contains("▸      2 + abc"), "{text}");
    assert!(text.contains("THE-END"), "{text}");
}
