//! The local default's Kafka-API broker: `tansu-broker` in-process, storing
//! its log in a SQLite file (`sqlite://`) in the data dir so a restart keeps
//! every record.
//!
//! The broker runs on its own thread and Tokio runtime so that a blocking
//! rdkafka call on the services' runtime can never starve it. We call
//! `Broker::serve`, not `Broker::main`, so it installs no signal handlers of
//! its own: our process decides when to stop.
//!
//! That thread supervises the broker. tansu 0.6 has panics on reachable paths
//! (a produce with an epoch it never issued, `InitProducerId` with an existing
//! producer id); a panic in its storage task leaves a broker that accepts
//! connections and fails every request. So a panic on the broker's threads,
//! or `serve` returning, restarts the broker on the same address and log
//! (clients reconnect on their own); more than [`MAX_RESTARTS`] within
//! [`RESTART_WINDOW`] and it gives up, which [`LocalBroker::failure`] reports.
//! A crash while the data dir is below `--min-free-disk` is not counted: the
//! broker waits for space and then starts again, so a full disk is an
//! outage of writes, never a restart loop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ingest::disk::{DiskError, DiskWatch, Floor};
use tansu_broker::NODE_ID;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use url::Url;

mod panic_watch;

/// How long to wait for the broker to accept connections after starting.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Restarts allowed within [`RESTART_WINDOW`]; one more and the broker is
/// declared failed.
pub const MAX_RESTARTS: usize = 5;

/// The window [`MAX_RESTARTS`] counts in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);

/// Counter of broker restarts after a panic or an unexpected stop.
pub const RESTARTS_METRIC: &str = "eventide_local_broker_restarts_total";

