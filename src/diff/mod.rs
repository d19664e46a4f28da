//! The unified patch as data: files and hunks parsed from `git diff --binary` output, and the
//! approved subset of it rebuilt as a patch.
//!
//! Invariants: parsing never loses bytes — joining every file's `text()` gives back the original
//! patch; a filtered patch keeps each kept file's header verbatim and renumbers the new-side start
//! of kept hunks so that `git apply` accepts it exactly (no fuzz needed).

pub mod rows;
pub mod warnings;

use crate::pipeline::Selection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ …` line.
    pub header: String,
    pub old_start: u64,
    pub old_len: u64,
    pub new_start: u64,
    pub new_len: u64,
    /// The text after the second `@@` (often the enclosing function).
    pub section: String,
    /// Body lines, each with its `' '`, `'+'`, `'-'` or `'\'` prefix and its newline.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The path after the change (the old path for deletions).
    pub path: String,
    pub old_path: Option<String>,
    /// Lines from `diff --git` up to the first hunk, newlines included.
    pub header: Vec<String>,
    pub hunks: Vec<Hunk>,
    pub binary: bool,
}

impl FilePatch {
    pub fn text(&self) -> String {
        let mut s: String = self.header.concat();
        for h in &self.hunks {
            s.push_str(&h.header);
            s.extend(h.lines.iter().map(String::as_str));
        }
        s
    }

    pub fn is_new(&self) -> bool {
        self.header.iter().any(|l| l.starts_with("new file mode"))
    }

    pub fn is_deleted(&self) -> bool {
        self.header
            .iter()
            .any(|l| l.starts_with("deleted file mode"))
    }
}

fn parse_range(s: &str) -> (u64, u64) {
    let mut it = s.splitn(2, ',');
    let start = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let len = it.next().map_or(1, |v| v.parse().unwrap_or(0));
    (start, len)
}

/// Parses `@@ -a,b +c,d @@ section`.
pub fn parse_hunk_header(line: &str) -> Option<(u64, u64, u64, u64, String)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, section) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let (os, ol) = parse_range(old);
    let (ns, nl) = parse_range(new);
    Some((
        os,
        ol,
        ns,
        nl,
        section.trim_end_matches('\n').trim_start().to_string(),
    ))
}

fn unquote(path: &str) -> String {
    let p = path.trim_end_matches(['\n', '\r', '\t']);
    let p = p
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(p);
    p.to_string()
}

fn path_after(line: &str, prefix: &str) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    let rest = unquote(rest);
    if rest == "/dev/null" {
        return None;
    }
    Some(
        rest.strip_prefix("a/")
            .or_else(|| rest.strip_prefix("b/"))
            .unwrap_or(&rest)
            .to_string(),
    )
}

/// Splits a patch into files and hunks.
pub fn parse(patch: &str) -> Vec<FilePatch> {
    let mut files: Vec<FilePatch> = Vec::new();
    for line in patch.split_inclusive('\n') {
        if line.starts_with("diff --git ") {
            files.push(FilePatch {
                path: String::new(),
                old_path: None,
                header: vec![line.to_string()],
                hunks: vec![],
                binary: false,
            });
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if let Some(hunk) = file.hunks.last_mut()
            && !line.starts_with("@@ ")
        {
            hunk.lines.push(line.to_string());
            continue;
        }
        if line.starts_with("@@ ")
            && let Some((os, ol, ns, nl, section)) = parse_hunk_header(line)
        {
            file.hunks.push(Hunk {
                header: line.to_string(),
                old_start: os,
                old_len: ol,
                new_start: ns,
                new_len: nl,
                section,
                lines: vec![],
            });
            continue;
        }
        file.header.push(line.to_string());
        if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
            file.binary = true;
        }
    }
    for f in &mut files {
        let mut old = None;
        let mut new = None;
        for l in &f.header {
            if let Some(p) = l
                .strip_prefix("rename from ")
                .or_else(|| l.strip_prefix("copy from "))
            {
                old = Some(unquote(p));
            } else if let Some(p) = l
                .strip_prefix("rename to ")
                .or_else(|| l.strip_prefix("copy to "))
            {
                new = Some(unquote(p));
            } else if l.starts_with("--- ") {
                old = old.or(path_after(l, "--- "));
            } else if l.starts_with("+++ ") {
                new = new.or(path_after(l, "+++ "));
            }
        }
        if new.is_none() && old.is_none() {
            // Mode-only or binary changes: take the b/ side of the `diff --git` line.
            let first = f.header.first().map(String::as_str).unwrap_or("");
            let rest = first.trim_start_matches("diff --git ").trim_end();
            if let Some(idx) = rest.find(" b/") {
                new = Some(unquote(&rest[idx + 3..]));
            }
        }
        f.path = new.clone().or(old.clone()).unwrap_or_default();
        f.old_path = old.filter(|o| Some(o) != new.as_ref() && new.is_some());
    }
    files
}

