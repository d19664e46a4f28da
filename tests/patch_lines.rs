//! Line-level selection (the TUI's `s`) as a property: for random real patches (CRLF lines, files
//! without a final newline, new and deleted files) and random choices of single `+`/`-` lines and
//! hunks left out, the filtered patch passes `git apply --check` on the base, and applying it gives
//! exactly the files the choice means (each left-out `+` line not added, each left-out `-` line
//! kept), computed here independently from the full patch. Half the choices are made as the TUI
//! makes them: hunks split at random context lines (`s`) and random parts taken out or back in
//! (`space`), and each part taken out is checked to have all its `+`/`-` lines out. Seeded (`TB_PROPTEST_SEED`,
//! `TB_PROPTEST_ROUNDS`), so a failure names the seed and round that reproduce it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use tiny_backspace::diff::{self, FilePatch, check_selection, line_selectable};
use tiny_backspace::pipeline::Selection;
use tiny_backspace::tui::diffview::DiffView;

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "core.autocrlf=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn random_line(rng: &mut fastrand::Rng) -> Vec<u8> {
    const WORDS: &[&str] = &["alpha", "beta", "same", "x", "return", "  ", "caf\u{e9}"];
    let mut l: Vec<u8> = (0..rng.usize(0..4))
        .flat_map(|_| format!("{} ", WORDS[rng.usize(..WORDS.len())]).into_bytes())
        .collect();
    l.extend_from_slice(if rng.u8(..) < 40 { b"\r\n" } else { b"\n" });
    l
}

fn random_file(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out: Vec<u8> = (0..rng.usize(1..25))
        .flat_map(|_| random_line(rng))
        .collect();
    if rng.u8(..) < 50 {
        while matches!(out.last(), Some(b'\n' | b'\r')) {
            out.pop();
        }
    }
    out
}

