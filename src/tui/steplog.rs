//! The step log: one entry per stage, tool call, model message or error, built from pipeline
//! events.
//!
//! Invariants: memory is bounded whatever the event rate — at most [`MAX_ENTRIES`] entries (the
//! oldest are dropped and counted), each entry's text capped at [`MAX_TEXT`] bytes (the tail is
//! kept); all text is sanitized on the way in, so drawing never emits terminal escapes. The view
//! follows the tail unless the user moved the selection up.

use std::collections::VecDeque;

use super::sanitize;
use crate::event::{Event, Stage};

pub const MAX_ENTRIES: usize = 2000;
/// Text kept per entry: between this and twice this many bytes (the newest).
pub const MAX_TEXT: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Stage(Stage),
    Read,
    Edit,
    Bash,
    Search,
    List,
    ToolError,
    Plan,
    Model,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    Running,
    Ok,
    Failed,
    Info,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub title: String,
    /// Full output (tool output, whole model text, stage messages), shown when expanded.
    pub detail: String,
    pub status: EntryStatus,
    pub started_ms: u64,
    pub duration_ms: Option<u64>,
    pub expanded: bool,
    /// Model text still streaming in.
    pub streaming: bool,
}

#[derive(Debug, Clone, Default)]
pub struct StepLog {
    pub entries: VecDeque<Entry>,
    /// Entries dropped from the front to bound memory.
    pub dropped: usize,
    /// The selected entry; `None` follows the tail.
    pub selected: Option<usize>,
    /// Rows of the selected entry's expanded detail scrolled past (its title stays on top).
    pub scroll: usize,
}

/// The rows of an expanded entry's detail, wrapped at `room` columns (a model message's first line
/// is its title, so it is not repeated).
pub fn detail_rows(e: &Entry, room: usize) -> impl Iterator<Item = String> + '_ {
    let room = room.max(1);
    let skip = usize::from(e.kind == EntryKind::Model);
    e.detail.lines().skip(skip).flat_map(move |l| {
        let chars: Vec<char> = l.chars().collect();
        let n = chars.len().div_ceil(room).max(1);
        (0..n).map(move |i| {
            chars[(i * room).min(chars.len())..((i + 1) * room).min(chars.len())]
                .iter()
                .collect()
        })
    })
}

/// The columns an expanded entry's detail wraps at, in a steps pane `inner_width` wide (it is
/// indented by four).
pub fn detail_room(inner_width: usize) -> usize {
    inner_width.saturating_sub(4).max(10)
}

/// How many rows [`detail_rows`] yields, without building them.
pub fn detail_row_count(e: &Entry, room: usize) -> usize {
    let room = room.max(1);
    let skip = usize::from(e.kind == EntryKind::Model);
    e.detail
        .lines()
        .skip(skip)
        .map(|l| l.chars().count().div_ceil(room).max(1))
        .sum()
}

/// Keeps the tail of `s` once it grows past twice the cap (trimming in steps keeps a stream of
/// small appends linear instead of moving the whole text on every append).
fn cap_tail(s: &mut String) {
    if s.len() > 2 * MAX_TEXT {
        let mut cut = s.len() - MAX_TEXT;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s.replace_range(..cut, "…");
    }
}

fn capped(s: &str) -> String {
    let mut out = sanitize::clean(s).into_owned();
    cap_tail(&mut out);
    out
}

/// An edit as the lines it adds and removes (`+`/`-`, unchanged ones with a space), and their
/// counts. The texts are capped first, so a huge edit stays cheap.
fn edit_lines(old: &str, new: &str) -> (usize, usize, String) {
    let old = &old[..old.floor_char_boundary(MAX_TEXT)];
    let new = &new[..new.floor_char_boundary(MAX_TEXT)];
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed, mut text) = (0, 0, String::new());
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Insert => {
                added += 1;
                '+'
            }
            similar::ChangeTag::Delete => {
                removed += 1;
                '-'
            }
            similar::ChangeTag::Equal => ' ',
        };
        text.push(sign);
        text.push_str(change.value().trim_end_matches('\n'));
        text.push('\n');
    }
    (added, removed, text)
}

