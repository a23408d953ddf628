//! What a click says about its visitor, computed in the processor's pure
//! core from the redirect record: who fetched the link ([`agents`]), where
//! the click came from ([`referrers`]), which campaign (the destination
//! URL's `utm_*` parameters), which country, region and city ([`geo`]) and
//! how the link was reached (`source`). The address is used here and
//! dropped: nothing derived from it but the place and the keyed visitor
//! hash leaves this module.

pub mod agents;
pub mod geo;
pub mod referrers;

use std::net::IpAddr;

use schemas::Redirect;

pub use agents::Class;
use agents::Classifier;
use geo::Geo;
use referrers::Referrers;

use crate::user_agent::{Agent, UserAgents};

/// The longest UTM value kept; longer ones are cut on a char boundary.
pub const MAX_UTM: usize = 128;

/// The value of a dimension a click does not have (no referrer, no UTM tag).
pub const NONE: &str = "(none)";

/// A breakdown of human clicks, beside the agent classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Country,
    Region,
    City,
    Referrer,
    ReferrerChannel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Source,
}

/// How many dimensions a click has.
pub const DIMENSIONS: usize = 9;

impl Dimension {
    /// Every dimension, in a stable order.
    pub const ALL: [Dimension; DIMENSIONS] = [
        Dimension::Country,
        Dimension::Region,
        Dimension::City,
        Dimension::Referrer,
        Dimension::ReferrerChannel,
        Dimension::UtmSource,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
        Dimension::Source,
    ];

    /// As stored and queried (`group_by`, `dimension`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Country => "country",
            Dimension::Region => "region",
            Dimension::City => "city",
            Dimension::Referrer => "referrer",
            Dimension::ReferrerChannel => "referrer_channel",
            Dimension::UtmSource => "utm_source",
            Dimension::UtmMedium => "utm_medium",
            Dimension::UtmCampaign => "utm_campaign",
            Dimension::Source => "source",
        }
    }

    /// The most distinct values it keeps per short code and day given
    /// `--max-dimension-values`: countries (about 250) and channels (five)
    /// are bounded by nature and keep all; regions and cities (as many as
    /// the database holds), referrers, UTM values and source labels keep
    /// `max`.
    pub fn cap(self, max: usize) -> usize {
        match self {
            Dimension::Country | Dimension::ReferrerChannel => usize::MAX,
            _ => max,
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// One click, enriched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub class: Class,
    pub agent: Agent,
    /// The value of every [`Dimension`], in [`Dimension::ALL`]'s order.
    pub dimensions: [String; DIMENSIONS],
    /// The keyed hash of (address, user agent), for unique visitors; `None`
    /// without an address.
    pub visitor: Option<u64>,
}

impl Visit {
    /// The value of `dimension`.
    pub fn value(&self, dimension: Dimension) -> &str {
        let index = Dimension::ALL
            .iter()
            .position(|d| *d == dimension)
            .unwrap_or_default();
        &self.dimensions[index]
    }
}

/// Why enrichment cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error(transparent)]
    Patterns(#[from] agents::PatternError),
    #[error(transparent)]
    Referrers(#[from] referrers::ReferrersError),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
}

/// The visitor hash key when the operator sets none: unique visitors still
/// count, but anyone with this source can test an address against them.
pub const DEVELOPMENT_VISITOR_KEY: &str = "eventide-development-visitor-key";

/// Entries a cache keeps before it starts over; bounds its memory.
const CACHE_CAPACITY: usize = 10_000;

/// A bounded cache by text key: producers repeat agents, referrers and
/// destination URLs, so each is parsed once, not per click.
#[derive(Debug)]
struct Cache<V> {
    map: std::collections::HashMap<String, V>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Self {
            map: std::collections::HashMap::new(),
        }
    }
}

impl<V: Clone> Cache<V> {
    fn get_or(&mut self, key: &str, make: impl FnOnce() -> V) -> V {
        if let Some(value) = self.map.get(key) {
            return value.clone();
        }
        let value = make();
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
        }
        self.map.insert(key.to_owned(), value.clone());
        value
    }
}

/// Enriches clicks; one per redirects worker (its caches are its own).
pub struct Enricher {
    agents: UserAgents,
    classifier: Classifier,
    referrers: Referrers,
    geo: Option<Geo>,
    visitor_key: Vec<u8>,
    fetchers: Cache<agents::Fetcher>,
    referrer_cache: Cache<(Option<String>, referrers::Channel)>,
    utm_cache: Cache<[Option<String>; 3]>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("agents", &self.agents)
            .field("geo", &self.geo)
            .finish_non_exhaustive()
    }
}

impl Enricher {
    /// An enricher placing countries with `geo`, or every click in
    /// [`geo::UNKNOWN`] without one.
    ///
    /// # Errors
    ///
    /// [`EnrichError`] if a shipped list does not load.
    pub fn new(geo: Option<Geo>) -> Result<Self, EnrichError> {
        Ok(Self {
            agents: UserAgents::default(),
            classifier: Classifier::new()?,
            referrers: Referrers::new()?,
            geo,
            visitor_key: DEVELOPMENT_VISITOR_KEY.as_bytes().to_vec(),
            fetchers: Cache::default(),
            referrer_cache: Cache::default(),
            utm_cache: Cache::default(),
        })
    }

    /// Hashes visitors with `key` (`--visitor-hash-key`).
    #[must_use]
    pub fn with_visitor_key(mut self, key: &[u8]) -> Self {
        self.visitor_key = key.to_vec();
        self
    }

