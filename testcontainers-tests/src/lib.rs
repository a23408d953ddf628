//! End-to-end harness: the whole pipeline in one test process.
//!
//! [`Pipeline::start`] starts the in-process Kafka-API broker (or uses the
//! Kafka named by `EVENTIDE_TEST_KAFKA_BROKERS`), creates this test's own
//! topics, and runs ingest, processor and query API on free ports against
//! its own data dir. Every test gets its own topics, group id and data dir,
//! so tests run in parallel. Dropping the pipeline stops everything.
//!
//! A processor task that ends with an error or a panic fails the test at
//! once: every wait and read of the harness returns that error instead of
//! polling on until its deadline.
//!
//! Container suites (Kafka or Redpanda, a schema registry, ScyllaDB) run the
//! same scenarios where Docker exists. Where it does not, each of their tests
//! is reported as skipped by [`docker_or_skip`] (stderr and the skip report
//! `.ci/run` prints), never passed silently.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use eventide::kafka::{TopicLayout, client_config, ensure_topics};
use eventide::local_broker::LocalBroker;
use futures::FutureExt;
use rdkafka::ClientConfig;
use schemas::keys::{ApiKeys, Auth, DEV_ANALYST_KEY, DEV_PRODUCER_KEY};
use schemas::registry::RegistryClient;
use schemas::{Codec, SchemaSource, TopicNames};
use serde_json::Value;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Environment variable naming an external Kafka to run the scenarios on.
pub const EXTERNAL_BROKERS_ENV: &str = "EVENTIDE_TEST_KAFKA_BROKERS";

pub mod scenarios;
pub use eventide::wait::{POLL_INTERVAL, eventually};

/// How a pipeline is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Partitions of each data topic (redirects, increments, events).
    pub partitions: i32,
    /// Partitions of each low-volume topic (notifications, rejects, dead
    /// letters); 1, as the local default.
    pub low_volume_partitions: i32,
    /// The processor's flush interval.
    pub flush_interval: Duration,
    /// An external Kafka to use instead of the in-process broker (also taken
    /// from `EVENTIDE_TEST_KAFKA_BROKERS`).
    pub kafka_brokers: Option<String>,
    /// A schema registry to use instead of the compiled-in catalogue.
    pub schema_registry_url: Option<String>,
    /// How callers authenticate; the development keys by default.
    pub auth: Auth,
    /// Ingest's settings (listen address ignored: a free port is used).
    pub ingest: ingest::Settings,
    /// The key the harness reads counters with.
    pub analyst_key: String,
    /// Processors join with a stable `group.instance.id` (static membership).
    /// tansu never expires a static member that left, so scenarios where a
    /// processor leaves for good use dynamic membership.
    pub static_membership: bool,
    /// The processor's session rules file; the shipped rules when unset.
    pub rules_file: Option<PathBuf>,
    /// How long a partition must be idle before timers fire on processing time.
    pub idle_grace: Duration,
    /// Webhook delivery, run beside the processor when set.
    pub delivery: Option<processor::webhooks::Settings>,
    /// The store; the SQLite file in the pipeline's data dir when unset.
    pub store: Option<schemas::store::StoreLocation>,
    /// How long topics keep records; 7 days, as the local default.
    pub retention: Duration,
    /// How often the in-process broker deletes records past retention.
    pub broker_maintenance: Duration,
    /// The processor's country database (`--geoip-db`).
    pub geoip_db: Option<PathBuf>,
    /// The processor's `--max-dimension-values`.
    pub max_dimension_values: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            partitions: 4,
            low_volume_partitions: 1,
            flush_interval: Duration::from_millis(200),
            kafka_brokers: std::env::var(EXTERNAL_BROKERS_ENV)
                .ok()
                .filter(|b| !b.is_empty()),
            schema_registry_url: None,
            auth: Auth::Keys(ApiKeys::development()),
            // Load tests must not meet the rate limit; its own test sets one per key.
            ingest: ingest::Settings {
                rate_limit: 1_000_000,
                ..ingest::Settings::default()
            },
            analyst_key: DEV_ANALYST_KEY.to_owned(),
            static_membership: true,
            rules_file: None,
            idle_grace: Duration::from_secs(1),
            delivery: None,
            store: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            broker_maintenance: Duration::from_secs(600),
            geoip_db: None,
            max_dimension_values: processor::clicks::DEFAULT_MAX_DIMENSION_VALUES,
        }
    }
}

