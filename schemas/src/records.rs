//! The value type of every topic, field for field the Avro schemas in
//! `schemas/avro/`.

use serde::{Deserialize, Serialize as SerializeDerive};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::time::Micros;
use crate::topics::Topic;

/// A Rust type that is the value of one topic.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    /// The topic whose values have this type.
    const TOPIC: Topic;
}

/// A counter increment (`reference/001_*`).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Increment {
    #[serde(with = "uuid_as_string")]
    pub event_id: Uuid,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub application_id: String,
    #[serde(with = "uuid_as_string")]
    pub key: Uuid,
    pub value: i64,
    /// The producer's `Idempotency-Key`, if any (see [`crate::identity`]).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl Record for Increment {
    const TOPIC: Topic = Topic::Increments;
}

/// A short-link click (`reference/000_*`).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Redirect {
    #[serde(with = "uuid_as_string")]
    pub event_id: Uuid,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub application_id: String,
    pub short_code: String,
    pub full_url: String,
    pub client_id: i64,
    pub user_agent: String,
    pub referrer: Option<String>,
    /// The producer's `Idempotency-Key`, if any (see [`crate::identity`]).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The visitor's address: enrichment uses it and drops it.
    #[serde(default)]
    pub ip: Option<String>,
    /// `GET` or `HEAD`.
    #[serde(default)]
    pub method: Option<String>,
    /// `link` (when `None`), `qr`, or a label.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub accept_language: Option<String>,
}

impl Record for Redirect {
    const TOPIC: Topic = Topic::Redirects;
}

/// A behaviour or app event (`reference/003_*`, `004_*`, `002_*`).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Event {
    #[serde(with = "uuid_as_string")]
    pub event_id: Uuid,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub application_id: String,
    pub session_id: String,
    pub category: String,
    pub name: String,
    /// The event's JSON object, serialised.
    pub data: String,
    pub known_type: bool,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// The producer's `Idempotency-Key`, if any (see [`crate::identity`]).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The webhook destinations the producer named, if any: only these
    /// deliver it.
    #[serde(default)]
    pub destinations: Option<Vec<String>>,
}

impl Record for Event {
    const TOPIC: Topic = Topic::Events;
}

/// A rule's decision to notify a user.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Notification {
    /// Deterministic: the same (rule, user, trigger) always gives the same id.
    pub event_id: String,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub rule: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub message: String,
    pub data: String,
    pub trigger_event_id: String,
    pub late_by_micros: i64,
}

impl Record for Notification {
    const TOPIC: Topic = Topic::Notifications;
}

/// A request ingest refused.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Reject {
    #[serde(with = "uuid_as_string")]
    pub event_id: Uuid,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub application_id: String,
    pub endpoint: String,
    pub status: i32,
    pub field: Option<String>,
    pub rule: String,
    pub message: String,
    #[serde(with = "serde_bytes_compat")]
    pub body: Vec<u8>,
    /// The request's `Idempotency-Key` header, if it sent a valid one.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The replay run that resubmitted it and saw it refused again.
    #[serde(default)]
    pub replay_run: Option<String>,
}

impl Record for Reject {
    const TOPIC: Topic = Topic::IngestRejects;
}

/// A record that could not be processed or delivered.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct DeadLetter {
    #[serde(with = "uuid_as_string")]
    pub event_id: Uuid,
    pub occurred_at: Micros,
    pub received_at: Micros,
    pub stage: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(with = "serde_opt_bytes_compat")]
    pub key: Option<Vec<u8>>,
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
    pub reason: String,
    /// The replay run that sent the record back and saw it fail again.
    pub replay_run: Option<String>,
}

impl Record for DeadLetter {
    const TOPIC: Topic = Topic::DeadLetters;
}

/// Whether a webhook destination is paused, as changed by an operator or
/// by auto-pause.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct DestinationState {
    pub destination: String,
    pub paused: bool,
    pub changed_at: Micros,
    pub changed_by: String,
    pub reason: String,
}

impl Record for DestinationState {
    const TOPIC: Topic = Topic::DestinationStates;
}

/// What one delivery replica last saw of a webhook destination.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct DestinationHealth {
    pub destination: String,
    /// The reporting process: host name and process id.
    pub replica: String,
    pub reported_at: Micros,
    pub last_success_at: Option<Micros>,
    pub last_error_at: Option<Micros>,
    pub last_error: Option<String>,
}

impl Record for DestinationHealth {
    const TOPIC: Topic = Topic::DestinationHealth;
}

/// A dead-lettered record sent back to the stage that gave up on it.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Replay {
    #[serde(with = "uuid_as_string")]
    pub run_id: Uuid,
    pub requested_at: Micros,
    pub requested_by: String,
    /// `delivery:<destination>`: only that stage takes it.
    pub stage: String,
    /// Where the original record was read.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(with = "serde_opt_bytes_compat")]
    pub key: Option<Vec<u8>>,
    /// The original record, as read.
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
    pub dead_lettered_at: Micros,
}

impl Record for Replay {
    const TOPIC: Topic = Topic::Replays;
}

/// Avro `bytes` through serde: serialise as bytes, not as a sequence of ints.
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        super::ByteBuf::deserialize(d).map(|b| b.0)
    }
}

mod serde_opt_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&super::BytesRef(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<super::ByteBuf>::deserialize(d).map(|o| o.map(|b| b.0))
    }
}

struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Accepts bytes, a byte sequence or a string, whichever the Avro value
/// deserializer hands over.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.as_bytes().to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ByteBuf, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteBuf(out))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

/// Avro `string` with logical type `uuid`: always the hyphenated text form,
/// whatever the serializer's human-readable setting.
mod uuid_as_string {
    use serde::{Deserializer, Serializer, de};
    use uuid::Uuid;

    pub(super) fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&id.hyphenated())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Uuid;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a uuid as text or 16 bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
                Uuid::parse_str(v).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Uuid, E> {
                Uuid::from_slice(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}
