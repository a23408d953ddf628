//! A typed client for producers: sends items through `POST /v1/batch` in
//! chunks, retries `429` and `503` with exponential backoff and full jitter
//! (at least the server's `Retry-After`), resends only what the server did
//! not write, and reports a result per item. Every item carries an
//! `idempotency_key` (a fresh one unless the caller named it), so an item
//! resent after a lost answer is applied once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use serde_json::{Value, json};
use thiserror::Error;
use uuid::Uuid;

/// What happened to one item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    /// Durably written; the id ingest gave it.
    Accepted(Uuid),
    /// Refused for good: the `{"code", "message", ...}` error.
    Rejected(Value),
}

/// Why a send gave up.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The request could not be made or the answer not read.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// An answer the client does not understand.
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: u16, body: String },
    /// Still rate limited or unavailable after every retry.
    #[error("gave up after retries: {status}")]
    Exhausted { status: u16 },
    /// The key is missing, unknown or lacks the produce scope.
    #[error("not allowed ({status}): {body}")]
    Auth { status: u16, body: String },
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff.
    pub initial: Duration,
    /// Longest backoff.
    pub max: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_retries: 8,
        }
    }
}

/// A producer client for one ingest base URL and API key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    batch_url: String,
    key: String,
    retry: RetryPolicy,
    /// Items per request.
    pub chunk: usize,
    /// Whether items without an `idempotency_key` get a fresh one, so a
    /// retry after a lost answer is applied once (on by default).
    idempotency_keys: bool,
}

/// The outcome of one attempt: what to retry, if anything.
#[derive(Debug)]
enum Attempt {
    Retry {
        status: u16,
        after: Option<Duration>,
    },
    Fatal(ClientError),
}

