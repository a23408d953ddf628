//! A click's country from its address, with `maxminddb` and the database
//! given as `--geoip-db` (MaxMind GeoLite2/GeoIP2 Country or City, DB-IP,
//! or the ip-location-db files, whose records are a flat `country_code`).
//! Lookups go through a bounded cache: clicks repeat addresses. The address
//! lives only in memory, never in a row or a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// Addresses cached before the cache starts over; bounds its memory.
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

/// A country database.
pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
    cache: HashMap<IpAddr, String>,
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
    country: Option<Country<'a>>,
    /// ip-location-db: a flat `country_code`.
    #[serde(default)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(default)]
    iso_code: Option<&'a str>,
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
            cache: HashMap::new(),
        }
    }

    /// The ISO 3166 country code of `ip`, or [`UNKNOWN`].
    pub fn country(&mut self, ip: IpAddr) -> String {
        if let Some(country) = self.cache.get(&ip) {
            return country.clone();
        }
        let country = self
            .reader
            .lookup(ip)
            .ok()
            .and_then(|found| found.decode::<Record<'_>>().ok().flatten())
            .and_then(|record| {
                record
                    .country
                    .and_then(|c| c.iso_code)
                    .or(record.country_code)
                    .filter(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
                    .map(str::to_ascii_uppercase)
            })
            .unwrap_or_else(|| UNKNOWN.to_owned());
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(ip, country.clone());
        country
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
        assert_eq!(geo.country(ip("81.2.69.142")), "GB");
        assert_eq!(geo.country(ip("81.2.69.142")), "GB", "cached");
        assert_eq!(geo.country(ip("2001:db8::1")), "CH");
        assert_eq!(geo.country(ip("8.8.8.8")), UNKNOWN);
        let mut writer = mmdb_writer::Writer::new("Flat");
        writer
            .insert(
                "8.8.8.0/24".parse::<ipnet::IpNet>().expect("net"),
                &serde_json::json!({"country_code": "us"}),
            )
            .expect("inserted");
        let mut flat = Geo::from_bytes(writer.to_bytes().expect("bytes")).expect("opens");
        assert_eq!(flat.country(ip("8.8.8.8")), "US");
        assert!(Geo::from_bytes(b"not a database".to_vec()).is_err());
    }
}
