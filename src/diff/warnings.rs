//! Per-file warnings computed from the patch: what a reviewer must not miss in a change, because
//! it reads differently from what it does (Trojan Source bidi overrides, zero-width characters,
//! terminal escapes, line-ending flips), because the diff cannot show it (binary), or because it
//! steers git itself (`.gitattributes`, `.git/…`, hooks).
//!
//! Input is one file's section of a `git diff --binary` unified patch, as raw bytes (from its
//! `diff --git` line to the next one), and the file's path as bytes. Nothing here assumes UTF-8:
//! invalid sequences are skipped (they are not [`Warning::HiddenUnicode`]) and never panic.
//!
//! The rule: content warnings look at **added lines only** (and at the paths). A hidden character
//! already in a context or removed line was there before the change; flagging it would blame the
//! change for it. [`Warning::LineEndings`] compares added lines with the old lines the patch shows.
//!
//! The codes (serialized in snake_case; `Diff.files[].warnings`):
//! - `hidden_unicode`: an added line or the path holds a character [`crate::sanitize::is_hidden`]
//!   names — bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), zero-width
//!   characters (U+200B–U+200D, U+2060), U+FEFF anywhere but the very start of the file, the
//!   other invisible format characters (category Cf), tag characters (U+E0000–U+E007F), the blank
//!   Hangul fillers, U+2028/U+2029 — or two variation selectors in a row (one after a base
//!   character is an ordinary emoji or CJK variant; a run of them carries hidden data). Emoji
//!   sequences joined by U+200D are flagged too: a false alarm there is cheap.
//! - `control_chars`: an added line or the path holds a C0 control other than tab (a CR counts
//!   unless it ends the line, before its LF), DEL, or a C1 control (U+0080–U+009F, encoded as
//!   UTF-8); ESC is the one that matters most (terminal escape sequences).
//! - `line_endings`: (1) an added line equals a removed line of the same hunk except for its
//!   line ending (LF ↔ CRLF): the change flips the ending of an existing line; or (2) the added
//!   lines use an ending that none of the old lines the patch shows (context and removed) use:
//!   CRLF into an LF file, LF into a CRLF file; or (3) the patch shows no old line (a new file,
//!   `-U0`) and the added lines mix LF and CRLF. A line without a newline at the end of the file
//!   has no ending and takes part in none of these.
//! - `binary`: the section carries `GIT binary patch` or `Binary files … differ`.
//! - `git_control`: a path (the new one, the old one of a rename or copy) that git or a git
//!   hook manager reads as configuration: a `.git` component anywhere (also spelled `.GIT`,
//!   `.git.`, `git~1`, as case-folding and 8.3-name filesystems read it); a file named
//!   `.gitattributes`, `.gitignore`, `.gitmodules`, `.mailmap`, `.git-blame-ignore-revs`,
//!   `.lfsconfig` or `.pre-commit-config.yaml` in any directory (compared case-insensitively);
//!   anything inside a `.githooks` or `.husky` directory. CI configuration (`.github/workflows`)
//!   is not git control and is not flagged here.
//! - `too_large`: defined here so the codes live in one place; set by whoever refuses or cuts a
//!   file for its size, never by this module.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::sanitize::{is_control, is_hidden, is_variation_selector};

/// One reason to look twice at a file. The order is the order of severity shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    HiddenUnicode,
    ControlChars,
    GitControl,
    LineEndings,
    Binary,
    TooLarge,
}

impl Warning {
    pub const ALL: [Warning; 6] = [
        Warning::HiddenUnicode,
        Warning::ControlChars,
        Warning::GitControl,
        Warning::LineEndings,
        Warning::Binary,
        Warning::TooLarge,
    ];

