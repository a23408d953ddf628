//! Kafka client configuration shared by every service, and topic creation.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use schemas::{Topic, TopicNames, TopicPartitions};
use thiserror::Error;

/// Why topics could not be prepared.
#[derive(Debug, Error)]
pub enum TopicSetupError {
    /// The admin client could not be created.
    #[error("kafka admin client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// The broker refused a topic for a reason other than "already exists".
    #[error("creating topic {topic}: {reason}")]
    Create { topic: String, reason: String },
}

/// The base client configuration: bootstrap servers plus any extra
/// librdkafka properties (SASL, TLS, ...) given as `key=value`.
pub fn client_config(brokers: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in extra {
        config.set(key, value);
    }
    config
}

/// How topics are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// Partitions of the data and the low-volume topics.
    pub partitions: TopicPartitions,
    /// Replication factor of each topic.
    pub replication: i32,
    /// How long records are kept (`cleanup.policy=delete`, `retention.ms`).
    /// Set explicitly: the in-process broker deletes old records only from
    /// topics that say so, and keeps the rest forever.
    pub retention: Duration,
}

/// Creates every topic with its count of partitions, replication and
/// retention; topics that already exist are left as they are.
///
/// # Errors
///
/// [`TopicSetupError`] if the broker cannot be reached or refuses a topic.
pub async fn ensure_topics(
    config: &ClientConfig,
    names: &TopicNames,
    layout: TopicLayout,
) -> Result<(), TopicSetupError> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(TopicSetupError::Client)?;
    let physical: Vec<(String, i32, bool)> = Topic::ALL
        .iter()
        .map(|topic| {
            (
                names.name(*topic),
                layout.partitions.of(*topic),
                topic.is_compacted(),
            )
        })
        .collect();
    let retention_ms = layout.retention.as_millis().to_string();
    let new_topics: Vec<NewTopic<'_>> = physical
        .iter()
        .map(|(name, count, compacted)| {
            let topic = NewTopic::new(name, *count, TopicReplication::Fixed(layout.replication));
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", &retention_ms)
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(TopicSetupError::Client)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TopicSetupError::Create {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::producer::FutureProducer;

    #[test]
    fn tls_and_sasl_options_are_supported() {
        // librdkafka refuses SASL_SSL at client creation when built without
        // TLS; production Kafka (MSK, Confluent Cloud) needs it.
        let options = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "eventide"),
            ("sasl.password", "secret"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let producer: Result<FutureProducer, _> = client_config("127.0.0.1:1", &options).create();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }

    #[test]
    fn zstd_compression_is_built_in() {
        // librdkafka refuses the codec at client creation when built without
        // zstd; managed Kafka services and tansu take zstd batches.
        let options = [("compression.type", "zstd")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let producer: Result<FutureProducer, _> = client_config("127.0.0.1:1", &options).create();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }

    #[test]
    fn a_password_with_commas_and_equals_signs_reaches_librdkafka_intact() {
        use clap::Parser;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "# from the Secret\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=eventide\nsasl.password=pa,ss=x y\n",
        )
        .expect("writes");
        let cli = crate::cli::Cli::try_parse_from([
            "eventide".as_ref(),
            "--kafka-properties-file".as_ref(),
            file.as_os_str(),
            "--kafka-option".as_ref(),
            "sasl.username=other,name=1".as_ref(),
        ])
        .expect("parses");
        let properties = cli.common.kafka.properties().expect("reads the file");
        let native = client_config("127.0.0.1:1", &properties)
            .create_native_config()
            .expect("librdkafka takes every property");
        assert_eq!(native.get("sasl.password").expect("set"), "pa,ss=x y");
        assert_eq!(
            native.get("sasl.username").expect("set"),
            "other,name=1",
            "a flag overrides the file"
        );
    }

    /// OAUTHBEARER's OIDC token method is built (librdkafka with libcurl):
    /// a client configured for it fetches its token from the identity
    /// provider's token endpoint — here a small real HTTP server — with the
    /// client credentials grant and HTTP basic authentication, before any
    /// broker answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oauthbearer_oidc_fetches_a_token_from_the_token_endpoint() {
        use base64::Engine as _;
        use std::sync::{Arc, Mutex};

        type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
        let seen: Seen = Arc::default();
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs() + 3_600)
            .unwrap_or_default();
        let jwt = [
            serde_json::json!({"alg": "none", "typ": "JWT"}),
            serde_json::json!({"sub": "eventide", "exp": exp, "iat": exp - 3_600}),
        ]
        .map(|part| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part.to_string()))
        .join(".")
            + ".c2lnbmF0dXJl";
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post({
                let seen = Arc::clone(&seen);
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    if let Ok(mut seen) = seen.lock() {
                        seen.push((header("authorization"), header("content-type"), body));
                    }
                    axum::Json(serde_json::json!({
                        "access_token": jwt,
                        "token_type": "bearer",
                        "expires_in": 3600,
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let options = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "eventide"),
            // A secret with a comma and an equals sign, as properties carry it.
            ("sasl.oauthbearer.client.secret", "s3cr,et="),
            ("sasl.oauthbearer.scope", "kafka"),
            (
                "sasl.oauthbearer.token.endpoint.url",
                &format!("http://{address}/token"),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let producer: FutureProducer = client_config("127.0.0.1:1", &options)
            .create()
            .expect("OIDC is built");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let first = loop {
            let first = seen.lock().ok().and_then(|seen| seen.first().cloned());
            if let Some(first) = first {
                break first;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "librdkafka never asked the token endpoint"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        drop(producer);
        let (authorization, content_type, body) = first;
        assert_eq!(
            authorization,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("eventide:s3cr,et=")
            )
        );
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        assert!(body.contains("grant_type=client_credentials"), "{body}");
        assert!(body.contains("scope=kafka"), "{body}");
        // OAUTHBEARER with a token from the application (the unsecured JWT
        // method here) is accepted too.
        let unsecured = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let producer: Result<FutureProducer, _> = client_config("127.0.0.1:1", &unsecured).create();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }
}
