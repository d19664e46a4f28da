//! Resource limits for sandboxed commands: rlimits set in the child, and a cgroup per command.
//!
//! Invariants: rlimits are applied in the forked child before exec with plain syscalls (nothing
//! allocates); `RLIMIT_NPROC` counts per user and does nothing for root, so the process cap comes
//! from a `pids` cgroup where one can be made (root, or a delegated cgroup v2), and the memory cap
//! from a `memory` cgroup, with `RLIMIT_DATA` per process as the floor. A cgroup is created per
//! command; when the command ends every process in it is killed (`cgroup.kill` where it exists;
//! else frozen first, so a fork bomb cannot outrun the killing, then killed until empty) and the
//! cgroup removed, so `setsid`/`nohup` children cannot outlive it. A command cgroup is named
//! `tiny-backspace-<pid>-<start time>-<n>` after the process that made it (see
//! `recovery::Owner`), so that after that process died — SIGKILL runs no `Drop` — a later start
//! finds exactly its cgroups (`sandbox::leftovers`) and nobody else's.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configurable caps for every sandboxed command (see docs/sandbox.md for the defaults' reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU seconds per process (`RLIMIT_CPU`; SIGXCPU, then SIGKILL 5 s later).
    pub cpu_secs: u64,
    /// Memory per command (cgroup) and per process (`RLIMIT_DATA`).
    pub memory_bytes: u64,
    /// Processes per command (pids cgroup; `RLIMIT_NPROC` above the user's current count otherwise).
    pub max_processes: u64,
    /// Largest file a command may write (`RLIMIT_FSIZE`; SIGXFSZ).
    pub file_size_bytes: u64,
    /// The work tree (plus the private temporary directory) may not grow beyond this.
    pub workspace_bytes: u64,
    /// Size of the private `/tmp`.
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_secs: 600,
            memory_bytes: 2 << 30,
            max_processes: 512,
            file_size_bytes: 1 << 30,
            workspace_bytes: 4 << 30,
            tmp_bytes: 512 << 20,
        }
    }
}

/// One rlimit to set in the child: (resource, soft, hard).
pub(crate) type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// The rlimits for `limits`, computed in the parent (may read /proc), applied in the child.
pub(crate) fn rlimits(limits: &Limits, with_pids_cgroup: bool) -> Vec<Rlimit> {
    let mut v: Vec<Rlimit> = vec![
        (
            libc::RLIMIT_CPU,
            limits.cpu_secs,
            limits.cpu_secs.saturating_add(5),
        ),
        (libc::RLIMIT_DATA, limits.memory_bytes, limits.memory_bytes),
        (
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if !with_pids_cgroup && uid != 0 {
        // Per user: allow the user's existing processes plus the per-command budget.
        let n = count_user_processes(uid).saturating_add(limits.max_processes);
        v.push((libc::RLIMIT_NPROC, n, n));
    }
    v
}

fn count_user_processes(uid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
                .count() as u64
        })
        .unwrap_or(0)
}

