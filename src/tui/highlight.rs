//! Syntax colors for the diff rows on screen (syntect, Sublime Text grammars), with guardrails.
//!
//! Invariants: work happens only for lines that are on screen and the lines above them in their
//! hunk (a parser must see those first), memoized per hunk together with the parser states, so a
//! hunk scrolling into view is parsed a screenful at a time, never twice (the cache is cleared
//! past [`MAX_CACHED_HUNKS`], so memory stays bounded); hunks longer than [`MAX_HUNK_LINES`],
//! lines longer than [`MAX_LINE_BYTES`] and unknown file types are left plain.
//! The two sides of a hunk keep separate parser states (old: context + removed, new: context +
//! added) so multi-line constructs stay right on both; a context line is parsed once when both
//! states are equal (the usual case), as the result is then the same. The grammars load once, on
//! first use.
//!
//! Each frame parses at most [`FRAME_BUDGET`] units of new lines (counted, not timed, so a frame
//! shows the same thing on any machine): the diff pane calls [`Highlighter::begin_frame`] before
//! drawing, a line the budget does not reach is drawn without syntax colors (`None`), and the
//! highlighter records that more is to do ([`Highlighter::take_pending`]); the terminal loop then
//! draws one more frame, so the colors fill in a budget at a time. A frame that reaches every line
//! it asks for leaves nothing pending, so an idle screen stops redrawing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use ratatui::style::Color;
use syntect::highlighting::{
    HighlightIterator, HighlightState, Highlighter as Styler, Theme, ThemeSet,
};
use syntect::parsing::{ParseState, ScopeStack, SyntaxSet};

pub const MAX_HUNK_LINES: usize = 3000;
pub const MAX_LINE_BYTES: usize = 400;
pub const MAX_CACHED_HUNKS: usize = 256;

/// Parsing allowed in one frame, in units of [`line_cost`]. syntect's pure-Rust regex engine
/// takes 0.2–0.45 ms for a line of ordinary code on the 2-core development machine (release
/// bench, and a unit test under load: `docs/sbs.md`), so 16 units are 3.5–7 ms; with the ~1 ms
/// the rest of a 200×60 frame costs, a frame stays well under 16 ms (60 per second) with room for
/// a loaded machine or a slower grammar. The cost is counted rather than timed so that what a
/// frame shows depends on the model alone.
pub const FRAME_BUDGET: usize = 16;
/// A line body costs one unit per started `UNIT_BYTES` (the parse time grows with the length),
/// twice over for a context line parsed once per side.
pub const UNIT_BYTES: usize = 80;

// Any single line fits in a fresh budget, so every frame makes progress.
const _: () = assert!(2 * MAX_LINE_BYTES.div_ceil(UNIT_BYTES) <= FRAME_BUDGET);

/// The budget units one parse of a line body of `len` bytes costs.
fn line_cost(len: usize) -> usize {
    len.div_ceil(UNIT_BYTES).max(1)
}

/// Foreground colors over byte ranges of one line body (without its `+`/`-`/` ` prefix).
pub type Runs = Vec<(Range<usize>, Color)>;

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

/// How far one hunk is highlighted, and the parsers to go on from there.
struct Progress {
    styler: Styler<'static>,
    old: Side,
    new: Side,
    /// Runs of the hunk's first `runs.len()` lines (`None` where a line was left plain).
    runs: Vec<Option<Runs>>,
}

/// A memo of highlighted hunks (`None`: the hunk is left plain) and this frame's parse budget;
/// cloning gives an empty one.
pub struct Highlighter {
    cache: RefCell<HashMap<(u32, u32), Option<Progress>>>,
    /// Units of parsing left in this frame.
    budget: Cell<usize>,
    /// A line asked for since the last [`Highlighter::take_pending`] was left plain for want
    /// of budget.
    pending: Cell<bool>,
}

impl Default for Highlighter {
    fn default() -> Self {
        Highlighter {
            cache: RefCell::default(),
            budget: Cell::new(FRAME_BUDGET),
            pending: Cell::new(false),
        }
    }
}

impl Clone for Highlighter {
    fn clone(&self) -> Self {
        Highlighter::default()
    }
}

impl std::fmt::Debug for Highlighter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highlighter")
            .field("hunks", &self.cache.borrow().len())
            .field("budget", &self.budget.get())
            .field("pending", &self.pending.get())
            .finish()
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

