//! Starting services and running them until shutdown.
//!
//! A service that fails cancels the others; shutdown has a deadline, after
//! which the process gives up with a distinct error.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use schemas::keys::{ApiKeys, Auth, DEV_ANALYST_KEY, DEV_PRODUCER_KEY};
use schemas::registry::RegistryClient;
use schemas::{Codec, SchemaSource, TopicNames, TopicPartitions};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::{Cli, Command, CommonArgs, SchemasAction};
use crate::kafka::{TopicLayout, client_config, ensure_topics};
use crate::local_broker::LocalBroker;

/// Timeout of each schema-registry call.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

/// The codec for the configured schema source.
///
/// # Errors
///
/// If the registry client cannot be built.
pub fn codec(common: &CommonArgs) -> anyhow::Result<Codec> {
    let source = match &common.schema_registry_url {
        Some(url) => {
            let client = RegistryClient::new(url, REGISTRY_TIMEOUT, &common.registry_auth())?;
            SchemaSource::Registry(Arc::new(match common.schema_registry_auto_register {
                true => client,
                false => client.lookup_only(),
            }))
        }
        None => SchemaSource::Catalogue,
    };
    Ok(Codec::new(
        source,
        TopicNames::with_prefix(common.topic_prefix.clone()),
    )?)
}

/// Runs one slow step of the start unless a stop signal comes first: then
/// `None`, and the start ends at once.
async fn unless_stopped<T>(
    shutdown: &CancellationToken,
    step: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        done = step => done.map(Some),
        () = shutdown.cancelled() => {
            info!("stopped during start");
            Ok(None)
        }
    }
}

