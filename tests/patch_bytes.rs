//! The patch is bytes from git to the pull request: files that are not UTF-8 (Latin-1, invalid
//! sequences, CRLF, no final newline) survive the diff, the run folder, the `Diff` event's exact
//! form, the approved subset and the publish byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Env, events, git, script};
use tiny_backspace::diff;
use tiny_backspace::pipeline::Selection;

const LATIN1: &[u8] = b"caf\xe9 au lait\nbonjour le monde\ncr\xe8me br\xfbl\xe9e\n";
const BROKEN: &[u8] = b"ok line\n\xff\xfe half \xc3( utf-8\nchange me\r\nlast \xe2\x82 line";

/// A repository whose one commit holds `files` (raw bytes).
fn bytes_repo(dir: &Path, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "initial"]);
    dir.to_path_buf()
}

fn git_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

fn fresh_clone(env: &Env, repo: &Path, name: &str) -> std::path::PathBuf {
    let fresh = env.path(name);
    git(
        env.tmp.path(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            fresh.to_str().unwrap(),
        ],
    );
    fresh
}

/// `git apply` of `patch` in `dir`, asserting success.
fn apply(dir: &Path, patch: &[u8], what: &str) {
    let file = dir.join("..").join(format!("{what}.diff"));
    std::fs::write(&file, patch).unwrap();
    let out = git_ok(dir, &["apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{what} does not apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exact patch a `Diff` event carries: `patch_base64` when present, else `patch`.
fn exact_patch(diff: &Value) -> Vec<u8> {
    match diff["patch_base64"].as_str() {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("patch_base64 is base64"),
        None => diff["patch"].as_str().unwrap().as_bytes().to_vec(),
    }
}

#[test]
fn latin1_and_invalid_utf8_edits_survive_the_run_folder_the_event_and_the_publish() {
    let env = Env::new();
    let repo = bytes_repo(
        &env.path("src"),
        &[
            ("latin1.txt", LATIN1),
            ("broken.txt", BROKEN),
            ("README.md", b"# r\n"),
        ],
    );
    let s = env.write(
        "script.json",
        &script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command":
                "sed -i 's/bonjour/salut/' latin1.txt && sed -i 's/change me/changed/' broken.txt"}}]},
            {"text": "Edited both files."}
        ])),
    );
    let out = env
        .command()
        .args(["run", "--repo", repo.to_str().unwrap(), "--prompt", "edit"])
        .arg("--model")
        .arg(format!("scripted:{}", s.display()))
        .args(["--json", "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let evs = events(&out.stdout);
    let diff = evs
        .iter()
        .find(|e| e["type"] == "Diff")
        .expect("a Diff event");
    let files: Vec<&str> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["broken.txt", "latin1.txt"]);

    let expected_latin1 = b"caf\xe9 au lait\nsalut le monde\ncr\xe8me br\xfbl\xe9e\n".to_vec();
    let expected_broken =
        b"ok line\n\xff\xfe half \xc3( utf-8\nchanged\r\nlast \xe2\x82 line".to_vec();

    // The run folder's patch applies to a fresh clone and reproduces the bytes.
    let run = env.run_folders().pop().expect("a run folder");
    let saved = std::fs::read(run.join("patch.diff")).unwrap();
    let fresh = fresh_clone(&env, &repo, "fresh1");
    apply(&fresh, &saved, "saved");
    assert_eq!(
        std::fs::read(fresh.join("latin1.txt")).unwrap(),
        expected_latin1
    );
    assert_eq!(
        std::fs::read(fresh.join("broken.txt")).unwrap(),
        expected_broken
    );

    // The event's exact form is the same patch, and needs its base64 twin (the text is lossy).
    let exact = exact_patch(diff);
    assert_eq!(
        exact, saved,
        "the Diff event's exact patch is the saved one"
    );
    assert!(diff["patch_base64"].is_string(), "{diff}");
    assert!(diff["patch"].as_str().unwrap().contains("salut le monde"));
    let fresh = fresh_clone(&env, &repo, "fresh2");
    apply(&fresh, &exact, "event");
    assert_eq!(
        std::fs::read(fresh.join("latin1.txt")).unwrap(),
        expected_latin1
    );
    assert_eq!(
        std::fs::read(fresh.join("broken.txt")).unwrap(),
        expected_broken
    );

    // Published into the local repository: the branch holds the very bytes.
    let done = evs.last().unwrap();
    assert_eq!(done["type"], "Done", "{done}");
    let branch = done["branch"].as_str().expect("a branch");
    for (path, want) in [
        ("latin1.txt", &expected_latin1),
        ("broken.txt", &expected_broken),
    ] {
        let got = git_ok(&repo, &["show", &format!("{branch}:{path}")]);
        assert!(got.status.success());
        assert_eq!(&got.stdout, want, "{path} on {branch}");
    }
    let approved = std::fs::read(run.join("approved.diff")).unwrap();
    assert_eq!(approved, saved, "everything was approved");
}