    /// The code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Warning::HiddenUnicode => "hidden_unicode",
            Warning::ControlChars => "control_chars",
            Warning::GitControl => "git_control",
            Warning::LineEndings => "line_endings",
            Warning::Binary => "binary",
            Warning::TooLarge => "too_large",
        }
    }

    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Warning::HiddenUnicode => "hidden or bidi characters",
            Warning::ControlChars => "control characters",
            Warning::GitControl => "git configuration",
            Warning::LineEndings => "line endings change",
            Warning::Binary => "binary",
            Warning::TooLarge => "too large to show",
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The warnings of one file: `path` and its section of the patch (see the module doc).
pub fn file_warnings(path: &[u8], file_patch: &[u8]) -> Vec<Warning> {
    let mut scan = Scanner::new(path);
    for line in file_patch.split_inclusive(|&b| b == b'\n') {
        scan.line(line);
    }
    scan.finish()
}

/// Adds each file's warnings, from its part of `patch`, to its entry in `files` (by path), after
/// those already there (e.g. `too_large` on a file left out of the patch), without repeats.
pub fn annotate(files: &mut [crate::event::FileStat], patch: &[u8]) {
    for f in super::parse(patch) {
        let found = file_warnings(f.path.as_bytes(), &f.bytes());
        let Some(stat) = files.iter_mut().find(|s| s.path == f.path) else {
            continue;
        };
        for w in found {
            let code = w.code();
            if !stat.warnings.iter().any(|c| c == code) {
                stat.warnings.push(code.to_string());
            }
        }
    }
}

/// The warnings a path alone earns: `hidden_unicode`, `control_chars`, `git_control`.
pub fn path_warnings(path: &[u8]) -> Vec<Warning> {
    let mut found = Found::default();
    check_path(path, &mut found);
    found.list()
}

#[derive(Default, Clone, Copy)]
struct Found(u8);

impl Found {
    fn add(&mut self, w: Warning) {
        self.0 |= 1 << (w as u8);
    }
    fn has(self, w: Warning) -> bool {
        self.0 & (1 << (w as u8)) != 0
    }
    fn list(self) -> Vec<Warning> {
        Warning::ALL.into_iter().filter(|w| self.has(*w)).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Ending {
    Lf,
    CrLf,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Context,
    Removed,
    Added,
}

#[derive(Default, Clone, Copy)]
struct Endings {
    lf: bool,
    crlf: bool,
}

impl Endings {
    fn add(&mut self, e: Ending) {
        match e {
            Ending::Lf => self.lf = true,
            Ending::CrLf => self.crlf = true,
        }
    }
    fn any(self) -> bool {
        self.lf || self.crlf
    }
}

/// One line of the current hunk: its kind, content without the ending, and ending (`None` when
/// a `\ No newline at end of file` follows it).
type HunkLine<'a> = (Kind, &'a [u8], Option<Ending>);

/// Line-by-line form of [`file_warnings`], for callers that hold the section as lines already
/// (feed them in order, each with its newline). A hunk's lines are kept as borrowed slices until
/// the hunk ends; only a hunk whose changed lines mix LF and CRLF compares their contents, so
/// the common case hashes nothing.
pub struct Scanner<'a> {
    found: Found,
    in_hunk: bool,
    /// The new-side number of the next added or context line.
    new_line: u64,
    hunk: Vec<HunkLine<'a>>,
    old: Endings,
    added: Endings,
}

