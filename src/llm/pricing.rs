//! What a model call costs and how much context a model holds.
//!
//! Invariants: a cost is computed only from a price we know (the built-in table or an override from
//! the config file); an unknown model costs `None`, never a guess. Model names match exactly after
//! dropping a release-date suffix (`-20250929`, `-2024-08-06`), so `gpt-4o-mini` never borrows the
//! price of `gpt-4o`.

use std::collections::BTreeMap;

use super::settings::Price;
use crate::event::UsageTotals;

/// Built-in list prices, USD per million tokens: (model, input, output, cache read, cache write).
const PRICES: &[(&str, f64, f64, f64, f64)] = &[
    ("claude-opus-4-5", 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-1", 15.0, 75.0, 1.50, 18.75),
    ("claude-opus-4", 15.0, 75.0, 1.50, 18.75),
    ("claude-sonnet-4-5", 3.0, 15.0, 0.30, 3.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.30, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.30, 3.75),
    ("claude-haiku-4-5", 1.0, 5.0, 0.10, 1.25),
    ("claude-3-5-haiku", 0.80, 4.0, 0.08, 1.0),
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", 0.05, 0.40, 0.005, 0.05),
    ("gpt-4.1", 2.0, 8.0, 0.50, 2.0),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10),
    ("gpt-4o", 2.50, 10.0, 1.25, 2.50),
    ("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15),
    ("o3", 2.0, 8.0, 0.50, 2.0),
    ("o4-mini", 1.10, 4.40, 0.275, 1.10),
];

/// Context windows in tokens of the models we know.
const WINDOWS: &[(&str, u64)] = &[
    ("claude-", 200_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
];

/// Window assumed for a model nobody told us about (typical of local models).
pub const UNKNOWN_CONTEXT_WINDOW: u64 = 32_000;

/// `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; `gpt-4o-2024-08-06` → `gpt-4o`.
pub fn base_model_name(model: &str) -> &str {
    let m = model.trim();
    let bytes = m.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    // -YYYYMMDD
    if bytes.len() > 9 && bytes[bytes.len() - 9] == b'-' && digits(&bytes[bytes.len() - 8..]) {
        return &m[..m.len() - 9];
    }
    // -YYYY-MM-DD
    if bytes.len() > 11 {
        let t = &bytes[bytes.len() - 11..];
        if t[0] == b'-'
            && digits(&t[1..5])
            && t[5] == b'-'
            && digits(&t[6..8])
            && t[8] == b'-'
            && digits(&t[9..11])
        {
            return &m[..m.len() - 11];
        }
    }
    m
}

/// The price of `model`: a config override wins (matched on the full or the base name), then the
/// built-in table, else `None`.
pub fn price_of(model: &str, overrides: &BTreeMap<String, Price>) -> Option<Price> {
    let base = base_model_name(model);
    if let Some(p) = overrides.get(model.trim()).or_else(|| overrides.get(base)) {
        return Some(*p);
    }
    PRICES
        .iter()
        .find(|(name, ..)| *name == base)
        .map(|&(_, input, output, read, write)| Price {
            input,
            output,
            cache_read: Some(read),
            cache_write: Some(write),
        })
}

/// The cost of one call's usage at `price`.
pub fn cost(usage: &UsageTotals, price: &Price) -> f64 {
    let per = |tokens: u64, usd_per_m: f64| tokens as f64 * usd_per_m / 1_000_000.0;
    per(usage.input_tokens, price.input)
        + per(usage.output_tokens, price.output)
        + per(
            usage.cache_read_tokens,
            price.cache_read.unwrap_or(price.input),
        )
        + per(
            usage.cache_write_tokens,
            price.cache_write.unwrap_or(price.input),
        )
}

/// Fills `usage.cost_usd` for `model`: `Some` only for a known price.
pub fn price_usage(usage: &mut UsageTotals, model: &str, overrides: &BTreeMap<String, Price>) {
    usage.cost_usd = price_of(model, overrides).map(|p| cost(usage, &p));
}

/// The context window of `model`, in tokens.
pub fn context_window(model: &str, configured: Option<u64>) -> u64 {
    if let Some(w) = configured {
        return w.max(1_000);
    }
    let base = base_model_name(model);
    WINDOWS
        .iter()
        .find(|(prefix, _)| base.starts_with(prefix))
        .map(|(_, w)| *w)
        .unwrap_or(UNKNOWN_CONTEXT_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_suffixes_are_dropped_only_when_they_are_dates() {
        assert_eq!(
            base_model_name("claude-sonnet-4-5-20250929"),
            "claude-sonnet-4-5"
        );
        assert_eq!(base_model_name("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(base_model_name("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(base_model_name("qwen2.5-coder"), "qwen2.5-coder");
    }

    #[test]
    fn known_models_have_prices_unknown_ones_none() {
        let none = BTreeMap::new();
        let usage = UsageTotals {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 1_000_000,
            cost_usd: None,
        };
        let p = price_of("claude-sonnet-4-5-20250929", &none).unwrap();
        // 3 + 1.5 + 0.6 + 3.75
        assert!((cost(&usage, &p) - 8.85).abs() < 1e-9);
        assert_eq!(price_of("gpt-4o-mini", &none).unwrap().input, 0.15);
        assert!(price_of("qwen2.5-coder", &none).is_none());
        assert!(price_of("gpt-4o-custom", &none).is_none());
        let mut u = usage.clone();
        price_usage(&mut u, "llama3", &none);
        assert_eq!(u.cost_usd, None);
    }

    #[test]
    fn overrides_win_and_add_models() {
        let mut o = BTreeMap::new();
        o.insert(
            "qwen2.5-coder".to_string(),
            Price {
                input: 0.0,
                output: 0.0,
                cache_read: None,
                cache_write: None,
            },
        );
        o.insert(
            "gpt-4.1".to_string(),
            Price {
                input: 1.0,
                output: 1.0,
                cache_read: None,
                cache_write: None,
            },
        );
        assert_eq!(price_of("qwen2.5-coder", &o).unwrap().input, 0.0);
        assert_eq!(price_of("gpt-4.1", &o).unwrap().input, 1.0);
        let u = UsageTotals {
            cache_read_tokens: 1_000_000,
            ..Default::default()
        };
        // cache reads fall back to the input price when the override names none
        assert_eq!(cost(&u, &price_of("gpt-4.1", &o).unwrap()), 1.0);
    }

    #[test]
    fn windows() {
        assert_eq!(context_window("claude-sonnet-4-5", None), 200_000);
        assert_eq!(context_window("gpt-4o-mini", None), 128_000);
        assert_eq!(context_window("llama3", None), UNKNOWN_CONTEXT_WINDOW);
        assert_eq!(context_window("claude-sonnet-4-5", Some(50_000)), 50_000);
    }
}
