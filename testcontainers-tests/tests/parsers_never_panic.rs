//! Property-based tests of the parsers outside ingest's bodies: the Avro
//! record decoder (every record type, arbitrary frames), cursors, and the
//! keys, rules and destinations files. Arbitrary input gives a value or a
//! typed error, never a panic. `PROPTEST_CASES` sets the count.

use proptest::prelude::*;
use query_api::store::bounds::Position;
use schemas::codec::{Codec, SchemaSource};
use schemas::keys::ApiKeys;
use schemas::{DeadLetter, Event, Increment, Notification, Redirect, Reject, TopicNames};

/// Confluent frames: the magic byte and a catalogue id often enough for the
/// decoder to reach the Avro body, arbitrary bytes otherwise.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (0u32..40, prop::collection::vec(any::<u8>(), 0..96)).prop_map(|(id, body)| {
            let mut frame = vec![0];
            frame.extend(id.to_be_bytes());
            frame.extend(body);
            frame
        }),
    ]
}

fn decode_every_record(codec: &Codec, bytes: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _ = codec.decode::<Increment>(bytes).await;
        let _ = codec.decode::<Redirect>(bytes).await;
        let _ = codec.decode::<Event>(bytes).await;
        let _ = codec.decode::<Notification>(bytes).await;
        let _ = codec.decode::<Reject>(bytes).await;
        let _ = codec.decode::<DeadLetter>(bytes).await;
    });
}

/// TOML-ish text: the tables and keys the files use, with any values.
fn toml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        prop::collection::vec(
            prop_oneof![
                Just("[[keys]]\n".to_owned()),
                Just("[[rule]]\n".to_owned()),
                Just("[[destination]]\n".to_owned()),
                "(id|application|sha256|scopes|rate_limit|name|kind|after|within|minutes|url|secret_env|names|topics|events) = (\"[a-z0-9 ]{0,12}\"|[0-9-]{1,20}|\\[\"[a-z]{0,8}\"\\]|true)\n",
            ],
            0..12,
        )
        .prop_map(|lines| lines.concat()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_frames_decode_or_fail_typed(bytes in frame()) {
        let codec = Codec::new(SchemaSource::Catalogue, TopicNames::default()).expect("codec");
        decode_every_record(&codec, &bytes);
    }

    #[test]
    fn arbitrary_cursors_are_positions_or_nothing(cursor in "\\PC{0,80}", hex in "[0-9a-f]{0,80}") {
        let _ = Position::parse(&cursor);
        if let Some(position) = Position::parse(&hex) {
            prop_assert_eq!(Position::parse(&position.cursor()), Some(position));
        }
    }

    #[test]
    fn arbitrary_files_load_or_name_the_problem(text in toml_text()) {
        let _ = ApiKeys::from_toml(&text);
        let _ = processor::rules::Rules::parse(&text, "test");
        let _ = processor::webhooks::destinations::parse(&text, "test", |_| Some("secret".to_owned()));
    }
}
