//! Reading long diff lines: wrapping them in the unified layout (`w`), scrolling sideways
//! (`h`/`l`) when they are not wrapped, and cutting them with a visible `…` otherwise.
//!
//! Invariants: both work on the styled lines of the rows on screen only — wrapping builds at most
//! the rows between the cursor and the top of the body plus one screen below, so a frame costs
//! the same for any diff size; the cursor's row always starts on screen when wrapping (`top`
//! stays a row index, the drawing moves down as far as the cursor needs); horizontal scrolling
//! shifts only the text of hunk lines (the gutter, file titles and hunk headers stay put).

use ratatui::text::{Line, Span};

use super::diffpane::row_line;
use super::diffview::DiffView;
use super::theme::Theme;
use crate::diff::rows::RowKind;

/// Cuts a row wider than `width` columns to fit, ending it with `…` so a cut is visible.
pub fn ellipsize(line: Line<'_>, width: usize) -> Line<'_> {
    if line.width() <= width || width == 0 {
        return line;
    }
    let mut room = width - 1;
    let mut spans = Vec::with_capacity(line.spans.len() + 1);
    for span in line.spans {
        let w = span.width();
        if w <= room {
            room -= w;
            spans.push(span);
            continue;
        }
        let mut cut = String::new();
        for c in span.content.chars() {
            let cw = Span::raw(c.to_string()).width();
            if cw > room {
                break;
            }
            room -= cw;
            cut.push(c);
        }
        spans.push(Span::styled(cut, span.style));
        spans.push(Span::styled("…", span.style));
        break;
    }
    Line::from(spans)
}

/// Columns of one character (as ratatui measures them).
fn cols(c: char) -> usize {
    let mut b = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut b)).width()
}

/// Drops the first `n` columns of `spans` (a wide character cut in half goes whole).
pub fn skip_cols<'a>(spans: Vec<Span<'a>>, n: usize) -> Vec<Span<'a>> {
    if n == 0 {
        return spans;
    }
    let mut left = n;
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        if left == 0 {
            out.push(span);
            continue;
        }
        let w = span.width();
        if w <= left {
            left -= w;
            continue;
        }
        let mut rest = String::new();
        for c in span.content.chars() {
            if left > 0 {
                left = left.saturating_sub(cols(c));
                continue;
            }
            rest.push(c);
        }
        out.push(Span::styled(rest, span.style));
    }
    out
}

/// Cuts `line` into screen lines of `width` columns; lines after the first start with `indent`
/// blank columns (under the gutter).
pub fn wrap<'a>(line: Line<'a>, width: usize, indent: usize) -> Vec<Line<'a>> {
    let indent = indent.min(width / 2);
    if width == 0 || line.width() <= width {
        return vec![line];
    }
    let mut out: Vec<Line<'a>> = Vec::new();
    let mut cur: Vec<Span<'a>> = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let mut part = String::new();
        for c in span.content.chars() {
            let cw = cols(c);
            if used + cw > width && used > indent {
                if !part.is_empty() {
                    cur.push(Span::styled(std::mem::take(&mut part), span.style));
                }
                out.push(Line::from(std::mem::take(&mut cur)));
                cur.push(Span::raw(" ".repeat(indent)));
                used = indent;
            }
            part.push(c);
            used += cw;
        }
        if !part.is_empty() {
            cur.push(Span::styled(part, span.style));
        }
    }
    if !cur.is_empty() {
        out.push(Line::from(cur));
    }
    out
}

/// The gutter width of a hunk line row: cursor mark, both line numbers and the sign.
fn indent(d: &DiffView, kind: RowKind) -> usize {
    match kind {
        RowKind::Context | RowKind::Added | RowKind::Removed => 2 * d.num_width + 5,
        _ => 4,
    }
}

/// The body of the unified layout with long lines wrapped: `h` screen lines `w` wide, from row
/// `top` or further down so that the cursor's row starts on screen.
pub fn wrapped<'a>(
    d: &'a DiffView,
    top: usize,
    h: usize,
    w: usize,
    focused: bool,
    editable: bool,
    theme: &Theme,
) -> Vec<Line<'a>> {
    if d.rows.is_empty() || h == 0 {
        return Vec::new();
    }
    let row_lines = |i: usize| {
        let row = &d.rows[i];
        wrap(
            row_line(d, row, i == d.cursor && focused, editable, theme, w),
            w,
            indent(d, row.kind),
        )
    };
    let cursor = d.cursor.min(d.rows.len() - 1);
    let top = top.min(cursor);
    // From the cursor up until the screen is full or `top` is reached.
    let mut back = Vec::new();
    let mut used = 0;
    let mut i = cursor;
    loop {
        let ls = row_lines(i);
        used += ls.len();
        back.push(ls);
        if used >= h || i == top {
            break;
        }
        i -= 1;
    }
    let cursor_len = back.first().map_or(0, Vec::len);
    back.reverse();
    let mut lines: Vec<Line<'a>> = back.into_iter().flatten().collect();
    if lines.len() > h {
        // The cursor's row starts on screen: cut above it, or its own end when it is taller
        // than the body.
        let cut = if cursor_len >= h {
            lines.len() - cursor_len
        } else {
            lines.len() - h
        };
        lines.drain(..cut);
    }
    let cursor_at = lines.len() - cursor_len.min(lines.len());
    // Rows below, up to what could show should the view move up to the cursor's row: near the
    // end of the diff, the view moves up so the last row's end shows (the unwrapped view stops
    // at the end the same way).
    let mut j = cursor + 1;
    while lines.len() < h + cursor_at && j < d.rows.len() {
        lines.extend(row_lines(j));
        j += 1;
    }
    if lines.len() > h && j == d.rows.len() {
        lines.drain(..(lines.len() - h).min(cursor_at));
    }
    lines.truncate(h);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn wrap_indents_continuations_and_keeps_every_character() {
        let l = Line::from(vec![Span::raw("> "), Span::raw("abcdefghij")]);
        let out = wrap(l, 5, 2);
        let t: Vec<String> = out.iter().map(text).collect();
        assert_eq!(t, vec!["> abc", "  def", "  ghi", "  j"]);
    }

    #[test]
    fn skip_cols_drops_columns_across_spans() {
        let out = skip_cols(vec![Span::raw("ab"), Span::raw("cdef")], 3);
        let t: String = out.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(t, "def");
        let out = skip_cols(vec![Span::raw("日本")], 1);
        assert_eq!(out[0].content, "本", "a cut wide character goes whole");
    }
}
