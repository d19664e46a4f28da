//! The layering ARCHITECTURE.md states, checked on the source: every path a module of `src/`
//! names outside itself (`crate::x::…`, `use crate::{x, y::z}`, a `super::super::x` that climbs
//! to the crate root) is an edge, and the edges in [`FORBIDDEN`] fail the test with the file and
//! line that makes them.
//!
//! Invariants: the scanner is checked on a sample (it finds each form of path) and on the real
//! tree (it finds edges known to exist), so a scanner that finds nothing cannot pass; comments are
//! ignored (a doc comment may name a module it does not import); `lib.rs` and `main.rs` are the
//! crate roots and belong to no layer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The front-ends: they know the pipeline, its events and the shared plain data (`config`, `diff`,
/// `store`, `repo`, `sanitize`, `signals`), never the layers under the pipeline.
const FRONT_ENDS: &[&str] = &["cli", "tui", "serve", "demo"];
/// What no front-end imports.
const BELOW_THE_PIPELINE: &[&str] = &["llm", "sandbox", "forge", "agent", "git"];

/// (importing module, forbidden path prefix, why). A prefix is a module (`llm`) or a path in it
/// (`llm::select`).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    // Lower layers know nothing above them: not the pipeline, the configuration or a front-end.
    ("diff", "git", "diff is pure data over a patch"),
    ("diff", "llm", "diff is pure data over a patch"),
    ("diff", "sandbox", "diff is pure data over a patch"),
    ("git", "llm", "git knows nothing of the model"),
    ("git", "sandbox", "host git runs outside the sandbox"),
    ("llm", "sandbox", "llm knows nothing of the sandbox"),
    ("llm", "git", "llm knows nothing of git"),
    ("llm", "diff", "llm knows nothing of patches"),
    ("sandbox", "llm", "sandbox knows nothing of the model"),
    ("sandbox", "git", "sandbox knows nothing of git"),
    ("sandbox", "diff", "sandbox knows nothing of patches"),
    ("event", "llm", "events are plain data"),
    ("event", "sandbox", "events are plain data"),
    ("event", "git", "events are plain data"),
    // The agent runs tools; it does not publish or drive runs.
    ("agent", "forge", "the agent never publishes"),
    ("forge", "llm", "publishing knows nothing of the model"),
    ("forge", "sandbox", "publishing runs outside the sandbox"),
    ("forge", "agent", "publishing knows nothing of the agent"),
    // `config` holds the lower layers' settings types, not their logic.
    (
        "config",
        "llm::select",
        "config is handed derived rows (config::Derived)",
    ),
    ("config", "forge", "config holds settings, not publishing"),
    // eval drives runs like a front-end; it grades in its own sandbox and derives repositories
    // with git, but reaches the model and GitHub only through the pipeline.
    ("eval", "llm", "eval names a model through pipeline::model"),
    ("eval", "forge", "eval never publishes"),
];

/// The layers under the pipeline that take their settings as plain values, never the `Config`.
const LOWER: &[&str] = &["diff", "git", "llm", "sandbox", "event", "agent"];
/// What no lower layer imports.
const ABOVE: &[&str] = &["pipeline", "config", "cli", "tui", "serve", "demo", "eval"];

/// Every forbidden (from, to-prefix, why).
fn rules() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = FORBIDDEN
        .iter()
        .map(|(a, b, w)| (a.to_string(), b.to_string(), w.to_string()))
        .collect();
    for f in FRONT_ENDS {
        for b in BELOW_THE_PIPELINE {
            let why = format!("front-ends know only the pipeline and its events ({b} is below it)");
            out.push((f.to_string(), b.to_string(), why));
        }
    }
    for l in LOWER {
        for a in ABOVE {
            out.push((l.to_string(), a.to_string(), format!("{l} is below {a}")));
        }
    }
    // `forge` still reads its settings from the `Config` (token discovery, the API URL).
    for a in &ABOVE[2..] {
        out.push(("forge".into(), a.to_string(), format!("forge is below {a}")));
    }
    out.push((
        "forge".into(),
        "pipeline".into(),
        "forge is below pipeline".into(),
    ));
    for a in ["pipeline", "config"] {
        for f in FRONT_ENDS.iter().chain(&["eval"]) {
            out.push((
                a.to_string(),
                f.to_string(),
                format!("{a} knows no front-end"),
            ));
        }
    }
    out
}

/// One path leaving a module: where, and the path after `crate::` (`llm::select::ModelSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    line: usize,
    path: String,
}

/// `src/llm/select.rs` → `llm`; `src/event_tests.rs` → `event`; the roots → `None`.
fn module_of(rel: &Path) -> Option<String> {
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    if parts.next().is_some() {
        return Some(first);
    }
    let stem = first.strip_suffix(".rs")?;
    if stem == "lib" || stem == "main" {
        return None;
    }
    Some(stem.strip_suffix("_tests").unwrap_or(stem).to_string())
}

