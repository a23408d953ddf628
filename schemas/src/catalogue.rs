//! The compiled-in schema catalogue: every version of every topic's schema
//! with a pinned id, used when no registry is configured.
//!
//! Ids are never reused: a new schema version is a new file under
//! `schemas/avro/history/<name>/` and a new entry at the end of [`ENTRIES`].
//! A test keeps the newest entry of each topic equal to the current
//! `schemas/avro/<name>.avsc`.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;

use apache_avro::Schema;

use crate::codec::CodecError;
use crate::topics::Topic;

/// One schema version with its pinned id.
#[derive(Debug, Clone, Copy)]
pub struct CatalogueEntry {
    /// The id written into the Confluent frame.
    pub id: u32,
    /// The topic whose values it describes.
    pub topic: Topic,
    /// The version within the topic, from 1.
    pub version: u32,
    /// The `.avsc` text.
    pub text: &'static str,
}

/// Every schema version ever shipped, in id order.
pub const ENTRIES: &[CatalogueEntry] = &[
    CatalogueEntry {
        id: 1,
        topic: Topic::Redirects,
        version: 1,
        text: include_str!("../avro/history/redirect/v1.avsc"),
    },
    CatalogueEntry {
        id: 2,
        topic: Topic::Increments,
        version: 1,
        text: include_str!("../avro/history/increment/v1.avsc"),
    },
    CatalogueEntry {
        id: 3,
        topic: Topic::Events,
        version: 1,
        text: include_str!("../avro/history/event/v1.avsc"),
    },
    CatalogueEntry {
        id: 4,
        topic: Topic::Notifications,
        version: 1,
        text: include_str!("../avro/history/notification/v1.avsc"),
    },
    CatalogueEntry {
        id: 5,
        topic: Topic::IngestRejects,
        version: 1,
        text: include_str!("../avro/history/reject/v1.avsc"),
    },
    CatalogueEntry {
        id: 6,
        topic: Topic::DeadLetters,
        version: 1,
        text: include_str!("../avro/history/dead_letter/v1.avsc"),
    },
    CatalogueEntry {
        id: 7,
        topic: Topic::Redirects,
        version: 2,
        text: include_str!("../avro/history/redirect/v2.avsc"),
    },
    CatalogueEntry {
        id: 8,
        topic: Topic::Increments,
        version: 2,
        text: include_str!("../avro/history/increment/v2.avsc"),
    },
    CatalogueEntry {
        id: 9,
        topic: Topic::Events,
        version: 2,
        text: include_str!("../avro/history/event/v2.avsc"),
    },
    CatalogueEntry {
        id: 10,
        topic: Topic::DestinationStates,
        version: 1,
        text: include_str!("../avro/history/destination_state/v1.avsc"),
    },
    CatalogueEntry {
        id: 11,
        topic: Topic::Replays,
        version: 1,
        text: include_str!("../avro/history/replay/v1.avsc"),
    },
    CatalogueEntry {
        id: 12,
        topic: Topic::Events,
        version: 3,
        text: include_str!("../avro/history/event/v3.avsc"),
    },
    CatalogueEntry {
        id: 13,
        topic: Topic::IngestRejects,
        version: 2,
        text: include_str!("../avro/history/reject/v2.avsc"),
    },
    CatalogueEntry {
        id: 14,
        topic: Topic::DestinationHealth,
        version: 1,
        text: include_str!("../avro/history/destination_health/v1.avsc"),
    },
    CatalogueEntry {
        id: 15,
        topic: Topic::DeadLetters,
        version: 2,
        text: include_str!("../avro/history/dead_letter/v2.avsc"),
    },
    CatalogueEntry {
        id: 16,
        topic: Topic::Redirects,
        version: 3,
        text: include_str!("../avro/history/redirect/v3.avsc"),
    },
];

/// The current schema text of a topic: what writers write and readers read into.
pub fn current_text(topic: Topic) -> &'static str {
    match topic {
        Topic::Redirects => include_str!("../avro/redirect.avsc"),
        Topic::Increments => include_str!("../avro/increment.avsc"),
        Topic::Events => include_str!("../avro/event.avsc"),
        Topic::Notifications => include_str!("../avro/notification.avsc"),
        Topic::IngestRejects => include_str!("../avro/reject.avsc"),
        Topic::DeadLetters => include_str!("../avro/dead_letter.avsc"),
        Topic::DestinationStates => include_str!("../avro/destination_state.avsc"),
        Topic::DestinationHealth => include_str!("../avro/destination_health.avsc"),
        Topic::Replays => include_str!("../avro/replay.avsc"),
    }
}

/// A datum reader built once for a schema it owns: building one resolves
/// the schema's names, which cost a fifth of decoding a redirect when it
/// was done per record.
type DatumReader<'s> = GenericDatumReader<'s>;

self_cell::self_cell!(
    /// A current schema with its datum reader.
    pub(crate) struct CurrentReader {
        owner: Arc<Schema>,
        #[covariant]
        dependent: DatumReader,
    }
);

impl std::fmt::Debug for CurrentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentReader")
            .field("schema", &self.borrow_owner().name())
            .finish()
    }
}