/// Applies `limits` to the calling process. Async-signal-safe (for `pre_exec`).
pub(crate) fn apply_rlimits(limits: &[Rlimit]) -> std::io::Result<()> {
    for &(res, soft, hard) in limits {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls on a stack value.
        unsafe {
            libc::getrlimit(res, &mut cur);
            // Never try to raise a hard limit someone set lower.
            let hard = hard.min(cur.rlim_max);
            let new = libc::rlimit {
                rlim_cur: soft.min(hard),
                rlim_max: hard,
            };
            if libc::setrlimit(res, &new) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Which limits can actually be enforced on this machine (probed once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// A pids cgroup, or `RLIMIT_NPROC` (not root).
    pub processes: bool,
    /// A memory cgroup (otherwise only `RLIMIT_DATA` per process).
    pub memory_cgroup: bool,
    /// A cgroup to find children that left the process group (`setsid`).
    pub kill_tree: bool,
}

/// Probes (once) what the cgroup setup here allows.
pub fn enforcement() -> Enforcement {
    static E: std::sync::OnceLock<Enforcement> = std::sync::OnceLock::new();
    *E.get_or_init(|| {
        let cg = Cgroup::create(&Limits::default());
        // SAFETY: getuid cannot fail.
        let root = unsafe { libc::getuid() } == 0;
        Enforcement {
            processes: cg.as_ref().is_some_and(|c| c.has_pids) || !root,
            memory_cgroup: cg.as_ref().is_some_and(|c| c.has_memory),
            kill_tree: cg.is_some(),
        }
    })
}

/// A cgroup (in each hierarchy we could write to) holding one command's processes.
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each, open for writing: the child writes "0" to join before exec.
    join: Vec<std::fs::File>,
    kill_file: Option<PathBuf>,
    /// How to freeze the cgroup where there is no `cgroup.kill`: (state file, frozen, thawed).
    freeze: Option<(PathBuf, &'static str, &'static str)>,
    pub(crate) has_pids: bool,
    pub(crate) has_memory: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The start of the name of every command cgroup the process `tag` (pid-start time) makes.
/// How every command cgroup's name starts.
pub(super) const NAME_START: &str = "tiny-backspace-";

pub(super) fn name_prefix(tag: &str) -> String {
    format!("{NAME_START}{tag}-")
}

/// A cgroup hierarchy we may make command cgroups in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    Unified,
    Pids,
    Memory,
    Freezer,
}

/// Each hierarchy with the directory command cgroups go in (our own cgroup there), unified first:
/// with its `cgroup.kill` no v1 freezer is needed.
fn hierarchy_parents() -> Vec<(Hierarchy, PathBuf)> {
    let mut hierarchies = own_cgroups();
    hierarchies.sort_by_key(|(ctrl, _)| !ctrl.is_empty());
    let mut out = Vec::new();
    for (ctrl, path) in hierarchies {
        let rel = path.trim_start_matches('/');
        if ctrl.is_empty() {
            let base = [
                Path::new("/sys/fs/cgroup"),
                Path::new("/sys/fs/cgroup/unified"),
            ]
            .into_iter()
            .find(|b| b.join("cgroup.controllers").exists());
            if let Some(b) = base {
                out.push((Hierarchy::Unified, b.join(rel)));
            }
            continue;
        }
        let has = |c: &str| ctrl.split(',').any(|x| x == c);
        let v1 = if has("pids") {
            Some((Hierarchy::Pids, "pids"))
        } else if has("memory") {
            Some((Hierarchy::Memory, "memory"))
        } else if has("freezer") {
            Some((Hierarchy::Freezer, "freezer"))
        } else {
            None
        };
        if let Some((h, mount)) = v1 {
            out.push((h, Path::new("/sys/fs/cgroup").join(mount).join(rel)));
        }
    }
    out
}

/// The directories this process makes its command cgroups in (recorded with its runs).
pub(crate) fn cgroup_parents() -> Vec<PathBuf> {
    hierarchy_parents().into_iter().map(|(_, p)| p).collect()
}

/// Our own cgroup path per hierarchy, from /proc/self/cgroup.
fn own_cgroups() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctrl = parts.next()?.to_string();
            let path = parts.next()?.to_string();
            Some((ctrl, path))
        })
        .collect()
}

fn mkdir_in(parent: &Path, name: &str) -> Option<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).ok()?;
    Some(dir)
}

impl Cgroup {
    /// A cgroup for one command (or bwrap session) under `settings`, if allowed and possible.
    pub(crate) fn for_settings(settings: &super::SandboxSettings) -> Option<Cgroup> {
        if settings.use_cgroups {
            Cgroup::create(&settings.limits)
        } else {
            None
        }
    }