    /// What `redirect` says about its visitor.
    pub fn visit(&mut self, redirect: &Redirect) -> Visit {
        let agent = self.agents.classify(&redirect.user_agent);
        let classifier = &self.classifier;
        let class = self
            .fetchers
            .get_or(&redirect.user_agent, || {
                classifier.fetcher(&redirect.user_agent)
            })
            .class(redirect.method.as_deref(), agent.bot);
        let ip = redirect
            .ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let place = match (self.geo.as_mut(), ip) {
            (Some(geo), Some(ip)) => geo.place(ip),
            _ => geo::Place::unknown(),
        };
        // The canonical text, so `::1` and `0:0::1` are one visitor.
        let visitor = ip.map(|ip| {
            crate::sketch::visitor_hash(&self.visitor_key, &ip.to_string(), &redirect.user_agent)
        });
        let (host, channel) = match redirect.referrer.as_deref() {
            Some(referrer) => {
                let referrers = &self.referrers;
                self.referrer_cache
                    .get_or(referrer, || referrers.classify(Some(referrer)))
            }
            None => self.referrers.classify(None),
        };
        let [utm_source, utm_medium, utm_campaign] = self
            .utm_cache
            .get_or(&redirect.full_url, || utm(&redirect.full_url));
        let dimensions = [
            place.country,
            place.region,
            place.city,
            host.unwrap_or_else(|| NONE.to_owned()),
            channel.as_str().to_owned(),
            utm_source.unwrap_or_else(|| NONE.to_owned()),
            utm_medium.unwrap_or_else(|| NONE.to_owned()),
            utm_campaign.unwrap_or_else(|| NONE.to_owned()),
            redirect.source.clone().unwrap_or_else(|| "link".to_owned()),
        ];
        Visit {
            class,
            agent,
            dimensions,
            visitor,
        }
    }
}

/// `utm_source`, `utm_medium` and `utm_campaign` of a destination URL: the
/// first of each, control characters dropped, cut to [`MAX_UTM`] bytes;
/// `None` when absent or empty.
pub fn utm(full_url: &str) -> [Option<String>; 3] {
    let mut found: [Option<String>; 3] = [None, None, None];
    let Ok(url) = url::Url::parse(full_url) else {
        return found;
    };
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "utm_source" => 0,
            "utm_medium" => 1,
            "utm_campaign" => 2,
            _ => continue,
        };
        if found[slot].is_some() {
            continue;
        }
        let mut clean: String = value.chars().filter(|c| !c.is_control()).collect();
        let clean_len = clean.trim().len();
        if clean_len == 0 {
            continue;
        }
        clean = clean.trim().to_owned();
        if clean.len() > MAX_UTM {
            let end = (0..=MAX_UTM)
                .rev()
                .find(|i| clean.is_char_boundary(*i))
                .unwrap_or(0);
            clean.truncate(end);
        }
        found[slot] = Some(clean);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> Redirect {
        Redirect {
            event_id: uuid::Uuid::nil(),
            occurred_at: 0,
            received_at: 0,
            application_id: "app".into(),
            short_code: "abc".into(),
            full_url: "https://shop.example/p?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale&utm_source=second".into(),
            client_id: 1,
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0".into(),
            referrer: Some("https://www.google.com/search?q=x".into()),
            idempotency_key: None,
            ip: Some("81.2.69.142".into()),
            method: Some("GET".into()),
            source: Some("qr".into()),
            accept_language: None,
        }
    }

    #[test]
    fn a_click_is_enriched_in_every_dimension() {
        let geo = Geo::from_bytes(geo::test_database(&[("81.2.69.0/24", "GB")])).expect("geo");
        let mut enricher = Enricher::new(Some(geo)).expect("lists load");
        let visit = enricher.visit(&redirect());
        assert_eq!(visit.class, Class::Human);
        let same = enricher.visit(&Redirect {
            ip: Some("81.2.69.142".into()),
            ..redirect()
        });
        assert_eq!(visit.visitor, same.visitor);
        assert!(visit.visitor.is_some());
        let values: Vec<(&str, &str)> = Dimension::ALL
            .iter()
            .map(|d| (d.as_str(), visit.value(*d)))
            .collect();
        assert_eq!(
            values,
            [
                ("country", "GB"),
                ("region", geo::UNKNOWN),
                ("city", geo::UNKNOWN),
                ("referrer", "google.com"),
                ("referrer_channel", "search"),
                ("utm_source", "newsletter"),
                ("utm_medium", "email"),
                ("utm_campaign", "spring sale"),
                ("source", "qr"),
            ]
        );
        let bare = Redirect {
            full_url: "https://shop.example/".into(),
            referrer: None,
            ip: None,
            source: None,
            method: Some("HEAD".into()),
            ..redirect()
        };
        let visit = Enricher::new(None).expect("lists load").visit(&bare);
        assert_eq!(visit.class, Class::Preview);
        assert_eq!(visit.visitor, None, "no address, no visitor");
        assert_eq!(
            Dimension::ALL.map(|d| visit.value(d).to_owned()),
            [
                "unknown", "unknown", "unknown", NONE, "direct", NONE, NONE, NONE, "link"
            ]
            .map(str::to_owned)
        );
        for dimension in Dimension::ALL {
            assert_eq!(Dimension::parse(dimension.as_str()), Some(dimension));
        }
    }

    #[test]
    fn utm_values_are_cleaned_and_cut() {
        let long = "x".repeat(MAX_UTM + 10);
        let [source, medium, campaign] = utm(&format!(
            "https://a.example/?utm_source=%00ad%0A&utm_medium=&utm_campaign={long}"
        ));
        assert_eq!(source.as_deref(), Some("ad"));
        assert_eq!(medium, None);
        assert_eq!(campaign.map(|c| c.len()), Some(MAX_UTM));
        assert_eq!(utm("not a url"), [None, None, None]);
    }
}