/// How deep a file's module is (`src/llm/select.rs`: 2, `src/llm/mod.rs` and `src/store.rs`: 1).
fn depth_of(rel: &Path) -> usize {
    let n = rel.components().count();
    if rel.file_name().is_some_and(|f| f == "mod.rs") {
        n - 1
    } else {
        n
    }
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// `a::b::C` at the start of `s` (stops at anything that is not a path segment).
fn path_at(s: &str) -> String {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let id = ident(rest);
        if id.is_empty() {
            break;
        }
        segs.push(id);
        rest = &rest[id.len()..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    segs.join("::")
}

/// The items of a `{…}` group at the start of `s`, each as its path up to any nested group.
fn group_at(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                let p = path_at(s[start..i].trim());
                if !p.is_empty() && p != "self" {
                    items.push(p);
                }
                start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    items
}

/// The paths that leave the crate-level module a file at `depth` belongs to. `source` is the
/// whole file; line comments are dropped first.
fn edges(source: &str, depth: usize, top_level: &BTreeSet<String>) -> Vec<Edge> {
    let lines: Vec<String> = source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect();
    // One text with line starts, so a `use crate::{…}` spread over lines is read whole.
    let text = lines.join("\n");
    let line_at = |pos: usize| text[..pos].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (pos, _) in text.match_indices("crate::") {
        let before = text[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `tiny_backspace_crate::`, `$crate::`
        }
        let rest = &text[pos + "crate::".len()..];
        if rest.starts_with('{') {
            for p in group_at(rest) {
                out.push(Edge {
                    line: line_at(pos),
                    path: p,
                });
            }
        } else {
            let p = path_at(rest);
            if !p.is_empty() {
                out.push(Edge {
                    line: line_at(pos),
                    path: p,
                });
            }
        }
    }
    // `super::super::x` climbing to the root: inline modules are not tracked, so a chain as long as
    // the file's depth may stop short of the root; it counts only when `x` is a crate-level module.
    for (pos, _) in text.match_indices("super::") {
        let before = text[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // inside a longer chain: counted from its start
        }
        let mut rest = &text[pos..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        if climbs < depth {
            continue;
        }
        let candidates = if rest.starts_with('{') {
            group_at(rest)
        } else {
            vec![path_at(rest)]
        };
        for p in candidates {
            if top_level.contains(p.split("::").next().unwrap_or("")) {
                out.push(Edge {
                    line: line_at(pos),
                    path: p,
                });
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every (module, file, edge) of `src/`, edges to the module itself left out.
fn scan() -> Vec<(String, String, Edge)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let top_level: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    let mut out = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for e in edges(&text, depth_of(rel), &top_level) {
            if e.path.split("::").next() != Some(module.as_str()) {
                out.push((module.clone(), format!("src/{}", rel.display()), e));
            }
        }
    }
    out
}

fn matches(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

#[test]
fn no_layer_imports_what_the_architecture_forbids() {
    let edges = scan();
    let rules = rules();
    let mut broken = Vec::new();
    for (module, file, e) in &edges {
        for (from, to, why) in &rules {
            if module == from && matches(&e.path, to) {
                broken.push(format!(
                    "{file}:{}: {module} imports crate::{} — forbidden: {why}",
                    e.line, e.path
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} forbidden import(s) (ARCHITECTURE.md, \"Invariants\"):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_scanner_sees_the_edges_that_exist() {
    // Known edges of the real tree: if the scanner stopped finding paths, the check above would
    // pass on anything.
    let edges = scan();
    let has = |from: &str, to: &str| {
        edges
            .iter()
            .any(|(m, _, e)| m == from && matches(&e.path, to))
    };
    for (from, to) in [
        ("pipeline", "llm"),
        ("pipeline", "sandbox"),
        ("pipeline", "forge"),
        ("tui", "pipeline"),
        ("serve", "pipeline"),
        ("agent", "sandbox"),
        ("event", "diff"),
    ] {
        assert!(has(from, to), "the scanner no longer sees {from} → {to}");
    }
    assert!(edges.len() > 100, "only {} edges found", edges.len());
}

#[test]
fn the_scanner_reads_every_form_of_path() {
    let top: BTreeSet<String> = ["llm", "sandbox", "forge", "pipeline"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sample = r#"
//! Mentions `crate::forge` in a doc comment only.
use crate::llm::select::ModelSpec;
use crate::{
    sandbox::{self, NetworkMode},
    pipeline,
};
fn f() { let _ = crate::forge::text::truncate("x", 1); } // crate::nothing
mod tests {
    use super::super::llm::Provider;
    use super::super::Helper;
}
"#;
    let found: Vec<(usize, String)> = edges(sample, 1, &top)
        .into_iter()
        .map(|e| (e.line, e.path))
        .collect();
    assert_eq!(
        found,
        vec![
            (3, "llm::select::ModelSpec".to_string()),
            (4, "sandbox".to_string()),
            (4, "pipeline".to_string()),
            (8, "forge::text::truncate".to_string()),
            (10, "llm::Provider".to_string()),
        ]
    );
    assert_eq!(
        module_of(Path::new("event_tests.rs")).as_deref(),
        Some("event")
    );
    assert_eq!(module_of(Path::new("tui/app.rs")).as_deref(), Some("tui"));
    assert_eq!(module_of(Path::new("lib.rs")), None);
    assert_eq!(depth_of(Path::new("llm/mod.rs")), 1);
    assert_eq!(depth_of(Path::new("llm/select.rs")), 2);
}
