//! `eventide replay`: a destination's dead letters back to it, or
//! processing's back into processing, with a progress bar and a count.

use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use processor::replay::{self, Selected, Selection, Target};

use crate::cli::{Cli, ReplayArgs};

/// Runs `eventide replay`.
///
/// # Errors
///
/// If the selection is not valid, or the broker cannot be used.
pub async fn run(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<()> {
    if args.rejects {
        return rejects::run(cli, args).await;
    }
    let target = Target::parse(
        args.destination.as_deref(),
        args.stage.as_deref(),
        args.topic.as_deref(),
    )
    .map_err(|err| anyhow::anyhow!("--{}: {err} (or --rejects --application <id>)", err.field()))?;
    if let Target::Destination(name) = &target {
        let configured = cli
            .delivery
            .destinations()
            .context("reading the destinations")?;
        if !configured.is_empty() && !configured.iter().any(|d| &d.name == name) {
            let known: Vec<&str> = configured.iter().map(|d| d.name.as_str()).collect();
            bail!("no destination is named {name:?}; configured: {known:?}");
        }
    }
    let selection = Selection {
        target,
        since: args
            .since
            .as_deref()
            .map(|t| micros("since", t))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| micros("until", t))
            .transpose()?,
        user_id: args.user_id.clone(),
    };
    let kafka = kafka(cli)?;
    let codec = crate::pipeline::codec(&cli.common)?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} dead letters read, {msg} [{elapsed}]")
            .context("progress template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let requested_by = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let dry_run = args.dry_run;
    let started = std::time::Instant::now();
    let print = |selected: &Selected| {
        if dry_run {
            bar.suspend(|| {
                println!(
                    "{}\t{}\t{}\t{}",
                    chrono::DateTime::from_timestamp_micros(selected.letter.received_at)
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default(),
                    selected.id,
                    selected.user_id.as_deref().unwrap_or("-"),
                    selected.letter.reason
                );
            });
        }
    };
    let (run_id, done) = replay::run(
        &kafka,
        &codec,
        &selection,
        &requested_by,
        dry_run,
        print,
        |progress| {
            bar.set_length(progress.total);
            bar.set_position(progress.read);
            bar.set_message(format!("{} selected", progress.replayed));
        },
    )
    .await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if dry_run {
        println!(
            "dry run: would replay {} record(s) ({} dead letter(s) of records already counted; {} read)",
            done.replayed, done.repeats, done.read
        );
    } else {
        println!(
            "replay {run_id}: {} record(s) replayed to {} ({} dead letter(s) of records already replayed in this run; {} read in {seconds:.1} s)",
            done.replayed,
            selection.target.stage(),
            done.repeats,
            done.read
        );
    }
    Ok(())
}

/// The broker the tool talks to: `--kafka-brokers`, or the all-in-one's.
fn kafka(cli: &Cli) -> anyhow::Result<rdkafka::ClientConfig> {
    let brokers = cli
        .common
        .kafka_brokers
        .clone()
        .unwrap_or_else(|| cli.common.local_broker_listen.to_string());
    Ok(crate::kafka::client_config(
        &brokers,
        &cli.common.kafka.properties()?,
    ))
}

/// An RFC 3339 time of `--<field>` as microseconds since the epoch.
pub(crate) fn micros(field: &'static str, text: &str) -> anyhow::Result<i64> {
    processor::replay::parse_time(field, text).map_err(|err| anyhow::anyhow!("--{err}"))
}

/// `eventide replay --rejects`: refused requests judged again by ingest's
/// validation, now.
mod rejects {
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use ingest::resubmit::{resubmit, resubmittable};
    use ingest::validation::Context;
    use processor::scan::Scan;
    use rdkafka::message::{Header, Message, OwnedHeaders};
    use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
    use schemas::{Reject, Topic};
    use uuid::Uuid;

    use super::{Cli, ReplayArgs, kafka, micros};

    /// How long reading the rejects may take.
    const SCAN_TIMEOUT: Duration = Duration::from_secs(600);

    /// Counts of one run.
    #[derive(Debug, Default)]
    struct Counts {
        read: u64,
        resubmitted: u64,
        records: u64,
        refused_again: u64,
        not_resubmittable: u64,
        repeats: u64,
    }

