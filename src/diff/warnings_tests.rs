use super::*;
use Warning::*;

/// A modified file's section with `body` as its hunk (a header that counts nothing: the scanner
/// does not check the counts).
fn modified(path: &str, body: &str) -> Vec<u8> {
    format!(
        "diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n@@ -1,3 +1,3 @@\n{body}"
    )
    .into_bytes()
}

fn new_file(path: &str, body: &str) -> Vec<u8> {
    format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..2222222\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,3 @@\n{body}"
    )
    .into_bytes()
}

fn w(path: &str, section: &[u8]) -> Vec<Warning> {
    file_warnings(path.as_bytes(), section)
}

#[test]
fn codes_serialize_in_snake_case() {
    let all = serde_json::to_string(&Warning::ALL).unwrap();
    assert_eq!(
        all,
        r#"["hidden_unicode","control_chars","git_control","line_endings","binary","too_large"]"#
    );
    for code in Warning::ALL {
        assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        let back: Warning = serde_json::from_str(&format!("\"{}\"", code.code())).unwrap();
        assert_eq!(back, code);
    }
}

#[test]
fn a_plain_change_has_no_warnings() {
    let s = modified(
        "src/a.rs",
        " fn a() {\n-    1\n+    2 // ünïcode ✓ ❤\u{FE0F}\n }\n",
    );
    assert_eq!(w("src/a.rs", &s), []);
    assert_eq!(w("src/a.rs", b""), []);
}

#[test]
fn hidden_unicode_in_added_lines() {
    for c in [
        '\u{202E}',
        '\u{202A}',
        '\u{2066}',
        '\u{2069}',
        '\u{200E}',
        '\u{200F}',
        '\u{061C}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{00AD}',
        '\u{E0041}',
        '\u{3164}',
        '\u{2028}',
    ] {
        let s = modified("a.py", &format!(" x\n+y = 1{c}\n z\n"));
        assert_eq!(w("a.py", &s), [HiddenUnicode], "{:04X}", c as u32);
    }
    // A run of variation selectors hides data; one after an emoji is ordinary.
    let s = modified("a.md", "+a\u{FE01}\u{E0101}\u{E0102}\n");
    assert_eq!(w("a.md", &s), [HiddenUnicode]);
    let s = modified("a.md", "+ok ❤\u{FE0F} 葛\u{E0100}\n");
    assert_eq!(w("a.md", &s), []);
}

#[test]
fn hidden_unicode_already_there_is_not_the_changes_doing() {
    let s = modified(
        "a.py",
        " access = \"user\u{202E} \u{2066}// admin\"\n-old\u{200B}\n+new\n",
    );
    assert_eq!(w("a.py", &s), []);
}

#[test]
fn a_byte_order_mark_only_at_the_start_of_the_file() {
    let s = new_file("a.txt", "+\u{FEFF}first\n+second\n");
    assert_eq!(w("a.txt", &s), []);
    let s = new_file("a.txt", "+first\n+\u{FEFF}second\n");
    assert_eq!(w("a.txt", &s), [HiddenUnicode]);
    let s = new_file("a.txt", "+x\u{FEFF}\n");
    assert_eq!(w("a.txt", &s), [HiddenUnicode]);
    // A hunk that starts at line 5 is not the start of the file.
    let s = b"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -4,1 +5,1 @@\n-x\n+\xEF\xBB\xBFx\n";
    assert_eq!(w("a", s), [HiddenUnicode]);
}

#[test]
fn invalid_utf8_is_neither_hidden_nor_control_and_never_panics() {
    let mut s = modified("latin1.txt", "");
    s.extend_from_slice(b"+caf\xE9 \x9B31m \xE2\x80\n-\xFF\n+\xF0\x9F\n");
    assert_eq!(w("latin1.txt", &s), []);
    // Truncated everywhere: no panic.
    let full = modified("a", "+\x1b[2J \u{202E}\r\n");
    for cut in 0..full.len() {
        let _ = file_warnings(&full[..cut], &full[..cut]);
    }
    assert_eq!(path_warnings(b"\xFF\xFE/\xC3"), []);
}

