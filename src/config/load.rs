//! Building a [`Config`] from its layers: flags, environment, `.env`, config file, defaults.

use super::file::*;
use super::*;
use crate::llm::settings::{MIN_THINKING_BUDGET, OpenAiApi, ReasoningEffort};

fn parse_effort(v: &str) -> Result<ReasoningEffort, ConfigError> {
    ReasoningEffort::parse(v).map_err(|message| ConfigError::Value {
        key: "agent.reasoning_effort".into(),
        message,
    })
}

impl Config {
    /// `--thinking-budget N` and `--reasoning-effort E`: win over the environment and the file.
    pub fn set_reasoning_flags(
        &mut self,
        thinking_budget: Option<&str>,
        reasoning_effort: Option<&str>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = thinking_budget {
            self.llm.thinking_budget = parse_thinking_budget(v)?;
            self.sources.insert("thinking_budget", Source::Flag);
        }
        if let Some(v) = reasoning_effort {
            self.llm.reasoning_effort = Some(parse_effort(v)?);
            self.sources.insert("reasoning_effort", Source::Flag);
        }
        Ok(())
    }
}

/// Tokens of extended thinking: 0 is off; otherwise at least the API's minimum. The request's
/// `max_tokens` grows by the budget, so it is always above it, as the API requires.
fn parse_thinking_budget(v: &str) -> Result<Option<u32>, ConfigError> {
    let bad = |message: String| ConfigError::Value {
        key: "agent.thinking_budget".into(),
        message,
    };
    match v.trim().parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) if n < MIN_THINKING_BUDGET => Err(bad(format!(
            "{n} tokens is below the minimum of {MIN_THINKING_BUDGET} that extended thinking \
             accepts (0 turns it off)"
        ))),
        Ok(n) if n > 200_000 => Err(bad(format!(
            "{n} tokens is more than any model can think in one turn"
        ))),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(bad(format!("'{v}' is not a number of tokens"))),
    }
}

impl Config {
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
        let openai_api = pick("openai_api", None, &["TB_OPENAI_API"], file.openai.api);
        let thinking_budget = pick(
            "thinking_budget",
            None,
            &["TB_THINKING_BUDGET"],
            file.agent.thinking_budget.map(|n| n.to_string()),
        );
        let reasoning_effort = pick(
            "reasoning_effort",
            None,
            &["TB_REASONING_EFFORT"],
            file.agent.reasoning_effort.clone(),
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

        let e2b = crate::sandbox::e2b::E2bSettings {
            api_key: pick("e2b_api_key", None, &["E2B_API_KEY"], None).map(Secret::new),
            domain: pick("e2b_domain", None, &["E2B_DOMAIN"], None),
            api_url: pick("e2b_api_url", None, &["E2B_API_URL"], None),
            sandbox_url: pick("e2b_sandbox_url", None, &["E2B_SANDBOX_URL"], None),
            template: pick(
                "e2b_template",
                None,
                &["TB_E2B_TEMPLATE"],
                file.sandbox.e2b_template.clone(),
            ),
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
        if let Some(v) = pick(
            "cache",
            None,
            &["TB_SANDBOX_CACHE"],
            file.sandbox.cache.map(|b| b.to_string()),
        ) && parse_bool("cache", &v)?
        {
            sandbox.cache_root = Some(home.join("cache"));
        }
        // A file list is joined with newlines (always one at the end), the environment's with
        // commas, so a path with a comma can still be given in the file.
        if let Some(v) = pick(
            "ro_paths",
            None,
            &["TB_RO_PATHS"],
            file.sandbox.ro_paths.as_ref().map(|list| {
                list.iter()
                    .map(|e| format!("{}\n", e.as_entry()))
                    .collect::<String>()
            }),
        ) {
            let entries: Vec<String> = if v.contains('\n') {
                v.lines().map(str::to_string).collect()
            } else {
                v.split(',').map(str::to_string).collect()
            };
            let user_home = env("HOME").map(PathBuf::from);
            sandbox.ro_paths =
                crate::sandbox::ro_paths::check_all(&entries, user_home.as_deref(), &home)
                    .map_err(|message| ConfigError::Value {
                        key: "ro_paths".into(),
                        message,
                    })?;
        }
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
        let mut setup = SetupSettings {
            command: pick("setup", None, &["TB_SETUP"], file.agent.setup)
                .map(|c| c.trim().to_string()),
            ..SetupSettings::default()
        };
        if let Some(v) = pick(
            "setup_network",
            None,
            &["TB_SETUP_NETWORK"],
            file.agent.setup_network,
        ) {
            setup.network = Some(parse_setup_network(&v)?);
        }
        if let Some(v) = pick(
            "setup_optional",
            None,
            &["TB_SETUP_OPTIONAL"],
            file.agent.setup_optional.map(|b| b.to_string()),
        ) {
            setup.optional = parse_bool("setup_optional", &v)?;
        }
        if let Some(v) = pick(
            "setup_timeout",
            None,
            &["TB_SETUP_TIMEOUT"],
            file.agent.setup_timeout_secs.map(|n| n.to_string()),
        ) {
            let secs = v.trim().parse::<u64>().map_err(|_| ConfigError::Value {
                key: "setup_timeout".into(),
                message: format!("'{v}' is not a whole number of seconds"),
            })?;
            setup.timeout = Duration::from_secs(secs.max(1));
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

        let mut llm = file.llm;
        if let Some(v) = openai_api {
            llm.openai_api = OpenAiApi::parse(&v).map_err(|message| ConfigError::Value {
                key: "openai.api".into(),
                message,
            })?;
        }
        if let Some(v) = reasoning_effort {
            llm.reasoning_effort = Some(parse_effort(&v)?);
        }
        if let Some(v) = thinking_budget {
            llm.thinking_budget = parse_thinking_budget(&v)?;
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
            e2b,
            agent,
            setup,
            clone,
            llm,
            publish,
            diff,
            config_file,
            sources,
        })
    }
}
