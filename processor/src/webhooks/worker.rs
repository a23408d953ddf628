//! One destination's delivery loop: its own consumer group, per-key lanes,
//! retries with full-jitter backoff, dead letters after the limit, and
//! commits only up to the lowest unfinished offset of each partition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use reqwest::StatusCode;
use schemas::DestinationState;
use schemas::{Codec, Event, Notification, Replay, Topic};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, warn};

use super::backoff::Backoff;
use super::control;
use super::destinations::{Destination, Source};
use super::lanes::Lanes;
use super::outcomes::{self, Outcomes};
use super::pace::{self, Pace};
use super::payload;
use super::{DeliveryError, metrics as names, signature};
use crate::dead_letters::{DeadLetters, Failed};

/// Who an automatic pause is by, and its error stage's prefix.
const AUTO_PAUSE: &str = "auto-pause";

/// Every request's `User-Agent`.
const USER_AGENT: &str = concat!("Eventide/", env!("CARGO_PKG_VERSION"));

/// How often finished offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// A partition a destination reads: of its source topic, or of `replays`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Part {
    replays: bool,
    partition: i32,
}

/// A record as read, with where it was first read.
#[derive(Debug)]
struct Read {
    original: Vec<u8>,
    origin: Origin,
    replay: Option<uuid::Uuid>,
}

/// A record ready to deliver.
#[derive(Debug)]
struct Prepared {
    id: String,
    body: Vec<u8>,
    read: Read,
}

/// Where a record was first read: what its dead letter names.
#[derive(Debug, Clone)]
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
}

/// One record to deliver.
#[derive(Debug)]
struct Job {
    partition: Part,
    offset: i64,
    key: String,
    /// Idempotency key: the notification's or event's id.
    id: String,
    body: axum::body::Bytes,
    /// The record as first read, for a dead letter.
    original: Vec<u8>,
    origin: Origin,
    /// The replay run it comes from, if replayed.
    replay: Option<uuid::Uuid>,
    timestamp_ms: Option<i64>,
    /// The trace its headers carry: the delivery continues it and passes it
    /// on to the receiver as `traceparent`.
    trace: Option<opentelemetry::Context>,
}

/// A destination's series, looked up once: every request counts.
struct Series {
    attempted: metrics::Counter,
    delivered: metrics::Counter,
    retried: metrics::Counter,
    dead_lettered: metrics::Counter,
    seconds: metrics::Histogram,
}

impl Series {
    /// The series of `destination`, each present from the start at 0.
    fn of(destination: &str) -> Self {
        let counter = |name: &'static str| {
            let counter = metrics::counter!(name, "destination" => destination.to_owned());
            counter.increment(0);
            counter
        };
        metrics::counter!(names::AUTO_PAUSED, "destination" => destination.to_owned()).increment(0);
        Self {
            attempted: counter(names::ATTEMPTED),
            delivered: counter(names::DELIVERED),
            retried: counter(names::RETRIED),
            dead_lettered: counter(names::DEAD_LETTERED),
            seconds: metrics::histogram!(names::DELIVERY_SECONDS, "destination" => destination.to_owned()),
        }
    }
}

/// What every delivery of a destination shares.
struct Shared {
    series: Series,
    destination: Destination,
    stage: String,
    topic: String,
    /// Dead letters sent back to their stage (`eventide replay`).
    replays_topic: String,
    http: reqwest::Client,
    signer: signature::Signer,
    pace: std::sync::Mutex<Pace>,
    /// Bounds requests in flight: `max_concurrency`, or the default.
    concurrency: tokio::sync::Semaphore,
    /// Paused or not.
    state: watch::Receiver<Option<DestinationState>>,
    /// Since when every attempt failed, for auto-pause.
    failing_since: std::sync::Mutex<Option<Instant>>,
    /// Last success and last error, reported on `destination-health`.
    outcomes: Outcomes,
    /// For publishing an auto-pause.
    kafka: ClientConfig,
    codec: Codec,
    backoff: Backoff,
    dead_letters: DeadLetters,
}

