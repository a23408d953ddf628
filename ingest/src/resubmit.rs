//! Resubmitting a refused request (`eventide replay --rejects`): its body
//! goes through the same validation as when it arrived, judged now — after
//! a fix (a schema, a limit) it may pass; if not, it is refused again with
//! the reason.

use schemas::Reject;
use schemas::identity::IdempotencyKey;

use crate::error::ApiError;
use crate::records::Outgoing;
use crate::validation::{Context, parse_batch, parse_idempotency_key, parse_object, single_parser};

/// The batch endpoint's path.
const BATCH: &str = "/v1/batch";

/// What resubmitting one refused request gave.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records to write, in the request's order.
    pub accepted: Vec<Outgoing>,
    /// Why the request (or each refused batch item) is still refused.
    pub refused: Vec<ApiError>,
}

/// Whether `reject` holds a request worth resubmitting: one refused for its
/// content (400 or 403) with a body, not for how it arrived (a missing key,
/// a rate limit, an oversized or unreadable body).
pub fn resubmittable(reject: &Reject) -> bool {
    matches!(reject.status, 400 | 403) && !reject.body.is_empty()
}

/// Judges `reject`'s body again as `context` says now, with `max_batch`
/// items at most per batch.
pub fn resubmit(reject: &Reject, context: &Context<'_>, max_batch: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let application = reject.application_id.as_str();
    if reject.endpoint == BATCH {
        match parse_batch(&reject.body, max_batch, context) {
            Ok(items) => {
                for item in items {
                    match item {
                        Ok(keyed) => outcome.accepted.push(Outgoing::from_item(
                            keyed.item,
                            keyed.idempotency_key,
                            application,
                            context.now,
                        )),
                        Err(err) => outcome.refused.push(err.into()),
                    }
                }
            }
            Err(err) => outcome.refused.push(err.into()),
        }
        return outcome;
    }
    let Some(parse) = single_parser(&reject.endpoint) else {
        outcome.refused.push(ApiError::NotFound {
            path: reject.endpoint.clone(),
        });
        return outcome;
    };
    let key: Option<IdempotencyKey> = reject
        .idempotency_key
        .as_deref()
        .and_then(|text| parse_idempotency_key("Idempotency-Key", text).ok());
    match parse_object(&reject.body).and_then(|object| parse(&object, context)) {
        Ok(item) => outcome
            .accepted
            .push(Outgoing::from_item(item, key, application, context.now)),
        Err(err) => outcome.refused.push(err.into()),
    }
    outcome
}
