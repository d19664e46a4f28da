//! Runs whose process died without finishing them (SIGKILL runs no handler; a crash or a power
//! cut neither), found and cleaned up by the next start of tiny-backspace.
//!
//! Invariants: a run is recovered only when it has not ended (`running` or `review`) and its
//! recorded owner (`owner.json`: pid, start time, boot id) is gone — a run of a live process (a
//! concurrent `serve`, another terminal) is never touched, nor one recorded on another host, nor
//! one without an owner record (older versions). Recovering a run: kill what is left of its
//! sandbox (the dead process's command cgroups; without cgroups, sandboxed processes working in
//! its workspace), remove its workspaces (the sandbox's state directory — the run's `/tmp`, `HOME`
//! and caches — lives inside; kept if the run was started with `--keep-workspace`),
//! then mark it `interrupted` — with the status it had, its patch and selection kept — and close
//! its `events.jsonl` with an `Error`, like every ended run. A run folder that never got its
//! `meta.json` (its process died during validation) is removed. Two starts recovering at once take
//! turns on a lock of the owner record. Command cgroups (named after the process that made them)
//! whose process is gone are removed too, whatever state directory that process used.

pub mod owner;
mod procs;

use std::io::Write;
use std::os::fd::AsRawFd;

use crate::event::{Event, Stage};
use crate::store::{RunDir, RunMeta, RunStatus, Store, force_remove_dir};
pub use owner::{Liveness, Owner};

/// A run found interrupted and cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub id: String,
    /// The status it had when its process ended.
    pub was: RunStatus,
}

/// Finds the runs in `store` whose process is gone, cleans them up and marks them `interrupted`.
pub fn recover(store: &Store) -> Vec<Recovered> {
    let mut recovered = Vec::new();
    for dir in store.run_dirs() {
        // Most folders are of ended runs: decided by meta.json alone.
        match dir.read_meta() {
            Ok(meta) if !meta.status.is_open() => continue,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => continue,
        }
        let Ok(owner) = dir.read_owner() else {
            continue;
        };
        if owner.liveness() != Liveness::Gone {
            continue;
        }
        let Some(_claim) = claim(&dir) else {
            continue;
        };
        // Read again under the lock: another start may have done it meanwhile.
        match dir.read_meta() {
            Ok(meta) if meta.status.is_open() => {
                recovered.push(recover_run(store, &dir, meta, &owner));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(run = %dir.id, "removing a run folder whose process died during validation");
                if let Err(e) = force_remove_dir(&dir.path) {
                    tracing::warn!(run = %dir.id, "could not remove the run folder: {e}");
                }
            }
            Err(_) => {}
        }
    }
    sweep_orphan_cgroups();
    recovered
}

/// Kills and removes the command cgroups, next to the ones this process makes, of processes that
/// are gone (e.g. killed while using another state directory, whose runs are not seen here).
fn sweep_orphan_cgroups() {
    let parents = &Owner::current().cgroup_parents;
    for (pid, start_time) in crate::sandbox::cgroup_owners(parents) {
        let owner = Owner {
            pid,
            start_time,
            ..Owner::current().clone()
        };
        if owner.liveness() == Liveness::Gone {
            let n = crate::sandbox::kill_cgroups_of(parents, &owner.cgroup_tag());
            tracing::info!(
                pid,
                n,
                "removed the command cgroups of a process that is gone"
            );
        }
    }
}

/// An exclusive, non-blocking lock on the run's owner record, held while recovering it.
fn claim(dir: &RunDir) -> Option<std::fs::File> {
    let file = std::fs::File::open(dir.owner_path()).ok()?;
    // SAFETY: flock on a descriptor we own; released when `file` is dropped.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

fn recover_run(store: &Store, dir: &RunDir, mut meta: RunMeta, owner: &Owner) -> Recovered {
    let was = meta.status;
    tracing::warn!(run = %dir.id, pid = owner.pid, status = was.as_str(), "recovering a run whose process is gone");
    // What is left of its sandbox: the dead process's cgroups (bwrap sessions and landlock
    // commands), then sandboxed processes in its workspaces (landlock without a cgroup; bwrap's
    // die with their parent on their own).
    let cgroups = crate::sandbox::kill_cgroups_of(&owner.cgroup_parents, &owner.cgroup_tag());
    let workspaces = store.workspaces_of(&dir.id);
    let processes = procs::kill_inside(&workspaces);
    tracing::info!(run = %dir.id, cgroups, processes, "stopped what was left of the sandbox");
    let workspace = if meta.keep_workspace {
        let kept: Vec<String> = workspaces.iter().map(|w| w.display().to_string()).collect();
        format!("kept its workspace ({}) as asked", kept.join(", "))
    } else {
        for ws in &workspaces {
            if let Err(e) = force_remove_dir(ws) {
                tracing::warn!(run = %dir.id, "could not remove {}: {e}", ws.display());
            }
        }
        "removed its workspace".to_string()
    };
    let patch = dir.patch_path();
    let kept = if patch.is_file() {
        format!("; the patch so far is kept at {}", patch.display())
    } else {
        String::new()
    };
    let message = format!(
        "interrupted: the tiny-backspace process running it (pid {}) ended without finishing it \
         (killed, crashed, or the machine stopped); a later start stopped what was left of its \
         sandbox and {workspace}{kept}",
        owner.pid
    );
    meta.status = RunStatus::Interrupted;
    meta.interrupted_from = Some(was);
    meta.error = Some(message.clone());
    if let Err(e) = dir.write_meta(&meta) {
        tracing::error!(run = %dir.id, "could not mark the run interrupted: {e}");
    }
    let stage = if was == RunStatus::Review {
        Stage::Review
    } else {
        last_stage(dir).unwrap_or(Stage::Agent)
    };
    let event = Event::Error {
        run_id: dir.id.clone(),
        stage,
        message,
        retryable: false,
        code: crate::event::ErrorCode::Stopped,
    };
    let appended = dir
        .open_events()
        .and_then(|mut f| writeln!(f, "{}", event.to_json_line()));
    if let Err(e) = appended {
        tracing::warn!(run = %dir.id, "could not close events.jsonl: {e}");
    }
    Recovered {
        id: dir.id.clone(),
        was,
    }
}

/// The stage of the last `Status` in the run's events (from the file's tail).
fn last_stage(dir: &RunDir) -> Option<Stage> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(dir.events_path()).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .find_map(|e| match e {
            Event::Status { stage, .. } => Some(stage),
            _ => None,
        })
}

#[cfg(test)]
mod tests;