impl Client {
    /// A client for ingest at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, key: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            batch_url: format!("{}/v1/batch", base_url.trim_end_matches('/')),
            key: key.to_owned(),
            retry: RetryPolicy::default(),
            chunk: 500,
            idempotency_keys: true,
        }
    }

    /// The same client, naming (or not) a fresh idempotency key for every
    /// item that has none.
    pub fn with_idempotency_keys(mut self, on: bool) -> Self {
        self.idempotency_keys = on;
        self
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sends `items` (each `{"type": ..., ...}`) in chunks; one result per
    /// item, in order.
    ///
    /// # Errors
    ///
    /// [`ClientError`] if a chunk cannot be delivered after every retry; the
    /// items of earlier chunks were written.
    pub async fn send(&self, items: Vec<Value>) -> Result<Vec<ItemResult>, ClientError> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.chunk.max(1)) {
            results.extend(self.send_batch(chunk.to_vec()).await?);
        }
        Ok(results)
    }

    /// Sends one batch, retrying only the items the server did not write.
    ///
    /// # Errors
    ///
    /// As [`Client::send`].
    pub async fn send_batch(&self, mut items: Vec<Value>) -> Result<Vec<ItemResult>, ClientError> {
        if self.idempotency_keys {
            for item in &mut items {
                if let Value::Object(object) = item {
                    object
                        .entry("idempotency_key")
                        .or_insert_with(|| Value::String(Uuid::new_v4().to_string()));
                }
            }
        }
        let results: Arc<Mutex<Vec<Option<ItemResult>>>> =
            Arc::new(Mutex::new(vec![None; items.len()]));
        let pending: Arc<Mutex<Vec<(usize, Value)>>> =
            Arc::new(Mutex::new(items.into_iter().enumerate().collect()));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.initial)
            .with_max_delay(self.retry.max)
            .with_max_times(self.retry.max_retries)
            .with_jitter();
        let attempt = || self.attempt(Arc::clone(&pending), Arc::clone(&results));
        let outcome = attempt
            .retry(backoff)
            .when(|err| matches!(err, Attempt::Retry { .. }))
            .adjust(|err, backoff| match err {
                Attempt::Retry {
                    after: Some(after), ..
                } => backoff.map(|b| b.max(*after)),
                _ => backoff,
            })
            .await;
        match outcome {
            Ok(()) => Ok(lock(&results)
                .iter()
                .map(|r| r.clone().unwrap_or(ItemResult::Rejected(Value::Null)))
                .collect()),
            Err(Attempt::Retry { status, .. }) => Err(ClientError::Exhausted { status }),
            Err(Attempt::Fatal(err)) => Err(err),
        }
    }

    async fn attempt(
        &self,
        pending: Arc<Mutex<Vec<(usize, Value)>>>,
        results: Arc<Mutex<Vec<Option<ItemResult>>>>,
    ) -> Result<(), Attempt> {
        let batch: Vec<(usize, Value)> = lock(&pending).clone();
        if batch.is_empty() {
            return Ok(());
        }
        let body: Vec<&Value> = batch.iter().map(|(_, item)| item).collect();
        let response = self
            .http
            .post(&self.batch_url)
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .map_err(|err| {
                Attempt::Retry {
                    status: 0,
                    after: None,
                }
                .or_fatal(err)
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::ACCEPTED | StatusCode::SERVICE_UNAVAILABLE
                if answer["accepted"].is_u64() =>
            {
                let unwritten = record_answer(&batch, &answer, &mut lock(&results));
                let retry = !unwritten.is_empty();
                *lock(&pending) = unwritten;
                if retry {
                    Err(Attempt::Retry {
                        status: status.as_u16(),
                        after: retry_after,
                    })
                } else {
                    Ok(())
                }
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Err(Attempt::Retry {
                    status: status.as_u16(),
                    after: retry_after,
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(Attempt::Fatal(ClientError::Auth {
                    status: status.as_u16(),
                    body: answer.to_string(),
                }))
            }
            _ => Err(Attempt::Fatal(ClientError::Unexpected {
                status: status.as_u16(),
                body: answer.to_string(),
            })),
        }
    }
}

impl Attempt {
    /// Connection failures are worth retrying; anything else is not.
    fn or_fatal(self, err: reqwest::Error) -> Attempt {
        if err.is_connect() || err.is_timeout() {
            self
        } else {
            Attempt::Fatal(err.into())
        }
    }
}

/// Files a batch answer's ids and errors into `results` by original index;
/// returns the items to send again (those not written for lack of capacity).
fn record_answer(
    batch: &[(usize, Value)],
    answer: &Value,
    results: &mut [Option<ItemResult>],
) -> Vec<(usize, Value)> {
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    let failed_at: Vec<(usize, Value)> = errors
        .iter()
        .filter_map(|e| {
            Some((
                usize::try_from(e["index"].as_u64()?).ok()?,
                e["error"].clone(),
            ))
        })
        .collect();
    let mut ids = answer["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().and_then(|s| Uuid::parse_str(s).ok()));
    let mut again = Vec::new();
    for (position, (original, item)) in batch.iter().enumerate() {
        match failed_at.iter().find(|(index, _)| *index == position) {
            Some((_, error)) if error["code"] == "unavailable" => {
                again.push((*original, item.clone()))
            }
            Some((_, error)) => results[*original] = Some(ItemResult::Rejected(error.clone())),
            None => {
                results[*original] = ids
                    .next()
                    .map(ItemResult::Accepted)
                    .or(Some(ItemResult::Rejected(json!({"code": "unknown"}))))
            }
        }
    }
    again
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_filed_by_original_index_and_unwritten_items_come_back() {
        let batch = vec![
            (3, json!({"a": 1})),
            (5, json!({"b": 2})),
            (9, json!({"c": 3})),
        ];
        let id = Uuid::now_v7();
        let answer = json!({
            "accepted": 1,
            "ids": [id],
            "errors": [
                {"index": 0, "error": {"code": "invalid_request"}},
                {"index": 2, "error": {"code": "unavailable"}}
            ]
        });
        let mut results = vec![None; 10];
        let again = record_answer(&batch, &answer, &mut results);
        assert_eq!(
            results[3],
            Some(ItemResult::Rejected(json!({"code": "invalid_request"})))
        );
        assert_eq!(results[5], Some(ItemResult::Accepted(id)));
        assert_eq!(results[9], None);
        assert_eq!(again, vec![(9, json!({"c": 3}))]);
    }
}