#[test]
fn control_chars_in_added_lines() {
    for c in [
        "\x1b",
        "\x07",
        "\x00",
        "\x0c",
        "\x7f",
        "\u{9b}",
        "\u{85}",
        "mid\rline",
    ] {
        let s = modified("a.txt", &format!(" ctx\n+a{c}b\n"));
        assert_eq!(w("a.txt", &s), [ControlChars], "{c:?}");
    }
    let s = modified("a.txt", "+\x1b]0;title\x07 \x1b[2K\x1b[1A\n");
    assert_eq!(w("a.txt", &s), [ControlChars]);
    // Tabs are text; a CR before the LF is a line ending, not a control character.
    let s = modified("a.txt", "+\tindented\r\n");
    assert!(!w("a.txt", &s).contains(&ControlChars));
    // In a context or removed line it was there before.
    let s = modified("a.txt", " \x1b[31mred\n-\x07\n+fine\n");
    assert_eq!(w("a.txt", &s), []);
}

#[test]
fn the_path_counts_as_added() {
    assert_eq!(
        path_warnings("src/\u{202E}txt.exe".as_bytes()),
        [HiddenUnicode]
    );
    assert_eq!(path_warnings(b"a\x1b]0;x\x07.txt"), [ControlChars]);
    assert_eq!(path_warnings(b"src/main.rs"), []);
    // git quotes such paths in the header; the caller may only have the quoted text.
    let s = b"diff --git \"a/\\342\\200\\256x\" \"b/\\342\\200\\256x\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/\\342\\200\\256x\"\n@@ -0,0 +1 @@\n+y\n";
    assert_eq!(w("\\342\\200\\256x", s), [HiddenUnicode]);
    let s = b"diff --git a/x \"b/\\033[2Jx\"\nnew file mode 100644\nBinary files /dev/null and \"b/\\033[2Jx\" differ\n";
    assert_eq!(w("", s), [ControlChars, Binary]);
}

#[test]
fn line_endings_flipped_on_an_existing_line() {
    let s = modified("a.txt", " one\n-two\n+two\r\n three\n");
    assert_eq!(w("a.txt", &s), [LineEndings]);
    let s = modified("a.txt", " one\r\n-two\r\n+two\n three\r\n");
    assert_eq!(w("a.txt", &s), [LineEndings]);
    // The same text moved further down the hunk, ending flipped.
    let s = modified("a.txt", "+two\r\n x\r\n-two\n");
    assert_eq!(w("a.txt", &s), [LineEndings]);
    // A real edit with the file's own ending is fine.
    let s = modified("a.txt", " one\r\n-two\r\n+2\r\n three\r\n");
    assert_eq!(w("a.txt", &s), []);
    let s = modified("a.txt", " one\n-two\n+2\n");
    assert_eq!(w("a.txt", &s), []);
}

#[test]
fn line_endings_new_to_the_file() {
    // CRLF into an LF file, LF into a CRLF file.
    let s = modified("a.txt", " one\n+new\r\n two\n");
    assert_eq!(w("a.txt", &s), [LineEndings]);
    let s = modified("a.txt", " one\r\n+new\n two\r\n");
    assert_eq!(w("a.txt", &s), [LineEndings]);
    // A file already mixed gains nothing new.
    let s = modified("a.txt", " one\r\n+new\n two\n");
    assert_eq!(w("a.txt", &s), []);
}

#[test]
fn line_endings_of_a_new_file() {
    assert_eq!(
        w("a.bat", &new_file("a.bat", "+@echo off\r\n+exit\r\n")),
        []
    );
    assert_eq!(w("a.txt", &new_file("a.txt", "+one\n+two\n")), []);
    assert_eq!(
        w("a.txt", &new_file("a.txt", "+one\r\n+two\n")),
        [LineEndings]
    );
}

#[test]
fn a_missing_final_newline_is_not_a_line_ending_change() {
    let s = modified("a.txt", " one\n-two\n\\ No newline at end of file\n+two\n");
    assert_eq!(w("a.txt", &s), []);
    let s = modified(
        "a.txt",
        " one\r\n-two\r\n+two\r\n+three\n\\ No newline at end of file\n",
    );
    assert_eq!(w("a.txt", &s), []);
}

#[test]
fn binary_sections() {
    let lit = b"diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 3\nKcmZ?wbN>Ja%V+o\n\nliteral 0\nHcmV?d00001\n\n";
    assert_eq!(w("logo.png", lit), [Binary]);
    let plain =
        b"diff --git a/x.bin b/x.bin\nindex 1..2 100644\nBinary files a/x.bin and b/x.bin differ\n";
    assert_eq!(w("x.bin", plain), [Binary]);
    let s = modified(
        "notes.md",
        "+GIT binary patch\n+Binary files a and b differ\n",
    );
    assert_eq!(w("notes.md", &s), []);
}

