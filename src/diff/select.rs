//! The approved subset of a patch: files, hunks and single lines left out, the rest rebuilt
//! byte for byte.
//!
//! Invariants: a kept file's header and a kept hunk's body are copied verbatim; only the ranges
//! of a kept hunk's `@@` line are rewritten (its section bytes stay), with the new-side start
//! renumbered so that `git apply` accepts the result exactly, without offsets or fuzz. A line
//! left out of a hunk changes only its own line: a `+` line is dropped (with its `\ No newline`
//! marker), a `-` line is kept as context (its bytes after the sign untouched), and the hunk's
//! ranges are counted again; a hunk with no change left is dropped. Where a line cannot be left
//! out on its own — in a deleted file, or a `-` line that has a `\ No newline` marker (as context
//! it would have to end the file) — the whole hunk is left out instead, so nothing goes in that
//! was not approved ([`check_selection`] refuses such a selection up front).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write as _;

use super::Selection;
use super::{FilePatch, Hunk, parse, parse_hunk_header};

/// The patch with the excluded files, hunks and lines left out.
pub fn filter(patch: &[u8], selection: &Selection) -> Vec<u8> {
    if selection.is_everything() {
        return patch.to_vec();
    }
    let mut out = Vec::with_capacity(patch.len());
    for file in parse(patch) {
        if selection.excluded_files.contains(&file.path) {
            continue;
        }
        let excluded = |i: usize| {
            selection
                .excluded_hunks
                .iter()
                .any(|(p, h)| *p == file.path && *h == i)
        };
        let lines_out = |i: usize| -> BTreeSet<usize> {
            selection
                .excluded_lines
                .iter()
                .filter(|(p, h, _)| *p == file.path && *h == i)
                .map(|(_, _, l)| *l)
                .collect()
        };
        let touched = |i: usize| excluded(i) || !lines_out(i).is_empty();
        if file.hunks.is_empty() || !(0..file.hunks.len()).any(touched) {
            file.write_to(&mut out);
            continue;
        }
        let kept: Vec<Cow<'_, Hunk>> = file
            .hunks
            .iter()
            .enumerate()
            .filter(|(i, _)| !excluded(*i))
            .filter_map(|(i, h)| {
                let out = lines_out(i);
                if out.is_empty() {
                    Some(Cow::Borrowed(h))
                } else if file.is_deleted() {
                    None
                } else {
                    without_lines(h, &out).map(Cow::Owned)
                }
            })
            .collect();
        // A new or deleted file cannot be applied in part of a single hunk; all-out means no file.
        if kept.is_empty() {
            continue;
        }
        write_kept(&file, &kept, &mut out);
    }
    out
}

/// Whether body line `i` of `h` may be left out on its own: a `+` or `-` line, and not a `-` line
/// with a `\ No newline` marker after it.
pub fn line_selectable(h: &Hunk, i: usize) -> bool {
    match h.lines.get(i).and_then(|l| l.first()) {
        Some(b'+') => true,
        Some(b'-') => h.lines.get(i + 1).and_then(|l| l.first()) != Some(&b'\\'),
        _ => false,
    }
}

/// `h` with the body lines `out` left out (see the module doc), its ranges counted again; `None`
/// when no change is left, or a line cannot be left out on its own (the hunk goes whole).
fn without_lines(h: &Hunk, out: &BTreeSet<usize>) -> Option<Hunk> {
    if out.iter().any(|&i| !line_selectable(h, i)) {
        return None;
    }
    let mut lines = Vec::with_capacity(h.lines.len());
    let mut dropped_plus = false;
    for (i, l) in h.lines.iter().enumerate() {
        match l.first() {
            Some(b'\\') if dropped_plus => {}
            Some(b'+') if out.contains(&i) => dropped_plus = true,
            Some(b'-') if out.contains(&i) => {
                let mut c = l.clone();
                c[0] = b' ';
                lines.push(c);
                dropped_plus = false;
            }
            _ => {
                lines.push(l.clone());
                dropped_plus = false;
            }
        }
    }
    let count = |signs: &[u8]| {
        lines
            .iter()
            .filter(|l| l.first().is_some_and(|c| signs.contains(c)))
            .count() as u64
    };
    if count(b"+-") == 0 {
        return None;
    }
    Some(Hunk {
        old_len: count(b" -"),
        new_len: count(b" +"),
        lines,
        ..h.clone()
    })
}

