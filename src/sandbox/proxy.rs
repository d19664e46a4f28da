//! The `allowlist` network mode's HTTP forward proxy, run on the host for one sandbox.
//!
//! Why: package managers and test suites need a few hosts; sharing the host's network would give
//! them every host and every loopback service. The sandbox reaches only this proxy (bwrap: its
//! private loopback, bridged to a listener created inside and handed to the host, see
//! [`super::bridge`]; landlock: one loopback TCP port), and the proxy connects only to the
//! allow-list.
//!
//! Invariants: a request is forwarded only when its `host:port` matches an [`AllowHost`] (plain
//! HTTP with an absolute-form URI, default port 80; `CONNECT host:port` tunnels, default 443);
//! anything else gets a `403` and no connection is made. Names are resolved here, on the host, and
//! the connection goes to what the allow-listed name resolves to, nothing else. One request per
//! client connection (`Connection: close` upstream), so a second request cannot ride on an allowed
//! one. Bounded: a cap on concurrent connections (`503` beyond it), a deadline for the request
//! head and for connecting, a lifetime cap per connection, a head size cap, and fixed copy
//! buffers. Every decision is logged (`tracing`) and offered, without blocking, on a bounded
//! channel the pipeline turns into `Status` events. Dropping the [`Proxy`] stops every task.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::allow::AllowHost;

const MAX_CONNECTIONS: usize = 64;
const MAX_HEAD_BYTES: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const LIFETIME: Duration = Duration::from_secs(30 * 60);
const DECISIONS_QUEUED: usize = 256;

/// One request the proxy allowed or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyDecision {
    pub method: String,
    /// `host:port` as requested.
    pub target: String,
    pub allowed: bool,
}

impl ProxyDecision {
    /// The `Status` line: `proxy: allowed CONNECT host:443`.
    pub fn message(&self) -> String {
        let verdict = if self.allowed {
            "allowed"
        } else {
            "refused (not on the allow-list)"
        };
        format!("proxy: {verdict} {} {}", self.method, self.target)
    }
}

struct Core {
    allow: Vec<AllowHost>,
    slots: Arc<Semaphore>,
    decisions: mpsc::Sender<ProxyDecision>,
}

/// The proxy of one sandbox: its listeners and connections live until it is dropped.
pub struct Proxy {
    core: Arc<Core>,
    cancel: CancellationToken,
    decisions: std::sync::Mutex<Option<mpsc::Receiver<ProxyDecision>>>,
}

impl Proxy {
    pub fn new(allow: Vec<AllowHost>) -> Proxy {
        let (tx, rx) = mpsc::channel(DECISIONS_QUEUED);
        Proxy {
            core: Arc::new(Core {
                allow,
                slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
                decisions: tx,
            }),
            cancel: CancellationToken::new(),
            decisions: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// The decisions, once (the pipeline's forwarder takes them).
    pub fn take_decisions(&self) -> Option<mpsc::Receiver<ProxyDecision>> {
        self.decisions.lock().ok().and_then(|mut d| d.take())
    }

    /// A token that stops everything this proxy runs (a child per listener).
    pub(crate) fn child_token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Binds `127.0.0.1:0` on the host and serves there; returns the port.
    pub(crate) fn listen_loopback(&self) -> std::io::Result<u16> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        self.serve(listener, self.child_token())?;
        Ok(port)
    }

    /// Accepts on `listener` until `stop` (or the proxy) is cancelled.
    pub(crate) fn serve(
        &self,
        listener: std::net::TcpListener,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let handle = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let _entered = handle.enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let core = self.core.clone();
        handle.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else {
                    // EMFILE and friends: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let core = core.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(_slot) = core.slots.clone().try_acquire_owned() else {
                        let _ = reply(client, 503, "too many connections through the proxy").await;
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::timeout(LIFETIME, handle_client(&core, client)) => {}
                    }
                });
            }
        });
        Ok(())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Core {
    fn decide(&self, method: &str, host: &str, port: u16) -> bool {
        let allowed = self.allow.iter().any(|a| a.allows(host, port));
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        tracing::info!(method, target, allowed, "sandbox proxy");
        let _ = self.decisions.try_send(ProxyDecision {
            method: method.to_string(),
            target,
            allowed,
        });
        allowed
    }
}

/// A parsed request head.
struct Head {
    method: String,
    host: String,
    port: u16,
    /// Plain HTTP: the head to send upstream (origin-form, hop-by-hop headers replaced).
    upstream_head: Option<Vec<u8>>,
}