/// One side's parser and style state after the lines it has seen.
#[derive(Clone, PartialEq, Eq)]
struct Side {
    parse: ParseState,
    styles: HighlightState,
}

impl Side {
    /// Runs for `text` (one line with its newline), advancing the state past it.
    fn highlight(&mut self, styler: &Styler<'_>, text: &str) -> Option<Runs> {
        let ops = self.parse.parse_line(text, &assets().syntaxes).ok()?;
        let regions = HighlightIterator::new(&mut self.styles, &ops, text, styler);
        Some(to_runs(regions, text.len().saturating_sub(1)))
    }
}

fn to_runs<'t>(
    regions: impl Iterator<Item = (syntect::highlighting::Style, &'t str)>,
    body_len: usize,
) -> Runs {
    let mut pos = 0;
    let mut runs = Vec::new();
    for (style, s) in regions {
        let end = (pos + s.len()).min(body_len);
        if end > pos {
            runs.push((pos..end, to_color(style.foreground)));
        }
        pos += s.len();
    }
    runs
}

impl Highlighter {
    /// Starts a frame: a fresh parse budget, nothing pending yet.
    pub fn begin_frame(&self) {
        self.budget.set(FRAME_BUDGET);
        self.pending.set(false);
    }

    /// Whether a line was drawn plain for want of budget since the last call (or
    /// [`Highlighter::begin_frame`]), i.e. another frame would show more colors; clears it.
    pub fn take_pending(&self) -> bool {
        self.pending.take()
    }

    /// Runs for line `line` of hunk `hunk` of file `file` (at `path`, body `lines`), or `None`
    /// when it is left plain — for good, or for this frame when the budget ran out first (then
    /// it is recorded as pending). The hunk is parsed only as far as that line.
    pub fn line(
        &self,
        file: u32,
        hunk: u32,
        path: &str,
        lines: &[Vec<u8>],
        line: usize,
    ) -> Option<Runs> {
        let mut cache = self.cache.borrow_mut();
        if !cache.contains_key(&(file, hunk)) && cache.len() >= MAX_CACHED_HUNKS {
            cache.clear();
        }
        let progress = cache
            .entry((file, hunk))
            .or_insert_with(|| Progress::start(path, lines.len()))
            .as_mut()?;
        if !progress.advance(lines, line, &self.budget) {
            self.pending.set(true);
            return None;
        }
        progress.runs.get(line).cloned().flatten()
    }
}

impl Progress {
    /// Parsers for a hunk of `len` lines at `path`, or `None` when it is left plain.
    fn start(path: &str, len: usize) -> Option<Progress> {
        if len > MAX_HUNK_LINES {
            return None;
        }
        let ext = Path::new(path).extension()?.to_str()?;
        let a = assets();
        let syntax = a.syntaxes.find_syntax_by_extension(ext)?;
        let styler = Styler::new(&a.theme);
        let side = Side {
            parse: ParseState::new(syntax),
            styles: HighlightState::new(&styler, ScopeStack::new()),
        };
        Some(Progress {
            styler,
            old: side.clone(),
            new: side,
            runs: Vec::new(),
        })
    }

