//! A [`Sandbox`] over one E2B sandbox: the run's remote work tree.
//!
//! Status (issue 16): usable from code and tested against the offline peer, but not yet selected
//! by [`crate::sandbox::open`] (the pipeline still computes the diff from the host's work tree).
//!
//! Invariants: one E2B sandbox per [`RemoteSandbox`], created with `allow_internet_access`
//! following the network mode (`allowlist` is refused: the allow-list proxy is local-only),
//! metadata carrying the run id; seeded from the host's work tree without `.git` (its config can
//! hold a token); kept alive in the background while the value lives; killed by
//! [`RemoteSandbox::close`] and, as a backstop, when dropped (a `DELETE` is spawned).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{E2bClient, E2bError, E2bSandbox, E2bSettings, NewSandbox, RunOptions};
use crate::sandbox::{
    ExecOutput, ExecRequest, NetworkMode, Sandbox, SandboxError, SandboxKind, SandboxSettings,
};

/// The work tree inside the sandbox.
pub const REMOTE_WORKDIR: &str = "/home/user/workspace";

/// Seconds E2B keeps an idle sandbox; renewed every third of it while the run lives.
const SANDBOX_TIMEOUT: Duration = Duration::from_secs(300);

/// The metadata key naming the run (for finding leftovers later).
pub const RUN_ID_KEY: &str = "tb-run-id";

pub struct RemoteSandbox {
    sandbox: E2bSandbox,
    mode: NetworkMode,
    settings: SandboxSettings,
    _keep_alive: DropGuard,
    killed: std::sync::atomic::AtomicBool,
}

impl RemoteSandbox {
    /// Creates the run's sandbox, seeds `work_tree` into [`REMOTE_WORKDIR`] and starts keep-alive.
    /// The sandbox is killed again if seeding fails.
    pub async fn open(
        e2b: E2bSettings,
        settings: &SandboxSettings,
        work_tree: &Path,
        run_id: &str,
    ) -> Result<RemoteSandbox, E2bError> {
        let mode = settings.network_mode();
        let allow_internet_access = match mode {
            NetworkMode::Off => false,
            NetworkMode::On => true,
            NetworkMode::Allowlist => return Err(E2bError::AllowlistUnsupported),
        };
        let client = E2bClient::new(e2b)?;
        let new = NewSandbox {
            template_id: client.settings().template().to_string(),
            timeout: SANDBOX_TIMEOUT.as_secs(),
            allow_internet_access,
            metadata: BTreeMap::from([(RUN_ID_KEY.to_string(), run_id.to_string())]),
            env_vars: BTreeMap::new(),
        };
        let sandbox = E2bSandbox::create(&client, &new).await?;
        if let Err(e) = sandbox.seed(work_tree, REMOTE_WORKDIR).await {
            if let Err(k) = sandbox.kill().await {
                tracing::warn!(error = %k, "e2b: could not kill a sandbox whose seeding failed");
            }
            return Err(e);
        }
        let keep_alive = sandbox.spawn_keep_alive(SANDBOX_TIMEOUT / 3, SANDBOX_TIMEOUT);
        Ok(RemoteSandbox {
            sandbox,
            mode,
            settings: settings.clone(),
            _keep_alive: keep_alive,
            killed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        self.sandbox.id()
    }

    /// Reads `rel` (relative to the work tree) from the sandbox, at most `max_bytes`.
    pub async fn read(&self, rel: &str, max_bytes: u64) -> Result<Vec<u8>, E2bError> {
        self.sandbox.read_file(&remote_path(rel)?, max_bytes).await
    }

    /// Writes `rel` (relative to the work tree) in the sandbox.
    pub async fn write(&self, rel: &str, data: &[u8]) -> Result<(), E2bError> {
        self.sandbox.write_file(&remote_path(rel)?, data).await
    }

    /// Kills the sandbox now (idempotent; also done on drop).
    pub async fn close(&self) -> Result<(), E2bError> {
        self.killed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.sandbox.kill().await
    }
}

impl Drop for RemoteSandbox {
    fn drop(&mut self) {
        if self.killed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let client = self.sandbox.client().clone();
        let id = self.sandbox.id().to_string();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    if let Err(e) = client.kill(&id).await {
                        tracing::warn!(error = %e, sandbox = %id, "e2b: kill on drop failed");
                    }
                });
            }
            Err(_) => tracing::warn!(
                sandbox = %self.sandbox.id(),
                "e2b: sandbox dropped outside a runtime; its timeout will end it"
            ),
        }
    }
}

#[async_trait]
impl Sandbox for RemoteSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::E2b
    }

    fn network(&self) -> bool {
        self.mode == NetworkMode::On
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, SandboxError> {
        let opts = RunOptions {
            timeout: request.timeout,
            output_keep_bytes: self.settings.output_keep_bytes,
            output_limit_bytes: self.settings.output_limit_bytes,
            cwd: Some(REMOTE_WORKDIR.to_string()),
            envs: crate::sandbox::sandbox_env("/home/user")
                .into_iter()
                .collect(),
        };
        self.sandbox
            .run(&request.command, &opts, cancel)
            .await
            .map(|o| o.into_exec_output())
            .map_err(|e| SandboxError::Spawn(e.to_string()))
    }
}

/// `rel` under [`REMOTE_WORKDIR`], refusing absolute paths and `..` (the agent's paths are
/// relative to the work tree, as on the host).
fn remote_path(rel: &str) -> Result<String, E2bError> {
    let bad = rel.is_empty()
        || rel.starts_with('/')
        || rel.contains('\0')
        || rel.split('/').any(|c| c == "..");
    if bad {
        return Err(E2bError::Io {
            what: format!("path `{rel}` is not a relative path inside the work tree"),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    Ok(format!("{REMOTE_WORKDIR}/{}", rel.trim_start_matches("./")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_stay_in_the_work_tree() {
        assert_eq!(
            remote_path("src/a.rs").ok().as_deref(),
            Some("/home/user/workspace/src/a.rs")
        );
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\0b"] {
            assert!(remote_path(bad).is_err(), "{bad}");
        }
    }
}
