//! The setup stage: one command (`--setup`, `TB_SETUP`, `agent.setup`, else an executable
//! `.tiny-backspace/setup.sh` in the repository) run once in the sandbox after the clone and before
//! the agent, with its own network mode and time limit; and the cheap toolchain probe the first
//! message reports.
//!
//! Invariants: the setup runs in a sandbox of its own (same backend and limits as the agent's,
//! network as `--setup-network` says) that is gone — every process and the proxy — before the
//! agent's opens; once a setup ran, the agent's network is the one asked for explicitly, else
//! `off` (an allow-list alone belongs to the setup). Paths the setup created (absent after the
//! clone) are listed in the host-only `info/exclude` and in `info/tb-setup-paths`, which the diff
//! never stages whatever a `.gitignore` says: they never reach the patch. Tracked files it changed
//! stay changes, named in a warning and to the model. A failing setup ends the run with
//! `setup_failed` unless it is optional; then the model is told how it failed.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Driver;
use super::stages::StageError;
use super::workdelta::{Delta, snapshot};
use crate::agent::context::SetupFacts;
use crate::event::{ErrorCode, Event, Stage};
use crate::sandbox::{self, ExecRequest, NetworkMode, Sandbox, SandboxMounts, SandboxSettings};

/// The script run when no setup command is configured (if present and executable).
pub const SETUP_SCRIPT: &str = ".tiny-backspace/setup.sh";
/// Characters of the setup's output in its `Tool: Bash` event.
const EVENT_OUTPUT_CAP: usize = 30_000;
/// Bytes of the setup's output (its end) the model gets in the first message.
const MODEL_TAIL_BYTES: usize = 1_500;
/// Bytes of the output's end in a failure message.
const ERROR_TAIL_BYTES: usize = 800;

/// What the setup stage ran and how it ended, for the agent stage.
pub(crate) struct SetupDone {
    pub(crate) facts: SetupFacts,
    /// The agent's network now that a setup ran.
    pub(crate) agent_network: NetworkMode,
}

/// Ends the setup's first status: the agent phase's network follows (`off`, `allowlist`, `on`).
/// The TUI's header reads it from there.
pub const AGENT_NETWORK_NOTE: &str = "the agent then runs with network ";

/// `settings` with the network set to `mode` (`allowlist` keeps the configured hosts, or none).
pub(crate) fn with_network(settings: &SandboxSettings, mode: NetworkMode) -> SandboxSettings {
    let mut s = settings.clone();
    s.network = mode == NetworkMode::On;
    s.allow_hosts = match mode {
        NetworkMode::Allowlist => Some(settings.allow_hosts.clone().unwrap_or_default()),
        _ => None,
    };
    s
}

/// The network mode and its hosts as people read it: `allowlist (127.0.0.1:8080)`.
pub(crate) fn describe_mode(settings: &SandboxSettings) -> String {
    let mode = settings.network_mode();
    match (&settings.allow_hosts, mode) {
        (Some(h), NetworkMode::Allowlist) => {
            let list: Vec<String> = h.iter().map(|h| h.to_string()).collect();
            if list.is_empty() {
                "allowlist (no host allowed)".into()
            } else {
                format!("allowlist ({})", list.join(", "))
            }
        }
        _ => mode.as_str().to_string(),
    }
}

/// The repository's setup script, if it is an executable regular file (its metadata read without
/// following a symlink; the script itself only ever runs in the sandbox).
fn discover_script(work_tree: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::fs::symlink_metadata(work_tree.join(".tiny-backspace"));
    let file = std::fs::symlink_metadata(work_tree.join(SETUP_SCRIPT));
    matches!((dir, file), (Ok(d), Ok(f)) if d.is_dir() && f.is_file() && f.permissions().mode() & 0o111 != 0)
}

/// The last `max` bytes of `text`, cut at a line (or character) boundary.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    let cut = cut.find('\n').map(|i| &cut[i + 1..]).unwrap_or(cut);
    format!("[… {} bytes before]\n{cut}", text.len() - cut.len())
}

