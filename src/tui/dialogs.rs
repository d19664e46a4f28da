//! Overlays drawn over the main screen: help, past runs, the PR dialog, the follow-up box and the
//! quit confirmation.
//!
//! Invariants: each overlay clears the area it covers; every key the app understands is listed in
//! [`HELP`], which is also the source of the help overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui_textarea::TextArea;

use super::model::{Model, PrDialog, PrField, PrPhase, field_text};
use super::sanitize;
use super::theme::Theme;
use super::view::{centered, clear, dialog_block, draw_textarea, field_block};
use crate::store::RunMeta;

/// Every key, by context: (keys, what they do).
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("Tab / Shift+Tab", "move focus between panes"),
            (
                "Ctrl+S",
                "run the prompt · review: PR dialog · dialogs: confirm",
            ),
            ("Ctrl+C", "cancel the running pipeline; again (or q) quits"),
            ("Ctrl+R / r", "past runs"),
            ("Ctrl+Z", "suspend (fg resumes)"),
            ("? / F1", "this help"),
            (
                "q",
                "quit (outside text fields; asks when work is unpublished)",
            ),
        ],
    ),
    (
        "Text fields",
        &[
            ("Enter", "newline in the prompt · next field in repo/base"),
            ("Ctrl+E", "edit the field in $EDITOR"),
            ("Esc", "leave the field"),
        ],
    ),
    (
        "Steps",
        &[
            (
                "j/k ↑/↓",
                "select a step · in a long expanded one: line by line",
            ),
            (
                "Enter",
                "expand / collapse its full output (PgUp/PgDn pages)",
            ),
            ("G / End", "follow the tail · g / Home: top"),
            ("v", "its output full screen: / n N, g/G, PgUp/PgDn, q back"),
            (
                "/ · n / N",
                "search (smart case) · next / previous match · Esc ends",
            ),
            (
                "z",
                "zoom the steps or the diff to the whole screen and back",
            ),
            ("mouse", "click: pane, step or row · wheel scrolls the view"),
        ],
    ),
    (
        "Diff",
        &[
            ("j/k ↑/↓", "scroll · PgUp/PgDn, Ctrl+U/D: pages"),
            ("n / p", "next / previous hunk"),
            ("] / [", "next / previous file"),
            ("space", "hunk (or file, on its header) in/out of the PR"),
            (
                "s",
                "+ / − line out of the PR and back · context line: split the hunk there",
            ),
            (
                "v",
                "side-by-side ↔ unified (side-by-side needs a wide pane)",
            ),
            ("g / G", "top / bottom"),
            ("w", "wrap long lines (shows the unified layout)"),
            ("h / l ← / →", "scroll long lines sideways (not wrapped)"),
            ("t", "the step that last changed this hunk · t / Esc back"),
            (
                "x / m",
                "collapse the file / mark it viewed (and collapsed)",
            ),
            ("d", "after a follow-up: only what it changed, and back"),
        ],
    ),
    (
        "File list (Tab from the steps, Shift+Tab from the diff)",
        &[
            ("j/k · g/G", "pick a file (the diff follows) · first / last"),
            ("Enter", "go to the file in the diff"),
            ("space", "the whole file in/out of the PR"),
            ("x / m", "collapse / mark viewed (✓; the title counts them)"),
        ],
    ),
    (
        "Review",
        &[
            ("c / Ctrl+S", "create the PR (edit title and body)"),
            (
                "e",
                "edit the prompt; Ctrl+S twice leaves the review and re-runs",
            ),
            ("f", "send a follow-up to the same workspace"),
            (
                "E",
                "edit the file in $EDITOR (work tree); the diff is computed again",
            ),
            ("C", "comment on the hunk or line under the cursor"),
            (
                "L",
                "comments: D deletes · Ctrl+S sends them as one follow-up",
            ),
            ("r", "past runs: an unpublished one reopens for review"),
        ],
    ),
    (
        "PR dialog",
        &[
            ("Tab", "title → body → draft"),
            ("Ctrl+D", "toggle draft"),
            (
                "Ctrl+S / Esc",
                "create (retry after a failure) / close, text kept",
            ),
            ("o / y", "open / send the PR URL to the clipboard (OSC 52)"),
            ("c", "after publishing: show the outcome again"),
        ],
    ),
];

