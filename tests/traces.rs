//! One trace from the caller to the webhook receiver, through the binary:
//! an OTLP/HTTP receiver (a small server decoding the protobuf export with
//! the `opentelemetry-proto` types) and a notify receiver stand in for the
//! collector and the customer. The caller's `traceparent` on the event that
//! fires a rule comes back as spans of ingest, the processor and delivery in
//! that trace, and as the trace of the receiver's `traceparent`. Setting
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is all it takes.

mod support;

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::HeaderMap;
use eventide::wait::eventually;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::json;
use support::{DEADLINE, Eventide};

/// The caller's trace.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// (service name, trace id, span name) of every span exported.
type Spans = Arc<Mutex<Vec<(String, String, String)>>>;
/// The `traceparent` of every notify call.
type Calls = Arc<Mutex<Vec<Option<String>>>>;

async fn collect(State(spans): State<Spans>, body: axum::body::Bytes) -> &'static str {
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return "";
    };
    let mut seen = spans.lock().unwrap_or_else(PoisonError::into_inner);
    for resource in export.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(AnyValue::StringValue(name)) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                let trace_id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                seen.push((service.clone(), trace_id, span.name));
            }
        }
    }
    ""
}

async fn notify(State(calls): State<Calls>, headers: HeaderMap) -> &'static str {
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(traceparent);
    ""
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_runs_through_ingest_the_processor_and_delivery_to_the_receiver() {
    let spans = Spans::default();
    let collector = serve(
        axum::Router::new()
            .route("/v1/traces", axum::routing::post(collect))
            .with_state(Arc::clone(&spans)),
    )
    .await;
    let calls = Calls::default();
    let receiver = serve(
        axum::Router::new()
            .route("/v1/notify", axum::routing::post(notify))
            .with_state(Arc::clone(&calls)),
    )
    .await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let notify_url = receiver.clone();
    let eventide = Eventide::start(
        data_dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("EVENTIDE_NOTIFY_URL", notify_url.as_str()),
        ],
    );
    let http = reqwest::Client::new();
    eventide.wait_healthy(&http).await;

    let started = json!({"user_id": "tracer", "device_id": "d1", "type": "training_program_started",
        "training_program_id": "7", "time_stamp": "2021-02-28 16:00:00"});
    let finished = json!({"user_id": "tracer", "device_id": "d1", "type": "training_program_finished",
        "training_program_id": "7", "time_stamp": "2021-02-28 16:45:00"});
    for (event, traceparent) in [(started, None), (finished, Some(TRACEPARENT))] {
        let mut request = http
            .post(format!("{}/v1/event", eventide.ingest))
            .bearer_auth("dev-producer")
            .json(&event);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let status = request.send().await.expect("ingest answers").status();
        assert_eq!(status, 202);
    }

    let calls = &calls;
    let spans = &spans;
    let traceparent = eventually(DEADLINE, || async move {
        let seen = calls.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Ok(match seen.into_iter().flatten().next() {
            Some(traceparent) => Ok(traceparent),
            None => Err("no traced notify call yet".to_owned()),
        })
    })
    .await
    .unwrap_or_else(|err| {
        let seen = spans.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let output = eventide.output();
        let tail: Vec<&str> = output.lines().rev().take(30).collect();
        panic!(
            "the rule's notification is delivered with a traceparent: {err}\ncalls: {:?}\nspans: {seen:?}\nlog (newest first):\n{}",
            calls.lock().unwrap_or_else(PoisonError::into_inner),
            tail.join("\n")
        )
    });
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "the receiver continues the caller's trace: {traceparent}"
    );

    let services = eventually(DEADLINE, || async move {
        let seen = spans.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut services: Vec<String> = seen
            .iter()
            .filter(|(_, trace, _)| trace == TRACE_ID)
            .map(|(service, _, _)| service.clone())
            .collect();
        services.sort();
        services.dedup();
        let wanted = ["eventide-delivery", "eventide-ingest", "eventide-processor"];
        Ok(if wanted.iter().all(|w| services.iter().any(|s| s == w)) {
            Ok(seen)
        } else {
            Err(format!("services in the trace so far: {services:?}"))
        })
    })
    .await
    .expect("ingest, processor and delivery spans in the caller's trace");
    let names: Vec<&str> = services
        .iter()
        .filter(|(_, trace, _)| trace == TRACE_ID)
        .map(|(_, _, name)| name.as_str())
        .collect();
    for wanted in [
        "POST /v1/event",
        "process events",
        "rule daily-dose-congratulation",
        "deliver notify",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    // Log lines written within the trace carry its id.
    assert!(
        eventide
            .output()
            .contains(&format!("\"trace_id\":\"{TRACE_ID}\"")),
        "no log line names the trace"
    );
    assert_every_series_is_served(&http, &eventide).await;
    assert!(eventide.terminate().await.success());
}

/// The series an operator needs (issue 15, point 3), all served on
/// `/metrics` (the all-in-one's roles share one registry; librdkafka's
/// statistics come every few seconds, hence the wait).
async fn assert_every_series_is_served(http: &reqwest::Client, eventide: &Eventide) {
    const SERIES: &[&str] = &[
        "eventide_http_request_seconds_bucket{service=\"ingest\"",
        "eventide_http_request_seconds_bucket{service=\"query-api\"",
        "eventide_processor_consumer_lag{",
        "eventide_processor_flush_seconds_bucket{backend=\"sqlite\"",
        "eventide_processor_flush_records_bucket{",
        "eventide_processor_freshness_seconds{topic=\"events\"}",
        "eventide_processor_rule_state_pending ",
        "eventide_processor_notifications_fired_total{",
        "eventide_processor_notifications_late_total{",
        "eventide_processor_notification_lateness_seconds_bucket{",
        "eventide_delivery_attempts_total{destination=\"notify\"}",
        "eventide_delivery_delivered_total{destination=\"notify\"}",
        "eventide_delivery_retried_total{destination=\"notify\"}",
        "eventide_delivery_dead_lettered_total{destination=\"notify\"}",
        "eventide_delivery_seconds_bucket{destination=\"notify\"",
        "eventide_ingest_producer_queue_messages ",
        "eventide_ingest_broker_rtt_p99_seconds{",
        "eventide_build_info{version=",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ];
    let missing = eventually(DEADLINE, || async {
        let text = http
            .get(format!("{}/metrics", eventide.ingest))
            .send()
            .await?
            .text()
            .await?;
        let missing: Vec<&str> = SERIES
            .iter()
            .copied()
            .filter(|series| !text.lines().any(|line| line.starts_with(series)))
            .collect();
        Ok(if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not served yet: {missing:?}"))
        })
    })
    .await;
    if let Err(err) = missing {
        panic!("{err}");
    }
}
