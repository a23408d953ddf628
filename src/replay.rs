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
    let (since, until) = window(args)?;
    let selection = Selection {
        target,
        since,
        until,
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

/// `--since` and `--until` as microseconds since the epoch.
fn window(args: &ReplayArgs) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    let time = |field, text: &Option<String>| text.as_deref().map(|t| micros(field, t)).transpose();
    Ok((time("since", &args.since)?, time("until", &args.until)?))
}

/// An RFC 3339 time of `--<field>` as microseconds since the epoch.
pub(crate) fn micros(field: &'static str, text: &str) -> anyhow::Result<i64> {
    processor::replay::parse_time(field, text).map_err(|err| anyhow::anyhow!("--{err}"))
}

/// `eventide replay --rejects`: refused requests judged again by ingest's
/// validation, now.
mod rejects {
    use processor::replay::rejects::{self, Judged, Limits, RejectsSelection};

    use super::{Cli, ReplayArgs, kafka, window};

    pub(super) async fn run(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<()> {
        let Some(application) = args.application.clone() else {
            anyhow::bail!("--rejects needs --application <id>: whose refused requests to resubmit");
        };
        let (since, until) = window(args)?;
        let selection = RejectsSelection {
            application,
            since,
            until,
        };
        let limits = Limits {
            max_clock_skew: cli.ingest.max_clock_skew,
            max_batch: cli.ingest.max_batch,
        };
        let kafka = kafka(cli)?;
        let codec = crate::pipeline::codec(&cli.common)?;
        let dry_run = args.dry_run;
        let print = |judged: &Judged<'_>| {
            if dry_run {
                println!(
                    "{}\t{}\t{} record(s) would be written\t{} refused again{}",
                    chrono::DateTime::from_timestamp_micros(judged.reject.received_at)
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default(),
                    judged.reject.endpoint,
                    judged.records,
                    judged.refused.len(),
                    if judged.refused.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", judged.refused.join("; "))
                    }
                );
            }
        };
        let (run_id, counts) =
            rejects::run(&kafka, &codec, &selection, limits, dry_run, print).await?;
        let verb = if dry_run {
            "dry run: would resubmit"
        } else {
            "replay"
        };
        println!(
            "{verb} {run_id}: {} refused request(s) of {} resubmitted: {} record(s) written, {} refused again; {} not resubmittable (refused for how they arrived), {} repeat(s) skipped; {} read",
            counts.resubmitted,
            selection.application,
            counts.records,
            counts.refused_again,
            counts.not_resubmittable,
            counts.repeats,
            counts.read
        );
        Ok(())
    }
}