/// Runs what the command line asks for until `shutdown` is cancelled.
///
/// # Errors
///
/// If a service fails to start or stops with an error, or shutdown overran
/// its deadline.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::HashKey { key }) => return hash_key(key.as_deref()),
        Some(Command::Replay(args)) => return crate::replay::run(&cli, args).await,
        Some(Command::Destinations { action }) => {
            return crate::destinations::run(&cli, action).await;
        }
        Some(Command::Schemas {
            action: SchemasAction::Register,
        }) => return register_schemas(&cli.common).await,
        Some(Command::Send { url, key, item }) => {
            return crate::tools::send(url, key, item.as_deref()).await;
        }
        Some(Command::Loadgen {
            url,
            key,
            rate,
            duration,
            mix,
            batch,
        }) => {
            return crate::tools::loadgen(url, key, *rate, *duration, mix.clone(), *batch).await;
        }
        Some(Command::Migrate {
            scylla_replication_factor,
        }) => return migrate(&cli.common, *scylla_replication_factor).await,
        _ => {}
    }
    cli.ingest.validate()?;
    telemetry::process::report(env!("CARGO_PKG_VERSION"));
    let codec = codec(&cli.common)?;
    warn_of_id_collisions(&cli.common).await;
    if cli.common.schema_registry_url.is_some() && !cli.common.schema_registry_auto_register {
        // Lookup-only: a schema missing from the registry stops the start.
        codec
            .resolve_all()
            .await
            .context("checking the schema registry")?;
    }
    let mut services = JoinSet::new();
    let mut stages = Vec::new();
    let mut local_broker = None;

    let wants = |command: Command| cli.command.is_none() || cli.command.as_ref() == Some(&command);
    // Every listener before anything slow (the broker, topics): a taken
    // port fails the start at once, naming its address.
    let ingest_listener = match wants(Command::Ingest) {
        true => Some(bind(cli.ingest.listen).await?),
        false => None,
    };
    let processor_listener = match wants(Command::Processor) {
        true => Some(bind(cli.processor.listen).await?),
        false => None,
    };
    let query_listener = match wants(Command::QueryApi) {
        true => Some(bind(cli.query.listen).await?),
        false => None,
    };

    let brokers = match (&cli.command, &cli.common.kafka_brokers) {
        (_, Some(brokers)) => brokers.clone(),
        (None, None) => {
            let start = LocalBroker::start(
                &cli.common.data_dir,
                cli.common.local_broker_listen,
                cli.common.local_broker_maintenance,
                cli.common.min_free_disk,
            );
            let Some(broker) = unless_stopped(&shutdown, async { Ok(start.await?) }).await? else {
                return Ok(());
            };
            let brokers = broker.bootstrap_servers();
            local_broker = Some(broker);
            brokers
        }
        (Some(_), None) => {
            bail!("--kafka-brokers (EVENTIDE_KAFKA_BROKERS) is required to run a single service")
        }
    };
    let kafka = client_config(&brokers, &cli.common.kafka.properties()?);
    if matches!(cli.command, None | Some(Command::CreateTopics)) {
        let partitions = TopicPartitions {
            data: cli.common.partitions,
            low_volume: cli.common.low_volume_partitions,
        };
        let layout = TopicLayout {
            partitions,
            replication: cli.common.replication_factor,
            retention: cli.common.retention,
        };
        let created = unless_stopped(&shutdown, async {
            ensure_topics(&kafka, codec.names(), layout)
                .await
                .context("creating topics")
        })
        .await?;
        if created.is_none() {
            return Ok(());
        }
        if cli.command.is_some() {
            info!(
                partitions = partitions.data,
                low_volume_partitions = partitions.low_volume,
                "topics ready"
            );
            return Ok(());
        }
    }
    // Only the HTTP services authenticate callers; a processor needs no keys.
    let auth = match cli.command {
        Some(Command::Processor | Command::Delivery) => Auth::Disabled,
        _ => auth(&cli)?,
    };
    let metrics = crate::telemetry::prometheus();

    if let Some(listener) = ingest_listener {
        let config = ingest::Config {
            settings: cli.ingest.clone(),
            kafka: kafka.clone(),
            codec: codec.clone(),
            auth: auth.clone(),
            metrics: metrics.clone(),
            http: cli.common.http,
            // The broker's log is in the data dir only on the local default.
            disk: local_broker.as_ref().map(LocalBroker::disk),
        };
        let stage = Stage::next(&mut stages);
        let token = stage.stop.clone();
        services.spawn(supervised("ingest", shutdown.clone(), stage, async move {
            ingest::run(config, listener, token).await
        }));
    }
    if let Some(listener) = processor_listener {
        let config = processor_config(&cli, &kafka, &codec, metrics.clone())?;
        let stage = Stage::next(&mut stages);
        let token = stage.stop.clone();
        services.spawn(supervised(
            "processor",
            shutdown.clone(),
            stage,
            async move { processor::run(config, Some(listener), token).await },
        ));
    }
    if wants(Command::Processor) || cli.command == Some(Command::Delivery) {
        // Fail at start, not in the task, on a bad destinations file.
        cli.delivery
            .destinations()
            .context("delivery destinations")?;
        let config = processor::webhooks::DeliveryConfig {
            settings: cli.delivery.clone(),
            kafka: kafka.clone(),
            codec: codec.clone(),
        };
        let stage = Stage::next(&mut stages);
        let token = stage.stop.clone();
        services.spawn(supervised(
            "delivery",
            shutdown.clone(),
            stage,
            async move { processor::webhooks::run(config, token).await },
        ));
    }
    if let Some(listener) = query_listener {
        let mut settings = cli.query.clone();
        // The console is on by default on the local default (the in-process
        // broker); elsewhere it takes `--console`.
        settings.console |= local_broker.is_some();
        let config = query_api::Config {
            settings,
            store: cli.common.store()?,
            auth: auth.clone(),
            metrics: metrics.clone(),
            http: cli.common.http,
            admin: Some(query_api::routes::admin::Admin {
                kafka: kafka.clone(),
                codec: codec.clone(),
                delivery: cli.delivery.clone(),
                limits: processor::replay::rejects::Limits {
                    max_clock_skew: cli.ingest.max_clock_skew,
                    max_batch: cli.ingest.max_batch,
                },
            }),
        };
        let stage = Stage::next(&mut stages);
        let token = stage.stop.clone();
        services.spawn(supervised(
            "query-api",
            shutdown.clone(),
            stage,
            async move { query_api::run(config, listener, token).await },
        ));
    }
    if cli.command.is_none() {
        print_welcome(&cli, &brokers);
    }
    tokio::spawn(stop_in_order(shutdown.clone(), stages));
    let broker_gone = Arc::new(std::sync::OnceLock::new());
    if let Some(broker) = &local_broker {
        let failure = broker.failure();
        let broker_gone = Arc::clone(&broker_gone);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let reason = failure.wait().await;
            error!(%reason, "the in-process broker is gone; shutting down");
            drop(broker_gone.set(reason));
            shutdown.cancel();
        });
    }

    let mut failed = false;
    let mut deadline = None;
    loop {
        let next = match deadline {
            None => tokio::select! {
                next = services.join_next() => next,
                () = shutdown.cancelled() => {
                    deadline = Some(tokio::time::Instant::now() + cli.common.shutdown_timeout);
                    continue;
                }
            },
            Some(at) => match tokio::time::timeout_at(at, services.join_next()).await {
                Ok(next) => next,
                Err(_) => {
                    services.abort_all();
                    bail!(
                        "shutdown did not finish within {:?}",
                        cli.common.shutdown_timeout
                    );
                }
            },
        };
        match next {
            None => break,
            Some(Ok(ok)) => failed |= !ok,
            Some(Err(err)) => {
                error!(error = %err, "service task panicked");
                failed = true;
                shutdown.cancel();
            }
        }
    }
    if let Some(broker) = local_broker {
        tokio::task::spawn_blocking(move || broker.stop())
            .await
            .ok();
    }
    if let Some(reason) = broker_gone.get() {
        bail!("the in-process broker is gone: {reason}");
    }
    if failed {
        bail!("a service failed; see the log above");
    }
    Ok(())
}

