//! Turning `--model` / `TB_MODEL` and the configured keys into a provider.
//!
//! Invariants: the scripted replay is only ever chosen by name (`scripted:PATH`), never as a
//! fallback; when nothing is configured the error lists what to set.

use std::path::Path;
use std::sync::Arc;

use super::scripted::ScriptedProvider;
use super::{LlmError, Provider};
use crate::config::Config;

pub fn provider_for(config: &Config, cwd: &Path) -> Result<Arc<dyn Provider>, LlmError> {
    let Some(spec) = config
        .model
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Err(LlmError::Config(
            "no model is configured: set ANTHROPIC_API_KEY (Claude) or OPENAI_API_KEY / \
             OPENAI_BASE_URL (OpenAI or a compatible server such as Ollama), optionally TB_MODEL \
             (e.g. anthropic:claude-sonnet-4-5), or try the offline demo with `tiny-backspace demo`"
                .into(),
        ));
    };
    let (provider, rest) = spec.split_once(':').unwrap_or((spec, ""));
    match provider {
        "scripted" => {
            if rest.is_empty() {
                return Err(LlmError::Config(
                    "scripted model needs a script file: --model scripted:PATH".into(),
                ));
            }
            let path = cwd.join(rest);
            Ok(Arc::new(ScriptedProvider::from_file(&path)?))
        }
        "anthropic" | "openai" => Err(LlmError::Config(format!(
            "the {provider} provider is not available in this build yet; use --model scripted:PATH \
             or `tiny-backspace demo`"
        ))),
        other => Err(LlmError::Config(format!(
            "unknown model provider '{other}' in '{spec}': use anthropic:MODEL, openai:MODEL or \
             scripted:PATH"
        ))),
    }
}
