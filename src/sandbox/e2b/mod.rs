//! A client for E2B remote sandboxes (Firecracker microVMs): the control plane ([`api`]) and each
//! sandbox's envd ([`envd`], over the Connect envelope codec in [`connect`]).
//!
//! Status: a foundation for issue 16, tested against the offline peer in `tests/peers/e2b/`.
//! [`RemoteSandbox`] implements [`crate::sandbox::Sandbox`], but runs cannot select it yet
//! (`--sandbox e2b` parses and is refused by `open`): the run's work tree still lives on the host,
//! and the `Workspace` abstraction, the host-side patch regeneration and `serve` clean-up are not
//! written.
//!
//! Invariants: the settings come from `config` (the only reader of the environment); the API key
//! and envd access token are [`Secret`]s and never logged; every command runs wrapped so that when
//! it ends — normally, by timeout, output cap, cancellation or a dropped future — every process it
//! started is killed (envd itself signals only the one pid and does not stop a process when the
//! client leaves); the host enforces timeouts itself and does not rely on envd's.

pub mod api;
mod backend;
pub mod connect;
pub mod envd;
mod files;

use crate::error_code::ErrorCode;
use crate::secret::Secret;

pub use api::{E2bClient, NewSandbox, SandboxInfo};
pub use backend::{REMOTE_WORKDIR, RUN_ID_KEY, RemoteSandbox};
pub use envd::{CommandOutput, E2bSandbox, RunOptions};

/// Where and how to reach E2B: `E2B_API_KEY`, `E2B_DOMAIN`, `E2B_API_URL`, `E2B_SANDBOX_URL`
/// (read by `config`) and `sandbox.e2b_template`.
#[derive(Debug, Clone, Default)]
pub struct E2bSettings {
    pub api_key: Option<Secret>,
    /// Default `e2b.app`.
    pub domain: Option<String>,
    /// The control plane; default `https://api.<domain>`.
    pub api_url: Option<String>,
    /// One address for every sandbox's envd (the sandbox picked by the `E2b-Sandbox-Id` header);
    /// default `https://49983-<id>.<domain>` per sandbox.
    pub sandbox_url: Option<String>,
    /// The template sandboxes are created from; default `base`.
    pub template: Option<String>,
}

/// envd's port inside every sandbox.
pub const ENVD_PORT: u16 = 49983;

impl E2bSettings {
    pub fn domain(&self) -> &str {
        self.domain.as_deref().unwrap_or("e2b.app")
    }

    pub fn api_url(&self) -> String {
        match &self.api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("https://api.{}", self.domain()),
        }
    }

    /// The base URL of `sandbox_id`'s envd (`domain` as the control plane returned it).
    pub fn envd_url(&self, sandbox_id: &str, domain: Option<&str>) -> String {
        match &self.sandbox_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "https://{ENVD_PORT}-{sandbox_id}.{}",
                domain.unwrap_or(self.domain())
            ),
        }
    }

    pub fn template(&self) -> &str {
        self.template.as_deref().unwrap_or("base")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum E2bError {
    #[error("E2B_API_KEY is not set: get a key from your E2B dashboard and export E2B_API_KEY")]
    MissingApiKey,
    #[error(
        "the allow-listed network mode is not available with E2B: its proxy runs on this machine \
         and cannot reach a remote sandbox; use network `off` or `on`"
    )]
    AllowlistUnsupported,
    #[error("E2B refused the API key ({status}): check E2B_API_KEY: {message}")]
    Unauthorized { status: u16, message: String },
    #[error("the sandbox's envd refused its access token ({status}): {message}")]
    EnvdUnauthorized { status: u16, message: String },
    #[error("E2B: {what} not found (404): {message}")]
    NotFound { what: String, message: String },
    #[error("sandbox {sandbox_id} is not running (it expired or was killed): {message}")]
    SandboxGone { sandbox_id: String, message: String },
    #[error("E2B answered {status} to {what}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
    },
    #[error("E2B could not be reached ({what})")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the connection to the sandbox was lost while a command ran (no end of stream); \
         the command may have run in part"
    )]
    StreamCut,
    #[error("envd answered {code}: {message}")]
    Rpc { code: String, message: String },
    #[error("E2B sent something this client cannot read ({what})")]
    Protocol {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl E2bError {
    /// Whether the same request could succeed if tried again: 429, 502, 503, 504 and transport
    /// failures. A cut command stream is not: the command may have had effects.
    pub fn is_retryable(&self) -> bool {
        match self {
            E2bError::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            E2bError::Transport { .. } => true,
            E2bError::Rpc { code, .. } => code == "unavailable",
            _ => false,
        }
    }

    /// The stable code an `Error` event would carry for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            E2bError::MissingApiKey
            | E2bError::AllowlistUnsupported
            | E2bError::Unauthorized { .. } => ErrorCode::InvalidInput,
            _ => ErrorCode::SandboxUnavailable,
        }
    }
}

/// Reads the `message` of E2B's JSON error bodies, else the text itself (shortened).
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body { message: Some(m) }) => m,
        _ => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_settings() {
        let mut s = E2bSettings::default();
        assert_eq!(s.api_url(), "https://api.e2b.app");
        assert_eq!(s.envd_url("abc", None), "https://49983-abc.e2b.app");
        s.domain = Some("example.test".into());
        assert_eq!(s.api_url(), "https://api.example.test");
        s.api_url = Some("http://127.0.0.1:9/".into());
        s.sandbox_url = Some("http://127.0.0.1:8".into());
        assert_eq!(s.api_url(), "http://127.0.0.1:9");
        assert_eq!(s.envd_url("abc", Some("x")), "http://127.0.0.1:8");
        assert_eq!(s.template(), "base");
    }

    #[test]
    fn retryable_errors() {
        let http = |status| E2bError::Http {
            what: "x".into(),
            status,
            message: String::new(),
        };
        assert!(http(502).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!E2bError::StreamCut.is_retryable());
        assert!(E2bError::MissingApiKey.to_string().contains("E2B_API_KEY"));
    }
}
