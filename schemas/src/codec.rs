//! Avro values in the Confluent wire framing: magic byte `0`, the schema id
//! as 4 big-endian bytes, then the Avro binary datum.
//!
//! Writers stamp the id their [`SchemaSource`] gives for the topic; readers
//! look the writer's schema up by the id in the frame and resolve it into the
//! current compiled-in schema, so old records stay readable after a
//! BACKWARD-compatible change.

use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Schema, from_value, to_value};
use thiserror::Error;

use crate::catalogue::{Catalogue, current_text};
use crate::records::Record;
use crate::registry::RegistryClient;
use crate::topics::{Topic, TopicNames};

/// The first byte of every Confluent-framed value.
pub const MAGIC_BYTE: u8 = 0;
/// Magic byte plus the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Fewer bytes than the frame header needs.
    #[error("truncated value: {len} bytes, the frame header alone needs {HEADER_LEN}")]
    Truncated { len: usize },
    /// The first byte is not the Confluent magic byte.
    #[error("wrong magic byte {found:#04x}, expected 0x00")]
    WrongMagicByte { found: u8 },
    /// The frame names a schema id the source does not know.
    #[error("unknown schema id {id}")]
    UnknownSchemaId { id: u32 },
    /// The schema id belongs to another topic's schema, or resolution failed.
    #[error("schema id {id} cannot be read as {topic}: {reason}")]
    SchemaMismatch {
        id: u32,
        topic: Topic,
        reason: String,
    },
    /// The datum is not valid Avro for its schema (corrupt or cut short).
    #[error("invalid avro for schema id {id}: {reason}")]
    InvalidAvro { id: u32, reason: String },
    /// The Rust value does not fit the topic's schema.
    #[error("cannot encode {topic} value: {reason}")]
    Encode { topic: Topic, reason: String },
    /// A schema text is not valid Avro.
    #[error("invalid schema: {reason}")]
    InvalidSchema { reason: String },
    /// The schema registry refused or could not be reached.
    #[error("schema registry: {reason}")]
    Registry { reason: String },
}

/// Where schema ids come from. Both variants frame bytes identically.
#[derive(Debug, Clone)]
pub enum SchemaSource {
    /// The compiled-in catalogue with pinned ids (the local default).
    Catalogue,
    /// A Confluent-compatible registry: schemas registered as `<topic>-value`.
    Registry(Arc<RegistryClient>),
}

/// Encodes and decodes topic values.
#[derive(Debug, Clone)]
pub struct Codec {
    source: SchemaSource,
    names: TopicNames,
    catalogue: Arc<Catalogue>,
}

impl Codec {
    /// A codec over `source`, naming subjects after `names`.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidSchema`] if a compiled-in schema does not parse.
    pub fn new(source: SchemaSource, names: TopicNames) -> Result<Self, CodecError> {
        Ok(Self {
            source,
            names,
            catalogue: Arc::new(Catalogue::load()?),
        })
    }

    /// The topic names this codec derives subjects from.
    pub fn names(&self) -> &TopicNames {
        &self.names
    }

    /// Encodes `record` as a framed value of its topic.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] if the value does not fit the schema;
    /// [`CodecError::Registry`] if registering the schema fails.
    pub async fn encode<R: Record>(&self, record: &R) -> Result<Vec<u8>, CodecError> {
        let (id, schema) = self.writer(R::TOPIC).await?;
        let encode_error = |err: apache_avro::Error| CodecError::Encode {
            topic: R::TOPIC,
            reason: err.to_string(),
        };
        let value = to_value(record)
            .and_then(|value| value.resolve(&schema))
            .map_err(encode_error)?;
        let datum = GenericDatumWriter::builder(&schema)
            .build()
            .and_then(|writer| writer.write_value_to_vec(value))
            .map_err(encode_error)?;
        let mut framed = Vec::with_capacity(HEADER_LEN + datum.len());
        framed.push(MAGIC_BYTE);
        framed.extend_from_slice(&id.to_be_bytes());
        framed.extend_from_slice(&datum);
        Ok(framed)
    }

