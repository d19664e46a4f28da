//! Resolved configuration: flags > environment > `.env` in the current directory > config file >
//! defaults.
//!
//! Invariants: this is the only place that reads configuration from the environment, `.env` or the
//! config file; secrets are held as [`Secret`] and never printed unmasked; `.env` is read without
//! modifying the process environment, so nothing from it is inherited by child processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::AgentLimits;
use crate::sandbox::{NetworkMode, SandboxKind, SandboxSettings};
use crate::secret::Secret;

mod file;
mod load;
mod render;
pub use render::Derived;
#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    DotEnv,
    File,
    Default,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::DotEnv => ".env",
            Source::File => "config file",
            Source::Default => "default",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error(".env file {path}: {message}")]
    DotEnv { path: String, message: String },
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub model: Option<String>,
    pub sandbox: Option<String>,
    /// `off`, `allowlist`, `on` (or true/false).
    pub network: Option<String>,
    pub home: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    /// Prepended to every branch name (`tb/` by default).
    pub branch_prefix: String,
    /// Fork the repository when the token cannot push to it.
    pub fork: bool,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// Open pull requests as drafts unless the approval says otherwise.
    pub draft: bool,
    /// The longest a rate limit is waited out before publishing fails (retryable).
    pub max_rate_limit_wait: Duration,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            branch_prefix: "tb/".into(),
            fork: true,
            author_name: None,
            author_email: None,
            draft: false,
            max_rate_limit_wait: Duration::from_secs(90),
        }
    }
}

/// The setup phase: one command run in the sandbox after the clone and before the agent, with
/// its own network mode and time limit (`pipeline/setup.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetupSettings {
    /// `--setup`, `TB_SETUP`, `agent.setup`; without it an executable
    /// `.tiny-backspace/setup.sh` in the repository is run if present. Empty (`--setup ""`,
    /// `setup = ""`): no setup at all, not even the script.
    pub command: Option<String>,
    /// `--setup-network`; `None`: `allowlist` when an allow-list is configured, else `off`.
    pub network: Option<NetworkMode>,
    /// A failing setup is reported to the model instead of stopping the run.
    pub optional: bool,
    pub timeout: Duration,
}

/// The setup phase's default time limit.
pub const SETUP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

impl Default for SetupSettings {
    fn default() -> Self {
        SetupSettings {
            command: None,
            network: None,
            optional: false,
            timeout: SETUP_TIMEOUT_DEFAULT,
        }
    }
}

/// The setup flags as given on the command line (`--setup`, `--setup-network`, …).
#[derive(Debug, Clone, Default)]
pub struct SetupFlags {
    pub command: Option<String>,
    pub network: Option<String>,
    pub optional: bool,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct CloneLimits {
    pub timeout: Duration,
    pub max_size_bytes: u64,
}

impl Default for CloneLimits {
    fn default() -> Self {
        CloneLimits {
            timeout: Duration::from_secs(300),
            max_size_bytes: 2048 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub model: Option<String>,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: Option<String>,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: Option<String>,
    pub github_token: Option<Secret>,
    pub github_api_url: Option<String>,
    /// Bearer token `serve` requires from clients (`TB_SERVER_TOKEN`); without one, `serve`
    /// generates its own.
    pub server_token: Option<Secret>,
    /// Host names `serve` answers to besides its own address (`--public-host`, `TB_SERVER_HOST`,
    /// `server.public_host`), lowercase, each with an optional `:port`.
    pub server_hosts: Vec<String>,
    pub sandbox: SandboxSettings,
    /// E2B remote sandboxes: `E2B_API_KEY`, `E2B_DOMAIN`, `E2B_API_URL`, `E2B_SANDBOX_URL`,
    /// `sandbox.e2b_template` (not selectable as a backend yet).
    pub e2b: crate::sandbox::e2b::E2bSettings,
    pub agent: AgentLimits,
    /// The setup phase before the agent (`[agent] setup…` in the file).
    pub setup: SetupSettings,
    pub clone: CloneLimits,
    /// Model-layer tunables: retries, timeouts, default models, prices (`[llm]` in the file).
    pub llm: crate::llm::settings::LlmSettings,
    pub publish: PublishSettings,
    /// Patch limits (`[diff]`: `max_file_mb`, `max_patch_mb`).
    pub diff: crate::git::DiffLimits,
    pub config_file: Option<PathBuf>,
    /// Where each shown value came from, for `tiny-backspace config`.
    sources: BTreeMap<&'static str, Source>,
}

/// Variables other programs define, honoured as their conventions say: read from the process
/// environment only (never `.env` or the config file, which are this program's own settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conventions {
    /// `NO_COLOR` set and not empty.
    pub no_color: bool,
    /// `VISUAL`, else `EDITOR`, unless blank.
    pub editor: Option<String>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, unless empty.
    pub otlp_endpoint: Option<String>,
    /// `TB_LOG`: the log filter (`tracing` directives), as given.
    pub log_filter: Option<String>,
}

impl Conventions {
    pub fn from_env() -> Conventions {
        Conventions::read(&|k| match std::env::var(k) {
            Ok(v) => Some(v),
            // Only set-ness matters for NO_COLOR; the others must be text.
            Err(std::env::VarError::NotUnicode(v)) if k == "NO_COLOR" => {
                Some(v.to_string_lossy().into_owned())
            }
            Err(_) => None,
        })
    }

