//! Which process owns a run, recorded so that a later process can tell whether it is still alive.
//!
//! Invariants: a pid alone is not an identity (pids are reused); the pair (pid, start time from
//! `/proc/<pid>/stat` field 22, in clock ticks after boot) names one process for as long as the
//! machine is up, and the boot id tells one boot from the next (after a power cut both counters
//! start again). A record from another host is never judged: its process is not ours to see.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// `/proc/<pid>/stat` field 22: when the process started, in clock ticks after boot.
    pub start_time: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    pub host: String,
    /// Where this process makes its command cgroups (one directory per hierarchy), so that they
    /// can be found and killed after it died.
    #[serde(default)]
    pub cgroup_parents: Vec<PathBuf>,
}

/// What a later process can say about a recorded owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// The process is gone (or the pid now names another process, or the machine rebooted).
    Gone,
    /// Recorded on another host (a shared state directory): not ours to judge.
    Elsewhere,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (state, start time) of `pid` from `/proc/<pid>/stat`, or `None` if there is no such process.
pub fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (the state): field 22 is the 20th from there.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl Owner {
    /// This process (computed once).
    pub fn current() -> &'static Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start_time: stat(pid).map(|(_, t)| t).unwrap_or(0),
                boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
                host: read_trimmed("/proc/sys/kernel/hostname"),
                cgroup_parents: crate::sandbox::cgroup_parents(),
            }
        })
    }

    /// Names this process's command cgroups (see `sandbox::limits`).
    pub fn cgroup_tag(&self) -> String {
        format!("{}-{}", self.pid, self.start_time)
    }

    pub fn liveness(&self) -> Liveness {
        let me = Owner::current();
        if self.host != me.host {
            return Liveness::Elsewhere;
        }
        if self.boot_id != me.boot_id {
            return Liveness::Gone;
        }
        match stat(self.pid) {
            // A zombie has ended; it only waits for its parent to notice.
            Some((state, start)) if start == self.start_time && !matches!(state, 'Z' | 'X') => {
                Liveness::Alive
            }
            _ => Liveness::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = Owner::current();
        assert!(me.start_time > 0);
        assert!(!me.boot_id.is_empty());
        assert_eq!(me.liveness(), Liveness::Alive);
        // Same pid, another start time: the pid was reused by someone else.
        let reused = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Gone);
        let rebooted = Owner {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert_eq!(rebooted.liveness(), Liveness::Gone);
        let remote = Owner {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        assert_eq!(remote.liveness(), Liveness::Elsewhere);
    }

    #[test]
    fn an_ended_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = stat(pid).map(|(_, t)| t);
        child.wait().unwrap();
        let owner = Owner {
            pid,
            start_time: start.unwrap_or(0),
            ..Owner::current().clone()
        };
        assert_eq!(owner.liveness(), Liveness::Gone);
    }

    #[test]
    fn stat_reads_names_with_parentheses() {
        // Our own line; the parser skips past the last ')' whatever the name holds.
        let (state, start) = stat(std::process::id()).unwrap();
        assert!(state.is_ascii_alphabetic());
        assert_eq!(start, Owner::current().start_time);
    }
}
