//! The schema-registry path of the codec against a real HTTP server.
//!
//! Each test starts a small Confluent-compatible registry (axum on an
//! ephemeral port) that implements the two endpoints
//! `schema_registry_converter` calls: `POST /subjects/{subject}/versions` and
//! `GET /schemas/ids/{id}`. The fake records every registration and counts
//! fetches by id, so the tests can check which subjects the codec registers
//! under (topic name strategy, with the topic prefix), that the frame carries
//! the id the registry assigned, that ids and schemas are cached per process,
//! and that registry failures surface as `CodecError::Registry`. For
//! `eventide schemas register` it also keeps Confluent's IMPORT mode:
//! `PUT /mode/{subject}`, and a registration naming its `id` and `version`,
//! accepted only in that mode and only for an id free or holding the same
//! schema.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::codec::split_frame;
use schemas::registry::{RegistryAuth, RegistryClient};
use schemas::{Codec, CodecError, Increment, Redirect, SchemaSource, TopicNames};
use serde_json::{Value, json};
use uuid::Uuid;

/// Ids the fake hands out start here, well clear of the catalogue's pinned 1..=10.
const FIRST_ID: u32 = 100;
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the fake registry holds and what it has seen.
#[derive(Default)]
struct RegistryState {
    /// Schema text → global id; the same text always gets the same id.
    ids: HashMap<String, u32>,
    /// One `(subject, id answered)` per registration request, in order.
    posts: Vec<(String, u32)>,
    /// How many `GET /schemas/ids/{id}` requests arrived, known id or not.
    gets_by_id: usize,
    /// The `Authorization` header every request must carry, if any.
    authorization: Option<String>,
    /// The first id handed out (a fresh registry starts at 1).
    first_id: u32,
    /// Subject → mode set with `PUT /mode/{subject}`.
    modes: HashMap<String, String>,
    /// Whether modes may not change (Confluent's `mode.mutability` off).
    immutable_modes: bool,
}

type Shared = Arc<Mutex<RegistryState>>;

struct FakeRegistry {
    url: String,
    state: Shared,
}

impl FakeRegistry {
    async fn start() -> Self {
        Self::start_requiring(None).await
    }

    /// A registry that answers `401` to a request without `authorization`.
    async fn start_requiring(authorization: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake registry");
        let addr = listener.local_addr().expect("fake registry address");
        let state = Shared::default();
        {
            let mut registry = state.lock().expect("registry state");
            registry.authorization = authorization.map(str::to_owned);
            registry.first_id = FIRST_ID;
        }
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/mode/{subject}", axum::routing::put(set_mode))
            .route("/subjects/{subject}/versions/latest", get(latest))
            .route("/schemas/ids/{id}", get(schema_by_id))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                authenticate,
            ))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake registry serves");
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// A codec with its own client (its own caches), as a separate process would have.
    fn codec(&self) -> Codec {
        let client = RegistryClient::new(&self.url, TIMEOUT, &RegistryAuth::None)
            .expect("registry client builds");
        codec_over(client)
    }

    fn posts(&self) -> Vec<(String, u32)> {
        self.state.lock().expect("registry state").posts.clone()
    }

    fn gets_by_id(&self) -> usize {
        self.state.lock().expect("registry state").gets_by_id
    }
}

fn codec_over(client: RegistryClient) -> Codec {
    Codec::new(
        SchemaSource::Registry(Arc::new(client)),
        TopicNames::with_prefix("p."),
    )
    .expect("codec builds")
}

