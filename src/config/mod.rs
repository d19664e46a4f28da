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
use crate::sandbox::{SandboxKind, SandboxSettings};
use crate::secret::Secret;

mod file;
mod load;
mod render;
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
