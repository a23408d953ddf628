//! `eventide replay`: dead letters sent back to the stage that gave up on
//! them, once each per run.
//!
//! - A destination's (`delivery:<name>`): each selected dead letter becomes
//!   a [`Replay`] record on the `replays` topic, which every destination
//!   reads beside its source and only that destination takes — through its
//!   lanes, pause, pace and signatures like any record, marked with the
//!   run's id. Other destinations and the aggregates never see it again.
//! - Processing's (`processor`): each selected record is written back, as
//!   read, to the topic it came from, where the processor applies it (it
//!   never was: it could not be decoded) — after the cause is fixed.
//!
//! Within a run a record (by its id; by its position when it cannot be
//! decoded) is sent at most once, however often it was dead-lettered.
//!
//! [`rejects`] resubmits refused requests through ingest's validation.

pub mod rejects;

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::time::Micros;
use schemas::{Codec, CodecError, DeadLetter, Event, Notification, Replay, Topic};
use thiserror::Error;
use uuid::Uuid;

use crate::scan::{Scan, ScanError};

/// How long reading the dead letters may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the broker has to acknowledge a replayed record.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a replay failed.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The dead letters could not be read.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// A replay record could not be encoded.
    #[error("replay encoding: {0}")]
    Codec(#[from] CodecError),
    /// Ingest's event types, which refused requests are judged by, do not
    /// compile.
    #[error("event types: {0}")]
    EventTypes(String),
    /// The broker refused a replayed record.
    #[error("replaying to {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Which stage gets its dead letters back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A webhook destination, by name.
    Destination(String),
    /// The processor, for records of `topic` (logical name) or of every
    /// topic.
    Processing { topic: Option<Topic> },
}

impl Target {
    /// The dead-letter stage it replays.
    pub fn stage(&self) -> String {
        match self {
            Target::Destination(name) => format!("delivery:{name}"),
            Target::Processing { .. } => PROCESSING_STAGE.to_owned(),
        }
    }
}

/// Why a replay request does not select one stage's dead letters; each
/// names the request's field (`--` flag on the command line).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectionError {
    /// Neither a destination nor a stage.
    #[error("name what to replay: `destination` or `stage` processing")]
    Nothing,
    /// A stage other than processing.
    #[error("stage {0:?}: only `processing` is replayed by stage")]
    Stage(String),
    /// A destination together with a stage or topic.
    #[error("`destination` replays one destination; `stage` and `topic` do not apply")]
    DestinationAndStage,
    /// A topic that is not one.
    #[error("topic {0:?} is not a topic (e.g. `increments`, `events`)")]
    Topic(String),
    /// A time that is not RFC 3339.
    #[error("{field} {text:?} must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z")]
    Time { field: &'static str, text: String },
}

impl SelectionError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            SelectionError::Nothing | SelectionError::DestinationAndStage => "destination",
            SelectionError::Stage(_) => "stage",
            SelectionError::Topic(_) => "topic",
            SelectionError::Time { field, .. } => field,
        }
    }
}

impl Target {
    /// The target a request names: a destination, or stage `processing`
    /// with an optional topic (its default name).
    ///
    /// # Errors
    ///
    /// [`SelectionError`] naming the field at fault.
    pub fn parse(
        destination: Option<&str>,
        stage: Option<&str>,
        topic: Option<&str>,
    ) -> Result<Self, SelectionError> {
        match (destination, stage, topic) {
            (Some(name), None, None) => Ok(Target::Destination(name.to_owned())),
            (None, Some("processing"), topic) => Ok(Target::Processing {
                topic: topic
                    .map(|name| {
                        Topic::ALL
                            .into_iter()
                            .find(|topic| topic.default_name() == name)
                            .ok_or_else(|| SelectionError::Topic(name.to_owned()))
                    })
                    .transpose()?,
            }),
            (None, Some(stage), _) => Err(SelectionError::Stage(stage.to_owned())),
            (Some(_), _, _) => Err(SelectionError::DestinationAndStage),
            (None, None, _) => Err(SelectionError::Nothing),
        }
    }
}

