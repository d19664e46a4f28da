//! The right pane: the file list and the unified diff with line numbers, a `+`/`-` gutter,
//! include/exclude markers and word-level highlights. It also owns how one diff line is styled
//! ([`line_body`], [`word_ranges`]), which the side-by-side layout ([`super::sidebyside`]) reuses.
//!
//! Invariants: only the rows between `top` and `top + height` are turned into text, so drawing
//! costs the same for a 20-line and a 200,000-line diff; file contents are sanitized per row, and
//! nothing is hidden: a control or invisible character is drawn as a stand-in (`␛`, `<U+202E>`)
//! and a CRLF ending as `␍`, in the warning style; a file with warnings
//! ([`crate::diff::warnings`], `binary` aside) gets a `⚠` in the list and its title says why;
//! the `[x]`/`[ ]`/`[~]` markers carry the selection without color; each frame gives the syntax
//! highlighter a fresh budget before the body is drawn ([`super::highlight::FRAME_BUDGET`]).

use std::ops::Range;

use ratatui::Frame;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::diffview::{DiffMode, DiffView};
use super::layout::Panes;
use super::model::{Focus, Model, RunState};
use super::steplog::EntryKind;
use super::theme::Theme;
use super::{diffwrap, sanitize, search, sidebyside};
use crate::diff::rows::{self, NONE, Row, RowKind};
use crate::diff::warnings::Warning;

pub(super) fn marker(inc: Option<bool>) -> &'static str {
    match inc {
        Some(true) => "[x]",
        Some(false) => "[ ]",
        None => "[~]",
    }
}

/// The pane title for a pane `width` wide: the long form where it fits, else a short one that
/// keeps the totals.
pub fn title(d: &DiffView, width: usize) -> String {
    let mut suffix = if d.wrap {
        "· wrap ".to_string()
    } else if d.hscroll > 0 {
        format!("· col {}→ ", d.hscroll + 1)
    } else {
        String::new()
    };
    if let Some(v) = d.viewed_label() {
        suffix = format!("· {v} {suffix}");
    }
    if d.review.only_since {
        suffix = format!("· since last review {suffix}");
    }
    let room = width.saturating_sub(suffix.chars().count());
    let mut t = counts_title(d, room);
    if t.chars().count() + 2 > room && !suffix.is_empty() {
        let s = d.summary();
        t = format!(
            " Diff · {}/{} hunks · +{} −{} ",
            s.hunks_in, s.hunks, s.added, s.removed
        );
    }
    t + &suffix
}

fn counts_title(d: &DiffView, width: usize) -> String {
    let s = d.summary();
    let files = if s.files == 1 { "file" } else { "files" };
    let long = format!(
        " Diff · {} {files} · {} of {} hunks in the PR · +{} −{} ",
        s.files, s.hunks_in, s.hunks, s.added, s.removed
    );
    if long.chars().count() + 2 <= width {
        return long;
    }
    format!(
        " Diff · {} {files} · {}/{} hunks in PR · +{} −{} ",
        s.files, s.hunks_in, s.hunks, s.added, s.removed
    )
}

use super::diffwrap::ellipsize;

pub fn draw(frame: &mut Frame, model: &Model, theme: &Theme, p: &Panes) {
    let focused = matches!(model.focus, Focus::Diff | Focus::Files);
    let Some(d) = model.diff.as_ref() else {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(Span::styled(" Diff ", theme.title(focused)));
        let inner = block.inner(p.diff);
        frame.render_widget(block, p.diff);
        frame.render_widget(
            Paragraph::new(placeholder(model, theme)).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(
            super::livediff::title(model, d, p.diff.width as usize),
            theme.title(focused),
        ));
    frame.render_widget(block, p.diff);
    if d.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "The agent changed nothing. f sends a follow-up, e edits the prompt.",
                theme.dim(),
            )),
            p.body,
        );
        return;
    }
    super::filelist::draw(frame, d, theme, p, model.focus == Focus::Files);
    if p.files.height > 0 {
        let sep = ratatui::layout::Rect::new(p.files.x, p.files.bottom(), p.files.width, 1);
        frame.render_widget(
            Paragraph::new(Span::styled("─".repeat(sep.width as usize), theme.dim())),
            sep,
        );
    }
    let editable = model.state == RunState::Review && model.viewing.is_none();
    let h = p.body.height as usize;
    let w = p.body.width as usize;
    // `update` keeps the mode in step with the pane width; should a frame ever be narrower than
    // the model thinks, it still gets the unified layout.
    let mode = match d.mode {
        DiffMode::SideBySide if !sidebyside::fits(p.body.width) => DiffMode::Unified,
        m => m,
    };
    let top = d.top_in(mode, h);
    // A fresh syntax-highlighting budget for the lines below (see `highlight::FRAME_BUDGET`).
    d.highlighter.begin_frame();
    if mode == DiffMode::SideBySide {
        sidebyside::draw(frame, d, p.body, top, focused, editable, theme);
        return;
    }
    if d.wrap {
        let lines = diffwrap::wrapped(d, top, h, w, focused, editable, theme);
        frame.render_widget(Paragraph::new(lines), p.body);
        return;
    }
    let end = (top + h).min(d.rows.len());
    let lines: Vec<Line> = (top..end)
        .map(|i| {
            let l = row_line(d, &d.rows[i], i == d.cursor && focused, editable, theme, w);
            ellipsize(l, w)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), p.body);
}