/// The processor's configuration from the command line.
///
/// # Errors
///
/// When the ScyllaDB settings do not go together.
pub fn processor_config(
    cli: &Cli,
    kafka: &ClientConfig,
    codec: &Codec,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> Result<processor::Config, crate::cli::ScyllaArgsError> {
    let mut settings = cli.processor.clone();
    if settings.instance_id.is_none() && cli.command.is_none() {
        // The all-in-one process is one stable member: static membership
        // gets its partitions back at once after a restart.
        settings.instance_id = Some("eventide-local".into());
    }
    Ok(processor::Config {
        settings,
        kafka: kafka.clone(),
        codec: codec.clone(),
        store: cli.common.store()?,
        metrics,
        http: cli.common.http,
    })
}

/// Applies the ScyllaDB schema; refuses without contact points.
async fn migrate(common: &CommonArgs, replication_factor: u32) -> anyhow::Result<()> {
    let schemas::store::StoreLocation::Scylla(cluster) = common.store()? else {
        bail!(
            "migrate needs --scylla-contact-points (EVENTIDE_SCYLLA_CONTACT_POINTS); \
             the SQLite store creates its tables itself"
        );
    };
    let applied = schemas::cql::migrate(&cluster, replication_factor)
        .await
        .context("migrating the ScyllaDB schema")?;
    info!(keyspace = %cluster.keyspace, ?applied, "ScyllaDB schema is current");
    Ok(())
}

/// How callers authenticate: the keys file, else the development keys in
/// the all-in-one process, else only with `--insecure-no-auth`.
fn auth(cli: &Cli) -> anyhow::Result<Auth> {
    if let Some(path) = &cli.common.keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading keys file {}", path.display()))?;
        return Ok(Auth::Keys(ApiKeys::from_toml(&text)?));
    }
    if cli.common.insecure_no_auth {
        warn!("--insecure-no-auth: every request is accepted without an API key");
        return Ok(Auth::Disabled);
    }
    if cli.command.is_none() {
        warn!(
            producer = DEV_PRODUCER_KEY,
            analyst = DEV_ANALYST_KEY,
            "no --keys-file: accepting the development keys; never do this in production"
        );
        return Ok(Auth::Keys(ApiKeys::development()));
    }
    bail!(
        "--keys-file (EVENTIDE_KEYS_FILE) is required to run a single service; --insecure-no-auth disables authentication"
    )
}

/// On a registry, warns when it gives one of the catalogue's pinned ids to
/// another schema: records written on the catalogue (the local default)
/// would be misread, unless none are left on the topics.
async fn warn_of_id_collisions(common: &CommonArgs) {
    let Some(url) = &common.schema_registry_url else {
        return;
    };
    let Ok(client) = RegistryClient::new(url, REGISTRY_TIMEOUT, &common.registry_auth()) else {
        return;
    };
    match client.catalogue_collisions().await {
        Ok(ids) if ids.is_empty() => {}
        Ok(ids) => warn!(
            ?ids,
            "the schema registry gives these catalogue ids to other schemas: records written without a registry (the catalogue) would be misread; if any are on the topics, run `eventide schemas register` on a registry that has not handed those ids out"
        ),
        Err(err) => {
            warn!(error = %err, "could not compare the registry's ids with the catalogue's")
        }
    }
}

