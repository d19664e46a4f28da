//! The words publishing writes: branch name, commit message, pull request title and body, and the
//! `git request-pull`-style summary for remotes without pull requests.
//!
//! Invariants: pure functions of the run's data; a branch name is always valid for git and never
//! an option; a commit subject is at most 72 characters; the default body shows the evidence
//! (the commands the agent ran and their exit codes — or that it ran none). When review left part
//! of the change out ([`Scope::is_partial`]), every generated part (file list, counts) describes
//! only what is published, a left-out file is never named, the agent's summary is headed as
//! describing the full change, and the commands are said to have run against the full change.

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

/// How much of the agent's change is published: the approved patch against the run's whole patch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub files_in: usize,
    pub files: usize,
    pub hunks_in: usize,
    pub hunks: usize,
    /// How many hunks the files that are in have in the whole patch.
    pub hunks_of_files_in: usize,
}

impl Scope {
    /// Counts the files and hunks of the run's `full` patch and of its `approved` subset.
    pub fn of(full: &[u8], approved: &[u8]) -> Scope {
        let all = diff::parse(full);
        let kept = diff::parse(approved);
        let hunks_of = |fs: &[diff::FilePatch]| fs.iter().map(|f| f.hunks.len()).sum::<usize>();
        let hunks_of_files_in = all
            .iter()
            .filter(|f| kept.iter().any(|k| k.path == f.path))
            .map(|f| f.hunks.len())
            .sum();
        Scope {
            files_in: kept.len(),
            files: all.len(),
            hunks_in: hunks_of(&kept),
            hunks: hunks_of(&all),
            hunks_of_files_in,
        }
    }

    /// Whether review left some of the change out.
    pub fn is_partial(&self) -> bool {
        self.files_in < self.files || self.hunks_in < self.hunks
    }

    /// "1 of 3 files are in this PR" (or hunks, when every file is in); `what` names the target.
    pub fn in_this(&self, what: &str) -> String {
        let plural = |n: usize, one: &str| {
            if n == 1 {
                one.to_string()
            } else {
                format!("{one}s")
            }
        };
        if self.files_in < self.files {
            let mut s = format!(
                "{} of {} {}",
                self.files_in,
                self.files,
                plural(self.files, "file")
            );
            // Hunks left out of files that are in, too.
            if self.hunks_in < self.hunks_of_files_in {
                s.push_str(&format!(
                    " ({} of {} {})",
                    self.hunks_in,
                    self.hunks,
                    plural(self.hunks, "hunk")
                ));
            }
            format!(
                "{s} {} in this {what}",
                if self.files_in == 1 { "is" } else { "are" }
            )
        } else {
            format!(
                "{} of {} {} {} in this {what}",
                self.hunks_in,
                self.hunks,
                plural(self.hunks, "hunk"),
                if self.hunks_in == 1 { "is" } else { "are" }
            )
        }
    }
}

/// The heading that marks the agent's summary as describing the whole change.
fn summary_heading(scope: &Scope, what: &str) -> String {
    format!(
        "Agent's summary (of the full change; {})",
        scope.in_this(what)
    )
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
    // The setup phase's command is the environment, not the agent's work: left out.
    let mut stage = None;
    let mut runs = Vec::new();
    for event in jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
    {
        match event {
            Event::Status { stage: s, .. } => stage = Some(s),
            Event::ToolBash {
                command,
                exit_code,
                terminated,
                ..
            } if stage != Some(crate::event::Stage::Setup) => runs.push(CommandRun {
                command,
                exit_code,
                terminated,
            }),
            _ => {}
        }
    }
    runs
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

/// Subject (≤ 72 chars, from the title) and a body with the details. With part of the change
/// left out at review, the summary's details come under a heading saying they describe the full
/// change.
pub fn commit_message(
    title: &str,
    summary: &str,
    prompt: &str,
    run_id: &str,
    scope: &Scope,
) -> String {
    let subject = truncate(
        first_line(title).unwrap_or("Changes made with tiny-backspace"),
        72,
    );
    let mut msg = format!("{subject}\n");
    let rest: Vec<&str> = summary.trim().lines().collect();
    let skip = usize::from(first_line(summary).is_some_and(|l| title.starts_with(l)));
    let details = rest[skip.min(rest.len())..].join("\n");
    if !details.trim().is_empty() {
        if scope.is_partial() {
            msg.push_str(&format!("\n{}:\n", summary_heading(scope, "commit")));
        }
        msg.push_str(&format!("\n{}\n", details.trim()));
    } else if scope.is_partial() {
        msg.push_str(&format!("\n{}.\n", capitalized(&scope.in_this("commit"))));
    }
    msg.push_str(&format!(
        "\nRequested: {}\n\nMade with tiny-backspace (run {run_id}).\n",
        truncate(prompt.trim(), 500)
    ));
    msg
}

fn capitalized(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub struct BodyInput<'a> {
    pub summary: &'a str,
    pub prompt: &'a str,
    pub followups: &'a [String],
    /// The files of the approved patch (what the PR carries).
    pub files: &'a [FileChange],
    /// The approved patch against the run's whole patch.
    pub scope: Scope,
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
    let partial = i.scope.is_partial();
    if partial {
        b.push_str(&format!("### {}\n\n", summary_heading(&i.scope, "PR")));
    }
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
    let n = i.files.len();
    b.push_str(&format!(
        "\n### Files changed ({n} file{}, +{ins} −{del})\n\n",
        if n == 1 { "" } else { "s" }
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
    if partial {
        // Counts only: a left-out file is never named as part of this change.
        b.push_str(&format!(
            "\n_Left out at review: {}; {}._\n",
            left_out(&i.scope),
            i.scope.in_this("PR")
        ));
    }
    b.push_str("\n### Commands run in the sandbox\n\n");
    if i.commands.is_empty() {
        b.push_str("_The agent ran no commands: nothing was built or tested._\n");
    } else {
        if partial {
            b.push_str(
                "_These ran against the agent's full change, before part of it was left out at \
                 review: they do not show that this PR alone builds or passes._\n\n",
            );
        }
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

/// "2 files and 1 hunk" of the change that are not published.
fn left_out(scope: &Scope) -> String {
    let files = scope.files - scope.files_in.min(scope.files);
    let hunks = scope.hunks - scope.hunks_in.min(scope.hunks);
    let n = |k: usize, one: &str| format!("{k} {one}{}", if k == 1 { "" } else { "s" });
    match (files, hunks) {
        (0, h) => n(h, "hunk"),
        (f, _) => n(f, "file"),
    }
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
#[path = "text_tests.rs"]
mod tests;
