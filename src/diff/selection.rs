//! Which parts of the agent's change go into the PR, and how that choice survives a re-diff (a
//! follow-up rewrites the patch) and the end of the process (`selection.json` in the run folder).
//!
//! Invariants: a [`Selection`] names hunks by position in one patch, so it is only ever applied to
//! the patch it was made on; a [`SavedSelection`] names them by path and content instead, so a hunk
//! a follow-up did not change keeps its choice wherever it moved, while a hunk it changed or added
//! starts included (nobody reviewed it yet). Pure: nothing here reads or writes files.

use serde::{Deserialize, Serialize};

use crate::diff;

/// Which hunks go into the PR; the default is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub excluded_files: Vec<String>,
    /// (file path, hunk index within that file).
    pub excluded_hunks: Vec<(String, usize)>,
    /// (file path, hunk index, body line index): single `+`/`-` lines left out of a hunk that is
    /// otherwise in (the TUI's `s`); see [`crate::diff::filter`] for what that means.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_lines: Vec<(String, usize, usize)>,
}

impl Selection {
    pub fn is_everything(&self) -> bool {
        self.excluded_files.is_empty()
            && self.excluded_hunks.is_empty()
            && self.excluded_lines.is_empty()
    }
}

/// One left-out part, recognised by its file's path and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub path: String,
    /// The hunk's index in the patch it was chosen on (`None`: a file without hunks, e.g. binary).
    pub hunk: Option<usize>,
    /// FNV-1a (64 bit, hex) of the hunk's lines, or of a hunk-less file's whole text.
    pub content: String,
    /// Empty: the whole hunk is out. Else the hunk is in but for these body lines (indices into
    /// its lines, valid wherever the same content is found again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<usize>,
}

/// A selection as saved: positional for the patch it was made on, and by content for any other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSelection {
    pub selection: Selection,
    pub left_out: Vec<LeftOut>,
}

/// A saved selection applied to a patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub selection: Selection,
    /// Left-out parts found again (their choice is kept).
    pub kept: usize,
    /// Left-out parts no longer in the patch as they were (changed or gone): now included if
    /// still there in another form.
    pub changed: usize,
}

