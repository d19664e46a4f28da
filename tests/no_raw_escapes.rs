//! No raw control character reaches a terminal from the human-readable outputs (issue 12,
//! case 4): a scripted run whose model text, prompt, command output, file name and patch carry
//! escape sequences (OSC 52 clipboard write, title change, cursor moves, a C1 CSI) and a bidi
//! override, then `run` (its log), `show RUN_ID`, `runs` and `config`: none prints ESC, a C1
//! control, DEL or an invisible character — each is shown as a stand-in instead, which the test
//! also checks so that it cannot pass by the attack text going missing. `run --json` stays exact
//! JSON, ESC escaped as `\u001b`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/repo.rs"]
mod support;

use std::process::Output;

use serde_json::json;
use support::{Env, events, make_repo, script};

/// Model text, tool input and file contents full of things a terminal would obey.
fn attack_script(env: &Env) -> std::path::PathBuf {
    env.write(
        "script.json",
        &script(json!([
            {"text": "Looking first \u{1b}]0;pwned\u{7} \u{202E}gnp.exe \u{9b}2J",
             "tool_calls": [{"name": "bash", "input": {
                "command": "printf 'out \\033]52;c;ZXZpbA==\\007 \\033[2J\\033[1A\\302\\233 31m \\342\\200\\256 del\\177\\n'"}}]},
            {"tool_calls": [
                {"name": "write_file", "input": {"path": "evil.txt",
                    "content": "safe \u{1b}]0;title\u{7}\u{1b}[1A\u{1b}[2K \u{202E}} \u{2066}x\u{200B}\r\nnext\n"}},
                {"name": "write_file", "input": {"path": "name\u{1b}[31m\u{202E}.txt", "content": "x\n"}},
                {"name": "edit_file", "input": {"path": "calc.py", "old_str": "    return a / b",
                    "new_str": "    return a / b  # \u{1b}[8m hidden \u{1b}[0m"}}
            ]},
            {"text": "Done \u{1b}]52;c;ZXZpbA==\u{7}\u{202E} \u{1b}[2J"}
        ])),
    )
}

