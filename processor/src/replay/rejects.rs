//! Refused requests resubmitted through ingest's own validation, judged
//! now (`eventide replay --rejects`, `POST /v1/admin/replays` with
//! `rejects`): those that pass are written as ingest would have written
//! them, with their `Idempotency-Key` again; those still invalid are
//! refused again, a new reject carrying the run's id. Within a run a
//! request (endpoint, key and body) is resubmitted at most once, however
//! often it was refused.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use ingest::resubmit::{resubmit, resubmittable};
use ingest::validation::Context;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use schemas::time::Micros;
use schemas::{Codec, Reject, Topic};
use uuid::Uuid;

use super::{ReplayError, SCAN_TIMEOUT};
use crate::scan::Scan;

/// Whose refused requests, refused when.
#[derive(Debug, Clone)]
pub struct RejectsSelection {
    pub application: String,
    /// Refused at or after.
    pub since: Option<Micros>,
    /// Refused before.
    pub until: Option<Micros>,
}

/// Ingest's limits the requests are judged by now (its `--max-clock-skew`
/// and `--max-batch`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_clock_skew: Duration,
    pub max_batch: usize,
}

/// The counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resubmitted {
    /// Rejects read (of every application).
    pub read: u64,
    /// Requests judged again.
    pub resubmitted: u64,
    /// Records written (would be, on a dry run).
    pub records: u64,
    /// Requests, or batch items, refused again.
    pub refused_again: u64,
    /// Requests refused for how they arrived (no key, a rate limit, a body
    /// too large or unreadable): left alone.
    pub not_resubmittable: u64,
    /// Requests already resubmitted in this run.
    pub repeats: u64,
}

/// One request judged again.
#[derive(Debug)]
pub struct Judged<'a> {
    pub reject: &'a Reject,
    /// Records it gives now.
    pub records: usize,
    /// Why it (or each refused batch item) is still refused.
    pub refused: Vec<String>,
}

/// Resubmits what `selection` selects; on `dry_run` only judges. `each` is
/// told of every request judged.
///
/// # Errors
///
/// [`ReplayError`] if the rejects cannot be read, ingest's event types do
/// not compile, or a record cannot be written.
pub async fn run(
    kafka: &ClientConfig,
    codec: &Codec,
    selection: &RejectsSelection,
    limits: Limits,
    dry_run: bool,
    mut each: impl FnMut(&Judged<'_>),
) -> Result<(Uuid, Resubmitted), ReplayError> {
    let event_types =
        ingest::event_types::EventTypes::compile().map_err(ReplayError::EventTypes)?;
    let max_skew_micros = i64::try_from(limits.max_clock_skew.as_micros()).unwrap_or(i64::MAX);
    let topic = codec.names().name(Topic::IngestRejects);
    let kafka_error = |topic: &str| {
        let topic = topic.to_owned();
        move |source| ReplayError::Kafka { topic, source }
    };
    let producer = super::producer(kafka, &topic)?;
    let run_id = Uuid::now_v7();
    let run = run_id.to_string();
    let mut scan = Scan::open(kafka, &topic, SCAN_TIMEOUT).await?;
    let deadline = Instant::now() + SCAN_TIMEOUT;
    let mut counts = Resubmitted::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut pending: Vec<(String, DeliveryFuture)> = Vec::new();
    let headers = || {
        OwnedHeaders::new().insert(Header {
            key: crate::webhooks::REPLAY_HEADER,
            value: Some(&run),
        })
    };
    while let Some(message) = scan.next(deadline).await? {
        counts.read += 1;
        let Some(payload) = message.payload() else {
            continue;
        };
        let Ok(reject) = codec.decode::<Reject>(payload).await else {
            continue;
        };
        if reject.application_id != selection.application
            || selection
                .since
                .is_some_and(|since| reject.received_at < since)
            || selection
                .until
                .is_some_and(|until| reject.received_at >= until)
        {
            continue;
        }
        if !resubmittable(&reject) {
            counts.not_resubmittable += 1;
            continue;
        }
        let mut request = std::collections::hash_map::DefaultHasher::new();
        (&reject.endpoint, &reject.idempotency_key, &reject.body).hash(&mut request);
        if !seen.insert(request.finish()) {
            counts.repeats += 1;
            continue;
        }
        counts.resubmitted += 1;
        let context = Context {
            now: schemas::time::now_micros(),
            max_skew_micros,
            user_agent: None,
            event_types: &event_types,
        };
        let outcome = resubmit(&reject, &context, limits.max_batch);
        counts.records += outcome.accepted.len() as u64;
        counts.refused_again += outcome.refused.len() as u64;
        each(&Judged {
            reject: &reject,
            records: outcome.accepted.len(),
            refused: outcome.refused.iter().map(ToString::to_string).collect(),
        });
        if dry_run {
            continue;
        }
        for record in &outcome.accepted {
            let payload = record.encode(codec).await?;
            let name = codec.names().name(record.topic());
            let key = record.key();
            let delivery = producer
                .send_result(
                    FutureRecord::to(&name)
                        .key(&key)
                        .payload(&payload)
                        .headers(headers()),
                )
                .map_err(|(err, _)| kafka_error(&name)(err))?;
            pending.push((name, delivery));
        }
        for err in &outcome.refused {
            let mut again = ingest::rejects::reject_record(
                &selection.application,
                &reject.endpoint,
                err,
                &reject.body,
                reject.idempotency_key.as_deref(),
            );
            again.replay_run = Some(run.clone());
            let payload = codec.encode(&again).await?;
            let delivery = producer
                .send_result(
                    FutureRecord::to(&topic)
                        .key(&selection.application)
                        .payload(&payload)
                        .headers(headers()),
                )
                .map_err(|(err, _)| kafka_error(&topic)(err))?;
            pending.push((topic.clone(), delivery));
        }
    }
    for (topic, delivery) in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => return Err(ReplayError::Kafka { topic, source }),
            Err(_) => {
                return Err(ReplayError::Kafka {
                    topic,
                    source: rdkafka::error::KafkaError::Canceled,
                });
            }
        }
    }
    Ok((run_id, counts))
}