fn fnv1a<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for b in chunk {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

// Keys hash the content as decoded for drawing, so a patch read as bytes from the run folder and
// the same patch as the TUI holds it (decoded) give the same keys.
fn hunk_key(h: &diff::Hunk) -> String {
    let lines: Vec<String> = h
        .lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    fnv1a(lines.iter().map(String::as_bytes))
}

fn file_key(f: &diff::FilePatch) -> String {
    fnv1a([String::from_utf8_lossy(&f.bytes()).as_bytes()])
}

impl SavedSelection {
    /// Records `selection`, made on `patch`, by content.
    pub fn capture(patch: &[u8], selection: &Selection) -> SavedSelection {
        let mut left_out = Vec::new();
        for f in diff::parse(patch) {
            let whole = selection.excluded_files.contains(&f.path);
            if f.hunks.is_empty() {
                if whole {
                    left_out.push(LeftOut {
                        path: f.path.clone(),
                        hunk: None,
                        content: file_key(&f),
                        lines: vec![],
                    });
                }
                continue;
            }
            for (i, h) in f.hunks.iter().enumerate() {
                let out = whole
                    || selection
                        .excluded_hunks
                        .iter()
                        .any(|(p, k)| *p == f.path && *k == i);
                let lines: Vec<usize> = if out {
                    vec![]
                } else {
                    selection
                        .excluded_lines
                        .iter()
                        .filter(|(p, k, _)| *p == f.path && *k == i)
                        .map(|&(_, _, l)| l)
                        .collect()
                };
                if out || !lines.is_empty() {
                    left_out.push(LeftOut {
                        path: f.path.clone(),
                        hunk: Some(i),
                        content: hunk_key(h),
                        lines,
                    });
                }
            }
        }
        SavedSelection {
            selection: selection.clone(),
            left_out,
        }
    }

    /// The selection for `patch`: each left-out part found again (same path, same content) stays
    /// out — a whole hunk, or the same lines of it; everything else is in.
    pub fn resolve(&self, patch: &[u8]) -> Resolved {
        let mut pool: Vec<Option<&LeftOut>> = self.left_out.iter().map(Some).collect();
        let mut take = |path: &str, hunkless: bool, content: &str| {
            pool.iter_mut()
                .find(|p| {
                    p.is_some_and(|p| {
                        p.path == path && p.hunk.is_none() == hunkless && p.content == content
                    })
                })
                .and_then(Option::take)
        };
        let mut selection = Selection::default();
        let mut kept = 0;
        for f in diff::parse(patch) {
            if f.hunks.is_empty() {
                if take(&f.path, true, &file_key(&f)).is_some() {
                    kept += 1;
                    selection.excluded_files.push(f.path.clone());
                }
                continue;
            }
            let mut out = Vec::new();
            for (i, h) in f.hunks.iter().enumerate() {
                let Some(found) = take(&f.path, false, &hunk_key(h)) else {
                    continue;
                };
                kept += 1;
                if found.lines.is_empty() {
                    out.push(i);
                } else {
                    selection.excluded_lines.extend(
                        found
                            .lines
                            .iter()
                            .filter(|&&l| l < h.lines.len())
                            .map(|&l| (f.path.clone(), i, l)),
                    );
                }
            }
            if out.len() == f.hunks.len() {
                selection.excluded_files.push(f.path.clone());
            } else {
                selection
                    .excluded_hunks
                    .extend(out.into_iter().map(|i| (f.path.clone(), i)));
            }
        }
        Resolved {
            selection,
            kept,
            changed: self.left_out.len() - kept,
        }
    }
}

/// The selection for `new_patch` that keeps every choice made on `old_patch` whose hunk is still
/// there unchanged (a follow-up's re-diff).
pub fn carry(old_patch: &[u8], old: &Selection, new_patch: &[u8]) -> Resolved {
    SavedSelection::capture(old_patch, old).resolve(new_patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, hunks: &[(&str, &str)]) -> String {
        let mut s = format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n");
        for (i, (ctx, add)) in hunks.iter().enumerate() {
            let at = 1 + i * 10;
            s.push_str(&format!("@@ -{at},1 +{at},2 @@\n {ctx}\n+{add}\n"));
        }
        s
    }

    #[test]
    fn a_follow_up_keeps_the_choices_of_the_hunks_it_did_not_change() {
        let old = format!(
            "{}{}{}",
            file("a.py", &[("x", "one"), ("y", "two")]),
            file("b.py", &[("z", "three")]),
            file("c.md", &[("w", "four")])
        );
        let sel = Selection {
            excluded_files: vec!["c.md".into()],
            excluded_hunks: vec![("a.py".into(), 1)],
            ..Default::default()
        };
        // The follow-up adds a hunk at the top of a.py (the left-out one moves from 1 to 2),
        // changes c.md's only hunk, and adds d.py.
        let new = format!(
            "{}{}{}{}",
            file("a.py", &[("v", "zero"), ("x", "one"), ("y", "two")]),
            file("b.py", &[("z", "three")]),
            file("c.md", &[("w", "four, reworded")]),
            file("d.py", &[("u", "five")])
        );
        let r = carry(old.as_bytes(), &sel, new.as_bytes());
        assert_eq!(
            r.selection,
            Selection {
                excluded_files: vec![],
                excluded_hunks: vec![("a.py".into(), 2)],
                ..Default::default()
            }
        );
        assert_eq!((r.kept, r.changed), (1, 1));
        // Unchanged patch: exactly the same selection back (a whole file stays a whole file).
        let same = carry(old.as_bytes(), &sel, old.as_bytes());
        assert_eq!(same.selection, sel);
        assert_eq!((same.kept, same.changed), (2, 0));
    }

    #[test]
    fn identical_hunks_are_matched_one_for_one() {
        let patch = file("a.py", &[("x", "dup"), ("x", "dup")]);
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("a.py".into(), 0)],
            ..Default::default()
        };
        let r = carry(patch.as_bytes(), &sel, patch.as_bytes());
        assert_eq!(r.selection.excluded_hunks, vec![("a.py".into(), 0)]);
        assert!(r.selection.excluded_files.is_empty());
    }

    #[test]
    fn hunkless_files_and_the_json_form() {
        let bin = "diff --git a/i.png b/i.png\nnew file mode 100644\nBinary files /dev/null and b/i.png differ\n";
        let patch = format!("{bin}{}", file("a.py", &[("x", "y")]));
        let sel = Selection {
            excluded_files: vec!["i.png".into()],
            excluded_hunks: vec![],
            ..Default::default()
        };
        let saved = SavedSelection::capture(patch.as_bytes(), &sel);
        let json = serde_json::to_string(&saved).unwrap();
        let back: SavedSelection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
        assert_eq!(back.resolve(patch.as_bytes()).selection, sel);
        // Everything in: nothing is recorded, nothing is left out anywhere.
        let all = SavedSelection::capture(patch.as_bytes(), &Selection::default());
        assert!(all.left_out.is_empty() && all.resolve(patch.as_bytes()).selection.is_everything());
    }

    #[test]
    fn line_choices_are_carried_by_content() {
        let hunk = |ctx: &str| format!(" {ctx}\n-gone\n+kept\n+left out\n");
        let one = |pre: &str| {
            let mut s = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n".to_string();
            if !pre.is_empty() {
                s.push_str(&format!("@@ -1,1 +1,2 @@\n x\n+{pre}\n"));
            }
            s.push_str(&format!("@@ -20,2 +21,3 @@\n{}", hunk("y")));
            s
        };
        let old = one("");
        let sel = Selection {
            excluded_lines: vec![("a.py".into(), 0, 3)],
            ..Default::default()
        };
        // A re-diff that adds a hunk before it: the same line of the same hunk stays out.
        let new = one("added");
        let r = carry(old.as_bytes(), &sel, new.as_bytes());
        assert_eq!(r.selection.excluded_lines, vec![("a.py".into(), 1, 3)]);
        assert!(r.selection.excluded_hunks.is_empty() && r.selection.excluded_files.is_empty());
        assert_eq!((r.kept, r.changed), (1, 0));
        let approved = crate::diff::filter(new.as_bytes(), &r.selection);
        let text = String::from_utf8_lossy(&approved);
        assert!(text.contains("+added") && text.contains("+kept") && !text.contains("left out"));
        // The same patch (reopening the run): the same selection back, through JSON.
        let saved = SavedSelection::capture(old.as_bytes(), &sel);
        let back: SavedSelection =
            serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
        assert_eq!(back.resolve(old.as_bytes()).selection, sel);
        // The hunk changed: the line choice goes (the hunk is back whole, to be reviewed).
        let changed = old.replace("+kept", "+kept, reworded");
        let r = carry(old.as_bytes(), &sel, changed.as_bytes());
        assert!(r.selection.is_everything());
        assert_eq!((r.kept, r.changed), (0, 1));
        // A saved selection from before line choices were recorded still reads.
        let legacy = r#"{"selection":{"excluded_files":[],"excluded_hunks":[["a.py",0]]},"left_out":[{"path":"a.py","hunk":0,"content":"x"}]}"#;
        let legacy: SavedSelection = serde_json::from_str(legacy).unwrap();
        assert!(legacy.left_out[0].lines.is_empty());
    }
}