fn random_edit(rng: &mut fastrand::Rng, before: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = before
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    for _ in 0..rng.usize(1..7) {
        let n = lines.len();
        match rng.u8(0..4) {
            0 if n > 0 => {
                lines.remove(rng.usize(..n));
            }
            1 => lines.insert(rng.usize(..=n), random_line(rng)),
            2 if n > 0 => lines[rng.usize(..n)] = random_line(rng),
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

/// What `base` becomes when `f`'s hunks are applied as `sel` says (`None`: the file is gone).
fn expected(base: Option<&[u8]>, f: &FilePatch, sel: &Selection) -> Option<Vec<u8>> {
    if sel.excluded_files.contains(&f.path) {
        return base.map(<[u8]>::to_vec);
    }
    let hunk_out = |i: usize| {
        sel.excluded_hunks
            .iter()
            .any(|(p, h)| *p == f.path && *h == i)
    };
    let line_out = |i: usize, l: usize| {
        sel.excluded_lines
            .iter()
            .any(|(p, h, x)| *p == f.path && *h == i && *x == l)
    };
    if f.is_deleted() {
        return if hunk_out(0) {
            base.map(<[u8]>::to_vec)
        } else {
            None
        };
    }
    let old: Vec<&[u8]> = base
        .unwrap_or_default()
        .split_inclusive(|b| *b == b'\n')
        .collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    let mut any = false;
    for (i, h) in f.hunks.iter().enumerate() {
        if hunk_out(i) {
            continue;
        }
        let start = if h.old_len == 0 {
            h.old_start
        } else {
            h.old_start - 1
        } as usize;
        out.extend(old[pos..start].iter().map(|l| l.to_vec()));
        pos = start;
        let mut last_added = false;
        for (j, l) in h.lines.iter().enumerate() {
            match l[0] {
                b' ' => {
                    out.push(old[pos].to_vec());
                    pos += 1;
                    last_added = false;
                }
                b'-' => {
                    if line_out(i, j) {
                        out.push(old[pos].to_vec());
                    } else {
                        any = true;
                    }
                    pos += 1;
                    last_added = false;
                }
                b'+' => {
                    last_added = !line_out(i, j);
                    if last_added {
                        any = true;
                        out.push(l[1..].to_vec());
                    }
                }
                _ => {
                    if last_added && let Some(prev) = out.last_mut() {
                        prev.pop();
                    }
                }
            }
        }
    }
    if base.is_none() && !any {
        return None;
    }
    out.extend(old[pos..].iter().map(|l| l.to_vec()));
    Some(out.concat())
}

fn random_selection(rng: &mut fastrand::Rng, files: &[FilePatch]) -> Selection {
    let mut sel = Selection::default();
    for f in files {
        for (i, h) in f.hunks.iter().enumerate() {
            match rng.u8(0..6) {
                0 => sel.excluded_hunks.push((f.path.clone(), i)),
                1..=3 if !f.is_deleted() => {
                    for l in 0..h.lines.len() {
                        if line_selectable(h, l) && rng.bool() {
                            sel.excluded_lines.push((f.path.clone(), i, l));
                        }
                    }
                }
                _ => {}
            }
        }
        if rng.u8(..) < 20 {
            sel.excluded_files.push(f.path.clone());
        }
    }
    sel
}

/// A choice made on the TUI's view: random splits at context lines, random parts toggled.
fn split_selection(rng: &mut fastrand::Rng, patch: &[u8]) -> Selection {
    let mut d = DiffView::new(String::from_utf8(patch.to_vec()).unwrap());
    let n = d.files.len();
    for f in 0..n {
        for h in 0..d.files[f].hunks.len() {
            let len = d.files[f].hunks[h].lines.len();
            for l in 0..len {
                if rng.u8(..) < 90 {
                    d.toggle_split(f, h, l);
                }
            }
            if !d.is_split(f, h) {
                continue;
            }
            for _ in 0..rng.usize(1..4) {
                let l = rng.usize(..len);
                let part = d.part_of(f, h, l);
                d.toggle_part(f, h, l);
                // A part is all in or all out after a toggle (and the hunk is in).
                let hunk = &d.files[f].hunks[h];
                let states: Vec<bool> = part
                    .filter(|&i| line_selectable(hunk, i))
                    .map(|i| d.line_included(f, h, i))
                    .collect();
                assert!(
                    states.windows(2).all(|w| w[0] == w[1]),
                    "a part toggled partly"
                );
                assert!(d.hunk_included(f, h));
            }
        }
    }
    if n > 0 && rng.u8(..) < 40 {
        // A whole file out too: its split parts go with it.
        d.cursor = d.info[rng.usize(..n)].first_row;
        d.toggle_at_cursor();
    }
    d.selection()
}

#[test]
fn every_line_selection_applies_to_the_base_and_means_what_it_says() {
    let seed = std::env::var("TB_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x11_7e5_u64);
    let rounds: usize = std::env::var("TB_PROPTEST_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut rng = fastrand::Rng::with_seed(seed);
    let t = tempfile::tempdir().unwrap();
    let dir = &t.path().join("repo");
    std::fs::create_dir(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let mut checked = 0;
    let mut partial_hunks = 0;
    let mut split_lines = 0;
    for round in 0..rounds {
        let ctx = format!("seed {seed:#x}, round {round}");
        git(dir, &["rm", "-rqf", "--ignore-unmatch", "."]);
        let names: Vec<String> = (0..rng.usize(1..4)).map(|i| format!("f{i}.txt")).collect();
        for n in &names {
            std::fs::write(dir.join(n), random_file(&mut rng)).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "b", "--allow-empty"]);
        let bases: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|n| (n.clone(), std::fs::read(dir.join(n)).unwrap()))
            .collect();
        for (n, before) in &bases {
            std::fs::write(dir.join(n), random_edit(&mut rng, before)).unwrap();
        }
        std::fs::write(dir.join("new.txt"), random_file(&mut rng)).unwrap();
        if names.len() > 1 && rng.bool() {
            std::fs::remove_file(dir.join(&names[0])).unwrap();
        }
        git(dir, &["add", "-A"]);
        let unified = format!("-U{}", rng.usize(1..4));
        let patch = git(dir, &["diff", "--cached", &unified, "HEAD"]);
        let files = diff::parse(&patch);
        git(dir, &["reset", "-q", "--hard", "HEAD"]);
        git(dir, &["clean", "-fdq"]);
        for _ in 0..10 {
            let sel = if rng.bool() {
                random_selection(&mut rng, &files)
            } else {
                let sel = split_selection(&mut rng, &patch);
                split_lines += sel.excluded_lines.len();
                sel
            };
            check_selection(&patch, &sel).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let filtered = diff::filter(&patch, &sel);
            let p = t.path().join("sel.diff");
            std::fs::write(&p, &filtered).unwrap();
            let show = || {
                format!(
                    "{ctx}: {sel:?}\n--- full:\n{}\n--- filtered:\n{}",
                    String::from_utf8_lossy(&patch),
                    String::from_utf8_lossy(&filtered)
                )
            };
            if !filtered.is_empty() {
                let check = Command::new("git")
                    .args(["apply", "--check"])
                    .arg(&p)
                    .current_dir(dir)
                    .output()
                    .unwrap();
                assert!(
                    check.status.success(),
                    "does not apply: {}\n{}",
                    String::from_utf8_lossy(&check.stderr),
                    show()
                );
                git(dir, &["apply", p.to_str().unwrap()]);
            }
            for f in &files {
                let base = bases
                    .iter()
                    .find(|(n, _)| *n == f.path)
                    .map(|(_, b)| b.as_slice());
                let want = expected(base, f, &sel);
                let got = std::fs::read(dir.join(&f.path)).ok();
                assert_eq!(
                    got.as_deref().map(String::from_utf8_lossy),
                    want.as_deref().map(String::from_utf8_lossy),
                    "{} differs\n{}",
                    f.path,
                    show()
                );
            }
            partial_hunks += sel.excluded_lines.len();
            git(dir, &["reset", "-q", "--hard", "HEAD"]);
            git(dir, &["clean", "-fdq"]);
            checked += 1;
        }
    }
    assert!(
        checked >= rounds * 10 && partial_hunks > rounds && split_lines > rounds / 2,
        "{checked} / {partial_hunks} / {split_lines}"
    );
}

#[test]
fn a_line_that_cannot_go_alone_takes_its_hunk_with_it() {
    // Old ends without a newline; the change replaces that last line.
    let patch = b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n";
    let h = &diff::parse(patch)[0].hunks[0];
    assert!(!line_selectable(h, 1), "a - line with the marker");
    assert!(line_selectable(h, 3) && !line_selectable(h, 0));
    let sel = Selection {
        excluded_lines: vec![("f".into(), 0, 1)],
        ..Default::default()
    };
    assert!(check_selection(patch, &sel).is_err());
    assert!(
        diff::filter(patch, &sel).is_empty(),
        "the hunk (and so the file) is left out"
    );
    // Leaving out the + line keeps the - line: b is removed, nothing added.
    let sel = Selection {
        excluded_lines: vec![("f".into(), 0, 3)],
        ..Default::default()
    };
    assert_eq!(
        diff::filter(patch, &sel),
        b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1 @@\n a\n-b\n\\ No newline at end of file\n"
    );
}
