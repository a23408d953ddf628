//! An in-memory CQL executor with the ScyllaDB semantics Eventide's stores
//! rely on, so the production store's code runs in every CI without a
//! ScyllaDB: the offline statement check and the seeded simulation.
//!
//! It runs the real CQL text of the stores' statements, parsed by a real
//! CQL grammar, over tables created from the real migrations
//! (`schemas/cql/`).
//!
//! # Layout
//!
//! - [`check`]: the offline check of a statement against the migrations.
//! - [`parse`]: CQL text to a plan (tables, columns, markers in order).
//! - [`tables`]: the tables and what a statement does to them: write
//!   timestamps, last-write-wins, lightweight transactions, reads in
//!   clustering order.
//! - [`cluster`]: a simulated cluster behind `schemas::cql::CqlExecutor`:
//!   requests held until a seeded schedule delivers them, delayed,
//!   reordered, duplicated or lost, and clients that crash.

pub mod check;
pub mod cluster;
pub mod parse;
pub mod tables;

pub use cluster::{Cluster, Faults};
pub use parse::{Plan, TableDef, plan};
pub use tables::{Refused, Tables};