fn placeholder<'a>(model: &Model, theme: &Theme) -> Vec<Line<'a>> {
    match model.state {
        RunState::Idle => vec![Line::from(Span::styled(
            "The diff appears here for review once the agent is done.",
            theme.dim(),
        ))],
        RunState::Failed | RunState::Cancelled => {
            let mut v = Vec::new();
            if let Some(e) = model
                .log
                .entries
                .iter()
                .rev()
                .find(|e| e.kind == EntryKind::Error)
            {
                let title = if model.state == RunState::Cancelled {
                    "Cancelled"
                } else {
                    "The run failed"
                };
                v.push(Line::from(Span::styled(title, theme.error())));
                v.push(Line::raw(""));
                for l in e.detail.lines() {
                    v.push(Line::raw(l.to_string()));
                }
                v.push(Line::raw(""));
            }
            v.push(Line::from(Span::styled(
                "Ctrl+S runs again · e edits the prompt · r past runs",
                theme.dim(),
            )));
            v
        }
        RunState::Done { .. } => vec![Line::from(Span::styled(
            "The run ended without a diff.",
            theme.dim(),
        ))],
        _ => {
            let mut v = vec![Line::from(Span::styled(
                "The agent is working…",
                theme.dim(),
            ))];
            if let Some(e) = model
                .log
                .entries
                .iter()
                .rev()
                .find(|e| matches!(e.kind, EntryKind::Read | EntryKind::Edit | EntryKind::Bash))
            {
                v.push(Line::raw(""));
                v.push(Line::from(vec![
                    // The pipeline reports a tool when it has finished, so this is the last
                    // step done, not the one running.
                    Span::styled("last step: ", theme.dim()),
                    Span::styled(e.title.clone(), theme.bold()),
                ]));
                if e.kind == EntryKind::Edit {
                    for l in e.detail.lines().take(40) {
                        let st = match l.chars().next() {
                            Some('+') => theme.added(),
                            Some('-') => theme.removed(),
                            _ => theme.dim(),
                        };
                        v.push(Line::from(Span::styled(l.to_string(), st)));
                    }
                }
            }
            v
        }
    }
}

/// The warnings the file list and title mark with `⚠`: all but `binary`, which the `bin`
/// count and the file's note already say.
pub(super) fn marked_warnings(d: &DiffView, file: usize) -> Vec<Warning> {
    d.info.get(file).map_or_else(Vec::new, |i| {
        i.warnings
            .iter()
            .copied()
            .filter(|w| *w != Warning::Binary)
            .collect()
    })
}

/// Splits `text` at `ranges` into (segment, emphasized) parts.
fn segments<'t>(text: &'t str, ranges: &[Range<usize>]) -> Vec<(&'t str, bool)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for r in ranges {
        let (s, e) = (r.start.min(text.len()), r.end.min(text.len()));
        if s > pos && text.is_char_boundary(pos) && text.is_char_boundary(s) {
            out.push((&text[pos..s], false));
        }
        if e > s && text.is_char_boundary(s) && text.is_char_boundary(e) {
            out.push((&text[s..e], true));
        }
        pos = e;
    }
    if pos < text.len() && text.is_char_boundary(pos) {
        out.push((&text[pos..], false));
    }
    out
}

pub(super) fn num(n: u32, w: usize) -> String {
    if n == NONE {
        " ".repeat(w)
    } else {
        format!("{n:>w$}")
    }
}

/// The first column of a screen line: `▸` on the cursor line.
pub(super) fn cursor_mark<'a>(is_cursor: bool, theme: &Theme) -> Span<'a> {
    if is_cursor {
        Span::styled("▸", theme.cursor())
    } else {
        Span::raw(" ")
    }
}