/// A destination's loop.
pub(super) struct Worker {
    shared: Arc<Shared>,
    consumer: StreamConsumer,
    codec: Codec,
    max_in_flight: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("destination", &self.shared.destination.name)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth retrying (timeouts, connection errors, 408, 429, 5xx).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (other 4xx).
    Permanent(String),
}

impl Worker {
    pub(super) fn new(
        destination: Destination,
        kafka: &ClientConfig,
        codec: Codec,
        group_prefix: &str,
        backoff: Backoff,
        max_in_flight: usize,
        state: watch::Receiver<Option<DestinationState>>,
    ) -> Result<Self, DeliveryError> {
        let topic = codec.names().name(match destination.source {
            Source::Events => Topic::Events,
            Source::Notifications => Topic::Notifications,
        });
        let consumer: StreamConsumer = kafka
            .clone()
            .set("group.id", format!("{group_prefix}-{}", destination.name))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(DeliveryError::Consumer)?;
        let replays_topic = codec.names().name(Topic::Replays);
        consumer
            .subscribe(&[&topic, &replays_topic])
            .map_err(DeliveryError::Consumer)?;
        let signer = signature::Signer::new(&destination.secrets).map_err(|err| {
            DeliveryError::Destinations(super::DestinationsError::Invalid {
                origin: "destination".into(),
                name: destination.name.clone(),
                message: err.to_string(),
            })
        })?;
        let pace = std::sync::Mutex::new(Pace::new(destination.rate_limit, Instant::now()));
        let concurrency = tokio::sync::Semaphore::new(
            destination
                .max_concurrency
                .unwrap_or(super::destinations::DEFAULT_MAX_CONCURRENCY),
        );
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(destination.timeout)
            .build()
            .map_err(|err| DeliveryError::Http(err.to_string()))?;
        let dead_letters = DeadLetters::new(kafka, codec.clone())?;
        Ok(Self {
            shared: Arc::new(Shared {
                series: Series::of(&destination.name),
                stage: format!("delivery:{}", destination.name),
                destination,
                topic,
                replays_topic,
                http,
                signer,
                pace,
                concurrency,
                state,
                failing_since: std::sync::Mutex::new(None),
                outcomes: Outcomes::default(),
                kafka: kafka.clone(),
                codec: codec.clone(),
                backoff,
                dead_letters,
            }),
            consumer,
            codec,
            max_in_flight: max_in_flight.max(1),
        })
    }

