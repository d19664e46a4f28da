//! Resolved configuration: flags > environment > `.env` in the current directory > config file >
//! defaults.
//!
//! Invariants: this is the only place that reads configuration from the environment, `.env` or the
//! config file; secrets are held as [`Secret`] and never printed unmasked; `.env` is read without
//! modifying the process environment, so nothing from it is inherited by child processes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::agent::AgentLimits;
use crate::sandbox::{SandboxKind, SandboxSettings};

/// A credential: printable only as a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        if n <= 8 {
            "****".into()
        } else {
            let tail: String = self.0.chars().skip(n - 4).collect();
            format!("****{tail} ({n} chars)")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    model: Option<String>,
    #[serde(default)]
    anthropic: ProviderFile,
    #[serde(default)]
    openai: ProviderFile,
    #[serde(default)]
    github: GitHubFile,
    #[serde(default)]
    sandbox: SandboxFile,
    #[serde(default)]
    agent: AgentFile,
    #[serde(default)]
    clone: CloneFile,
    #[serde(default)]
    llm: crate::llm::settings::LlmSettings,
    #[serde(default)]
    server: ServerFile,
    #[serde(default)]
    publish: PublishFile,
    #[serde(default)]
    diff: DiffFile,
}

/// `[diff]`: how large a patch may get.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffFile {
    max_file_mb: Option<u64>,
    max_patch_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    token: Option<String>,
    public_host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFile {
    branch_prefix: Option<String>,
    fork: Option<bool>,
    author_name: Option<String>,
    author_email: Option<String>,
    draft: Option<bool>,
    max_rate_limit_wait_secs: Option<u64>,
}