/// A response in the registry's media type.
fn registry_json(status: StatusCode, body: &Value) -> Response {
    let media_type = [(CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")];
    (status, media_type, body.to_string()).into_response()
}

fn registry_error(status: StatusCode, error_code: u32, message: &str) -> Response {
    registry_json(
        status,
        &json!({ "error_code": error_code, "message": message }),
    )
}

/// Refuses a request without the required `Authorization`, as a secured
/// registry does.
async fn authenticate(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let required = state.lock().expect("registry state").authorization.clone();
    let sent = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match required {
        Some(required) if sent != Some(required.as_str()) => {
            registry_error(StatusCode::UNAUTHORIZED, 40101, "Unauthorized")
        }
        _ => next.run(request).await,
    }
}

/// `POST /subjects/{subject}/versions` with `{"schema": ..., "schemaType": "AVRO"}`.
async fn register(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return registry_error(StatusCode::BAD_REQUEST, 400, "body is not JSON");
    };
    let (Some(schema), Some("AVRO")) = (request["schema"].as_str(), request["schemaType"].as_str())
    else {
        return registry_error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    let mut registry = state.lock().expect("registry state");
    if let Some(pinned) = request["id"].as_u64() {
        let pinned = u32::try_from(pinned).expect("an id");
        if registry.modes.get(&subject).map(String::as_str) != Some("IMPORT") {
            return registry_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42205,
                "Subject is not in import mode",
            );
        }
        let taken = registry
            .ids
            .iter()
            .any(|(text, id)| *id == pinned && text != schema);
        if taken {
            return registry_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                42207,
                "Id already used by another schema",
            );
        }
        registry.ids.insert(schema.to_owned(), pinned);
        registry.posts.push((subject, pinned));
        return registry_json(StatusCode::OK, &json!({ "id": pinned }));
    }
    if let Some(id) = registry.ids.get(schema).copied() {
        registry.posts.push((subject, id));
        return registry_json(StatusCode::OK, &json!({ "id": id }));
    }
    let next = (registry.first_id..)
        .find(|id| !registry.ids.values().any(|taken| taken == id))
        .expect("a free id");
    registry.ids.insert(schema.to_owned(), next);
    registry.posts.push((subject, next));
    registry_json(StatusCode::OK, &json!({ "id": next }))
}

/// `PUT /mode/{subject}` with `{"mode": ...}`.
async fn set_mode(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    let mut registry = state.lock().expect("registry state");
    if registry.immutable_modes {
        return registry_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
            "Mode changes are not allowed",
        );
    }
    let mode = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|body| body["mode"].as_str().map(str::to_owned));
    let Some(mode) = mode else {
        return registry_error(StatusCode::UNPROCESSABLE_ENTITY, 42204, "Invalid mode");
    };
    registry.modes.insert(subject, mode.clone());
    registry_json(StatusCode::OK, &json!({ "mode": mode }))
}

