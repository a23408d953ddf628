//! API keys: the keys file format both HTTP services read, and lookup of a
//! presented key by its SHA-256 hash. Keys are high-entropy random tokens,
//! so a fast hash is the right one (as for GitHub or Stripe tokens); the
//! file never holds a key itself.
//!
//! ```toml
//! [[keys]]
//! id = "shortener-prod"          # names the key in logs and metrics
//! application = "shortener"      # stamped on every record it produces
//! sha256 = "9f86d08…"            # `eventide hash-key <key>` prints it
//! scopes = ["produce"]           # produce, query, admin
//! rate_limit = 2000              # requests per second; default --rate-limit
//! destinations = ["analytics"]   # may name only these on a record; any when absent
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Write events through ingest.
    Produce,
    /// Read through the query API.
    Query,
    /// Steer delivery through the query API: pause, resume, replay.
    Admin,
}

/// The caller a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name in logs and metrics.
    pub key_id: String,
    /// The application its records are stamped with.
    pub application: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Its own requests-per-second limit, if it has one.
    pub rate_limit: Option<u32>,
    /// The only destinations its records may name; any when `None`.
    pub destinations: Option<Vec<String>>,
}

impl Principal {
    /// Whether the key may do `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The first of `named` this key may not name on a record.
    pub fn forbidden_destination<'a>(&self, named: &'a [String]) -> Option<&'a str> {
        let allowed = self.destinations.as_ref()?;
        named
            .iter()
            .find(|name| !allowed.contains(name))
            .map(String::as_str)
    }
}

/// Why a keys file was refused.
#[derive(Debug, Error)]
pub enum KeysError {
    /// Not valid TOML of the expected shape.
    #[error("keys file: {0}")]
    Parse(String),
    /// A hash is not 64 hex digits.
    #[error("key `{id}`: sha256 must be 64 hex digits")]
    BadHash { id: String },
    /// Two entries share an id or a hash.
    #[error("key `{id}` appears twice")]
    Duplicate { id: String },
    /// A listed destination is not a destination name.
    #[error("key `{id}`: destinations: {name:?} is not 1 to 64 of [a-z0-9_-]")]
    BadDestination { id: String, name: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    application: String,
    sha256: String,
    scopes: Vec<Scope>,
    rate_limit: Option<u32>,
    destinations: Option<Vec<String>>,
}

/// The development keys of the all-in-one local default.
pub const DEV_PRODUCER_KEY: &str = "dev-producer";
/// The development analyst key of the all-in-one local default.
pub const DEV_ANALYST_KEY: &str = "dev-analyst";
/// The development operator key of the all-in-one local default (pause,
/// resume, replay).
pub const DEV_ADMIN_KEY: &str = "dev-admin";

/// Known keys by hash. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_hash: Arc<HashMap<String, Principal>>,
}

impl ApiKeys {
    /// Parses a keys file.
    ///
    /// # Errors
    ///
    /// [`KeysError`] naming the first problem.
    pub fn from_toml(text: &str) -> Result<Self, KeysError> {
        let file: KeysFile =
            toml::from_str(text).map_err(|err| KeysError::Parse(err.to_string()))?;
        let mut by_hash = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for entry in file.keys {
            let hash = entry.sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(KeysError::BadHash { id: entry.id });
            }
            if !ids.insert(entry.id.clone()) || by_hash.contains_key(&hash) {
                return Err(KeysError::Duplicate { id: entry.id });
            }
            if let Some(name) = entry
                .destinations
                .iter()
                .flatten()
                .find(|name| !crate::destination::is_valid_name(name))
            {
                return Err(KeysError::BadDestination {
                    id: entry.id,
                    name: name.clone(),
                });
            }
            by_hash.insert(
                hash,
                Principal {
                    key_id: entry.id,
                    application: entry.application,
                    scopes: entry.scopes,
                    rate_limit: entry.rate_limit,
                    destinations: entry.destinations,
                },
            );
        }
        Ok(Self {
            by_hash: Arc::new(by_hash),
        })
    }

    /// The well-known development keys: `dev-producer` (produce, application
    /// `dev`), `dev-analyst` (query) and `dev-admin` (query and admin: an
    /// operator reads what they steer). Never for production.
    pub fn development() -> Self {
        let principal = |key_id: &str, scopes: &[Scope]| Principal {
            key_id: key_id.to_owned(),
            application: "dev".to_owned(),
            scopes: scopes.to_vec(),
            rate_limit: None,
            destinations: None,
        };
        let by_hash = HashMap::from([
            (
                hash_key(DEV_PRODUCER_KEY),
                principal(DEV_PRODUCER_KEY, &[Scope::Produce]),
            ),
            (
                hash_key(DEV_ANALYST_KEY),
                principal(DEV_ANALYST_KEY, &[Scope::Query]),
            ),
            (
                hash_key(DEV_ADMIN_KEY),
                principal(DEV_ADMIN_KEY, &[Scope::Query, Scope::Admin]),
            ),
        ]);
        Self {
            by_hash: Arc::new(by_hash),
        }
    }

    /// The principal of a presented key, if it is known.
    pub fn authenticate(&self, presented: &str) -> Option<&Principal> {
        self.by_hash.get(&hash_key(presented))
    }

    /// The principal whose key hashes to `hash` ([`hash_key`]): how a
    /// session that remembers only the hash finds its key again, so a key
    /// removed from the file ends its sessions.
    pub fn by_hash(&self, hash: &str) -> Option<&Principal> {
        self.by_hash.get(hash)
    }

    /// Every known principal.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.by_hash.values()
    }
}

