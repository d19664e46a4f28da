//! What a dead tiny-backspace process left in the cgroup tree: its command cgroups, found by
//! name (`tiny-backspace-<pid>-<start time>-<n>`, see `limits`), killed and removed by a later
//! start (`recovery`).
//!
//! Invariants: only names carrying a start time are judged — an older version's
//! `tiny-backspace-<pid>-<n>` cannot be told from a live process that reused the pid, so it is
//! left alone; a cgroup is killed through [`Cgroup`]'s own `Drop` (`cgroup.kill`, or frozen then
//! killed), the same way a live run ends its commands.

use std::path::PathBuf;

use super::limits::{Cgroup, NAME_START, name_prefix};

/// The owning processes, as (pid, start time), of the command cgroups under `parents`.
pub(crate) fn cgroup_owners(parents: &[PathBuf]) -> std::collections::BTreeSet<(u32, u64)> {
    let mut owners = std::collections::BTreeSet::new();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(NAME_START) else {
                continue;
            };
            let parts: Vec<&str> = rest.split('-').collect();
            if let [pid, start, seq] = parts[..]
                && seq.parse::<u64>().is_ok()
                && let (Ok(pid), Ok(start)) = (pid.parse(), start.parse())
            {
                owners.insert((pid, start));
            }
        }
    }
    owners
}

/// Kills every process in the command cgroups that the process `tag` (pid-start time, see
/// `recovery::Owner::cgroup_tag`) made under `parents`, and removes them. For a process that has
/// died: its cgroups outlive it. Returns how many cgroups were found.
pub(crate) fn kill_cgroups_of(parents: &[PathBuf], tag: &str) -> usize {
    let prefix = name_prefix(tag);
    let mut by_name: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && e.file_type().is_ok_and(|t| t.is_dir()) {
                by_name.entry(name).or_default().push(e.path());
            }
        }
    }
    let found = by_name.len();
    for dirs in by_name.into_values() {
        drop(Cgroup::adopt(dirs)); // kills what is inside, then removes it
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::limits::{Limits, cgroup_parents, join_cgroups};

    #[test]
    fn the_cgroups_of_a_dead_process_are_found_by_name_killed_and_removed() {
        // A tag of its own: this test process's real cgroups belong to other tests.
        let tag = format!("test-{}", fastrand::u64(..));
        let Some(cg) = Cgroup::create_named(&Limits::default(), &format!("{}0", name_prefix(&tag)))
        else {
            eprintln!("CANNOT RUN: no writable cgroup here (not root, no delegated cgroup v2)");
            return;
        };
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("1000");
        let fds = cg.join_fds();
        // SAFETY: joins the cgroup with a plain write before exec (see `join_cgroups`).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || join_cgroups(&fds));
        }
        let mut child = cmd.spawn().unwrap();
        let dirs = cg.dirs().to_vec();
        // As if this process had been SIGKILLed: nothing runs the cgroup's Drop.
        std::mem::forget(cg);
        assert_eq!(kill_cgroups_of(&cgroup_parents(), "another"), 0);
        assert_eq!(kill_cgroups_of(&cgroup_parents(), &tag), 1);
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
        for d in dirs {
            assert!(!d.exists(), "{} is left", d.display());
        }
    }

    #[test]
    fn owners_are_read_from_names_with_a_start_time_only() {
        let t = tempfile::tempdir().unwrap();
        for name in [
            "tiny-backspace-12-34-0",
            "tiny-backspace-12-34-1",
            "tiny-backspace-56-78-0",
            "tiny-backspace-12-0",
            "tiny-backspace-x-1-2",
            "other",
        ] {
            std::fs::create_dir(t.path().join(name)).unwrap();
        }
        let parents = [t.path().to_path_buf()];
        let owners: Vec<_> = cgroup_owners(&parents).into_iter().collect();
        assert_eq!(owners, [(12, 34), (56, 78)]);
        assert_eq!(kill_cgroups_of(&parents, "12-34"), 2);
        assert!(!t.path().join("tiny-backspace-12-34-0").exists());
        assert!(t.path().join("tiny-backspace-56-78-0").exists());
        assert!(t.path().join("tiny-backspace-12-0").exists());
    }
}
