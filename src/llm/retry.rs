//! Retries, fallback and context management around the wire-format providers.
//!
//! Invariants: a turn is asked again from its start (the providers return only complete turns), so
//! a retry can repeat streamed text but never a tool execution or an `AI Message`; every retry and
//! every switch of provider is reported through [`Observer::status`] before its wait starts; a
//! request error (4xx other than 408/409/429) ends the turn at once and is never hidden by a
//! fallback; once a provider is given up, the rest of the run stays on the next one (the same
//! conversation continues there). Waiting honours `retry-after`, otherwise exponential backoff with
//! jitter; a server asking for more than `max_retry_after_ms` is given up instead. Text an earlier
//! attempt already streamed is not streamed again when the retry repeats it (deterministic servers
//! and replays show each delta once); only text beyond it, or text that differs, is passed on.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::settings::LlmSettings;
use super::{
    ChatRequest, ChatResponse, LlmError, ModelLabel, Observer, Provider, TextSink, context, pricing,
};

/// Providers tried in order, each with retries.
pub struct Chain {
    links: Vec<Arc<dyn Provider>>,
    settings: LlmSettings,
    active: AtomicUsize,
    /// How many old tool outputs are elided in requests (only grows).
    elided: Mutex<usize>,
}

fn name(label: &ModelLabel) -> String {
    format!("{}:{}", label.provider, label.model)
}

/// The wait before attempt `attempt + 1`: the server's `retry-after` when given, else exponential
/// backoff from `initial_backoff_ms`, capped, with up to 50 % jitter taken off.
pub fn backoff(settings: &LlmSettings, attempt: u32, error: &LlmError) -> Duration {
    if let Some(ms) = error.retry_after_ms() {
        return Duration::from_millis(ms);
    }
    let exp = settings
        .initial_backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(settings.max_backoff_ms) as f64;
    Duration::from_millis((capped * (0.5 + 0.5 * fastrand::f64())).round() as u64)
}

/// Passes streamed text on once per turn across attempts: each attempt's text is compared with
/// what was already shown and only the part beyond it is forwarded.
struct OncePerTurn<'a> {
    inner: &'a dyn Observer,
    state: Mutex<(String, String)>,
}

impl<'a> OncePerTurn<'a> {
    fn new(inner: &'a dyn Observer) -> Self {
        OncePerTurn {
            inner,
            state: Mutex::new((String::new(), String::new())),
        }
    }

    /// A new attempt starts: its text is compared from the beginning again.
    fn restart(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.1.clear();
        }
    }
}

impl Observer for OncePerTurn<'_> {
    fn text(&self, delta: &str) {
        let forward = {
            let Ok(mut g) = self.state.lock() else {
                return self.inner.text(delta);
            };
            let (shown, attempt) = &mut *g;
            attempt.push_str(delta);
            if shown.starts_with(attempt.as_str()) {
                None
            } else if let Some(rest) = attempt.strip_prefix(shown.as_str()) {
                let rest = rest.to_string();
                *shown = attempt.clone();
                Some(rest)
            } else {
                // The retry says something else: it cannot be unsaid, so show it as it comes.
                *shown = attempt.clone();
                Some(delta.to_string())
            }
        };
        if let Some(text) = forward
            && !text.is_empty()
        {
            self.inner.text(&text);
        }
    }

    fn status(&self, message: &str) {
        self.inner.status(message);
    }
}

/// A 400 that says the prompt no longer fits the model's context.
fn is_context_overflow(error: &LlmError) -> bool {
    let LlmError::Http {
        status, message, ..
    } = error
    else {
        return false;
    };
    let m = message.to_ascii_lowercase();
    matches!(status, 400 | 413)
        && (m.contains("context length")
            || m.contains("context_length")
            || m.contains("context window")
            || m.contains("prompt is too long")
            || m.contains("too many tokens"))
}

impl Chain {
    pub fn new(links: Vec<Arc<dyn Provider>>, settings: LlmSettings) -> Self {
        Chain {
            links,
            settings,
            active: AtomicUsize::new(0),
            elided: Mutex::new(0),
        }
    }

    /// Labels of the providers in order.
    pub fn labels(&self) -> Vec<ModelLabel> {
        self.links.iter().map(|p| p.label()).collect()
    }

    fn elided(&self) -> usize {
        self.elided.lock().map(|g| *g).unwrap_or(0)
    }

    fn set_elided(&self, n: usize) {
        if let Ok(mut g) = self.elided.lock() {
            *g = (*g).max(n);
        }
    }