/// What must never be in a terminal's output: ESC, other C0 controls but `\n` and `\t`, DEL,
/// C1 controls (as UTF-8 or as raw bytes), and bidi/invisible characters.
fn assert_no_raw(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.contains(&0x1b),
        "{what}: a raw ESC in {}",
        show(bytes)
    );
    for (i, &b) in bytes.iter().enumerate() {
        assert!(
            b >= 0x20 || b == b'\n' || b == b'\t',
            "{what}: control byte {b:#04x} at {i} in {}",
            show(bytes)
        );
        assert!(b != 0x7f, "{what}: DEL at {i}");
    }
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e}): raw bytes could be C1 controls"));
    for c in text.chars() {
        assert!(
            !('\u{80}'..='\u{9f}').contains(&c),
            "{what}: a C1 control {:#x} in {text}",
            c as u32
        );
        assert!(
            !tiny_backspace::sanitize::is_hidden(c),
            "{what}: a raw invisible character U+{:04X} in {text}",
            c as u32
        );
    }
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn run_show_runs_and_config_print_no_raw_control_characters() {
    let env = Env::new();
    let repo = make_repo(
        &env.path("calc"),
        "main",
        &[("calc.py", "def divide(a, b):\n    return a / b\n")],
    );
    let s = attack_script(&env);
    let prompt = "Fix it \u{1b}]0;prompt\u{7} \u{202E}please";

    // `run` without --json: the log on stderr, the patch path on stdout.
    let run = env
        .command()
        .args(["run", "--repo", repo.to_str().unwrap(), "--prompt", prompt])
        .arg("--model")
        .arg(format!("scripted:{}", s.display()))
        .arg("--no-pr")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", both(&run));
    assert_no_raw("run stdout", &run.stdout);
    assert_no_raw("run stderr", &run.stderr);
    let log = both(&run);
    // The attack really went through, shown: the model's text, the command's output, the path.
    assert!(
        log.contains("Looking first ␛]0;pwned␇ <U+202E>gnp.exe <U+009B>2J"),
        "{log}"
    );
    assert!(
        log.contains("out ␛]52;c;ZXZpbA==␇ ␛[2J␛[1A<U+009B> 31m <U+202E> del␡"),
        "{log}"
    );
    assert!(log.contains("name␛[31m<U+202E>.txt"), "{log}");
    assert!(log.contains("Done ␛]52;c;ZXZpbA==␇<U+202E> ␛[2J"), "{log}");

    let runs = env.run_folders();
    assert_eq!(runs.len(), 1);
    let run_id = runs[0].file_name().unwrap().to_str().unwrap().to_string();
    let patch = std::fs::read(runs[0].join("patch.diff")).unwrap();
    assert!(
        patch.contains(&0x1b) && patch.windows(3).any(|w| w == "\u{202E}".as_bytes()),
        "the saved patch itself is exact"
    );

    // `show`: the patch with every control shown, the rest exact.
    let shown = env.run(&["show", &run_id]);
    assert_eq!(shown.status.code(), Some(0), "{}", both(&shown));
    assert_no_raw("show stdout", &shown.stdout);
    assert_no_raw("show stderr", &shown.stderr);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("prompt   Fix it ␛]0;prompt␇ <U+202E>please"),
        "{text}"
    );
    assert!(
        text.contains("+safe ␛]0;title␇␛[1A␛[2K <U+202E>} <U+2066>x<U+200B>␍\n+next\n"),
        "{text}"
    );
    assert!(
        text.contains("+    return a / b  # ␛[8m hidden ␛[0m\n"),
        "{text}"
    );
    assert!(
        text.contains("summary  Done ␛]52;c;ZXZpbA==␇<U+202E> ␛[2J"),
        "{text}"
    );

    // `runs`: the prompt and repository as listed.
    let listed = env.run(&["runs"]);
    assert_eq!(listed.status.code(), Some(0));
    assert_no_raw("runs stdout", &listed.stdout);
    assert_no_raw("runs stderr", &listed.stderr);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("Fix it ␛]0;prompt␇ <U+202E>ple"), "{text}");

    // An error at the edge naming the untrusted value.
    let missing = env.run(&["show", "no\u{1b}]0;x\u{7}such\u{202E}"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_no_raw("show error", &missing.stderr);
    assert!(
        both(&missing).contains("no␛]0;x␇such<U+202E>"),
        "{}",
        both(&missing)
    );

    // `config` with a model name (from the environment) that carries an escape.
    let config = env
        .command()
        .env("TB_MODEL", "openai:gpt\u{1b}]0;x\u{7}\u{202E}")
        .arg("config")
        .output()
        .unwrap();
    assert_no_raw("config stdout", &config.stdout);
    assert_no_raw("config stderr", &config.stderr);
    assert!(
        both(&config).contains("gpt␛]0;x␇<U+202E>"),
        "{}",
        both(&config)
    );
}

#[test]
fn json_lines_escape_esc_and_stay_exact() {
    let env = Env::new();
    let repo = make_repo(
        &env.path("calc"),
        "main",
        &[("calc.py", "def divide(a, b):\n    return a / b\n")],
    );
    let s = attack_script(&env);
    let out = env.run_scripted(&repo, "p", &s, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(!out.stdout.contains(&0x1b), "ESC is escaped in JSON");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(raw.contains("\\u001b]52;c;ZXZpbA==\\u0007"), "{raw}");
    // Parsed back, the strings are exact.
    let evs = events(&out.stdout);
    let bash = evs.iter().find(|e| e["type"] == "Tool: Bash").unwrap();
    assert!(
        bash["output"]
            .as_str()
            .unwrap()
            .contains("out \u{1b}]52;c;ZXZpbA==\u{7} \u{1b}[2J"),
        "{bash}"
    );
    let diff = evs.iter().find(|e| e["type"] == "Diff").unwrap();
    assert!(
        diff["patch"]
            .as_str()
            .unwrap()
            .contains("+safe \u{1b}]0;title\u{7}"),
        "{diff}"
    );
}