impl<'a> Scanner<'a> {
    pub fn new(path: &[u8]) -> Scanner<'a> {
        let mut found = Found::default();
        check_path(path, &mut found);
        Scanner {
            found,
            in_hunk: false,
            new_line: 1,
            hunk: Vec::new(),
            old: Endings::default(),
            added: Endings::default(),
        }
    }

    /// One line of the section, with its newline.
    pub fn line(&mut self, line: &'a [u8]) {
        if line.starts_with(b"@@ ") {
            self.end_hunk();
            self.in_hunk = true;
            self.new_line = new_start(line).max(1);
            return;
        }
        if !self.in_hunk {
            self.header_line(line);
            return;
        }
        let (kind, body) = match line.first() {
            Some(b'\\') => {
                if let Some(last) = self.hunk.last_mut() {
                    last.2 = None;
                }
                return;
            }
            Some(b'+') => (Kind::Added, &line[1..]),
            Some(b'-') => (Kind::Removed, &line[1..]),
            Some(b' ') => (Kind::Context, &line[1..]),
            // An empty context line whose space was stripped, or anything unexpected.
            _ => (Kind::Context, line),
        };
        let (content, ending) = split_ending(body);
        if kind == Kind::Added {
            check_content(content, self.new_line == 1, &mut self.found);
        }
        if kind != Kind::Removed {
            self.new_line += 1;
        }
        self.hunk.push((kind, content, ending));
    }

    /// The warnings found, in [`Warning`] order.
    pub fn finish(mut self) -> Vec<Warning> {
        self.end_hunk();
        let (old, add) = (self.old, self.added);
        let new_ending = (add.crlf && !old.crlf) || (add.lf && !old.lf);
        if (old.any() && new_ending) || (!old.any() && add.lf && add.crlf) {
            self.found.add(Warning::LineEndings);
        }
        self.found.list()
    }

    fn header_line(&mut self, line: &[u8]) {
        if line.starts_with(b"GIT binary patch") || line.starts_with(b"Binary files ") {
            self.found.add(Warning::Binary);
        }
        for path in header_paths(line) {
            check_path(&path, &mut self.found);
        }
    }

    /// Folds the finished hunk into the file's endings and looks for flipped lines.
    fn end_hunk(&mut self) {
        let mut changed = Endings::default();
        for &(kind, _, ending) in &self.hunk {
            let Some(e) = ending else { continue };
            match kind {
                Kind::Context => self.old.add(e),
                Kind::Removed => {
                    self.old.add(e);
                    changed.add(e);
                }
                Kind::Added => {
                    self.added.add(e);
                    changed.add(e);
                }
            }
        }
        // A flip needs a changed line of each ending; only then compare contents.
        if changed.lf && changed.crlf {
            let mut removed: HashSet<(&[u8], Ending)> = HashSet::new();
            let mut added: HashSet<(&[u8], Ending)> = HashSet::new();
            for &(kind, content, ending) in &self.hunk {
                match (kind, ending) {
                    (Kind::Removed, Some(e)) => {
                        removed.insert((content, e));
                    }
                    (Kind::Added, Some(e)) => {
                        added.insert((content, e));
                    }
                    _ => {}
                }
            }
            if added.iter().any(|&(c, e)| removed.contains(&(c, other(e)))) {
                self.found.add(Warning::LineEndings);
            }
        }
        self.hunk.clear();
    }
}

fn other(e: Ending) -> Ending {
    match e {
        Ending::Lf => Ending::CrLf,
        Ending::CrLf => Ending::Lf,
    }
}

/// The content of a line body and its ending (`None`: no newline, the last line of a patch).
fn split_ending(body: &[u8]) -> (&[u8], Option<Ending>) {
    match body.strip_suffix(b"\n") {
        Some(b) => match b.strip_suffix(b"\r") {
            Some(c) => (c, Some(Ending::CrLf)),
            None => (b, Some(Ending::Lf)),
        },
        None => (body, None),
    }
}

/// `c` of `@@ -a,b +c,d @@`.
fn new_start(line: &[u8]) -> u64 {
    let Some(at) = line.windows(2).position(|w| w == b" +") else {
        return 1;
    };
    line[at + 2..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        })
}

/// Hidden and control characters in added text (or a path). A BOM is allowed only as the very
/// first character of the file (`at_file_start`: this line is new line 1).
fn check_content(content: &[u8], at_file_start: bool, found: &mut Found) {
    // Printable ASCII and tabs, the usual line, need no decoding.
    if content
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        return;
    }
    let mut prev: Option<char> = None;
    let mut first = at_file_start;
    for chunk in content.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\t' {
                // fine
            } else if is_control(c) {
                found.add(Warning::ControlChars);
            } else if is_hidden(c) {
                if !(first && c == '\u{FEFF}') {
                    found.add(Warning::HiddenUnicode);
                }
            } else if is_variation_selector(c) && prev.is_some_and(is_variation_selector) {
                found.add(Warning::HiddenUnicode);
            }
            prev = Some(c);
            first = false;
        }
        if !chunk.invalid().is_empty() {
            prev = None;
            first = false;
        }
    }
}

