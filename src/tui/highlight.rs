//! Syntax colors for the diff rows on screen (syntect, Sublime Text grammars), with guardrails.
//!
//! Invariants: work happens only for hunks that are on screen, one hunk at a time, memoized (the
//! cache is cleared past [`MAX_CACHED_HUNKS`], so memory stays bounded); hunks longer than
//! [`MAX_HUNK_LINES`], lines longer than [`MAX_LINE_BYTES`] and unknown file types are left plain.
//! The two sides of a hunk keep separate parser states (old: context + removed, new: context +
//! added) so multi-line constructs stay right on both. The grammars load once, on first use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;

use ratatui::style::Color;
use syntect::easy::HighlightLines;
use syntect::highlighting::{Theme, ThemeSet};
use syntect::parsing::SyntaxSet;

pub const MAX_HUNK_LINES: usize = 3000;
pub const MAX_LINE_BYTES: usize = 400;
pub const MAX_CACHED_HUNKS: usize = 256;

/// Foreground colors over byte ranges of one line body (without its `+`/`-`/` ` prefix).
pub type Runs = Vec<(Range<usize>, Color)>;

/// Per-line runs of one hunk (`None` where the line was left plain).
pub type HunkRuns = Rc<Vec<Option<Runs>>>;

struct Assets {
    syntaxes: SyntaxSet,
    theme: Theme,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut themes = ThemeSet::load_defaults();
        Assets {
            syntaxes: SyntaxSet::load_defaults_newlines(),
            theme: themes
                .themes
                .remove("base16-ocean.dark")
                .unwrap_or_default(),
        }
    })
}

/// Loads the grammars and theme (about 0.1 s) so the first diff on screen does not wait for them.
/// The terminal loop calls this on a background thread at start.
pub fn warm_up() {
    let _ = assets();
}

/// A memo of highlighted hunks; cloning gives an empty one.
#[derive(Debug, Default)]
pub struct Highlighter {
    cache: RefCell<HashMap<(u32, u32), Option<HunkRuns>>>,
}

impl Clone for Highlighter {
    fn clone(&self) -> Self {
        Highlighter::default()
    }
}

/// The nearest xterm-256 color, so terminals without true color show something close.
fn to_color(c: syntect::highlighting::Color) -> Color {
    let level = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            (v - 35) / 40
        }
    };
    let (r, g, b) = (level(c.r), level(c.g), level(c.b));
    Color::Indexed(16 + 36 * r + 6 * g + b)
}

fn highlight(h: &mut HighlightLines<'_>, text: &str, ss: &SyntaxSet) -> Option<Runs> {
    let regions = h.highlight_line(text, ss).ok()?;
    let body_len = text.len().saturating_sub(1);
    let mut pos = 0;
    let mut runs = Vec::with_capacity(regions.len());
    for (style, s) in regions {
        let end = (pos + s.len()).min(body_len);
        if end > pos {
            runs.push((pos..end, to_color(style.foreground)));
        }
        pos += s.len();
    }
    Some(runs)
}

impl Highlighter {
    /// Runs for every line of hunk `hunk` of file `file` (at `path`), or `None` when the hunk is
    /// left plain.
    pub fn hunk(&self, file: u32, hunk: u32, path: &str, lines: &[String]) -> Option<HunkRuns> {
        if let Some(hit) = self.cache.borrow().get(&(file, hunk)) {
            return hit.clone();
        }
        let result = Self::compute(path, lines);
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= MAX_CACHED_HUNKS {
            cache.clear();
        }
        cache.insert((file, hunk), result.clone());
        result
    }

    fn compute(path: &str, lines: &[String]) -> Option<HunkRuns> {
        if lines.len() > MAX_HUNK_LINES {
            return None;
        }
        let ext = Path::new(path).extension()?.to_str()?;
        let a = assets();
        let syntax = a.syntaxes.find_syntax_by_extension(ext)?;
        let mut old = HighlightLines::new(syntax, &a.theme);
        let mut new = HighlightLines::new(syntax, &a.theme);
        let mut out = Vec::with_capacity(lines.len());
        for l in lines {
            let mut chars = l.chars();
            let sign = chars.next().unwrap_or(' ');
            let body = chars.as_str().trim_end_matches(['\n', '\r']);
            if body.len() > MAX_LINE_BYTES {
                out.push(None);
                continue;
            }
            let text = format!("{body}\n");
            let runs = match sign {
                '+' => highlight(&mut new, &text, &a.syntaxes),
                '-' => highlight(&mut old, &text, &a.syntaxes),
                ' ' => {
                    let _ = highlight(&mut old, &text, &a.syntaxes);
                    highlight(&mut new, &text, &a.syntaxes)
                }
                _ => None,
            };
            out.push(runs);
        }
        Some(Rc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_known_languages_and_leaves_the_rest_plain() {
        let h = Highlighter::default();
        let lines: Vec<String> = ["+def divide(a, b):\n", "+    return a / b\n"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let runs = h.hunk(0, 0, "calc.py", &lines).unwrap();
        let first = runs[0].as_ref().unwrap();
        assert!(first.len() > 1, "keyword and name differ: {first:?}");
        assert_eq!(first.last().unwrap().0.end, "def divide(a, b):".len());
        assert!(h.hunk(0, 1, "notes.unknownext", &lines).is_none());
        let long = vec![format!("+{}\n", "x".repeat(MAX_LINE_BYTES + 1))];
        assert!(h.hunk(0, 2, "a.py", &long).unwrap()[0].is_none());
        let many = vec!["+x\n".to_string(); MAX_HUNK_LINES + 1];
        assert!(h.hunk(0, 3, "a.py", &many).is_none());
    }

    #[test]
    fn maps_to_the_256_color_cube() {
        let c = |r, g, b| to_color(syntect::highlighting::Color { r, g, b, a: 255 });
        assert_eq!(c(0, 0, 0), Color::Indexed(16));
        assert_eq!(c(255, 255, 255), Color::Indexed(231));
        assert_eq!(c(255, 0, 0), Color::Indexed(196));
    }
}
