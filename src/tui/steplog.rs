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
/// A [`StepLog::scroll`] that stays at the end of the selected step (a running command's output
/// as it grows); drawing clamps it, keys clamp it first ([`StepLog::clamp_scroll`]).
pub const FOLLOW_END: usize = usize::MAX;
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
    /// A command running now: the tool call's id its `Output` chunks carry.
    pub call_id: Option<String>,
    /// Tokens and cost of the model calls this step stands for (a model turn, or a stage's
    /// total: the whole run's agent, or one follow-up's).
    pub usage: Option<super::steplive::StepUsage>,
    /// The file an edit or a write changed (as the event names it).
    pub path: Option<String>,
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
    /// The mouse wheel moved the view away from the selection: the first row drawn (see
    /// `steplive::rows_window`); any key that moves the selection clears it.
    pub view_top: Option<usize>,
    /// A `Usage` not yet given to a step (it came before the turn's first step).
    pub(super) pending_usage: Option<super::steplive::StepUsage>,
    /// The command streaming its output now, if any: its call id.
    pub(super) live_call: Option<String>,
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
pub(super) fn cap_tail(s: &mut String) {
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
    pub(super) fn push(
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
            call_id: None,
            usage: None,
            path: None,
        });
        let last = self.entries.len() - 1;
        if !matches!(kind, EntryKind::Stage(_)) {
            self.entries[last].usage = self.pending_usage.take();
        }
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
                e.path = Some(filepath.clone());
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
                let e = match self.take_live(now) {
                    Some(i) => {
                        let e = &mut self.entries[i];
                        e.title = title;
                        e.status = status;
                        e
                    }
                    None => self.push(EntryKind::Bash, title, status, now),
                };
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
            Event::Output { id, text, .. } => self.ingest_output(id, text, now),
            Event::Usage { .. } => self.ingest_usage(event),
            Event::LiveDiff { .. } | Event::Diff { .. } | Event::Pr { .. } => {}
        }
    }

    pub fn select_prev(&mut self) {
        self.scroll = 0;
        self.view_top = None;
        let last = self.entries.len().saturating_sub(1);
        self.selected = Some(self.selected.unwrap_or(last).saturating_sub(1));
    }

    pub fn select_next(&mut self) {
        self.scroll = 0;
        self.view_top = None;
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
        self.view_top = None;
        if let Some(e) = self.entries.get_mut(idx) {
            e.expanded = !e.expanded;
            if e.expanded {
                self.selected = Some(idx);
                if e.call_id.is_some() {
                    // A command still running is read from its end, which follows its output.
                    self.scroll = FOLLOW_END;
                }
            }
        }
    }

    /// Brings a [`FOLLOW_END`] scroll (or any past the end) back to the last screenful, before a
    /// key or the wheel moves it.
    pub fn clamp_scroll(&mut self, room: usize, visible: usize) {
        if let Some(e) = self.selected.and_then(|i| self.entries.get(i)) {
            self.scroll = self
                .scroll
                .min(detail_row_count(e, room).saturating_sub(visible));
        }
    }

    /// Moves down one row inside the selected expanded entry (`rows` detail rows, `visible` of
    /// them on screen), or to the next entry once its end is on screen.
    pub fn down(&mut self, room: usize, visible: usize) {
        self.clamp_scroll(room, visible);
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
        self.scroll = self.scroll.min(max).saturating_add_signed(delta).min(max);
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
#[path = "steplog_tests.rs"]
mod tests;