    /// Highlights the lines after the last one done, through line `upto`, taking their cost
    /// from `budget`; `false` when the budget ran out before `upto`.
    fn advance(&mut self, lines: &[Vec<u8>], upto: usize, budget: &Cell<usize>) -> bool {
        while self.runs.len() <= upto {
            let Some(l) = lines.get(self.runs.len()) else {
                return true;
            };
            // Drawn as the diff pane draws it: decoded lossily.
            let l = String::from_utf8_lossy(l);
            let mut chars = l.chars();
            let sign = chars.next().unwrap_or(' ');
            let body = chars.as_str().trim_end_matches(['\n', '\r']);
            if body.len() > MAX_LINE_BYTES {
                self.runs.push(None);
                continue;
            }
            // A context line is parsed once when both sides are in the same state.
            let shared = sign == ' ' && self.old == self.new;
            let cost = match sign {
                '+' | '-' => line_cost(body.len()),
                ' ' if shared => line_cost(body.len()),
                ' ' => 2 * line_cost(body.len()),
                _ => 0,
            };
            let Some(left) = budget.get().checked_sub(cost) else {
                return false;
            };
            budget.set(left);
            let text = format!("{body}\n");
            let runs = match sign {
                '+' => self.new.highlight(&self.styler, &text),
                '-' => self.old.highlight(&self.styler, &text),
                ' ' if shared => {
                    let runs = self.new.highlight(&self.styler, &text);
                    self.old = self.new.clone();
                    runs
                }
                ' ' => {
                    let _ = self.old.highlight(&self.styler, &text);
                    self.new.highlight(&self.styler, &text)
                }
                _ => None,
            };
            self.runs.push(runs);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn colors_known_languages_and_leaves_the_rest_plain() {
        let h = Highlighter::default();
        let lines = lines(&["+def divide(a, b):\n", "+    return a / b\n"]);
        let first = h.line(0, 0, "calc.py", &lines, 0).unwrap();
        assert!(first.len() > 1, "keyword and name differ: {first:?}");
        assert_eq!(first.last().unwrap().0.end, "def divide(a, b):".len());
        assert!(h.line(0, 1, "notes.unknownext", &lines, 0).is_none());
        let long = vec![format!("+{}\n", "x".repeat(MAX_LINE_BYTES + 1)).into_bytes()];
        assert!(h.line(0, 2, "a.py", &long, 0).is_none());
        let many = vec![b"+x\n".to_vec(); MAX_HUNK_LINES + 1];
        assert!(h.line(0, 3, "a.py", &many, 0).is_none());
        assert!(h.line(0, 0, "calc.py", &lines, 2).is_none(), "past the end");
    }

    #[test]
    fn parses_only_as_far_as_asked_and_keeps_state_across_calls() {
        let h = Highlighter::default();
        // A string opened on line 0 and closed on line 2: line 1 is inside it, on both sides.
        let lines = lines(&[
            " s = \"\"\"start\n",
            "-old inside\n",
            "+new inside\n",
            " end\"\"\"\n",
        ]);
        let done = |h: &Highlighter| {
            h.cache.borrow()[&(0, 0)]
                .as_ref()
                .map_or(0, |p| p.runs.len())
        };
        h.line(0, 0, "a.py", &lines, 0);
        assert_eq!(done(&h), 1, "one line parsed for the first line");
        let step = h.line(0, 0, "a.py", &lines, 2).unwrap();
        assert_eq!(done(&h), 3);
        // The same line highlighted in one go, by a fresh highlighter.
        let whole = Highlighter::default()
            .line(1, 1, "a.py", &lines, 2)
            .unwrap();
        assert_eq!(step, whole, "incremental and whole parses agree");
        let inside = h.line(0, 0, "a.py", &lines, 1).unwrap();
        let plain = Highlighter::default()
            .line(0, 0, "a.py", &self::lines(&["-old inside\n"]), 0)
            .unwrap();
        assert_ne!(inside, plain, "the string state carried over from line 0");
        assert_eq!(done(&h), 3, "asking again parses nothing");
    }

    #[test]
    fn context_lines_follow_each_side_when_the_sides_differ() {
        let h = Highlighter::default();
        // The old side opens a string that the new side does not: the context line and the
        // removed line after it are inside the string on the old side only.
        let hunk = lines(&["-s = \"\"\"open\n", "+s = 1\n", " x = 2\n", "-y\n"]);
        let all_new = lines(&["+s = 1\n", "+x = 2\n"]);
        let all_old = lines(&["-s = \"\"\"open\n", "-x = 2\n", "-y\n"]);
        let r = Highlighter::default();
        assert_eq!(
            h.line(0, 0, "a.py", &hunk, 2),
            r.line(0, 0, "a.py", &all_new, 1),
            "context is drawn as the new side sees it"
        );
        assert_eq!(
            h.line(0, 0, "a.py", &hunk, 3),
            r.line(0, 1, "a.py", &all_old, 2),
            "the old side went on inside its string"
        );
        assert_ne!(
            r.line(0, 1, "a.py", &all_old, 1),
            r.line(0, 0, "a.py", &all_new, 1),
            "the two sides do differ here"
        );
    }

    /// A highlighter without a frame budget: the whole parse the budgeted one must agree with.
    fn unbudgeted() -> Highlighter {
        let h = Highlighter::default();
        h.budget.set(usize::MAX);
        h
    }

    fn parsed(h: &Highlighter, hunk: (u32, u32)) -> usize {
        h.cache.borrow()[&hunk].as_ref().map_or(0, |p| p.runs.len())
    }

    #[test]
    fn a_frame_parses_within_its_budget_and_later_frames_fill_in() {
        // 60 short context lines (one unit each: both sides share a state) with a string from
        // line 10 to line 30, so the parser state carried from frame to frame matters; lines
        // 8..60 are on screen.
        let hunk: Vec<Vec<u8>> = (0..60)
            .map(|i| match i {
                10 => " s = \"\"\"open\n".to_string(),
                30 => " close\"\"\"\n".to_string(),
                _ if i % 2 == 0 => format!(" def f_{i}(a, b): return a / b\n"),
                _ => format!(" x_{i} = [1, 2]  # note\n"),
            })
            .map(String::into_bytes)
            .collect();
        let screen = 8..60;
        let full = unbudgeted();
        let want: Vec<Option<Runs>> = screen
            .clone()
            .map(|i| full.line(0, 0, "a.py", &hunk, i))
            .collect();
        assert!(want.iter().all(Option::is_some), "every line has colors");

        let h = Highlighter::default();
        let mut frames = Vec::new();
        loop {
            h.begin_frame();
            let got: Vec<Option<Runs>> = screen
                .clone()
                .map(|i| h.line(0, 0, "a.py", &hunk, i))
                .collect();
            let pending = h.take_pending();
            frames.push(got);
            if !pending {
                break;
            }
            assert!(frames.len() < 10, "the colors never filled in");
        }
        let first = &frames[0];
        assert_eq!(
            first.iter().filter(|r| r.is_some()).count(),
            FRAME_BUDGET - 8
        );
        assert!(
            first[FRAME_BUDGET - 8..].iter().all(Option::is_none),
            "left plain"
        );
        for (got, want) in first.iter().zip(&want) {
            if got.is_some() {
                assert_eq!(got, want, "what a frame colors is the full parse's");
            }
        }
        assert_eq!(frames.len(), hunk.len().div_ceil(FRAME_BUDGET));
        assert_eq!(frames.last(), Some(&want), "once done, the full parse");
        assert_eq!(parsed(&h, (0, 0)), hunk.len(), "each line parsed once");
        h.begin_frame();
        for i in screen {
            h.line(0, 0, "a.py", &hunk, i);
        }
        assert!(!h.take_pending(), "a done screen asks for no more frames");
        assert!(!h.take_pending(), "taking clears");
    }

    #[test]
    fn long_lines_and_lines_parsed_per_side_cost_more() {
        assert_eq!(line_cost(0), 1);
        assert_eq!(line_cost(UNIT_BYTES), 1);
        assert_eq!(line_cost(UNIT_BYTES + 1), 2);
        // 300-byte lines cost 4 units: four of them fill a frame.
        let long: Vec<Vec<u8>> = (0..6)
            .map(|i| format!("+x_{i} = \"{}\"\n", "y".repeat(290)).into_bytes())
            .collect();
        let h = Highlighter::default();
        h.begin_frame();
        assert!(h.line(0, 0, "a.py", &long, 5).is_none());
        assert!(h.take_pending());
        assert_eq!(parsed(&h, (0, 0)), FRAME_BUDGET / 4);
        // Sides in different states: each context line is parsed twice, for 2 units.
        let split: Vec<Vec<u8>> = ["-s = \"\"\"open\n".to_string(), "+s = 1\n".to_string()]
            .into_iter()
            .chain((0..20).map(|i| format!(" x = {i}\n")))
            .map(String::into_bytes)
            .collect();
        h.begin_frame();
        assert!(h.line(0, 1, "a.py", &split, 21).is_none());
        assert_eq!(parsed(&h, (0, 1)), 2 + (FRAME_BUDGET - 2) / 2);
    }

    #[test]
    fn maps_to_the_256_color_cube() {
        let c = |r, g, b| to_color(syntect::highlighting::Color { r, g, b, a: 255 });
        assert_eq!(c(0, 0, 0), Color::Indexed(16));
        assert_eq!(c(255, 255, 255), Color::Indexed(231));
        assert_eq!(c(255, 0, 0), Color::Indexed(196));
    }
}