/// `GET /subjects/{subject}/versions/latest`: the last schema registered
/// under the subject.
async fn latest(State(state): State<Shared>, Path(subject): Path<String>) -> Response {
    let registry = state.lock().expect("registry state");
    let Some((_, id)) = registry.posts.iter().rev().find(|(s, _)| *s == subject) else {
        return registry_error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    let text = registry
        .ids
        .iter()
        .find_map(|(text, known)| (known == id).then(|| text.clone()))
        .unwrap_or_default();
    registry_json(
        StatusCode::OK,
        &json!({ "subject": subject, "id": id, "version": 1, "schema": text, "schemaType": "AVRO" }),
    )
}

/// `GET /schemas/ids/{id}?deleted=true`.
async fn schema_by_id(State(state): State<Shared>, Path(id): Path<u32>) -> Response {
    let mut registry = state.lock().expect("registry state");
    registry.gets_by_id += 1;
    match registry.ids.iter().find(|(_, known)| **known == id) {
        Some((text, _)) => registry_json(
            StatusCode::OK,
            &json!({ "schema": text, "schemaType": "AVRO" }),
        ),
        None => registry_error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

fn increment() -> Increment {
    let now = schemas::time::now_micros();
    Increment {
        event_id: Uuid::new_v4(),
        occurred_at: now - 10,
        received_at: now,
        application_id: "app".into(),
        key: Uuid::new_v4(),
        value: 7,
        idempotency_key: None,
    }
}

fn redirect() -> Redirect {
    let now = schemas::time::now_micros();
    Redirect {
        event_id: Uuid::new_v4(),
        occurred_at: now,
        received_at: now,
        application_id: "shortener".into(),
        short_code: "abc".into(),
        full_url: "https://example.org/".into(),
        client_id: 1,
        user_agent: "curl/8".into(),
        referrer: None,
        idempotency_key: None,
        ip: None,
        method: None,
        source: None,
        accept_language: None,
    }
}

#[tokio::test]
async fn encoding_registers_the_prefixed_value_subject_and_frames_its_id() {
    let registry = FakeRegistry::start().await;
    let codec = registry.codec();

    let record = increment();
    let bytes = codec.encode(&record).await.expect("encodes via registry");
    let (id, _) = split_frame(&bytes).expect("framed");
    assert_eq!(registry.posts(), [("p.increments-value".to_owned(), id)]);
    assert!(id >= FIRST_ID, "id {id} comes from the registry");
    let back: Increment = codec.decode(&bytes).await.expect("decodes");
    assert_eq!(back, record);

    let other = redirect();
    let bytes = codec.encode(&other).await.expect("encodes a redirect");
    let (redirect_id, _) = split_frame(&bytes).expect("framed");
    assert_ne!(redirect_id, id, "each topic's schema has its own id");
    assert_eq!(
        registry.posts(),
        [
            ("p.increments-value".to_owned(), id),
            ("p.redirects-value".to_owned(), redirect_id),
        ]
    );
    let back: Redirect = codec.decode(&bytes).await.expect("decodes a redirect");
    assert_eq!(back, other);
}

#[tokio::test]
async fn a_subject_is_registered_once_per_client() {
    let registry = FakeRegistry::start().await;
    let codec = registry.codec();

    let first = codec.encode(&increment()).await.expect("first encode");
    let second = codec.encode(&increment()).await.expect("second encode");
    assert_eq!(
        split_frame(&first).expect("framed").0,
        split_frame(&second).expect("framed").0
    );
    assert_eq!(registry.posts().len(), 1, "ids are cached after the first");
    assert_eq!(
        registry.gets_by_id(),
        0,
        "the writer already has its schema"
    );
}

#[tokio::test]
async fn a_consumer_fetches_the_writer_schema_by_id_once() {
    let registry = FakeRegistry::start().await;
    let record = increment();
    let bytes = registry.codec().encode(&record).await.expect("encodes");

    let consumer = registry.codec();
    let back: Increment = consumer.decode(&bytes).await.expect("consumer decodes");
    assert_eq!(back, record);
    assert_eq!(registry.gets_by_id(), 1, "schema fetched by id");

    let again: Increment = consumer.decode(&bytes).await.expect("decodes again");
    assert_eq!(again, record);
    assert_eq!(registry.gets_by_id(), 1, "schema served from cache");
    assert_eq!(registry.posts().len(), 1, "the consumer registered nothing");
}

#[tokio::test]
async fn an_id_the_registry_does_not_know_is_a_registry_error() {
    let registry = FakeRegistry::start().await;
    let mut bytes = registry
        .codec()
        .encode(&increment())
        .await
        .expect("encodes");
    bytes[1..5].copy_from_slice(&9_999u32.to_be_bytes());

    let result = registry.codec().decode::<Increment>(&bytes).await;
    assert!(
        matches!(&result, Err(CodecError::Registry { reason }) if reason.contains("9999")),
        "got {result:?}"
    );
    assert_eq!(registry.gets_by_id(), 1, "the registry was asked");
}

#[tokio::test]
async fn an_unreachable_registry_is_a_registry_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("reserve a port")
        .port();
    // The listener is dropped above, so nothing accepts on `port`.
    let client = RegistryClient::new(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
        &RegistryAuth::None,
    )
    .expect("registry client builds");

    let result = codec_over(client).encode(&increment()).await;
    assert!(
        matches!(result, Err(CodecError::Registry { .. })),
        "got {result:?}"
    );
}

#[tokio::test]
async fn basic_and_bearer_credentials_reach_a_secured_registry() {
    // RFC 7617's example: "Aladdin:open sesame".
    let basic = FakeRegistry::start_requiring(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")).await;
    let credentials = RegistryAuth::Basic {
        username: "Aladdin".into(),
        password: "open sesame".into(),
    };
    let client = RegistryClient::new(&basic.url, TIMEOUT, &credentials).expect("client builds");
    let bytes = codec_over(client)
        .encode(&increment())
        .await
        .expect("registers with basic auth");
    assert!(split_frame(&bytes).is_ok());
    assert_eq!(format!("{credentials:?}"), "Basic(Aladdin, <redacted>)");

    let refused = basic.codec().encode(&increment()).await;
    assert!(
        matches!(&refused, Err(CodecError::Registry { reason }) if reason.contains("p.increments-value")),
        "{refused:?}"
    );

    let bearer = FakeRegistry::start_requiring(Some("Bearer t0ken")).await;
    let client = RegistryClient::new(&bearer.url, TIMEOUT, &RegistryAuth::Bearer("t0ken".into()))
        .expect("client builds");
    codec_over(client)
        .encode(&increment())
        .await
        .expect("registers with a token");
    assert_eq!(bearer.posts().len(), 1);
}

#[tokio::test]
async fn lookup_only_finds_registered_schemas_and_names_a_missing_subject() {
    let registry = FakeRegistry::start().await;
    // Another process registered increments (only).
    registry
        .codec()
        .encode(&increment())
        .await
        .expect("registers increments");
    let lookup = |url: &str| {
        let client = RegistryClient::new(url, TIMEOUT, &RegistryAuth::None)
            .expect("client builds")
            .lookup_only();
        codec_over(client)
    };
    let codec = lookup(&registry.url);
    let bytes = codec.encode(&increment()).await.expect("finds increments");
    let (id, _) = split_frame(&bytes).expect("framed");
    assert_eq!(
        registry.posts(),
        [("p.increments-value".to_owned(), id)],
        "nothing new registered"
    );

    let missing = codec
        .resolve_all()
        .await
        .expect_err("redirects is not registered");
    assert!(
        matches!(&missing, CodecError::Registry { reason } if reason.contains("p.redirects-value")),
        "{missing:?}"
    );
    assert_eq!(registry.posts().len(), 1, "lookup-only never registers");
}

impl FakeRegistry {
    /// A registry that has handed out no id yet: its first is 1, where the
    /// catalogue's pinned ids start.
    async fn fresh() -> Self {
        let registry = Self::start().await;
        registry.state.lock().expect("registry state").first_id = 1;
        registry
    }

    fn client(&self) -> RegistryClient {
        RegistryClient::new(&self.url, TIMEOUT, &RegistryAuth::None).expect("client builds")
    }
}

fn catalogue_codec() -> Codec {
    Codec::new(SchemaSource::Catalogue, TopicNames::with_prefix("p.")).expect("codec builds")
}

#[tokio::test]
async fn importing_the_catalogue_keeps_every_pinned_id_and_old_records_readable() {
    let registry = FakeRegistry::fresh().await;
    let imported = registry
        .client()
        .import_catalogue(&TopicNames::with_prefix("p."))
        .await
        .expect("imports");
    let expected: Vec<(String, u32, u32)> = schemas::catalogue::ENTRIES
        .iter()
        .map(|entry| {
            (
                format!("p.{}-value", entry.topic.default_name()),
                entry.version,
                entry.id,
            )
        })
        .collect();
    let got: Vec<(String, u32, u32)> = imported
        .iter()
        .map(|i| (i.subject.clone(), i.version, i.id))
        .collect();
    assert_eq!(got, expected, "every version under its pinned id");
    assert!(imported.iter().all(|i| !i.already_there));
    let modes = registry.state.lock().expect("registry state").modes.clone();
    assert_eq!(modes.len(), schemas::Topic::ALL.len(), "{modes:?}");
    assert!(
        modes.values().all(|mode| mode == "READWRITE"),
        "modes restored: {modes:?}"
    );

    // A record the local default wrote (framed with the catalogue's id)
    // decodes through the registry, and the registry codec frames new
    // records with the same ids.
    let record = increment();
    let old = catalogue_codec().encode(&record).await.expect("encodes");
    let back: Increment = registry
        .codec()
        .decode(&old)
        .await
        .expect("decodes via registry");
    assert_eq!(back, record);
    let new = registry
        .codec()
        .encode(&record)
        .await
        .expect("encodes via registry");
    assert_eq!(
        split_frame(&new).expect("framed").0,
        split_frame(&old).expect("framed").0
    );
    assert!(
        registry
            .client()
            .catalogue_collisions()
            .await
            .expect("compares")
            .is_empty()
    );

    // Running it again changes nothing.
    let again = registry
        .client()
        .import_catalogue(&TopicNames::with_prefix("p."))
        .await
        .expect("imports again");
    assert!(again.iter().all(|i| i.already_there), "{again:?}");
}

#[tokio::test]
async fn a_registry_that_gave_a_catalogue_id_away_is_refused_naming_it() {
    let registry = FakeRegistry::fresh().await;
    // Without importing, a service registers this build's schemas: the
    // fresh registry hands them ids 1 and 2, which the catalogue pins to
    // other versions.
    registry
        .codec()
        .encode(&redirect())
        .await
        .expect("registers");
    registry
        .codec()
        .encode(&increment())
        .await
        .expect("registers");
    let collisions = registry
        .client()
        .catalogue_collisions()
        .await
        .expect("compares");
    assert_eq!(collisions, [1, 2]);
    let refused = registry
        .client()
        .import_catalogue(&TopicNames::with_prefix("p."))
        .await
        .expect_err("id 1 holds another schema");
    assert!(
        matches!(&refused, CodecError::Registry { reason } if reason.contains("schema id 1 ") && reason.contains("p.redirects-value")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_registry_without_mode_changes_is_named_in_the_error() {
    let registry = FakeRegistry::fresh().await;
    registry
        .state
        .lock()
        .expect("registry state")
        .immutable_modes = true;
    let refused = registry
        .client()
        .import_catalogue(&TopicNames::with_prefix("p."))
        .await
        .expect_err("IMPORT mode refused");
    assert!(
        matches!(&refused, CodecError::Registry { reason } if reason.contains("IMPORT mode") && reason.contains("42205")),
        "{refused:?}"
    );
}
