//! One E2B sandbox: commands through envd's `process.Process/Start` stream, and its lifetime.
//!
//! Invariants: every command runs under a small bash wrapper that starts it with `setsid` in its
//! own process group and with a per-command mark (`TB_E2B_MARK=<nonce>`) in its environment; when
//! the command ends the wrapper kills the group and every process still carrying the mark (so
//! `cmd &`, `nohup` and `setsid` children die with it, unless they scrub their environment). On
//! timeout, output cap, cancellation, a cut stream or a dropped future the host kills the wrapper
//! (`SendSignal`, which reaches only that pid) and runs the same sweep as a separate command,
//! because a SIGKILLed wrapper cannot clean up and envd does not stop a process when its client
//! leaves. The host's own deadline comes first; `Connect-Timeout-Ms` (a little later) is envd's
//! backstop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::api::{E2bClient, NewSandbox, SandboxInfo, protocol};
use super::connect::{self, Decoder, Frame};
use super::{E2bError, ENVD_PORT, error_message};
use crate::sandbox::process::HeadTail;
use crate::sandbox::{ExecOutput, Termination};
use crate::secret::Secret;

/// envd's own deadline is this much after the host's, so the host's fires first.
const ENVD_GRACE: Duration = Duration::from_secs(5);
/// The shell every command runs under.
const SHELL: &str = "/bin/bash";

/// Kills every process of a command: its group, then (a few passes, for forks in between) every
/// process whose environment holds the command's mark. `$1` = group (0: none; never the
/// caller's own group), `$2` = nonce.
const SWEEP: &str = r#"sweep() { [ "$1" -gt 0 ] 2>/dev/null && kill -9 -- "-$1" 2>/dev/null
  for _ in 1 2 3 4; do
    found=
    for f in $(grep -lsxFz "TB_E2B_MARK=$2" /proc/[0-9]*/environ); do
      p=${f#/proc/}; p=${p%/environ}; kill -9 "$p" 2>/dev/null; found=1
    done
    [ -z "$found" ] && break
  done; }"#;

/// Runs `$TB_E2B_COMMAND` marked and in its own session, then sweeps (see the module doc).
fn wrapper() -> String {
    format!(
        r#"{SWEEP}
c=$TB_E2B_COMMAND; n=$TB_E2B_NONCE; unset TB_E2B_COMMAND TB_E2B_NONCE
TB_E2B_MARK=$n setsid {SHELL} -c "$c" </dev/null &
child=$!
trap 'sweep "$child" "$n"; exit 143' TERM INT HUP
wait "$child"; rc=$?
sweep "$child" "$n"
exit "$rc""#
    )
}

/// How one command runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub timeout: Duration,
    /// Bytes kept (head and tail) of each of stdout and stderr.
    pub output_keep_bytes: usize,
    /// More output than this (stdout and stderr together) stops the command.
    pub output_limit_bytes: u64,
    /// Inside the sandbox; envd's default (the user's home) when `None`.
    pub cwd: Option<String>,
    pub envs: BTreeMap<String, String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(120),
            output_keep_bytes: 256 * 1024,
            output_limit_bytes: 64 * 1024 * 1024,
            cwd: None,
            envs: BTreeMap::new(),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    /// The exit status; 128+N when killed by signal N (137 when the host killed it).
    pub exit_code: i32,
    pub terminated: Option<Termination>,
    pub total_bytes: u64,
    pub duration: Duration,
}

impl CommandOutput {
    /// The local backends' shape: stdout, then stderr.
    pub fn into_exec_output(self) -> ExecOutput {
        let mut output = self.stdout;
        output.push_str(&self.stderr);
        ExecOutput {
            output,
            exit_code: self.exit_code,
            terminated: self.terminated,
            total_bytes: self.total_bytes,
            duration: self.duration,
        }
    }
}

/// What envd requests need: the address, the sandbox id and its access token.
#[derive(Clone)]
pub(crate) struct Envd {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) sandbox_id: String,
    token: Option<Secret>,
}

