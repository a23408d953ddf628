//! Every contract Eventide's services share, and nothing that does I/O of its
//! own except the optional schema-registry client.
//!
//! Ingest writes records that the processor reads, and the processor writes
//! rows the query API reads; both sides of each hand-off take its shape from
//! here so they cannot drift apart.
//!
//! # Layout
//!
//! - [`topics`]: the logical topics, their physical names and subjects.
//! - [`records`]: the Rust type of every topic's value, one per Avro schema
//!   in `schemas/avro/`.
//! - [`catalogue`]: the compiled-in schemas with pinned ids, every version
//!   kept under `schemas/avro/history/`.
//! - [`registry`]: a Confluent-compatible schema registry client through
//!   `schema_registry_converter`, caching ids and schemas.
//! - [`codec`]: the Confluent wire framing and Avro encode/decode over either
//!   schema source.
//! - [`identity`]: idempotency keys and the record id derived from one.
//! - [`event_types`]: the JSON Schema of each known event type's data.
//! - [`keys`]: the API keys file and key lookup.
//! - [`sql`]: the embedded store's SQLite tables.
//! - [`cql`]: the ScyllaDB schema (`schemas/cql/`), query-first, and the
//!   migration that applies it.
//! - [`store`]: which store backend to use and how to reach it.
//! - [`time`]: the microsecond timestamps every record carries.

pub mod catalogue;
pub mod codec;
pub mod cql;
pub mod destination;
pub mod event_types;
pub mod identity;
pub mod keys;
pub mod records;
pub mod registry;
pub mod sql;
pub mod store;
pub mod time;
pub mod topics;

pub use codec::{Codec, CodecError, SchemaSource};
pub use records::{
    DeadLetter, DestinationHealth, DestinationState, Event, Increment, Notification, Record,
    Redirect, Reject, Replay,
};
pub use topics::{Topic, TopicNames, TopicPartitions};
