//! A private tmux server driving the real binary, for end-to-end tests of the terminal UI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server (own socket) that is killed when dropped.
pub struct Tmux {
    pub socket: PathBuf,
}

impl Tmux {
    /// A detached session `e2e` of `width`×`height` running `sh -c command` (in `cwd`, if given).
    pub fn start(
        socket: PathBuf,
        width: u16,
        height: u16,
        cwd: Option<&std::path::Path>,
        command: &str,
    ) -> Tmux {
        let tmux = Tmux { socket };
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec!["new-session", "-d", "-s", "e2e", "-x", &w, "-y", &h];
        let cwd = cwd.map(|c| c.display().to_string());
        if let Some(c) = &cwd {
            args.extend(["-c", c.as_str()]);
        }
        args.extend(["sh", "-c", command]);
        let out = tmux.cmd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn send_text(&self, text: &str) {
        let out = self.cmd(&["send-keys", "-t", "e2e", "-l", text]);
        assert!(out.status.success());
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    pub fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "e2e"]).status.success()
    }

    /// Waits until the screen contains `needle` (generous deadline: a debug build on a busy box).
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `cond` holds for the screen, `what` naming it in the failure (deadline 120 s:
    /// a debug build on a busy box).
    pub fn wait_until(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
