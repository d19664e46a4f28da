//! Unit tests of the words publishing writes, with and without parts left out at review.

use super::*;

#[test]
fn branch_names_are_slugged_and_short() {
    let b = branch_name(
        "tb/",
        "Make divide() reject a zero divisor, please!! And add tests for it too",
        "20260101-120000-a3f0",
        Some("main"),
    );
    assert_eq!(b, "tb/make-divide-reject-a-zero-divisor-please-a3f0");
    assert!(b.len() <= 3 + 40 + 5);
    assert_eq!(branch_name("", "!!!", "x-00ff", None), "change-00ff");
    assert_eq!(branch_name("", "x", "r-1", Some("x-1")), "x-1-tb");
}

#[test]
fn titles_and_subjects_fit() {
    let long = "word ".repeat(40);
    let t = default_title(&long, "p");
    assert!(t.chars().count() <= 72 && t.ends_with('…'), "{t}");
    assert_eq!(
        default_title("", "Fix the README typo\nmore"),
        "Fix the README typo"
    );
    assert_eq!(
        default_title("## Done: fixed it\n\nDetails", "p"),
        "Done: fixed it"
    );
    let m = commit_message(
        &long,
        "Fixed it.\nAlso refactored x.",
        "fix it",
        "r1",
        &Scope::default(),
    );
    let subject = m.lines().next().unwrap();
    assert!(subject.chars().count() <= 72);
    assert!(m.contains("Also refactored x.") && m.contains("Requested: fix it"));
    assert!(!m.contains("Agent's summary"), "nothing left out: {m}");
}

