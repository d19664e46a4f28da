//! Network mode `allowlist`: the sandbox reaches nothing but the run's proxy, and the proxy
//! forwards only to allow-listed hosts. Every case runs on every backend available here (see
//! `sandbox_common`); the servers are loopback listeners the test starts.
//!
//! Attacks tried from inside: a direct TCP connect to the allow-listed server (skipping the
//! proxy), to a server not on the list, a UDP datagram (what a DNS lookup sends), and asking the
//! proxy for a server not on the list (plain HTTP and CONNECT). Each must fail, and the server
//! not on the list must see no connection at all.

#![allow(clippy::unwrap_used)]

mod sandbox_common;
#[path = "support/repo.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sandbox_common::*;
use serde_json::json;
use tiny_backspace::sandbox::{AllowHost, SandboxKind, set_bridge_program};

/// A loopback HTTP server answering every request with `body`; counts connections. Each
/// connection is bounded by read/write timeouts; the thread lives as long as the test process.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

fn server(body: &'static str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Server { port, hits }
}

fn allowlist_settings(
    kind: SandboxKind,
    hosts: &[String],
) -> tiny_backspace::sandbox::SandboxSettings {
    set_bridge_program(env!("CARGO_BIN_EXE_tiny-backspace").into());
    let mut s = settings(kind, false);
    s.allow_hosts = Some(hosts.iter().map(|h| AllowHost::parse(h).unwrap()).collect());
    s
}

/// A raw HTTP request through `$HTTP_PROXY` with bash alone (no curl or python needed).
fn via_proxy(request: &str) -> String {
    format!(
        "p=${{HTTP_PROXY##*:}}; [ -n \"$HTTP_PROXY\" ] || {{ echo NO-PROXY-VAR; exit 9; }}; \
         exec 3<>/dev/tcp/127.0.0.1/$p || exit 8; printf '{request}' >&3; timeout 20 cat <&3"
    )
}