    /// Best effort: `None` when no hierarchy lets us create a child cgroup.
    pub(crate) fn create(limits: &Limits) -> Option<Cgroup> {
        let name = format!(
            "{}{}",
            name_prefix(&crate::recovery::Owner::current().cgroup_tag()),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Cgroup::create_named(limits, &name)
    }

    pub(super) fn create_named(limits: &Limits, name: &str) -> Option<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            join: Vec::new(),
            kill_file: None,
            freeze: None,
            has_pids: false,
            has_memory: false,
        };
        for (hierarchy, parent) in hierarchy_parents() {
            match hierarchy {
                Hierarchy::Unified => {
                    // cgroup v2: kill support always, limits if the controllers are delegated.
                    let Some(dir) = mkdir_in(&parent, name) else {
                        continue;
                    };
                    let controllers =
                        std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                    if controllers.split_whitespace().any(|c| c == "pids")
                        && write(&dir.join("pids.max"), &limits.max_processes.to_string())
                    {
                        cg.has_pids = true;
                    }
                    if controllers.split_whitespace().any(|c| c == "memory")
                        && write(&dir.join("memory.max"), &limits.memory_bytes.to_string())
                    {
                        let _ = write(&dir.join("memory.swap.max"), "0");
                        cg.has_memory = true;
                    }
                    cg.note_kill_files(&dir);
                    cg.add(dir);
                }
                Hierarchy::Pids if !cg.has_pids => {
                    let Some(dir) = mkdir_in(&parent, name) else {
                        continue;
                    };
                    cg.has_pids = write(&dir.join("pids.max"), &limits.max_processes.to_string());
                    cg.add(dir);
                }
                Hierarchy::Memory if !cg.has_memory => {
                    let Some(dir) = mkdir_in(&parent, name) else {
                        continue;
                    };
                    let bytes = limits.memory_bytes.to_string();
                    cg.has_memory = write(&dir.join("memory.limit_in_bytes"), &bytes);
                    let _ = write(&dir.join("memory.memsw.limit_in_bytes"), &bytes);
                    cg.add(dir);
                }
                Hierarchy::Freezer if cg.freeze.is_none() && cg.kill_file.is_none() => {
                    let Some(dir) = mkdir_in(&parent, name) else {
                        continue;
                    };
                    cg.note_kill_files(&dir);
                    cg.add(dir);
                }
                _ => {}
            }
        }
        if cg.join.is_empty() {
            return None;
        }
        tracing::debug!(
            dirs = ?cg.dirs,
            pids = cg.has_pids,
            memory = cg.has_memory,
            "command cgroup"
        );
        Some(cg)
    }

    /// An existing cgroup (the same name in each of `dirs`' hierarchies), to kill and remove.
    pub(super) fn adopt(dirs: Vec<PathBuf>) -> Cgroup {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            join: Vec::new(),
            kill_file: None,
            freeze: None,
            has_pids: false,
            has_memory: false,
        };
        for dir in &dirs {
            cg.note_kill_files(dir);
        }
        cg.dirs = dirs;
        cg
    }

    /// Remembers how `dir` can kill (v2 `cgroup.kill`) or freeze (v2 `cgroup.freeze`, v1
    /// `freezer.state`) its processes, the first way found winning.
    fn note_kill_files(&mut self, dir: &Path) {
        if self.kill_file.is_some() {
            return;
        }
        if dir.join("cgroup.kill").exists() {
            self.kill_file = Some(dir.join("cgroup.kill"));
            self.freeze = None;
            return;
        }
        if self.freeze.is_none() {
            self.freeze = if dir.join("cgroup.freeze").exists() {
                Some((dir.join("cgroup.freeze"), "1", "0"))
            } else if dir.join("freezer.state").exists() {
                Some((dir.join("freezer.state"), "FROZEN", "THAWED"))
            } else {
                None
            };
        }
    }

    fn add(&mut self, dir: PathBuf) {
        match std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
        {
            Ok(f) => {
                self.join.push(f);
                self.dirs.push(dir);
            }
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }

    /// Its directory in each hierarchy.
    #[cfg(test)]
    pub(super) fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The descriptors the child writes "0" to, in `pre_exec`.
    pub(crate) fn join_fds(&self) -> Vec<RawFd> {
        self.join.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn pids(&self) -> Vec<i32> {
        self.dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many processes the cgroup holds (from its first hierarchy).
    pub(crate) fn count(&self) -> Option<usize> {
        let d = self.dirs.first()?;
        std::fs::read_to_string(d.join("cgroup.procs"))
            .ok()
            .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// Kills every process in the cgroup and waits (briefly) until it is empty.
    pub(crate) fn kill_all(&self) {
        if let Some(k) = &self.kill_file {
            let _ = write(k, "1");
        } else if let Some((state, frozen, thawed)) = &self.freeze {
            // Frozen processes cannot fork; SIGKILL sent now takes them all on thawing.
            if write(state, frozen) {
                self.wait_frozen(state, frozen);
                self.kill_listed();
                let _ = write(state, thawed);
            }
        }
        for round in 0..400 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            kill_pids(&pids);
            std::thread::sleep(Duration::from_millis(if round < 20 { 1 } else { 10 }));
        }
        tracing::warn!(dirs = ?self.dirs, "processes left in the command cgroup after kill");
    }

    fn kill_listed(&self) {
        kill_pids(&self.pids());
    }

    /// Waits up to a second for a freeze to complete (v1 reports `FREEZING` meanwhile; v2's
    /// `cgroup.events` says `frozen 1`).
    fn wait_frozen(&self, state: &Path, frozen: &str) {
        let events = state.with_file_name("cgroup.events");
        for _ in 0..200 {
            let done = if frozen == "1" {
                std::fs::read_to_string(&events)
                    .is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1"))
            } else {
                std::fs::read_to_string(state).is_ok_and(|s| s.trim() == frozen)
            };
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn kill_pids(pids: &[i32]) {
    for &p in pids {
        // SAFETY: plain syscall; the pid was read from our own cgroup.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        self.join.clear();
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn write(path: &Path, value: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .is_ok()
}

/// Joins the cgroups whose `cgroup.procs` are open at `fds`. Async-signal-safe (for `pre_exec`).
pub(crate) fn join_cgroups(fds: &[RawFd]) -> std::io::Result<()> {
    for &fd in fds {
        // SAFETY: writes one byte from a static buffer to a descriptor we own.
        let r = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if r != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