impl Driver {
    pub(super) async fn run_setup(
        &mut self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), StageError> {
        let Some(cloned) = &self.cloned else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: setup before clone",
                false,
            ));
        };
        let Some(work_tree) = cloned.repo.work_tree.clone() else {
            return Err(StageError::failed(
                ErrorCode::Internal,
                "internal: no work tree",
                false,
            ));
        };
        let git_dir = cloned.repo.git_dir.clone();
        let (command, origin) = match self.config.setup.command.as_deref() {
            Some("") => return Ok(()),
            Some(c) => (c.to_string(), "--setup"),
            None if discover_script(&work_tree) => {
                (format!("./{SETUP_SCRIPT}"), "the repository's script")
            }
            None => return Ok(()),
        };
        let setup = self.config.setup.clone();
        let mut settings = with_network(&self.config.sandbox, self.config.setup_network_mode());
        settings.max_timeout = settings.max_timeout.max(setup.timeout);
        settings.limits.cpu_secs = settings.limits.cpu_secs.max(setup.timeout.as_secs());
        let network = describe_mode(&settings);
        let agent_network = self.config.agent_network_after_setup();
        self.emitter
            .status(
                Stage::Setup,
                format!(
                    "setup: running `{command}` ({origin}) · network {network} · time limit {} s; \
                     {AGENT_NETWORK_NOTE}{}",
                    setup.timeout.as_secs(),
                    agent_network.as_str()
                ),
            )
            .await;

        let root = work_tree.clone();
        let before = tokio::task::spawn_blocking(move || snapshot(&root))
            .await
            .map_err(|e| StageError::failed(ErrorCode::Internal, e.to_string(), false))?
            .map_err(|e| {
                StageError::failed(
                    ErrorCode::Internal,
                    format!("cannot read the work tree: {e}"),
                    false,
                )
            })?;
        let mounts = SandboxMounts {
            work_tree: work_tree.clone(),
            git_dir: git_dir.clone(),
        };
        let sandbox = sandbox::open(&settings, mounts)
            .map_err(|e| StageError::failed(e.code(), e.to_string(), false))?;
        let proxy_log = sandbox.take_proxy_decisions().map(|mut decisions| {
            let emitter = self.emitter.clone();
            tokio::spawn(async move {
                while let Some(d) = decisions.recv().await {
                    emitter.status(Stage::Setup, d.message()).await;
                }
            })
        });
        let request = ExecRequest {
            command: command.clone(),
            timeout: setup.timeout,
        };
        let started = Instant::now();
        let result = sandbox.exec(&request, cancel).await;
        // Every process of the setup and its proxy end here, before anything is read.
        drop(sandbox);
        if let Some(mut forwarder) = proxy_log
            && tokio::time::timeout(Duration::from_secs(5), &mut forwarder)
                .await
                .is_err()
        {
            forwarder.abort();
        }
        let out = match result {
            Ok(out) => out,
            Err(e) => return Err(StageError::failed(e.code(), e.to_string(), false)),
        };
        let terminated = out.terminated.map(|t| t.describe(setup.timeout));
        if out.terminated == Some(sandbox::Termination::Cancelled) || cancel.is_cancelled() {
            return Err(StageError::Cancelled);
        }
        let mut shown = crate::agent::tools::cap_text(&out.output, EVENT_OUTPUT_CAP);
        if let Some(n) = &terminated {
            shown.push_str(&format!("\n[{n}]"));
        }
        self.emitter
            .emit(Event::ToolBash {
                command: command.clone(),
                output: shown,
                exit_code: out.exit_code,
                run_id: Some(self.run_id.clone()),
                duration_ms: out.duration.as_millis() as u64,
                terminated: terminated.clone(),
            })
            .await;

        let root = work_tree.clone();
        let delta = tokio::task::spawn_blocking(move || before.compare(&root))
            .await
            .map_err(|e| StageError::failed(ErrorCode::Internal, e.to_string(), false))?
            .map_err(|e| {
                StageError::failed(
                    ErrorCode::Internal,
                    format!("cannot read the work tree after the setup: {e}"),
                    false,
                )
            })?;
        let ok = out.exit_code == 0 && terminated.is_none();
        let ended = match (&terminated, ok) {
            (Some(t), _) => format!("FAILED: {t}"),
            (None, true) => "succeeded (exit 0)".to_string(),
            (None, false) => format!("FAILED with exit code {}", out.exit_code),
        };
        let took = crate::agent::format_duration(started.elapsed());
        if !ok && !setup.optional {
            let hint = match (&terminated, settings.network_mode()) {
                (Some(_), _) => {
                    "give it more time with --setup-timeout SECS (agent.setup_timeout_secs)"
                }
                (None, NetworkMode::Off) => {
                    "it ran without network: if it downloads, allow the hosts it needs with \
                     --allow-host HOST[:PORT] (or --setup-network allowlist)"
                }
                (None, NetworkMode::Allowlist) => {
                    "it reached only the allowed hosts through the proxy: check the output for a \
                     refused host and add it with --allow-host HOST[:PORT]"
                }
                (None, NetworkMode::On) => "check its output",
            };
            return Err(StageError::failed(
                ErrorCode::SetupFailed,
                format!(
                    "the setup command `{command}` {ended} after {took} (network {network}); \
                     {hint}; fix the command or pass --setup-optional to run the agent anyway. \
                     Its output ends with:\n{}",
                    tail(&out.output, ERROR_TAIL_BYTES)
                ),
                false,
            ));
        }
        let kept_out = self.keep_out_of_diff(&git_dir, &delta).await;
        self.report_changes(&delta, &kept_out).await;
        self.emitter
            .status(
                Stage::Setup,
                format!(
                    "setup {ended} in {took}{}",
                    if ok {
                        String::new()
                    } else {
                        "; --setup-optional: the agent runs anyway and is told".to_string()
                    }
                ),
            )
            .await;
        self.setup = Some(SetupDone {
            facts: SetupFacts {
                command,
                network,
                agent_network: agent_network.as_str().to_string(),
                ended: format!("{ended}, {took}"),
                failed: !ok,
                output_tail: tail(&out.output, MODEL_TAIL_BYTES),
                kept_out,
                modified: delta.modified_display(),
            },
            agent_network,
        });
        Ok(())
    }

    /// Lists the paths the setup created in the host-only excludes; returns them for display.
    async fn keep_out_of_diff(&self, git_dir: &Path, delta: &Delta) -> Vec<String> {
        if delta.created.is_empty() {
            return vec![];
        }
        if let Err(e) = delta.write_excludes(git_dir) {
            tracing::warn!("could not record the setup's paths: {e}");
            self.emitter
                .status(
                    Stage::Setup,
                    format!("WARNING: could not keep the setup's files out of the diff: {e}"),
                )
                .await;
        }
        delta.created_display()
    }

    async fn report_changes(&self, delta: &Delta, kept_out: &[String]) {
        if !kept_out.is_empty() {
            self.emitter
                .status(
                    Stage::Setup,
                    format!(
                        "kept out of the diff (made by the setup): {}",
                        short_list(kept_out)
                    ),
                )
                .await;
        }
        let modified = delta.modified_display();
        if !modified.is_empty() {
            self.emitter
                .status(
                    Stage::Setup,
                    format!(
                        "WARNING: the setup changed files of the repository: {}; these changes \
                         stay in the diff (leave them out at review if they are not wanted)",
                        short_list(&modified)
                    ),
                )
                .await;
        }
    }
}