/// How a service authenticates its callers.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Bearer keys checked against these hashes.
    Keys(ApiKeys),
    /// No authentication (`--insecure-no-auth`): every caller is `anonymous`
    /// with every scope.
    Disabled,
}

/// The application and key id of unauthenticated callers.
pub const ANONYMOUS: &str = "anonymous";

impl Auth {
    /// The principal for an `Authorization` header value, if it is valid.
    pub fn principal(&self, authorization: Option<&str>) -> Option<Principal> {
        match self {
            Auth::Disabled => Some(Principal {
                key_id: ANONYMOUS.to_owned(),
                application: ANONYMOUS.to_owned(),
                scopes: vec![Scope::Produce, Scope::Query],
                rate_limit: None,
                destinations: None,
            }),
            Auth::Keys(keys) => keys.authenticate(bearer_token(authorization?)?).cloned(),
        }
    }

    /// The principal of a key presented as is (a sign-in form), and the
    /// key's hash to remember it by.
    pub fn sign_in(&self, key: &str) -> Option<(Principal, String)> {
        let principal = self.principal(Some(&format!("Bearer {key}")))?;
        Some((principal, hash_key(key)))
    }

    /// The principal whose key hashes to `hash`, if it is still known.
    pub fn principal_by_hash(&self, hash: &str) -> Option<Principal> {
        match self {
            Auth::Disabled => self.principal(None),
            Auth::Keys(keys) => keys.by_hash(hash).cloned(),
        }
    }
}

/// The token of a `Bearer` credential; the scheme is case-insensitive
/// (RFC 9110, 11.1) and one or more spaces follow it.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The lowercase hex SHA-256 of a key, as the keys file stores it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        for header in ["Bearer k1", "bearer k1", "BEARER  k1 ", "  bEaReR k1"] {
            assert_eq!(bearer_token(header), Some("k1"), "{header:?}");
        }
        for header in ["Basic k1", "Bearer", "Bearer   ", "Bearerk1", "k1"] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_key_is_found_by_its_hash_and_carries_its_scopes() {
        let text = format!(
            "[[keys]]\nid = \"s\"\napplication = \"shortener\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\nrate_limit = 5\n",
            hash_key("secret-1")
        );
        let keys = ApiKeys::from_toml(&text).expect("parses");
        let principal = keys.authenticate("secret-1").expect("known");
        assert_eq!(principal.application, "shortener");
        assert!(principal.may(Scope::Produce));
        assert!(!principal.may(Scope::Query));
        assert_eq!(principal.rate_limit, Some(5));
        assert!(keys.authenticate("secret-2").is_none());
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(matches!(
            ApiKeys::from_toml(
                "[[keys]]\nid = \"a\"\napplication = \"x\"\nsha256 = \"abc\"\nscopes = []\n"
            ),
            Err(KeysError::BadHash { .. })
        ));
        let hash = hash_key("k");
        let twice = format!(
            "[[keys]]\nid = \"a\"\napplication = \"x\"\nsha256 = \"{hash}\"\nscopes = []\n[[keys]]\nid = \"b\"\napplication = \"x\"\nsha256 = \"{hash}\"\nscopes = []\n"
        );
        assert!(matches!(
            ApiKeys::from_toml(&twice),
            Err(KeysError::Duplicate { .. })
        ));
        assert!(matches!(
            ApiKeys::from_toml("keys = 3"),
            Err(KeysError::Parse(_))
        ));
        assert!(matches!(
            ApiKeys::from_toml(&format!(
                "[[keys]]\nid = \"a\"\napplication = \"x\"\nsha256 = \"{hash}\"\nscopes = [\"superuser\"]\n"
            )),
            Err(KeysError::Parse(_))
        ));
    }

    #[test]
    fn a_key_may_be_limited_to_some_destinations() {
        let hash = hash_key("k");
        let keys = ApiKeys::from_toml(&format!(
            "[[keys]]\nid = \"a\"\napplication = \"x\"\nsha256 = \"{hash}\"\nscopes = [\"produce\"]\ndestinations = [\"crm\"]\n"
        ))
        .expect("valid");
        let principal = keys.authenticate("k").expect("found");
        let named = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(principal.forbidden_destination(&named(&["crm"])), None);
        assert_eq!(
            principal.forbidden_destination(&named(&["crm", "analytics"])),
            Some("analytics")
        );
        assert!(matches!(
            ApiKeys::from_toml(&format!(
                "[[keys]]\nid = \"a\"\napplication = \"x\"\nsha256 = \"{hash}\"\nscopes = []\ndestinations = [\"Bad\"]\n"
            )),
            Err(KeysError::BadDestination { .. })
        ));
    }

    #[test]
    fn development_keys_have_one_scope_each() {
        let keys = ApiKeys::development();
        assert!(
            keys.authenticate(DEV_PRODUCER_KEY)
                .is_some_and(|p| p.may(Scope::Produce) && !p.may(Scope::Query))
        );
        assert!(
            keys.authenticate(DEV_ANALYST_KEY)
                .is_some_and(|p| p.may(Scope::Query) && !p.may(Scope::Produce))
        );
    }
}