#[test]
fn git_control_paths() {
    for p in [
        ".gitattributes",
        "sub/dir/.gitignore",
        ".GITMODULES",
        ".mailmap",
        ".git-blame-ignore-revs",
        ".lfsconfig",
        ".pre-commit-config.yaml",
        ".git/config",
        "vendor/lib/.git/hooks/pre-commit",
        ".git./config",
        "GIT~1/config",
        ".Git",
        ".husky/pre-commit",
        "tools/.githooks/post-checkout",
        ".gitattributes. ",
    ] {
        assert_eq!(path_warnings(p.as_bytes()), [GitControl], "{p}");
    }
    for p in [
        ".github/workflows/ci.yml",
        "gitattributes.md",
        "src/.gitattributes.bak",
        ".gitkeep",
        "docs/git/intro.md",
        ".git-credentials-example/readme",
        "husky.md",
        "",
    ] {
        assert_eq!(path_warnings(p.as_bytes()), [], "{p}");
    }
}

#[test]
fn git_control_from_the_header_of_a_rename() {
    let s = b"diff --git a/attrs b/.gitattributes\nsimilarity index 100%\nrename from attrs\nrename to .gitattributes\n";
    assert_eq!(w("", s), [GitControl]);
    let s = b"diff --git a/.gitattributes b/x\nsimilarity index 100%\nrename from .gitattributes\nrename to x\n";
    assert_eq!(w("x", s), [GitControl]);
}

#[test]
fn several_warnings_at_once_come_in_order() {
    let s = new_file(".gitattributes", "+* diff=\u{202E}x\x1b\r\n+y\n");
    assert_eq!(
        w(".gitattributes", &s),
        [HiddenUnicode, ControlChars, GitControl, LineEndings]
    );
}

#[test]
fn the_scanner_takes_lines_one_by_one() {
    let s = modified("a.txt", " one\n+two\u{200B}\n");
    let mut scan = Scanner::new(b"a.txt");
    for l in s.split_inclusive(|&b| b == b'\n') {
        scan.line(l);
    }
    assert_eq!(scan.finish(), file_warnings(b"a.txt", &s));
}

/// git's own output, file by file: quoting (`core.quotePath`), binary detection, CRLF.
#[test]
fn real_git_diff_sections() {
    use std::process::Command;
    let t = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(t.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    git(&["init", "-q"]);
    std::fs::write(t.path().join("lf.txt"), "one\ntwo\nthree\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "base"]);
    std::fs::write(t.path().join("lf.txt"), "one\ntwo\r\nthree\n").unwrap();
    std::fs::write(
        t.path().join("trojan.js"),
        "let a = 1; /* \u{202E} } \u{2066} */\nok\u{200B}\n",
    )
    .unwrap();
    std::fs::write(t.path().join("esc.txt"), "title \x1b]0;pwned\x07\n").unwrap();
    std::fs::write(t.path().join("bin.dat"), b"\x00\x01\x02binary").unwrap();
    std::fs::write(t.path().join("\u{202E}gpj.sh"), "echo\n").unwrap();
    std::fs::write(t.path().join(".gitattributes"), "*.sh text\n").unwrap();
    std::fs::write(t.path().join("clean.txt"), "nothing odd\n").unwrap();
    git(&["add", "-A"]);
    let patch = git(&["diff", "--cached", "--binary"]);
    let mut sections: Vec<(String, Vec<u8>)> = Vec::new();
    for line in patch.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"diff --git ") {
            sections.push((String::from_utf8_lossy(line).into_owned(), Vec::new()));
        }
        if let Some(s) = sections.last_mut() {
            s.1.extend_from_slice(line);
        }
    }
    let by_name = |needle: &str| -> Vec<Warning> {
        let (_, s) = sections
            .iter()
            .find(|(first, _)| first.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {sections:?}", sections = sections.len()));
        // The caller's path as the TUI has it today: still quoted.
        file_warnings(b"", s)
    };
    assert_eq!(by_name("lf.txt"), [LineEndings]);
    assert_eq!(by_name("trojan.js"), [HiddenUnicode]);
    assert_eq!(by_name("esc.txt"), [ControlChars]);
    assert_eq!(by_name("bin.dat"), [Binary]);
    assert_eq!(by_name("gpj.sh"), [HiddenUnicode]);
    assert_eq!(by_name(".gitattributes"), [GitControl]);
    assert_eq!(by_name("clean.txt"), []);
}