/// How far the help scrolls on a `width`×`height` screen: to its last line, no further (0 when
/// it fits, or shows in two columns).
pub fn help_max_scroll(width: u16, height: u16) -> u16 {
    let total = HELP.iter().map(|(_, keys)| keys.len() + 1).sum::<usize>() as u16;
    let area = Rect::new(0, 0, width, height);
    let r = centered(area, 100, total + 2);
    let inner_h = r.height.saturating_sub(2);
    let wide = r.width >= 100 + 2 || area.width >= 160;
    if total <= inner_h || wide {
        0
    } else {
        total - inner_h
    }
}

pub fn help(frame: &mut Frame, theme: &Theme, area: Rect, scroll: u16) {
    let mut lines: Vec<Line> = Vec::new();
    for (section, keys) in HELP {
        lines.push(Line::from(Span::styled(
            section.to_string(),
            theme.title(true),
        )));
        for (k, what) in *keys {
            lines.push(Line::from(vec![
                Span::styled(format!("  {k:<16}"), theme.key()),
                Span::raw(what.to_string()),
            ]));
        }
    }
    let total = lines.len() as u16;
    let r = centered(area, 100, total + 2);
    clear(frame, r);
    let inner_h = r.height.saturating_sub(2);
    let wide = r.width >= 100 + 2 || area.width >= 160;
    let fits = total <= inner_h;
    let title = if fits || wide {
        "Keys · Esc closes"
    } else {
        "Keys · j/k scroll · Esc closes"
    };
    let block = dialog_block(title, theme);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    if fits || !wide {
        let max = total.saturating_sub(inner.height);
        frame.render_widget(Paragraph::new(lines).scroll((scroll.min(max), 0)), inner);
    } else {
        // Two columns, split at a section start near the middle.
        let split = lines
            .iter()
            .enumerate()
            .skip((lines.len() / 2).saturating_sub(1))
            .find(|(_, l)| !l.to_string().starts_with("  "))
            .map_or(lines.len() / 2, |(i, _)| i);
        let right: Vec<Line> = lines.split_off(split);
        let half = inner.width / 2;
        frame.render_widget(
            Paragraph::new(lines),
            Rect::new(inner.x, inner.y, half, inner.height),
        );
        frame.render_widget(
            Paragraph::new(right),
            Rect::new(inner.x + half, inner.y, inner.width - half, inner.height),
        );
    }
}