/// The patch with the excluded files and hunks left out.
pub fn filter(patch: &str, selection: &Selection) -> String {
    if selection.excluded_files.is_empty() && selection.excluded_hunks.is_empty() {
        return patch.to_string();
    }
    let mut out = String::new();
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
        if file.hunks.is_empty() || !(0..file.hunks.len()).any(excluded) {
            out.push_str(&file.text());
            continue;
        }
        let kept: Vec<(usize, &Hunk)> = file
            .hunks
            .iter()
            .enumerate()
            .filter(|(i, _)| !excluded(*i))
            .collect();
        // A new or deleted file cannot be applied in part of a single hunk; all-out means no file.
        if kept.is_empty() {
            continue;
        }
        out.push_str(&file.header.concat());
        let mut delta: i64 = 0;
        for (_, h) in kept {
            // git numbers an empty side by the line before it.
            let base = h.old_start as i64 + delta;
            let new_start = match (h.old_len, h.new_len) {
                (0, _) => base + 1,
                (_, 0) => base - 1,
                _ => base,
            }
            .max(0);
            let old = if h.old_len == 1 {
                format!("{}", h.old_start)
            } else {
                format!("{},{}", h.old_start, h.old_len)
            };
            let new = if h.new_len == 1 {
                format!("{new_start}")
            } else {
                format!("{new_start},{}", h.new_len)
            };
            let section = if h.section.is_empty() {
                String::new()
            } else {
                format!(" {}", h.section)
            };
            out.push_str(&format!("@@ -{old} +{new} @@{section}\n"));
            out.extend(h.lines.iter().map(String::as_str));
            delta += h.new_len as i64 - h.old_len as i64;
        }
    }
    out
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
pub fn check_selection(patch: &str, selection: &Selection) -> Result<(), SelectionError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_naming_what_is_not_there_is_refused() {
        let sel = |files: &[&str], hunks: &[(&str, usize)]| Selection {
            excluded_files: files.iter().map(|f| f.to_string()).collect(),
            excluded_hunks: hunks.iter().map(|(p, h)| (p.to_string(), *h)).collect(),
        };
        assert_eq!(
            check_selection(PATCH, &sel(&["NOTES.md"], &[("calc.py", 1)])),
            Ok(())
        );
        let err = check_selection(PATCH, &sel(&["calc.rs"], &[])).unwrap_err();
        assert!(!err.in_hunks);
        assert!(
            err.message.contains("'calc.rs'") && err.message.contains("calc.py (2 hunks)"),
            "{err}"
        );
        let err = check_selection(PATCH, &sel(&[], &[("calc.py", 2)])).unwrap_err();
        assert!(err.in_hunks);
        assert!(err.message.contains("has 2 hunks"), "{err}");
        let err = check_selection(PATCH, &sel(&[], &[("nope.py", 0)])).unwrap_err();
        assert!(err.in_hunks && err.message.contains("'nope.py'"), "{err}");
    }

    const PATCH: &str = "diff --git a/calc.py b/calc.py
index 1111111..2222222 100644
--- a/calc.py
+++ b/calc.py
@@ -1,3 +1,5 @@ import os
 def divide(a, b):
+    if b == 0:
+        raise ValueError
     return a / b
 
@@ -10,2 +12,3 @@ def mul(a, b):
 def mul(a, b):
+    # product
     return a * b
diff --git a/NOTES.md b/NOTES.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/NOTES.md
@@ -0,0 +1 @@
+note
diff --git a/old.txt b/new.txt
similarity index 100%
rename from old.txt
rename to new.txt
";

    #[test]
    fn parse_round_trips_and_finds_paths() {
        let files = parse(PATCH);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, "calc.py");
        assert_eq!(files[0].hunks.len(), 2);
        assert_eq!(
            (files[0].hunks[1].old_start, files[0].hunks[1].new_start),
            (10, 12)
        );
        assert_eq!(files[0].hunks[0].section, "import os");
        assert_eq!(files[1].path, "NOTES.md");
        assert!(files[1].is_new());
        assert_eq!(files[2].path, "new.txt");
        assert_eq!(files[2].old_path.as_deref(), Some("old.txt"));
        let joined: String = files.iter().map(FilePatch::text).collect();
        assert_eq!(joined, PATCH);
    }

    #[test]
    fn filter_nothing_is_identity() {
        assert_eq!(filter(PATCH, &Selection::default()), PATCH);
    }

    #[test]
    fn filter_drops_a_hunk_and_renumbers_the_rest() {
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("calc.py".into(), 0)],
        };
        let out = filter(PATCH, &sel);
        assert!(!out.contains("raise ValueError"));
        assert!(out.contains("@@ -10,2 +10,3 @@ def mul(a, b):\n"), "{out}");
        assert!(out.contains("NOTES.md"));
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
            String::from_utf8(out.stdout).unwrap()
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
        assert_eq!(hunks, 4, "{patch}");
        std::fs::write(t.path().join("full.diff"), &patch).unwrap();
        for skip in 0..hunks {
            let sel = Selection {
                excluded_files: vec![],
                excluded_hunks: vec![("f.txt".into(), skip)],
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
        };
        let out = filter(PATCH, &sel);
        assert!(!out.contains("NOTES.md"));
        assert!(out.contains("rename to new.txt"));
        let sel = Selection {
            excluded_files: vec![],
            excluded_hunks: vec![("NOTES.md".into(), 0)],
        };
        assert!(!filter(PATCH, &sel).contains("NOTES.md"));
    }
}
