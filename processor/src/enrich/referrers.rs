//! Where a click came from: the referrer's host and its channel, from
//! Snowplow's referer-parser database (`processor/data/referers.json`:
//! host -> [medium, source], about 2,500 hosts; refreshed by
//! `scripts/update-link-data.sh`). A host matches itself or, one label
//! off at a time, a listed parent (`l.facebook.com` -> `facebook.com`);
//! a listed `host/path` (`google.com/maps`) wins over its host.

use std::collections::HashMap;

/// The channel a click came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// No referrer.
    Direct,
    Search,
    Social,
    Email,
    /// A referrer the list does not know, or one it files elsewhere (paid,
    /// chatbot).
    Other,
}

impl Channel {
    /// As stored and queried.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::Search => "search",
            Channel::Social => "social",
            Channel::Email => "email",
            Channel::Other => "other",
        }
    }
}

/// The shipped database.
const REFERERS: &str = include_str!("../../data/referers.json");

/// Host to channel.
#[derive(Debug, Clone)]
pub struct Referrers {
    by_host: HashMap<String, Channel>,
}

/// Why the database did not load (a bad refresh of the data file).
#[derive(Debug, thiserror::Error)]
#[error("the referrer list does not parse: {0}")]
pub struct ReferrersError(#[from] serde_json::Error);

impl Referrers {
    /// Loads the shipped database.
    ///
    /// # Errors
    ///
    /// [`ReferrersError`] if it does not parse.
    pub fn new() -> Result<Self, ReferrersError> {
        let listed: HashMap<String, (String, String)> = serde_json::from_str(REFERERS)?;
        let by_host = listed
            .into_iter()
            .map(|(host, (medium, _source))| {
                let channel = match medium.as_str() {
                    "search" => Channel::Search,
                    "social" => Channel::Social,
                    "email" => Channel::Email,
                    _ => Channel::Other,
                };
                (host.to_ascii_lowercase(), channel)
            })
            .collect();
        Ok(Self { by_host })
    }

    /// The referrer's host (lower case, no `www.`) and channel; `None` and
    /// [`Channel::Direct`] without one, `(unparsed)` for text that is not
    /// an absolute URL.
    pub fn classify(&self, referrer: Option<&str>) -> (Option<String>, Channel) {
        let Some(referrer) = referrer.map(str::trim).filter(|r| !r.is_empty()) else {
            return (None, Channel::Direct);
        };
        let Some(url) = url::Url::parse(referrer).ok().filter(|u| u.has_host()) else {
            return (Some(UNPARSED.to_owned()), Channel::Other);
        };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return (Some(UNPARSED.to_owned()), Channel::Other);
        };
        let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
        let first_segment = url
            .path_segments()
            .and_then(|mut segments| segments.next())
            .filter(|segment| !segment.is_empty());
        let with_path = first_segment
            .and_then(|segment| self.by_host.get(&format!("{host}/{segment}")).copied());
        let channel = with_path
            .or_else(|| self.by_parent(&host))
            .unwrap_or(Channel::Other);
        (Some(host), channel)
    }

    fn by_parent(&self, host: &str) -> Option<Channel> {
        let mut rest = host;
        loop {
            if let Some(channel) = self.by_host.get(rest) {
                return Some(*channel);
            }
            // Stop at the registrable part: never match a bare TLD.
            let (_, parent) = rest.split_once('.')?;
            if !parent.contains('.') {
                return None;
            }
            rest = parent;
        }
    }
}

/// The host of a referrer that is not an absolute URL.
pub const UNPARSED: &str = "(unparsed)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_channels_from_the_list() {
        let referrers = Referrers::new().expect("the shipped list parses");
        let cases = [
            (None, None, Channel::Direct),
            (Some(""), None, Channel::Direct),
            (
                Some("https://www.google.com/search?q=shoes"),
                Some("google.com"),
                Channel::Search,
            ),
            (
                Some("https://duckduckgo.com/"),
                Some("duckduckgo.com"),
                Channel::Search,
            ),
            (
                Some("https://l.facebook.com/l.php?u=x"),
                Some("l.facebook.com"),
                Channel::Social,
            ),
            (Some("https://t.co/abc"), Some("t.co"), Channel::Social),
            (
                Some("https://mail.google.com/mail/u/0/"),
                Some("mail.google.com"),
                Channel::Email,
            ),
            (
                Some("https://news.example.org/story"),
                Some("news.example.org"),
                Channel::Other,
            ),
            (Some("not a url"), Some(UNPARSED), Channel::Other),
        ];
        for (referrer, host, channel) in cases {
            assert_eq!(
                referrers.classify(referrer),
                (host.map(str::to_owned), channel),
                "{referrer:?}"
            );
        }
    }
}
