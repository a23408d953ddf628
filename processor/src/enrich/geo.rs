//! A click's country, region and city from its address, with `maxminddb`
//! and the database given as `--geoip-db` (MaxMind GeoLite2/GeoIP2 Country
//! or City, DB-IP, or the ip-location-db files, whose records are flat:
//! `country_code`, `state1`, `city`). A country database places countries
//! only; region and city are then [`UNKNOWN`].
//! Lookups go through a bounded cache: clicks repeat addresses, and most
//! of a database's networks are /24 (IPv6: /48) or wider, so one lookup
//! places every address of such a block. The address lives only in
//! memory, never in a row or a log line.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// Blocks and addresses cached before the cache starts over; bounds its
/// memory.
pub const CACHE_CAPACITY: usize = 100_000;

/// The country of an address the database does not place, or of a click
/// without one, or of every click without a database.
pub const UNKNOWN: &str = "unknown";

/// Why the database cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--geoip-db {path}: {source}")]
pub struct GeoError {
    path: String,
    #[source]
    source: maxminddb::MaxMindDbError,
}

/// Where an address is, as far as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// ISO 3166-2 (`GB-ENG`) when the database has the subdivision's code,
    /// else its English name.
    pub region: String,
    /// The city's English name.
    pub city: String,
}

impl Place {
    /// Nowhere known.
    pub fn unknown() -> Self {
        Self {
            country: UNKNOWN.to_owned(),
            region: UNKNOWN.to_owned(),
            city: UNKNOWN.to_owned(),
        }
    }
}

/// The longest region or city name kept; longer ones are cut on a char
/// boundary (a database is input too).
const MAX_NAME: usize = 96;

/// A geolocation database.
pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
    /// By block (`(/24 or /48 address, 24 or 48)`) when the database's
    /// network holds the whole block, else by address (`(address, 32 or
    /// 128)`).
    cache: hashbrown::HashMap<(IpAddr, u8), Place>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo")
            .field("database", &self.reader.metadata().database_type)
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// The parts of a record the lookup reads, in either layout.
#[derive(Deserialize)]
struct Record<'a> {
    /// GeoIP2 and DB-IP: `country.iso_code`.
    #[serde(borrow, default)]
    country: Option<Named<'a>>,
    /// GeoIP2 and DB-IP: `subdivisions[0]` (`iso_code`, `names.en`).
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    /// GeoIP2 and DB-IP: `city.names.en`; ip-location-db: a flat `city`.
    #[serde(borrow, default)]
    city: Option<City<'a>>,
    /// ip-location-db: a flat `country_code`.
    #[serde(default)]
    country_code: Option<&'a str>,
    /// ip-location-db: the region's name.
    #[serde(default)]
    state1: Option<&'a str>,
}

/// A place with a code and names.
#[derive(Deserialize)]
struct Named<'a> {
    #[serde(default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(default)]
    en: Option<&'a str>,
}

/// `city` is an object in one layout and a string in the other.
#[derive(Deserialize)]
#[serde(untagged)]
enum City<'a> {
    Flat(&'a str),
    Named(#[serde(borrow)] Named<'a>),
}

impl Record<'_> {
    fn place(&self) -> Place {
        let country = self
            .country
            .as_ref()
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .filter(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase);
        let subdivision = self.subdivisions.as_ref().and_then(|all| all.first());
        let region = match (&country, subdivision) {
            (
                Some(country),
                Some(Named {
                    iso_code: Some(code),
                    ..
                }),
            ) if !code.is_empty()
                && code.len() <= 3
                && code.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Some(format!("{country}-{}", code.to_ascii_uppercase()))
            }
            (_, Some(named)) => named.names.as_ref().and_then(|n| n.en).map(name),
            (_, None) => self.state1.map(name),
        };
        let city = match &self.city {
            Some(City::Flat(city)) => Some(name(city)),
            Some(City::Named(named)) => named.names.as_ref().and_then(|n| n.en).map(name),
            None => None,
        };
        let known = |value: Option<String>| {
            value
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| UNKNOWN.to_owned())
        };
        Place {
            country: known(country),
            region: known(region),
            city: known(city),
        }
    }
}