/// At most 10 names, then a count.
pub(crate) fn short_list(names: &[String]) -> String {
    let mut out = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        out.push_str(&format!(" and {} more", names.len() - 10));
    }
    out
}

/// Tools the first message reports as present or absent.
const TOOLCHAINS: &str = "python3 pip pip3 uv pytest node npm yarn pnpm cargo rustc go java mvn \
                          gradle ruby bundle make cmake gcc cc";

/// One sandbox command: which of [`TOOLCHAINS`] are on PATH, and the versions that are cheap to
/// ask (no JVM started). `None` when the probe could not run.
pub(super) async fn probe_toolchains(
    sandbox: &dyn Sandbox,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<String> {
    let script = format!(
        "for t in {TOOLCHAINS}; do command -v \"$t\" >/dev/null 2>&1 && printf '%s ' \"$t\"; \
         done; echo; v() {{ command -v \"$1\" >/dev/null 2>&1 && printf '%s=%s\\n' \"$1\" \
         \"$(\"$@\" 2>&1 | head -n1)\"; }}; v python3 --version; v node --version; \
         v rustc --version; v go version; v gcc -dumpfullversion; true"
    );
    let request = ExecRequest {
        command: script,
        timeout: Duration::from_secs(20),
    };
    let out = sandbox.exec(&request, cancel).await.ok()?;
    if out.exit_code != 0 || out.terminated.is_some() {
        return None;
    }
    Some(render_toolchains(&out.output))
}

/// `python3 3.11.2, pip, make; not found: node, npm, …` from the probe's output.
fn render_toolchains(output: &str) -> String {
    let mut lines = output.lines();
    let present: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let versions: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once('=')).collect();
    let shown: Vec<String> = present
        .iter()
        .map(|t| {
            match versions.iter().find(|(n, _)| n == t) {
                Some((_, v)) => {
                    // "Python 3.11.2" → "3.11.2"; "go version go1.22 linux/amd64" → "go1.22".
                    let v = v
                        .split_whitespace()
                        .find(|w| w.chars().any(|c| c.is_ascii_digit()))
                        .unwrap_or("")
                        .trim_start_matches('v');
                    let v: String = v.chars().take(24).collect();
                    if v.is_empty() {
                        t.to_string()
                    } else {
                        format!("{t} {v}")
                    }
                }
                None => t.to_string(),
            }
        })
        .collect();
    let missing: Vec<&str> = TOOLCHAINS
        .split_whitespace()
        .filter(|t| !present.contains(t))
        .collect();
    let mut out = if shown.is_empty() {
        "none of the common ones".to_string()
    } else {
        shown.join(", ")
    };
    if !missing.is_empty() {
        out.push_str(&format!("; not found: {}", missing.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_output_becomes_one_short_line() {
        let out = "python3 pip make gcc \npython3=Python 3.11.2\ngcc=12\n";
        let line = render_toolchains(out);
        assert!(
            line.starts_with("python3 3.11.2, pip, make, gcc 12; not found: pip3, uv"),
            "{line}"
        );
        assert!(!line.contains("not found: python3"), "{line}");
    }

    #[test]
    fn tail_keeps_the_end_at_a_line() {
        let text = (0..100).map(|i| format!("line {i}\n")).collect::<String>();
        let t = tail(&text, 30);
        assert!(t.ends_with("line 99") && t.starts_with("[…"), "{t}");
        assert!(t.len() < 60, "{t}");
        assert_eq!(tail("short\n", 30), "short");
    }

    #[test]
    fn the_setup_network_is_its_own() {
        let mut s = SandboxSettings::default();
        crate::sandbox::allow::apply_network(&mut s, None, Some("127.0.0.1:9")).unwrap();
        let off = with_network(&s, NetworkMode::Off);
        assert_eq!(off.network_mode(), NetworkMode::Off);
        let allow = with_network(&s, NetworkMode::Allowlist);
        assert_eq!(describe_mode(&allow), "allowlist (127.0.0.1:9)");
        let none = with_network(&SandboxSettings::default(), NetworkMode::Allowlist);
        assert_eq!(describe_mode(&none), "allowlist (no host allowed)");
    }
}
