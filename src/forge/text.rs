//! The words publishing writes: branch name, commit message, pull request title and body, and the
//! `git request-pull`-style summary for remotes without pull requests.
//!
//! Invariants: pure functions of the run's data; a branch name is always valid for git and never
//! an option; a commit subject is at most 72 characters; the default body shows the evidence
//! (the commands the agent ran and their exit codes — or that it ran none).

use crate::diff;
use crate::event::Event;

/// One file of the approved patch, counted from its hunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub insertions: u64,
    pub deletions: u64,
    pub binary: bool,
}

pub fn file_changes(patch: &[u8]) -> Vec<FileChange> {
    diff::parse(patch)
        .into_iter()
        .map(|f| {
            let (mut ins, mut del) = (0, 0);
            for h in &f.hunks {
                for l in &h.lines {
                    match l.first() {
                        Some(b'+') => ins += 1,
                        Some(b'-') => del += 1,
                        _ => {}
                    }
                }
            }
            FileChange {
                path: f.path.clone(),
                insertions: ins,
                deletions: del,
                binary: f.binary,
            }
        })
        .collect()
}

/// A command the agent ran in the sandbox, from the run's `Tool: Bash` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    pub command: String,
    pub exit_code: i32,
    pub terminated: Option<String>,
}

/// Reads the `Tool: Bash` events of a run's `events.jsonl`.
pub fn commands_from_events(jsonl: &str) -> Vec<CommandRun> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .filter_map(|e| match e {
            Event::ToolBash {
                command,
                exit_code,
                terminated,
                ..
            } => Some(CommandRun {
                command,
                exit_code,
                terminated,
            }),
            _ => None,
        })
        .collect()
}

fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let extra = usize::from(!out.is_empty()) + word.len();
        if out.len() + extra > max {
            if out.is_empty() {
                out.push_str(&word[..max.min(word.len())]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(word);
    }
    if out.is_empty() { "change".into() } else { out }
}

/// `PREFIX<slug-of-prompt>-<short-id>`; never equal to `base`.
pub fn branch_name(prefix: &str, prompt: &str, run_id: &str, base: Option<&str>) -> String {
    let short = run_id.rsplit('-').next().unwrap_or(run_id);
    let short: String = short.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut name = format!("{prefix}{}-{short}", slug(prompt, 40));
    if Some(name.as_str()) == base {
        name.push_str("-tb");
    }
    name
}

fn first_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.trim_start_matches('#').trim())
}

/// Cuts `text` to `max` characters at a word boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

/// The default title: the summary's first line, else the prompt's; at most 72 characters.
pub fn default_title(summary: &str, prompt: &str) -> String {
    let line = first_line(summary)
        .or_else(|| first_line(prompt))
        .unwrap_or("Changes made with tiny-backspace");
    truncate(line, 72)
}

/// Subject (≤ 72 chars, from the title) and a body with the details.
pub fn commit_message(title: &str, summary: &str, prompt: &str, run_id: &str) -> String {
    let subject = truncate(
        first_line(title).unwrap_or("Changes made with tiny-backspace"),
        72,
    );
    let mut msg = format!("{subject}\n");
    let rest: Vec<&str> = summary.trim().lines().collect();
    let skip = usize::from(first_line(summary).is_some_and(|l| title.starts_with(l)));
    let details = rest[skip.min(rest.len())..].join("\n");
    if !details.trim().is_empty() {
        msg.push_str(&format!("\n{}\n", details.trim()));
    }
    msg.push_str(&format!(
        "\nRequested: {}\n\nMade with tiny-backspace (run {run_id}).\n",
        truncate(prompt.trim(), 500)
    ));
    msg
}

pub struct BodyInput<'a> {
    pub summary: &'a str,
    pub prompt: &'a str,
    pub followups: &'a [String],
    pub files: &'a [FileChange],
    pub commands: &'a [CommandRun],
    pub model: &'a str,
    pub run_id: &'a str,
}

fn code_span(text: &str) -> String {
    let one_line = text.replace('\n', " ⏎ ");
    let one_line = truncate(&one_line, 200);
    let ticks = if one_line.contains('`') { "``" } else { "`" };
    format!("{ticks}{one_line}{ticks}")
}