/// Why the local broker did not start.
#[derive(Debug, Error)]
pub enum LocalBrokerError {
    /// The data dir could not be created, resolved or written.
    #[error("the data dir {path} is not usable (set --data-dir)")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The data dir's free space cannot be measured.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Another process listens on the broker's address.
    #[error(
        "cannot listen on {addr} for the in-process broker: {source} (another process holds it; set --local-broker-listen)"
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The storage or listener URL could not be formed.
    #[error("broker url: {0}")]
    Url(#[from] url::ParseError),
    /// The broker's thread or runtime could not start.
    #[error("broker thread: {0}")]
    Thread(#[source] std::io::Error),
    /// tansu refused to build or serve.
    #[error("broker: {0}")]
    Broker(String),
    /// Nothing listened on the broker's address before the deadline.
    #[error("broker at {0} did not accept connections within {READY_DEADLINE:?}")]
    NotReady(SocketAddr),
}

/// A running in-process broker. Dropping it stops the broker.
#[derive(Debug)]
pub struct LocalBroker {
    addr: SocketAddr,
    /// Tells the supervisor to stop the broker and return.
    stop: CancellationToken,
    /// The supervisor's thread, joined on stop.
    thread: Option<JoinHandle<()>>,
    /// Set once the supervisor gives up.
    failure: watch::Receiver<Option<String>>,
    restarts: Arc<AtomicU64>,
    /// The data dir's free space against `--min-free-disk`.
    disk: DiskWatch,
}

/// Resolves when the supervisor gave up on the broker; cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerFailure(watch::Receiver<Option<String>>);

impl BrokerFailure {
    /// Why the broker is gone for good; pending for as long as it serves or
    /// was stopped on purpose.
    pub async fn wait(mut self) -> String {
        let reason = match self.0.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

impl LocalBroker {
    /// Starts a broker listening on `addr`, storing its log in
    /// `<data_dir>/broker.db`, and waits until it accepts connections. Every
    /// `maintenance` it deletes records past their topic's `retention.ms`
    /// (from topics with `cleanup.policy=delete`).
    ///
    /// # Errors
    ///
    /// [`LocalBrokerError`] if the data dir, the runtime or the broker fail,
    /// or the broker does not listen within the deadline.
    pub async fn start(
        data_dir: &Path,
        addr: SocketAddr,
        maintenance: Duration,
        min_free_disk: Option<Floor>,
    ) -> Result<Self, LocalBrokerError> {
        // tansu binds inside its own runtime and a foreign listener would
        // answer our readiness probe: find out now, naming the address.
        drop(
            std::net::TcpListener::bind(addr)
                .map_err(|source| LocalBrokerError::Listen { addr, source })?,
        );
        let data_dir = absolute_dir(data_dir)?;
        let disk = DiskWatch::new(&data_dir, min_free_disk)?;
        // Four slashes: tansu strips one leading '/' and resolves the rest
        // against the working directory, so an absolute path needs an extra one.
        let mut storage = Url::parse(&format!(
            "sqlite:///{}",
            data_dir.join("broker.db").display()
        ))?;
        // tansu reads its maintenance interval from the storage URL.
        storage.query_pairs_mut().append_pair(
            "maintenance_interval",
            &humantime::format_duration(maintenance).to_string(),
        );
        let listener = Url::parse(&format!("tcp://{addr}"))?;
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (failure_tx, failure_rx) = watch::channel(None);
        let stop = CancellationToken::new();
        let restarts = Arc::new(AtomicU64::new(0));
        let supervisor = Supervisor {
            storage,
            listener,
            stop: stop.clone(),
            failure: failure_tx,
            restarts: Arc::clone(&restarts),
            disk: disk.clone(),
            runtime_name: panic_watch::unique_thread_name("local-broker-rt"),
        };

        let thread = std::thread::Builder::new()
            .name("local-broker".into())
            .spawn(move || supervisor.run(ready_tx))
            .map_err(LocalBrokerError::Thread)?;
        let broker = Self {
            addr,
            disk,
            stop,
            thread: Some(thread),
            failure: failure_rx,
            restarts,
        };

        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(LocalBrokerError::Broker(reason)),
            Err(_) => return Err(LocalBrokerError::Broker("broker thread exited".into())),
        }
        wait_until_listening(addr).await?;
        info!(%addr, data_dir = %data_dir.display(), "local broker ready");
        Ok(broker)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap address for Kafka clients.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// The data dir's free space against `--min-free-disk`, which ingest
    /// admits writes by.
    pub fn disk(&self) -> DiskWatch {
        self.disk.clone()
    }

    /// How many times the supervisor restarted the broker.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// A handle that resolves if the supervisor gives up on the broker.
    pub fn failure(&self) -> BrokerFailure {
        BrokerFailure(self.failure.clone())
    }

    /// Stops serving and waits for the broker's thread to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("local broker thread panicked");
        }
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How one run of the broker ended.
#[derive(Debug)]
enum Exit {
    /// Asked to stop.
    Stopped,
    /// It could not be built: restarting will not help.
    NotBuilt(String),
    /// It panicked or stopped serving on its own: restart it.
    Crashed(String),
}

/// The broker's thread: runs the broker, restarting it after a crash.
struct Supervisor {
    storage: Url,
    listener: Url,
    stop: CancellationToken,
    failure: watch::Sender<Option<String>>,
    restarts: Arc<AtomicU64>,
    /// The data dir's free space against `--min-free-disk`.
    disk: DiskWatch,
    /// The name of every thread of the broker's runtime, which is how a
    /// panic is traced back to this broker.
    runtime_name: String,
}

impl Supervisor {
    fn run(self, ready: oneshot::Sender<Result<(), String>>) {
        let mut panics = panic_watch::watch(&self.runtime_name);
        let mut ready = Some(ready);
        let mut recent: VecDeque<std::time::Instant> = VecDeque::new();
        loop {
            let exit = self.serve_once(&mut ready, &mut panics);
            let reason = match exit {
                Exit::Stopped => break,
                Exit::NotBuilt(reason) => {
                    if let Some(ready) = ready.take() {
                        drop(ready.send(Err(reason)));
                    } else {
                        self.give_up(format!("could not be restarted: {reason}"));
                    }
                    break;
                }
                Exit::Crashed(reason) => reason,
            };
            if self.waited_for_space(&reason) {
                // Not counted: a full disk is an outage, not a crash loop.
                continue;
            }
            if self.stop.is_cancelled() {
                break;
            }
            let now = std::time::Instant::now();
            while recent
                .front()
                .is_some_and(|at| now.duration_since(*at) > RESTART_WINDOW)
            {
                recent.pop_front();
            }
            if recent.len() >= MAX_RESTARTS {
                self.give_up(format!(
                    "crashed {} times within {RESTART_WINDOW:?}; last: {reason}",
                    recent.len() + 1
                ));
                break;
            }
            recent.push_back(now);
            self.restarts.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(RESTARTS_METRIC).increment(1);
            error!(%reason, "local broker crashed; restarting it on the same log");
        }
        panic_watch::unwatch(&self.runtime_name);
    }

    /// After a crash: if the data dir is below its floor, waits until it is
    /// above again (or a stop) and says so; `false` when space was not the
    /// matter.
    fn waited_for_space(&self, reason: &str) -> bool {
        drop(self.disk.measure());
        if self.disk.admit().is_ok() {
            return false;
        }
        error!(
            %reason,
            "local broker crashed with the data dir below --min-free-disk; restarting it once space is freed"
        );
        while !self.stop.is_cancelled() {
            // This thread serves nothing while the broker is down.
            std::thread::sleep(ingest::disk::CHECK_EVERY);
            drop(self.disk.measure());
            if self.disk.admit().is_ok() {
                info!("space freed; restarting the local broker");
                return true;
            }
        }
        true
    }

    fn give_up(&self, reason: String) {
        error!(%reason, "local broker is gone");
        self.failure.send_replace(Some(reason));
    }

    /// Builds the broker on a fresh runtime and serves until stopped, a
    /// panic on one of the runtime's threads, or `serve` returning.
    fn serve_once(
        &self,
        ready: &mut Option<oneshot::Sender<Result<(), String>>>,
        panics: &mut mpsc::UnboundedReceiver<String>,
    ) -> Exit {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(self.runtime_name.clone())
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => return Exit::NotBuilt(format!("runtime: {err}")),
        };
        // A panic left over from the runtime just shut down is not news.
        while panics.try_recv().is_ok() {}
        let exit = runtime.block_on(async {
            let built = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                .node_id(NODE_ID)
                .cluster_id("eventide-local")
                .incarnation_id(uuid::Uuid::now_v7())
                .advertised_listener(self.listener.clone())
                .storage(self.storage.clone())
                .listener(self.listener.clone())
                .silent(true)
                .build()
                .await;
            let mut broker = match built {
                Ok(broker) => broker,
                Err(err) => return Exit::NotBuilt(format!("{err:?}")),
            };
            if let Some(ready) = ready.take() {
                drop(ready.send(Ok(())));
            }
            tokio::select! {
                served = broker.serve(Instant::now()) => Exit::Crashed(match served {
                    Ok(()) => "stopped serving".to_owned(),
                    Err(err) => format!("stopped serving: {err:?}"),
                }),
                Some(panic) = panics.recv() => Exit::Crashed(format!("panicked: {panic}")),
                () = self.stop.cancelled() => Exit::Stopped,
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
        exit
    }
}

fn absolute_dir(dir: &Path) -> Result<PathBuf, LocalBrokerError> {
    let io_error = |source| LocalBrokerError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let dir = dir.canonicalize().map_err(io_error)?;
    // SQLite would say only "unable to open database file" (code 14) of a
    // directory it cannot write: find out first, with the cause in words.
    let probe = dir.join(".eventide-write-probe");
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| LocalBrokerError::DataDir {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

async fn wait_until_listening(addr: SocketAddr) -> Result<(), LocalBrokerError> {
    crate::wait::eventually(READY_DEADLINE, || async {
        Ok(match TcpStream::connect(addr).await {
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        })
    })
    .await
    .map_err(|_| LocalBrokerError::NotReady(addr))
}