fn write_kept(file: &FilePatch, kept: &[Cow<'_, Hunk>], out: &mut Vec<u8>) {
    for l in &file.header {
        out.extend_from_slice(l);
    }
    let mut delta: i64 = 0;
    for h in kept {
        // git numbers an empty side by the line before it.
        let base = h.old_start as i64 + delta;
        let new_start = match (h.old_len, h.new_len) {
            (0, _) => base + 1,
            (_, 0) => base - 1,
            _ => base,
        }
        .max(0);
        let range = |start: i64, len: u64| {
            if len == 1 {
                format!("{start}")
            } else {
                format!("{start},{len}")
            }
        };
        let _ = write!(
            out,
            "@@ -{} +{} @@",
            range(h.old_start as i64, h.old_len),
            range(new_start, h.new_len)
        );
        match parse_hunk_header(&h.header) {
            Some(parsed) => out.extend_from_slice(&h.header[parsed.tail..]),
            None => out.push(b'\n'),
        }
        for l in &h.lines {
            out.extend_from_slice(l);
        }
        delta += h.new_len as i64 - h.old_len as i64;
    }
}

/// A selection that names a file or hunk the patch does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectionError {
    /// Whether an excluded hunk (rather than an excluded file) was wrong.
    pub in_hunks: bool,
    pub message: String,
}

