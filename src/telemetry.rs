//! Logs, traces and the metrics recorder. Logs are human-readable text by
//! default or JSON lines for collectors, with `trace_id` and `span_id` when a
//! span is exported; traces go over OTLP/HTTP when the standard `OTEL_*`
//! variables ask for it (`telemetry::export`).

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemetry::logs::WithTraceIds;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// What [`init`] set up; [`Telemetry::shutdown`] exports the spans still
/// buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.traces.is_some()
    }

    /// Exports what is buffered and stops the exporter (blocking: call it
    /// outside async code, or in `spawn_blocking`).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces {
            drop(provider.shutdown());
        }
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the default filter.
/// `role` names the spans of the process's own code (`None`: the
/// all-in-one). A bad OTLP setting is logged and traces stay off.
pub fn init(format: LogFormat, role: Option<&'static str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn,tansu=warn"));
    let (traces, trouble) = match telemetry::export::provider(role) {
        Ok(traces) => (traces, None),
        Err(err) => (None, Some(err)),
    };
    let otel = traces
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("eventide")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().event_format(WithTraceIds(
                tracing_subscriber::fmt::format().with_ansi(false),
            )))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(WithTraceIds(
                        tracing_subscriber::fmt::format().json().flatten_event(true),
                    )),
            )
            .try_init(),
    };
    if let Some(err) = trouble {
        tracing::warn!(error = %err, "trace export is off");
    }
    // A second init (tests start many pipelines) keeps the first subscriber.
    match installed {
        Ok(()) => Telemetry { traces },
        Err(_) => Telemetry::default(),
    }
}

/// The process-wide Prometheus recorder, installed on first use; every
/// service renders `/metrics` from it.
pub fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = buckets()
                .map(|builder| builder.build_recorder())
                .unwrap_or_else(|_| {
                    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
                });
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours still renders (empty).
            drop(metrics::set_global_recorder(recorder));
            handle
        })
        .clone()
}

/// Histogram buckets that fit what each measures: request and flush times
/// from half a millisecond to seconds, deliveries (retries and backoff
/// included) up to minutes, timer lateness up to an hour, records per flush
/// by powers of ten.
fn buckets()
-> Result<metrics_exporter_prometheus::PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    use metrics_exporter_prometheus::Matcher;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])?
        .set_buckets_for_metric(
            Matcher::Full(processor::webhooks::metrics::DELIVERY_SECONDS.to_owned()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full(processor::metrics::NOTIFICATION_LATENESS_SECONDS.to_owned()),
            &[0.0, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full(processor::metrics::FLUSH_RECORDS.to_owned()),
            &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0],
        )
}