impl StepLog {
    fn push(
        &mut self,
        kind: EntryKind,
        title: String,
        status: EntryStatus,
        now: u64,
    ) -> &mut Entry {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.pop_front();
            self.dropped += 1;
            if let Some(s) = self.selected.as_mut() {
                *s = s.saturating_sub(1);
            }
        }
        self.entries.push_back(Entry {
            kind,
            title,
            detail: String::new(),
            status,
            started_ms: now,
            duration_ms: None,
            expanded: false,
            streaming: false,
        });
        let last = self.entries.len() - 1;
        &mut self.entries[last]
    }

    /// Marks every running entry finished (ok, or failed when `failed`).
    pub fn close_running(&mut self, now: u64, failed: bool) {
        for e in self.entries.iter_mut() {
            if e.status == EntryStatus::Running {
                e.status = if failed {
                    EntryStatus::Failed
                } else {
                    EntryStatus::Ok
                };
                e.duration_ms = Some(now.saturating_sub(e.started_ms));
            }
            e.streaming = false;
        }
    }

    fn close_stages(&mut self, now: u64) {
        for e in self.entries.iter_mut() {
            if matches!(e.kind, EntryKind::Stage(_)) && e.status == EntryStatus::Running {
                e.status = EntryStatus::Ok;
                e.duration_ms = Some(now.saturating_sub(e.started_ms));
            }
        }
    }

    fn current_stage(&self) -> Option<Stage> {
        self.entries.iter().rev().find_map(|e| match e.kind {
            EntryKind::Stage(s) => Some(s),
            _ => None,
        })
    }

    fn last_model_streaming(&mut self) -> Option<&mut Entry> {
        self.entries
            .back_mut()
            .filter(|e| e.kind == EntryKind::Model && e.streaming)
    }

    /// Adds what `event` says to the log. `now` is the UI clock in milliseconds.
    pub fn ingest(&mut self, event: &Event, now: u64) {
        match event {
            Event::Status { stage, message, .. } => {
                let message = sanitize::one_line(message);
                if self.current_stage() == Some(*stage)
                    && let Some(e) = self
                        .entries
                        .iter_mut()
                        .rev()
                        .find(|e| e.kind == EntryKind::Stage(*stage))
                {
                    if !e.detail.is_empty() {
                        e.detail.push('\n');
                    }
                    e.detail.push_str(&message);
                    cap_tail(&mut e.detail);
                    e.title = format!("{} · {message}", stage.as_str());
                    if crate::pipeline::machine::is_setback(&message) {
                        e.status = EntryStatus::Failed;
                        e.duration_ms = Some(now.saturating_sub(e.started_ms));
                    }
                    return;
                }
                self.close_stages(now);
                let status = if crate::pipeline::machine::is_setback(&message) {
                    // A publish or follow-up that did not go through (the run is back in review).
                    EntryStatus::Failed
                } else if *stage == Stage::Review {
                    EntryStatus::Info
                } else {
                    EntryStatus::Running
                };
                let e = self.push(
                    EntryKind::Stage(*stage),
                    format!("{} · {message}", stage.as_str()),
                    status,
                    now,
                );
                e.detail = message;
            }
            Event::ToolRead { filepath, .. } => {
                self.push(
                    EntryKind::Read,
                    format!("Read {}", sanitize::one_line(filepath)),
                    EntryStatus::Ok,
                    now,
                );
            }
            Event::ToolEdit {
                filepath,
                old_str,
                new_str,
                ..
            } => {
                // Counted like the diff counts: lines the edit left alone are not changes.
                let (added, removed, detail) = edit_lines(old_str, new_str);
                let title = format!(
                    "Edit {} (+{added} −{removed})",
                    sanitize::one_line(filepath),
                );
                let detail = capped(&detail);
                let e = self.push(EntryKind::Edit, title, EntryStatus::Ok, now);
                e.detail = detail;
            }
            Event::ToolBash {
                command,
                output,
                exit_code,
                duration_ms,
                terminated,
                ..
            } => {
                let mut title = format!("Bash {} → exit {exit_code}", sanitize::one_line(command));
                if *duration_ms >= 100 {
                    title.push_str(&format!(" · {}", fmt_duration(*duration_ms)));
                }
                if let Some(t) = terminated {
                    title.push_str(&format!(" ({})", sanitize::one_line(t)));
                }
                let status = if *exit_code == 0 && terminated.is_none() {
                    EntryStatus::Ok
                } else {
                    EntryStatus::Failed
                };
                let e = self.push(EntryKind::Bash, title, status, now);
                e.detail = capped(output);
                e.duration_ms = Some(*duration_ms);
            }
            Event::ToolSearch {
                pattern,
                path,
                matches,
                ..
            } => {
                let inp = path
                    .as_deref()
                    .map(|p| format!(" in {}", sanitize::one_line(p)))
                    .unwrap_or_default();
                self.push(
                    EntryKind::Search,
                    format!(
                        "Search {}{inp} → {matches} matches",
                        sanitize::one_line(pattern)
                    ),
                    EntryStatus::Ok,
                    now,
                );
            }
            Event::ToolList {
                path,
                pattern,
                entries,
                ..
            } => {
                let pat = pattern
                    .as_deref()
                    .map(|p| format!(" {}", sanitize::one_line(p)))
                    .unwrap_or_default();
                self.push(
                    EntryKind::List,
                    format!("List {}{pat} → {entries} entries", sanitize::one_line(path)),
                    EntryStatus::Ok,
                    now,
                );
            }
            Event::Plan {
                steps, explanation, ..
            } => {
                let done = steps.iter().filter(|s| s.status.mark() == "[x]").count();
                let title = format!("Plan · {done}/{} steps done", steps.len());
                let e = self.push(EntryKind::Plan, title, EntryStatus::Info, now);
                e.detail = capped(&crate::event::plan_lines(steps, explanation.as_deref()));
            }
            Event::ToolError { tool, message, .. } => {
                let e = self.push(
                    EntryKind::ToolError,
                    format!(
                        "{}: {}",
                        sanitize::one_line(tool),
                        sanitize::one_line(message)
                    ),
                    EntryStatus::Failed,
                    now,
                );
                e.detail = capped(message);
            }
            Event::AiDelta { delta, .. } => {
                let delta = sanitize::clean(delta);
                if let Some(e) = self.last_model_streaming() {
                    e.detail.push_str(&delta);
                    cap_tail(&mut e.detail);
                } else {
                    let e = self.push(EntryKind::Model, String::new(), EntryStatus::Info, now);
                    e.streaming = true;
                    e.detail = delta.into_owned();
                }
            }
            Event::AiMessage { message, .. } => {
                let text = capped(message);
                if let Some(e) = self.last_model_streaming() {
                    e.detail = text;
                    e.streaming = false;
                } else if !text.trim().is_empty() {
                    let e = self.push(EntryKind::Model, String::new(), EntryStatus::Info, now);
                    e.detail = text;
                }
            }
            Event::Error { stage, message, .. } => {
                // Whatever was still running (cleanup) finished; the stage that failed is marked.
                self.close_running(now, false);
                if let Some(e) = self
                    .entries
                    .iter_mut()
                    .rev()
                    .find(|e| e.kind == EntryKind::Stage(*stage))
                {
                    e.status = EntryStatus::Failed;
                }
                let e = self.push(
                    EntryKind::Error,
                    format!("{} failed: {}", stage.as_str(), sanitize::one_line(message)),
                    EntryStatus::Failed,
                    now,
                );
                e.detail = capped(message);
            }
            Event::Done { .. } => self.close_running(now, false),
            Event::Usage { .. } | Event::Diff { .. } | Event::Pr { .. } => {}
        }
    }

    pub fn select_prev(&mut self) {
        self.scroll = 0;
        let last = self.entries.len().saturating_sub(1);
        self.selected = Some(self.selected.unwrap_or(last).saturating_sub(1));
    }

    pub fn select_next(&mut self) {
        self.scroll = 0;
        let last = self.entries.len().saturating_sub(1);
        match self.selected {
            Some(s) if s + 1 >= last => self.selected = None,
            Some(s) => self.selected = Some(s + 1),
            None => {}
        }
    }

    /// Expands or folds the selected entry (the last one when following the tail, which then
    /// becomes selected so its title stays on top while it is read).
    pub fn toggle_expand(&mut self) {
        let idx = self
            .selected
            .unwrap_or(self.entries.len().saturating_sub(1));
        self.scroll = 0;
        if let Some(e) = self.entries.get_mut(idx) {
            e.expanded = !e.expanded;
            if e.expanded {
                self.selected = Some(idx);
            }
        }
    }

    /// Moves down one row inside the selected expanded entry (`rows` detail rows, `visible` of
    /// them on screen), or to the next entry once its end is on screen.
    pub fn down(&mut self, room: usize, visible: usize) {
        if let Some(e) = self.selected.and_then(|i| self.entries.get(i))
            && e.expanded
            && self.scroll + visible < detail_row_count(e, room)
        {
            self.scroll += 1;
            return;
        }
        self.select_next();
    }

    /// Moves up one row inside the selected expanded entry, or to the previous entry from its top.
    pub fn up(&mut self) {
        if self.scroll > 0 {
            self.scroll -= 1;
        } else {
            self.select_prev();
        }
    }

    /// Scrolls the selected expanded entry by `delta` rows, staying inside it.
    pub fn scroll_by(&mut self, delta: isize, room: usize, visible: usize) {
        let Some(e) = self.selected.and_then(|i| self.entries.get(i)) else {
            return;
        };
        if !e.expanded {
            return;
        }
        let max = detail_row_count(e, room).saturating_sub(visible);
        self.scroll = self.scroll.saturating_add_signed(delta).min(max);
    }
}

