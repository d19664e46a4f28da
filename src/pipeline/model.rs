//! What the front-ends name and the pipeline resolves: the model (a [`ModelSpec`] and the
//! configured endpoints, turned into a provider chain), and the sandbox kind a run would use.
//!
//! Invariants: front-ends reach the model and sandbox layers only through here (they import
//! neither `llm` nor `sandbox`); the configuration is read in one place (`Config`), and `llm` is
//! handed only what it needs ([`Endpoints`], the `[llm]` settings), never the `Config`.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::llm::LlmError;
/// Recorded sessions (`demo`, tests): a provider that replays a script.
pub use crate::llm::scripted::{Script, ScriptedProvider};
pub use crate::llm::select::ModelSpec;
use crate::llm::select::{self, Endpoints};
pub use crate::llm::{ModelLabel, Provider};

/// The configured `--model`/`TB_MODEL`, parsed; `None` when unset or blank.
pub fn configured_spec(config: &Config) -> Result<Option<ModelSpec>, LlmError> {
    config
        .model
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .transpose()
}

fn endpoints(config: &Config) -> Endpoints {
    Endpoints {
        anthropic_api_key: config.anthropic_api_key.clone(),
        anthropic_base_url: config.anthropic_base_url.clone(),
        openai_api_key: config.openai_api_key.clone(),
        openai_base_url: config.openai_base_url.clone(),
    }
}

/// The provider chain `config` names (a script path relative to `cwd`).
pub fn provider(config: &Config, cwd: &Path) -> Result<Arc<dyn Provider>, LlmError> {
    let spec = configured_spec(config)?;
    select::provider_for(&endpoints(config), &config.llm, spec.as_ref(), cwd)
}

/// The labels of the chain `config` names, first the one that answers (`tiny-backspace config`).
pub fn describe_chain(config: &Config) -> Result<Vec<String>, LlmError> {
    let spec = configured_spec(config)?;
    select::describe_chain(&endpoints(config), &config.llm, spec.as_ref())
}

/// The rows `tiny-backspace config` shows that the configuration alone cannot compute.
pub fn config_rows(config: &Config) -> crate::config::Derived {
    crate::config::Derived {
        model_chain: describe_chain(config).ok(),
    }
}

/// How a header names the sandbox a run would get: the kind that would be picked, and the
/// allow-list proxy when that is the way out.
pub fn sandbox_label(config: &Config) -> String {
    let kind = match crate::sandbox::resolve_kind(&config.sandbox) {
        Ok(k) => k.as_str().to_string(),
        Err(_) => "no sandbox available".into(),
    };
    if config.sandbox.network_mode() == crate::sandbox::NetworkMode::Allowlist && kind != "none" {
        format!("{kind} + allow-list proxy")
    } else {
        kind
    }
}
