//! Slow and idle clients against a real server in-process, with short limits: headers and bodies
//! must arrive in time, bodies have a size limit, and connections beyond the cap wait their turn.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ServeOptions, bind, run};
use crate::config::Config;
use crate::secret::Secret;

const TOKEN: &str = "limits-test-token-0123456789abcdef";

async fn start(options: ServeOptions) -> (SocketAddr, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::load_from(&Default::default(), &|_| None, None, None).unwrap();
    config.home = home.path().to_path_buf();
    config.server_token = Some(Secret::new(TOKEN));
    let options = ServeOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..options
    };
    let bound = bind(config, options).await.unwrap();
    let addr = bound.local_addr().unwrap();
    tokio::spawn(run(bound, std::future::pending()));
    (addr, home)
}

/// Everything the server sends until it closes the connection (bounded in time).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn healthz(addr: SocketAddr) -> String {
    format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n")
}

#[tokio::test]
async fn headers_must_arrive_in_time() {
    let (addr, _home) = start(ServeOptions {
        header_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n").as_bytes())
        .await
        .unwrap();
    // Closed without an answer; a prompt client is still served.
    assert_eq!(read_all(&mut idle).await, "");
    assert!(!read_all(&mut partial).await.contains("200 OK"));
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    prompt.write_all(healthz(addr).as_bytes()).await.unwrap();
    assert!(read_all(&mut prompt).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn bodies_must_arrive_in_time_and_within_the_size_limit() {
    let (addr, _home) = start(ServeOptions {
        body_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let head = |len: usize| {
        format!(
            "POST /code HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {len}\r\n\r\n"
        )
    };
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(format!("{}{{\"repoUrl\"", head(100)).as_bytes())
        .await
        .unwrap();
    let answer = read_all(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"the body did not arrive within 1 s\""));

    let mut big = TcpStream::connect(addr).await.unwrap();
    big.write_all(head(10 << 20).as_bytes()).await.unwrap();
    let answer = read_all(&mut big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"field\":null"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (addr, _home) = start(ServeOptions {
        max_connections: 2,
        header_timeout: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    let mut held = vec![];
    for _ in 0..2 {
        let s = TcpStream::connect(addr).await.unwrap();
        held.push(s);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(healthz(addr).as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
    assert!(early.is_err(), "served while both slots were taken");
    drop(held.pop());
    assert!(read_all(&mut third).await.starts_with("HTTP/1.1 200"));
}
