//! What every request passes before a route sees it: its `Host` must be this server's address (or
//! a configured public name), a browser's `Origin` must be this server's own, the bearer token
//! must match (except for `/healthz` and `/openapi.json`), a body must be JSON and arrive in time.
//!
//! Why: a loopback server is reachable by every local process, the sandbox (with network) and every
//! web page. Pages can post `text/plain` without a CORS preflight and, by DNS rebinding, talk to
//! us under their own name; the Host and Origin checks shut them out even before the token does.
//!
//! Invariants: the checks run in the order Host (403), Origin (403), token (401), content type
//! (415), body (413 too large, 408 too slow); every refusal is the usual `{"error", "field"}` JSON;
//! the body reaches the route fully read, never more than `max_body_bytes`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

use super::routes::error;
use super::{AppState, tokens_match};

/// The names this server answers to: its address, `localhost` on a loopback bind, configured names.
#[derive(Debug, Clone)]
pub(crate) struct Authorities {
    addr: SocketAddr,
    /// Lowercase `NAME` or `NAME:PORT` (a bare name matches any port: proxies differ).
    names: Vec<String>,
}

impl Authorities {
    pub fn new(addr: SocketAddr, names: Vec<String>) -> Self {
        Authorities { addr, names }
    }

    /// Whether `authority` (a `Host` value, or an `Origin` without its scheme) is ours;
    /// `default_port` is the scheme's, for an authority that names none.
    fn allows(&self, authority: &str, default_port: u16) -> bool {
        let authority = authority.to_ascii_lowercase();
        let Some((host, port)) = split_authority(&authority) else {
            return false;
        };
        let bound = self.addr.ip();
        let port_ok = port.unwrap_or(default_port) == self.addr.port();
        let own = match host.parse::<IpAddr>() {
            // An address literal cannot be rebound; an unspecified bind has many of its own.
            Ok(ip) => ip == bound || bound.is_unspecified(),
            Err(_) => host == "localhost" && (bound.is_loopback() || bound.is_unspecified()),
        };
        if own && port_ok {
            return true;
        }
        self.names.iter().any(|n| {
            *n == authority
                || (n.as_str() == host && split_authority(n).is_some_and(|(_, p)| p.is_none()))
        })
    }
}

/// `host[:port]` or `[v6][:port]` into the host (without brackets) and the port.
fn split_authority(a: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match a.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        }
        None => match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(p) => Some((host, Some(p.parse().ok()?))),
    }
}

/// `Bearer TOKEN`, the scheme in any case (RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}

/// `application/json`, optionally with `charset=utf-8`, in any case.
fn is_json(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.map(str::trim).filter(|p| !p.is_empty()).all(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("charset")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

fn forbidden(message: String) -> Response {
    error(StatusCode::FORBIDDEN, message, None)
}

fn closing(mut resp: Response) -> Response {
    // The rest of the body is never read: the connection cannot carry another request.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn unauthorized() -> Response {
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token: send `Authorization: Bearer <token>` (TB_SERVER_TOKEN, or \
         the token in $TB_HOME/server-token)",
        None,
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

pub(super) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
    if !host
        .as_deref()
        .is_some_and(|h| state.authorities.allows(h, 80))
    {
        return forbidden(format!(
            "the Host {} is not this server's address: it answers to http://{} (add a public \
             name with --public-host or TB_SERVER_HOST)",
            host.map_or("(none)".to_string(), |h| format!("'{h}'")),
            state.authorities.addr
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("");
        let ours = match (text.strip_prefix("http://"), text.strip_prefix("https://")) {
            (Some(a), _) => state.authorities.allows(a, 80),
            (_, Some(a)) => state.authorities.allows(a, 443),
            _ => false,
        };
        if !ours {
            return forbidden(format!(
                "requests from web pages elsewhere are refused: the Origin '{text}' is not this \
                 server's own"
            ));
        }
    }
    let open = request.method() == Method::GET
        && matches!(request.uri().path(), "/healthz" | "/openapi.json");
    if !open {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .unwrap_or("");
        if !tokens_match(given.as_bytes(), state.token.expose().as_bytes()) {
            return unauthorized();
        }
    }
    if request.method() == Method::POST {
        let json = match headers.get(header::CONTENT_TYPE) {
            Some(v) => v.to_str().is_ok_and(is_json),
            None => !has_body(headers),
        };
        if !json {
            return closing(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with `Content-Type: application/json`",
                None,
            ));
        }
    }
    if !has_body(request.headers()) {
        return next.run(request).await;
    }
    match read_body(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(resp) => closing(resp),
    }
}

/// Reads the whole body within the size and time limits, so a route never waits on a client.
async fn read_body(state: &AppState, request: Request) -> Result<Request, Response> {
    let limit = state.options.max_body_bytes;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
            None,
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let read = async {
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                    None,
                )
            })?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    match tokio::time::timeout(state.options.body_timeout, read).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(resp)) => Err(resp),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                state.options.body_timeout.as_secs()
            ),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_on_a_loopback_bind() {
        let a = Authorities::new("127.0.0.1:8000".parse().unwrap(), vec![]);
        for ok in ["127.0.0.1:8000", "localhost:8000", "LocalHost:8000"] {
            assert!(a.allows(ok, 80), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "127.0.0.1:8001",
            "127.0.0.1",
            "localhost",
            "127.0.0.2:8000",
            "[::1]:8000",
            "localhost.evil.example:8000",
            "127.0.0.1:8000@evil",
            "",
            ":8000",
        ] {
            assert!(!a.allows(bad, 80), "{bad}");
        }
        let v6 = Authorities::new("[::1]:9000".parse().unwrap(), vec![]);
        assert!(v6.allows("[::1]:9000", 80) && v6.allows("localhost:9000", 80));
        assert!(!v6.allows("127.0.0.1:9000", 80));
    }

    #[test]
    fn hosts_on_a_public_bind_and_configured_names() {
        let a = Authorities::new(
            "0.0.0.0:80".parse().unwrap(),
            vec!["tb.example".into(), "other.example:8443".into()],
        );
        for ok in [
            "192.0.2.7",
            "192.0.2.7:80",
            "tb.example",
            "TB.example:9999",
            "other.example:8443",
        ] {
            assert!(a.allows(ok, 80), "{ok}");
        }
        for bad in [
            "evil.example",
            "other.example",
            "other.example:80",
            "192.0.2.7:81",
        ] {
            assert!(!a.allows(bad, 80), "{bad}");
        }
        // An https Origin without a port means 443.
        let b = Authorities::new("127.0.0.1:443".parse().unwrap(), vec![]);
        assert!(b.allows("localhost", 443) && !b.allows("localhost", 80));
    }

    #[test]
    fn bearer_scheme_and_json_types() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; boundary=x",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
