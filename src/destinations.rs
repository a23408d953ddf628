//! `eventide destinations`: pause, resume and list webhook destinations
//! against the broker (`--kafka-brokers`, or the all-in-one's own broker at
//! `--local-broker-listen`), and mint signing secrets.

use anyhow::{Context, bail};
use processor::webhooks::Destination;
use processor::webhooks::control;
use rdkafka::ClientConfig;
use schemas::{Codec, DestinationState};

use crate::cli::{Cli, DestinationsAction};

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

/// Prints every destination's state, lag, last success and last error.
async fn list(
    cli: &Cli,
    kafka: &ClientConfig,
    codec: &Codec,
    configured: &[Destination],
) -> anyhow::Result<()> {
    let statuses = control::statuses(
        kafka,
        codec,
        configured,
        &cli.delivery.delivery_group_prefix,
    )
    .await?;
    println!("destination\tstate\tlag\tsince\tby\treason\tlast success\tlast error at\tlast error");
    for status in statuses {
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            status.destination,
            if status.paused { "paused" } else { "active" },
            or_dash(status.lag.map(|lag| lag.to_string())),
            or_dash(status.changed_at),
            or_dash(status.changed_by),
            or_dash(status.reason),
            or_dash(status.last_success_at),
            or_dash(status.last_error_at),
            or_dash(status.last_error),
        );
    }
    Ok(())
}
