//! The local default's Kafka-API broker: `tansu-broker` in-process, storing
//! its log in a SQLite file (`sqlite://`) in the data dir so a restart keeps
//! every record.
//!
//! The broker runs on its own thread and Tokio runtime so that a blocking
//! rdkafka call on the services' runtime can never starve it. We call
//! `Broker::serve`, not `Broker::main`, so it installs no signal handlers of
//! its own: our process decides when to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use tansu_broker::NODE_ID;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{info, warn};
use url::Url;

/// How long to wait for the broker to accept connections after starting.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Why the local broker did not start.
#[derive(Debug, Error)]
pub enum LocalBrokerError {
    /// The data dir could not be created or resolved.
    #[error("broker data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
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
    /// Tells the broker's runtime to stop serving.
    stop: Option<oneshot::Sender<()>>,
    /// The broker's own thread, joined on stop.
    thread: Option<JoinHandle<()>>,
}

impl LocalBroker {
    /// Starts a broker listening on `addr`, storing its log in
    /// `<data_dir>/broker.db`, and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// [`LocalBrokerError`] if the data dir, the runtime or the broker fail,
    /// or the broker does not listen within the deadline.
    pub async fn start(data_dir: &Path, addr: SocketAddr) -> Result<Self, LocalBrokerError> {
        let data_dir = absolute_dir(data_dir)?;
        // Four slashes: tansu strips one leading '/' and resolves the rest
        // against the working directory, so an absolute path needs an extra one.
        let storage = Url::parse(&format!(
            "sqlite:///{}",
            data_dir.join("broker.db").display()
        ))?;
        let listener = Url::parse(&format!("tcp://{addr}"))?;
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();

        let thread = std::thread::Builder::new()
            .name("local-broker".into())
            .spawn(move || serve_on_own_runtime(storage, listener, ready_tx, stop_rx))
            .map_err(LocalBrokerError::Thread)?;
        let broker = Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
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

    /// Stops serving and waits for the broker's thread to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            _ = stop.send(());
        }
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

fn serve_on_own_runtime(
    storage: Url,
    listener: Url,
    ready: oneshot::Sender<Result<(), String>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("local-broker-rt")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            drop(ready.send(Err(format!("runtime: {err}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let built = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(NODE_ID)
            .cluster_id("eventide-local")
            .incarnation_id(uuid::Uuid::now_v7())
            .advertised_listener(listener.clone())
            .storage(storage)
            .listener(listener)
            .silent(true)
            .build()
            .await;
        let mut broker = match built {
            Ok(broker) => broker,
            Err(err) => {
                drop(ready.send(Err(format!("{err:?}"))));
                return;
            }
        };
        drop(ready.send(Ok(())));
        tokio::select! {
            served = broker.serve(Instant::now()) => {
                if let Err(err) = served {
                    warn!(error = ?err, "local broker stopped serving");
                }
            }
            _ = stop => {}
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
}

fn absolute_dir(dir: &Path) -> Result<PathBuf, LocalBrokerError> {
    let io_error = |source| LocalBrokerError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_error)?;
    dir.canonicalize().map_err(io_error)
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
