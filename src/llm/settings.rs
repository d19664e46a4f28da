//! Tunables of the model layer: retry policy, timeouts, default models, context window and price
//! overrides. Read from the `[llm]` section of the config file (via `crate::config`), never from the
//! environment directly.
//!
//! Invariants: every field has a sensible default, so an empty or missing section is valid; unknown
//! keys are rejected (a typo must not silently fall back to a default); prices are USD per million
//! tokens.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The default Claude model when `--model anthropic` names none.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// The default OpenAI model when `--model openai` names none.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4.1";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// Attempts per provider for one model turn (1 = no retry).
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// Ceiling for one computed backoff delay.
    pub max_backoff_ms: u64,
    /// A server asking to wait longer than this (`retry-after`) makes us move on to the next
    /// provider instead of waiting.
    pub max_retry_after_ms: u64,
    pub connect_timeout_ms: u64,
    /// Longest wait for the response headers (a local server may be loading its model).
    pub response_timeout_ms: u64,
    /// Longest silence inside a streaming body before the attempt counts as stalled.
    pub read_timeout_ms: u64,
    /// Continue with the next configured provider when one is exhausted.
    pub fallback: bool,
    /// Model used for `anthropic` when none is named (and as the fallback's model).
    pub anthropic_model: String,
    /// Model used for `openai` when none is named (and as the fallback's model).
    pub openai_model: String,
    /// Context window in tokens, overriding the built-in table; needed for local models, whose
    /// window the table cannot know (32k tokens is assumed otherwise).
    pub context_window: Option<u64>,
    /// Price overrides (or additions) by model name.
    pub prices: BTreeMap<String, Price>,
    /// Extended-thinking budget for Anthropic models that have it (`agent.thinking_budget`,
    /// `TB_THINKING_BUDGET`, `--thinking-budget`; at least 1024 tokens). Not an `[llm]` key.
    #[serde(skip)]
    pub thinking_budget: Option<u32>,
    /// Reasoning effort for OpenAI's reasoning models (`agent.reasoning_effort`,
    /// `TB_REASONING_EFFORT`). Not an `[llm]` key.
    #[serde(skip)]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Which OpenAI API is spoken (`openai.api`). Not an `[llm]` key.
    #[serde(skip)]
    pub openai_api: OpenAiApi,
}

/// The smallest thinking budget the Anthropic API accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(ReasoningEffort::Low),
            "medium" => Ok(ReasoningEffort::Medium),
            "high" => Ok(ReasoningEffort::High),
            _ => Err(format!(
                "'{v}' is not a reasoning effort: use low, medium or high"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// Which OpenAI API the `openai` provider speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OpenAiApi {
    /// The Responses API on OpenAI's own endpoint (no `OPENAI_BASE_URL`, or `api.openai.com`),
    /// Chat Completions everywhere else (compatible servers know only that).
    #[default]
    Auto,
    Responses,
    Chat,
}

impl OpenAiApi {
    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(OpenAiApi::Auto),
            "responses" => Ok(OpenAiApi::Responses),
            "chat" | "chat_completions" | "chat-completions" => Ok(OpenAiApi::Chat),
            _ => Err(format!(
                "'{v}' is not an OpenAI API: use auto, responses or chat"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpenAiApi::Auto => "auto",
            OpenAiApi::Responses => "responses",
            OpenAiApi::Chat => "chat",
        }
    }
}

/// The one rule for which Anthropic models have extended thinking: Claude 3.7 Sonnet and every
/// Claude of generation 4 or later (`claude-sonnet-4-5`, `claude-opus-4-1-20250805`,
/// `claude-haiku-4-5`). Claude 3.5 and older, and other models behind an Anthropic-compatible
/// URL, do not: for them `thinking_budget` is ignored with a warning.
pub fn anthropic_thinking(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let Some(rest) = m.strip_prefix("claude-") else {
        return false;
    };
    if rest.starts_with("3-7") {
        return true;
    }
    rest.split('-')
        .find_map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty() && digits.len() < 4).then(|| digits.parse::<u32>().ok())?
        })
        .is_some_and(|generation| generation >= 4)
}

/// The one rule for which OpenAI models reason (take a reasoning effort and return reasoning
/// items): the o-series (`o1`, `o3`, `o4-mini`, …), `gpt-5…`, `gpt-oss…` and `codex-…`. Others
/// (`gpt-4.1`, `gpt-4o`) refuse the parameter, so on OpenAI's endpoint it is not sent to them.
pub fn openai_reasoning(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    let o_series = m
        .strip_prefix('o')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    o_series || m.starts_with("gpt-5") || m.starts_with("gpt-oss") || m.starts_with("codex")
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            max_attempts: 4,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 30_000,
            max_retry_after_ms: 120_000,
            connect_timeout_ms: 10_000,
            response_timeout_ms: 300_000,
            read_timeout_ms: 120_000,
            fallback: true,
            anthropic_model: DEFAULT_ANTHROPIC_MODEL.to_string(),
            openai_model: DEFAULT_OPENAI_MODEL.to_string(),
            context_window: None,
            prices: BTreeMap::new(),
            thinking_budget: None,
            reasoning_effort: None,
            openai_api: OpenAiApi::Auto,
        }
    }
}

impl LlmSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms.max(1))
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms.max(1))
    }
}

/// USD per million tokens. `cache_read` / `cache_write` default to the input price when absent.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_all_defaults_and_typos_are_rejected() {
        let s: LlmSettings = toml::from_str("").unwrap();
        assert_eq!(s, LlmSettings::default());
        let s: LlmSettings =
            toml::from_str("max_attempts = 2\n[prices.\"my-model\"]\ninput = 1.0\noutput = 2.0\n")
                .unwrap();
        assert_eq!(s.max_attempts, 2);
        assert_eq!(s.prices["my-model"].output, 2.0);
        assert!(toml::from_str::<LlmSettings>("max_atempts = 2").is_err());
        // The reasoning settings come from `[agent]` and `[openai]`, not from `[llm]`.
        assert!(toml::from_str::<LlmSettings>("thinking_budget = 2048").is_err());
    }

    #[test]
    fn which_models_reason() {
        for m in [
            "claude-3-7-sonnet-20250219",
            "claude-sonnet-4-5",
            "claude-sonnet-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-haiku-4-5",
        ] {
            assert!(anthropic_thinking(m), "{m}");
        }
        for m in [
            "claude-3-5-sonnet-20241022",
            "claude-3-haiku-20240307",
            "claude-2.1",
            "qwen2.5-coder",
            "claude-",
        ] {
            assert!(!anthropic_thinking(m), "{m}");
        }
        for m in [
            "o3",
            "o4-mini",
            "o1-2024-12-17",
            "gpt-5",
            "gpt-5-mini",
            "gpt-oss-120b",
            "openai/gpt-oss-20b",
            "codex-mini-latest",
        ] {
            assert!(openai_reasoning(m), "{m}");
        }
        for m in ["gpt-4.1", "gpt-4o-mini", "omni", "llama3"] {
            assert!(!openai_reasoning(m), "{m}");
        }
        assert_eq!(
            ReasoningEffort::parse(" High ").unwrap(),
            ReasoningEffort::High
        );
        assert!(ReasoningEffort::parse("max").is_err());
        assert_eq!(OpenAiApi::parse("chat").unwrap(), OpenAiApi::Chat);
        assert!(OpenAiApi::parse("grpc").is_err());
    }
}