/// How approved changes are published (branch, fork, author, draft, rate-limit patience).
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    api_key: Option<String>,
    base_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitHubFile {
    token: Option<String>,
    api_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxFile {
    backend: Option<String>,
    /// `true`/`false` or `"off"`/`"allowlist"`/`"on"`.
    network: Option<toml::Value>,
    allow_hosts: Option<Vec<String>>,
    timeout_secs: Option<u64>,
    max_timeout_secs: Option<u64>,
    cpu_secs: Option<u64>,
    memory_mb: Option<u64>,
    max_processes: Option<u64>,
    file_size_mb: Option<u64>,
    workspace_mb: Option<u64>,
    tmp_mb: Option<u64>,
    output_limit_mb: Option<u64>,
    output_keep_kb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    max_turns: Option<u32>,
    max_tokens: Option<u64>,
    max_minutes: Option<u64>,
    /// Finer-grained alternative to `max_minutes` (wins when both are set).
    max_seconds: Option<u64>,
    /// One self-review turn before a run that made changes ends (default on).
    self_review: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloneFile {
    timeout_secs: Option<u64>,
    max_size_mb: Option<u64>,
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

    pub fn load_from(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        dotenv_path: Option<&Path>,
        config_path: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut dotenv = BTreeMap::new();
        if let Some(p) = dotenv_path {
            let iter = dotenvy::from_path_iter(p).map_err(|e| ConfigError::DotEnv {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError::DotEnv {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                dotenv.insert(k, v);
            }
        }
        let layers = Layers { env, dotenv };
        let (file, config_file) = match config_path {
            Some(p) if p.is_file() => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                let parsed: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                (parsed, Some(p.to_path_buf()))
            }
            _ => (FileConfig::default(), None),
        };

        let mut sources = BTreeMap::new();
        let mut pick = |key: &'static str,
                        flag: Option<String>,
                        names: &[&str],
                        from_file: Option<String>|
         -> Option<String> {
            let found = flag
                .map(|v| (v, Source::Flag))
                .or_else(|| layers.lookup(names))
                .or_else(|| from_file.map(|v| (v, Source::File)));
            if let Some((_, s)) = &found {
                sources.insert(key, *s);
            }
            found.map(|(v, _)| v)
        };

        let home = pick(
            "home",
            overrides.home.as_ref().map(|p| p.display().to_string()),
            &["TB_HOME"],
            None,
        )
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::store::default_home(&|_| None));
        let model = pick("model", overrides.model.clone(), &["TB_MODEL"], file.model);
        let anthropic_api_key = pick(
            "anthropic_api_key",
            None,
            &["ANTHROPIC_API_KEY"],
            file.anthropic.api_key,
        )
        .map(Secret::new);
        let anthropic_base_url = pick(
            "anthropic_base_url",
            None,
            &["ANTHROPIC_BASE_URL"],
            file.anthropic.base_url,
        );
        let openai_api_key = pick(
            "openai_api_key",
            None,
            &["OPENAI_API_KEY"],
            file.openai.api_key,
        )
        .map(Secret::new);
        let openai_base_url = pick(
            "openai_base_url",
            None,
            &["OPENAI_BASE_URL"],
            file.openai.base_url,
        );
        let github_token = pick(
            "github_token",
            None,
            &["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT"],
            file.github.token,
        )
        .map(Secret::new);
        let github_api_url = pick(
            "github_api_url",
            None,
            &["GITHUB_API_URL"],
            file.github.api_url,
        );
        let server_token = pick(
            "server_token",
            None,
            &["TB_SERVER_TOKEN"],
            file.server.token,
        )
        .map(Secret::new);
        let server_hosts = match pick(
            "server_host",
            None,
            &["TB_SERVER_HOST"],
            file.server.public_host,
        ) {
            Some(v) => parse_server_hosts(&v)?,
            None => vec![],
        };

        let mut sandbox = SandboxSettings::default();
        if let Some(b) = pick(
            "sandbox",
            overrides.sandbox.clone(),
            &["TB_SANDBOX"],
            file.sandbox.backend.clone(),
        ) {
            sandbox.kind = match b.trim().to_ascii_lowercase().as_str() {
                "" | "auto" => None,
                other => Some(SandboxKind::parse(other).map_err(|e| ConfigError::Value {
                    key: "sandbox".into(),
                    message: e.to_string(),
                })?),
            };
        }
        let network = pick(
            "network",
            overrides.network.clone(),
            &["TB_NETWORK"],
            file.sandbox.network.as_ref().map(|v| match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        );
        let allow_hosts = pick(
            "allow_hosts",
            None,
            &["TB_ALLOW_HOSTS"],
            file.sandbox.allow_hosts.clone().map(|h| h.join(",")),
        );
        crate::sandbox::allow::apply_network(
            &mut sandbox,
            network.as_deref(),
            allow_hosts.as_deref(),
        )
        .map_err(|message| ConfigError::Value {
            key: "network".into(),
            message,
        })?;
        if let Some(t) = file.sandbox.timeout_secs {
            sandbox.default_timeout = Duration::from_secs(t.max(1));
        }
        if let Some(t) = file.sandbox.max_timeout_secs {
            sandbox.max_timeout = Duration::from_secs(t.max(1));
        }
        sandbox.default_timeout = sandbox.default_timeout.min(sandbox.max_timeout);
        let f = &file.sandbox;
        let l = &mut sandbox.limits;
        if let Some(v) = f.cpu_secs {
            l.cpu_secs = v.max(1);
        }
        if let Some(v) = f.memory_mb {
            l.memory_bytes = v.max(16) << 20;
        }
        if let Some(v) = f.max_processes {
            l.max_processes = v.max(8);
        }
        if let Some(v) = f.file_size_mb {
            l.file_size_bytes = v.max(1) << 20;
        }
        if let Some(v) = f.workspace_mb {
            l.workspace_bytes = v.max(1) << 20;
        }
        if let Some(v) = f.tmp_mb {
            l.tmp_bytes = v.max(1) << 20;
        }
        if let Some(v) = f.output_limit_mb {
            sandbox.output_limit_bytes = v.max(1) << 20;
        }
        if let Some(v) = f.output_keep_kb {
            sandbox.output_keep_bytes = (v.max(1) << 10) as usize;
        }

        let mut agent = AgentLimits::default();
        if let Some(v) = file.agent.max_turns {
            agent.max_turns = v.max(1);
        }
        if let Some(v) = file.agent.max_tokens {
            agent.max_total_tokens = v;
        }
        if let Some(v) = file.agent.max_minutes {
            agent.max_duration = Duration::from_secs(v.max(1) * 60);
        }
        if let Some(v) = file.agent.max_seconds {
            agent.max_duration = Duration::from_secs(v.max(1));
        }
        if let Some(v) = file.agent.self_review {
            agent.self_review = v;
        }
        let mut clone = CloneLimits::default();
        if let Some(v) = file.clone.timeout_secs {
            clone.timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = file.clone.max_size_mb {
            clone.max_size_bytes = v << 20;
        }

        let mut diff = crate::git::DiffLimits::default();
        let megabytes = |key: &str, v: String| -> Result<u64, ConfigError> {
            match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n << 20),
                _ => Err(ConfigError::Value {
                    key: key.into(),
                    message: format!("'{v}' is not a whole number of MB (at least 1)"),
                }),
            }
        };
        if let Some(v) = pick(
            "diff_max_file_mb",
            None,
            &["TB_DIFF_MAX_FILE_MB"],
            file.diff.max_file_mb.map(|n| n.to_string()),
        ) {
            diff.max_file_bytes = megabytes("diff.max_file_mb", v)?;
        }
        if let Some(v) = pick(
            "diff_max_patch_mb",
            None,
            &["TB_DIFF_MAX_PATCH_MB"],
            file.diff.max_patch_mb.map(|n| n.to_string()),
        ) {
            diff.max_patch_bytes = megabytes("diff.max_patch_mb", v)?;
        }

        let mut publish = PublishSettings::default();
        if let Some(p) = pick(
            "branch_prefix",
            None,
            &["TB_BRANCH_PREFIX"],
            file.publish.branch_prefix,
        ) {
            let p = p.trim().to_string();
            let ok = !p.starts_with(['-', '/', '.'])
                && !p.contains("..")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
            if !ok {
                return Err(ConfigError::Value {
                    key: "branch_prefix".into(),
                    message: format!(
                        "'{p}' cannot start a branch name: use letters, digits, '-', '_', '.', '/'"
                    ),
                });
            }
            publish.branch_prefix = p;
        }
        if let Some(v) = pick(
            "fork",
            None,
            &["TB_FORK"],
            file.publish.fork.map(|b| b.to_string()),
        ) {
            publish.fork = parse_bool("fork", &v)?;
        }
        if let Some(v) = pick(
            "draft",
            None,
            &["TB_DRAFT"],
            file.publish.draft.map(|b| b.to_string()),
        ) {
            publish.draft = parse_bool("draft", &v)?;
        }
        publish.author_name = pick(
            "author_name",
            None,
            &["TB_AUTHOR_NAME"],
            file.publish.author_name,
        );
        publish.author_email = pick(
            "author_email",
            None,
            &["TB_AUTHOR_EMAIL"],
            file.publish.author_email,
        );
        if let Some(v) = file.publish.max_rate_limit_wait_secs {
            publish.max_rate_limit_wait = Duration::from_secs(v);
        }

        Ok(Config {
            home,
            model,
            anthropic_api_key,
            anthropic_base_url,
            openai_api_key,
            openai_base_url,
            github_token,
            github_api_url,
            server_token,
            server_hosts,
            sandbox,
            agent,
            clone,
            llm: file.llm,
            publish,
            diff,
            config_file,
            sources,
        })
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

    /// The resolved configuration, secrets masked, each value with where it came from.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Derived values have no source of their own: no parentheses for them.
        let mut line = |k: &str, v: String, src: &str| {
            let src = if src.is_empty() {
                String::new()
            } else {
                format!(" ({src})")
            };
            out.push_str(format!("{k:<22} {v:<44}{src}").trim_end());
            out.push('\n');
        };
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not set)".into());
        let sec = |o: &Option<Secret>| {
            o.as_ref()
                .map(Secret::masked)
                .unwrap_or_else(|| "(not set)".into())
        };
        line("home", self.home.display().to_string(), self.source("home"));
        line(
            "config file",
            self.config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none)".into()),
            "",
        );
        line("model", opt(&self.model), self.source("model"));
        line(
            "anthropic api key",
            sec(&self.anthropic_api_key),
            self.source("anthropic_api_key"),
        );
        line(
            "anthropic base url",
            opt(&self.anthropic_base_url),
            self.source("anthropic_base_url"),
        );
        line(
            "openai api key",
            sec(&self.openai_api_key),
            self.source("openai_api_key"),
        );
        line(
            "openai base url",
            opt(&self.openai_base_url),
            self.source("openai_base_url"),
        );
        line(
            "github token",
            sec(&self.github_token),
            self.source("github_token"),
        );
        line(
            "github api url",
            opt(&self.github_api_url),
            self.source("github_api_url"),
        );
        line(
            "server token",
            self.server_token.as_ref().map_or_else(
                || {
                    format!(
                        "(serve keeps one in {})",
                        self.home.join("server-token").display()
                    )
                },
                Secret::masked,
            ),
            self.source("server_token"),
        );
        line(
            "server public host",
            if self.server_hosts.is_empty() {
                "(none: only its own address)".into()
            } else {
                self.server_hosts.join(", ")
            },
            self.source("server_host"),
        );
        line(
            "sandbox",
            self.sandbox
                .kind
                .map(|k| k.as_str().to_string())
                .unwrap_or_else(|| "auto".into()),
            self.source("sandbox"),
        );
        let mode = self.sandbox.network_mode();
        line(
            "network",
            match mode {
                crate::sandbox::NetworkMode::Off => "false (off)".to_string(),
                crate::sandbox::NetworkMode::On => "true (on)".to_string(),
                crate::sandbox::NetworkMode::Allowlist => "allowlist".to_string(),
            },
            self.source("network"),
        );
        if let Some(hosts) = &self.sandbox.allow_hosts {
            line(
                "allowed hosts",
                if hosts.is_empty() {
                    "(none: every request refused)".to_string()
                } else {
                    hosts
                        .iter()
                        .map(|h| h.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                self.source("allow_hosts"),
            );
        }
        line(
            "command timeout",
            format!(
                "{}s (max {}s)",
                self.sandbox.default_timeout.as_secs(),
                self.sandbox.max_timeout.as_secs()
            ),
            "",
        );
        let l = &self.sandbox.limits;
        line(
            "sandbox limits",
            format!(
                "cpu {}s, memory {} MB, {} processes, files {} MB, workspace {} MB, /tmp {} MB",
                l.cpu_secs,
                l.memory_bytes >> 20,
                l.max_processes,
                l.file_size_bytes >> 20,
                l.workspace_bytes >> 20,
                l.tmp_bytes >> 20
            ),
            "",
        );
        line(
            "agent budget",
            format!(
                "{} turns, {} tokens, {} min",
                self.agent.max_turns,
                self.agent.max_total_tokens,
                self.agent.max_duration.as_secs() / 60
            ),
            "",
        );
        line(
            "model chain",
            match crate::llm::select::describe_chain(self) {
                Ok(chain) => chain.join(" -> "),
                Err(_) => "(none: set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL)".into(),
            },
            "",
        );
        line(
            "model retries",
            format!(
                "{} attempts, backoff {}-{} ms, stall {} s, fallback {}",
                self.llm.max_attempts,
                self.llm.initial_backoff_ms,
                self.llm.max_backoff_ms,
                self.llm.read_timeout_ms / 1000,
                if self.llm.fallback { "on" } else { "off" }
            ),
            "",
        );
        line(
            "clone limits",
            format!(
                "{}s, {} MB",
                self.clone.timeout.as_secs(),
                self.clone.max_size_bytes >> 20
            ),
            "",
        );
        line(
            "diff max file",
            format!("{} MB", self.diff.max_file_bytes >> 20),
            self.source("diff_max_file_mb"),
        );
        line(
            "diff max patch",
            format!("{} MB", self.diff.max_patch_bytes >> 20),
            self.source("diff_max_patch_mb"),
        );
        line(
            "branch prefix",
            self.publish.branch_prefix.clone(),
            self.source("branch_prefix"),
        );
        line(
            "fork without push",
            self.publish.fork.to_string(),
            self.source("fork"),
        );
        line(
            "draft pull requests",
            self.publish.draft.to_string(),
            self.source("draft"),
        );
        line(
            "commit author",
            match (&self.publish.author_name, &self.publish.author_email) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n.clone(),
                (None, Some(e)) => format!("<{e}>"),
                (None, None) => "(your git identity)".into(),
            },
            self.source("author_name"),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn precedence_flag_env_dotenv_file_default() {
        let t = tempfile::tempdir().unwrap();
        let dotenv = t.path().join(".env");
        std::fs::write(
            &dotenv,
            "TB_MODEL=openai:from-dotenv\nOPENAI_API_KEY=sk-dotenv-123456789\n",
        )
        .unwrap();
        let file = t.path().join("config.toml");
        std::fs::write(
            &file,
            "model = \"anthropic:from-file\"\n[sandbox]\nnetwork = true\n",
        )
        .unwrap();

        let env = env_of(&[]);
        let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
        assert_eq!(c.model.as_deref(), Some("anthropic:from-file"));
        assert!(c.sandbox.network);

        let c = Config::load_from(&Overrides::default(), &env, Some(&dotenv), Some(&file)).unwrap();
        assert_eq!(c.model.as_deref(), Some("openai:from-dotenv"));

        let env = env_of(&[("TB_MODEL", "openai:from-env")]);
        let c = Config::load_from(&Overrides::default(), &env, Some(&dotenv), Some(&file)).unwrap();
        assert_eq!(c.model.as_deref(), Some("openai:from-env"));
        assert_eq!(c.source("model"), "environment");

        let o = Overrides {
            model: Some("scripted:x".into()),
            ..Default::default()
        };
        let c = Config::load_from(&o, &env, Some(&dotenv), Some(&file)).unwrap();
        assert_eq!(c.model.as_deref(), Some("scripted:x"));
        assert_eq!(c.source("model"), "flag");
        assert_eq!(c.source("openai_api_key"), ".env");
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let env = env_of(&[
            ("GITHUB_TOKEN", "ghp_supersecretvalue1234"),
            ("ANTHROPIC_API_KEY", "sk-ant-abcdefghijkl"),
        ]);
        let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
        let shown = c.render();
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("abcdefgh"), "{shown}");
        assert!(shown.contains("****1234"));
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    #[test]
    fn the_rendering_says_what_is_missing_in_one_line_each() {
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
        let shown = c.render();
        assert!(!shown.contains("()"), "{shown}");
        let chain = shown
            .lines()
            .find(|l| l.starts_with("model chain"))
            .unwrap();
        assert!(chain.contains("(none: set ANTHROPIC_API_KEY"), "{chain}");
        assert!(shown.lines().all(|l| l == l.trim_end()), "{shown}");
    }

    #[test]
    fn token_discovery_order() {
        let env = env_of(&[("GH_TOKEN", "second"), ("GITHUB_PAT", "third")]);
        let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
        assert_eq!(c.github_token.unwrap().expose(), "second");
    }

    #[test]
    fn publish_settings_follow_precedence() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("config.toml");
        std::fs::write(
            &file,
            "[publish]\nbranch_prefix = \"bot/\"\nfork = false\ndraft = true\n\
             author_name = \"File Name\"\nmax_rate_limit_wait_secs = 5\n",
        )
        .unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
        assert_eq!(c.publish, PublishSettings::default());
        assert_eq!(c.publish.branch_prefix, "tb/");
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.publish.branch_prefix, "bot/");
        assert!(!c.publish.fork && c.publish.draft);
        assert_eq!(c.publish.author_name.as_deref(), Some("File Name"));
        assert_eq!(c.publish.max_rate_limit_wait, Duration::from_secs(5));
        let env = env_of(&[
            ("TB_BRANCH_PREFIX", "env/"),
            ("TB_FORK", "yes"),
            ("TB_AUTHOR_EMAIL", "e@x"),
        ]);
        let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
        assert_eq!(c.publish.branch_prefix, "env/");
        assert!(c.publish.fork);
        assert_eq!(c.source("branch_prefix"), "environment");
        assert_eq!(c.publish.author_email.as_deref(), Some("e@x"));
        assert!(c.render().contains("File Name <e@x>"));
        for bad in ["-x/", "a..b/", "a b/", "/abs"] {
            let pairs = [("TB_BRANCH_PREFIX", bad)];
            let env = env_of(&pairs);
            let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
            assert!(e.to_string().contains("branch_prefix"), "{bad}: {e}");
        }
    }

    #[test]
    fn server_hosts_from_the_file_the_environment_and_the_flag() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("c.toml");
        std::fs::write(&file, "[server]\npublic_host = \"TB.Example.com\"\n").unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.server_hosts, ["tb.example.com"]);
        let env = env_of(&[("TB_SERVER_HOST", "a.example:8443, [::1]:9000,b")]);
        let mut c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
        assert_eq!(c.server_hosts, ["a.example:8443", "[::1]:9000", "b"]);
        assert_eq!(c.source("server_host"), "environment");
        c.set_server_hosts_flag("flag.example").unwrap();
        assert_eq!(c.server_hosts, ["flag.example"]);
        assert!(c.render().contains("flag.example"));
        for bad in ["a b", "-x", "x:port", "x:70000", "[nope]", "x/y", "a@b"] {
            let pairs = [("TB_SERVER_HOST", bad)];
            let env = env_of(&pairs);
            let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
            assert!(e.to_string().contains("server_host"), "{bad}: {e}");
        }
    }

    #[test]
    fn diff_limits_come_from_the_file_and_the_environment() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("config.toml");
        std::fs::write(&file, "[diff]\nmax_file_mb = 3\nmax_patch_mb = 20\n").unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, None).unwrap();
        assert_eq!(c.diff, crate::git::DiffLimits::default());
        assert_eq!(c.diff.max_file_bytes, 10 << 20);
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(
            (c.diff.max_file_bytes, c.diff.max_patch_bytes),
            (3 << 20, 20 << 20)
        );
        let env = env_of(&[("TB_DIFF_MAX_FILE_MB", "200")]);
        let c = Config::load_from(&Overrides::default(), &env, None, Some(&file)).unwrap();
        assert_eq!(c.diff.max_file_bytes, 200 << 20);
        assert_eq!(c.source("diff_max_file_mb"), "environment");
        assert!(c.render().contains("diff max file"), "{}", c.render());
        for bad in ["0", "ten", "-1"] {
            let pairs = [("TB_DIFF_MAX_PATCH_MB", bad)];
            let e =
                Config::load_from(&Overrides::default(), &env_of(&pairs), None, None).unwrap_err();
            assert!(e.to_string().contains("diff.max_patch_mb"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let env = env_of(&[("TB_SANDBOX", "docker")]);
        let e = Config::load_from(&Overrides::default(), &env, None, None).unwrap_err();
        assert!(
            e.to_string().contains("sandbox") && e.to_string().contains("docker"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("c.toml");
        std::fs::write(&file, "[sandbox]\nnetwrok = true\n").unwrap();
        let e =
            Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap_err();
        assert!(e.to_string().contains("netwrok"), "{e}");
    }

    #[test]
    fn sandbox_limits_from_the_file_and_landlock_by_name() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("c.toml");
        std::fs::write(
            &file,
            "[sandbox]\nbackend = \"landlock\"\ncpu_secs = 30\nmemory_mb = 512\n\
             max_processes = 64\nfile_size_mb = 10\nworkspace_mb = 100\n",
        )
        .unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.sandbox.kind, Some(SandboxKind::Landlock));
        assert_eq!(c.sandbox.limits.cpu_secs, 30);
        assert_eq!(c.sandbox.limits.memory_bytes, 512 << 20);
        assert_eq!(c.sandbox.limits.max_processes, 64);
        assert_eq!(c.sandbox.limits.file_size_bytes, 10 << 20);
        assert_eq!(c.sandbox.limits.workspace_bytes, 100 << 20);
        // The flag still wins over the file.
        let o = Overrides {
            sandbox: Some("bwrap".into()),
            ..Default::default()
        };
        let c = Config::load_from(&o, &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.sandbox.kind, Some(SandboxKind::Bwrap));
        assert!(c.render().contains("memory 512 MB"));
    }

    #[test]
    fn network_modes_and_allow_hosts_from_file_env_and_flag() {
        use crate::sandbox::NetworkMode;
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("config.toml");
        std::fs::write(
            &file,
            "[sandbox]\nnetwork = \"allowlist\"\nallow_hosts = [\"127.0.0.1:8080\", \"example.org\"]\n",
        )
        .unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.sandbox.network_mode(), NetworkMode::Allowlist);
        assert_eq!(c.sandbox.allow_hosts.as_ref().map(Vec::len), Some(2));
        assert!(c.render().contains("127.0.0.1:8080, example.org"));
        // The environment's list replaces the file's; a list alone implies allowlist.
        let env = env_of(&[("TB_ALLOW_HOSTS", "10.0.0.1:3000")]);
        let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
        assert_eq!(c.sandbox.network_mode(), NetworkMode::Allowlist);
        // An explicit mode wins over a list; the flag's list replaces the others.
        let o = Overrides {
            network: Some("on".into()),
            ..Default::default()
        };
        let mut c = Config::load_from(&o, &env, None, None).unwrap();
        c.set_allow_hosts_flag(&["example.org".into()]).unwrap();
        assert_eq!(c.sandbox.network_mode(), NetworkMode::On);
        let mut c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
        c.set_allow_hosts_flag(&["example.org:8443".into()])
            .unwrap();
        let hosts = c.sandbox.allow_hosts.clone().unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].to_string(), "example.org:8443");
        let e = c
            .set_allow_hosts_flag(&["https://x.org".into()])
            .unwrap_err();
        assert!(e.to_string().contains("'https://x.org'"), "{e}");
        // true/false keep working in the file.
        std::fs::write(&file, "[sandbox]\nnetwork = true\n").unwrap();
        let c = Config::load_from(&Overrides::default(), &env_of(&[]), None, Some(&file)).unwrap();
        assert_eq!(c.sandbox.network_mode(), NetworkMode::On);
    }
}
