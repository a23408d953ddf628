//! The Avro record decoder on arbitrary Confluent frames, for every record
//! type the processor reads.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use schemas::codec::{Codec, SchemaSource};
use schemas::{DeadLetter, Event, Increment, Notification, Redirect, Reject, TopicNames};

static CODEC: LazyLock<Codec> = LazyLock::new(|| {
    Codec::new(SchemaSource::Catalogue, TopicNames::default()).expect("the catalogue codec")
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

fuzz_target!(|bytes: &[u8]| {
    RUNTIME.block_on(async {
        let _ = CODEC.decode::<Increment>(bytes).await;
        let _ = CODEC.decode::<Redirect>(bytes).await;
        let _ = CODEC.decode::<Event>(bytes).await;
        let _ = CODEC.decode::<Notification>(bytes).await;
        let _ = CODEC.decode::<Reject>(bytes).await;
        let _ = CODEC.decode::<DeadLetter>(bytes).await;
    });
});