    /// Decodes a framed value of `R`'s topic.
    ///
    /// # Errors
    ///
    /// [`CodecError::Truncated`], [`CodecError::WrongMagicByte`],
    /// [`CodecError::UnknownSchemaId`], [`CodecError::InvalidAvro`] or
    /// [`CodecError::SchemaMismatch`], each naming what was wrong.
    pub async fn decode<R: Record>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        let (id, mut datum) = split_frame(bytes)?;
        let writer = self.schema_by_id(id).await?;
        let reader = self
            .catalogue
            .reader(R::TOPIC)
            .ok_or(CodecError::UnknownSchemaId { id })?;
        if Arc::ptr_eq(&writer, &reader) {
            // The common case: written with the schema we read with.
            // Deserialize straight from the bytes, with no generic `Value`
            // in between (that intermediate cost half the hot path), with
            // the reader the catalogue built once.
            let datum_reader = self
                .catalogue
                .datum_reader(R::TOPIC)
                .ok_or(CodecError::UnknownSchemaId { id })?;
            return datum_reader.read_deser::<R>(&mut datum).map_err(|err| {
                CodecError::InvalidAvro {
                    id,
                    reason: err.to_string(),
                }
            });
        }
        // An older or newer writer: resolve against the reader's schema.
        let value = GenericDatumReader::builder(&writer)
            .reader_schema(&reader)
            .build()
            .and_then(|datum_reader| datum_reader.read_value(&mut datum))
            .map_err(|err| {
                if writer.canonical_form() == reader.canonical_form() {
                    CodecError::InvalidAvro {
                        id,
                        reason: err.to_string(),
                    }
                } else {
                    CodecError::SchemaMismatch {
                        id,
                        topic: R::TOPIC,
                        reason: err.to_string(),
                    }
                }
            })?;
        from_value::<R>(&value).map_err(|err| CodecError::SchemaMismatch {
            id,
            topic: R::TOPIC,
            reason: err.to_string(),
        })
    }

    /// Resolves every topic's writer schema now: with a registry, each is
    /// registered (or, lookup-only, found) at start rather than at the first
    /// write, so a missing or foreign schema stops the start naming its
    /// subject.
    ///
    /// # Errors
    ///
    /// The first topic's [`CodecError`].
    pub async fn resolve_all(&self) -> Result<(), CodecError> {
        for topic in Topic::ALL {
            self.writer(topic).await?;
        }
        Ok(())
    }

    async fn writer(&self, topic: Topic) -> Result<(u32, Arc<Schema>), CodecError> {
        match &self.source {
            SchemaSource::Catalogue => {
                self.catalogue
                    .writer(topic)
                    .ok_or(CodecError::InvalidSchema {
                        reason: format!("no compiled-in schema for {topic}"),
                    })
            }
            SchemaSource::Registry(client) => {
                let subject = self.names.value_subject(topic);
                let id = client.register(&subject, current_text(topic)).await?;
                let schema = client.schema(id).await?;
                Ok((id, schema))
            }
        }
    }

    async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, CodecError> {
        match &self.source {
            SchemaSource::Catalogue => self
                .catalogue
                .by_id(id)
                .ok_or(CodecError::UnknownSchemaId { id }),
            SchemaSource::Registry(client) => client.schema(id).await,
        }
    }
}