/// Files of random lines: ASCII words, Latin-1 and invalid UTF-8 bytes, CRLF or LF endings,
/// sometimes no final newline, rarely a NUL (binary for git).
fn random_file(rng: &mut fastrand::Rng) -> Vec<u8> {
    let lines = rng.usize(0..40);
    let mut out = Vec::new();
    let binary = rng.u8(..) < 12;
    for i in 0..lines {
        out.extend(random_line(rng));
        if binary && i == lines / 2 {
            out.push(0);
        }
        out.extend_from_slice(if rng.u8(..) < 40 { b"\r\n" } else { b"\n" });
    }
    if rng.bool() && !out.is_empty() && rng.u8(..) < 60 {
        out.pop();
        if out.last() == Some(&b'\r') {
            out.pop();
        }
    }
    out
}

fn random_line(rng: &mut fastrand::Rng) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"alpha",
        b"beta",
        b"caf\xe9",
        b"\xff\xfe",
        b"\xc3(",
        b"na\xefve",
        b"\xe2\x82",
        b"  ",
        b"x",
        b"\t",
        b"\xc3\xa9t\xc3\xa9",
        b"return",
    ];
    let n = rng.usize(0..6);
    let mut l = Vec::new();
    for _ in 0..n {
        l.extend_from_slice(WORDS[rng.usize(..WORDS.len())]);
        l.push(b' ');
    }
    // Repeated lines make git's diff choose among equal matches.
    if rng.u8(..) < 30 {
        l = b"same".to_vec();
    }
    l
}

/// A random edit: lines inserted, deleted and changed; endings switched; the last newline
/// added or dropped.
fn random_edit(rng: &mut fastrand::Rng, before: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = before
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    for _ in 0..rng.usize(1..6) {
        match rng.u8(0..5) {
            0 if !lines.is_empty() => {
                let at = rng.usize(..lines.len());
                lines.remove(at);
            }
            1 => {
                let at = rng.usize(..=lines.len());
                let mut l = random_line(rng);
                l.push(b'\n');
                lines.insert(at, l);
            }
            2 if !lines.is_empty() => {
                let at = rng.usize(..lines.len());
                let mut l = random_line(rng);
                l.extend_from_slice(if rng.bool() { b"\r\n" } else { b"\n" });
                lines[at] = l;
            }
            3 if !lines.is_empty() => {
                let at = rng.usize(..lines.len());
                let l = &mut lines[at];
                if l.ends_with(b"\r\n") {
                    l.remove(l.len() - 2);
                } else if l.ends_with(b"\n") {
                    l.insert(l.len() - 1, b'\r');
                }
            }
            _ => {
                if let Some(last) = lines.last_mut() {
                    if last.ends_with(b"\n") {
                        last.pop();
                    } else {
                        last.push(b'\n');
                    }
                }
            }
        }
    }
    lines.concat()
}

