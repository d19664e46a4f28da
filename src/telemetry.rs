//! Logs and traces: `tracing` to a file in the state directory, and — when built with the `otel`
//! feature and `OTEL_EXPORTER_OTLP_ENDPOINT` is set — the same spans exported over OTLP/HTTP.
//!
//! Invariants: nothing is written to the terminal (the TUI owns it); export is off unless both the
//! feature and the endpoint are there; spans carry run ids and stage names, never secrets (no span
//! records a configuration value); the variables it honours are read through
//! [`crate::config::Conventions`].

use crate::config::{Config, Conventions};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the log writer (and the trace exporter) alive; dropping it flushes them.
pub struct Guard {
    _log: tracing_appender::non_blocking::WorkerGuard,
    #[cfg(feature = "otel")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.traces.take()
            && let Err(e) = p.shutdown()
        {
            tracing::warn!("trace export did not flush: {e}");
        }
    }
}

pub fn init(config: &Config) -> Option<Guard> {
    let dir = config.home.join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "tiny-backspace.log");
    let (writer, log_guard) = tracing_appender::non_blocking(appender);
    let env = Conventions::from_env();
    let filter = env
        .log_filter
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let file = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter).with(file);

    #[cfg(feature = "otel")]
    {
        let (layer, traces) = match otlp(env.otlp_endpoint) {
            Some((layer, provider)) => (Some(layer), Some(provider)),
            None => (None, None),
        };
        registry.with(layer).try_init().ok()?;
        Some(Guard {
            _log: log_guard,
            traces,
        })
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.try_init().ok()?;
        Some(Guard { _log: log_guard })
    }
}

#[cfg(feature = "otel")]
fn otlp<S>(
    endpoint: Option<String>,
) -> Option<(
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    opentelemetry_sdk::trace::SdkTracerProvider,
)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    let endpoint = endpoint?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .ok()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("tiny-backspace")
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("tiny-backspace");
    Some((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}