impl Envd {
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("E2b-Sandbox-Id", &self.sandbox_id)
            .header("E2b-Sandbox-Port", ENVD_PORT.to_string());
        if let Some(t) = &self.token {
            req = req.header("X-Access-Token", t.expose());
        }
        req
    }

    /// An error for a non-2xx envd answer.
    pub(crate) fn status_error(&self, status: u16, body: &[u8], what: &str) -> E2bError {
        let message = error_message(body);
        match status {
            401 | 403 => E2bError::EnvdUnauthorized { status, message },
            // E2B's edge answers 502 "sandbox not found" for a sandbox that no longer runs.
            502 if message.to_ascii_lowercase().contains("not found") => E2bError::SandboxGone {
                sandbox_id: self.sandbox_id.clone(),
                message,
            },
            404 => E2bError::NotFound {
                what: what.into(),
                message,
            },
            _ => E2bError::Http {
                what: what.into(),
                status,
                message,
            },
        }
    }

    async fn send_signal_kill(&self, pid: u32) -> Result<(), E2bError> {
        let body = serde_json::json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"});
        let resp = self
            .request(reqwest::Method::POST, "/process.Process/SendSignal")
            .header("Content-Type", "application/json")
            .header("Connect-Protocol-Version", "1")
            .timeout(Duration::from_secs(15))
            .body(body.to_string())
            .send()
            .await
            .map_err(|source| E2bError::Transport {
                what: "SendSignal".into(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(self.status_error(status, &bytes, "SendSignal"))
    }

    /// Kills a command's wrapper and every process carrying its mark; best effort (logged).
    async fn kill_command(&self, pid: Option<u32>, nonce: &str) {
        if let Some(pid) = pid
            && let Err(e) = self.send_signal_kill(pid).await
        {
            tracing::debug!(error = %e, pid, "e2b: SendSignal failed");
        }
        let script = format!("{SWEEP}\nsweep 0 {nonce}");
        let opts = RunOptions {
            timeout: Duration::from_secs(20),
            ..RunOptions::default()
        };
        match self.start(&script, &BTreeMap::new(), &opts).await {
            Ok(resp) => {
                let _ = drain(resp, Instant::now() + opts.timeout).await;
            }
            Err(e) => tracing::warn!(error = %e, "e2b: could not sweep a command's processes"),
        }
    }

    /// Opens a `Process/Start` stream running `bash -c script`.
    async fn start(
        &self,
        script: &str,
        envs: &BTreeMap<String, String>,
        opts: &RunOptions,
    ) -> Result<reqwest::Response, E2bError> {
        let mut process = serde_json::json!({
            "cmd": SHELL,
            "args": ["-c", script],
            "envs": envs,
        });
        if let Some(cwd) = &opts.cwd {
            process["cwd"] = cwd.clone().into();
        }
        let msg = serde_json::to_vec(&serde_json::json!({ "process": process }))
            .map_err(|e| protocol("the start request", e))?;
        let envd_ms = (opts.timeout + ENVD_GRACE).as_millis().to_string();
        let resp = self
            .request(reqwest::Method::POST, "/process.Process/Start")
            .header("Content-Type", "application/connect+json")
            .header("Connect-Protocol-Version", "1")
            .header("Connect-Timeout-Ms", envd_ms)
            .body(connect::encode(&msg))
            .send()
            .await
            .map_err(|source| E2bError::Transport {
                what: "starting a command".into(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(self.status_error(status, &bytes, "starting a command"));
        }
        Ok(resp)
    }
}

/// Reads a stream to its end or `deadline`, ignoring what it says.
async fn drain(mut resp: reqwest::Response, deadline: Instant) -> Result<(), E2bError> {
    let until = tokio::time::Instant::from_std(deadline);
    while let Ok(Ok(Some(_))) = tokio::time::timeout_at(until, resp.chunk()).await {}
    Ok(())
}

#[derive(Deserialize)]
struct StartResponse {
    event: Option<ProcessEvent>,
}

#[derive(Deserialize)]
struct ProcessEvent {
    start: Option<StartEvent>,
    data: Option<DataEvent>,
    end: Option<EndEvent>,
}

#[derive(Deserialize)]
struct StartEvent {
    pid: u32,
}

#[derive(Deserialize)]
struct DataEvent {
    stdout: Option<String>,
    stderr: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndEvent {
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    exited: bool,
    #[serde(default)]
    status: String,
}

/// Kills the command when the future running it is dropped before it ended.
struct KillOnDrop {
    envd: Envd,
    pid: Option<u32>,
    nonce: String,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (envd, pid, nonce) = (self.envd.clone(), self.pid, self.nonce.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move { envd.kill_command(pid, &nonce).await });
            }
            Err(_) => tracing::warn!("e2b: a dropped command could not be killed (no runtime)"),
        }
    }
}

/// One running E2B sandbox. Dropping it does not kill it: call [`E2bSandbox::kill`] (its
/// timeout kills it otherwise).
pub struct E2bSandbox {
    client: E2bClient,
    info: SandboxInfo,
    pub(crate) envd: Envd,
}

impl E2bSandbox {
    /// Creates a sandbox and connects to its envd.
    pub async fn create(client: &E2bClient, new: &NewSandbox) -> Result<E2bSandbox, E2bError> {
        let info = client.create(new).await?;
        let base = client
            .settings
            .envd_url(&info.sandbox_id, info.domain.as_deref());
        let envd = Envd {
            http: client.http.clone(),
            base,
            sandbox_id: info.sandbox_id.clone(),
            token: info.envd_access_token.clone(),
        };
        Ok(E2bSandbox {
            client: client.clone(),
            info,
            envd,
        })
    }

    pub fn id(&self) -> &str {
        &self.info.sandbox_id
    }

    pub(crate) fn client(&self) -> &E2bClient {
        &self.client
    }

    pub fn info(&self) -> &SandboxInfo {
        &self.info
    }

    /// E2B keeps the sandbox `timeout` more from now.
    pub async fn keep_alive(&self, timeout: Duration) -> Result<(), E2bError> {
        self.client.keep_alive(self.id(), timeout).await
    }

    /// Renews the sandbox's timeout every `every` until the returned token is cancelled or
    /// dropped (it is a drop guard).
    pub fn spawn_keep_alive(
        &self,
        every: Duration,
        timeout: Duration,
    ) -> tokio_util::sync::DropGuard {
        let stop = CancellationToken::new();
        let (client, id, token) = (self.client.clone(), self.id().to_string(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(e) = client.keep_alive(&id, timeout).await {
                    tracing::warn!(error = %e, sandbox = %id, "e2b: keep-alive failed");
                }
            }
        });
        stop.drop_guard()
    }

    /// Kills the sandbox (idempotent).
    pub async fn kill(&self) -> Result<(), E2bError> {
        self.client.kill(self.id()).await
    }

    /// Runs `command` with `bash -c`; see the module doc for how it is contained.
    pub async fn run(
        &self,
        command: &str,
        opts: &RunOptions,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, E2bError> {
        let started = Instant::now();
        let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut envs = opts.envs.clone();
        envs.insert("TB_E2B_COMMAND".into(), command.into());
        envs.insert("TB_E2B_NONCE".into(), nonce.clone());
        let mut guard = KillOnDrop {
            envd: self.envd.clone(),
            pid: None,
            nonce,
            armed: true,
        };
        let deadline = tokio::time::Instant::from_std(started + opts.timeout);
        let script = wrapper();
        let mut resp = tokio::select! {
            r = self.envd.start(&script, &envs, opts) => match r {
                Ok(resp) => resp,
                Err(e) => {
                    // Refused with a status: nothing started. A transport error: maybe it did.
                    guard.armed = matches!(e, E2bError::Transport { .. });
                    return Err(e);
                }
            },
            _ = cancel.cancelled() => return self.stop(guard, Termination::Cancelled, started, None).await,
            _ = tokio::time::sleep_until(deadline) => return self.stop(guard, Termination::Timeout, started, None).await,
        };
        let (mut out, mut err) = (
            HeadTail::new(opts.output_keep_bytes),
            HeadTail::new(opts.output_keep_bytes),
        );
        let mut decoder = Decoder::default();
        let mut end: Option<EndEvent> = None;
        loop {
            let chunk = tokio::select! {
                c = resp.chunk() => c.map_err(|source| E2bError::Transport { what: "reading a command's output".into(), source }),
                _ = cancel.cancelled() => return self.stop(guard, Termination::Cancelled, started, Some((out, err))).await,
                _ = tokio::time::sleep_until(deadline) => return self.stop(guard, Termination::Timeout, started, Some((out, err))).await,
            };
            let chunk = match chunk {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) if end.is_some() => break,
                Ok(None) | Err(_) => {
                    self.envd.kill_command(guard.pid, &guard.nonce).await;
                    guard.armed = false;
                    return Err(E2bError::StreamCut);
                }
            };
            decoder.push(&chunk);
            while let Some(frame) = decoder
                .next_frame()
                .map_err(|e| protocol("a command's stream", e))?
            {
                match frame {
                    Frame::Message(m) => {
                        let ev: StartResponse = serde_json::from_slice(&m)
                            .map_err(|e| protocol("a process event", e))?;
                        let Some(ev) = ev.event else { continue };
                        if let Some(s) = ev.start {
                            guard.pid = Some(s.pid);
                        }
                        if let Some(d) = ev.data {
                            push_b64(&mut out, d.stdout.as_deref())?;
                            push_b64(&mut err, d.stderr.as_deref())?;
                            if out.total() + err.total() > opts.output_limit_bytes {
                                return self
                                    .stop(
                                        guard,
                                        Termination::OutputLimit,
                                        started,
                                        Some((out, err)),
                                    )
                                    .await;
                            }
                        }
                        if ev.end.is_some() {
                            end = ev.end;
                        }
                    }
                    Frame::End(Some(e)) if e.code == "deadline_exceeded" => {
                        return self
                            .stop(guard, Termination::Timeout, started, Some((out, err)))
                            .await;
                    }
                    Frame::End(Some(e)) => {
                        self.envd.kill_command(guard.pid, &guard.nonce).await;
                        guard.armed = false;
                        return Err(E2bError::Rpc {
                            code: e.code,
                            message: e.message,
                        });
                    }
                    Frame::End(None) => break,
                }
            }
        }
        guard.armed = false;
        let Some(end) = end else {
            return Err(E2bError::StreamCut);
        };
        let exit_code = if end.exited {
            end.exit_code
        } else {
            // envd: `status` is e.g. "signal: killed" when no exit code exists.
            tracing::debug!(status = %end.status, "e2b: command ended by a signal");
            137
        };
        let total_bytes = out.total() + err.total();
        Ok(CommandOutput {
            stdout: out.finish(),
            stderr: err.finish(),
            exit_code,
            terminated: None,
            total_bytes,
            duration: started.elapsed(),
        })
    }

    /// Kills a command the host stopped and reports why.
    async fn stop(
        &self,
        mut guard: KillOnDrop,
        why: Termination,
        started: Instant,
        output: Option<(HeadTail, HeadTail)>,
    ) -> Result<CommandOutput, E2bError> {
        self.envd.kill_command(guard.pid, &guard.nonce).await;
        guard.armed = false;
        let (stdout, stderr, total_bytes) = match output {
            Some((o, e)) => {
                let total = o.total() + e.total();
                (o.finish(), e.finish(), total)
            }
            None => (String::new(), String::new(), 0),
        };
        Ok(CommandOutput {
            stdout,
            stderr,
            exit_code: 137,
            terminated: Some(why),
            total_bytes,
            duration: started.elapsed(),
        })
    }
}

fn push_b64(to: &mut HeadTail, b64: Option<&str>) -> Result<(), E2bError> {
    if let Some(s) = b64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| protocol("command output", e))?;
        to.push(&bytes);
    }
    Ok(())
}
