//! `eventide replay`: a destination's dead letters back to it, or
//! processing's back into processing, with a progress bar and a count.

use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use processor::replay::{self, Selected, Selection, Target};
use schemas::Topic;

use crate::cli::{Cli, ReplayArgs};

/// Runs `eventide replay`.
///
/// # Errors
///
/// If the selection is not valid, or the broker cannot be used.
pub async fn run(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<()> {
    let target = match (&args.destination, &args.stage, &args.topic) {
        (Some(name), None, None) => Target::Destination(name.clone()),
        (None, Some(stage), topic) if stage == "processing" => Target::Processing {
            topic: topic.as_deref().map(logical_topic).transpose()?,
        },
        (None, Some(stage), _) => {
            bail!("--stage {stage:?}: only `processing` is replayed by stage")
        }
        (Some(_), _, _) => {
            bail!("--destination replays one destination; --stage and --topic do not apply")
        }
        (None, None, _) => bail!("name what to replay: --destination <name> or --stage processing"),
    };
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
            .map(|t| micros("--since", t))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| micros("--until", t))
            .transpose()?,
        user_id: args.user_id.clone(),
    };
    let brokers = cli
        .common
        .kafka_brokers
        .clone()
        .unwrap_or_else(|| cli.common.local_broker_listen.to_string());
    let kafka = crate::kafka::client_config(&brokers, &cli.common.kafka.properties()?);
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

/// A logical topic by its default name.
fn logical_topic(name: &str) -> anyhow::Result<Topic> {
    Topic::ALL
        .into_iter()
        .find(|topic| topic.default_name() == name)
        .with_context(|| format!("--topic {name:?} is not a topic (e.g. `increments`, `events`)"))
}

/// An RFC 3339 time as microseconds since the epoch.
fn micros(flag: &str, text: &str) -> anyhow::Result<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("{flag} {text:?} must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z")
    })?;
    Ok(at.timestamp_micros())
}
