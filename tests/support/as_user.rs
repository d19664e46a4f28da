//! Running the real binary as root or, really switched, as the ordinary user `tbuser`, and reading
//! a scripted run's bash outputs and patch.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `tbuser`'s uid and gid (the machine has it; an unnamed uid otherwise).
pub fn tbuser() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"tbuser") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or((64999, 64999))
}

/// Gives `dir` (recursively) to `tbuser`.
pub fn give_to_tbuser(dir: &Path) {
    let (u, g) = tbuser();
    let ok = Command::new("chown")
        .args(["-R", &format!("{u}:{g}")])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown {}", dir.display());
}

/// `cmd` as `tbuser` (from a copy of the binary in `dir`, which it can execute). Only as root.
pub fn as_tbuser(cmd: &Command, dir: &Path) -> Command {
    assert!(is_root(), "switching users needs root");
    let (user, group) = tbuser();
    let mut c = super::support::from_a_copy_others_can_run(cmd, dir);
    // SAFETY: setgroups/setgid/setuid are async-signal-safe syscalls on plain integers.
    unsafe {
        c.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(group) != 0
                || libc::setuid(user) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// The outputs of the run's `Tool: Bash` events, in order.
pub fn bash_outputs(out: &Output) -> Vec<String> {
    super::support::events(&out.stdout)
        .iter()
        .filter(|e| e["type"] == "Tool: Bash")
        .map(|e| e["output"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The run's patch (empty without a `Diff` event).
pub fn patch(out: &Output) -> String {
    super::support::events(&out.stdout)
        .iter()
        .rev()
        .find(|e| e["type"] == "Diff")
        .and_then(|e| e["patch"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The paths of the run's `Diff` event.
pub fn diff_paths(out: &Output) -> Vec<String> {
    super::support::events(&out.stdout)
        .iter()
        .rev()
        .find(|e| e["type"] == "Diff")
        .and_then(|e| e["files"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|f: &Value| f["path"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `cmd.output()`, retried while the freshly copied binary is "text file busy": another test
/// thread forking at the moment of the copy holds a writable descriptor to it for an instant.
pub fn output_retrying_busy(cmd: &mut Command) -> Output {
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other.unwrap(),
        }
    }
    panic!("the binary stayed busy: {cmd:?}");
}