    pub fn read(env: &dyn Fn(&str) -> Option<String>) -> Conventions {
        Conventions {
            no_color: env("NO_COLOR").is_some_and(|v| !v.is_empty()),
            editor: env("VISUAL")
                .or_else(|| env("EDITOR"))
                .filter(|e| !e.trim().is_empty()),
            otlp_endpoint: env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.is_empty()),
            log_filter: env("TB_LOG"),
        }
    }
}

/// The config file path: `$TB_CONFIG`, else `<XDG config dir>/tiny-backspace/config.toml`.
pub fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("TB_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "tiny-backspace")
        .map(|d| d.config_dir().join("config.toml"))
}

struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: BTreeMap<String, String>,
}

impl Layers<'_> {
    /// Environment, then `.env`, for any of `names` (first found wins).
    fn lookup(&self, names: &[&str]) -> Option<(String, Source)> {
        for n in names {
            if let Some(v) = (self.env)(n).filter(|v| !v.is_empty()) {
                return Some((v, Source::Env));
            }
        }
        for n in names {
            if let Some(v) = self.dotenv.get(*n).filter(|v| !v.is_empty()) {
                return Some((v.clone(), Source::DotEnv));
            }
        }
        None
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Value {
            key: key.into(),
            message: format!("'{v}' is not true or false"),
        }),
    }
}

fn parse_setup_network(v: &str) -> Result<NetworkMode, ConfigError> {
    NetworkMode::parse(v).ok_or_else(|| ConfigError::Value {
        key: "setup_network".into(),
        message: format!("'{v}' is not a network mode: use off, allowlist or on"),
    })
}

/// `NAME[:PORT]` or `[IPV6][:PORT]`, comma-separated: names a reverse proxy or DNS gives `serve`.
fn parse_server_hosts(v: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |h: &str| ConfigError::Value {
        key: "server_host".into(),
        message: format!("'{h}' is not a host name: write NAME or NAME:PORT, e.g. tb.example.com"),
    };
    let mut hosts = vec![];
    for h in v.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (name, port) = match h.strip_prefix('[') {
            Some(rest) => {
                let (ip, after) = rest.split_once(']').ok_or_else(|| bad(h))?;
                ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad(h))?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| bad(h))?),
                };
                (None, port)
            }
            None => match h.split_once(':') {
                Some((n, p)) => (Some(n), Some(p)),
                None => (Some(h), None),
            },
        };
        if let Some(p) = port {
            p.parse::<u16>().map_err(|_| bad(h))?;
        }
        let name_ok = name.is_none_or(|n| {
            !n.is_empty()
                && n.len() <= 253
                && !n.starts_with(['-', '.'])
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
        if !name_ok {
            return Err(bad(h));
        }
        hosts.push(h.to_ascii_lowercase());
    }
    Ok(hosts)
}

