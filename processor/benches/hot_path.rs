//! The processor's per-record hot path on one core, without Kafka or the
//! store: Avro decode (Confluent framing) of a redirect, user-agent
//! classification through the bounded cache, and the partition's click
//! aggregate; each stage alone and all three together.
//!
//! `cargo bench -p processor --bench hot_path`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::clicks::{Click, PartitionClicks};
use processor::user_agent::UserAgents;
use schemas::{Codec, Redirect, SchemaSource, TopicNames};
use uuid::Uuid;

/// Records per measured iteration.
const RECORDS: usize = 10_000;

fn redirects() -> Vec<Redirect> {
    (0..RECORDS)
        .map(|i| Redirect {
            event_id: Uuid::now_v7(),
            occurred_at: 1_614_556_800_000_000 + i as i64 * 1_000_000,
            received_at: 1_614_556_800_000_000,
            application_id: "bench".into(),
            short_code: format!("code{}", i % 1_000),
            full_url: "https://example.org/landing".into(),
            client_id: (i % 100) as i64,
            user_agent: format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36",
                70 + i % 50
            ),
            referrer: None,
            idempotency_key: None,
            ip: None,
            method: None,
            source: None,
            accept_language: None,
        })
        .collect()
}

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let codec =
        Codec::new(SchemaSource::Catalogue, TopicNames::default()).expect("catalogue codec");
    let redirects = redirects();
    let encoded: Vec<Vec<u8>> = runtime.block_on(async {
        let mut encoded = Vec::with_capacity(RECORDS);
        for redirect in &redirects {
            encoded.push(codec.encode(redirect).await.expect("encodes"));
        }
        encoded
    });

    let mut group = c.benchmark_group("clicks");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for bytes in &encoded {
                    black_box(codec.decode::<Redirect>(bytes).await.expect("decodes"));
                }
            });
        });
    });
    group.bench_function("classify_cached", |b| {
        let mut agents = UserAgents::default();
        b.iter(|| {
            for redirect in &redirects {
                black_box(agents.classify(&redirect.user_agent));
            }
        });
    });
    group.bench_function("aggregate", |b| {
        let mut agents = UserAgents::default();
        let classified: Vec<_> = redirects
            .iter()
            .map(|r| agents.classify(&r.user_agent))
            .collect();
        b.iter(|| {
            let mut clicks = PartitionClicks::restore(0);
            for (offset, (redirect, agent)) in redirects.iter().zip(&classified).enumerate() {
                clicks.apply(
                    offset as i64,
                    &Click {
                        short_code: &redirect.short_code,
                        client_id: redirect.client_id,
                        occurred_at: redirect.occurred_at,
                        agent,
                    },
                );
            }
            black_box(clicks)
        });
    });
    group.bench_function("decode_classify_aggregate", |b| {
        let mut agents = UserAgents::default();
        b.iter(|| {
            let mut clicks = PartitionClicks::restore(0);
            runtime.block_on(async {
                for (offset, bytes) in encoded.iter().enumerate() {
                    let redirect: Redirect = codec.decode(bytes).await.expect("decodes");
                    let agent = agents.classify(&redirect.user_agent);
                    clicks.apply(
                        offset as i64,
                        &Click {
                            short_code: &redirect.short_code,
                            client_id: redirect.client_id,
                            occurred_at: redirect.occurred_at,
                            agent: &agent,
                        },
                    );
                }
            });
            black_box(clicks)
        });
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