    /// One provider, with its retries, for this turn.
    async fn attempt_all(
        &self,
        provider: &dyn Provider,
        request: &ChatRequest<'_>,
        observer: &OncePerTurn<'_>,
    ) -> Result<ChatResponse, (LlmError, u32)> {
        let label = name(&provider.label());
        let max = self.settings.max_attempts.max(1);
        let model = provider.label();
        let mut window = pricing::context_window(&model.model, self.settings.context_window);
        // Claude's thinking budget is part of `max_tokens`, which must fit in the window too.
        if let Some(budget) = self.settings.thinking_budget
            && model.provider == "anthropic"
            && super::settings::anthropic_thinking(&model.model)
        {
            window = window.saturating_sub(u64::from(budget));
        }
        let mut shrunk = false;
        let mut attempt = 1;
        loop {
            let planned = context::plan(request, window, self.elided());
            if planned > self.elided() {
                observer.status(&format!(
                    "the conversation is near {label}'s context window: older tool outputs are \
                     elided ({planned} so far)"
                ));
                self.set_elided(planned);
            }
            let messages = context::elide(request.messages, self.elided());
            let trimmed = ChatRequest {
                messages: &messages,
                ..*request
            };
            observer.restart();
            let error = match provider.complete(&trimmed, observer).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if is_context_overflow(&error) && !shrunk {
                // Our estimate was too generous for this model: plan against half the window.
                shrunk = true;
                let more = context::plan(request, window / 2, self.elided());
                if more > self.elided() {
                    observer.status(&format!(
                        "{label} says the conversation is too long: older tool outputs are elided \
                         and the turn is sent again"
                    ));
                    self.set_elided(more);
                    continue;
                }
            }
            if !error.is_retryable() || attempt >= max {
                return Err((error, attempt));
            }
            let wait = backoff(&self.settings, attempt, &error);
            if wait > Duration::from_millis(self.settings.max_retry_after_ms) {
                observer.status(&format!(
                    "{label}: {error}; the server asks to wait {:.0} s, longer than the {:.0} s \
                     allowed (llm.max_retry_after_ms)",
                    wait.as_secs_f64(),
                    self.settings.max_retry_after_ms as f64 / 1000.0
                ));
                return Err((error, attempt));
            }
            attempt += 1;
            tracing::warn!(provider = %label, attempt, wait_ms = wait.as_millis() as u64, "model call failed: {error}");
            observer.status(&format!(
                "{label}: {error}; retrying in {:.1} s (attempt {attempt} of {max}); the turn \
                 starts over",
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
    }
}

#[async_trait]
impl Provider for Chain {
    fn label(&self) -> ModelLabel {
        let i = self.active.load(Ordering::SeqCst);
        self.links
            .get(i)
            .or(self.links.first())
            .map(|p| p.label())
            .unwrap_or(ModelLabel {
                provider: "none".into(),
                model: "none".into(),
                replay: false,
            })
    }

    async fn complete(
        &self,
        request: &ChatRequest<'_>,
        observer: TextSink<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let observer = &OncePerTurn::new(observer);
        let start = self.active.load(Ordering::SeqCst);
        let mut failures: Vec<String> = Vec::new();
        let mut last: Option<LlmError> = None;
        for (i, provider) in self.links.iter().enumerate().skip(start) {
            let label = provider.label();
            match self.attempt_all(provider.as_ref(), request, observer).await {
                Ok(mut response) => {
                    response.answered_by = Some(response.answered_by.unwrap_or(label));
                    return Ok(response);
                }
                Err((error, attempts)) => {
                    if error.is_request_error()
                        || matches!(error, LlmError::Cancelled | LlmError::Script(_))
                    {
                        return Err(error);
                    }
                    let tries = if attempts == 1 {
                        "1 attempt".to_string()
                    } else {
                        format!("{attempts} attempts")
                    };
                    failures.push(format!("{}: {error} ({tries})", name(&label)));
                    if let Some(next) = self.links.get(i + 1).filter(|_| self.settings.fallback) {
                        observer.status(&format!(
                            "{} gave up after {tries} ({error}); the same conversation continues \
                             with {}",
                            name(&label),
                            name(&next.label())
                        ));
                        tracing::warn!(from = %name(&label), to = %name(&next.label()), "falling back");
                        self.active.store(i + 1, Ordering::SeqCst);
                        last = Some(error);
                        continue;
                    }
                    last = Some(error);
                    break;
                }
            }
        }
        match last {
            Some(e) if e.is_retryable() => Err(LlmError::Unavailable(format!(
                "no model could answer: {}; the conversation is kept — try again later",
                failures.join("; ")
            ))),
            Some(e) => Err(e),
            None => Err(LlmError::Config("no model provider is configured".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<String>);

    impl Observer for Seen {
        fn text(&self, delta: &str) {
            if let Ok(mut g) = self.0.lock() {
                g.push_str(delta);
            }
        }
    }

    #[test]
    fn repeated_text_is_shown_once_and_new_text_is_shown() {
        let seen = Seen::default();
        let once = OncePerTurn::new(&seen);
        once.text("Hello ");
        once.text("wor");
        once.restart();
        once.text("Hel");
        once.text("lo w");
        once.text("orld");
        assert_eq!(*seen.0.lock().unwrap(), "Hello world");
        once.restart();
        once.text("Different");
        assert_eq!(*seen.0.lock().unwrap(), "Hello worldDifferent");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let s = LlmSettings {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..Default::default()
        };
        let e = LlmError::Stream("x".into());
        for attempt in 1..10 {
            let d = backoff(&s, attempt, &e).as_millis() as u64;
            let full = (100u64 << (attempt - 1)).min(1_000);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
        }
        let e = LlmError::Http {
            status: 429,
            message: String::new(),
            retry_after_ms: Some(7_000),
        };
        assert_eq!(backoff(&s, 1, &e), Duration::from_secs(7));
    }
}
