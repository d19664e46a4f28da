//! Turning a [`ModelSpec`] (`--model` / `TB_MODEL`) and the configured endpoints into a provider
//! chain.
//!
//! Invariants: the scripted replay is only ever chosen by name (`scripted:PATH`), never as a
//! fallback; when nothing is configured the error lists what to set. Without a model named, the
//! chain is Anthropic (if configured) then OpenAI (if configured); a named provider comes first and
//! the other configured one follows as fallback (unless `llm.fallback = false`). A provider counts
//! as configured with its API key, or with a loopback base URL (local servers need no key); OpenAI
//! also with any base URL (its constructor then says a key is missing). This module reads no
//! configuration itself: the caller hands it the [`Endpoints`] and [`LlmSettings`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use super::anthropic::AnthropicProvider;
use super::openai::OpenAiProvider;
use super::retry::Chain;
use super::scripted::ScriptedProvider;
use super::settings::LlmSettings;
use super::{LlmError, Provider, http};
use crate::secret::Secret;

/// A model as named on the command line, in `TB_MODEL` or in a `serve` request:
/// `anthropic[:MODEL]` (or `claude[:MODEL]`), `openai[:MODEL]`, or `scripted:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The provider's configured default model when `None`.
    Anthropic(Option<String>),
    OpenAi(Option<String>),
    /// A recorded session replayed; the path as given (possibly empty, which only building refuses).
    Scripted(String),
}

const NEEDS_SCRIPT: &str = "scripted model needs a script file: --model scripted:PATH";

impl FromStr for ModelSpec {
    type Err = LlmError;

    /// Parses a trimmed spec; the provider is case-insensitive (`scripted` excepted), the model
    /// name is trimmed and an empty one means the default.
    fn from_str(spec: &str) -> Result<ModelSpec, LlmError> {
        let (provider, rest) = match spec.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (spec, None),
        };
        if provider == "scripted" {
            return match rest {
                Some(path) => Ok(ModelSpec::Scripted(path.to_string())),
                None => Err(LlmError::Config(NEEDS_SCRIPT.into())),
            };
        }
        let model = rest
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        match provider.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Ok(ModelSpec::Anthropic(model)),
            "openai" => Ok(ModelSpec::OpenAi(model)),
            other => Err(LlmError::Config(format!(
                "unknown model provider '{other}' in '{spec}': use anthropic:MODEL, \
                 openai:MODEL or scripted:PATH"
            ))),
        }
    }
}

/// The canonical form: `anthropic:MODEL`, `openai:MODEL`, `scripted:PATH`, or the bare provider
/// when no model is named.
impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Anthropic(None) => f.write_str("anthropic"),
            ModelSpec::Anthropic(Some(m)) => write!(f, "anthropic:{m}"),
            ModelSpec::OpenAi(None) => f.write_str("openai"),
            ModelSpec::OpenAi(Some(m)) => write!(f, "openai:{m}"),
            ModelSpec::Scripted(p) => write!(f, "scripted:{p}"),
        }
    }
}

/// Where the providers are and the keys to them: the part of the configuration this layer needs.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: Option<String>,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: Option<String>,
}

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

fn configured(ends: &Endpoints, kind: Kind) -> bool {
    match kind {
        Kind::Anthropic => {
            ends.anthropic_api_key.is_some() || loopback(ends.anthropic_base_url.as_ref())
        }
        Kind::OpenAi => ends.openai_api_key.is_some() || ends.openai_base_url.is_some(),
    }
}

fn build(
    ends: &Endpoints,
    s: &LlmSettings,
    kind: Kind,
    model: Option<&str>,
) -> Result<Arc<dyn Provider>, LlmError> {
    Ok(match kind {
        Kind::Anthropic => Arc::new(AnthropicProvider::new(
            ends.anthropic_base_url.as_deref(),
            ends.anthropic_api_key.clone(),
            model.unwrap_or(&s.anthropic_model),
            s,
        )?),
        Kind::OpenAi => Arc::new(OpenAiProvider::new(
            ends.openai_base_url.as_deref(),
            ends.openai_api_key.clone(),
            model.unwrap_or(&s.openai_model),
            s,
        )?),
    })
}

