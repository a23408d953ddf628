//! `eventide schemas register`: writes every version of the compiled-in
//! catalogue to a registry under the id the catalogue pins for it, so a
//! system that ran on the catalogue moves to the registry without a schema
//! id meaning two things: records already on the topics (framed with
//! catalogue ids) decode with the same schema either way.
//!
//! Pinning ids is the registry's IMPORT mode (Confluent's
//! `PUT /mode/{subject}` and `POST /subjects/{subject}/versions` with `id`
//! and `version`; `mode.mutability` must be on). A version whose id already
//! holds the same schema is left as it is; an id that holds another schema
//! is a collision and nothing further is written.

use serde_json::{Value, json};

use super::RegistryClient;
use crate::catalogue::{ENTRIES, parse};
use crate::codec::CodecError;
use crate::topics::TopicNames;

/// The registry's media type.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What happened to one catalogue version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The subject it lives under (topic name strategy, with the prefix).
    pub subject: String,
    /// Its version within the subject.
    pub version: u32,
    /// The id the catalogue pins, and the registry now gives it.
    pub id: u32,
    /// Whether the registry already held it.
    pub already_there: bool,
}

impl RegistryClient {
    /// Writes every catalogue version the registry lacks under its pinned
    /// id, subject by subject in version order.
    ///
    /// # Errors
    ///
    /// [`CodecError::Registry`] naming the id and subject when the registry
    /// gives a catalogue id to another schema, refuses IMPORT mode or a
    /// version, or cannot be reached.
    pub async fn import_catalogue(&self, names: &TopicNames) -> Result<Vec<Imported>, CodecError> {
        let mut report = Vec::new();
        let mut missing = Vec::new();
        for entry in ENTRIES {
            let subject = names.value_subject(entry.topic);
            let ours = parse(entry.text)?.canonical_form();
            match self.schema_text(entry.id).await? {
                Some(text) if parse(&text)?.canonical_form() == ours => report.push(Imported {
                    subject,
                    version: entry.version,
                    id: entry.id,
                    already_there: true,
                }),
                Some(_) => {
                    return Err(CodecError::Registry {
                        reason: format!(
                            "schema id {} on the registry is another schema, not {subject} version {}: \
                             records framed with the catalogue's id {} would be misread; import into a \
                             registry (or context) that has not handed out ids 1-{} yet",
                            entry.id,
                            entry.version,
                            entry.id,
                            ENTRIES.len()
                        ),
                    });
                }
                None => missing.push((subject, entry)),
            }
        }
        let mut subjects: Vec<&str> = missing
            .iter()
            .map(|(subject, _)| subject.as_str())
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        for subject in subjects {
            self.set_mode(subject, "IMPORT").await?;
            for (_, entry) in missing.iter().filter(|(s, _)| s == subject) {
                let body = json!({
                    "schema": entry.text,
                    "schemaType": "AVRO",
                    "id": entry.id,
                    "version": entry.version,
                });
                let answer = self
                    .call(
                        reqwest::Method::POST,
                        &format!("subjects/{subject}/versions"),
                        Some(body),
                    )
                    .await
                    .map_err(|reason| CodecError::Registry {
                        reason: format!(
                            "importing {subject} version {} as id {}: {reason}",
                            entry.version, entry.id
                        ),
                    })?;
                let given = answer["id"].as_u64();
                if given != Some(u64::from(entry.id)) {
                    return Err(CodecError::Registry {
                        reason: format!(
                            "the registry gave {subject} version {} the id {given:?}, not the catalogue's {}",
                            entry.version, entry.id
                        ),
                    });
                }
                report.push(Imported {
                    subject: subject.to_owned(),
                    version: entry.version,
                    id: entry.id,
                    already_there: false,
                });
            }
            self.set_mode(subject, "READWRITE").await?;
        }
        report.sort_by_key(|imported| imported.id);
        Ok(report)
    }

    /// The catalogue ids the registry gives to another schema.
    ///
    /// # Errors
    ///
    /// [`CodecError::Registry`] if the registry cannot be reached.
    pub async fn catalogue_collisions(&self) -> Result<Vec<u32>, CodecError> {
        let mut collisions = Vec::new();
        for entry in ENTRIES {
            if let Some(text) = self.schema_text(entry.id).await?
                && parse(&text)?.canonical_form() != parse(entry.text)?.canonical_form()
            {
                collisions.push(entry.id);
            }
        }
        Ok(collisions)
    }

    /// The schema text the registry holds under `id`, if any.
    async fn schema_text(&self, id: u32) -> Result<Option<String>, CodecError> {
        match self
            .call(reqwest::Method::GET, &format!("schemas/ids/{id}"), None)
            .await
        {
            Ok(answer) => Ok(answer["schema"].as_str().map(str::to_owned)),
            Err(reason) if reason.starts_with("404") => Ok(None),
            Err(reason) => Err(CodecError::Registry {
                reason: format!("fetching schema id {id}: {reason}"),
            }),
        }
    }

    async fn set_mode(&self, subject: &str, mode: &str) -> Result<(), CodecError> {
        self.call(
            reqwest::Method::PUT,
            &format!("mode/{subject}?force=true"),
            Some(json!({ "mode": mode })),
        )
        .await
        .map(drop)
        .map_err(|reason| CodecError::Registry {
            reason: format!(
                "setting {subject} to {mode} mode (does the registry allow mode changes?): {reason}"
            ),
        })
    }

    /// One request; the answer's JSON, or `"<status> <body>"`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|err| err.to_string())?;
        let mut request = http
            .request(method, format!("{}/{path}", self.url))
            .header(reqwest::header::ACCEPT, MEDIA_TYPE);
        request = match &self.auth {
            super::RegistryAuth::None => request,
            super::RegistryAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
            super::RegistryAuth::Bearer(token) => request.bearer_auth(token),
        };
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|err| err.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|err| err.to_string())?;
        if !status.is_success() {
            return Err(format!("{} {text}", status.as_u16()));
        }
        serde_json::from_str(&text).map_err(|err| format!("{status} answer is not JSON: {err}"))
    }
}