fn git_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = git_ok(dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Random selections of a patch: whole files and single hunks left out.
fn random_selection(rng: &mut fastrand::Rng, files: &[diff::FilePatch]) -> Selection {
    let mut sel = Selection::default();
    for f in files {
        match rng.u8(0..4) {
            0 => sel.excluded_files.push(f.path.clone()),
            1 | 2 => {
                for h in 0..f.hunks.len() {
                    if rng.bool() {
                        sel.excluded_hunks.push((f.path.clone(), h));
                    }
                }
            }
            _ => {}
        }
    }
    sel
}

#[test]
fn every_selection_of_a_real_byte_patch_applies_exactly_to_the_base() {
    let seed = std::env::var("TB_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7b5e_ed01_u64);
    let rounds: usize = std::env::var("TB_PROPTEST_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let mut rng = fastrand::Rng::with_seed(seed);
    let t = tempfile::tempdir().unwrap();
    let dir = &t.path().join("repo");
    std::fs::create_dir(dir).unwrap();
    git_bytes(dir, &["init", "-q", "-b", "main"]);
    let mut selections_checked = 0;
    for round in 0..rounds {
        let ctx = format!("seed {seed:#x}, round {round}");
        // A fresh base of a few files.
        git_bytes(dir, &["rm", "-rqf", "--ignore-unmatch", "."]);
        let names: Vec<String> = (0..rng.usize(1..5)).map(|i| format!("f{i}.txt")).collect();
        for n in &names {
            std::fs::write(dir.join(n), random_file(&mut rng)).unwrap();
        }
        git_bytes(dir, &["add", "-A"]);
        git_bytes(
            dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "b",
                "--allow-empty",
            ],
        );
        // Random edits, a new file, sometimes a deletion.
        for n in &names {
            let before = std::fs::read(dir.join(n)).unwrap();
            std::fs::write(dir.join(n), random_edit(&mut rng, &before)).unwrap();
        }
        std::fs::write(dir.join("new.txt"), random_file(&mut rng)).unwrap();
        if names.len() > 1 && rng.bool() {
            std::fs::remove_file(dir.join(&names[0])).unwrap();
        }
        git_bytes(dir, &["add", "-A"]);
        // At least one line of context: `git apply` refuses context-free hunks by default.
        let unified = format!("-U{}", rng.usize(1..4));
        let patch = git_bytes(dir, &["diff", "--cached", "--binary", &unified, "HEAD"]);
        let files = diff::parse(&patch);
        assert_eq!(
            files
                .iter()
                .map(diff::FilePatch::bytes)
                .collect::<Vec<_>>()
                .concat(),
            patch,
            "{ctx}: parsing loses no byte"
        );
        git_bytes(dir, &["reset", "-q", "--hard", "HEAD"]);
        git_bytes(dir, &["clean", "-fdq"]);
        let mut sels = vec![Selection::default()];
        for f in &files {
            for h in 0..f.hunks.len() {
                sels.push(Selection {
                    excluded_files: vec![],
                    excluded_hunks: vec![(f.path.clone(), h)],
                    ..Default::default()
                });
            }
        }
        sels.extend((0..8).map(|_| random_selection(&mut rng, &files)));
        for sel in sels {
            let filtered = diff::filter(&patch, &sel);
            if filtered.is_empty() {
                continue;
            }
            let p = t.path().join("selection.diff");
            std::fs::write(&p, &filtered).unwrap();
            let check = git_ok(dir, &["apply", "--check", p.to_str().unwrap()]);
            assert!(
                check.status.success(),
                "{ctx}: {sel:?} does not apply: {}\n--- full patch:\n{}\n--- filtered:\n{}",
                String::from_utf8_lossy(&check.stderr),
                String::from_utf8_lossy(&patch),
                String::from_utf8_lossy(&filtered)
            );
            // Exact numbering: applied, git's own diff has the very same hunks.
            git_bytes(dir, &["apply", "--index", p.to_str().unwrap()]);
            let again = git_bytes(dir, &["diff", "--cached", "--binary", &unified, "HEAD"]);
            let hunks = |p: &[u8]| -> Vec<(String, Vec<Vec<u8>>)> {
                diff::parse(p)
                    .into_iter()
                    .flat_map(|f| {
                        f.hunks
                            .into_iter()
                            .map(move |h| (f.path.clone(), [vec![h.header], h.lines].concat()))
                    })
                    .collect()
            };
            assert_eq!(hunks(&again), hunks(&filtered), "{ctx}: {sel:?}");
            git_bytes(dir, &["reset", "-q", "--hard", "HEAD"]);
            git_bytes(dir, &["clean", "-fdq"]);
            selections_checked += 1;
        }
    }
    assert!(
        selections_checked > rounds,
        "{selections_checked} selections checked"
    );
}
