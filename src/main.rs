//! The `eventide` binary: parses the command line, sets up logging and
//! signals, and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use eventide::cli::Cli;
use eventide::{pipeline, telemetry};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = telemetry::init(cli.common.log_format, cli.role());
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let outcome = match pipeline::run(cli, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = format!("{err:#}"), "eventide stopped with an error");
            ExitCode::FAILURE
        }
    };
    // The exporter's HTTP client blocks: flush the last spans off the runtime.
    drop(tokio::task::spawn_blocking(move || telemetry.shutdown()).await);
    outcome
}

/// First SIGTERM or Ctrl-C: graceful shutdown. Second: exit at once.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        warn!("cannot listen for SIGTERM");
        return;
    };
    for attempt in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        if attempt == 0 {
            info!("shutdown requested; draining (signal again to exit at once)");
            shutdown.cancel();
        }
    }
    warn!("second signal; exiting without draining");
    std::process::exit(130);
}