/// The catalogue's schemas, parsed.
#[derive(Debug)]
pub struct Catalogue {
    by_id: HashMap<u32, Arc<Schema>>,
    /// Newest entry per topic: the id writers stamp.
    newest: HashMap<Topic, (u32, Arc<Schema>)>,
    /// Current schema per topic: what readers resolve into.
    current: HashMap<Topic, Arc<Schema>>,
    /// A datum reader per current schema, for values written with it.
    readers: HashMap<Topic, CurrentReader>,
}

impl Catalogue {
    /// Parses every compiled-in schema.
    ///
    /// # Errors
    ///
    /// [`CodecError::InvalidSchema`] if a shipped `.avsc` does not parse, which
    /// the crate's tests rule out.
    pub fn load() -> Result<Self, CodecError> {
        let mut by_id = HashMap::new();
        let mut newest: HashMap<Topic, (u32, u32, Arc<Schema>)> = HashMap::new();
        for entry in ENTRIES {
            let schema = Arc::new(parse(entry.text)?);
            by_id.insert(entry.id, Arc::clone(&schema));
            let is_newer = newest
                .get(&entry.topic)
                .is_none_or(|(_, version, _)| entry.version > *version);
            if is_newer {
                newest.insert(entry.topic, (entry.id, entry.version, schema));
            }
        }
        let mut current = HashMap::new();
        for topic in Topic::ALL {
            let schema = parse(current_text(topic))?;
            // The same Arc as the newest writer schema when they are equal,
            // so decoding can tell cheaply that no resolution is needed.
            let shared = newest
                .get(&topic)
                .filter(|(_, _, newest)| newest.canonical_form() == schema.canonical_form())
                .map(|(_, _, newest)| Arc::clone(newest));
            current.insert(topic, shared.unwrap_or_else(|| Arc::new(schema)));
        }
        let mut readers = HashMap::new();
        for (topic, schema) in &current {
            let reader = CurrentReader::try_new(Arc::clone(schema), |schema| {
                GenericDatumReader::builder(schema).build()
            })
            .map_err(|err| CodecError::InvalidSchema {
                reason: err.to_string(),
            })?;
            readers.insert(*topic, reader);
        }
        Ok(Self {
            readers,
            by_id,
            newest: newest
                .into_iter()
                .map(|(topic, (id, _, schema))| (topic, (id, schema)))
                .collect(),
            current,
        })
    }

    /// The schema with this id.
    pub fn by_id(&self, id: u32) -> Option<Arc<Schema>> {
        self.by_id.get(&id).cloned()
    }

    /// The id and schema writers use for `topic`.
    pub fn writer(&self, topic: Topic) -> Option<(u32, Arc<Schema>)> {
        self.newest.get(&topic).cloned()
    }

    /// The schema readers resolve `topic`'s values into.
    pub fn reader(&self, topic: Topic) -> Option<Arc<Schema>> {
        self.current.get(&topic).cloned()
    }

    /// The datum reader of `topic`'s current schema, built once.
    pub(crate) fn datum_reader(&self, topic: Topic) -> Option<&GenericDatumReader<'_>> {
        self.readers
            .get(&topic)
            .map(CurrentReader::borrow_dependent)
    }
}

pub(crate) fn parse(text: &str) -> Result<Schema, CodecError> {
    Schema::parse_str(text).map_err(|err| CodecError::InvalidSchema {
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::schema_compatibility::SchemaCompatibility;

    #[test]
    fn every_topic_has_a_schema_and_ids_are_unique() {
        let catalogue = Catalogue::load().expect("shipped schemas parse");
        for topic in Topic::ALL {
            assert!(
                catalogue.writer(topic).is_some(),
                "{topic} has no writer schema"
            );
            assert!(
                catalogue.reader(topic).is_some(),
                "{topic} has no reader schema"
            );
        }
        let mut ids: Vec<u32> = ENTRIES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len(), "a schema id is pinned twice");
    }

    #[test]
    fn newest_history_version_is_the_current_schema() {
        let catalogue = Catalogue::load().expect("shipped schemas parse");
        for topic in Topic::ALL {
            let (_, newest) = catalogue.writer(topic).expect("writer");
            let current = catalogue.reader(topic).expect("reader");
            assert_eq!(
                newest.canonical_form(),
                current.canonical_form(),
                "schemas/avro/ for {topic} changed without a new history version and pinned id"
            );
        }
    }

    #[test]
    fn current_schemas_read_every_previous_version() {
        let catalogue = Catalogue::load().expect("shipped schemas parse");
        for entry in ENTRIES {
            let writer = parse(entry.text).expect("history parses");
            let reader = catalogue.reader(entry.topic).expect("reader");
            let verdict = SchemaCompatibility::can_read(&writer, &reader);
            assert!(
                verdict.is_ok(),
                "{} v{} (id {}) is not readable by the current schema: {verdict:?}",
                entry.topic,
                entry.version,
                entry.id
            );
        }
    }

    #[test]
    fn compatibility_check_catches_a_new_field_without_default() {
        let old = parse(ENTRIES[1].text).expect("parses");
        let broken = parse(&ENTRIES[1].text.replace(
            r#"{"name": "value", "type": "long""#,
            r#"{"name": "weight", "type": "long"}, {"name": "value", "type": "long""#,
        ))
        .expect("parses");
        assert!(SchemaCompatibility::can_read(&old, &broken).is_err());
    }
}