impl Config {
    /// Loads with the real environment, `./.env` and the default config file.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let env = |k: &str| std::env::var(k).ok();
        let dotenv = Path::new(".env");
        Self::load_from(
            overrides,
            &env,
            dotenv.is_file().then_some(dotenv),
            default_config_path(&env).as_deref(),
        )
    }

    /// `serve --public-host NAME[,NAME…]`: wins over `TB_SERVER_HOST` and the config file.
    /// `--allow-host` (repeatable): replaces the environment's and file's list; without an
    /// explicit network mode it means `allowlist`.
    pub fn set_allow_hosts_flag(&mut self, hosts: &[String]) -> Result<(), ConfigError> {
        if hosts.is_empty() {
            return Ok(());
        }
        let mode = self
            .sources
            .contains_key("network")
            .then(|| self.sandbox.network_mode().as_str());
        crate::sandbox::allow::apply_network(&mut self.sandbox, mode, Some(&hosts.join(",")))
            .map_err(|message| ConfigError::Value {
                key: "allow_host".into(),
                message,
            })?;
        self.sources.insert("allow_hosts", Source::Flag);
        Ok(())
    }

    /// `--setup`, `--setup-network`, `--setup-optional`, `--setup-timeout`: win over the
    /// environment and the file.
    pub fn set_setup_flags(&mut self, flags: &SetupFlags) -> Result<(), ConfigError> {
        if let Some(c) = &flags.command {
            // `--setup ""` turns the setup off, the repository's script included.
            self.setup.command = Some(c.trim().to_string());
            self.sources.insert("setup", Source::Flag);
        }
        if let Some(m) = &flags.network {
            self.setup.network = Some(parse_setup_network(m)?);
            self.sources.insert("setup_network", Source::Flag);
        }
        if flags.optional {
            self.setup.optional = true;
            self.sources.insert("setup_optional", Source::Flag);
        }
        if let Some(t) = flags.timeout_secs {
            self.setup.timeout = Duration::from_secs(t.max(1));
            self.sources.insert("setup_timeout", Source::Flag);
        }
        Ok(())
    }

    /// The setup phase's network: as asked, else `allowlist` when an allow-list names a host,
    /// else `off`.
    pub fn setup_network_mode(&self) -> NetworkMode {
        match (self.setup.network, &self.sandbox.allow_hosts) {
            (Some(m), _) => m,
            (None, Some(hosts)) if !hosts.is_empty() => NetworkMode::Allowlist,
            (None, _) => NetworkMode::Off,
        }
    }

    /// The agent phase's network once a setup ran: the mode given explicitly (`--network`,
    /// `TB_NETWORK`, `sandbox.network`), else `off` — an allow-list alone is the setup's.
    pub fn agent_network_after_setup(&self) -> NetworkMode {
        if self.network_explicit() {
            self.sandbox.network_mode()
        } else {
            NetworkMode::Off
        }
    }

    /// Whether the network mode was given (flag, environment or file) rather than implied.
    pub fn network_explicit(&self) -> bool {
        self.sources.contains_key("network")
    }

    /// `--ro-path` (repeatable): replaces the environment's and file's list; every entry is
    /// checked (a secret store, a home or a parent of one is refused).
    pub fn set_ro_paths_flag(&mut self, paths: &[String]) -> Result<(), ConfigError> {
        if paths.is_empty() {
            return Ok(());
        }
        let user_home = std::env::var_os("HOME").map(PathBuf::from);
        self.sandbox.ro_paths =
            crate::sandbox::ro_paths::check_all(paths, user_home.as_deref(), &self.home).map_err(
                |message| ConfigError::Value {
                    key: "ro_path".into(),
                    message,
                },
            )?;
        self.sources.insert("ro_paths", Source::Flag);
        Ok(())
    }

    pub fn set_server_hosts_flag(&mut self, value: &str) -> Result<(), ConfigError> {
        self.server_hosts = parse_server_hosts(value)?;
        self.sources.insert("server_host", Source::Flag);
        Ok(())
    }

    fn source(&self, key: &str) -> &'static str {
        self.sources
            .get(key)
            .copied()
            .unwrap_or(Source::Default)
            .as_str()
    }
}

#[cfg(test)]
mod conventions_tests {
    use super::Conventions;

    #[test]
    fn conventions_follow_their_programs_rules() {
        let read = |pairs: &[(&str, &str)]| {
            Conventions::read(&|k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(read(&[]), Conventions::default());
        let c = read(&[
            ("NO_COLOR", "1"),
            ("VISUAL", " "),
            ("EDITOR", "nano"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        ]);
        // A blank VISUAL hides EDITOR (it is set), as before: no editor named means `vi`.
        assert!(c.no_color && c.editor.is_none() && c.otlp_endpoint.is_none());
        let c = read(&[
            ("NO_COLOR", ""),
            ("EDITOR", "code --wait"),
            ("TB_LOG", "debug"),
        ]);
        assert!(!c.no_color);
        assert_eq!(c.editor.as_deref(), Some("code --wait"));
        assert_eq!(c.log_filter.as_deref(), Some("debug"));
    }
}