    /// Delivers until `shutdown`, then commits what is finished.
    pub(super) async fn run(self, shutdown: CancellationToken) -> Result<(), DeliveryError> {
        let name = self.shared.destination.name.clone();
        info!(destination = %name, url = %self.shared.destination.url, topic = %self.shared.topic, "delivering");
        // Every destination's series exist from the start, at 0.
        metrics::gauge!(names::PACE, "destination" => name.clone())
            .set(self.shared.destination.rate_limit.unwrap_or(0.0));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Part, i64, String)>();
        let (released_tx, mut released_rx) = mpsc::unbounded_channel::<(Part, i64)>();
        let mut lanes: Lanes<Job, Part> = Lanes::default();
        let mut tasks = JoinSet::new();
        let mut commit_tick = tokio::time::interval(COMMIT_INTERVAL);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut state = self.shared.state.clone();
        let mut followed = true;
        let reporting = shutdown.child_token();
        let reporter = tokio::spawn(outcomes::report(
            self.shared.kafka.clone(),
            self.codec.clone(),
            name.clone(),
            self.shared.outcomes.clone(),
            reporting.clone(),
        ));
        self.hold_fetching(self.shared.paused());
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                changed = state.changed(), if followed => {
                    followed = changed.is_ok();
                    let paused = control::is_paused(&state.borrow_and_update());
                    info!(destination = %name, paused, "destination {}", if paused { "paused: holding its records" } else { "resumed" });
                    self.hold_fetching(paused);
                }
                Some((partition, offset, key)) = done_rx.recv() => {
                    if let Some(next) = lanes.finish(partition, offset, &key) {
                        tasks.spawn(deliver(self.shared.clone(), next, done_tx.clone()));
                    }
                }
                Some((partition, offset)) = released_rx.recv() => lanes.release(partition, offset),
                _ = commit_tick.tick() => {
                    self.commit(&lanes, CommitMode::Async);
                    if self.shared.paused() {
                        // Partitions assigned since the pause.
                        self.hold_fetching(true);
                    }
                    while let Some(finished) = tasks.try_join_next() {
                        if let Err(err) = finished {
                            // Its record stays unfinished: commits stop there
                            // and it is redelivered after a restart.
                            tracing::error!(destination = %name, error = %err, "delivery task failed");
                        }
                    }
                }
                received = self.consumer.recv(), if lanes.pending() < self.max_in_flight => {
                    let message = match received {
                        Ok(message) => message,
                        Err(err) => {
                            warn!(destination = %name, error = %err, "consumer error");
                            continue;
                        }
                    };
                    let partition = Part { replays: message.topic() == self.shared.replays_topic, partition: message.partition() };
                    let offset = message.offset();
                    let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                    let original = message.payload().unwrap_or_default().to_vec();
                    let timestamp_ms = message.timestamp().to_millis();
                    let trace = message.headers().and_then(telemetry::propagation::from_kafka);
                    let origin = Origin { topic: message.topic().to_owned(), partition: partition.partition, offset };
                    // Written back by a processing replay: its run.
                    let replay = message.headers().and_then(super::replay_run).and_then(|run| run.parse().ok());
                    drop(message);
                    let read = Read { original, origin, replay };
                    match self.prepare(partition.replays, read).await {
                        Ok(Some(prepared)) => {
                            let Prepared { id, body, read: Read { original, origin, replay } } = prepared;
                            let job = Job { partition, offset, key: key.clone(), id, body: body.into(), original, origin, replay, timestamp_ms, trace };
                            if let Some(job) = lanes.admit(partition, offset, &key, job) {
                                tasks.spawn(deliver(self.shared.clone(), job, done_tx.clone()));
                            }
                        }
                        Ok(None) => lanes.pass(partition, offset),
                        Err((reason, read)) => {
                            // Its dead letter is written beside the
                            // deliveries (many share a produce request); the
                            // offset is committed only once it is durable.
                            if lanes.hold(partition, offset) {
                                let (shared, released) = (self.shared.clone(), released_tx.clone());
                                tasks.spawn(async move {
                                    let letter = Letter { origin: &read.origin, key: &key, original: &read.original, timestamp_ms, trace: trace.as_ref(), replay: read.replay };
                                    write_dead_letter(&shared, &letter, &reason).await;
                                    _ = released.send((partition, offset));
                                });
                            }
                        }
                    }
                }
            }
        }
        tasks.abort_all();
        self.commit(&lanes, CommitMode::Sync);
        self.consumer.unsubscribe();
        reporting.cancel();
        drop(reporter.await);
        info!(destination = %name, unfinished = lanes.pending(), "delivery stopped; unfinished records are redelivered after a restart");
        Ok(())
    }

    /// The idempotency key and JSON body of a record — for one read from
    /// `replays`, of the record it carries — `None` if the destination's
    /// filter leaves it out or a replay is for another stage; `Err` if it
    /// cannot be decoded.
    async fn prepare(
        &self,
        replays: bool,
        mut read: Read,
    ) -> Result<Option<Prepared>, (String, Read)> {
        if replays {
            let replay: Replay = match self.codec.decode(&read.original).await {
                Ok(replay) => replay,
                Err(err) => return Err((err.to_string(), read)),
            };
            if replay.stage != self.shared.stage {
                return Ok(None);
            }
            read = Read {
                original: replay.payload,
                origin: Origin {
                    topic: replay.topic,
                    partition: replay.partition,
                    offset: replay.offset,
                },
                replay: Some(replay.run_id),
            };
        }
        match self.body(&read.original).await {
            Ok(Some((id, body))) => Ok(Some(Prepared { id, body, read })),
            Ok(None) => Ok(None),
            Err(reason) => Err((reason, read)),
        }
    }

    /// The idempotency key and JSON body of a source record, `None` if the
    /// destination's filter leaves it out.
    async fn body(&self, payload: &[u8]) -> Result<Option<(String, Vec<u8>)>, String> {
        let filter = &self.shared.destination.filter;
        let (id, body) = match self.shared.destination.source {
            Source::Notifications => {
                let n: Notification = self
                    .codec
                    .decode(payload)
                    .await
                    .map_err(|err| err.to_string())?;
                if !filter.matches(None, &n.rule, None) {
                    return Ok(None);
                }
                (
                    n.event_id.clone(),
                    payload::notification(&n).map_err(|err| err.to_string())?,
                )
            }
            Source::Events => {
                let e: Event = self
                    .codec
                    .decode(payload)
                    .await
                    .map_err(|err| err.to_string())?;
                let named_elsewhere = e
                    .destinations
                    .as_ref()
                    .is_some_and(|named| !named.contains(&self.shared.destination.name));
                if named_elsewhere
                    || !filter.matches(Some(&e.category), &e.name, Some(&e.application_id))
                {
                    return Ok(None);
                }
                (
                    e.event_id.to_string(),
                    payload::event(&e).map_err(|err| err.to_string())?,
                )
            }
        };
        Ok(Some((id, body)))
    }

    /// Stops fetching the partitions held now while paused (records already
    /// read wait for the resume), and starts again after.
    fn hold_fetching(&self, paused: bool) {
        metrics::gauge!(names::PAUSED, "destination" => self.shared.destination.name.clone())
            .set(if paused { 1.0 } else { 0.0 });
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let done = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(err) = done {
            debug!(error = %err, paused, "pausing or resuming the fetch failed; records read meanwhile wait");
        }
    }

    /// Commits finished offsets of the partitions this consumer holds now;
    /// a revoked partition's offsets belong to its new owner.
    fn commit(&self, lanes: &Lanes<Job, Part>, mode: CommitMode) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let held: std::collections::HashSet<Part> = assignment
            .elements()
            .iter()
            .map(|element| Part {
                replays: element.topic() == self.shared.replays_topic,
                partition: element.partition(),
            })
            .collect();
        let mut list = TopicPartitionList::new();
        for (part, offset) in lanes
            .committable()
            .into_iter()
            .filter(|(part, _)| held.contains(part))
        {
            let topic = if part.replays {
                &self.shared.replays_topic
            } else {
                &self.shared.topic
            };
            if list
                .add_partition_offset(topic, part.partition, Offset::Offset(offset))
                .is_err()
            {
                return;
            }
        }
        if list.count() > 0
            && let Err(err) = self.consumer.commit(&list, mode)
        {
            debug!(error = %err, "delivery offset commit failed; records are redelivered");
        }
    }
}