/// An RFC 3339 time as microseconds since the epoch; `field` names it in
/// the error.
///
/// # Errors
///
/// [`SelectionError::Time`].
pub fn parse_time(field: &'static str, text: &str) -> Result<Micros, SelectionError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp_micros())
        .map_err(|_| SelectionError::Time {
            field,
            text: text.to_owned(),
        })
}

/// The stage name of the processor's dead letters.
pub const PROCESSING_STAGE: &str = "processor";

/// Which dead letters to replay.
#[derive(Debug, Clone)]
pub struct Selection {
    pub target: Target,
    /// Dead-lettered at or after.
    pub since: Option<Micros>,
    /// Dead-lettered before.
    pub until: Option<Micros>,
    /// Only this user's records (of events and notifications).
    pub user_id: Option<String>,
}

/// One dead letter selected.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The record's id, or `<topic>/<partition>@<offset>` when it cannot be
    /// decoded.
    pub id: String,
    pub user_id: Option<String>,
    pub letter: DeadLetter,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Dead letters read.
    pub read: u64,
    /// Dead letters to read in all (an upper bound).
    pub total: u64,
    /// Records replayed (or, on a dry run, that would be).
    pub replayed: u64,
    /// Dead letters of a record already replayed in this run.
    pub repeats: u64,
}

/// Replays what `selection` selects, each record once; on `dry_run` only
/// reports what it would replay. `seen` is told of every record selected
/// and `progress` of every dead letter read.
///
/// # Errors
///
/// [`ReplayError`] if the dead letters cannot be read or a record cannot
/// be written.
pub async fn run(
    kafka: &ClientConfig,
    codec: &Codec,
    selection: &Selection,
    requested_by: &str,
    dry_run: bool,
    mut seen: impl FnMut(&Selected),
    mut progress: impl FnMut(Progress),
) -> Result<(Uuid, Progress), ReplayError> {
    let run_id = Uuid::now_v7();
    let letters_topic = codec.names().name(Topic::DeadLetters);
    let mut scan = Scan::open(kafka, &letters_topic, SCAN_TIMEOUT).await?;
    let producer = producer(kafka, &letters_topic)?;
    let stage = selection.target.stage();
    let mut done = Progress {
        total: scan.total(),
        ..Progress::default()
    };
    let mut replayed_ids: HashSet<String> = HashSet::new();
    let mut pending = Vec::new();
    let deadline = std::time::Instant::now() + SCAN_TIMEOUT;
    while let Some(message) = scan.next(deadline).await? {
        done.read += 1;
        progress(done);
        let Some(payload) = message.payload() else {
            continue;
        };
        let Ok(letter) = codec.decode::<DeadLetter>(payload).await else {
            continue;
        };
        let Some(selected) = select(codec, selection, &stage, letter).await else {
            continue;
        };
        if !replayed_ids.insert(selected.id.clone()) {
            done.repeats += 1;
            continue;
        }
        seen(&selected);
        done.replayed += 1;
        if !dry_run {
            pending.push(
                send(
                    &producer,
                    codec,
                    &selection.target,
                    run_id,
                    requested_by,
                    selected,
                )
                .await?,
            );
        }
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => {
                return Err(ReplayError::Kafka {
                    topic: String::from("replays"),
                    source,
                });
            }
            Err(_) => {
                return Err(ReplayError::Kafka {
                    topic: String::from("replays"),
                    source: rdkafka::error::KafkaError::Canceled,
                });
            }
        }
    }
    progress(done);
    Ok((run_id, done))
}