/// A running processor task and the token that stops it gracefully.
#[derive(Debug)]
struct ProcessorTask {
    shutdown: CancellationToken,
    /// Ends with the processor's error, or its panic as an error.
    handle: JoinHandle<anyhow::Result<()>>,
}

/// The first failure (an error or a panic) of any of a pipeline's
/// processors; the harness's waits check it on every look.
#[derive(Debug, Clone, Default)]
struct ProcessorFailure(Arc<std::sync::Mutex<Option<String>>>);

impl ProcessorFailure {
    fn record(&self, failure: String) {
        let mut first = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(failure);
    }

    /// The failure as an error, if a processor failed.
    fn check(&self) -> anyhow::Result<()> {
        match &*self.0.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(failure) => anyhow::bail!("{failure}"),
            None => Ok(()),
        }
    }

    /// Runs `task` to its end; if it fails or panics, records that as
    /// `name`'s failure and returns it. A task aborted on purpose (a crash)
    /// never ends here, so it records nothing.
    async fn watch<E>(
        self,
        name: String,
        task: impl Future<Output = Result<(), E>>,
    ) -> anyhow::Result<()>
    where
        E: Into<anyhow::Error>,
    {
        let ended = match AssertUnwindSafe(task).catch_unwind().await {
            Ok(result) => result.map_err(Into::into),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-text payload".to_owned());
                Err(anyhow::anyhow!("panicked: {message}"))
            }
        };
        if let Err(err) = &ended {
            self.record(format!("{name} failed: {err:#}"));
        }
        ended
    }
}

/// The whole pipeline, running inside the test process.
#[derive(Debug)]
pub struct Pipeline {
    /// Base URL of ingest, e.g. `http://127.0.0.1:40123`.
    pub ingest_url: String,
    /// Base URL of the query API.
    pub query_url: String,
    /// Bootstrap servers of the broker in use.
    pub brokers: String,
    /// This test's topic names.
    pub names: TopicNames,
    /// The codec services use.
    pub codec: Codec,
    /// A shared HTTP client sending the development producer key.
    pub http: reqwest::Client,
    /// The key counter reads are made with.
    pub analyst_key: String,
    processor_config: processor::Config,
    static_membership: bool,
    /// The in-process broker's maintenance interval, kept for restarts.
    broker_maintenance: Duration,
    processors: Vec<ProcessorTask>,
    /// The first processor failure; every wait fails with it at once.
    processor_failure: ProcessorFailure,
    services: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
    /// Stopped on drop, after the services.
    broker: Option<LocalBroker>,
    /// Where the stopped broker listened, to restart it there.
    broker_addr: Option<SocketAddr>,
    /// Removed on drop, last.
    data_dir: TempDir,
}

impl Pipeline {
    /// Starts broker, topics, ingest, one processor and the query API.
    ///
    /// # Errors
    ///
    /// If any part fails to start.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        init_logs();
        let data_dir = tempfile::tempdir().context("temp data dir")?;
        let (broker, brokers) = match options.kafka_brokers.clone() {
            Some(external) => (None, external),
            None => {
                let broker = LocalBroker::start(
                    &data_dir.path().join("broker"),
                    free_addr()?,
                    options.broker_maintenance,
                    // The tests' own disk is not what they test.
                    Some(ingest::disk::Floor::Bytes(0)),
                )
                .await?;
                let brokers = broker.bootstrap_servers();
                (Some(broker), brokers)
            }
        };
        let run_id = Uuid::new_v4().simple().to_string();
        let names = TopicNames::with_prefix(format!("t{}-", &run_id[..12]));
        let source = match &options.schema_registry_url {
            Some(url) => SchemaSource::Registry(Arc::new(RegistryClient::new(
                url,
                Duration::from_secs(10),
                &schemas::registry::RegistryAuth::None,
            )?)),
            None => SchemaSource::Catalogue,
        };
        let codec = Codec::new(source, names.clone())?;
        let kafka = client_config(&brokers, &[]);
        let partitions = schemas::TopicPartitions {
            data: options.partitions,
            low_volume: options.low_volume_partitions,
        };
        let layout = TopicLayout {
            partitions,
            replication: 1,
            retention: options.retention,
        };
        ensure_topics(&kafka, &names, layout).await?;

