//! Host git reads attributes from nowhere the agent can write.
//!
//! Why: `.gitattributes` files in the work tree change what git shows and stages — `-diff` or
//! `binary` turn a change into an opaque binary patch (+0 −0 in review), `text`/`eol`/`crlf`,
//! `ident` and `working-tree-encoding` rewrite bytes on `git add`, `diff=<driver>` picks drivers.
//! The agent writes the work tree, so none of that may apply.
//!
//! Two layers, so it holds on any git:
//! - `GIT_ATTR_SOURCE=<the empty tree>` (git ≥ 2.40): attributes are read from that tree instead
//!   of the work tree, i.e. from nowhere. Older git ignores the variable.
//! - [`PINS`] in the host-only `$GIT_DIR/info/attributes`, which outranks every `.gitattributes`
//!   (and the macros they define): each attribute that changes a diff, an add, an apply or a
//!   checkout is pinned to "unspecified" (`!attr`) for every path. This is what git 2.39 relies
//!   on. git's own binary detection (a NUL in the first 8000 bytes) still applies to content.
//!
//! Invariant: both layers are in place for every workspace repository (written at clone, through
//! the clone's template, so the checkout itself converts nothing) and for the publish repository.

use std::path::Path;

/// Every attribute that alters content or how it is diffed, pinned to unspecified.
pub const PINS: &str = "# written by tiny-backspace: work-tree attributes change nothing on the host\n\
* !text !eol !crlf !ident !filter !working-tree-encoding !diff !merge !binary !whitespace !encoding\n";

/// Writes [`PINS`] as `info/attributes` of the git directory `git_dir`.
pub fn write_pins(git_dir: &Path) -> std::io::Result<()> {
    let info = git_dir.join("info");
    std::fs::create_dir_all(&info)?;
    std::fs::write(info.join("attributes"), PINS)
}

/// A `git clone --template` directory holding only the pins, so that the checkout the clone
/// makes already ignores the repository's attributes (the work tree holds the blobs' bytes).
pub fn clone_template() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("tb-git-template")
        .tempdir()?;
    write_pins(dir.path())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A repository where the agent's tricks are staged: a `-diff` line for `app.py`, a macro
    /// hiding `*.md`, and `eol=crlf` for `*.txt`.
    fn tricked(dir: &Path) {
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("app.py"), "a\n").unwrap();
        std::fs::write(dir.join("r.md"), "r\n").unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-qm", "base"]);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("app.py"), "a\nINJECTED\n").unwrap();
        std::fs::write(dir.join("r.md"), "r\nHIDDEN\n").unwrap();
        std::fs::write(dir.join("c.txt"), "x\r\ny\r\n").unwrap();
        std::fs::write(
            dir.join(".gitattributes"),
            "[attr]hide -diff -text\n*.md hide\n*.txt text eol=crlf\napp.py binary\n",
        )
        .unwrap();
    }

    /// `git add -A` and `git diff --cached HEAD` as the host runs them, with `attr_source`.
    fn staged_patch(dir: &Path, attr_source: Option<&str>) -> Vec<u8> {
        let run = |args: &[&str]| {
            let mut cmd = Command::new("git");
            cmd.args([
                "-c",
                "core.attributesFile=/dev/null",
                "-c",
                "core.autocrlf=false",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
            if let Some(s) = attr_source {
                cmd.env("GIT_ATTR_SOURCE", s);
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        run(&["add", "-A"]);
        run(&["diff", "--cached", "--binary", "HEAD"])
    }

    fn assert_untricked(patch: &[u8], what: &str) {
        let text = String::from_utf8_lossy(patch);
        assert!(text.contains("+INJECTED\n"), "{what}:\n{text}");
        assert!(text.contains("+HIDDEN\n"), "{what}:\n{text}");
        assert!(text.contains("+x\r\n+y\r\n"), "{what}:\n{text:?}");
        assert!(!text.contains("GIT binary patch"), "{what}:\n{text}");
    }

    #[test]
    fn the_tricks_work_on_plain_git() {
        let t = tempfile::tempdir().unwrap();
        tricked(t.path());
        let text = String::from_utf8_lossy(&staged_patch(t.path(), None)).into_owned();
        assert!(!text.contains("+INJECTED"), "{text}");
        assert!(!text.contains("\r\n"), "{text:?}");
    }

    #[test]
    fn the_pins_alone_undo_them_as_on_git_older_than_2_40() {
        let t = tempfile::tempdir().unwrap();
        tricked(t.path());
        write_pins(&t.path().join(".git")).unwrap();
        assert_untricked(&staged_patch(t.path(), None), "pins only");
    }

    #[test]
    fn the_empty_tree_as_attribute_source_alone_undoes_them() {
        let version = Command::new("git").arg("--version").output().unwrap();
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        let mut n = version
            .trim()
            .trim_start_matches("git version ")
            .split('.')
            .map(|v| v.parse::<u32>().unwrap_or(0));
        if (n.next().unwrap_or(0), n.next().unwrap_or(0)) < (2, 40) {
            eprintln!("NOTE: {version} has no GIT_ATTR_SOURCE; the pins cover it");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        tricked(t.path());
        let empty = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        assert_untricked(
            &staged_patch(t.path(), Some(empty)),
            "attribute source only",
        );
    }
}
