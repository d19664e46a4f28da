//! Turning `--model` / `TB_MODEL` and the configured keys into a provider chain.
//!
//! Invariants: the scripted replay is only ever chosen by name (`scripted:PATH`), never as a
//! fallback; when nothing is configured the error lists what to set. Without a model named, the
//! chain is Anthropic (if configured) then OpenAI (if configured); a named provider comes first and
//! the other configured one follows as fallback (unless `llm.fallback = false`). A provider counts
//! as configured with its API key, or with a loopback base URL (local servers need no key); OpenAI
//! also with any base URL (its constructor then says a key is missing).

use std::path::Path;
use std::sync::Arc;

use super::anthropic::AnthropicProvider;
use super::openai::OpenAiProvider;
use super::retry::Chain;
use super::scripted::ScriptedProvider;
use super::{LlmError, Provider, http};
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anthropic,
    OpenAi,
}

const NOTHING_CONFIGURED: &str = "no model is configured. Set one of:\n  \
    ANTHROPIC_API_KEY   for Claude (optionally ANTHROPIC_BASE_URL)\n  \
    OPENAI_API_KEY      for OpenAI (optionally OPENAI_BASE_URL)\n  \
    OPENAI_BASE_URL     alone for a local OpenAI-compatible server, e.g. http://localhost:11434/v1 \
    (Ollama), with TB_MODEL=openai:MODEL\n\
    and optionally TB_MODEL or --model (e.g. anthropic:claude-sonnet-4-5, openai:gpt-4.1). They can \
    also go in .env or the config file (`tiny-backspace config` shows what is set). To see \
    tiny-backspace work without any model, run the offline demo: `tiny-backspace demo`";

fn loopback(url: Option<&String>) -> bool {
    url.and_then(|u| reqwest::Url::parse(u.trim()).ok())
        .is_some_and(|u| http::is_loopback(&u))
}

fn configured(config: &Config, kind: Kind) -> bool {
    match kind {
        Kind::Anthropic => {
            config.anthropic_api_key.is_some() || loopback(config.anthropic_base_url.as_ref())
        }
        Kind::OpenAi => config.openai_api_key.is_some() || config.openai_base_url.is_some(),
    }
}

fn build(config: &Config, kind: Kind, model: Option<&str>) -> Result<Arc<dyn Provider>, LlmError> {
    let s = &config.llm;
    Ok(match kind {
        Kind::Anthropic => Arc::new(AnthropicProvider::new(
            config.anthropic_base_url.as_deref(),
            config.anthropic_api_key.clone(),
            model.unwrap_or(&s.anthropic_model),
            s,
        )?),
        Kind::OpenAi => Arc::new(OpenAiProvider::new(
            config.openai_base_url.as_deref(),
            config.openai_api_key.clone(),
            model.unwrap_or(&s.openai_model),
            s,
        )?),
    })
}

/// The chain's links, first the one that answers.
fn chain_links(config: &Config, spec: Option<&str>) -> Result<Vec<Arc<dyn Provider>>, LlmError> {
    let mut order = vec![Kind::Anthropic, Kind::OpenAi];
    let mut named_model = None;
    if let Some(spec) = spec {
        let (provider, model) = spec.split_once(':').unwrap_or((spec, ""));
        let kind = match provider.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Kind::Anthropic,
            "openai" => Kind::OpenAi,
            other => {
                return Err(LlmError::Config(format!(
                    "unknown model provider '{other}' in '{spec}': use anthropic:MODEL, \
                     openai:MODEL or scripted:PATH"
                )));
            }
        };
        order.retain(|k| *k != kind);
        order.insert(0, kind);
        named_model = Some(model.trim()).filter(|m| !m.is_empty());
    }
    let mut links = Vec::new();
    for (i, kind) in order.into_iter().enumerate() {
        let first = i == 0;
        if first && spec.is_some() {
            links.push(build(config, kind, named_model)?);
        } else if (first || config.llm.fallback) && configured(config, kind) {
            links.push(build(config, kind, None)?);
        }
    }
    if links.is_empty() {
        return Err(LlmError::Config(NOTHING_CONFIGURED.into()));
    }
    Ok(links)
}