        let shutdown = CancellationToken::new();
        let store = options.store.clone().unwrap_or_else(|| {
            schemas::store::StoreLocation::Sqlite(data_dir.path().join("eventide.db"))
        });
        let mut services = Vec::new();

        let ingest_listener = TcpListener::bind("127.0.0.1:0").await?;
        let ingest_url = format!("http://{}", ingest_listener.local_addr()?);
        let ingest_config = ingest::Config {
            settings: options.ingest.clone(),
            kafka: kafka.clone(),
            codec: codec.clone(),
            auth: options.auth.clone(),
            metrics: eventide::telemetry::prometheus(),
            http: http_serve::Limits::default(),
            disk: None,
        };
        let token = shutdown.clone();
        services.push(tokio::spawn(async move {
            if let Err(err) = ingest::run(ingest_config, ingest_listener, token).await {
                tracing::error!(error = %err, "ingest failed");
            }
        }));

        let query_listener = TcpListener::bind("127.0.0.1:0").await?;
        let query_url = format!("http://{}", query_listener.local_addr()?);
        let query_config = query_api::Config {
            settings: query_api::Settings {
                console: true,
                ..query_api::Settings::default()
            },
            store: store.clone(),
            auth: options.auth.clone(),
            metrics: eventide::telemetry::prometheus(),
            http: http_serve::Limits::default(),
            admin: Some(query_api::routes::admin::Admin {
                kafka: kafka.clone(),
                codec: codec.clone(),
                delivery: options.delivery.clone().unwrap_or_default(),
                limits: processor::replay::rejects::Limits {
                    max_clock_skew: options.ingest.max_clock_skew,
                    max_batch: options.ingest.max_batch,
                },
            }),
        };
        let token = shutdown.clone();
        services.push(tokio::spawn(async move {
            if let Err(err) = query_api::run(query_config, query_listener, token).await {
                tracing::error!(error = %err, "query api failed");
            }
        }));

        if let Some(settings) = &options.delivery {
            let config = processor::webhooks::DeliveryConfig {
                settings: settings.clone(),
                kafka: kafka.clone(),
                codec: codec.clone(),
            };
            let token = shutdown.clone();
            services.push(tokio::spawn(async move {
                if let Err(err) = processor::webhooks::run(config, token).await {
                    tracing::error!(error = %err, "delivery failed");
                }
            }));
        }