/// The default pull request body.
pub fn pr_body(i: &BodyInput<'_>) -> String {
    let mut b = String::new();
    let summary = i.summary.trim();
    if summary.is_empty() {
        b.push_str("_The agent gave no summary._\n");
    } else {
        b.push_str(summary);
        b.push('\n');
    }
    let (ins, del) = i
        .files
        .iter()
        .fold((0, 0), |(a, d), f| (a + f.insertions, d + f.deletions));
    b.push_str(&format!(
        "\n### Files changed ({} files, +{ins} −{del})\n\n",
        i.files.len()
    ));
    for f in i.files {
        if f.binary {
            b.push_str(&format!("- `{}` (binary)\n", f.path));
        } else {
            b.push_str(&format!(
                "- `{}` +{} −{}\n",
                f.path, f.insertions, f.deletions
            ));
        }
    }
    b.push_str("\n### Commands run in the sandbox\n\n");
    if i.commands.is_empty() {
        b.push_str("_The agent ran no commands: nothing was built or tested._\n");
    } else {
        for c in i.commands {
            let note = c
                .terminated
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            b.push_str(&format!(
                "- {} → exit {}{note}\n",
                code_span(&c.command),
                c.exit_code
            ));
        }
    }
    b.push_str("\n### Prompt\n\n");
    for l in i.prompt.trim().lines() {
        b.push_str(&format!("> {l}\n"));
    }
    for f in i.followups {
        b.push_str("\nFollow-up:\n\n");
        for l in f.trim().lines() {
            b.push_str(&format!("> {l}\n"));
        }
    }
    b.push_str(&format!(
        "\n---\nMade with tiny-backspace · model {} · run `{}`\n",
        i.model, i.run_id
    ));
    b
}

pub struct RequestPull<'a> {
    pub base_commit: &'a str,
    pub base_subject: &'a str,
    pub url: &'a str,
    pub branch: &'a str,
    pub commit: &'a str,
    pub subject: &'a str,
    pub message: &'a str,
    pub author: &'a str,
    pub files: &'a [FileChange],
}

/// A summary in the shape of `git request-pull`'s.
pub fn request_pull(r: &RequestPull<'_>) -> String {
    let rule = "-".repeat(64);
    let mut s = format!(
        "The following changes since commit {}:\n\n  {}\n\nare available in the Git repository at:\n\n  \
         {} {}\n\nfor you to fetch changes up to {}:\n\n  {}\n\n{rule}\n",
        r.base_commit, r.base_subject, r.url, r.branch, r.commit, r.subject
    );
    let body: Vec<&str> = r.message.lines().skip(1).collect();
    let body = body.join("\n");
    if !body.trim().is_empty() {
        s.push_str(body.trim());
        s.push('\n');
    }
    s.push_str(&format!(
        "\n{rule}\n{} (1):\n      {}\n\n",
        r.author, r.subject
    ));
    let width = r.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    let (mut ins, mut del) = (0, 0);
    for f in r.files {
        ins += f.insertions;
        del += f.deletions;
        let change = if f.binary {
            "Bin".to_string()
        } else {
            format!(
                "{} {}{}",
                f.insertions + f.deletions,
                "+".repeat(f.insertions.min(40) as usize),
                "-".repeat(f.deletions.min(40) as usize)
            )
        };
        s.push_str(&format!(" {:<width$} | {change}\n", f.path));
    }
    s.push_str(&format!(
        " {} file{} changed, {ins} insertion{}(+), {del} deletion{}(-)\n",
        r.files.len(),
        if r.files.len() == 1 { "" } else { "s" },
        if ins == 1 { "" } else { "s" },
        if del == 1 { "" } else { "s" },
    ));
    s
}

#[cfg(test)]
mod tests {
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
        let m = commit_message(&long, "Fixed it.\nAlso refactored x.", "fix it", "r1");
        let subject = m.lines().next().unwrap();
        assert!(subject.chars().count() <= 72);
        assert!(m.contains("Also refactored x.") && m.contains("Requested: fix it"));
    }

    #[test]
    fn body_lists_evidence() {
        let files = file_changes(
            b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n-x\n+y\n+z\n ctx\n",
        );
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
                commands: &commands,
                model: "m",
                run_id: "r",
            }
        });
        assert!(none.contains("ran no commands"));
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
}
