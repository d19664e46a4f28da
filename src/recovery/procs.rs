//! Finding what is left of a dead run's sandbox where no cgroup holds it (the landlock backend of
//! an unprivileged user): processes whose working directory, or whose `GIT_WORK_TREE`, `GIT_DIR`
//! or `TMPDIR` (the sandbox sets all three), lies inside the run's workspace.
//!
//! Invariants: only processes with `no_new_privs` set are candidates — every landlock-sandboxed
//! process has it and cannot clear it, while a person's shell that merely `cd`'d into a kept
//! workspace normally has not; this process is never one. Best effort by design: a sandboxed
//! process that changed directory and re-executed itself with a clean environment is not found
//! this way (with a cgroup, the cgroup finds it).

use std::path::{Path, PathBuf};
use std::time::Duration;

const MARKED_VARS: [&[u8]; 3] = [b"GIT_WORK_TREE=", b"GIT_DIR=", b"TMPDIR="];

fn no_new_privs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines().any(|l| {
            l.strip_prefix("NoNewPrivs:")
                .is_some_and(|v| v.trim() == "1")
        })
    })
}

/// Whether `pid` works inside one of `roots` (by its directory or the sandbox's variables).
fn works_inside(pid: i32, roots: &[PathBuf]) -> bool {
    let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| inside(&cwd)) {
        return true;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    environ.split(|b| *b == 0).any(|kv| {
        MARKED_VARS.iter().any(|var| {
            kv.strip_prefix(*var).is_some_and(|v| {
                use std::os::unix::ffi::OsStrExt;
                inside(Path::new(std::ffi::OsStr::from_bytes(v)))
            })
        })
    })
}

fn candidates(roots: &[PathBuf]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && pid > 1)
        .filter(|&pid| no_new_privs(pid) && works_inside(pid, roots))
        .collect()
}

/// SIGKILLs every sandboxed process working inside `roots` (the workspaces of a dead run, as
/// spelled and canonicalized), stopping them first so none forks meanwhile. Returns how many.
pub fn kill_inside(roots: &[PathBuf]) -> usize {
    let mut roots: Vec<PathBuf> = roots.to_vec();
    for r in roots.clone() {
        if let Ok(c) = std::fs::canonicalize(&r)
            && !roots.contains(&c)
        {
            roots.push(c);
        }
    }
    let mut killed = std::collections::HashSet::new();
    for _ in 0..50 {
        let pids = candidates(&roots);
        if pids.is_empty() {
            break;
        }
        for &pid in &pids {
            // SAFETY: plain syscalls on processes found above (sandboxed, of the dead run).
            unsafe {
                libc::kill(pid, libc::SIGSTOP);
            }
        }
        for &pid in &pids {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_inside_with_no_new_privs_is_found_and_one_without_is_not() {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().join("ws");
        std::fs::create_dir_all(ws.join("repo")).unwrap();
        let spawn = |nnp: bool, tmpdir: &Path| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("100").current_dir("/").env("TMPDIR", tmpdir);
            if nnp {
                // SAFETY: one prctl in the child before exec.
                unsafe {
                    use std::os::unix::process::CommandExt;
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                        Ok(())
                    });
                }
            }
            cmd.spawn().unwrap()
        };
        let mut sandboxed = spawn(true, &ws.join("tmp"));
        let mut shell = spawn(false, &ws.join("tmp"));
        let mut elsewhere = spawn(true, t.path());
        let pid = |c: &std::process::Child| c.id() as i32;
        // The environment is read after exec: wait for the three to be `sleep`.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for c in [&sandboxed, &shell, &elsewhere] {
            while !std::fs::read(format!("/proc/{}/cmdline", c.id()))
                .is_ok_and(|l| l.starts_with(b"sleep\0"))
            {
                assert!(std::time::Instant::now() < deadline, "sleep did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let found = candidates(std::slice::from_ref(&ws));
        assert!(found.contains(&pid(&sandboxed)), "{found:?}");
        assert!(!found.contains(&pid(&shell)));
        assert!(!found.contains(&pid(&elsewhere)));
        assert!(kill_inside(&[ws]) >= 1);
        assert!(sandboxed.wait().unwrap().code().is_none());
        assert!(shell.try_wait().unwrap().is_none());
        assert!(elsewhere.try_wait().unwrap().is_none());
        let _ = shell.kill();
        let _ = elsewhere.kill();
        let _ = shell.wait();
        let _ = elsewhere.wait();
    }
}
