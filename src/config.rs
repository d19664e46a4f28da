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
    pub network: Option<bool>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    token: Option<String>,
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
    network: Option<bool>,
    timeout_secs: Option<u64>,
    max_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    max_turns: Option<u32>,
    max_tokens: Option<u64>,
    max_minutes: Option<u64>,
    /// Finer-grained alternative to `max_minutes` (wins when both are set).
    max_seconds: Option<u64>,
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
    /// Bearer token `serve` requires from clients (`TB_SERVER_TOKEN`).
    pub server_token: Option<Secret>,
    pub sandbox: SandboxSettings,
    pub agent: AgentLimits,
    pub clone: CloneLimits,
    /// Model-layer tunables: retries, timeouts, default models, prices (`[llm]` in the file).
    pub llm: crate::llm::settings::LlmSettings,
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

        let mut sandbox = SandboxSettings::default();
        if let Some(b) = pick(
            "sandbox",
            overrides.sandbox.clone(),
            &["TB_SANDBOX"],
            file.sandbox.backend,
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
            overrides.network.map(|b| b.to_string()),
            &["TB_NETWORK"],
            file.sandbox.network.map(|b| b.to_string()),
        );
        if let Some(n) = network {
            sandbox.network = parse_bool("network", &n)?;
        }
        if let Some(t) = file.sandbox.timeout_secs {
            sandbox.default_timeout = Duration::from_secs(t.max(1));
        }
        if let Some(t) = file.sandbox.max_timeout_secs {
            sandbox.max_timeout = Duration::from_secs(t.max(1));
        }
        sandbox.default_timeout = sandbox.default_timeout.min(sandbox.max_timeout);

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
        let mut clone = CloneLimits::default();
        if let Some(v) = file.clone.timeout_secs {
            clone.timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = file.clone.max_size_mb {
            clone.max_size_bytes = v << 20;
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
            sandbox,
            agent,
            clone,
            llm: file.llm,
            config_file,
            sources,
        })
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
        let mut line =
            |k: &str, v: String, src: &str| out.push_str(&format!("{k:<22} {v:<44} ({src})\n"));
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
            sec(&self.server_token),
            self.source("server_token"),
        );
        line(
            "sandbox",
            self.sandbox
                .kind
                .map(|k| k.as_str().to_string())
                .unwrap_or_else(|| "auto".into()),
            self.source("sandbox"),
        );
        line(
            "network",
            self.sandbox.network.to_string(),
            self.source("network"),
        );
        line(
            "command timeout",
            format!(
                "{}s (max {}s)",
                self.sandbox.default_timeout.as_secs(),
                self.sandbox.max_timeout.as_secs()
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
                Err(e) => format!("(none) {}", e.to_string().lines().next().unwrap_or("")),
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
    fn token_discovery_order() {
        let env = env_of(&[("GH_TOKEN", "second"), ("GITHUB_PAT", "third")]);
        let c = Config::load_from(&Overrides::default(), &env, None, None).unwrap();
        assert_eq!(c.github_token.unwrap().expose(), "second");
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
}
