//! A directory-style npm registry on 127.0.0.1 for tests: one package, its packument at `/NAME`
//! (with `dist.tarball` and `dist.integrity`) and its tarball, built with `tar` and `gzip`.
//! Counts requests; each connection is bounded by timeouts; the thread lives as long as the test
//! process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha512};

pub struct Registry {
    pub port: u16,
    pub name: String,
    hits: Arc<AtomicUsize>,
}

impl Registry {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `package/package.json` and `package/index.js` (exporting `hello()` → `GREETING`), as a `.tgz`.
fn tarball(dir: &Path, name: &str) -> Vec<u8> {
    let pkg = dir.join("package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("package.json"),
        format!("{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"main\":\"index.js\"}}\n"),
    )
    .unwrap();
    std::fs::write(
        pkg.join("index.js"),
        "exports.hello = () => 'HELLO-FROM-LOCAL-REGISTRY';\n",
    )
    .unwrap();
    let out = dir.join("pkg.tgz");
    let ok = std::process::Command::new("tar")
        .args(["-czf"])
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg("package")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar");
    std::fs::read(out).unwrap()
}

/// Starts the registry serving one package called `name`.
pub fn start(name: &str) -> Registry {
    let scratch = tempfile::tempdir().unwrap();
    let tgz = tarball(scratch.path(), name);
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tgz))
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tarball_path = format!("/{name}/-/{name}-1.0.0.tgz");
    let packument = serde_json::json!({
        "name": name,
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {
            "name": name,
            "version": "1.0.0",
            "main": "index.js",
            "dist": {
                "tarball": format!("http://127.0.0.1:{port}{tarball_path}"),
                "integrity": integrity,
            }
        }}
    })
    .to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let doc_path = format!("/{name}");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&head);
            let target = text.split_whitespace().nth(1).unwrap_or("/");
            // Origin form from the proxy; absolute form if a client came directly.
            let path = match target.split_once("://") {
                Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
                None => target,
            };
            let path = path.split('?').next().unwrap_or("/");
            let (status, ctype, body): (&str, &str, Vec<u8>) = if path == doc_path {
                ("200 OK", "application/json", packument.clone().into_bytes())
            } else if path == tarball_path {
                ("200 OK", "application/octet-stream", tgz.clone())
            } else {
                ("404 Not Found", "application/json", b"{}".to_vec())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    Registry {
        port,
        name: name.to_string(),
        hits,
    }
}