/// Splits a framed value into its schema id and Avro datum.
///
/// # Errors
///
/// [`CodecError::Truncated`] or [`CodecError::WrongMagicByte`].
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    let Some((header, datum)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(CodecError::Truncated { len: bytes.len() });
    };
    let [magic, id @ ..] = *header;
    if magic != MAGIC_BYTE {
        return Err(CodecError::WrongMagicByte { found: magic });
    }
    Ok((u32::from_be_bytes(id), datum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::*;
    use uuid::Uuid;

    fn codec() -> Codec {
        Codec::new(SchemaSource::Catalogue, TopicNames::default()).expect("catalogue loads")
    }

    pub(crate) fn samples() -> (Increment, Redirect, Event, Notification, Reject, DeadLetter) {
        let now = crate::time::now_micros();
        (
            Increment {
                event_id: Uuid::new_v4(),
                occurred_at: now - 5,
                received_at: now,
                application_id: "app".into(),
                key: Uuid::new_v4(),
                value: i64::MAX,
                idempotency_key: None,
            },
            Redirect {
                event_id: Uuid::new_v4(),
                occurred_at: now,
                received_at: now,
                application_id: "shortener".into(),
                short_code: "abc_12-Z".into(),
                full_url: "https://example.org/a?b=c".into(),
                client_id: 42,
                user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into(),
                referrer: Some("https://news.example/".into()),
                idempotency_key: None,
                ip: Some("2001:db8::1".into()),
                method: Some("HEAD".into()),
                source: Some("qr".into()),
                accept_language: Some("de-CH,de;q=0.9".into()),
            },
            Event {
                event_id: Uuid::new_v4(),
                occurred_at: 0,
                received_at: now,
                application_id: "web".into(),
                session_id: Uuid::new_v4().to_string(),
                category: "page interaction".into(),
                name: "pageview".into(),
                data: r#"{"host":"example.org","path":"/"}"#.into(),
                known_type: false,
                user_id: None,
                device_id: Some("dev-1".into()),
                idempotency_key: None,
                destinations: Some(vec!["analytics".into()]),
            },
            Notification {
                event_id: "nudge:u1:e1".into(),
                occurred_at: now,
                received_at: now,
                rule: "app_launch_nudge".into(),
                user_id: "u1".into(),
                device_id: None,
                message: "Start a program!".into(),
                data: "{}".into(),
                trigger_event_id: "e1".into(),
                late_by_micros: 1_500_000,
            },
            Reject {
                event_id: Uuid::new_v4(),
                occurred_at: now,
                received_at: now,
                application_id: "app".into(),
                endpoint: "/v1/increment".into(),
                status: 400,
                field: Some("value".into()),
                rule: "minimum".into(),
                message: "value must be at least 1".into(),
                body: vec![0, 159, 146, 150, 255],
                idempotency_key: Some("k-1".into()),
                replay_run: None,
            },
            DeadLetter {
                event_id: Uuid::new_v4(),
                occurred_at: now,
                received_at: now,
                stage: "processor".into(),
                topic: "increments".into(),
                partition: 3,
                offset: 1 << 40,
                key: Some(vec![1, 2, 3]),
                payload: vec![9, 9, 0, 255],
                reason: "wrong magic byte".into(),
                replay_run: Some("0190f1c2-5d6e-7c1a-9b2e-3f4a5b6c7d8e".into()),
            },
        )
    }

    async fn round_trip<R: Record + PartialEq + std::fmt::Debug>(codec: &Codec, record: R) {
        let bytes = codec.encode(&record).await.expect("encodes");
        assert_eq!(bytes[0], MAGIC_BYTE);
        let back: R = codec.decode(&bytes).await.expect("decodes");
        assert_eq!(back, record);
    }

    #[tokio::test]
    async fn every_record_type_round_trips() {
        let codec = codec();
        let (inc, red, ev, notif, rej, dead) = samples();
        round_trip(&codec, inc).await;
        round_trip(&codec, red).await;
        round_trip(&codec, ev).await;
        round_trip(&codec, notif).await;
        round_trip(&codec, rej).await;
        round_trip(&codec, dead.clone()).await;
        round_trip(
            &codec,
            DeadLetter {
                key: None,
                replay_run: None,
                ..dead
            },
        )
        .await;
    }

    #[tokio::test]
    async fn frame_carries_the_pinned_id() {
        let codec = codec();
        let bytes = codec.encode(&samples().0).await.expect("encodes");
        let (id, _) = split_frame(&bytes).expect("framed");
        assert_eq!(id, 8, "increments v2 is pinned to id 8");
    }

    #[tokio::test]
    async fn bad_frames_give_typed_errors() {
        let codec = codec();
        let good = codec.encode(&samples().0).await.expect("encodes");

        let mut wrong_magic = good.clone();
        wrong_magic[0] = 7;
        assert_eq!(
            codec.decode::<Increment>(&wrong_magic).await,
            Err(CodecError::WrongMagicByte { found: 7 })
        );

        let mut unknown_id = good.clone();
        unknown_id[1..5].copy_from_slice(&9999u32.to_be_bytes());
        assert_eq!(
            codec.decode::<Increment>(&unknown_id).await,
            Err(CodecError::UnknownSchemaId { id: 9999 })
        );

        assert_eq!(
            codec.decode::<Increment>(&good[..3]).await,
            Err(CodecError::Truncated { len: 3 })
        );
        assert!(matches!(
            codec.decode::<Increment>(&good[..good.len() / 2]).await,
            Err(CodecError::InvalidAvro { id: 8, .. })
        ));
        assert!(matches!(
            codec.decode::<Increment>(&[]).await,
            Err(CodecError::Truncated { len: 0 })
        ));
    }

    #[tokio::test]
    async fn another_topics_value_is_a_mismatch_not_a_panic() {
        let codec = codec();
        let redirect = codec.encode(&samples().1).await.expect("encodes");
        assert!(matches!(
            codec.decode::<Increment>(&redirect).await,
            Err(CodecError::SchemaMismatch { id: 16, .. })
        ));
    }
}