fn check_path(path: &[u8], found: &mut Found) {
    check_content(path, false, found);
    if is_git_control(path) {
        found.add(Warning::GitControl);
    }
}

/// Lowercased ASCII, trailing dots and spaces dropped (Windows ignores them).
fn normalized(comp: &[u8]) -> Vec<u8> {
    let mut end = comp.len();
    while end > 0 && matches!(comp[end - 1], b'.' | b' ') {
        end -= 1;
    }
    comp[..end].to_ascii_lowercase()
}

const GIT_FILES: [&[u8]; 7] = [
    b".gitattributes",
    b".gitignore",
    b".gitmodules",
    b".mailmap",
    b".git-blame-ignore-revs",
    b".lfsconfig",
    b".pre-commit-config.yaml",
];

fn is_git_control(path: &[u8]) -> bool {
    let comps: Vec<Vec<u8>> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(normalized)
        .collect();
    let Some((last, dirs)) = comps.split_last() else {
        return false;
    };
    comps.iter().any(|c| c == b".git" || c == b"git~1")
        || dirs.iter().any(|d| d == b".githooks" || d == b".husky")
        || GIT_FILES.contains(&last.as_slice())
}

/// The paths a header line names (`diff --git`, `---`/`+++`, `rename`/`copy` `from`/`to`),
/// with git's C-style quoting undone and the `a/`/`b/` prefixes dropped. An unquoted
/// `diff --git` line is ambiguous when a path has spaces and is skipped: its paths are
/// printable ASCII, and the other header lines (or the caller's path) name them.
fn header_paths(line: &[u8]) -> Vec<Vec<u8>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let strip_side = |p: Vec<u8>| -> Option<Vec<u8>> {
        if p == b"/dev/null" {
            return None;
        }
        Some(match p.get(..2) {
            Some(b"a/") | Some(b"b/") => p[2..].to_vec(),
            _ => p,
        })
    };
    if let Some(rest) = line.strip_prefix(b"diff --git ") {
        let mut out = Vec::new();
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix(b"\"") {
            let (p, after) = unquote(r);
            out.extend(strip_side(p));
            rest = after.strip_prefix(b" ").unwrap_or(after);
        }
        // `a/x "b/y"`: the second one quoted only.
        if let Some(q) = rest.windows(2).position(|w| w == b" \"") {
            let (p, _) = unquote(&rest[q + 2..]);
            out.extend(strip_side(p));
        }
        return out;
    }
    for (prefix, sided) in [
        (&b"--- "[..], true),
        (b"+++ ", true),
        (b"rename from ", false),
        (b"rename to ", false),
        (b"copy from ", false),
        (b"copy to ", false),
    ] {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        let p = match rest.strip_prefix(b"\"") {
            Some(q) => unquote(q).0,
            // git ends a path holding a space with a tab on these lines.
            None => rest.strip_suffix(b"\t").unwrap_or(rest).to_vec(),
        };
        return if sided {
            strip_side(p).into_iter().collect()
        } else {
            vec![p]
        };
    }
    Vec::new()
}

/// Undoes git's C-style quoting of a path, up to the closing quote; returns the path and what
/// follows the quote.
fn unquote(s: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => return (out, &s[i + 1..]),
            b'\\' if i + 1 < s.len() => {
                let e = s[i + 1];
                i += 2;
                match e {
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            if let Some(d @ b'0'..=b'7') = s.get(i) {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    b'a' => out.push(0x07),
                    b'b' => out.push(0x08),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'r' => out.push(b'\r'),
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    (out, &[])
}

#[cfg(test)]
#[path = "warnings_tests.rs"]
mod tests;
