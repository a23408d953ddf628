//! Console sessions: a signed cookie that remembers which key signed in and
//! until when, and the CSRF token of each session.
//!
//! The cookie is `<expires>.<key hash>.<nonce>.<mac>`: the expiry in Unix
//! seconds, the SHA-256 of the key (as the keys file stores it, never the
//! key), a random nonce, and an HMAC-SHA256 of the three under the console
//! secret. Nothing in it is secret from its holder; nothing in it can be
//! changed without the secret. The key is looked up again on every request,
//! so a key removed from the keys file ends its sessions.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name.
pub(crate) const COOKIE: &str = "eventide_console";

/// Signs and opens sessions.
#[derive(Clone)]
pub(crate) struct Sessions {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// SHA-256 (hex) of the key that signed in.
    pub(crate) key_hash: String,
    /// Unix seconds after which the session is over.
    pub(crate) expires: i64,
    nonce: String,
}

/// Why a cookie does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("not a console session cookie")]
    Malformed,
    #[error("the session's signature does not match")]
    Forged,
    #[error("the session has expired")]
    Expired,
}

impl Sessions {
    /// Sessions signed with `secret` (any length; hashed to the MAC key), or
    /// with a random key of this process when there is none.
    pub(crate) fn new(secret: Option<&str>, ttl: Duration) -> Self {
        let key = match secret {
            Some(secret) => Sha256::digest(secret.as_bytes()).into(),
            None => {
                let mut key = [0_u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            }
        };
        Self { key, ttl }
    }

    /// How long a session lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for the key hashing to `key_hash`, signed in at `now`
    /// (Unix seconds): the session and its cookie value.
    pub(crate) fn issue(&self, key_hash: &str, now: i64) -> (Session, String) {
        let mut nonce = [0_u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let session = Session {
            key_hash: key_hash.to_owned(),
            expires: now.saturating_add(ttl),
            nonce: hex::encode(nonce),
        };
        let mac = hex::encode(self.mac(&session).finalize().into_bytes());
        let cookie = format!(
            "{}.{}.{}.{mac}",
            session.expires, session.key_hash, session.nonce
        );
        (session, cookie)
    }

    /// The session a cookie value carries, if it is ours and not over at
    /// `now` (Unix seconds).
    pub(crate) fn open(&self, cookie: &str, now: i64) -> Result<Session, SessionError> {
        let mut parts = cookie.split('.');
        let (Some(expires), Some(key_hash), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionError::Malformed);
        };
        let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        let mac = hex::decode(mac).map_err(|_| SessionError::Malformed)?;
        let session = Session {
            key_hash: key_hash.to_owned(),
            expires,
            nonce: nonce.to_owned(),
        };
        self.mac(&session)
            .verify_slice(&mac)
            .map_err(|_| SessionError::Forged)?;
        if now >= session.expires {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }

    /// The CSRF token of `session`: forms that change anything carry it.
    pub(crate) fn csrf(&self, session: &Session) -> String {
        hex::encode(self.csrf_mac(session).finalize().into_bytes())
    }

    /// Whether `token` is `session`'s CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, session: &Session, token: &str) -> bool {
        hex::decode(token).is_ok_and(|token| self.csrf_mac(session).verify_slice(&token).is_ok())
    }

    fn mac(&self, session: &Session) -> HmacSha256 {
        let mut mac = self.keyed();
        mac.update(
            format!(
                "session|{}|{}|{}",
                session.expires, session.key_hash, session.nonce
            )
            .as_bytes(),
        );
        mac
    }

    fn csrf_mac(&self, session: &Session) -> HmacSha256 {
        let mut mac = self.keyed();
        mac.update(format!("csrf|{}", session.nonce).as_bytes());
        mac
    }

    fn keyed(&self) -> HmacSha256 {
        // HMAC takes a key of any length: this never fails.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(secret: &str) -> Sessions {
        Sessions::new(Some(secret), Duration::from_secs(3600))
    }

    #[test]
    fn a_session_opens_until_it_expires() {
        let sessions = sessions("s3cret");
        let (session, cookie) = sessions.issue("abc123", 1_000);
        assert_eq!(session.expires, 4_600);
        assert_eq!(sessions.open(&cookie, 4_599), Ok(session));
        assert_eq!(sessions.open(&cookie, 4_600), Err(SessionError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_cookie_does_not_open() {
        let sessions = sessions("s3cret");
        let (_, cookie) = sessions.issue("abc123", 1_000);
        // A later expiry, or another key's hash, breaks the signature.
        let later = cookie.replacen("4600", "9600", 1);
        assert_eq!(sessions.open(&later, 1_000), Err(SessionError::Forged));
        let other = cookie.replacen("abc123", "abc124", 1);
        assert_eq!(sessions.open(&other, 1_000), Err(SessionError::Forged));
        // Signed with another secret.
        assert_eq!(
            self::sessions("other").open(&cookie, 1_000),
            Err(SessionError::Forged)
        );
        for malformed in ["", "a.b.c", "x.abc.00.00", "1.a.b.zz", "1.a.b.c.d"] {
            assert_eq!(
                sessions.open(malformed, 1_000),
                Err(SessionError::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let sessions = sessions("s3cret");
        let (first, _) = sessions.issue("abc123", 1_000);
        let (second, _) = sessions.issue("abc123", 1_000);
        let token = sessions.csrf(&first);
        assert!(sessions.csrf_matches(&first, &token));
        assert!(!sessions.csrf_matches(&second, &token));
        assert!(!sessions.csrf_matches(&first, "not hex"));
        assert!(!sessions.csrf_matches(&first, ""));
    }

    #[test]
    fn processes_without_a_secret_do_not_share_sessions() {
        let ttl = Duration::from_secs(60);
        let (_, cookie) = Sessions::new(None, ttl).issue("abc", 0);
        assert_eq!(
            Sessions::new(None, ttl).open(&cookie, 1),
            Err(SessionError::Forged)
        );
    }
}