fn direct(port: u16) -> String {
    format!(
        "if timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then echo DIRECT-CONNECTED; else echo DIRECT-REFUSED; fi"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_reaches_only_the_listed_server_through_the_proxy() {
    let listed = server("LISTED-PAGE");
    let other = server("OTHER-PAGE");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    for kind in backends("allowlist proxy") {
        let k = kind.as_str();
        let fx = fixture_with(allowlist_settings(
            kind,
            &[format!("127.0.0.1:{}", listed.port)],
        ));
        let mut decisions = fx
            .sandbox
            .take_proxy_decisions()
            .expect("a proxy in allowlist mode");

        // Attacks first: around the proxy.
        let out = fx.sh(&direct(listed.port)).await;
        assert!(
            out.output.contains("DIRECT-REFUSED"),
            "[{k}] a direct connect to the listed server skipped the proxy:\n{}",
            out.output
        );
        let out = fx.sh(&direct(other.port)).await;
        assert!(
            out.output.contains("DIRECT-REFUSED"),
            "[{k}] a direct connect to another loopback server:\n{}",
            out.output
        );
        let out = fx
            .sh(&format!(
                "echo dns-query > /dev/udp/127.0.0.1/{udp_port} && echo UDP-SENT || echo UDP-REFUSED"
            ))
            .await;
        assert!(
            out.output.contains("UDP-REFUSED"),
            "[{k}] UDP (DNS):\n{}",
            out.output
        );
        udp.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            udp.recv(&mut buf).is_err(),
            "[{k}] a UDP datagram reached the host"
        );

        // Through the proxy, to a server not on the list: 403, and no connection is made.
        let out = fx
            .sh(&via_proxy(&format!(
                "GET http://127.0.0.1:{p}/ HTTP/1.1\\r\\nHost: 127.0.0.1:{p}\\r\\n\\r\\n",
                p = other.port
            )))
            .await;
        assert!(
            out.output.contains("403") && !out.output.contains("OTHER-PAGE"),
            "[{k}] the proxy forwarded to a server not on the list:\n{}",
            out.output
        );
        let out = fx
            .sh(&via_proxy(&format!(
                "CONNECT 127.0.0.1:{p} HTTP/1.1\\r\\n\\r\\n",
                p = other.port
            )))
            .await;
        assert!(
            out.output.contains("403"),
            "[{k}] CONNECT to a server not on the list:\n{}",
            out.output
        );
        assert_eq!(
            other.hits.load(Ordering::SeqCst),
            0,
            "[{k}] the other server saw a connection"
        );

        // The listed server, by plain HTTP and by a CONNECT tunnel.
        let out = fx
            .sh(&via_proxy(&format!(
                "GET http://127.0.0.1:{p}/ HTTP/1.1\\r\\nHost: 127.0.0.1:{p}\\r\\n\\r\\n",
                p = listed.port
            )))
            .await;
        assert!(
            out.output.contains("LISTED-PAGE"),
            "[{k}] plain HTTP through the proxy:\n{}",
            out.output
        );
        let out = fx
            .sh(&via_proxy(&format!(
                "CONNECT 127.0.0.1:{p} HTTP/1.1\\r\\n\\r\\nGET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
                p = listed.port
            )))
            .await;
        assert!(
            out.output.contains("200 Connection established") && out.output.contains("LISTED-PAGE"),
            "[{k}] a CONNECT tunnel through the proxy:\n{}",
            out.output
        );
        // What a real client does with the variables set inside (when one is installed there).
        let out = fx
            .sh(&format!(
                "if command -v python3 >/dev/null; then python3 -c \"import urllib.request as u; \
                 print(u.urlopen('http://127.0.0.1:{p}/', timeout=20).read().decode())\"; \
                 elif command -v curl >/dev/null; then curl -sS http://127.0.0.1:{p}/; \
                 else echo NO-CLIENT; fi",
                p = listed.port
            ))
            .await;
        if out.output.trim() == "NO-CLIENT" {
            eprintln!(
                "[{k}] neither python3 nor curl inside: only the raw requests above were tried"
            );
        } else {
            assert!(
                out.output.contains("LISTED-PAGE"),
                "[{k}] a client honouring HTTP_PROXY:\n{}",
                out.output
            );
        }

        // Every decision was reported.
        let mut seen = Vec::new();
        while let Ok(d) = decisions.try_recv() {
            seen.push(d.message());
        }
        let allowed = format!("proxy: allowed GET 127.0.0.1:{}", listed.port);
        let refused = format!(
            "proxy: refused (not on the allow-list) GET 127.0.0.1:{}",
            other.port
        );
        let refused_connect = format!(
            "proxy: refused (not on the allow-list) CONNECT 127.0.0.1:{}",
            other.port
        );
        for want in [&allowed, &refused, &refused_connect] {
            assert!(
                seen.contains(want),
                "[{k}] missing decision {want}: {seen:?}"
            );
        }
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 0);
}

/// bwrap's fresh-sandbox-per-command mode gets its own bridge for each command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwrap_per_command_mode_reaches_the_listed_server_too() {
    let listed = server("LISTED-PAGE");
    if !backends("allowlist per command").contains(&SandboxKind::Bwrap) {
        return; // said why (or failed) above
    }
    let mut s = allowlist_settings(SandboxKind::Bwrap, &[format!("127.0.0.1:{}", listed.port)]);
    s.per_command = true;
    let fx = fixture_with(s);
    let get = via_proxy(&format!(
        "GET http://127.0.0.1:{p}/ HTTP/1.1\\r\\nHost: 127.0.0.1:{p}\\r\\n\\r\\n",
        p = listed.port
    ));
    for round in 0..2 {
        let out = fx.sh(&get).await;
        assert!(
            out.output.contains("LISTED-PAGE"),
            "round {round}:\n{}",
            out.output
        );
    }
    let out = fx.sh(&direct(listed.port)).await;
    assert!(out.output.contains("DIRECT-REFUSED"), "{}", out.output);
}