/// One unified screen line: a file title, note or hunk header (these span the pane in both
/// layouts), or a hunk line with both line numbers.
pub(super) fn row_line<'a>(
    d: &'a DiffView,
    row: &Row,
    is_cursor: bool,
    editable: bool,
    theme: &Theme,
    width: usize,
) -> Line<'a> {
    let cur = cursor_mark(is_cursor, theme);
    let file = row.file as usize;
    let Some(f) = d.files.get(file) else {
        return Line::raw("");
    };
    let nw = d.num_width;
    match row.kind {
        RowKind::File => {
            let info = &d.info[file];
            let what = match f.old_path.as_deref() {
                Some(old) => format!(
                    "{} → {}",
                    sanitize::one_line(old),
                    sanitize::one_line(&f.path)
                ),
                None => sanitize::one_line(&f.path),
            };
            let counts = if f.binary {
                "binary".to_string()
            } else {
                format!("+{} −{}", info.added, info.removed)
            };
            let folded = if d.review.viewed.contains(&file) {
                "  ✓ viewed"
            } else if d.review.collapsed.contains(&file) {
                "  (collapsed: x shows it)"
            } else {
                ""
            };
            let text = format!(
                "{} {} {}  {counts}{folded}",
                marker(d.file_included(file)),
                info.status,
                what,
            );
            let warned = marked_warnings(d, file);
            if warned.is_empty() {
                let pad = width.saturating_sub(text.chars().count() + 1);
                return Line::from(vec![
                    cur,
                    Span::styled(format!("{text}{}", " ".repeat(pad)), theme.file()),
                ]);
            }
            let words: Vec<&str> = warned.iter().map(|w| w.describe()).collect();
            let warning = format!("⚠ {}", words.join(", "));
            let pad = width.saturating_sub(text.chars().count() + warning.chars().count() + 3);
            Line::from(vec![
                cur,
                Span::styled(format!("{text}  "), theme.file()),
                Span::styled(warning, theme.warning()),
                Span::styled(" ".repeat(pad), theme.file()),
            ])
        }
        RowKind::Note => {
            let note = d.info[file]
                .notes
                .get(row.line as usize)
                .cloned()
                .unwrap_or_default();
            Line::from(vec![
                cur,
                Span::styled(format!("    {}", sanitize::one_line(&note)), theme.dim()),
            ])
        }
        RowKind::Hunk => {
            let h = &f.hunks[row.hunk as usize];
            let inc = d.hunk_included(file, row.hunk as usize);
            let st = if inc { theme.hunk() } else { theme.excluded() };
            let mut spans = vec![
                cur,
                Span::styled(marker(d.hunk_state(file, row.hunk as usize)), theme.bold()),
                Span::raw(" "),
            ];
            spans.push(Span::styled(
                format!(
                    "@@ -{},{} +{},{} @@",
                    h.old_start, h.old_len, h.new_start, h.new_len
                ),
                st,
            ));
            if !h.section.is_empty() {
                spans.push(Span::styled(
                    format!(" {}", sanitize::one_line(&h.section)),
                    theme.dim(),
                ));
            }
            if d.review.yours.contains(&(file, row.hunk as usize)) {
                spans.push(Span::styled("  ✎ your edit", theme.bold()));
            }
            if !inc && editable {
                spans.push(Span::styled("  (left out of the PR)", theme.dim()));
            }
            Line::from(spans)
        }
        RowKind::Context | RowKind::Added | RowKind::Removed | RowKind::NoNewline => {
            let words = word_ranges(d, row).map(|(old, new)| match row.kind {
                RowKind::Removed => old,
                _ => new,
            });
            let mut spans = vec![
                cur,
                Span::styled(
                    format!("{} {} ", num(row.old_no, nw), num(row.new_no, nw)),
                    theme.dim(),
                ),
            ];
            spans.extend(line_body(d, row, &words.unwrap_or_default(), theme));
            Line::from(spans)
        }
    }
}

/// The changed words of a removed line and its added partner (old side, new side), for a row of
/// either; `None` when the row has no partner, its hunk is left out, or highlighting would not
/// help.
pub(super) fn word_ranges(d: &DiffView, row: &Row) -> Option<(rows::Spans, rows::Spans)> {
    if !d.line_included(row.file as usize, row.hunk as usize, row.line as usize) {
        return None;
    }
    let line = d.line_text(row);
    let body = line.get(1..).unwrap_or("");
    let partner_line = d.partner_text(row)?;
    let partner = partner_line.get(1..).unwrap_or("");
    match row.kind {
        RowKind::Removed => rows::intraline(body, partner),
        RowKind::Added => rows::intraline(partner, body),
        _ => None,
    }
}

