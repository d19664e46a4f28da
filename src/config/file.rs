//! The config file's shape (`config.toml`): unknown keys are refused so a typo is an error, not a
//! silently ignored setting.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) anthropic: ProviderFile,
    #[serde(default)]
    pub(super) openai: OpenAiFile,
    #[serde(default)]
    pub(super) github: GitHubFile,
    #[serde(default)]
    pub(super) sandbox: SandboxFile,
    #[serde(default)]
    pub(super) agent: AgentFile,
    #[serde(default)]
    pub(super) clone: CloneFile,
    #[serde(default)]
    pub(super) llm: crate::llm::settings::LlmSettings,
    #[serde(default)]
    pub(super) server: ServerFile,
    #[serde(default)]
    pub(super) publish: PublishFile,
    #[serde(default)]
    pub(super) diff: DiffFile,
}

/// `[diff]`: how large a patch may get.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffFile {
    pub(super) max_file_mb: Option<u64>,
    pub(super) max_patch_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    pub(super) token: Option<String>,
    pub(super) public_host: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishFile {
    pub(super) branch_prefix: Option<String>,
    pub(super) fork: Option<bool>,
    pub(super) author_name: Option<String>,
    pub(super) author_email: Option<String>,
    pub(super) draft: Option<bool>,
    pub(super) max_rate_limit_wait_secs: Option<u64>,
}

/// How approved changes are published (branch, fork, author, draft, rate-limit patience).

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderFile {
    pub(super) api_key: Option<String>,
    pub(super) base_url: Option<String>,
}

/// `[openai]`: like `[anthropic]`, plus which API is spoken (`auto`, `responses`, `chat`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenAiFile {
    pub(super) api_key: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) api: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GitHubFile {
    pub(super) token: Option<String>,
    pub(super) api_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SandboxFile {
    pub(super) backend: Option<String>,
    /// `true`/`false` or `"off"`/`"allowlist"`/`"on"`.
    pub(super) network: Option<toml::Value>,
    pub(super) allow_hosts: Option<Vec<String>>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_timeout_secs: Option<u64>,
    pub(super) cpu_secs: Option<u64>,
    pub(super) memory_mb: Option<u64>,
    pub(super) max_processes: Option<u64>,
    pub(super) file_size_mb: Option<u64>,
    pub(super) workspace_mb: Option<u64>,
    pub(super) tmp_mb: Option<u64>,
    /// Keep package caches between runs of the same repository.
    pub(super) cache: Option<bool>,
    /// Host paths mounted read-only: `"PATH"`, `"PATH:path"` or `{ path, add_to_path }`.
    pub(super) ro_paths: Option<Vec<RoPathFile>>,
    pub(super) output_limit_mb: Option<u64>,
    pub(super) output_keep_kb: Option<u64>,
    /// The E2B template remote sandboxes are created from.
    pub(super) e2b_template: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RoPathFile {
    Plain(String),
    Table(RoPathTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoPathTable {
    pub(super) path: String,
    #[serde(default)]
    pub(super) add_to_path: bool,
}

impl RoPathFile {
    /// The entry as `--ro-path` takes it.
    pub(super) fn as_entry(&self) -> String {
        match self {
            RoPathFile::Plain(s) => s.clone(),
            RoPathFile::Table(t) if t.add_to_path => format!("{}:path", t.path),
            RoPathFile::Table(t) => t.path.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentFile {
    pub(super) max_turns: Option<u32>,
    pub(super) max_tokens: Option<u64>,
    pub(super) max_minutes: Option<u64>,
    /// Finer-grained alternative to `max_minutes` (wins when both are set).
    pub(super) max_seconds: Option<u64>,
    /// One self-review turn before a run that made changes ends (default on).
    pub(super) self_review: Option<bool>,
    /// A command run once in the sandbox after the clone, before the agent.
    pub(super) setup: Option<String>,
    /// `off`, `allowlist` or `on` for the setup command.
    pub(super) setup_network: Option<String>,
    /// A failing setup is reported to the model instead of stopping the run.
    pub(super) setup_optional: Option<bool>,
    pub(super) setup_timeout_secs: Option<u64>,
    /// Extended-thinking tokens for Anthropic models that have it (0 = off).
    pub(super) thinking_budget: Option<u32>,
    /// `low`, `medium` or `high`, for OpenAI's reasoning models.
    pub(super) reasoning_effort: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CloneFile {
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_size_mb: Option<u64>,
}
