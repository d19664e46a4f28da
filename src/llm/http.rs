//! HTTP plumbing shared by the wire formats: base-URL checks, the client, sending a streaming
//! request, turning error answers into [`LlmError`]s, and reading an SSE body with a stall timeout.
//!
//! Invariants: plain `http://` is accepted only for loopback hosts; credentials never appear in a
//! URL (a base URL carrying them is refused) and header values holding keys are marked sensitive;
//! error messages are built from the status, the server's own error text and the error kind —
//! never from our request or headers. Every wait (connect, headers, each body read) is bounded, so
//! a silent server ends the attempt with a retryable error instead of a hang.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response, Url};

use super::settings::LlmSettings;
use super::sse::{SseDecoder, SseEvent, SseTooLarge};
use super::{ChatResponse, LlmError, Observer};

/// Whether the URL's host is this machine (no key needed, plain http allowed).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses a configured base URL (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`).
pub fn parse_base_url(raw: &str, var: &str) -> Result<Url, LlmError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| LlmError::Config(format!("{var} is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LlmError::Config(format!(
            "{var} must not contain credentials; put the key in the API key variable instead"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(LlmError::Config(format!(
                "{var} uses plain http to a host that is not this machine; use https (plain http \
                 is allowed only for localhost / 127.0.0.1 / ::1)"
            )));
        }
        other => {
            return Err(LlmError::Config(format!(
                "{var} has the unsupported scheme '{other}'; use https"
            )));
        }
    }
    if url.host().is_none() {
        return Err(LlmError::Config(format!("{var} has no host")));
    }
    Ok(url)
}

/// `base` + `path`, keeping any path prefix of the base (`http://h/v1` + `chat/completions`).
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url
}

pub fn client(settings: &LlmSettings, url: &Url) -> Result<Client, LlmError> {
    let mut builder = Client::builder()
        .connect_timeout(settings.connect_timeout())
        .user_agent(concat!("tiny-backspace/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    if is_loopback(url) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| LlmError::Config(format!("cannot set up the HTTP client: {}", describe(&e))))
}

/// A header value holding a credential: marked sensitive so it is never printed.
pub fn secret_header(value: &str) -> Result<HeaderValue, LlmError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        LlmError::Config("the API key contains characters not allowed in a header".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// A reqwest error as text, without the URL, with its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn from_reqwest(e: reqwest::Error) -> LlmError {
    let e = e.without_url();
    if e.is_connect() {
        LlmError::Connect(describe(&e))
    } else if e.is_timeout() || e.is_body() || e.is_decode() {
        LlmError::Stream(describe(&e))
    } else {
        LlmError::Connect(describe(&e))
    }
}

/// Sends the request and waits (bounded) for a successful status; an error status becomes
/// [`LlmError::Http`] with the server's message and its `retry-after`.
pub async fn post_stream(
    client: &Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
    settings: &LlmSettings,
) -> Result<Response, LlmError> {
    let send = client
        .post(url.clone())
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .body(body)
        .send();
    let response = match tokio::time::timeout(settings.response_timeout(), send).await {
        Err(_) => {
            return Err(LlmError::Stream(format!(
                "no answer within {} s",
                settings.response_timeout().as_secs()
            )));
        }
        Ok(r) => r.map_err(from_reqwest)?,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after_ms = retry_after_ms(response.headers());
    let mut response = response;
    let mut raw = Vec::new();
    // The error body is small; read a bounded amount with the stall timeout.
    while raw.len() < 64 * 1024 {
        match tokio::time::timeout(settings.read_timeout(), response.chunk()).await {
            Ok(Ok(Some(c))) => raw.extend_from_slice(&c),
            _ => break,
        }
    }
    Err(LlmError::Http {
        status: status.as_u16(),
        message: error_message(&String::from_utf8_lossy(&raw), status.canonical_reason()),
        retry_after_ms,
    })
}

/// `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date).
pub fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(ms.round() as u64);
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64);
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    Some(ms.max(0) as u64)
}

/// The human part of an error body in either API's shape, else its start.
pub fn error_message(body: &str, reason: Option<&str>) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = v.get("error").unwrap_or(&v);
        let message = err
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| err.as_str());
        let kind = err.get("type").and_then(|t| t.as_str());
        match (kind, message) {
            (Some(k), Some(m)) => return format!("{k}: {}", clip(m, 500)),
            (None, Some(m)) => return clip(m, 500),
            _ => {}
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        reason.unwrap_or("no details").to_string()
    } else {
        clip(trimmed, 300)
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// The events of a streaming body, each read bounded by the stall timeout. A server that ignored
/// `stream: true` and answered with one JSON document yields that document as a single event.
pub struct EventStream {
    response: Response,
    /// The body is one JSON document, not an event stream.
    whole_json: bool,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    read_timeout: Duration,
    ended: bool,
}

impl EventStream {
    pub fn new(response: Response, read_timeout: Duration) -> Self {
        let whole_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().starts_with("application/json"));
        EventStream {
            response,
            whole_json,
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
            read_timeout,
            ended: false,
        }
    }

    /// The next event; `None` once the body has ended.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, LlmError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            if self.ended {
                return Ok(None);
            }
            if self.whole_json {
                return self.read_whole().await;
            }
            let mut out = Vec::new();
            match tokio::time::timeout(self.read_timeout, self.response.chunk()).await {
                Err(_) => {
                    return Err(LlmError::Stream(format!(
                        "the stream stalled: nothing received for {:.1} s",
                        self.read_timeout.as_secs_f64()
                    )));
                }
                Ok(Err(e)) => return Err(from_reqwest(e)),
                Ok(Ok(Some(chunk))) => self.decoder.push(&chunk, &mut out),
                Ok(Ok(None)) => {
                    self.ended = true;
                    self.decoder.finish(&mut out)
                }
            }
            .map_err(|e| LlmError::Stream(e.to_string()))?;
            self.pending.extend(out);
        }
    }
}