/// The producer a replay writes with: acknowledged by all replicas, a
/// little batching, [`SEND_TIMEOUT`] per record.
fn producer(kafka: &ClientConfig, topic: &str) -> Result<FutureProducer, ReplayError> {
    kafka
        .clone()
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
        .create()
        .map_err(|source| ReplayError::Kafka {
            topic: topic.to_owned(),
            source,
        })
}

/// The dead letter as selected, `None` when `selection` leaves it out.
async fn select(
    codec: &Codec,
    selection: &Selection,
    stage: &str,
    letter: DeadLetter,
) -> Option<Selected> {
    if letter.stage != stage
        || selection
            .since
            .is_some_and(|since| letter.received_at < since)
        || selection
            .until
            .is_some_and(|until| letter.received_at >= until)
    {
        return None;
    }
    let logical = codec.names().logical(&letter.topic);
    if let Target::Processing { topic: Some(topic) } = &selection.target
        && logical != Some(*topic)
    {
        return None;
    }
    let (id, user_id) = match logical {
        Some(Topic::Events) => codec
            .decode::<Event>(&letter.payload)
            .await
            .ok()
            .map(|e| (e.event_id.to_string(), e.user_id)),
        Some(Topic::Notifications) => codec
            .decode::<Notification>(&letter.payload)
            .await
            .ok()
            .map(|n| (n.event_id, Some(n.user_id))),
        _ => None,
    }
    .unwrap_or_else(|| {
        (
            format!("{}/{}@{}", letter.topic, letter.partition, letter.offset),
            None,
        )
    });
    if let Some(wanted) = &selection.user_id
        && user_id.as_ref() != Some(wanted)
    {
        return None;
    }
    Some(Selected {
        id,
        user_id,
        letter,
    })
}

/// Hands one selected record to the producer.
async fn send(
    producer: &FutureProducer,
    codec: &Codec,
    target: &Target,
    run_id: Uuid,
    requested_by: &str,
    selected: Selected,
) -> Result<rdkafka::producer::DeliveryFuture, ReplayError> {
    let letter = selected.letter;
    let key = letter.key.clone().unwrap_or_default();
    let (topic, payload) = match target {
        Target::Destination(_) => {
            let replay = Replay {
                run_id,
                requested_at: schemas::time::now_micros(),
                requested_by: requested_by.to_owned(),
                stage: letter.stage,
                topic: letter.topic,
                partition: letter.partition,
                offset: letter.offset,
                key: letter.key,
                payload: letter.payload,
                dead_lettered_at: letter.received_at,
            };
            (
                codec.names().name(Topic::Replays),
                codec.encode(&replay).await?,
            )
        }
        Target::Processing { .. } => (letter.topic, letter.payload),
    };
    let run = run_id.to_string();
    let record = FutureRecord::to(&topic)
        .key(&key)
        .payload(&payload)
        .headers(
            rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: crate::webhooks::REPLAY_HEADER,
                value: Some(&run),
            }),
        );
    producer
        .send_result(record)
        .map_err(|(source, _)| ReplayError::Kafka {
            topic: topic.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_one_target_or_the_field_at_fault() {
        assert_eq!(
            Target::parse(Some("crm"), None, None),
            Ok(Target::Destination("crm".into()))
        );
        assert_eq!(
            Target::parse(None, Some("processing"), Some("increments")),
            Ok(Target::Processing {
                topic: Some(Topic::Increments)
            })
        );
        for (destination, stage, topic, field) in [
            (None, None, None, "destination"),
            (Some("crm"), Some("processing"), None, "destination"),
            (None, Some("delivery"), None, "stage"),
            (None, Some("processing"), Some("nope"), "topic"),
        ] {
            let err = Target::parse(destination, stage, topic).expect_err("refused");
            assert_eq!(err.field(), field, "{err}");
        }
        assert_eq!(
            parse_time("since", "2021-03-01T10:00:00Z"),
            Ok(1_614_592_800_000_000)
        );
        assert_eq!(
            parse_time("until", "yesterday").map_err(|err| err.field()),
            Err("until")
        );
    }
}