pub fn fmt_duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}:{:02}", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(stage: Stage, m: &str) -> Event {
        Event::Status {
            run_id: "r".into(),
            stage,
            message: m.into(),
        }
    }

    #[test]
    fn a_publish_or_follow_up_that_did_not_go_through_is_marked_failed() {
        let mut log = StepLog::default();
        log.ingest(&status(Stage::Publish, "pushing tb/x"), 100);
        log.ingest(&status(Stage::Publish, "publishing failed: 401"), 300);
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.entries[0].status, EntryStatus::Failed);
        assert_eq!(log.entries[0].duration_ms, Some(200));
        log.ingest(&status(Stage::Review, "review the diff"), 400);
        assert_eq!(log.entries[0].status, EntryStatus::Failed, "stays failed");
        log.ingest(
            &status(Stage::Agent, "the follow-up failed: out of turns"),
            500,
        );
        assert_eq!(log.entries[2].status, EntryStatus::Failed);
    }

    #[test]
    fn stages_get_durations_and_tools_read_like_the_design() {
        let mut log = StepLog::default();
        log.ingest(&status(Stage::Clone, "cloning x"), 1000);
        log.ingest(&status(Stage::Clone, "Receiving objects 50%"), 1100);
        assert_eq!(log.entries.len(), 1, "progress updates the stage entry");
        log.ingest(&status(Stage::Agent, "running"), 1400);
        assert_eq!(log.entries[0].duration_ms, Some(400));
        log.ingest(
            &Event::ToolEdit {
                filepath: "src/main.rs".into(),
                old_str: "a\n".into(),
                new_str: "a\nb\nc\n".into(),
                run_id: None,
            },
            1500,
        );
        log.ingest(
            &Event::ToolBash {
                command: "cargo test".into(),
                output: "\x1b[32mok\x1b[0m\x1b]52;c;aGk=\x07".into(),
                exit_code: 0,
                run_id: None,
                duration_ms: 1200,
                terminated: None,
            },
            1600,
        );
        assert_eq!(
            log.entries[2].title, "Edit src/main.rs (+2 −0)",
            "counted like the diff"
        );
        assert_eq!(log.entries[2].detail, " a\n+b\n+c\n");
        assert_eq!(log.entries[3].title, "Bash cargo test → exit 0 · 1.2s");
        assert_eq!(log.entries[3].detail, "ok", "escapes stripped");
    }

    #[test]
    fn streaming_text_accumulates_then_settles() {
        let mut log = StepLog::default();
        for d in ["I'll ", "look ", "first."] {
            log.ingest(
                &Event::AiDelta {
                    run_id: "r".into(),
                    delta: d.into(),
                },
                0,
            );
        }
        assert_eq!(log.entries.len(), 1);
        assert!(log.entries[0].streaming);
        log.ingest(
            &Event::AiMessage {
                message: "I'll look first.".into(),
                run_id: None,
            },
            0,
        );
        assert_eq!(log.entries.len(), 1);
        assert!(!log.entries[0].streaming);
        assert_eq!(log.entries[0].detail, "I'll look first.");
    }

    #[test]
    fn memory_is_bounded_under_a_flood() {
        let mut log = StepLog::default();
        for i in 0..(MAX_ENTRIES + 500) {
            log.ingest(
                &Event::ToolRead {
                    filepath: format!("f{i}"),
                    run_id: None,
                },
                0,
            );
        }
        assert_eq!(log.entries.len(), MAX_ENTRIES);
        assert_eq!(log.dropped, 500);
        let big = "y".repeat(MAX_TEXT * 3);
        log.ingest(
            &Event::AiDelta {
                run_id: "r".into(),
                delta: big.clone(),
            },
            0,
        );
        log.ingest(
            &Event::AiDelta {
                run_id: "r".into(),
                delta: big,
            },
            0,
        );
        assert!(log.entries.back().unwrap().detail.len() <= 2 * MAX_TEXT);
    }
}
