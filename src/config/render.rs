//! `tiny-backspace config`: every resolved value with where it came from, secrets masked.
//!
//! Invariants: values other layers compute from the configuration (the model chain) are handed
//! in as [`Derived`], so `config` depends on no layer's logic, only on their settings types.

use super::*;

/// Rows computed from the configuration by the layers that own them (the caller fills them in).
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// The model chain's labels, first the one that answers; `None` when none can be built.
    pub model_chain: Option<Vec<String>>,
}

impl Config {
    /// The resolved configuration, secrets masked, each value with where it came from.
    pub fn render(&self, derived: &Derived) -> String {
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
        line(
            "e2b api key",
            sec(&self.e2b.api_key),
            self.source("e2b_api_key"),
        );
        for (k, v, src) in [
            ("e2b domain", &self.e2b.domain, "e2b_domain"),
            ("e2b api url", &self.e2b.api_url, "e2b_api_url"),
            ("e2b sandbox url", &self.e2b.sandbox_url, "e2b_sandbox_url"),
            ("e2b template", &self.e2b.template, "e2b_template"),
        ] {
            line(k, opt(v), self.source(src));
        }
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
            "setup",
            match self.setup.command.as_deref() {
                None => "(not set: .tiny-backspace/setup.sh if executable)".to_string(),
                Some("") => "(off, the repository's script too)".to_string(),
                Some(c) => c.to_string(),
            },
            self.source("setup"),
        );
        let setup_mode = self.setup_network_mode();
        line(
            "setup network",
            if self.setup.network.is_some() {
                setup_mode.as_str().to_string()
            } else {
                format!(
                    "{} (allowlist with allowed hosts, else off)",
                    setup_mode.as_str()
                )
            },
            self.source("setup_network"),
        );
        line(
            "setup optional",
            self.setup.optional.to_string(),
            self.source("setup_optional"),
        );
        line(
            "setup timeout",
            format!("{}s", self.setup.timeout.as_secs()),
            self.source("setup_timeout"),
        );
        line(
            "read-only paths",
            if self.sandbox.ro_paths.is_empty() {
                "(none)".to_string()
            } else {
                self.sandbox
                    .ro_paths
                    .iter()
                    .map(|r| {
                        let on_path = if r.add_to_path { " (bin on PATH)" } else { "" };
                        format!("{}{on_path}", r.path.display())
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.source("ro_paths"),
        );
        line(
            "package cache",
            match &self.sandbox.cache_root {
                Some(root) => format!("kept between runs per repository, in {}", root.display()),
                None => "per run (sandbox.cache = false)".to_string(),
            },
            self.source("cache"),
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
            "thinking budget",
            match self.llm.thinking_budget {
                Some(n) => format!("{n} tokens (Claude 3.7 Sonnet, Claude 4 and later)"),
                None => "off".into(),
            },
            self.source("thinking_budget"),
        );
        line(
            "reasoning effort",
            self.llm
                .reasoning_effort
                .map(|e| format!("{} (OpenAI reasoning models)", e.as_str()))
                .unwrap_or_else(|| "(model default)".into()),
            self.source("reasoning_effort"),
        );
        line(
            "openai api",
            match self.llm.openai_api {
                crate::llm::settings::OpenAiApi::Auto => {
                    "auto (responses on api.openai.com, chat elsewhere)".to_string()
                }
                other => other.as_str().to_string(),
            },
            self.source("openai_api"),
        );
        line(
            "model chain",
            match &derived.model_chain {
                Some(chain) => chain.join(" -> "),
                None => "(none: set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL)".into(),
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
