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
    let physical: Vec<(String, i32)> = Topic::ALL
        .iter()
        .map(|topic| (names.name(*topic), layout.partitions.of(*topic)))
        .collect();
    let retention_ms = layout.retention.as_millis().to_string();
    let new_topics: Vec<NewTopic<'_>> = physical
        .iter()
        .map(|(name, count)| {
            NewTopic::new(name, *count, TopicReplication::Fixed(layout.replication))
                .set("cleanup.policy", "delete")
                .set("retention.ms", &retention_ms)
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

    /// OAUTHBEARER with the OIDC token method (what Confluent Cloud, MSK with
    /// IAM-brokered OIDC and Aiven offer): librdkafka, built with libcurl,
    /// fetches a token from the identity provider with the client
    /// credentials at start. A small token endpoint stands in for the
    /// provider and records what arrives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oauthbearer_oidc_fetches_a_token_with_the_client_credentials() {
        use std::sync::{Arc, Mutex};
        type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}/token", listener.local_addr().expect("address"));
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::post(
                    |axum::extract::State(seen): axum::extract::State<Seen>,
                     headers: axum::http::HeaderMap,
                     body: String| async move {
                        let authorization = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        seen.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((authorization, body));
                        // An unsigned JWT with the claims librdkafka reads.
                        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmVudGlkZSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.";
                        axum::Json(serde_json::json!({
                            "access_token": token,
                            "token_type": "bearer",
                            "expires_in": 3600
                        }))
                    },
                ),
            )
            .with_state(Arc::clone(&seen));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let options = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "eventide"),
            ("sasl.oauthbearer.client.secret", "s3cr,et=x"),
            ("sasl.oauthbearer.scope", "kafka"),
            ("sasl.oauthbearer.token.endpoint.url", url.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let producer: FutureProducer = client_config("127.0.0.1:1", &options)
            .create()
            .expect("librdkafka takes the OIDC method (built with libcurl)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let first = loop {
            let first = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .first()
                .cloned();
            if let Some(first) = first {
                break first;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no token request within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        drop(producer);
        let (authorization, body) = first;
        // base64("eventide:s3cr,et=x"): the secret reached the provider intact.
        assert_eq!(
            authorization.as_deref(),
            Some("Basic ZXZlbnRpZGU6czNjcixldD14")
        );
        assert!(body.contains("grant_type=client_credentials"), "{body}");
        assert!(body.contains("scope=kafka"), "{body}");
    }
}
