//! `eventide destinations`: pause, resume and list webhook destinations
//! against the broker (`--kafka-brokers`, or the all-in-one's own broker at
//! `--local-broker-listen`), and mint signing secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use processor::webhooks::control::{self, States};
use processor::webhooks::{Destination, Source};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schemas::{Codec, DestinationState, Topic};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, DestinationsAction};

/// How long a broker call of the tool may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `action`.
///
/// # Errors
///
/// If the broker cannot be reached, or the name is not a destination.
pub async fn run(cli: &Cli, action: &DestinationsAction) -> anyhow::Result<()> {
    if let DestinationsAction::NewSecret = action {
        println!("{}", processor::webhooks::signature::new_secret());
        return Ok(());
    }
    let brokers = cli
        .common
        .kafka_brokers
        .clone()
        .unwrap_or_else(|| cli.common.local_broker_listen.to_string());
    let kafka = crate::kafka::client_config(&brokers, &cli.common.kafka.properties()?);
    let codec = crate::pipeline::codec(&cli.common)?;
    let configured = cli
        .delivery
        .destinations()
        .context("reading the destinations")?;
    match action {
        DestinationsAction::Pause { name, reason } => {
            change(&kafka, &codec, &configured, name, true, reason).await
        }
        DestinationsAction::Resume { name, reason } => {
            change(&kafka, &codec, &configured, name, false, reason).await
        }
        DestinationsAction::List => list(cli, &kafka, &codec, &configured).await,
        DestinationsAction::NewSecret => Ok(()),
    }
}

/// Publishes `name`'s new state.
async fn change(
    kafka: &ClientConfig,
    codec: &Codec,
    configured: &[Destination],
    name: &str,
    paused: bool,
    reason: &str,
) -> anyhow::Result<()> {
    if !configured.is_empty() && !configured.iter().any(|d| d.name == name) {
        let known: Vec<&str> = configured.iter().map(|d| d.name.as_str()).collect();
        bail!("no destination is named {name:?}; configured: {known:?}");
    }
    let state = DestinationState {
        destination: name.to_owned(),
        paused,
        changed_at: schemas::time::now_micros(),
        changed_by: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
        reason: reason.to_owned(),
    };
    control::publish(kafka, codec, &state)
        .await
        .with_context(|| format!("writing {name}'s state"))?;
    println!("{name}: {}", if paused { "paused" } else { "resumed" });
    Ok(())
}

/// Prints every destination's state and lag.
async fn list(
    cli: &Cli,
    kafka: &ClientConfig,
    codec: &Codec,
    configured: &[Destination],
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let states: States = control::follow(kafka, codec.clone(), stop.clone()).await?;
    stop.cancel();
    let mut rows: BTreeMap<String, (Option<DestinationState>, Option<i64>)> = BTreeMap::new();
    for state in states.snapshot() {
        rows.insert(state.destination.clone(), (Some(state), None));
    }
    for destination in configured {
        let topic = codec.names().name(match destination.source {
            Source::Events => Topic::Events,
            Source::Notifications => Topic::Notifications,
        });
        let group = format!(
            "{}-{}",
            cli.delivery.delivery_group_prefix, destination.name
        );
        let lag = {
            let kafka = kafka.clone();
            tokio::task::spawn_blocking(move || lag(&kafka, &group, &topic)).await??
        };
        rows.entry(destination.name.clone()).or_default().1 = Some(lag);
    }
    println!("destination\tstate\tlag\tsince\tby\treason");
    for (name, (state, lag)) in rows {
        let lag = lag.map_or_else(|| "-".to_owned(), |lag| lag.to_string());
        match state {
            Some(state) => println!(
                "{name}\t{}\t{lag}\t{}\t{}\t{}",
                if state.paused { "paused" } else { "active" },
                chrono::DateTime::from_timestamp_micros(state.changed_at)
                    .map(|at| at.to_rfc3339())
                    .unwrap_or_default(),
                state.changed_by,
                state.reason
            ),
            None => println!("{name}\tactive\t{lag}\t-\t-\t-"),
        }
    }
    Ok(())
}

/// Records of `topic` that the consumer group `group` has not finished.
fn lag(kafka: &ClientConfig, group: &str, topic: &str) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = kafka.clone().set("group.id", group).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    let committed = consumer.committed_offsets(partitions, TIMEOUT)?;
    let mut lag = 0;
    for element in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, element.partition(), TIMEOUT)?;
        let done = match element.offset() {
            Offset::Offset(offset) => offset,
            _ => low,
        };
        lag += (high - done).max(0);
    }
    Ok(lag)
}
