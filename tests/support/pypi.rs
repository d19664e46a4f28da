//! A PEP 503 "simple" package index on 127.0.0.1 serving one small wheel the test builds itself,
//! and the other loopback peers the setup tests need (a TCP listener that only counts, a UDP sink
//! that plays a DNS server). Nothing here reaches beyond loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The package the index serves (`import tbpkg; tbpkg.VALUE == 42`).
pub const PACKAGE: &str = "tbpkg";
pub const WHEEL: &str = "tbpkg-1.0-py3-none-any.whl";

/// Builds the wheel (a zip: the module, METADATA, WHEEL, RECORD with real hashes) into `dir` with
/// python3's zipfile.
pub fn build_wheel(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(WHEEL);
    let script = r#"
import base64, hashlib, sys, zipfile
files = {
    "tbpkg/__init__.py": b"VALUE = 42\n",
    "tbpkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tbpkg\nVersion: 1.0\n",
    "tbpkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tiny-backspace-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(data)}")
record.append("tbpkg-1.0.dist-info/RECORD,,")
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr("tbpkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
"#;
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let status = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "building the wheel failed");
    out
}

/// The index: `/simple/`, `/simple/tbpkg/` and `/files/<wheel>`; every request path is kept.
pub struct Index {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Index {
    /// Serves the wheel in `dir` (built by [`build_wheel`]) until the test process ends.
    pub fn start(dir: &Path) -> Index {
        let wheel = std::fs::read(dir.join(WHEEL)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let wheel = wheel.clone();
                let seen = seen.clone();
                std::thread::spawn(move || serve(conn, &wheel, &seen));
            }
        });
        Index { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/simple", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut conn: std::net::TcpStream, wheel: &[u8], seen: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    // A proxy may forward the absolute form.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => target,
    };
    seen.lock().unwrap().push(path.clone());
    let (status, kind, body): (&str, &str, Vec<u8>) = match path.trim_end_matches('/') {
        "/simple" => (
            "200 OK",
            "text/html",
            format!("<html><body><a href=\"{PACKAGE}/\">{PACKAGE}</a></body></html>").into_bytes(),
        ),
        "/simple/tbpkg" => (
            "200 OK",
            "text/html",
            format!("<html><body><a href=\"/files/{WHEEL}\">{WHEEL}</a></body></html>")
                .into_bytes(),
        ),
        p if p == format!("/files/{WHEEL}") => {
            ("200 OK", "application/octet-stream", wheel.to_vec())
        }
        _ => ("404 Not Found", "text/plain", b"not here".to_vec()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}

/// A TCP listener that only counts connections (a service the sandbox must not reach).
pub struct Counter {
    pub port: u16,
    hits: Arc<AtomicUsize>,
}

impl Counter {
    pub fn start() -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for mut c in listener.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nREACHED");
            }
        });
        Counter { port, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A UDP socket playing a DNS server: whatever reaches it is a leak.
pub struct UdpSink {
    pub port: u16,
    socket: UdpSocket,
}

impl UdpSink {
    pub fn start() -> UdpSink {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        UdpSink {
            port: socket.local_addr().unwrap().port(),
            socket,
        }
    }

    /// Whether any datagram arrived.
    pub fn received(&self) -> bool {
        let mut buf = [0u8; 512];
        self.socket.recv(&mut buf).is_ok()
    }
}
