//! The processor's per-record hot path on one core, without Kafka or the
//! store: Avro decode (Confluent framing) of a redirect, enrichment
//! (agent classes through the bounded cache, previews and crawlers,
//! referrer, UTM, source, country), and the partition's click aggregate;
//! each stage alone and together, with and without enrichment.
//!
//! `cargo bench -p processor --bench hot_path`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::clicks::{Click, DEFAULT_MAX_DIMENSION_VALUES, PartitionClicks};
use processor::enrich::geo::Geo;
use processor::enrich::{Class, Enricher, NONE, OwnedVisit, Visit};
use processor::user_agent::UserAgents;
use schemas::{Codec, Redirect, SchemaSource, TopicNames};
use uuid::Uuid;

/// Every breakdown of a click without enrichment.
const WITHOUT_ENRICHMENT: [&str; processor::enrich::DIMENSIONS] = [
    "unknown", "unknown", "unknown", NONE, "direct", NONE, NONE, NONE, "link",
];

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
            full_url: format!(
                "https://example.org/landing?utm_source=news{}&utm_campaign=spring",
                i % 20
            ),
            client_id: (i % 100) as i64,
            user_agent: format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36",
                70 + i % 50
            ),
            referrer: match i % 3 {
                0 => None,
                1 => Some("https://www.google.com/search?q=x".into()),
                _ => Some(format!("https://blog{}.example/post", i % 50)),
            },
            idempotency_key: None,
            // A distinct visitor per click, 40 to a /24 block.
            ip: Some(format!("81.2.{}.{}", i / 40 % 256, i % 40)),
            method: None,
            source: None,
            accept_language: None,
        })
        .collect()
}

/// An enricher with a small country database the bench writes.
fn enricher() -> Enricher {
    let mut writer = mmdb_writer::Writer::new("Bench-Country");
    for (network, country) in [("81.2.0.0/16", "GB"), ("8.8.8.0/24", "US")] {
        writer
            .insert(
                network.parse::<ipnet::IpNet>().expect("network"),
                &serde_json::json!({"country": {"iso_code": country}}),
            )
            .expect("inserted");
    }
    let geo = Geo::from_bytes(writer.to_bytes().expect("written")).expect("opens");
    Enricher::new(Some(geo)).expect("lists load")
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
    group.bench_function("enrich_cached", |b| {
        let mut enricher = enricher();
        b.iter(|| {
            for redirect in &redirects {
                black_box(enricher.visit(redirect));
            }
        });
    });
    group.bench_function("aggregate", |b| {
        let mut enricher = enricher();
        let owned: Vec<OwnedVisit> = redirects
            .iter()
            .map(|r| OwnedVisit::from(&enricher.visit(r)))
            .collect();
        let visits: Vec<Visit<'_>> = owned.iter().map(OwnedVisit::visit).collect();
        b.iter(|| {
            let mut clicks = PartitionClicks::restore(0, DEFAULT_MAX_DIMENSION_VALUES);
            for (offset, (redirect, visit)) in redirects.iter().zip(&visits).enumerate() {
                clicks.apply(
                    offset as i64,
                    &Click {
                        short_code: &redirect.short_code,
                        client_id: redirect.client_id,
                        occurred_at: redirect.occurred_at,
                        visit,
                    },
                );
            }
            black_box(clicks)
        });
    });
    // Without enrichment: woothee's classes only, every breakdown the one
    // value a click without enrichment has. (Not empty strings: comparing
    // two empty `String`s costs ~140 ns on this machine's glibc, whose
    // AVX-512 memcmp touches their dangling pointer.)
    group.bench_function("decode_classify_aggregate", |b| {
        let mut agents = UserAgents::default();
        b.iter(|| {
            let mut clicks = PartitionClicks::restore(0, DEFAULT_MAX_DIMENSION_VALUES);
            runtime.block_on(async {
                for (offset, bytes) in encoded.iter().enumerate() {
                    let redirect: Redirect = codec.decode(bytes).await.expect("decodes");
                    let agent = agents.classify(&redirect.user_agent);
                    let visit = Visit {
                        class: if agent.bot { Class::Bot } else { Class::Human },
                        agent: &agent,
                        dimensions: WITHOUT_ENRICHMENT,
                        visitor: None,
                    };
                    clicks.apply(
                        offset as i64,
                        &Click {
                            short_code: &redirect.short_code,
                            client_id: redirect.client_id,
                            occurred_at: redirect.occurred_at,
                            visit: &visit,
                        },
                    );
                }
            });
            black_box(clicks)
        });
    });
    // With enrichment: previews and crawlers, referrer, UTM, source and the
    // country from a database (lookups cached).
    group.bench_function("decode_enrich_aggregate", |b| {
        let mut enricher = enricher();
        b.iter(|| {
            let mut clicks = PartitionClicks::restore(0, DEFAULT_MAX_DIMENSION_VALUES);
            runtime.block_on(async {
                for (offset, bytes) in encoded.iter().enumerate() {
                    let redirect: Redirect = codec.decode(bytes).await.expect("decodes");
                    let visit = enricher.visit(&redirect);
                    clicks.apply(
                        offset as i64,
                        &Click {
                            short_code: &redirect.short_code,
                            client_id: redirect.client_id,
                            occurred_at: redirect.occurred_at,
                            visit: &visit,
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