#[test]
fn body_lists_evidence() {
    let files = file_changes(PATCH_A.as_bytes());
    assert_eq!(files[0].insertions, 2);
    assert_eq!(files[0].deletions, 1);
    let events = r#"{"type":"Tool: Bash","command":"pytest -q","output":"ok","exit_code":0}
{"type":"Status","run_id":"r","stage":"agent","message":"m"}
{"type":"Tool: Bash","command":"make lint","output":"bad","exit_code":2}"#;
    let commands = commands_from_events(events);
    assert_eq!(commands.len(), 2);
    let body = pr_body(&BodyInput {
        summary: "Did it.",
        prompt: "do it",
        followups: &["and more".into()],
        files: &files,
        scope: Scope::of(PATCH_A.as_bytes(), PATCH_A.as_bytes()),
        commands: &commands,
        model: "scripted:x (replay)",
        run_id: "r1",
    });
    for want in [
        "Did it.",
        "`a.py` +2 −1",
        "`pytest -q` → exit 0",
        "`make lint` → exit 2",
        "> do it",
        "> and more",
        "Made with tiny-backspace",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    let none = pr_body(&BodyInput {
        commands: &[],
        ..BodyInput {
            summary: "",
            prompt: "p",
            followups: &[],
            files: &files,
            scope: Scope::default(),
            commands: &commands,
            model: "m",
            run_id: "r",
        }
    });
    assert!(none.contains("ran no commands"));
    assert!(!body.contains("Agent's summary") && !body.contains("Left out"));
}

const PATCH_A: &str =
    "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n-x\n+y\n+z\n ctx\n";

/// a.py (one hunk), tests/test_b.py (new, one hunk), b.py (two hunks).
fn three_files() -> String {
    format!(
        "{PATCH_A}diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1,1 +1,2 @@\n x\n+y\n\
         @@ -9,1 +10,2 @@\n x\n+z\n\
         diff --git a/tests/test_b.py b/tests/test_b.py\nnew file mode 100644\n--- /dev/null\n\
         +++ b/tests/test_b.py\n@@ -0,0 +1 @@\n+assert True\n"
    )
}

fn body_of(full: &[u8], approved: &[u8], summary: &str) -> String {
    let events = r#"{"type":"Tool: Bash","command":"pytest -q","output":"7 passed","exit_code":0}"#;
    pr_body(&BodyInput {
        summary,
        prompt: "do it",
        followups: &[],
        files: &file_changes(approved),
        scope: Scope::of(full, approved),
        commands: &commands_from_events(events),
        model: "m",
        run_id: "r1",
    })
}

#[test]
fn a_left_out_file_is_never_named_and_the_summary_is_marked() {
    let full = three_files().into_bytes();
    let sel = crate::diff::Selection {
        excluded_files: vec!["tests/test_b.py".into(), "b.py".into()],
        excluded_hunks: vec![],
        ..Default::default()
    };
    let approved = diff::filter(&full, &sel);
    let scope = Scope::of(&full, &approved);
    assert_eq!(
        scope,
        Scope {
            files_in: 1,
            files: 3,
            hunks_in: 1,
            hunks: 4,
            hunks_of_files_in: 1,
        }
    );
    assert_eq!(scope.in_this("PR"), "1 of 3 files is in this PR");
    let body = body_of(&full, &approved, "Guarded a.py; all 7 tests pass.");
    assert!(!body.contains("b.py"), "a left-out file is named: {body}");
    assert!(
        body.starts_with(
            "### Agent's summary (of the full change; 1 of 3 files is in this PR)\n\n\
             Guarded a.py; all 7 tests pass.\n"
        ),
        "{body}"
    );
    assert!(body.contains("### Files changed (1 file, +2 −1)\n\n- `a.py` +2 −1\n"));
    assert!(body.contains("_Left out at review: 2 files; 1 of 3 files is in this PR._"));
    // The test run is evidence about the full change, and the body says so.
    assert!(
        body.contains("ran against the agent's full change") && body.contains("`pytest -q`"),
        "{body}"
    );
    let m = commit_message(
        "Guard a.py",
        "Guard a.py\n\nAll 7 tests pass.",
        "do it",
        "r1",
        &scope,
    );
    assert!(!m.contains("b.py"), "{m}");
    assert!(
        m.contains(
            "Agent's summary (of the full change; 1 of 3 files is in this commit):\n\n\
             All 7 tests pass.\n"
        ),
        "{m}"
    );
    // Nothing but a title from the summary: the message still says part was left out.
    let m = commit_message("Guard a.py", "Guard a.py", "do it", "r1", &scope);
    assert!(m.contains("\n1 of 3 files is in this commit.\n"), "{m}");
}

#[test]
fn hunks_left_out_of_a_kept_file_are_counted() {
    let full = three_files().into_bytes();
    let sel = crate::diff::Selection {
        excluded_files: vec![],
        excluded_hunks: vec![("b.py".into(), 1)],
        ..Default::default()
    };
    let approved = diff::filter(&full, &sel);
    let scope = Scope::of(&full, &approved);
    assert!(scope.is_partial());
    assert_eq!(scope.in_this("PR"), "3 of 4 hunks are in this PR");
    let body = body_of(&full, &approved, "Did it.");
    assert!(body.contains("_Left out at review: 1 hunk; 3 of 4 hunks are in this PR._"));
    assert!(body.contains("- `b.py` +1 −0"), "{body}");
    let sel = crate::diff::Selection {
        excluded_files: vec!["a.py".into()],
        excluded_hunks: vec![("b.py".into(), 1)],
        ..Default::default()
    };
    let scope = Scope::of(&full, &diff::filter(&full, &sel));
    assert_eq!(
        scope.in_this("PR"),
        "2 of 3 files (2 of 4 hunks) are in this PR"
    );
    assert!(!Scope::of(&full, &full).is_partial());
}

#[test]
fn request_pull_shape() {
    let files = vec![FileChange {
        path: "a.txt".into(),
        insertions: 1,
        deletions: 0,
        binary: false,
    }];
    let s = request_pull(&RequestPull {
        base_commit: "abc",
        base_subject: "base (2026-01-01)",
        url: "/srv/repo",
        branch: "tb/x-1",
        commit: "def",
        subject: "Add a",
        message: "Add a\n\nBecause.\n",
        author: "Ann",
        files: &files,
    });
    assert!(s.starts_with("The following changes since commit abc:"));
    assert!(s.contains("are available in the Git repository at:\n\n  /srv/repo tb/x-1"));
    assert!(s.contains("for you to fetch changes up to def:"));
    assert!(s.contains("1 file changed, 1 insertion(+), 0 deletions(-)"));
}

#[test]
fn the_setup_command_is_not_among_the_commands_run() {
    let events = r#"{"type":"Status","run_id":"r","stage":"setup","message":"setup: pip install"}
{"type":"Tool: Bash","command":"pip install -r requirements.txt","output":"ok","exit_code":0}
{"type":"Status","run_id":"r","stage":"agent","message":"agent started"}
{"type":"Tool: Bash","command":"pytest -q","output":"ok","exit_code":0}"#;
    let commands = commands_from_events(events);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].command, "pytest -q");
}
