//! Trace export over OTLP/HTTP with protobuf, configured by the standard
//! variables: on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, unless `OTEL_SDK_DISABLED`
//! is `true` or `OTEL_TRACES_EXPORTER` is `none`. The exporter reads the
//! endpoint, `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT` and `_COMPRESSION`;
//! the SDK reads `OTEL_TRACES_SAMPLER` (and `_ARG`), `OTEL_BSP_*` and
//! `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! Spans are exported under the service of the role that made them
//! (`eventide-ingest`, `eventide-processor`, `eventide-delivery`,
//! `eventide-query-api`, told apart by the module that opened the span), so
//! the all-in-one process shows as its four services; `OTEL_SERVICE_NAME`
//! names them all instead.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::{Key, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("building the OTLP span exporter: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Module prefixes of each role, most specific first.
const ROLES: &[(&str, &str)] = &[
    ("processor::webhooks", "delivery"),
    ("processor", "processor"),
    ("ingest", "ingest"),
    ("query_api", "query-api"),
];

/// The service name spans of `role` are exported under.
pub fn service_name(role: &str) -> String {
    format!("eventide-{role}")
}

/// The role whose code is in `module` (a Rust module path), if any.
pub fn role_of(module: &str) -> Option<&'static str> {
    ROLES
        .iter()
        .find(|(prefix, _)| {
            module
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .map(|(_, role)| *role)
}

/// Whether the standard variables ask for trace export.
pub fn requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let is = |name: &str, wanted: &str| {
        std::env::var(name).is_ok_and(|value| value.trim().eq_ignore_ascii_case(wanted))
    };
    !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// A tracer provider exporting in batches over OTLP/HTTP, or `None` when
/// export is not requested (then tracing costs nothing beyond logs).
/// `own_role` names the spans no role claims (the process's own: its
/// subcommand's role, or `eventide` for the all-in-one).
///
/// # Errors
///
/// [`ExportError`] if an exporter cannot be built.
pub fn provider(own_role: Option<&'static str>) -> Result<Option<SdkTracerProvider>, ExportError> {
    if !requested() {
        return Ok(None);
    }
    let fallback = own_role.map_or_else(|| "eventide".to_owned(), service_name);
    let named = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty());
    let exporter = match named {
        Some(name) => ByService::one(name)?,
        None => ByService::per_role(fallback)?,
    };
    let resource = Resource::builder().build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build(),
    ))
}

/// Sends each span to the exporter of its service.
#[derive(Debug)]
struct ByService {
    /// Service name → its exporter.
    exporters: HashMap<String, opentelemetry_otlp::SpanExporter>,
    /// The service of spans no role claims.
    fallback: String,
    /// Whether spans are told apart by role (else all go to `fallback`).
    by_role: bool,
}

fn otlp() -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?)
}

impl ByService {
    fn one(name: String) -> Result<Self, ExportError> {
        Ok(Self {
            exporters: HashMap::from([(name.clone(), otlp()?)]),
            fallback: name,
            by_role: false,
        })
    }

    fn per_role(fallback: String) -> Result<Self, ExportError> {
        let mut exporters = HashMap::new();
        for (_, role) in ROLES {
            exporters.insert(service_name(role), otlp()?);
        }
        if !exporters.contains_key(&fallback) {
            exporters.insert(fallback.clone(), otlp()?);
        }
        Ok(Self {
            exporters,
            fallback,
            by_role: true,
        })
    }

    fn service_of(&self, span: &SpanData) -> &str {
        if !self.by_role {
            return &self.fallback;
        }
        span.attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == "code.module.name")
            .and_then(|attribute| role_of(attribute.value.as_str().as_ref()))
            .map_or(self.fallback.as_str(), |role| {
                self.exporters
                    .get_key_value(&service_name(role))
                    .map_or(self.fallback.as_str(), |(name, _)| name.as_str())
            })
    }
}

impl SpanExporter for ByService {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut parts: HashMap<String, Vec<SpanData>> = HashMap::new();
        for span in batch {
            let service = self.service_of(&span).to_owned();
            parts.entry(service).or_default().push(span);
        }
        let mut outcome = Ok(());
        for (service, spans) in parts {
            if let Some(exporter) = self.exporters.get(&service)
                && let Err(err) = exporter.export(spans).await
            {
                outcome = Err(err);
            }
        }
        outcome
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        let mut outcome = Ok(());
        for exporter in self.exporters.values_mut() {
            if let Err(err) = exporter.shutdown_with_timeout(timeout) {
                outcome = Err(err);
            }
        }
        outcome
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        let mut outcome = Ok(());
        for exporter in self.exporters.values_mut() {
            if let Err(err) = exporter.force_flush() {
                outcome = Err(err);
            }
        }
        outcome
    }

    fn set_resource(&mut self, resource: &Resource) {
        let service_key = Key::from_static_str("service.name");
        for (service, exporter) in &mut self.exporters {
            let attributes = resource
                .iter()
                .filter(|(key, _)| **key != service_key)
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
            let own = Resource::builder_empty()
                .with_attributes(attributes)
                .with_service_name(service.clone())
                .build();
            exporter.set_resource(&own);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_belong_to_the_role_of_their_module() {
        assert_eq!(role_of("ingest::routes"), Some("ingest"));
        assert_eq!(role_of("processor::consumer"), Some("processor"));
        assert_eq!(role_of("processor::webhooks::worker"), Some("delivery"));
        assert_eq!(role_of("query_api::routes::events"), Some("query-api"));
        assert_eq!(role_of("ingester"), None, "a prefix, not a module");
        assert_eq!(role_of("eventide::pipeline"), None);
        assert_eq!(service_name("query-api"), "eventide-query-api");
    }
}