/// A name from the database: control characters dropped, trimmed, cut to
/// [`MAX_NAME`] bytes.
fn name(text: &str) -> String {
    let mut clean: String = text.chars().filter(|c| !c.is_control()).collect();
    clean = clean.trim().to_owned();
    if clean.len() > MAX_NAME {
        let end = (0..=MAX_NAME)
            .rev()
            .find(|i| clean.is_char_boundary(*i))
            .unwrap_or(0);
        clean.truncate(end);
    }
    clean
}

impl Geo {
    /// Opens the database at `path`.
    ///
    /// # Errors
    ///
    /// [`GeoError`] if it cannot be read or is not a MaxMind database.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|source| GeoError {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::from_reader(reader))
    }

    /// A database already in memory.
    ///
    /// # Errors
    ///
    /// [`GeoError`] if the bytes are not a MaxMind database.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoError> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|source| GeoError {
            path: "(in memory)".into(),
            source,
        })?;
        Ok(Self::from_reader(reader))
    }

    fn from_reader(reader: maxminddb::Reader<Vec<u8>>) -> Self {
        Self {
            reader,
            cache: hashbrown::HashMap::new(),
        }
    }

    /// Where `ip` is: [`UNKNOWN`] for what the database does not say.
    pub fn place(&mut self, ip: IpAddr) -> &Place {
        let block = block(ip);
        let exact = (ip, if ip.is_ipv4() { 32 } else { 128 });
        let key = if self.cache.contains_key(&block) {
            block
        } else if self.cache.contains_key(&exact) {
            exact
        } else {
            let found = self.reader.lookup(ip).ok();
            let prefix = found
                .as_ref()
                .and_then(|found| found.network().ok())
                .map(|network| network.prefix());
            let place = found
                .and_then(|found| found.decode::<Record<'_>>().ok().flatten())
                .map_or_else(Place::unknown, |record| record.place());
            if self.cache.len() >= CACHE_CAPACITY {
                self.cache.clear();
            }
            let key = if prefix.is_some_and(|prefix| prefix <= block.1) {
                block
            } else {
                exact
            };
            self.cache.insert(key, place);
            key
        };
        &self.cache[&key]
    }
}

/// The /24 (IPv4) or /48 (IPv6) block holding `ip`, and its prefix length.
fn block(ip: IpAddr) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(v4) => (
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & !0xff)),
            24,
        ),
        IpAddr::V6(v6) => (
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1 << 80) - 1))),
            48,
        ),
    }
}