    pub(super) async fn run(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<()> {
        let Some(application) = args.application.as_deref() else {
            anyhow::bail!("--rejects needs --application <id>: whose refused requests to resubmit");
        };
        let since = args
            .since
            .as_deref()
            .map(|t| micros("since", t))
            .transpose()?;
        let until = args
            .until
            .as_deref()
            .map(|t| micros("until", t))
            .transpose()?;
        let kafka = kafka(cli)?;
        let codec = crate::pipeline::codec(&cli.common)?;
        let event_types = ingest::event_types::EventTypes::compile()
            .map_err(|err| anyhow::anyhow!("event types: {err}"))?;
        let max_skew_micros =
            i64::try_from(cli.ingest.max_clock_skew.as_micros()).unwrap_or(i64::MAX);
        let producer: FutureProducer = kafka
            .clone()
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .context("creating the producer")?;
        let run_id = Uuid::now_v7();
        let run = run_id.to_string();
        let topic = codec.names().name(Topic::IngestRejects);
        let mut scan = Scan::open(&kafka, &topic, SCAN_TIMEOUT).await?;
        let deadline = Instant::now() + SCAN_TIMEOUT;
        let mut counts = Counts::default();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut pending: Vec<DeliveryFuture> = Vec::new();
        while let Some(message) = scan.next(deadline).await? {
            counts.read += 1;
            let Some(payload) = message.payload() else {
                continue;
            };
            let Ok(reject) = codec.decode::<Reject>(payload).await else {
                continue;
            };
            if reject.application_id != application
                || since.is_some_and(|since| reject.received_at < since)
                || until.is_some_and(|until| reject.received_at >= until)
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
            let outcome = resubmit(&reject, &context, cli.ingest.max_batch);
            counts.records += outcome.accepted.len() as u64;
            counts.refused_again += outcome.refused.len() as u64;
            if args.dry_run {
                let reasons: Vec<String> =
                    outcome.refused.iter().map(ToString::to_string).collect();
                println!(
                    "{}\t{}\t{} record(s) would be written\t{} refused again{}",
                    chrono::DateTime::from_timestamp_micros(reject.received_at)
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default(),
                    reject.endpoint,
                    outcome.accepted.len(),
                    outcome.refused.len(),
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", reasons.join("; "))
                    }
                );
                continue;
            }
            let headers = || {
                OwnedHeaders::new().insert(Header {
                    key: processor::webhooks::REPLAY_HEADER,
                    value: Some(&run),
                })
            };
            for record in &outcome.accepted {
                let payload = record.encode(&codec).await?;
                let name = codec.names().name(record.topic());
                let key = record.key();
                pending.push(
                    producer
                        .send_result(
                            FutureRecord::to(&name)
                                .key(&key)
                                .payload(&payload)
                                .headers(headers()),
                        )
                        .map_err(|(err, _)| err)?,
                );
            }
            for err in &outcome.refused {
                let mut again = ingest::rejects::reject_record(
                    application,
                    &reject.endpoint,
                    err,
                    &reject.body,
                    reject.idempotency_key.as_deref(),
                );
                again.replay_run = Some(run.clone());
                let payload = codec.encode(&again).await?;
                pending.push(
                    producer
                        .send_result(
                            FutureRecord::to(&topic)
                                .key(application)
                                .payload(&payload)
                                .headers(headers()),
                        )
                        .map_err(|(err, _)| err)?,
                );
            }
        }
        for delivery in pending {
            delivery
                .await
                .map_err(|_| anyhow::anyhow!("a replayed record was cancelled"))?
                .map_err(|(err, _)| err)
                .context("writing a replayed record")?;
        }
        let verb = if args.dry_run {
            "dry run: would resubmit"
        } else {
            "replay"
        };
        println!(
            "{verb} {run_id}: {} refused request(s) of {application} resubmitted: {} record(s) written, {} refused again; {} not resubmittable (refused for how they arrived), {} repeat(s) skipped; {} read",
            counts.resubmitted,
            counts.records,
            counts.refused_again,
            counts.not_resubmittable,
            counts.repeats,
            counts.read
        );
        Ok(())
    }
}
