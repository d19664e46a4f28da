//! `tiny-backspace show RUN_ID`: a saved run for headless review — what was asked, what came of
//! it, and its patch with every hunk numbered the way `publish --exclude-hunk PATH:N` counts them.
//!
//! Invariants: read-only (nothing in the run folder changes); the patch is printed verbatim except
//! for the `#` marker line before each hunk and for control and invisible characters, which are
//! shown as stand-ins (`␛`, `␍`, `<U+202E>`: [`crate::sanitize::visible`]) so that the terminal
//! neither obeys nor hides them; what a reader sees is what would be published — decoded for the
//! terminal (bytes that are not UTF-8 show as U+FFFD; `patch.diff` has them).

use std::fmt::Write as _;

use crate::config::Config;
use crate::sanitize::visible;
use crate::store::{RunDir, RunMeta, Store};

/// Prints the run; exit code 2 when there is no such run.
pub fn show(config: &Config, run_id: &str) -> color_eyre::Result<i32> {
    let store = Store::open(&config.home)?;
    let Some(run_dir) = store.run_dir(run_id) else {
        let message = format!(
            "error: there is no run '{run_id}' in {}; `tiny-backspace runs` lists them",
            config.home.display()
        );
        eprintln!("{}", visible(&message));
        return Ok(2);
    };
    let meta = run_dir.read_meta()?;
    let patch = run_dir.read_patch().ok();
    print!("{}", render(&run_dir, &meta, patch.as_deref()));
    Ok(0)
}

/// The text `show` prints, with every control and invisible character shown.
pub fn render(run_dir: &RunDir, meta: &RunMeta, patch: Option<&[u8]>) -> String {
    visible(&render_raw(run_dir, meta, patch)).into_owned()
}

fn render_raw(run_dir: &RunDir, meta: &RunMeta, patch: Option<&[u8]>) -> String {
    let mut out = String::new();
    let base = match (&meta.base, &meta.base_commit) {
        (Some(b), Some(c)) => format!(" @ {b} ({})", &c[..c.len().min(12)]),
        (Some(b), None) => format!(" @ {b}"),
        _ => String::new(),
    };
    let _ = writeln!(out, "run      {} · {}", meta.id, meta.status.as_str());
    let _ = writeln!(out, "repo     {}{base}", meta.repo);
    let _ = writeln!(out, "model    {}", meta.model);
    let _ = writeln!(out, "prompt   {}", indent_rest(&meta.prompt));
    for f in &meta.followups {
        let _ = writeln!(out, "then     {}", indent_rest(f));
    }
    if let Some(s) = &meta.summary {
        let _ = writeln!(out, "summary  {}", indent_rest(s));
    }
    if let Some(e) = &meta.error {
        let _ = writeln!(out, "error    {}", indent_rest(e));
    }
    if let Some(b) = &meta.branch {
        let _ = writeln!(out, "branch   {b}");
    }
    if let Some(u) = &meta.pr_url {
        let _ = writeln!(out, "pr       {u}");
    }
    let _ = writeln!(out, "folder   {}", run_dir.path.display());
    let Some(patch) = patch.filter(|p| !p.iter().all(u8::is_ascii_whitespace)) else {
        let _ = writeln!(out, "\nNo changes were saved for this run.");
        return out;
    };
    let files = crate::diff::parse(patch);
    let hunks: usize = files.iter().map(|f| f.hunks.len()).sum();
    let _ = writeln!(
        out,
        "\n{} files, {hunks} hunks (leave parts out with `tiny-backspace publish {} --exclude PATH \
         --exclude-hunk PATH:N`):\n",
        files.len(),
        meta.id
    );
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for f in &files {
        for l in &f.header {
            out.push_str(&text(l));
        }
        for (i, h) in f.hunks.iter().enumerate() {
            let _ = writeln!(out, "# {}:{}", f.path, i + 1);
            out.push_str(&text(&h.header));
            for l in &h.lines {
                out.push_str(&text(l));
            }
        }
    }
    out
}

/// Later lines of a multi-line value, indented under the first (blank ones left blank).
fn indent_rest(text: &str) -> String {
    let mut lines = text.trim_end().lines();
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        out.push('\n');
        if !l.trim().is_empty() {
            out.push_str("         ");
            out.push_str(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_are_numbered_per_file_from_one_and_the_rest_is_verbatim() {
        let patch = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n\
                     @@ -9 +9 @@ f\n-p\n+q\ndiff --git a/b.md b/b.md\nnew file mode 100644\n\
                     --- /dev/null\n+++ b/b.md\n@@ -0,0 +1 @@\n+n\n";
        let meta: RunMeta = serde_json::from_value(serde_json::json!({
            "id": "20260101-000000-abcd", "created_at": "2026-01-01T00:00:00Z",
            "repo": "octo/calc", "base": "main", "base_commit": "0123456789abcdef0123",
            "prompt": "Fix it\n\nplease", "model": "replay", "sandbox": "bwrap",
            "status": "review", "summary": "Fixed.", "error": null, "branch": null,
            "pr_url": null, "duration_ms": 1
        }))
        .unwrap();
        let dir = RunDir {
            id: meta.id.clone(),
            path: "/state/runs/20260101-000000-abcd".into(),
        };
        let text = render(&dir, &meta, Some(patch.as_bytes()));
        assert!(
            text.contains("repo     octo/calc @ main (0123456789ab)"),
            "{text}"
        );
        assert!(
            text.contains("prompt   Fix it\n\n         please\n"),
            "{text}"
        );
        assert!(text.contains("2 files, 3 hunks"), "{text}");
        let markers: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(markers, ["# a.py:1", "# a.py:2", "# b.md:1"]);
        let body = &text[text.find("diff --git").unwrap()..];
        let unmarked: String = body
            .lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(unmarked, patch);
        assert!(render(&dir, &meta, Some(b"")).contains("No changes were saved"));

        // Control and invisible characters in the patch are shown, the rest stays exact.
        let evil = "diff --git a/e.txt b/e.txt\n--- a/e.txt\n+++ b/e.txt\n@@ -1 +1 @@\n-x\r\n\
                    +\x1b]0;t\x07 \u{202E}x\r\n";
        let text = render(&dir, &meta, Some(evil.as_bytes()));
        let body = &text[text.find("diff --git").unwrap()..];
        let unmarked: String = body
            .lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(unmarked, crate::sanitize::visible(evil));
        assert!(
            unmarked.ends_with("-x␍\n+␛]0;t␇ <U+202E>x␍\n"),
            "{unmarked}"
        );
        assert!(!text.contains(['\x1b', '\r', '\u{202E}']));
    }
}