        let processor_config = processor::Config {
            settings: processor::Settings {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                flush_interval: options.flush_interval,
                group_id: format!("processor-{run_id}"),
                instance_id: None,
                // tansu takes ~3 s for each of JoinGroup and SyncGroup; a
                // session shorter than both together expires mid-join.
                session_timeout: Duration::from_secs(10),
                rules_file: options.rules_file.clone(),
                allowed_lateness: Duration::from_secs(5),
                idle_grace: options.idle_grace,
                fetch_wait: Duration::from_millis(50),
                geoip_db: options.geoip_db.clone(),
                max_dimension_values: options.max_dimension_values,
                ..processor::Settings::default()
            },
            kafka: kafka.clone(),
            codec: codec.clone(),
            store,
            metrics: eventide::telemetry::prometheus(),
            http: http_serve::Limits::default(),
        };
        let mut pipeline = Self {
            ingest_url,
            query_url,
            brokers,
            names,
            codec,
            http: client_with_key(DEV_PRODUCER_KEY)?,
            analyst_key: options.analyst_key.clone(),
            processor_config,
            static_membership: options.static_membership,
            broker_maintenance: options.broker_maintenance,
            processors: Vec::new(),
            processor_failure: ProcessorFailure::default(),
            services,
            shutdown,
            broker,
            broker_addr: None,
            data_dir,
        };
        pipeline.start_processor("p0");
        pipeline.wait_until_healthy().await?;
        Ok(pipeline)
    }

    /// Stops the in-process broker, as a broker outage would.
    pub fn stop_broker(&mut self) {
        if let Some(broker) = self.broker.take() {
            self.broker_addr = Some(broker.addr());
            broker.stop();
        }
    }

    /// Starts the in-process broker again on the same address and log.
    ///
    /// # Errors
    ///
    /// If it does not come back.
    pub async fn restart_broker(&mut self) -> anyhow::Result<()> {
        let addr = self.broker_addr.context("the broker was not stopped")?;
        let maintenance = self.broker_maintenance;
        self.broker = Some(
            LocalBroker::start(
                &self.data_dir.path().join("broker"),
                addr,
                maintenance,
                Some(ingest::disk::Floor::Bytes(0)),
            )
            .await?,
        );
        Ok(())
    }

    /// Reads `topic` from the beginning until `done` holds for what was read
    /// or `deadline` passes; returns every (key, record) read.
    ///
    /// # Errors
    ///
    /// If the consumer fails, a value does not decode, or a processor failed.
    pub async fn read_topic<R: schemas::Record>(
        &self,
        topic: schemas::Topic,
        deadline: Duration,
        done: impl Fn(&[(String, R)]) -> bool,
    ) -> anyhow::Result<Vec<(String, R)>> {
        use rdkafka::consumer::{Consumer, StreamConsumer};
        use rdkafka::message::Message;
        let consumer: StreamConsumer = self
            .kafka()
            .set("group.id", format!("reader-{}", Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .create()?;
        consumer.subscribe(&[&self.names.name(topic)])?;
        let until = Instant::now() + deadline;
        let mut read = Vec::new();
        while !done(&read) && Instant::now() < until {
            self.processors_alive()?;
            let Ok(received) =
                tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await
            else {
                continue;
            };
            let message = received?;
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let record: R = self
                .codec
                .decode(message.payload().unwrap_or_default())
                .await?;
            read.push((key, record));
        }
        Ok(read)
    }

    /// Base Kafka client configuration for this pipeline's broker.
    pub fn kafka(&self) -> ClientConfig {
        client_config(&self.brokers, &[])
    }

    /// The data dir (broker log and store).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// Starts another processor in the group, with a stable instance id
    /// under static membership.
    pub fn start_processor(&mut self, instance_id: &str) {
        let mut config = self.processor_config.clone();
        config.settings.instance_id = self.static_membership.then(|| instance_id.to_owned());
        let shutdown = self.shutdown.child_token();
        let token = shutdown.clone();
        let watch = self.processor_failure.clone().watch(
            format!("processor {instance_id}"),
            processor::run(config, None, token),
        );
        let handle = tokio::spawn(watch);
        self.processors.push(ProcessorTask { shutdown, handle });
    }

    /// Fails if a processor of this pipeline ended with an error or a panic,
    /// with that error. The harness's own waits and reads check it on every
    /// look; a test's own poll can too.
    ///
    /// # Errors
    ///
    /// The first processor failure.
    pub fn processors_alive(&self) -> anyhow::Result<()> {
        self.processor_failure.check()
    }

    /// Kills the oldest processor as a crash would: no flush, no commit.
    pub async fn crash_processor(&mut self) {
        if self.processors.is_empty() {
            return;
        }
        let task = self.processors.remove(0);
        task.handle.abort();
        drop(task.handle.await);
    }

    /// Stops the oldest processor gracefully: flush, commit, leave.
    ///
    /// # Errors
    ///
    /// If the processor failed.
    pub async fn stop_processor(&mut self) -> anyhow::Result<()> {
        if self.processors.is_empty() {
            return Ok(());
        }
        let task = self.processors.remove(0);
        task.shutdown.cancel();
        task.handle.await??;
        Ok(())
    }

    /// `POST /v1/increment`; returns the status and JSON body.
    ///
    /// # Errors
    ///
    /// If the request cannot be sent.
    pub async fn post_increment(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/v1/increment", self.ingest_url))
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Posts an increment of 1 to a fresh key and waits until the query API
    /// counts it: the processor holds its partitions and flushes. Returns
    /// the key.
    ///
    /// # Errors
    ///
    /// If the post fails, the count does not arrive within
    /// [`scenarios::SETTLE`], or a processor failed.
    pub async fn warm_up(&self) -> anyhow::Result<Uuid> {
        let key = Uuid::new_v4();
        let (status, body) = self
            .post_increment(&serde_json::json!({ "key": key, "value": 1 }))
            .await?;
        anyhow::ensure!(status == 202, "warm-up increment answered {status}: {body}");
        self.wait_for_counters(&[(key, 1)], scenarios::SETTLE)
            .await?;
        Ok(key)
    }

    /// Produces `records` (key, raw bytes) onto `topic` as they are, no
    /// ingest, no Avro, and waits until the broker has every one.
    ///
    /// # Errors
    ///
    /// If the producer cannot be made or a record is refused.
    pub async fn produce_raw(
        &self,
        topic: schemas::Topic,
        records: &[(String, Vec<u8>)],
    ) -> anyhow::Result<()> {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = self.kafka().create()?;
        let name = self.names.name(topic);
        let deliveries: Vec<_> = records
            .iter()
            .map(|(key, payload)| {
                producer.send(
                    FutureRecord::to(&name).key(key).payload(payload),
                    Duration::from_secs(30),
                )
            })
            .collect();
        for delivery in futures::future::join_all(deliveries).await {
            delivery.map_err(|(err, _)| err)?;
        }
        Ok(())
    }

    /// A handle on ingest that load tasks can share while the test keeps
    /// `&mut Pipeline` for restarts.
    pub fn load_target(&self) -> Arc<LoadTarget> {
        Arc::new(LoadTarget {
            ingest_url: self.ingest_url.clone(),
            http: self.http.clone(),
        })
    }

    /// `POST` a JSON body to an ingest path; returns the status and JSON body.
    ///
    /// # Errors
    ///
    /// If the request cannot be sent.
    pub async fn post_to(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.ingest_url))
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        ))
    }

    /// `GET` a query-API path (with its query string) with the analyst key;
    /// returns the status and JSON body.
    ///
    /// # Errors
    ///
    /// If the request cannot be sent, or a processor failed.
    pub async fn query(&self, path_and_query: &str) -> anyhow::Result<(u16, Value)> {
        self.processors_alive()?;
        let response = client_with_key(&self.analyst_key)?
            .get(format!("{}{path_and_query}", self.query_url))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        ))
    }

    /// `GET /v1/counters/{key}`'s value.
    ///
    /// # Errors
    ///
    /// If the request fails, the answer is not a counter, or a processor
    /// failed.
    pub async fn counter(&self, key: Uuid) -> anyhow::Result<i64> {
        self.processors_alive()?;
        let body: Value = self
            .http
            .get(format!("{}/v1/counters/{key}", self.query_url))
            .bearer_auth(&self.analyst_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        body["value"]
            .as_i64()
            .context("counter answer has no integer value")
    }

    /// Polls the query API until every counter in `expected` has its value.
    ///
    /// # Errors
    ///
    /// If `deadline` passes first (the error lists the counters still off),
    /// or a processor failed.
    pub async fn wait_for_counters(
        &self,
        expected: &[(Uuid, i64)],
        deadline: Duration,
    ) -> anyhow::Result<()> {
        eventually(deadline, || async {
            let mut off = Vec::new();
            for (key, want) in expected {
                let got = self.counter(*key).await?;
                if got != *want {
                    off.push((*key, *want, got));
                }
            }
            Ok(if off.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} counters off, e.g. (key, want, got) {:?}",
                    off.len(),
                    &off[..off.len().min(5)]
                ))
            })
        })
        .await
    }

    /// Polls `GET /v1/links/{code}/stats` (default range: the last days,
    /// today included) until every code's `total_clicks` is as expected.
    ///
    /// # Errors
    ///
    /// If `deadline` passes first (the error lists codes still off), or a
    /// processor failed.
    pub async fn wait_for_link_clicks(
        &self,
        expected: &[(String, i64)],
        deadline: Duration,
    ) -> anyhow::Result<()> {
        eventually(deadline, || async {
            let mut off = Vec::new();
            for (code, want) in expected {
                let (status, body) = self.query(&format!("/v1/links/{code}/stats")).await?;
                let got = body["total_clicks"].as_i64();
                if status != 200 || got != Some(*want) {
                    off.push(format!(
                        "{code}: status {status}, total_clicks {got:?}, want {want}"
                    ));
                }
            }
            Ok(if off.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} codes off, e.g. {:?}",
                    off.len(),
                    &off[..off.len().min(5)]
                ))
            })
        })
        .await
    }

    /// For a failed wait: each partition of `topic` as the store's checkpoint
    /// and the log's end offset see it (`partition: stored/end`), so a stall
    /// shows whether the processor stopped reading or the records never
    /// arrived. SQLite store only.
    ///
    /// # Errors
    ///
    /// If the store file or the broker cannot be read.
    pub async fn partition_progress(&self, topic: schemas::Topic) -> anyhow::Result<String> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let name = self.names.name(topic);
        let db = libsql::Builder::new_local(self.data_dir().join("eventide.db"))
            .build()
            .await?;
        let conn = db.connect()?;
        let mut rows = conn
            .query(
                "SELECT partition, next_offset FROM partition_checkpoints WHERE topic = ?1 ORDER BY partition",
                [name.as_str()],
            )
            .await?;
        let mut stored = HashMap::new();
        while let Some(row) = rows.next().await? {
            stored.insert(row.get::<i32>(0)?, row.get::<i64>(1)?);
        }
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "progress-probe")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&name), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |topic| topic.partitions().len());
        anyhow::ensure!(partitions > 0, "{name} has no partitions");
        let mut progress = Vec::new();
        for partition in 0..i32::try_from(partitions)? {
            let (_, end) = consumer.fetch_watermarks(&name, partition, Duration::from_secs(10))?;
            let at = stored.get(&partition).copied().unwrap_or_default();
            let mark = if at < end { " (behind)" } else { "" };
            progress.push(format!("{partition}: {at}/{end}{mark}"));
        }
        Ok(format!("{name} stored/end: {}", progress.join(", ")))
    }

    /// Whether this pipeline stores into the SQLite file of its data dir.
    pub fn stores_in_sqlite(&self) -> bool {
        matches!(
            self.processor_config.store,
            schemas::store::StoreLocation::Sqlite(_)
        )
    }

    /// Polls the store file until every `(query, value)` holds: each query
    /// returns one integer (no row counts as 0).
    ///
    /// # Errors
    ///
    /// If `deadline` passes first (the error lists the queries still off),
    /// or a processor failed.
    pub async fn wait_for_store(
        &self,
        expected: &[(String, i64)],
        deadline: Duration,
    ) -> anyhow::Result<()> {
        let db = libsql::Builder::new_local(self.data_dir().join("eventide.db"))
            .build()
            .await?;
        let conn = db.connect()?;
        let conn = &conn;
        eventually(deadline, || async move {
            self.processors_alive()?;
            let mut off = Vec::new();
            for (sql, want) in expected {
                let mut rows = conn.query(sql, ()).await?;
                let got: i64 = match rows.next().await? {
                    Some(row) => row.get(0)?,
                    None => 0,
                };
                if got != *want {
                    off.push(format!("{sql} = {got}, want {want}"));
                }
            }
            Ok(if off.is_empty() {
                Ok(())
            } else {
                Err(off.join("; "))
            })
        })
        .await
    }

    async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        for url in [&self.ingest_url, &self.query_url] {
            eventually(Duration::from_secs(20), || async {
                let healthy = self
                    .http
                    .get(format!("{url}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                Ok(if healthy {
                    Ok(())
                } else {
                    Err(format!("{url} not healthy"))
                })
            })
            .await?;
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.processors {
            task.handle.abort();
        }
        for service in &self.services {
            service.abort();
        }
        // The aborted tasks drop their Kafka clients later, when the test's
        // runtime shuts down, and a consumer closing against a broker that is
        // gone can block that shutdown for good (seen in the crash scenario).
        // So the broker outlives the test: it stops with the test process.
        if let Some(broker) = self.broker.take() {
            std::mem::forget(broker);
        }
    }
}

