//! Syntax checks after an edit: does the edited file still parse?
//!
//! Invariants: a check runs through the run's sandbox like every command, only for a language
//! whose checker is installed there (a missing checker is silence, never an error), writes nothing
//! into the work tree (Python compiles in memory, no `__pycache__`), and is bounded in time and
//! output. It never decides whether an edit is applied; it only adds a note to the result.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sandbox::{ExecRequest, Sandbox, SandboxSettings};

/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of a checker's message is kept.
const CHECK_OUTPUT_CHARS: usize = 1500;

/// Compiles in memory and prints `file:line:col: message` (no traceback, no `.pyc`).
const PYTHON: &str = "import sys
try:
    compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')
except (SyntaxError, ValueError) as e:
    print('%s:%s:%s: %s' % (getattr(e, 'filename', sys.argv[1]), getattr(e, 'lineno', '?'), getattr(e, 'offset', '?'), getattr(e, 'msg', e)))
    sys.exit(1)";

/// The checker for a file, by extension: its program and its shell command for `quoted` path.
pub fn checker_for(path: &str) -> Option<(&'static str, String)> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    let quoted = shell_quote(path);
    Some(match ext {
        "py" => (
            "python3",
            format!("python3 -c {} {quoted}", shell_quote(PYTHON)),
        ),
        "js" | "mjs" | "cjs" => ("node", format!("node --check {quoted}")),
        "sh" | "bash" => ("bash", format!("bash -n {quoted}")),
        "go" => ("gofmt", format!("gofmt -e {quoted} >/dev/null")),
        _ => return None,
    })
}

/// A path as one shell word; a leading `-` is kept from reading as an option.
fn shell_quote(s: &str) -> String {
    let s = if s.starts_with('-') {
        format!("./{s}")
    } else {
        s.to_string()
    };
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The checker's message when `path` does not parse; `None` when it parses, when no checker
/// applies or is installed, or when the check could not finish.
pub async fn syntax_error(
    sandbox: &dyn Sandbox,
    settings: &SandboxSettings,
    path: &str,
    cancel: &CancellationToken,
) -> Option<(&'static str, String)> {
    let (program, command) = checker_for(path)?;
    let request = ExecRequest {
        command: format!("command -v {program} >/dev/null 2>&1 || exit 0\n{command}"),
        timeout: CHECK_TIMEOUT.min(settings.max_timeout),
    };
    let out = sandbox.exec(&request, cancel).await.ok()?;
    if out.exit_code == 0 || out.terminated.is_some() {
        return None;
    }
    let message = super::tools::cap_text(out.output.trim(), CHECK_OUTPUT_CHARS);
    Some((program, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkers_by_extension_and_quoting() {
        assert_eq!(checker_for("a.sh").unwrap().1, "bash -n 'a.sh'");
        assert_eq!(checker_for("-x.js").unwrap().1, "node --check './-x.js'");
        assert_eq!(
            checker_for("it's.go").unwrap().1,
            "gofmt -e 'it'\\''s.go' >/dev/null"
        );
        assert!(
            checker_for("a.py")
                .unwrap()
                .1
                .starts_with("python3 -c 'import sys")
        );
        assert!(checker_for("README").is_none() && checker_for("a.rs").is_none());
    }
}