/// Landlock's TCP rules name a port, not an address: the proxy's port number on another address
/// (here 127.0.0.2, standing for any host that listens on that port) must not be connectable.
/// bwrap has no route to any other address at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_port_on_another_address_is_unreachable() {
    for kind in backends("allowlist port elsewhere") {
        let k = kind.as_str();
        let fx = fixture_with(allowlist_settings(kind, &[]));
        let out = fx.sh("echo ${HTTP_PROXY##*:}").await;
        let port: u16 = out.output.trim().parse().unwrap();
        // bwrap's proxy port is inside its own namespace; the host's may be taken: try 127.0.0.2.
        let Ok(decoy) = TcpListener::bind(("127.0.0.2", port)) else {
            panic!("[{k}] cannot listen on 127.0.0.2:{port} for the decoy");
        };
        decoy.set_nonblocking(true).unwrap();
        let out = fx
            .sh(&format!(
                "if timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.2/{port}' 2>/dev/null; then echo ELSEWHERE-CONNECTED; else echo ELSEWHERE-REFUSED; fi; \
                 if command -v python3 >/dev/null; then python3 -c \"import socket; s=socket.socket(); \
                 s.sendto(b'x', socket.MSG_FASTOPEN, ('127.0.0.2', {port})); print('TFO-SENT')\" 2>&1 | tail -1; fi"
            ))
            .await;
        assert!(
            out.output.contains("ELSEWHERE-REFUSED") && !out.output.contains("TFO-SENT"),
            "[{k}] the proxy's port on another address was reachable:\n{}",
            out.output
        );
        assert!(decoy.accept().is_err(), "[{k}] the decoy saw a connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_off_reaches_neither_the_server_nor_a_proxy() {
    let listed = server("LISTED-PAGE");
    for kind in backends("allowlist off") {
        let k = kind.as_str();
        let fx = fixture(kind, false);
        assert!(fx.sandbox.take_proxy_decisions().is_none());
        let out = fx.sh(&direct(listed.port)).await;
        assert!(
            out.output.contains("DIRECT-REFUSED"),
            "[{k}]:\n{}",
            out.output
        );
        let out = fx
            .sh(&via_proxy(&format!(
                "GET http://127.0.0.1:{p}/ HTTP/1.1\\r\\n\\r\\n",
                p = listed.port
            )))
            .await;
        assert!(
            out.output.contains("NO-PROXY-VAR") && !out.output.contains("LISTED-PAGE"),
            "[{k}]:\n{}",
            out.output
        );
    }
    assert_eq!(listed.hits.load(Ordering::SeqCst), 0);
}

/// The real binary: `run --json --allow-host 127.0.0.1:P`; the proxy's decisions are Status
/// events of the agent stage, and the sandbox label names the mode.
#[test]
fn a_real_run_reports_the_proxy_decisions_as_status_events() {
    let listed = server("LISTED-PAGE");
    let other = server("OTHER-PAGE");
    let env = support::Env::new();
    let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let get = |port: u16| {
        via_proxy(&format!(
            "GET http://127.0.0.1:{port}/ HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n\\r\\n"
        ))
    };
    let s = env.write(
        "script.json",
        &support::script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": get(listed.port)}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": get(other.port)}}]},
            {"text": "done"}
        ])),
    );
    let allow = format!("127.0.0.1:{}", listed.port);
    let out = env.run_scripted(&repo, "p", &s, &["--allow-host", &allow]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) && stderr.contains("no sandbox is available") {
        for kind in BACKENDS {
            cannot_run(kind, "allowlist run", &stderr);
        }
        return;
    }
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let evs = support::events(&out.stdout);
    let statuses: Vec<String> = evs
        .iter()
        .filter(|e| e["type"] == "Status")
        .map(|e| {
            format!(
                "{} {}",
                e["stage"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    let want_allowed = format!("agent proxy: allowed GET 127.0.0.1:{}", listed.port);
    let want_refused = format!(
        "agent proxy: refused (not on the allow-list) GET 127.0.0.1:{}",
        other.port
    );
    assert!(statuses.contains(&want_allowed), "{statuses:#?}");
    assert!(statuses.contains(&want_refused), "{statuses:#?}");
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("validate")
                && s.contains(&format!("allow-listed network ({allow})"))),
        "{statuses:#?}"
    );
    let bash: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "Tool: Bash")
        .map(|e| e["output"].as_str().unwrap())
        .collect();
    assert!(bash[0].contains("LISTED-PAGE"), "{bash:?}");
    assert!(
        bash[1].contains("403") && !bash[1].contains("OTHER-PAGE"),
        "{bash:?}"
    );
    assert_eq!(other.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn bad_allow_hosts_are_bad_input_naming_the_entry() {
    let env = support::Env::new();
    for bad in [
        "http://example.org",
        "example.org/x",
        "127.0.0.1:0",
        "h:99999",
    ] {
        let out = env.run(&["config", "--allow-host", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains(&format!("'{bad}'")), "{bad}: {stderr}");
    }
    let out = env
        .command()
        .args(["config"])
        .env("TB_ALLOW_HOSTS", "ftp://x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&[
        "config",
        "--allow-host",
        "127.0.0.1:8080",
        "--allow-host",
        "example.org",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("allowlist") && text.contains("127.0.0.1:8080, example.org"),
        "{text}"
    );
    let out = env.run(&["config", "--network"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("true (on)"));
    let out = env.run(&["config", "--network=allowlist"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(none: every request refused)"));
}

/// The real binary as an ordinary user (as root: really switched to one), on each backend: the
/// listed server is reached, the other refused, a direct connect fails. Not as root: the suite
/// already runs as an ordinary user, and so does this.
#[test]
fn a_real_run_as_an_ordinary_user_reaches_only_the_listed_server() {
    use std::os::unix::process::CommandExt;
    let listed = server("LISTED-PAGE");
    let other = server("OTHER-PAGE");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let (user, group) = ordinary_user();
    let env = support::Env::new();
    let repo = support::make_repo(&env.path("r"), "main", &[("a.txt", "a\n")]);
    let get = |port: u16| {
        via_proxy(&format!(
            "GET http://127.0.0.1:{port}/ HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n\\r\\n"
        ))
    };
    let command = format!(
        "id -u; {}; echo; {}; echo; {}",
        get(listed.port),
        get(other.port),
        direct(listed.port)
    );
    let s = env.write(
        "script.json",
        &support::script(json!([
            {"tool_calls": [{"name": "bash", "input": {"command": command}}]},
            {"text": "done"}
        ])),
    );
    if root {
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{user}:{group}")])
            .arg(env.path(""))
            .status()
            .unwrap();
        assert!(status.success());
    }
    for kind in backends("allowlist run as an ordinary user") {
        let mut cmd = env.scripted_command(
            repo.to_str().unwrap(),
            "p",
            &s,
            &[
                "--allow-host",
                &format!("127.0.0.1:{}", listed.port),
                "--sandbox",
                kind.as_str(),
            ],
        );
        if root {
            cmd = support::from_a_copy_others_can_run(&cmd, &env.path(""));
            // SAFETY: setgroups/setgid/setuid are async-signal-safe syscalls on plain integers.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(group) != 0
                        || libc::setuid(user) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        // A binary copied a moment ago can be "text file busy" while another test thread forks.
        let mut tries = 0;
        let out = loop {
            match cmd.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => break other.unwrap(),
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "[{kind:?}] {stderr}");
        let evs = support::events(&out.stdout);
        let bash = evs
            .iter()
            .find(|e| e["type"] == "Tool: Bash")
            .map(|e| e["output"].as_str().unwrap().to_string())
            .unwrap();
        if root {
            let inside = bash.lines().next().unwrap_or("");
            assert_eq!(inside, user.to_string(), "[{kind:?}] not switched: {bash}");
        }
        assert!(
            bash.contains("LISTED-PAGE")
                && bash.contains("403")
                && !bash.contains("OTHER-PAGE")
                && bash.contains("DIRECT-REFUSED"),
            "[{kind:?}] {bash}"
        );
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 0);
}