/// Delivers `job`, retrying with backoff, then dead-letters it; reports
/// it finished on `done`.
async fn deliver(shared: Arc<Shared>, job: Job, done: mpsc::UnboundedSender<(Part, i64, String)>) {
    let span = tracing::info_span!(
        "deliver",
        otel.name = format!("deliver {}", shared.destination.name),
        otel.kind = "client",
        destination = %shared.destination.name,
        id = %job.id
    );
    if let Some(trace) = &job.trace {
        telemetry::propagation::continue_trace(&span, trace);
    }
    attempt_all(shared, job, done).instrument(span).await;
}

/// Posts `job` until it is delivered or given up (then dead-lettered).
async fn attempt_all(
    shared: Arc<Shared>,
    job: Job,
    done: mpsc::UnboundedSender<(Part, i64, String)>,
) {
    let name = shared.destination.name.as_str();
    let mut began = Instant::now();
    let mut attempts = 0_u32;
    let last_error = loop {
        // Time paused does not count towards giving up.
        began += shared.until_resumed().await;
        attempts += 1;
        let outcome = post(&shared, &job).await;
        match &outcome {
            Ok(()) => shared.outcomes.succeeded(),
            Err(Failure::Retry { reason, .. } | Failure::Permanent(reason)) => {
                shared.outcomes.failed(reason);
            }
        }
        shared.health(outcome.as_ref().err()).await;
        let reason = match outcome {
            Ok(()) => {
                shared.series.delivered.increment(1);
                shared.series.seconds.record(began.elapsed().as_secs_f64());
                drop(done.send((job.partition, job.offset, job.key)));
                return;
            }
            Err(Failure::Permanent(reason)) => reason,
            Err(Failure::Retry {
                reason,
                retry_after,
            }) => {
                if !shared.backoff.may_retry(attempts, began.elapsed()) {
                    reason
                } else {
                    shared.series.retried.increment(1);
                    let delay = retry_after.map_or_else(
                        || shared.backoff.delay(attempts - 1),
                        |wait| wait.min(shared.backoff.cap),
                    );
                    debug!(destination = name, id = %job.id, attempts, ?delay, reason, "retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
        };
        // A paused destination holds its records: given up on while
        // paused, a record starts over once the destination resumes.
        if shared.paused() {
            debug!(destination = name, id = %job.id, "paused; holding the record");
            attempts = 0;
            began = Instant::now();
            continue;
        }
        break reason;
    };
    warn!(destination = name, id = %job.id, attempts, reason = %last_error, "giving up; dead-lettering");
    let reason = format!(
        "delivery to {} failed after {attempts} attempt(s): {last_error}",
        shared.destination.url
    );
    let letter = Letter {
        origin: &job.origin,
        key: &job.key,
        original: &job.original,
        timestamp_ms: job.timestamp_ms,
        trace: job.trace.as_ref(),
        replay: job.replay,
    };
    write_dead_letter(&shared, &letter, &reason).await;
    shared.series.dead_lettered.increment(1);
    drop(done.send((job.partition, job.offset, job.key)));
}

/// A record to dead-letter, as read.
struct Letter<'a> {
    origin: &'a Origin,
    key: &'a str,
    original: &'a [u8],
    timestamp_ms: Option<i64>,
    trace: Option<&'a opentelemetry::Context>,
    /// The replay run it comes from, if replayed.
    replay: Option<uuid::Uuid>,
}

/// Writes `letter`'s dead letter with `reason`, retrying with backoff until
/// the broker has it: a record is not finished before. An abort on shutdown
/// leaves it unfinished, to be redelivered.
async fn write_dead_letter(shared: &Shared, letter: &Letter<'_>, reason: &str) {
    let mut attempts = 0_u32;
    let replay = letter.replay.map(|run| run.to_string());
    loop {
        let failed = Failed {
            topic: &letter.origin.topic,
            partition: letter.origin.partition,
            offset: letter.origin.offset,
            key: Some(letter.key.as_bytes()),
            payload: letter.original,
            timestamp_ms: letter.timestamp_ms,
            trace: letter.trace,
            replay: replay.as_deref(),
        };
        match shared
            .dead_letters
            .send(&shared.stage, failed, reason)
            .await
        {
            Ok(()) => return,
            Err(err) => {
                warn!(destination = %shared.destination.name, error = %err, "dead letter not written; retrying");
                tokio::time::sleep(shared.backoff.delay(attempts)).await;
                attempts = attempts.saturating_add(1);
            }
        }
    }
}

impl Shared {
    /// Whether the destination is paused now.
    fn paused(&self) -> bool {
        control::is_paused(&self.state.borrow())
    }

    /// Waits while the destination is paused; how long it waited.
    async fn until_resumed(&self) -> Duration {
        if !self.paused() {
            return Duration::ZERO;
        }
        let began = Instant::now();
        let mut state = self.state.clone();
        // An error means the states are no longer followed (shutdown).
        drop(state.wait_for(|state| !control::is_paused(state)).await);
        began.elapsed()
    }

    /// Tracks how long the destination has been failing and pauses it
    /// once that exceeds its `auto_pause_after`.
    async fn health(&self, failure: Option<&Failure>) {
        let Some(after) = self.destination.auto_pause_after else {
            return;
        };
        let reason = match failure {
            None => {
                *self.failing_since() = None;
                return;
            }
            Some(Failure::Retry { reason, .. } | Failure::Permanent(reason)) => reason,
        };
        let since = *self.failing_since().get_or_insert_with(Instant::now);
        if since.elapsed() < after || self.paused() {
            return;
        }
        *self.failing_since() = None;
        let name = &self.destination.name;
        let reason = format!(
            "auto-paused: failing for {} (auto_pause_after {}); last error: {reason}",
            humantime::format_duration(Duration::from_secs(since.elapsed().as_secs())),
            humantime::format_duration(after)
        );
        warn!(destination = %name, %reason, "pausing destination");
        let state = DestinationState {
            destination: name.clone(),
            paused: true,
            changed_at: schemas::time::now_micros(),
            changed_by: AUTO_PAUSE.into(),
            reason: reason.clone(),
        };
        if let Err(err) = control::publish(&self.kafka, &self.codec, &state).await {
            warn!(destination = %name, error = %err, "auto-pause not written; still delivering");
            return;
        }
        metrics::counter!(names::AUTO_PAUSED, "destination" => name.clone()).increment(1);
        // Shown in `GET /v1/errors` beside the dead letters.
        let failed = Failed {
            topic: &self.codec.names().name(schemas::Topic::DestinationStates),
            partition: 0,
            offset: 0,
            key: Some(name.as_bytes()),
            payload: &[],
            timestamp_ms: None,
            trace: None,
            replay: None,
        };
        if let Err(err) = self
            .dead_letters
            .send(&format!("{AUTO_PAUSE}:{name}"), failed, &reason)
            .await
        {
            warn!(destination = %name, error = %err, "auto-pause error entry not written");
        }
    }

    fn failing_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.failing_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The destination's pace, whatever another task did while holding it.
    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records how the receiver answered in the pace and its gauge.
    fn answered(&self, status: StatusCode, retry_after: Option<Duration>) {
        let mut pace = self.pace();
        let before = pace.rate();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            pace.throttled(Instant::now(), retry_after);
        } else if status.is_success() {
            pace.succeeded(Instant::now());
        }
        let after = pace.rate();
        drop(pace);
        if after != before {
            info!(destination = %self.destination.name, %status, requests_per_second = after.unwrap_or(0.0), "destination pace changed");
            metrics::gauge!(names::PACE, "destination" => self.destination.name.clone())
                .set(after.unwrap_or(0.0));
        }
    }
}

/// One attempt, when the destination's concurrency and pace allow.
async fn post(shared: &Shared, job: &Job) -> Result<(), Failure> {
    let _permit = shared.concurrency.acquire().await.ok();
    loop {
        let taken = shared.pace().take(Instant::now());
        let Err(due) = taken else { break };
        // Waiters wake spread over one interval, not all at the due time.
        let spread = shared.pace().interval().mul_f64(rand::random::<f64>());
        tokio::time::sleep_until((due + spread).into()).await;
    }
    shared.series.attempted.increment(1);
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = shared
        .http
        .post(&shared.destination.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", &job.id)
        .header(signature::ID, &job.id)
        .header(signature::TIMESTAMP, timestamp)
        // A cheap clone: the bytes are shared, not copied.
        .body(job.body.clone());
    if let Some(run) = job.replay {
        request = request.header(super::REPLAY_HEADER, run.to_string());
    }
    if !shared.signer.is_empty() {
        let signed = shared
            .signer
            .sign(&job.id, timestamp, &job.body)
            .map_err(|err| Failure::Permanent(err.to_string()))?;
        request = request.header(signature::SIGNATURE, signed);
    }
    let trace = telemetry::propagation::current_or(&job.trace.clone().unwrap_or_default());
    let mut trace_headers = reqwest::header::HeaderMap::new();
    telemetry::propagation::into_http(&trace, &mut trace_headers);
    request = request.headers(trace_headers);
    let response = request.send().await.map_err(|err| Failure::Retry {
        reason: format!("request failed: {err}"),
        retry_after: None,
    })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| pace::retry_after(v, std::time::SystemTime::now()));
    shared.answered(status, retry_after);
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("answered {status}");
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Err(Failure::Retry {
            reason,
            retry_after,
        })
    } else {
        Err(Failure::Permanent(reason))
    }
}
