//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP
//! headers and Kafka record headers, so one trace follows an event from the
//! producer's request through ingest, the topics, the processor and delivery
//! to the receiver. Records from other producers carry the same headers.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header holding trace and parent span ids.
pub const TRACEPARENT: &str = "traceparent";

/// The trace context `headers` carry (an empty context if none).
pub fn from_http(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// Writes `context` into `headers`, if it names a trace.
pub fn into_http(context: &Context, headers: &mut http::HeaderMap) {
    if is_traced(context) {
        TraceContextPropagator::new()
            .inject_context(context, &mut opentelemetry_http::HeaderInjector(headers));
    }
}

/// The trace context a Kafka record's headers carry, if they name a trace.
pub fn from_kafka<H: Headers>(headers: &H) -> Option<Context> {
    let carrier = KafkaExtractor(headers);
    carrier.get(TRACEPARENT)?;
    let context = TraceContextPropagator::new().extract(&carrier);
    is_traced(&context).then_some(context)
}

/// Record headers carrying `context`, or `None` if it names no trace.
pub fn kafka_headers(context: &Context) -> Option<OwnedHeaders> {
    if !is_traced(context) {
        return None;
    }
    let mut carrier = KafkaInjector(None);
    TraceContextPropagator::new().inject_context(context, &mut carrier);
    carrier.0
}

/// The context records produced now should carry: the current span's when
/// it is exported, else `fallback` (the caller's, passed on unchanged when
/// no exporter is configured).
pub fn current_or(fallback: &Context) -> Context {
    let current = tracing::Span::current().context();
    if is_traced(&current) {
        current
    } else {
        fallback.clone()
    }
}

/// Makes `span` continue `parent`'s trace (nothing if it names none or the
/// span is not recorded).
pub fn continue_trace(span: &tracing::Span, parent: &Context) {
    if is_traced(parent) {
        drop(span.set_parent(parent.clone()));
    }
}

fn is_traced(context: &Context) -> bool {
    context.span().span_context().is_valid()
}

struct KafkaExtractor<'a, H>(&'a H);

impl<H: Headers> Extractor for KafkaExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.key.eq_ignore_ascii_case(key))
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// `OwnedHeaders::insert` takes the headers by value: the carrier holds them
/// as an option it takes and puts back.
struct KafkaInjector(Option<OwnedHeaders>);

impl Injector for KafkaInjector {
    fn set(&mut self, key: &str, value: String) {
        let headers = self
            .0
            .take()
            .unwrap_or_else(|| OwnedHeaders::new_with_capacity(2));
        self.0 = Some(headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_travels_from_http_through_kafka_headers_unchanged() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert(TRACEPARENT, http::HeaderValue::from_static(PARENT));
        let context = from_http(&incoming);
        let headers = kafka_headers(&context).expect("a traced context");
        let back = from_kafka(&headers).expect("the record names a trace");
        let mut outgoing = http::HeaderMap::new();
        into_http(&back, &mut outgoing);
        assert_eq!(
            outgoing.get(TRACEPARENT).and_then(|v| v.to_str().ok()),
            Some(PARENT)
        );
    }

    #[test]
    fn no_or_bad_context_writes_no_header() {
        assert!(kafka_headers(&Context::new()).is_none());
        let mut incoming = http::HeaderMap::new();
        incoming.insert(TRACEPARENT, http::HeaderValue::from_static("00-nonsense"));
        assert!(kafka_headers(&from_http(&incoming)).is_none());
        assert!(from_kafka(&OwnedHeaders::new()).is_none());
        let mut outgoing = http::HeaderMap::new();
        into_http(&Context::new(), &mut outgoing);
        assert!(outgoing.is_empty());
    }
}
