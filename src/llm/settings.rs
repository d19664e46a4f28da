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
    }
}
