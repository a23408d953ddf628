//! User agents to (browser family, OS family, device class) with `woothee`,
//! behind a bounded cache: raw user-agent strings are unbounded and never a
//! key of a stored row.

use std::collections::HashMap;
use std::sync::Arc;

use woothee::parser::Parser;

/// Entries kept before the cache starts over; bounds its memory.
pub const CACHE_CAPACITY: usize = 10_000;

/// What a user agent is. The names are shared, so a cached agent is
/// handed to each click without copying them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Agent {
    /// Browser family, e.g. `Chrome`, `Edge`, `Safari`; `UNKNOWN` if none.
    pub browser: Arc<str>,
    /// OS family, e.g. `Android`, `Windows 10`, `iPad`.
    pub os: Arc<str>,
    /// Device class: `pc`, `smartphone`, `mobilephone`, `appliance`,
    /// `crawler`, `misc` or `UNKNOWN`.
    pub device: Arc<str>,
    /// A bot or crawler, counted apart from clients' totals.
    pub bot: bool,
}

/// A parser with a bounded cache.
#[derive(Default)]
pub struct UserAgents {
    parser: Parser,
    cache: HashMap<String, Agent>,
}

impl std::fmt::Debug for UserAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgents")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl UserAgents {
    /// Classifies `user_agent`.
    pub fn classify(&mut self, user_agent: &str) -> Agent {
        if let Some(agent) = self.cache.get(user_agent) {
            return agent.clone();
        }
        let agent = self.parse(user_agent);
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(user_agent.to_owned(), agent.clone());
        agent
    }

    /// Parses `user_agent` without the cache (for a caller with its own).
    pub fn parse(&self, user_agent: &str) -> Agent {
        match self.parser.parse(user_agent) {
            Some(parsed) => Agent {
                browser: parsed.name.into(),
                os: parsed.os.into(),
                device: parsed.category.into(),
                bot: parsed.category == "crawler",
            },
            None => Agent {
                browser: "UNKNOWN".into(),
                os: "UNKNOWN".into(),
                device: "UNKNOWN".into(),
                bot: false,
            },
        }
    }
}

/// Test support: Chrome on an Android phone, as a person or as a bot.
#[cfg(test)]
pub(crate) fn chrome_on_android(bot: bool) -> &'static Agent {
    static AGENTS: std::sync::LazyLock<[Agent; 2]> = std::sync::LazyLock::new(|| {
        [false, true].map(|bot| Agent {
            browser: "Chrome".into(),
            os: "Android".into(),
            device: "smartphone".into(),
            bot,
        })
    });
    &AGENTS[usize::from(bot)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_examples_are_classified() {
        let mut agents = UserAgents::default();
        let galaxy = agents.classify(
            "Mozilla/5.0 (Linux; Android 4.0.4; Galaxy Nexus Build/IMM76B) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.133 Mobile Safari/535.19",
        );
        assert_eq!(
            (
                galaxy.browser.as_ref(),
                galaxy.os.as_ref(),
                galaxy.device.as_ref()
            ),
            ("Chrome", "Android", "smartphone")
        );
        let edge = agents.classify(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36 Edg/91.0.864.59",
        );
        assert_eq!(
            (edge.os.as_ref(), edge.device.as_ref()),
            ("Windows 10", "pc")
        );
        let ipad = agents.classify(
            "Mozilla/5.0 (iPad; U; CPU OS 3_2_1 like Mac OS X; en-us) AppleWebKit/531.21.10 (KHTML, like Gecko) Mobile/7B405",
        );
        assert_eq!(
            (ipad.os.as_ref(), ipad.device.as_ref()),
            ("iPad", "smartphone")
        );
        assert!(![&galaxy, &edge, &ipad].iter().any(|a| a.bot));
    }

    #[test]
    fn crawlers_are_bots_and_the_cache_stays_bounded() {
        let mut agents = UserAgents::default();
        assert!(
            agents
                .classify(
                    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
                )
                .bot
        );
        for n in 0..(CACHE_CAPACITY + 10) {
            agents.classify(&format!("agent-{n}"));
        }
        assert!(agents.cache.len() <= CACHE_CAPACITY);
        assert_eq!(&*agents.classify("").browser, "UNKNOWN");
    }
}