/// An HTTP client that sends `Authorization: Bearer <key>` on every request.
///
/// # Errors
///
/// If the key is not a valid header value.
pub fn client_with_key(key: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// A free loopback address for a listener that must bind itself.
///
/// # Errors
///
/// If no port can be had.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let probe = StdListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?)
}

/// Environment variable naming the file skipped tests are listed in; the
/// workspace's `target/skipped-suites.txt` when unset. `.ci/run` empties it
/// before the tests and prints it after them.
pub const SKIP_REPORT_ENV: &str = "EVENTIDE_SKIP_REPORT";

/// Environment variable that, set to `1`, makes a container test fail
/// instead of skipping where no Docker engine answers (for CI that has one).
pub const REQUIRE_DOCKER_ENV: &str = "EVENTIDE_REQUIRE_DOCKER";

/// Whether the container test `test` can run here. Without a Docker engine
/// it is reported as skipped ([`report_skipped`]) and the caller returns at
/// once, asserting nothing.
///
/// # Errors
///
/// If [`REQUIRE_DOCKER_ENV`] is `1` and no engine answers, or the skip
/// cannot be reported (an unreported skip would look like a pass).
pub fn docker_or_skip(test: &str) -> anyhow::Result<bool> {
    let Some(reason) = docker_unavailable() else {
        return Ok(true);
    };
    anyhow::ensure!(
        std::env::var(REQUIRE_DOCKER_ENV).as_deref() != Ok("1"),
        "{test} needs Docker ({REQUIRE_DOCKER_ENV}=1): {reason}"
    );
    report_skipped(test, &reason)?;
    Ok(false)
}

