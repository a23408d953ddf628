//! The `eventide` binary's library half: what the thin `main.rs` and the
//! end-to-end tests share to put the pipeline together.
//!
//! Each service's logic lives in its own crate (`ingest`, `processor`,
//! `query-api`); this crate only wires them to Kafka and to each other.
//!
//! # Layout
//!
//! - [`cli`]: the command line and its `EVENTIDE_*` environment fallbacks.
//! - [`destinations`]: `eventide destinations` (pause, resume, list).
//! - [`replay`]: `eventide replay`.
//! - [`kafka`]: the base client configuration and topic creation.
//! - [`local_broker`]: the in-process Kafka-API broker of the local default.
//! - [`pipeline`]: starting services and running them until shutdown.
//! - [`telemetry`]: log setup and the Prometheus recorder.
//! - [`wait`]: waiting for a condition with a deadline.
//! - [`tools`]: `eventide send` and `eventide loadgen`, on the ingest client.

pub mod cli;
pub mod destinations;
pub mod kafka;
pub mod local_broker;
pub mod pipeline;
pub mod replay;
pub mod telemetry;
pub mod tools;
pub mod wait;