/// Test support: a country database with the given networks, in both
/// layouts' shape (`country.iso_code` and `country_code`).
///
/// # Panics
///
/// On a network that does not parse: test input.
#[cfg(test)]
pub fn test_database(networks: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = mmdb_writer::Writer::new("Eventide-Test-Country");
    for (network, country) in networks {
        let network: ipnet::IpNet = network.parse().expect("a network");
        let record = serde_json::json!({
            "country": {"iso_code": country},
            "country_code": country,
        });
        writer.insert(network, &record).expect("inserted");
    }
    writer.to_bytes().expect("written")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_from_either_layout_and_unknown_otherwise() {
        let bytes = test_database(&[("81.2.69.0/24", "GB"), ("2001:db8::/32", "CH")]);
        let mut geo = Geo::from_bytes(bytes).expect("opens");
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        let country = |geo: &mut Geo, text: &str| geo.place(ip(text)).country.clone();
        assert_eq!(country(&mut geo, "81.2.69.142"), "GB");
        assert_eq!(country(&mut geo, "81.2.69.142"), "GB", "cached");
        assert_eq!(country(&mut geo, "2001:db8::1"), "CH");
        assert_eq!(geo.place(ip("8.8.8.8")), &Place::unknown());
        let mut writer = mmdb_writer::Writer::new("Flat");
        writer
            .insert(
                "8.8.8.0/24".parse::<ipnet::IpNet>().expect("net"),
                &serde_json::json!({"country_code": "us"}),
            )
            .expect("inserted");
        let mut flat = Geo::from_bytes(writer.to_bytes().expect("bytes")).expect("opens");
        assert_eq!(country(&mut flat, "8.8.8.8"), "US");
        assert!(Geo::from_bytes(b"not a database".to_vec()).is_err());
    }

    #[test]
    fn a_block_is_cached_only_when_one_network_holds_it() {
        let bytes = test_database(&[
            ("81.2.0.0/16", "GB"),
            ("5.5.5.0/25", "FR"),
            ("5.5.5.128/25", "DE"),
            ("2001:db8::/32", "CH"),
            ("2001:db9:0:1::/64", "AT"),
        ]);
        let mut geo = Geo::from_bytes(bytes).expect("opens");
        let mut country = |text: &str| geo.place(text.parse().expect("ip")).country.clone();
        // Wider than /24: the first lookup places the whole block.
        assert_eq!(country("81.2.69.1"), "GB");
        assert_eq!(country("81.2.69.254"), "GB");
        // Two /25s in one /24: each address is looked up.
        assert_eq!(country("5.5.5.1"), "FR");
        assert_eq!(country("5.5.5.200"), "DE");
        assert_eq!(country("5.5.5.2"), "FR");
        assert_eq!(country("2001:db8::1"), "CH");
        assert_eq!(country("2001:db8:0:ffff::1"), "CH");
        // A /64 inside a /48 the database does not otherwise place.
        assert_eq!(country("2001:db9:0:1::9"), "AT");
        assert_eq!(country("2001:db9:0:2::9"), UNKNOWN);
        assert_eq!(country("2001:db9:0:1::10"), "AT");
        assert_eq!(
            geo.cache
                .keys()
                .filter(|(_, bits)| *bits == 24 || *bits == 48)
                .count(),
            2,
            "only 81.2.69.0/24 and 2001:db8::/48 are cached as blocks"
        );
    }

    #[test]
    fn regions_and_cities_from_either_layout() {
        let mut writer = mmdb_writer::Writer::new("Eventide-Test-City");
        let records = [
            // GeoIP2 City / DB-IP City Lite.
            (
                "81.2.69.0/24",
                serde_json::json!({"country": {"iso_code": "GB"},
                    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
                    "city": {"names": {"en": "London", "de": "London"}}}),
            ),
            // A subdivision without a code: its name.
            (
                "81.2.70.0/24",
                serde_json::json!({"country": {"iso_code": "GB"},
                    "subdivisions": [{"names": {"en": "Scotland"}}],
                    "city": {"names": {"en": "Edinburgh\n"}}}),
            ),
            // ip-location-db's flat city layout.
            (
                "8.8.8.0/24",
                serde_json::json!({"country_code": "US", "state1": "California",
                    "city": "Mountain View"}),
            ),
            // A country record: no region, no city.
            (
                "9.9.9.0/24",
                serde_json::json!({"country": {"iso_code": "CH"}}),
            ),
        ];
        for (network, record) in records {
            writer
                .insert(network.parse::<ipnet::IpNet>().expect("net"), &record)
                .expect("inserted");
        }
        let mut geo = Geo::from_bytes(writer.to_bytes().expect("bytes")).expect("opens");
        let place = |geo: &mut Geo, text: &str| {
            let place = geo.place(text.parse().expect("ip"));
            [&place.country, &place.region, &place.city].map(|value| value.clone())
        };
        assert_eq!(place(&mut geo, "81.2.69.1"), ["GB", "GB-ENG", "London"]);
        assert_eq!(
            place(&mut geo, "81.2.70.1"),
            ["GB", "Scotland", "Edinburgh"]
        );
        assert_eq!(
            place(&mut geo, "8.8.8.8"),
            ["US", "California", "Mountain View"]
        );
        assert_eq!(place(&mut geo, "9.9.9.9"), ["CH", UNKNOWN, UNKNOWN]);
        assert_eq!(name(&"é".repeat(MAX_NAME)).len(), MAX_NAME);
    }
}