impl EventStream {
    async fn read_whole(&mut self) -> Result<Option<SseEvent>, LlmError> {
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(self.read_timeout, self.response.chunk()).await {
                Err(_) => {
                    return Err(LlmError::Stream(format!(
                        "the answer stalled: nothing received for {:.1} s",
                        self.read_timeout.as_secs_f64()
                    )));
                }
                Ok(Err(e)) => return Err(from_reqwest(e)),
                Ok(Ok(Some(chunk))) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > 64 << 20 {
                        return Err(LlmError::Stream("the answer is too large".into()));
                    }
                }
                Ok(Ok(None)) => break,
            }
        }
        self.ended = true;
        Ok(Some(SseEvent {
            event: None,
            data: String::from_utf8_lossy(&body).into_owned(),
        }))
    }
}

/// One wire format's accumulation of a streamed turn.
pub(crate) trait TurnState: Default {
    /// Takes one event; `true` once the turn is complete.
    fn feed(&mut self, event: &SseEvent, observer: &dyn Observer) -> Result<bool, LlmError>;
    /// The turn, if the events so far make a complete one.
    fn finish(self) -> Result<ChatResponse, LlmError>;
}

/// Reads events until the turn is complete or the body ends.
pub(crate) async fn read_turn<T: TurnState>(
    events: &mut EventStream,
    observer: &dyn Observer,
) -> Result<ChatResponse, LlmError> {
    let mut turn = T::default();
    while let Some(event) = events.next().await? {
        if turn.feed(&event, observer)? {
            break;
        }
    }
    turn.finish()
}

/// Decodes a recorded body delivered in `chunks` by the same path as a network body.
/// One model turn over the wire: post the request, read the stream into a turn, price it.
pub(crate) async fn exchange<T: TurnState>(
    client: &Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
    settings: &LlmSettings,
    model: &str,
    observer: &dyn Observer,
) -> Result<ChatResponse, LlmError> {
    let response = post_stream(client, url, headers, body, settings).await?;
    let mut events = EventStream::new(response, settings.read_timeout());
    let mut turn = read_turn::<T>(&mut events, observer).await?;
    super::pricing::price_usage(&mut turn.usage, model, &settings.prices);
    Ok(turn)
}

pub(crate) fn decode_chunks<'a, T: TurnState>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    observer: &dyn Observer,
) -> Result<ChatResponse, LlmError> {
    let mut decoder = SseDecoder::new();
    let mut turn = T::default();
    let mut events = Vec::new();
    let too_large = |e: SseTooLarge| LlmError::Stream(e.to_string());
    for chunk in chunks {
        decoder.push(chunk, &mut events).map_err(too_large)?;
        for e in events.drain(..) {
            if turn.feed(&e, observer)? {
                return turn.finish();
            }
        }
    }
    decoder.finish(&mut events).map_err(too_large)?;
    for e in events.drain(..) {
        if turn.feed(&e, observer)? {
            break;
        }
    }
    turn.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(parse_base_url("https://api.anthropic.com", "X").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080/v1", "X").is_ok());
        assert!(parse_base_url("http://localhost:11434/v1", "X").is_ok());
        assert!(parse_base_url("http://[::1]:1/", "X").is_ok());
        let e = parse_base_url("http://example.com/v1", "OPENAI_BASE_URL").unwrap_err();
        assert!(e.to_string().contains("OPENAI_BASE_URL"), "{e}");
        let e = parse_base_url("https://user:pw@example.com", "X").unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
        assert!(parse_base_url("ftp://example.com", "X").is_err());
        assert!(parse_base_url("not a url", "X").is_err());
    }

    #[test]
    fn joining_keeps_the_base_path() {
        let b = Url::parse("http://127.0.0.1:1/v1/").unwrap();
        assert_eq!(
            join(&b, "chat/completions").as_str(),
            "http://127.0.0.1:1/v1/chat/completions"
        );
        let b = Url::parse("https://api.anthropic.com").unwrap();
        assert_eq!(
            join(&b, "/v1/messages").as_str(),
            "https://api.anthropic.com/v1/messages"
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after_ms(&h), Some(2000));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after_ms(&h), Some(500));
        h.insert("retry-after-ms", HeaderValue::from_static("1234.4"));
        assert_eq!(retry_after_ms(&h), Some(1234));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after_ms(&h), Some(0));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after_ms(&h), None);
    }

    #[test]
    fn error_bodies_of_both_apis() {
        let a = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(a, None), "overloaded_error: Overloaded");
        let o = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(error_message(o, None), "requests: Rate limit reached");
        assert_eq!(error_message("", Some("Bad Gateway")), "Bad Gateway");
        assert_eq!(
            error_message("<html>oops</html>", None),
            "<html>oops</html>"
        );
    }
}