/// The chain's links, first the one that answers (`spec` names no scripted replay).
fn chain_links(
    ends: &Endpoints,
    s: &LlmSettings,
    spec: Option<&ModelSpec>,
) -> Result<Vec<Arc<dyn Provider>>, LlmError> {
    let mut order = vec![Kind::Anthropic, Kind::OpenAi];
    let mut named_model = None;
    if let Some(spec) = spec {
        let (kind, model) = match spec {
            ModelSpec::Anthropic(m) => (Kind::Anthropic, m),
            ModelSpec::OpenAi(m) => (Kind::OpenAi, m),
            ModelSpec::Scripted(_) => return Err(LlmError::Config(NEEDS_SCRIPT.into())),
        };
        order.retain(|k| *k != kind);
        order.insert(0, kind);
        named_model = model.as_deref();
    }
    let mut links = Vec::new();
    for (i, kind) in order.into_iter().enumerate() {
        let first = i == 0;
        if first && spec.is_some() {
            links.push(build(ends, s, kind, named_model)?);
        } else if (first || s.fallback) && configured(ends, kind) {
            links.push(build(ends, s, kind, None)?);
        }
    }
    if links.is_empty() {
        return Err(LlmError::Config(NOTHING_CONFIGURED.into()));
    }
    Ok(links)
}

/// The provider for `spec` (or the configured chain without one); a script path is relative to
/// `cwd`.
pub fn provider_for(
    ends: &Endpoints,
    settings: &LlmSettings,
    spec: Option<&ModelSpec>,
    cwd: &Path,
) -> Result<Arc<dyn Provider>, LlmError> {
    if let Some(ModelSpec::Scripted(rest)) = spec {
        if rest.is_empty() {
            return Err(LlmError::Config(NEEDS_SCRIPT.into()));
        }
        let path = cwd.join(rest);
        return Ok(Arc::new(ScriptedProvider::from_file(&path)?));
    }
    let links = chain_links(ends, settings, spec)?;
    Ok(Arc::new(Chain::new(links, settings.clone())))
}

/// The labels the chain for `spec` would use, in order (for `tiny-backspace config` and tests).
pub fn describe_chain(
    ends: &Endpoints,
    settings: &LlmSettings,
    spec: Option<&ModelSpec>,
) -> Result<Vec<String>, LlmError> {
    if let Some(spec @ ModelSpec::Scripted(_)) = spec {
        return Ok(vec![format!("{spec} (replay)")]);
    }
    Ok(chain_links(ends, settings, spec)?
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

    /// The endpoints and model the variables in `pairs` name (what `config` would resolve).
    fn config(pairs: &[(&str, &str)]) -> (Endpoints, Result<Option<ModelSpec>, LlmError>) {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let ends = Endpoints {
            anthropic_api_key: get("ANTHROPIC_API_KEY").map(Secret::new),
            anthropic_base_url: get("ANTHROPIC_BASE_URL"),
            openai_api_key: get("OPENAI_API_KEY").map(Secret::new),
            openai_base_url: get("OPENAI_BASE_URL"),
        };
        (ends, get("TB_MODEL").map(|m| m.parse()).transpose())
    }

    fn chain(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let (ends, spec) = config(pairs);
        let spec = spec.map_err(|e| e.to_string())?;
        describe_chain(&ends, &LlmSettings::default(), spec.as_ref()).map_err(|e| e.to_string())
    }

    fn provider(pairs: &[(&str, &str)]) -> Result<Arc<dyn Provider>, LlmError> {
        let (ends, spec) = config(pairs);
        provider_for(
            &ends,
            &LlmSettings::default(),
            spec?.as_ref(),
            Path::new("/"),
        )
    }

    #[test]
    fn specs_parse_and_print_canonically() {
        let p = |s: &str| s.parse::<ModelSpec>().map_err(|e| e.to_string());
        assert_eq!(p("claude"), Ok(ModelSpec::Anthropic(None)));
        assert_eq!(
            p("OpenAI: gpt-x "),
            Ok(ModelSpec::OpenAi(Some("gpt-x".into())))
        );
        assert_eq!(p("openai:"), Ok(ModelSpec::OpenAi(None)));
        assert_eq!(
            p("scripted:a b.json"),
            Ok(ModelSpec::Scripted("a b.json".into()))
        );
        assert!(p("scripted").unwrap_err().contains("scripted:PATH"));
        assert!(
            p("gemini:x")
                .unwrap_err()
                .contains("unknown model provider 'gemini'")
        );
        for canonical in [
            "anthropic",
            "anthropic:claude-x",
            "openai:qwen2.5:7b",
            "scripted:/s.json",
        ] {
            assert_eq!(p(canonical).unwrap().to_string(), canonical);
        }
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
        let e = provider(&[]).err().unwrap();
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
        let e = provider(&[("TB_MODEL", "scripted:")]).err().unwrap();
        assert!(e.to_string().contains("scripted:PATH"), "{e}");
    }
}