/// Reports `test` as skipped: writes `SKIPPED: <test>: <reason>` to stderr
/// and appends it to the skip report ([`SKIP_REPORT_ENV`]).
///
/// # Errors
///
/// If the report cannot be written.
pub fn report_skipped(test: &str, reason: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let line = format!("SKIPPED: {test}: {reason}\n");
    eprint!("{line}");
    let path = std::env::var_os(SKIP_REPORT_ENV)
        .filter(|path| !path.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/skipped-suites.txt"),
            PathBuf::from,
        );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // One write of one short line in append mode: lines of tests running in
    // parallel do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut report| report.write_all(line.as_bytes()))
        .with_context(|| format!("reporting a skipped test in {}", path.display()))
}

/// Why container suites cannot run here, if they cannot.
pub fn docker_unavailable() -> Option<String> {
    let socket =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let path = socket.strip_prefix("unix://").unwrap_or(&socket);
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => None,
        Err(err) => Some(format!("no Docker engine at {socket} ({err})")),
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    drop(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init(),
    );
}

/// Ingest's increment endpoint, for load.
#[derive(Debug)]
pub struct LoadTarget {
    ingest_url: String,
    http: reqwest::Client,
}

impl LoadTarget {
    /// Posts `total` increments (values 1..=7) spread over `keys` from
    /// `clients` concurrent clients, bumping `progress` per `202`; returns
    /// the exact sum per key of what was accepted.
    ///
    /// # Errors
    ///
    /// If a request fails or is answered anything but `202`.
    pub async fn post_increments(
        self: Arc<Self>,
        keys: Arc<Vec<Uuid>>,
        total: usize,
        clients: usize,
        progress: Arc<AtomicUsize>,
    ) -> anyhow::Result<HashMap<Uuid, i64>> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..clients {
            let (target, keys, next, progress) =
                (self.clone(), keys.clone(), next.clone(), progress.clone());
            workers.push(tokio::spawn(async move {
                let mut sums: HashMap<Uuid, i64> = HashMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(sums);
                    }
                    let key = keys[i % keys.len()];
                    let value = increment_value(i);
                    let response = target
                        .http
                        .post(format!("{}/v1/increment", target.ingest_url))
                        .json(&serde_json::json!({ "key": key, "value": value }))
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status() == 202,
                        "increment {i} answered {}",
                        response.status()
                    );
                    *sums.entry(key).or_default() += value;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut expected: HashMap<Uuid, i64> = HashMap::new();
        for worker in workers {
            for (key, sum) in worker.await?? {
                *expected.entry(key).or_default() += sum;
            }
        }
        Ok(expected)
    }
}

/// The value the `i`-th increment of a load carries.
pub fn increment_value(i: usize) -> i64 {
    (i % 7 + 1) as i64
}

/// A benchmark binary's `--name <value>` argument, or `default`.
///
/// # Errors
///
/// If the flag has no value or the value does not parse.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_processor_that_fails_or_panics_is_recorded_and_one_that_ends_well_is_not() {
        let failure = ProcessorFailure::default();
        let fine = failure
            .clone()
            .watch("p0".into(), async { Ok::<(), std::io::Error>(()) })
            .await;
        assert!(fine.is_ok());
        assert!(failure.check().is_ok());

        let failed = failure
            .clone()
            .watch("p1".into(), async {
                Err::<(), _>(std::io::Error::other("store is gone"))
            })
            .await;
        assert!(failed.is_err());
        let panicked = failure
            .clone()
            .watch("p2".into(), async {
                if failure.check().is_err() {
                    panic!("state out of step");
                }
                Ok::<(), std::io::Error>(())
            })
            .await;
        let panic = format!("{:#}", panicked.expect_err("the panic is an error"));
        assert_eq!(panic, "panicked: state out of step");
        // The first failure is kept.
        let reported = failure.check().expect_err("a processor failed").to_string();
        assert_eq!(reported, "p1 failed: store is gone");
    }
}
