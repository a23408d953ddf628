//! Request signing by the Standard Webhooks scheme: every request carries
//! `webhook-id` (the record's id, the same on every retry and replay),
//! `webhook-timestamp` (Unix seconds of this attempt) and, when the
//! destination has secrets, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one `v1,` entry per active secret
//! (space-separated) so a secret can be rotated without downtime. Secrets
//! are `whsec_<base64 key>`; receivers verify with any Standard Webhooks
//! library and reject timestamps more than five minutes off.

use base64::Engine as _;
use rand::RngCore as _;
use standardwebhooks::Webhook;
use thiserror::Error;

/// The record's id.
pub const ID: &str = "webhook-id";
/// Unix seconds of the attempt.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// `v1,<base64>` per secret, space-separated.
pub const SIGNATURE: &str = "webhook-signature";

/// The prefix of a secret.
const PREFIX: &str = "whsec_";

/// Why a secret or a body cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A secret is not `whsec_` followed by base64.
    #[error(
        "secret #{position} must be `whsec_` followed by a base64 key of 24 to 64 bytes (generate one with `eventide destinations new-secret`)"
    )]
    Secret { position: usize },
    /// The body is not UTF-8 (ours are JSON, so never).
    #[error("body is not UTF-8")]
    Body,
}

/// Signs with every active secret of a destination.
pub struct Signer {
    keys: Vec<Webhook>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("secrets", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// A signer for `secrets`, oldest first.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Secret`] naming the first unusable secret.
    pub fn new(secrets: &[String]) -> Result<Self, SignatureError> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                key(secret).ok_or(SignatureError::Secret {
                    position: index + 1,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Whether there is any secret to sign with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `webhook-signature` value of `body` sent as `id` at `timestamp`.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Body`] for a body that is not UTF-8.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
        let signatures = self
            .keys
            .iter()
            .map(|key| {
                key.sign(id, timestamp, body)
                    .map_err(|_| SignatureError::Body)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(signatures.join(" "))
    }
}

/// The key of a `whsec_` secret, `None` if it is not one.
fn key(secret: &str) -> Option<Webhook> {
    let encoded = secret.strip_prefix(PREFIX)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    (24..=64)
        .contains(&bytes.len())
        .then(|| Webhook::from_bytes(bytes).ok())
        .flatten()
}

/// A fresh random secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn matches_the_specifications_example() {
        let signer = Signer::new(&[SECRET.to_owned()]).expect("valid secret");
        assert_eq!(
            signer
                .sign(
                    "msg_p5jXN8AQM9LWM0D4loKWxJek",
                    1_614_265_330,
                    br#"{"test": 2432232314}"#
                )
                .expect("utf-8"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_active_secret_signs_so_receivers_holding_either_verify() {
        let (old, new) = (new_secret(), new_secret());
        let signer = Signer::new(&[old.clone(), new.clone()]).expect("valid");
        let now = chrono::Utc::now().timestamp();
        let value = signer.sign("id-1", now, b"{}").expect("utf-8");
        assert_eq!(value.split(' ').count(), 2);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(ID, axum::http::HeaderValue::from_static("id-1"));
        headers.insert(TIMESTAMP, now.to_string().parse().expect("digits"));
        headers.insert(SIGNATURE, value.parse().expect("ascii"));
        for secret in [old, new] {
            Webhook::new(&secret)
                .expect("secret")
                .verify(b"{}", &headers)
                .expect("verifies");
        }
        assert!(
            Webhook::new(&new_secret())
                .expect("secret")
                .verify(b"{}", &headers)
                .is_err(),
            "a secret not signed with does not verify"
        );
    }

    #[test]
    fn unusable_secrets_are_named_by_position() {
        for bad in ["notify-secret", "whsec_not base64!", "whsec_c2hvcnQ="] {
            assert_eq!(
                Signer::new(&[new_secret(), bad.to_owned()]).err(),
                Some(SignatureError::Secret { position: 2 }),
                "{bad}"
            );
        }
        assert!(Signer::new(&[]).expect("none").is_empty());
    }
}