pub fn runs(frame: &mut Frame, theme: &Theme, area: Rect, runs: &[RunMeta], selected: usize) {
    let r = centered(area, 110, (runs.len() as u16 + 4).max(6));
    clear(frame, r);
    let block = dialog_block("Past runs · Enter opens · Esc closes", theme);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    if runs.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("No runs yet.", theme.dim())),
            inner,
        );
        return;
    }
    let h = inner.height as usize;
    let start = if selected >= h { selected + 1 - h } else { 0 };
    let lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, m)| {
            let prompt = sanitize::one_line(m.prompt.lines().next().unwrap_or(""));
            let text = format!(
                "{} {:<10} {:<28} {}",
                m.id,
                m.status.as_str(),
                sanitize::one_line(&m.repo),
                prompt
            );
            let st = if i == selected {
                theme.cursor()
            } else {
                ratatui::style::Style::default()
            };
            Line::from(vec![
                Span::styled(if i == selected { "▸ " } else { "  " }, theme.bold()),
                Span::styled(text, st),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

pub fn pr(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect, d: &PrDialog) {
    let height = match d.phase {
        PrPhase::Editing => 22,
        PrPhase::Publishing => 8,
        PrPhase::Created { .. } => 11,
        PrPhase::NotPublished { .. } => 20,
    };
    let r = centered(area, 90, height);
    clear(frame, r);
    let block = dialog_block("Create pull request", theme);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let base = model
        .run_base
        .clone()
        .unwrap_or_else(|| "the default branch".into());
    let head = match &d.phase {
        PrPhase::Created { branch, .. } => branch.clone(),
        _ => "a new branch for this run".into(),
    };
    let mut y = inner.y;
    let line = |frame: &mut Frame, y: &mut u16, l: Line| {
        if *y < inner.bottom() {
            frame.render_widget(Paragraph::new(l), Rect::new(inner.x, *y, inner.width, 1));
            *y += 1;
        }
    };
    line(
        frame,
        &mut y,
        Line::from(vec![
            Span::styled("base ", theme.dim()),
            Span::styled(sanitize::one_line(&base), theme.bold()),
            Span::styled("  ←  head ", theme.dim()),
            Span::styled(sanitize::one_line(&head), theme.bold()),
        ]),
    );
    if let Some(diff) = &model.diff {
        let s = diff.summary();
        line(
            frame,
            &mut y,
            Line::from(Span::styled(
                format!(
                    "{} of {} files · {} of {} hunks · +{} −{}",
                    s.files_in, s.files, s.hunks_in, s.hunks, s.added, s.removed
                ),
                theme.dim(),
            )),
        );
        // Named before the user confirms: warned files that are in the PR.
        let warned: Vec<String> = diff
            .files
            .iter()
            .zip(&diff.info)
            .enumerate()
            .filter(|(i, (_, info))| {
                !info.warnings.is_empty() && diff.file_included(*i) != Some(false)
            })
            .map(|(_, (f, info))| {
                let why: Vec<&str> = info.warnings.iter().map(|w| w.describe()).collect();
                format!("{} ({})", sanitize::one_line(&f.path), why.join(", "))
            })
            .collect();
        // One line each, the first few; the rest counted.
        const SHOWN: usize = 3;
        for (i, w) in warned.iter().take(SHOWN).enumerate() {
            let more = if i + 1 == SHOWN && warned.len() > SHOWN {
                format!("  (+{} more warned files)", warned.len() - SHOWN)
            } else {
                String::new()
            };
            line(
                frame,
                &mut y,
                Line::from(Span::styled(
                    format!("⚠ in this PR: {w}{more}"),
                    theme.warning(),
                )),
            );
        }
    }
    match &d.phase {
        PrPhase::Created {
            url,
            number,
            branch,
            base,
        } => {
            y += 1;
            line(
                frame,
                &mut y,
                Line::from(Span::styled(
                    format!("✓ Pull request #{number} created"),
                    theme.ok(),
                )),
            );
            line(
                frame,
                &mut y,
                Line::from(Span::styled(sanitize::one_line(url), theme.bold())),
            );
            line(
                frame,
                &mut y,
                Line::from(Span::styled(
                    format!(
                        "{} → {}",
                        sanitize::one_line(branch),
                        sanitize::one_line(base)
                    ),
                    theme.dim(),
                )),
            );
            y += 1;
            line(
                frame,
                &mut y,
                keys_line(
                    theme,
                    &[
                        ("o", "open in browser"),
                        ("y", "copy URL"),
                        ("Esc", "close"),
                    ],
                ),
            );
            return;
        }
        PrPhase::NotPublished { branch, message } => {
            y += 1;
            let heading = match branch {
                Some(b) => Line::from(Span::styled(
                    format!("✓ Published as branch {}", sanitize::one_line(b)),
                    theme.ok(),
                )),
                None => Line::from(Span::styled("No pull request was created.", theme.error())),
            };
            line(frame, &mut y, heading);
            let rest = Rect::new(
                inner.x,
                y,
                inner.width,
                inner.bottom().saturating_sub(y + 1),
            );
            let text = sanitize::clean(message).into_owned();
            // Rows after wrapping (a close estimate: by characters), so the scroll stops with
            // the last line at the bottom.
            let rows = wrapped_rows(&text, rest.width);
            let max = u16::try_from(rows.saturating_sub(usize::from(rest.height))).unwrap_or(0);
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .scroll((d.scroll.min(max), 0)),
                rest,
            );
            let last = Rect::new(inner.x, inner.bottom().saturating_sub(1), inner.width, 1);
            let keys: &[(&str, &str)] = match (branch.is_some(), max > 0) {
                (true, true) => &[
                    ("j/k", "scroll"),
                    ("y", "copy the request-pull summary"),
                    ("Esc", "close · c reopens"),
                ],
                (true, false) => &[
                    ("y", "copy the request-pull summary"),
                    ("Esc", "close · c reopens"),
                ],
                (false, true) => &[("j/k", "scroll"), ("Esc", "close")],
                (false, false) => &[("Esc", "close")],
            };
            frame.render_widget(Paragraph::new(keys_line(theme, keys)), last);
            return;
        }
        PrPhase::Publishing => {
            y += 1;
            line(
                frame,
                &mut y,
                Line::from(Span::styled(
                    "Publishing… (branch, push, pull request)",
                    theme.running(),
                )),
            );
            line(
                frame,
                &mut y,
                Line::from(Span::styled(field_text(&d.title), theme.bold())),
            );
            return;
        }
        PrPhase::Editing => {}
    }
    let title_area = Rect::new(inner.x, y, inner.width, 3);
    let tb = field_block("Title", d.field == PrField::Title, None, theme);
    let ti = tb.inner(title_area);
    frame.render_widget(tb, title_area);
    draw_textarea(frame, &d.title, d.field == PrField::Title, theme, ti);
    y += 3;
    // An error (a failed publish says why and how to retry) is shown whole, wrapped; the body
    // gives way to it down to three rows.
    let error = d
        .error
        .as_deref()
        .map(|e| format!("✗ {}", sanitize::one_line(e)));
    let error_h = error.as_deref().map_or(0, |e| {
        let room = inner.bottom().saturating_sub(y + 2 + 3);
        u16::try_from(wrapped_rows(e, inner.width))
            .unwrap_or(u16::MAX)
            .clamp(1, room.max(1))
    });
    let body_h = inner.bottom().saturating_sub(y + 2 + error_h).max(3);
    let body_area = Rect::new(inner.x, y, inner.width, body_h);
    let bb = field_block("Body", d.field == PrField::Body, None, theme);
    let bi = bb.inner(body_area);
    frame.render_widget(bb, body_area);
    draw_textarea(frame, &d.body, d.field == PrField::Body, theme, bi);
    y += body_h;
    let draft_style = if d.field == PrField::Draft {
        theme.cursor()
    } else {
        theme.bold()
    };
    line(
        frame,
        &mut y,
        Line::from(vec![
            Span::styled(if d.draft { "[x] draft" } else { "[ ] draft" }, draft_style),
            Span::styled("  (Ctrl+D)", theme.dim()),
        ]),
    );
    if let Some(e) = error {
        let h = error_h.min(inner.bottom().saturating_sub(y + 1));
        frame.render_widget(
            Paragraph::new(Span::styled(e, theme.error())).wrap(Wrap { trim: false }),
            Rect::new(inner.x, y, inner.width, h),
        );
        y += h;
    }
    line(
        frame,
        &mut y,
        keys_line(
            theme,
            &[
                ("Ctrl+S", "create PR"),
                ("Tab", "next field"),
                ("Ctrl+E", "$EDITOR"),
                ("Esc", "cancel"),
            ],
        ),
    );
}

/// The rows `text` takes wrapped at word boundaries in `width` columns (as `Wrap` does, give or
/// take a character's width).
fn wrapped_rows(text: &str, width: u16) -> usize {
    let w = usize::from(width.max(1));
    text.lines()
        .map(|line| {
            let (mut rows, mut col) = (1, 0);
            for word in line.split(' ') {
                let n = word.chars().count();
                let need = if col == 0 { n } else { col + 1 + n };
                if need <= w {
                    col = need;
                    continue;
                }
                if col > 0 {
                    rows += 1;
                }
                // A word longer than the line is broken over several.
                let extra = n.saturating_sub(1) / w;
                rows += extra;
                col = n - extra * w;
            }
            rows
        })
        .sum()
}

fn keys_line<'a>(theme: &Theme, keys: &[(&'a str, &'a str)]) -> Line<'a> {
    let mut spans = Vec::new();
    for (i, (k, what)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(*k, theme.key()));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

pub fn follow_up(frame: &mut Frame, theme: &Theme, area: Rect, t: &TextArea<'static>) {
    let r = centered(area, 80, 10);
    clear(frame, r);
    let block = dialog_block(
        "Follow-up to the same workspace · Ctrl+S sends · Esc cancels",
        theme,
    );
    let inner = block.inner(r);
    frame.render_widget(block, r);
    draw_textarea(frame, t, true, theme, inner);
}

pub fn confirm_quit(frame: &mut Frame, model: &Model, theme: &Theme, area: Rect, reason: &str) {
    let r = centered(area, 64, 8);
    clear(frame, r);
    let block = dialog_block("Quit?", theme);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let mut text = vec![
        Line::from(Span::styled(reason.to_string(), theme.bold())),
        Line::raw(""),
    ];
    let kept = match &model.run_id {
        Some(id) => format!("The run stays in the store (run {id})."),
        None => "The run stays in the store.".into(),
    };
    text.push(Line::raw(kept));
    text.push(keys_line(theme, &[("y", "quit"), ("n / Esc", "stay")]));
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), inner);
}