async fn handle_client(core: &Core, mut client: TcpStream) {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(h)) => h,
        Ok(Err(why)) => {
            let _ = reply(client, 400, why).await;
            return;
        }
        Err(_) => return,
    };
    let head = match parse_head(&head) {
        Ok(h) => h,
        Err(why) => {
            let _ = reply(client, 400, why).await;
            return;
        }
    };
    if !core.decide(&head.method, &head.host, head.port) {
        let body = format!(
            "{}:{} is not on this sandbox's allow-list (tiny-backspace --allow-host)",
            head.host, head.port
        );
        let _ = reply(client, 403, &body).await;
        return;
    }
    let connect = connect_upstream(&head.host, head.port);
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            let _ = reply(client, 502, &format!("cannot connect: {e}")).await;
            return;
        }
        Err(_) => {
            let _ = reply(client, 504, "connecting timed out").await;
            return;
        }
    };
    let started = match &head.upstream_head {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
        }
        Some(h) => upstream.write_all(h).await,
    };
    if started.is_err() || upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Connects to `host:port`. An IP literal is taken as the allow-list gave it; a name is resolved
/// here and its loopback, link-local (cloud metadata), unspecified and multicast addresses are
/// skipped, so an allow-listed name whose DNS points inward cannot reach host services.
async fn connect_upstream(host: &str, port: u16) -> std::io::Result<TcpStream> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return TcpStream::connect((ip, port)).await;
    }
    let mut last = std::io::Error::other(format!("{host} resolves to no usable address"));
    for addr in tokio::net::lookup_host((host, port)).await? {
        if !routable(addr.ip()) {
            last = std::io::Error::other(format!(
                "{host} resolves to a local address ({})",
                addr.ip()
            ));
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether a resolved name may lead to `ip`.
fn routable(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// Reads up to the end of the head; returns it and what came after.
async fn read_head(client: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let n = client.read(&mut chunk).await.map_err(|_| "read failed")?;
        if n == 0 {
            return Err("the request ended before its head did");
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            let end = searched_from + i + 4;
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err("the request head is too large");
        }
    }
}

fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("malformed method");
    }
    if !version.starts_with("HTTP/1.") {
        return Err("only HTTP/1.x is proxied");
    }
    if method == "CONNECT" {
        let (host, port) = authority(target, 443)?;
        return Ok(Head {
            method: method.into(),
            host,
            port,
            upstream_head: None,
        });
    }
    let lower = target.get(..7).map(str::to_ascii_lowercase);
    if lower.as_deref() != Some("http://") {
        return Err(
            "this is a proxy: send an absolute http:// URL, or CONNECT host:port for https",
        );
    }
    let after = &target[7..];
    let split = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (auth, path) = after.split_at(split);
    let (host, port) = authority(auth, 80)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    let mut out = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim();
        if [
            "connection",
            "proxy-connection",
            "proxy-authorization",
            "keep-alive",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(Head {
        method: method.into(),
        host,
        port,
        upstream_head: Some(out.into_bytes()),
    })
}

/// `host[:port]` → a validated host and the port (`default` when absent).
fn authority(auth: &str, default: u16) -> Result<(String, u16), &'static str> {
    let parsed = AllowHost::parse(auth).map_err(|_| "the target is not HOST[:PORT]")?;
    Ok((parsed.host, parsed.port.unwrap_or(default)))
}

async fn reply(mut client: TcpStream, code: u16, body: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Gateway Timeout",
    };
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    client.write_all(msg.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_becomes_origin_form_without_hop_headers() {
        let h = parse_head(
            b"GET http://Example.org:8080/a?b HTTP/1.1\r\nHost: example.org\r\n\
              Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\n\r\n",
        )
        .unwrap();
        assert_eq!((h.host.as_str(), h.port), ("example.org", 8080));
        let up = String::from_utf8(h.upstream_head.unwrap()).unwrap();
        assert_eq!(
            up,
            "GET /a?b HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn names_never_lead_inward() {
        for ip in [
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "fe80::1",
        ] {
            assert!(!routable(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "10.1.2.3", "2001:db8::1"] {
            assert!(routable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_not_connected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = connect_upstream("localhost", port).await.unwrap_err();
        assert!(e.to_string().contains("local address"), "{e}");
        assert!(connect_upstream("127.0.0.1", port).await.is_ok());
    }

    #[test]
    fn connect_defaults_to_443_and_junk_is_refused() {
        let h = parse_head(b"CONNECT example.org HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((h.port, h.upstream_head.is_none()), (443, true));
        for bad in [
            &b"GET /x HTTP/1.1\r\n\r\n"[..],
            b"GET https://example.org/ HTTP/1.1\r\n\r\n",
            b"GET http://user@example.org/ HTTP/1.1\r\n\r\n",
            b"CONNECT example.org:0 HTTP/1.1\r\n\r\n",
            b"get http://example.org/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