/// The configured `--model`/`TB_MODEL` value, trimmed; `None` when unset or blank.
fn model_spec(config: &Config) -> Option<&str> {
    config
        .model
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub fn provider_for(config: &Config, cwd: &Path) -> Result<Arc<dyn Provider>, LlmError> {
    let spec = model_spec(config);
    if let Some(spec) = spec
        && let Some(("scripted", rest)) = spec.split_once(':').or(Some((spec, "")))
    {
        if rest.is_empty() {
            return Err(LlmError::Config(
                "scripted model needs a script file: --model scripted:PATH".into(),
            ));
        }
        let path = cwd.join(rest);
        return Ok(Arc::new(ScriptedProvider::from_file(&path)?));
    }
    let links = chain_links(config, spec)?;
    Ok(Arc::new(Chain::new(links, config.llm.clone())))
}

/// The labels the chain for `config` would use, in order (for `tiny-backspace config` and tests).
pub fn describe_chain(config: &Config) -> Result<Vec<String>, LlmError> {
    let spec = model_spec(config);
    if let Some(spec) = spec
        && spec.starts_with("scripted:")
    {
        return Ok(vec![format!("{spec} (replay)")]);
    }
    Ok(chain_links(config, spec)?
        .iter()
        .map(|p| {
            let l = p.label();
            format!("{}:{}", l.provider, l.model)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| m.get(k).cloned();
        Config::load_from(&Overrides::default(), &env, None, None).unwrap()
    }

    fn chain(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
        describe_chain(&config(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn nothing_configured_lists_the_variables_and_the_demo() {
        let e = chain(&[]).unwrap_err();
        for v in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "TB_MODEL",
            "tiny-backspace demo",
        ] {
            assert!(e.contains(v), "{v} missing from: {e}");
        }
        let e = provider_for(&config(&[]), Path::new("/")).err().unwrap();
        assert!(e.to_string().contains("tiny-backspace demo"));
    }

    #[test]
    fn default_chain_is_anthropic_then_openai() {
        assert_eq!(
            chain(&[("ANTHROPIC_API_KEY", "k1"), ("OPENAI_API_KEY", "k2")]).unwrap(),
            vec!["anthropic:claude-sonnet-4-5", "openai:gpt-4.1"]
        );
        assert_eq!(
            chain(&[("OPENAI_API_KEY", "k2")]).unwrap(),
            vec!["openai:gpt-4.1"]
        );
        // a local server needs no key
        assert_eq!(
            chain(&[("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]).unwrap(),
            vec!["openai:gpt-4.1"]
        );
        assert_eq!(
            chain(&[("ANTHROPIC_BASE_URL", "http://localhost:9/")]).unwrap(),
            vec!["anthropic:claude-sonnet-4-5"]
        );
        // a remote Anthropic-compatible URL without key is not "configured"
        assert!(chain(&[("ANTHROPIC_BASE_URL", "https://example.com")]).is_err());
    }

    #[test]
    fn a_named_model_comes_first_and_the_other_falls_back() {
        assert_eq!(
            chain(&[
                ("TB_MODEL", "openai:qwen2.5-coder"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"),
                ("ANTHROPIC_API_KEY", "k"),
            ])
            .unwrap(),
            vec!["openai:qwen2.5-coder", "anthropic:claude-sonnet-4-5"]
        );
        assert_eq!(
            chain(&[("TB_MODEL", "anthropic"), ("ANTHROPIC_API_KEY", "k")]).unwrap(),
            vec!["anthropic:claude-sonnet-4-5"]
        );
    }

    #[test]
    fn misconfiguration_is_explained() {
        let e = chain(&[("TB_MODEL", "anthropic:claude-x")]).unwrap_err();
        assert!(e.contains("ANTHROPIC_API_KEY"), "{e}");
        let e = chain(&[("TB_MODEL", "gemini:x"), ("OPENAI_API_KEY", "k")]).unwrap_err();
        assert!(e.contains("unknown model provider 'gemini'"), "{e}");
        let e = chain(&[("OPENAI_BASE_URL", "http://example.com/v1")]).unwrap_err();
        assert!(e.contains("plain http"), "{e}");
        let e = chain(&[("TB_MODEL", "scripted:")]);
        assert!(e.is_ok()); // described only; building it errors:
        let e = provider_for(&config(&[("TB_MODEL", "scripted:")]), Path::new("/"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("scripted:PATH"), "{e}");
    }
}
