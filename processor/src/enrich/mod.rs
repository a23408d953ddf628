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

use crate::sketch::VisitorPrefix;
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

/// One click, enriched. It borrows from the enricher's caches and the
/// record, so enriching a click of known agent, referrer and destination
/// allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit<'a> {
    pub class: Class,
    pub agent: &'a Agent,
    /// The value of every [`Dimension`], in [`Dimension::ALL`]'s order.
    pub dimensions: [&'a str; DIMENSIONS],
    /// The keyed hash of (address, user agent), for unique visitors; `None`
    /// without an address.
    pub visitor: Option<u64>,
}

impl<'a> Visit<'a> {
    /// The value of `dimension`.
    pub fn value(&self, dimension: Dimension) -> &'a str {
        let index = Dimension::ALL
            .iter()
            .position(|d| *d == dimension)
            .unwrap_or_default();
        self.dimensions[index]
    }
}

/// A [`Visit`] that owns its values, for clicks kept apart from the
/// enricher (simulations, benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedVisit {
    pub class: Class,
    pub agent: Agent,
    pub dimensions: [String; DIMENSIONS],
    pub visitor: Option<u64>,
}

impl OwnedVisit {
    /// Borrowed, as the aggregate takes it.
    pub fn visit(&self) -> Visit<'_> {
        Visit {
            class: self.class,
            agent: &self.agent,
            dimensions: self.dimensions.each_ref().map(String::as_str),
            visitor: self.visitor,
        }
    }
}

impl From<&Visit<'_>> for OwnedVisit {
    fn from(visit: &Visit<'_>) -> Self {
        Self {
            class: visit.class,
            agent: visit.agent.clone(),
            dimensions: visit.dimensions.map(str::to_owned),
            visitor: visit.visitor,
        }
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
/// destination URLs, so each is parsed once, not per click. `hashbrown`'s
/// foldhash (seeded per process): the keys are long and hashed per click.
#[derive(Debug)]
struct Cache<V> {
    map: hashbrown::HashMap<String, V>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Self {
            map: hashbrown::HashMap::new(),
        }
    }
}

impl<V> Cache<V> {
    /// The value for `key`, made by `make` on a miss; one hash on a hit.
    fn get_or(&mut self, key: &str, make: impl FnOnce() -> V) -> &V {
        if self.map.len() >= CACHE_CAPACITY && !self.map.contains_key(key) {
            self.map.clear();
        }
        self.map.entry_ref(key).or_insert_with(make)
    }
}

/// Enriches clicks; one per redirects worker (its caches are its own).
pub struct Enricher {
    parser: UserAgents,
    classifier: Classifier,
    referrers: Referrers,
    geo: Option<Geo>,
    visitor_key: Vec<u8>,
    /// Per user agent: woothee's classes, what the lists say and the
    /// visitor hash's state after the key and the agent (one lookup per
    /// click for all three).
    agents: Cache<(Agent, agents::Fetcher, VisitorPrefix)>,
    /// Per referrer: its host and channel.
    referrer_cache: Cache<(Option<String>, referrers::Channel)>,
    /// Per destination URL: `utm_source`, `utm_medium`, `utm_campaign`.
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
            parser: UserAgents::default(),
            classifier: Classifier::new()?,
            referrers: Referrers::new()?,
            geo,
            visitor_key: DEVELOPMENT_VISITOR_KEY.as_bytes().to_vec(),
            agents: Cache::default(),
            referrer_cache: Cache::default(),
            utm_cache: Cache::default(),
        })
    }

    /// Hashes visitors with `key` (`--visitor-hash-key`).
    #[must_use]
    pub fn with_visitor_key(mut self, key: &[u8]) -> Self {
        self.visitor_key = key.to_vec();
        // The cached hashing states began with the old key.
        self.agents = Cache::default();
        self
    }

    /// What `redirect` says about its visitor.
    pub fn visit<'a>(&'a mut self, redirect: &'a Redirect) -> Visit<'a> {
        let Self {
            parser,
            classifier,
            referrers,
            geo,
            visitor_key,
            agents,
            referrer_cache,
            utm_cache,
        } = self;
        let (agent, fetcher, prefix) = agents.get_or(&redirect.user_agent, || {
            (
                parser.parse(&redirect.user_agent),
                classifier.fetcher(&redirect.user_agent),
                VisitorPrefix::new(visitor_key, &redirect.user_agent),
            )
        });
        let class = fetcher.class(redirect.method.as_deref(), agent.bot);
        let ip = redirect
            .ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let place = match (geo.as_mut(), ip) {
            (Some(geo), Some(ip)) => Some(geo.place(ip)),
            _ => None,
        };
        let (country, region, city) = place
            .map_or((geo::UNKNOWN, geo::UNKNOWN, geo::UNKNOWN), |place| {
                (&*place.country, &*place.region, &*place.city)
            });
        // The canonical text, so `::1` and `0:0::1` are one visitor.
        let visitor = ip.map(|ip| prefix.hash(IpText::default().of(ip)));
        let (host, channel) = match redirect.referrer.as_deref() {
            Some(referrer) => {
                let (host, channel) =
                    referrer_cache.get_or(referrer, || referrers.classify(Some(referrer)));
                (host.as_deref().unwrap_or(NONE), *channel)
            }
            None => (NONE, referrers::Channel::Direct),
        };
        let [utm_source, utm_medium, utm_campaign] = utm_cache
            .get_or(&redirect.full_url, || utm(&redirect.full_url))
            .each_ref()
            .map(|value| value.as_deref().unwrap_or(NONE));
        Visit {
            class,
            agent,
            dimensions: [
                country,
                region,
                city,
                host,
                channel.as_str(),
                utm_source,
                utm_medium,
                utm_campaign,
                redirect.source.as_deref().unwrap_or("link"),
            ],
            visitor,
        }
    }
}

/// An address's canonical text, written on the stack (no allocation per
/// click).
struct IpText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl IpText {
    /// `ip` as `Display` writes it (at most 45 bytes, so it always fits).
    fn of(&mut self, ip: IpAddr) -> &str {
        use std::fmt::Write as _;
        self.len = 0;
        if write!(self, "{ip}").is_err() {
            self.len = 0;
        }
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
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
        let first = redirect();
        let visitor = enricher.visit(&first).visitor;
        let again = Redirect {
            ip: Some("81.2.69.142".into()),
            ..redirect()
        };
        assert_eq!(enricher.visit(&again).visitor, visitor);
        assert_eq!(
            visitor,
            Some(crate::sketch::visitor_hash(
                DEVELOPMENT_VISITOR_KEY.as_bytes(),
                "81.2.69.142",
                &first.user_agent
            ))
        );
        let mut keyed = enricher.with_visitor_key(b"operator key");
        let rekeyed = keyed.visit(&first).visitor;
        assert_eq!(
            rekeyed,
            Some(crate::sketch::visitor_hash(
                b"operator key",
                "81.2.69.142",
                &first.user_agent
            )),
            "a new key makes every visitor new"
        );
        let mut enricher = keyed;
        let visit = enricher.visit(&first);
        assert_eq!(visit.class, Class::Human);
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
        let mut enricher = Enricher::new(None).expect("lists load");
        let visit = enricher.visit(&bare);
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
    fn an_address_text_is_its_display() {
        for ip in [
            "81.2.69.142",
            "::1",
            "2001:db8::ff00:42:8329",
            "::ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            assert_eq!(IpText::default().of(ip), ip.to_string());
        }
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            .parse()
            .expect("address");
        assert_eq!(IpText::default().of(longest), longest.to_string());
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
