//! Converts the Aider polyglot benchmark (Exercism exercises) into eval tasks.
//!
//! Layout read: `<root>/<language>/exercises/practice/<name>/` holding `.docs/instructions.md`
//! (and optionally `.docs/instructions.append.md`) and `.meta/config.json` whose `files.solution`
//! and `files.test` list the files to edit and the tests.
//!
//! Invariants: each task's repository is the exercise folder alone (committed as a plain folder by
//! `eval`), so no other exercise or example solution is within the agent's reach; `.meta` (which
//! holds the example solution) and the test files are hidden paths; a language it does not know
//! is refused by name, never guessed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

/// Known languages and how their tests run in the exercise folder (`{tests}`: the test files).
const LANGUAGES: &[(&str, &str)] = &[
    ("python", "python3 -m pytest -q {tests}"),
    ("go", "go test ./..."),
    ("rust", "cargo test --offline -- --include-ignored"),
    ("javascript", "npm test"),
    ("java", "./gradlew test --offline"),
    (
        "cpp",
        "mkdir -p build && cd build && cmake -DEXERCISM_RUN_ALL_TESTS=1 .. && make",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum PolyglotError {
    #[error("unknown language `{0}` (known: python, go, rust, javascript, java, cpp)")]
    UnknownLanguage(String),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct MetaConfig {
    files: MetaFiles,
}

#[derive(Deserialize)]
struct MetaFiles {
    #[serde(default)]
    solution: Vec<String>,
    #[serde(default)]
    test: Vec<String>,
}

/// The task lines for `languages` (all known ones when empty), and the exercises skipped (why).
pub fn convert(
    root: &Path,
    languages: &[String],
) -> Result<(Vec<Value>, Vec<String>), PolyglotError> {
    let chosen: Vec<(&str, &str)> = if languages.is_empty() {
        LANGUAGES.to_vec()
    } else {
        languages
            .iter()
            .map(|l| {
                let l = l.trim().to_ascii_lowercase();
                LANGUAGES
                    .iter()
                    .find(|(name, _)| *name == l)
                    .copied()
                    .ok_or(PolyglotError::UnknownLanguage(l))
            })
            .collect::<Result<_, _>>()?
    };
    let mut tasks = Vec::new();
    let mut skipped = Vec::new();
    for (language, test_cmd) in chosen {
        let practice = root.join(language).join("exercises/practice");
        let entries = std::fs::read_dir(&practice).map_err(|source| PolyglotError::Read {
            path: practice.clone(),
            source,
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            match exercise(&dir, language, test_cmd) {
                Ok(task) => tasks.push(task),
                Err(why) => skipped.push(format!("{}: {why}", dir.display())),
            }
        }
    }
    Ok((tasks, skipped))
}

fn exercise(dir: &Path, language: &str, test_cmd: &str) -> Result<Value, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("a folder name that is not UTF-8")?;
    let config = std::fs::read_to_string(dir.join(".meta/config.json"))
        .map_err(|e| format!(".meta/config.json: {e}"))?;
    let config: MetaConfig =
        serde_json::from_str(&config).map_err(|e| format!(".meta/config.json: {e}"))?;
    let mut instructions = std::fs::read_to_string(dir.join(".docs/instructions.md"))
        .map_err(|e| format!(".docs/instructions.md: {e}"))?;
    if let Ok(more) = std::fs::read_to_string(dir.join(".docs/instructions.append.md")) {
        instructions.push_str("\n\n");
        instructions.push_str(&more);
    }
    if config.files.solution.is_empty() || config.files.test.is_empty() {
        return Err("files.solution or files.test is empty".into());
    }
    let unsafe_path = |p: &String| p.starts_with('/') || p.split('/').any(|c| c == "..");
    if config.files.test.iter().any(unsafe_path) {
        return Err("a test path leaves the exercise".into());
    }
    if let Some(missing) = config.files.test.iter().find(|t| !dir.join(t).is_file()) {
        return Err(format!("test file {missing} is missing"));
    }
    let prompt = format!(
        "{}\n\nSolve this exercise by editing {}. Keep the names of existing functions, classes \
         and types: the tests (not shown to you) use them. Use only the language's standard \
         library.",
        instructions.trim(),
        config.files.solution.join(", ")
    );
    let mut hidden = vec![".meta".to_string()];
    hidden.extend(config.files.test.iter().cloned());
    Ok(json!({
        "id": format!("{language}-{name}"),
        "repo": dir.canonicalize().map_err(|e| e.to_string())?,
        "prompt": prompt,
        "test_cmd": test_cmd.replace("{tests}", &config.files.test.join(" ")),
        "hidden_paths": hidden,
    }))
}

/// `eval --polyglot ROOT --languages … --out-tasks FILE`: the exit code (2 for bad input).
pub fn convert_cli(root: &Path, languages: &[String], out: &Path) -> i32 {
    let (tasks, skipped) = match convert(root, languages) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}", crate::sanitize::visible(&e.to_string()));
            return 2;
        }
    };
    for why in &skipped {
        eprintln!("skipped {}", crate::sanitize::visible(why));
    }
    let text: String = tasks.iter().map(|t| format!("{t}\n")).collect();
    if let Err(e) = std::fs::write(out, text) {
        eprintln!("error: {}: {e}", out.display());
        return 2;
    }
    eprintln!("{} tasks written to {}", tasks.len(), out.display());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise_dir(root: &Path, lang: &str, name: &str, config: &str) -> PathBuf {
        let dir = root.join(lang).join("exercises/practice").join(name);
        std::fs::create_dir_all(dir.join(".docs")).unwrap();
        std::fs::create_dir_all(dir.join(".meta")).unwrap();
        std::fs::write(
            dir.join(".docs/instructions.md"),
            "# Leap\n\nIs it a leap year?\n",
        )
        .unwrap();
        std::fs::write(dir.join(".meta/config.json"), config).unwrap();
        for test in ["leap_test.py", "leap_test.go"] {
            std::fs::write(dir.join(test), "").unwrap();
        }
        dir
    }

    #[test]
    fn exercises_become_tasks_that_hide_their_tests_and_example() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        exercise_dir(
            root,
            "python",
            "leap",
            r#"{"files": {"solution": ["leap.py"], "test": ["leap_test.py"], "example": [".meta/example.py"]}}"#,
        );
        exercise_dir(
            root,
            "go",
            "leap",
            r#"{"files": {"solution": ["leap.go"], "test": ["leap_test.go"]}}"#,
        );
        exercise_dir(root, "go", "broken", "{}");
        let dir = root.join("python/exercises/practice/leap");
        std::fs::write(dir.join(".docs/instructions.append.md"), "Extra note.").unwrap();

        let (tasks, skipped) = convert(root, &["python".into(), "Go".into()]).unwrap();
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let py = &tasks[0];
        assert_eq!(py["id"], "python-leap");
        assert_eq!(py["test_cmd"], "python3 -m pytest -q leap_test.py");
        assert_eq!(py["hidden_paths"], json!([".meta", "leap_test.py"]));
        let prompt = py["prompt"].as_str().unwrap();
        assert!(prompt.contains("Is it a leap year?") && prompt.contains("Extra note."));
        assert!(prompt.contains("leap.py"));
        assert_eq!(tasks[1]["test_cmd"], "go test ./...");
        // The lines are valid task lines.
        let text: String = tasks.iter().map(|t| format!("{t}\n")).collect();
        let parsed = super::super::task::parse_tasks(Path::new("x"), &text).unwrap();
        assert_eq!(parsed[1].id, "go-leap");

        assert!(matches!(
            convert(root, &["cobol".into()]),
            Err(PolyglotError::UnknownLanguage(_))
        ));
    }
}