/// `eventide schemas register`: the catalogue into the registry under its
/// pinned ids; prints a line per version.
async fn register_schemas(common: &CommonArgs) -> anyhow::Result<()> {
    let Some(url) = &common.schema_registry_url else {
        bail!(
            "--schema-registry-url (EVENTIDE_SCHEMA_REGISTRY_URL) names the registry to write to"
        );
    };
    let client = RegistryClient::new(url, REGISTRY_TIMEOUT, &common.registry_auth())?;
    let names = TopicNames::with_prefix(common.topic_prefix.clone());
    let imported = client
        .import_catalogue(&names)
        .await
        .context("importing the schema catalogue")?;
    println!("subject\tversion\tcatalogue id\tregistry id\tstatus");
    for version in imported {
        let done = if version.already_there {
            "already there"
        } else {
            "imported"
        };
        println!(
            "{}\t{}\t{}\t{}\t{done}",
            version.subject, version.version, version.id, version.id
        );
    }
    Ok(())
}

fn hash_key(key: Option<&str>) -> anyhow::Result<()> {
    let key = match key {
        Some(key) => key.to_owned(),
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the key from standard input")?;
            line.trim().to_owned()
        }
    };
    anyhow::ensure!(!key.is_empty(), "the key is empty");
    println!("{}", schemas::keys::hash_key(&key));
    Ok(())
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// One service's place in the shutdown order.
#[derive(Debug, Clone, Default)]
struct Stage {
    /// Tells the service to stop.
    stop: CancellationToken,
    /// Cancelled once the service has stopped (or panicked).
    done: CancellationToken,
}

impl Stage {
    /// A new stage after those already in `stages`.
    fn next(stages: &mut Vec<Stage>) -> Stage {
        let stage = Stage::default();
        stages.push(stage.clone());
        stage
    }
}

/// On shutdown, stops services one after the other in the order they were
/// started — ingest (stop accepting, finish in-flight requests, flush the
/// producer), then the processor (flush the store, commit offsets), then the
/// query API — as STYLE.md orders it: stop accepting, await in-flight acks,
/// flush the producer, flush the store, commit offsets. The query API keeps
/// answering until the store's final flush is in.
async fn stop_in_order(shutdown: CancellationToken, stages: Vec<Stage>) {
    shutdown.cancelled().await;
    for stage in stages {
        stage.stop.cancel();
        stage.done.cancelled().await;
    }
}

/// Runs a service; if it fails, cancels every other. True when it ended well.
async fn supervised<E: std::fmt::Display>(
    name: &'static str,
    shutdown: CancellationToken,
    stage: Stage,
    service: impl Future<Output = Result<(), E>>,
) -> bool {
    let _done = stage.done.drop_guard();
    match service.await {
        Ok(()) => {
            info!(service = name, "stopped");
            true
        }
        Err(err) => {
            error!(service = name, error = %err, "failed; shutting everything down");
            shutdown.cancel();
            false
        }
    }
}

fn print_welcome(cli: &Cli, brokers: &str) {
    let console = format!("http://{}/console", cli.query.listen);
    let key = uuid::Uuid::new_v4();
    println!(
        "\nEventide is running on the local defaults.\n\
         \x20 ingest      http://{ingest}\n\
         \x20 query api   http://{query}\n\
         \x20 console     {console}  (sign in with `{DEV_ANALYST_KEY}`)\n\
         \x20 kafka       {brokers}\n\
         \x20 data dir    {data}\n\n\
         Try (development key `{DEV_PRODUCER_KEY}`):\n\
         \x20 curl -i -X POST http://{ingest}/v1/increment -H 'authorization: Bearer {DEV_PRODUCER_KEY}' -H 'content-type: application/json' -d '{{\"key\": \"{key}\", \"value\": 3}}'\n\
         \x20 curl -H 'authorization: Bearer {DEV_ANALYST_KEY}' http://{query}/v1/counters/{key}\n\n\
         Send a click, then see it in the console ({console}/links/hello):\n\
         \x20 curl -i -X POST http://{ingest}/v1/redirects -H 'authorization: Bearer {DEV_PRODUCER_KEY}' -H 'content-type: application/json' -d '{{\"short_code\": \"hello\", \"full_url\": \"https://example.com/\", \"client_id\": 1, \"user_agent\": \"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\"}}'\n",
        ingest = cli.ingest.listen,
        query = cli.query.listen,
        data = cli.common.data_dir.display(),
    );
}