/// Checks that every file and hunk `selection` names is in `patch`, so a mistyped path is an error
/// rather than a PR that quietly keeps what was meant to go. Hunks count from 0.
pub fn check_selection(patch: &[u8], selection: &Selection) -> Result<(), SelectionError> {
    let files = parse(patch);
    let listing = || {
        let shown: Vec<String> = files
            .iter()
            .map(|f| format!("{} ({} hunks)", f.path, f.hunks.len()))
            .collect();
        shown.join(", ")
    };
    let find = |path: &str| files.iter().find(|f| f.path == path);
    let missing = |path: &str, in_hunks| SelectionError {
        in_hunks,
        message: format!(
            "'{path}' is not in the run's patch; its files are: {}",
            listing()
        ),
    };
    for path in &selection.excluded_files {
        if find(path).is_none() {
            return Err(missing(path, false));
        }
    }
    for (path, hunk) in &selection.excluded_hunks {
        match find(path) {
            None => return Err(missing(path, true)),
            Some(f) if *hunk >= f.hunks.len() => {
                return Err(SelectionError {
                    in_hunks: true,
                    message: format!(
                        "'{path}' has {} hunks in the run's patch; hunk number {} (counting from 1) is not one of them",
                        f.hunks.len(),
                        hunk + 1
                    ),
                });
            }
            Some(_) => {}
        }
    }
    for (path, hunk, line) in &selection.excluded_lines {
        let f = find(path).ok_or_else(|| missing(path, true))?;
        let h = f.hunks.get(*hunk).ok_or_else(|| SelectionError {
            in_hunks: true,
            message: format!("'{path}' has no hunk number {}", hunk + 1),
        })?;
        if f.is_deleted() || !line_selectable(h, *line) {
            return Err(SelectionError {
                in_hunks: true,
                message: format!(
                    "line {} of hunk {} of '{path}' cannot be left out on its own (a deleted \
                     file, not a + or - line, or a - line without a final newline)",
                    line + 1,
                    hunk + 1
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::tests::PATCH;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn a_selection_naming_what_is_not_there_is_refused() {
        let sel = |files: &[&str], hunks: &[(&str, usize)]| Selection {
            excluded_files: files.iter().map(|f| f.to_string()).collect(),
            excluded_hunks: hunks.iter().map(|(p, h)| (p.to_string(), *h)).collect(),
            ..Default::default()
        };
        let patch = PATCH.as_bytes();
        assert_eq!(
            check_selection(patch, &sel(&["NOTES.md"], &[("calc.py", 1)])),
            Ok(())
        );
        let err = check_selection(patch, &sel(&["calc.rs"], &[])).unwrap_err();
        assert!(!err.in_hunks);
        assert!(
            err.message.contains("'calc.rs'") && err.message.contains("calc.py (2 hunks)"),
            "{err}"
        );
        let err = check_selection(patch, &sel(&[], &[("calc.py", 2)])).unwrap_err();
        assert!(err.in_hunks);
        assert!(err.message.contains("has 2 hunks"), "{err}");
        let err = check_selection(patch, &sel(&[], &[("nope.py", 0)])).unwrap_err();
        assert!(err.in_hunks && err.message.contains("'nope.py'"), "{err}");
    }

    #[test]
    fn filter_nothing_is_identity() {
        assert_eq!(
            filter(PATCH.as_bytes(), &Selection::default()),
            PATCH.as_bytes()
        );
    }

    #[test]
    fn filter_drops_a_hunk_and_renumbers_the_rest() {
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("calc.py".into(), 0)],
            ..Default::default()
        };
        let out = text(filter(PATCH.as_bytes(), &sel));
        assert!(!out.contains("raise ValueError"));
        assert!(out.contains("@@ -10,2 +10,3 @@ def mul(a, b):\n"), "{out}");
        assert!(out.contains("NOTES.md"));
    }

    #[test]
    fn a_renumbered_hunk_keeps_its_section_and_body_bytes() {
        let patch: &[u8] = b"diff --git a/l.txt b/l.txt\n--- a/l.txt\n+++ b/l.txt\n\
            @@ -1 +1,2 @@\n a\n+\xe9\r\n@@ -9 +10 @@ caf\xe9\r\n-\xff\n+\xfe\n";
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("l.txt".into(), 0)],
            ..Default::default()
        };
        let out = filter(patch, &sel);
        assert_eq!(
            out,
            b"diff --git a/l.txt b/l.txt\n--- a/l.txt\n+++ b/l.txt\n\
              @@ -9 +9 @@ caf\xe9\r\n-\xff\n+\xfe\n"
        );
    }

    #[test]
    fn every_single_hunk_exclusion_applies_with_git() {
        use std::process::Command;
        let t = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(args)
                .current_dir(t.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        git(&["init", "-q"]);
        let before: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(t.path().join("f.txt"), &before).unwrap();
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "base",
        ]);
        let mut lines: Vec<String> = before.lines().map(str::to_string).collect();
        lines.insert(2, "inserted early".into()); // pure insertion
        lines.retain(|l| l != "line 15" && l != "line 16"); // pure deletion
        lines
            .iter_mut()
            .filter(|l| *l == "line 30")
            .for_each(|l| *l = "changed 30".into());
        lines.push("appended".into());
        std::fs::write(t.path().join("f.txt"), lines.join("\n") + "\n").unwrap();
        let patch = git(&["diff", "-U1"]);
        let hunks = parse(&patch)[0].hunks.len();
        assert_eq!(hunks, 4, "{}", String::from_utf8_lossy(&patch));
        for skip in 0..hunks {
            let sel = Selection {
                excluded_files: vec![],
                excluded_hunks: vec![("f.txt".into(), skip)],
                ..Default::default()
            };
            let filtered = filter(&patch, &sel);
            git(&["checkout", "-q", "--", "f.txt"]);
            std::fs::write(t.path().join("p.diff"), &filtered).unwrap();
            git(&["apply", "--check", "-C1", "p.diff"]);
            git(&["apply", "p.diff"]);
            // Exact numbering: git's own diff of the result has the very same hunks.
            let actual = git(&["diff", "-U1"]);
            assert_eq!(
                parse(&actual)[0].hunks,
                parse(&filtered)[0].hunks,
                "skip {skip}"
            );
        }
    }

    #[test]
    fn filter_drops_files() {
        let sel = Selection {
            excluded_files: vec!["NOTES.md".into()],
            excluded_hunks: vec![],
            ..Default::default()
        };
        let out = text(filter(PATCH.as_bytes(), &sel));
        assert!(!out.contains("NOTES.md"));
        assert!(out.contains("rename to new.txt"));
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("NOTES.md".into(), 0)],
            ..Default::default()
        };
        assert!(!text(filter(PATCH.as_bytes(), &sel)).contains("NOTES.md"));
    }
}