/// The sign and text of a hunk line (context, added, removed or `\ No newline`): word
/// highlights at `words`, syntax colors when the hunk is in the PR, the excluded style when not.
pub(super) fn line_body<'a>(
    d: &DiffView,
    row: &Row,
    words: &[Range<usize>],
    theme: &Theme,
) -> Vec<Span<'a>> {
    let file = row.file as usize;
    let Some(f) = d.files.get(file) else {
        return vec![];
    };
    let inc = d.line_included(file, row.hunk as usize, row.line as usize);
    let raw = d.line_text(row);
    let body = raw.get(1..).unwrap_or("");
    let (sign, base, emph) = match row.kind {
        RowKind::Added => ("+", theme.added(), theme.added_emph()),
        RowKind::Removed => ("-", theme.removed(), theme.removed_emph()),
        RowKind::NoNewline => ("\\", theme.dim(), theme.dim()),
        _ => (" ", Style::default(), Style::default()),
    };
    let (base, emph) = if inc {
        (base, emph)
    } else {
        (theme.excluded(), theme.excluded())
    };
    let warn = theme.warning();
    // A split (`s`) shows on the first line of the later part.
    let split = row.kind == RowKind::Context
        && d.review
            .splits
            .contains(&(file, row.hunk as usize, row.line as usize));
    let mut spans = vec![if split {
        Span::styled("┄ ", theme.bold())
    } else {
        Span::styled(format!("{sign} "), base)
    }];
    if row.kind == RowKind::NoNewline {
        spans.push(Span::styled(
            sanitize::one_line(raw.trim_start_matches('\\').trim()),
            theme.dim(),
        ));
        return spans;
    }
    let runs = if inc && !theme.no_color {
        f.hunks.get(row.hunk as usize).and_then(|h| {
            d.highlighter
                .line(row.file, row.hunk, &f.path, &h.lines, row.line as usize)
        })
    } else {
        None
    };
    match runs {
        None => {
            for (seg, em) in segments(body, words) {
                spans.extend(sanitize::spans(seg, if em { emph } else { base }, warn));
            }
        }
        Some(runs) => {
            // Syntax colors in front; added/removed as a background tint, words that
            // changed as a stronger one.
            let (tint, strong) = match row.kind {
                RowKind::Added => (theme.added_tint(), theme.added_emph()),
                RowKind::Removed => (theme.removed_tint(), theme.removed_emph()),
                _ => (Style::default(), Style::default()),
            };
            spans.extend(colored(body, &runs, words, tint, strong, warn));
        }
    }
    let mut text = spans.split_off(1);
    if let Some(p) = &d.marks {
        text = search::mark(text, p, theme.search_match());
    }
    if d.hscroll > 0 && !d.wrap {
        text = diffwrap::skip_cols(text, d.hscroll);
    }
    spans.extend(text);
    // A CRLF ending is shown, so a line-ending change is not an invisible one.
    if d.line_ends_in_cr(row) {
        spans.push(Span::styled("␍", warn));
    }
    spans
}

/// Spans for `text` with syntax colors from `runs` and the `emph` ranges in `strong`; control and
/// invisible characters as stand-ins in `warn`.
fn colored<'a>(
    text: &str,
    runs: &[(Range<usize>, ratatui::style::Color)],
    emph: &[Range<usize>],
    base: Style,
    strong: Style,
    warn: Style,
) -> Vec<Span<'a>> {
    let mut cuts: Vec<usize> = vec![0, text.len()];
    for r in runs.iter().map(|(r, _)| r).chain(emph) {
        cuts.push(r.start.min(text.len()));
        cuts.push(r.end.min(text.len()));
    }
    cuts.retain(|&c| text.is_char_boundary(c));
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len());
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a == b {
            continue;
        }
        let em = emph.iter().any(|r| r.start <= a && a < r.end);
        let mut style = if em { strong } else { base };
        if let Some((_, c)) = runs.iter().find(|(r, _)| r.start <= a && a < r.end) {
            style = style.fg(*c);
        }
        out.extend(sanitize::spans(&text[a..b], style, warn));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colored_splits_at_syntax_and_word_boundaries() {
        let c = ratatui::style::Color::Indexed(1);
        let spans = colored(
            "abc def",
            &[(0..3, c)],
            &[4..7, 7..7],
            Style::default(),
            Style::default(),
            Style::default(),
        );
        let texts: Vec<&str> = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(texts, vec!["abc", " ", "def"]);
        assert_eq!(spans[0].style.fg, Some(c));
    }

    #[test]
    fn segments_cover_the_text() {
        let s = segments("return a / b", &[9..10, 12..12]);
        assert_eq!(s, vec![("return a ", false), ("/", true), (" b", false)]);
        assert_eq!(segments("abc", &[]), vec![("abc", false)]);
    }
}
