//! Starts the E2B test peer (`tests/peers/e2b/peer.py`) on a free loopback port and reads its
//! test controls. Installs nothing: python3 and the pinned `e2b` package must be there already
//! (`.ci/run` installs them). When they are not, [`Peer::start`] returns why, and [`peer_or_skip`]
//! fails the test when `TB_EXPECT_BACKENDS` names `e2b`, else says so on stderr.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const API_KEY: &str = "e2b_peer_test_key";

pub struct Peer {
    child: Child,
    pub url: String,
    _state: tempfile::TempDir,
}

pub fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/e2b")
}

/// Whether `TB_EXPECT_BACKENDS` (comma-separated) names `e2b`.
pub fn e2b_expected() -> bool {
    std::env::var("TB_EXPECT_BACKENDS")
        .map(|v| v.split(',').any(|s| s.trim() == "e2b"))
        .unwrap_or(false)
}

/// The peer, or `None` after saying why it cannot run here (a failure when `e2b` is expected).
pub fn peer_or_skip(case: &str) -> Option<Peer> {
    match Peer::start() {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(
                !e2b_expected(),
                "TB_EXPECT_BACKENDS names e2b but the E2B test peer cannot run ({case}): {why}"
            );
            eprintln!("CANNOT RUN: case `{case}` on backend `e2b`: {why}");
            None
        }
    }
}

impl Peer {
    pub fn start() -> Result<Peer, String> {
        let probe = Command::new("python3")
            .args(["-c", "import e2b, connectrpc, protobuf"])
            .output()
            .map_err(|e| format!("python3 not found: {e}"))?;
        if !probe.status.success() {
            return Err(format!(
                "the e2b Python package is missing (pip install -r tests/peers/e2b/requirements.txt): {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        let state = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new("python3")
            .arg(peer_dir().join("peer.py"))
            .args(["--api-key", API_KEY, "--state-dir"])
            .arg(state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let Some(url) = line.trim().strip_prefix("E2B PEER LISTENING ") else {
            let _ = child.kill();
            return Err(format!("the peer did not start: {line:?}"));
        };
        Ok(Peer {
            url: url.to_string(),
            child,
            _state: state,
        })
    }

    /// One HTTP/1.0 request to the peer's test controls (plain TCP: no client needed).
    fn http(&self, method: &str, path: &str) -> Value {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let text = String::from_utf8_lossy(&resp);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(" 200 "), "{method} {path}: {head}");
        serde_json::from_str(body).unwrap()
    }

    fn get(&self, path: &str) -> Value {
        self.http("GET", path)
    }

    /// Every request and event the peer saw.
    pub fn log(&self) -> Vec<Value> {
        self.get("/_peer/log").as_array().unwrap().clone()
    }

    /// Whether the peer logged an event of `kind` for `sandbox`.
    pub fn saw(&self, kind: &str, sandbox: &str) -> bool {
        self.log()
            .iter()
            .any(|e| e["kind"] == kind && e["sandbox"] == sandbox)
    }

    /// Live processes of a sandbox.
    pub fn procs(&self, sandbox: &str) -> usize {
        self.get(&format!("/_peer/procs?sandbox={sandbox}"))["pids"]
            .as_array()
            .unwrap()
            .len()
    }

    /// Arms a fault (`401`, `404`, `502`, `cut`, `expire`) for the next `times` requests.
    pub fn fault(&self, kind: &str, times: u32) {
        self.http("POST", &format!("/_peer/fault?kind={kind}&times={times}"));
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM: the peer kills its sandboxes' processes before it exits.
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
