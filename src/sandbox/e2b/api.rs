//! E2B's control plane: create, keep alive, list by metadata and kill sandboxes.
//!
//! Invariants: every request carries `X-API-Key` and nothing else secret; a 401/403 names
//! `E2B_API_KEY`; a 404 on a sandbox means it no longer runs; retrying is the caller's decision
//! ([`E2bError::is_retryable`]), since creating a sandbox twice costs money.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{E2bError, E2bSettings, error_message};
use crate::secret::Secret;

/// A control-plane request takes no longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a new sandbox is created with (`POST /v2/sandboxes`).
#[derive(Debug, Clone, Serialize)]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    /// Seconds until E2B kills it unless kept alive.
    pub timeout: u64,
    pub allow_internet_access: bool,
    pub metadata: BTreeMap<String, String>,
    #[serde(rename = "envVars")]
    pub env_vars: BTreeMap<String, String>,
}

/// A sandbox as the control plane describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxInfo {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "templateID", default)]
    pub template_id: String,
    #[serde(rename = "envdVersion", default)]
    pub envd_version: String,
    #[serde(rename = "envdAccessToken", default, deserialize_with = "secret")]
    pub envd_access_token: Option<Secret>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

#[derive(Clone)]
pub struct E2bClient {
    pub(crate) settings: E2bSettings,
    key: Secret,
    pub(crate) http: reqwest::Client,
}

impl E2bClient {
    /// A client, or [`E2bError::MissingApiKey`].
    pub fn new(settings: E2bSettings) -> Result<E2bClient, E2bError> {
        let key = settings.api_key.clone().ok_or(E2bError::MissingApiKey)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|source| E2bError::Transport {
                what: "building the HTTP client".into(),
                source,
            })?;
        Ok(E2bClient {
            settings,
            key,
            http,
        })
    }

    pub fn settings(&self) -> &E2bSettings {
        &self.settings
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        what: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, E2bError> {
        let url = format!("{}{path}", self.settings.api_url());
        let mut req = self
            .http
            .request(method, url)
            .timeout(REQUEST_TIMEOUT)
            .header("X-API-Key", self.key.expose());
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let resp = req.send().await.map_err(|source| E2bError::Transport {
            what: what.into(),
            source,
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|source| E2bError::Transport {
            what: what.into(),
            source,
        })?;
        match status {
            200..=299 => Ok(bytes.to_vec()),
            401 | 403 => Err(E2bError::Unauthorized {
                status,
                message: error_message(&bytes),
            }),
            404 => Err(E2bError::NotFound {
                what: what.into(),
                message: error_message(&bytes),
            }),
            _ => Err(E2bError::Http {
                what: what.into(),
                status,
                message: error_message(&bytes),
            }),
        }
    }

    /// Creates a sandbox; the caller must [`E2bClient::kill`] it (or let its timeout run out).
    pub async fn create(&self, new: &NewSandbox) -> Result<SandboxInfo, E2bError> {
        let body = serde_json::to_vec(new).map_err(|e| protocol("the create request", e))?;
        let out = self
            .call(
                reqwest::Method::POST,
                "/v2/sandboxes",
                "creating a sandbox",
                Some(body),
            )
            .await?;
        serde_json::from_slice(&out).map_err(|e| protocol("the created sandbox", e))
    }

    /// Keeps a sandbox alive for `timeout` more (E2B counts from now).
    pub async fn keep_alive(&self, sandbox_id: &str, timeout: Duration) -> Result<(), E2bError> {
        let body = serde_json::to_vec(&serde_json::json!({ "timeout": timeout.as_secs().max(1) }))
            .map_err(|e| protocol("the timeout request", e))?;
        self.call(
            reqwest::Method::POST,
            &format!("/sandboxes/{}/timeout", path_segment(sandbox_id)?),
            &format!("sandbox {sandbox_id}"),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// Kills a sandbox. One already gone is not an error (killing is idempotent).
    pub async fn kill(&self, sandbox_id: &str) -> Result<(), E2bError> {
        match self
            .call(
                reqwest::Method::DELETE,
                &format!("/sandboxes/{}", path_segment(sandbox_id)?),
                &format!("sandbox {sandbox_id}"),
                None,
            )
            .await
        {
            Ok(_) | Err(E2bError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Running sandboxes whose metadata holds every pair of `metadata`.
    pub async fn list(
        &self,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Vec<SandboxInfo>, E2bError> {
        let filter = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(metadata)
            .finish();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("metadata", &filter)
            .append_pair("state", "running")
            .finish();
        let out = self
            .call(
                reqwest::Method::GET,
                &format!("/v2/sandboxes?{query}"),
                "listing sandboxes",
                None,
            )
            .await?;
        serde_json::from_slice(&out).map_err(|e| protocol("the sandbox list", e))
    }
}

/// A sandbox id as one URL path segment; anything else is refused rather than escaped, since ids
/// are plain tokens.
fn path_segment(id: &str) -> Result<&str, E2bError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(id)
    } else {
        Err(E2bError::Protocol {
            what: format!("sandbox id {id:?}"),
            source: "not a plain token".into(),
        })
    }
}

pub(crate) fn protocol(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> E2bError {
    E2bError::Protocol {
        what: what.into(),
        source: Box::new(e),
    }
}
