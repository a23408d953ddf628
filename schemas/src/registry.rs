//! A Confluent-compatible schema registry client (Confluent, Karapace,
//! Apicurio, Redpanda) through `schema_registry_converter`, caching subject
//! ids and schemas so each is fetched once per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::catalogue::parse;
use crate::codec::CodecError;

mod import;

pub use import::Imported;

/// Registers and resolves schemas against a registry over HTTP.
pub struct RegistryClient {
    settings: SrSettings,
    /// The registry's base URL, without a trailing slash.
    url: String,
    /// The credentials and timeout, for the calls the converter has none
    /// for (importing the catalogue).
    auth: RegistryAuth,
    timeout: Duration,
    /// Whether a schema missing under its subject is registered, or refused
    /// (lookup-only, for registries whose schemas are managed elsewhere).
    auto_register: bool,
    /// Subject → id of the schema this process registered under it.
    ids: Mutex<HashMap<String, u32>>,
    /// Id → parsed schema, for decoding.
    schemas: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").finish_non_exhaustive()
    }
}

/// How the client authenticates to the registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic authentication (Confluent Cloud: an API key and secret).
    Basic { username: String, password: String },
    /// A bearer token.
    Bearer(String),
}

impl std::fmt::Debug for RegistryAuth {
    /// Names the kind, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::None => f.write_str("None"),
            RegistryAuth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            RegistryAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl RegistryClient {
    /// A client for the registry at `url`, authenticating with `auth`.
    ///
    /// # Errors
    ///
    /// [`CodecError::Registry`] if the HTTP client cannot be built.
    pub fn new(url: &str, timeout: Duration, auth: &RegistryAuth) -> Result<Self, CodecError> {
        let url = url.trim_end_matches('/').to_owned();
        let mut builder = SrSettings::new_builder(url.clone());
        builder.set_timeout(timeout);
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Basic { username, password } => {
                builder.set_basic_authorization(username, Some(password));
            }
            RegistryAuth::Bearer(token) => {
                builder.set_token_authorization(token);
            }
        }
        let settings = builder.build().map_err(|err| CodecError::Registry {
            reason: err.to_string(),
        })?;
        Ok(Self {
            settings,
            url,
            auth: auth.clone(),
            timeout,
            auto_register: true,
            ids: Mutex::default(),
            schemas: Mutex::default(),
        })
    }

    /// A client that never registers: [`RegistryClient::register`] finds
    /// the schema as the subject's latest version or fails naming the subject.
    #[must_use]
    pub fn lookup_only(mut self) -> Self {
        self.auto_register = false;
        self
    }

    /// Registers `text` under `subject` (idempotent on the registry's side)
    /// and returns its id, from cache after the first call. Lookup-only, it
    /// instead requires `text` to be the subject's latest version.
    ///
    /// # Errors
    ///
    /// [`CodecError::Registry`] if the registry refuses or cannot be reached,
    /// for example because the schema is not compatible with the subject's
    /// earlier versions.
    pub async fn register(&self, subject: &str, text: &str) -> Result<u32, CodecError> {
        if let Some(id) = lock(&self.ids).get(subject) {
            return Ok(*id);
        }
        let registered = if self.auto_register {
            let supplied = SuppliedSchema::new(None, SchemaType::Avro, text.to_owned());
            post_schema(&self.settings, subject.to_owned(), supplied)
                .await
                .map_err(|err| CodecError::Registry {
                    reason: format!("registering {subject}: {err}"),
                })?
        } else {
            self.look_up(subject, text).await?
        };
        lock(&self.ids).insert(subject.to_owned(), registered.id);
        lock(&self.schemas).insert(registered.id, Arc::new(parse(text)?));
        Ok(registered.id)
    }

    /// The subject's latest version, which must be `text`'s schema.
    async fn look_up(
        &self,
        subject: &str,
        text: &str,
    ) -> Result<schema_registry_converter::schema_registry_common::RegisteredSchema, CodecError>
    {
        let topic = subject.strip_suffix("-value").unwrap_or(subject).to_owned();
        let latest = get_schema_by_subject(
            &self.settings,
            &SubjectNameStrategy::TopicNameStrategy(topic, false),
        )
        .await
        .map_err(|err| CodecError::Registry {
            reason: format!(
                "schema registry has no schema under {subject} and registering is off (--schema-registry-auto-register=false): {err}"
            ),
        })?;
        let ours = parse(text)?;
        let theirs = parse(&latest.schema)?;
        if ours.canonical_form() != theirs.canonical_form() {
            return Err(CodecError::Registry {
                reason: format!(
                    "the latest schema under {subject} (id {}) is not this build's; register it or turn registering on",
                    latest.id
                ),
            });
        }
        Ok(latest)
    }

    /// The schema with `id`, from cache after the first call.
    ///
    /// # Errors
    ///
    /// [`CodecError::Registry`] if the registry does not know the id or
    /// cannot be reached; [`CodecError::InvalidSchema`] if what it returns is
    /// not an Avro schema.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, CodecError> {
        if let Some(schema) = lock(&self.schemas).get(&id) {
            return Ok(Arc::clone(schema));
        }
        let registered =
            get_schema_by_id(id, &self.settings)
                .await
                .map_err(|err| CodecError::Registry {
                    reason: format!("fetching schema id {id}: {err}"),
                })?;
        let schema = Arc::new(parse(&registered.schema)?);
        lock(&self.schemas).insert(id, Arc::clone(&schema));
        Ok(schema)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
