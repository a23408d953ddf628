//! Who fetched a link: a person, a link-preview fetcher, or a crawler.
//!
//! Previews come first: chat and social apps fetch a shared link to draw
//! its card (Slack, X/Twitter, Facebook, LinkedIn, Discord, WhatsApp,
//! Telegram, iMessage, Mastodon and the fediverse, ...), and every `HEAD`
//! is one. Then crawlers and automation: the `crawler-user-agents` list
//! (`processor/data/crawler-patterns.txt`, kept upstream and refreshed by
//! `scripts/update-link-data.sh`) beside woothee's own crawler class. The
//! rest are people.

use regex::{Regex, RegexBuilder};

/// What fetched the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Human,
    Bot,
    Preview,
}

/// Link-preview fetchers, matched case-insensitively anywhere in the user
/// agent. iMessage sends `facebookexternalhit/1.1 Facebot Twitterbot/1.0`.
const PREVIEW_FETCHERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "facebookexternalhit",
    "facebot",
    "linkedinbot",
    "discordbot",
    "whatsapp",
    "telegrambot",
    "mastodon/",
    "pleroma",
    "akkoma",
    "misskey",
    "skypeuripreview",
    "redditbot",
    "embedly",
    "iframely",
    "vkshare",
    "viber",
    "snapchat",
    "pinterestbot",
    "bluesky cardyb",
    "cardyb",
    "mattermost-bot",
    "rocket.chat",
    "yahoo link preview",
    "google-pagerenderer",
    "quora link preview",
    "xing-contenttabreceiver",
    "tumblr",
    "line-poker",
    "kakaotalk-scrap",
];

/// The crawler list, as shipped.
const CRAWLER_PATTERNS: &str = include_str!("../../data/crawler-patterns.txt");

/// Decides [`Class`] from a user agent and the request method.
#[derive(Debug, Clone)]
pub struct Classifier {
    previews: Regex,
    crawlers: Regex,
}

/// Why the pattern lists did not compile (a bad refresh of the data file).
#[derive(Debug, thiserror::Error)]
#[error("the crawler pattern list does not compile: {0}")]
pub struct PatternError(#[from] regex::Error);

impl Classifier {
    /// Compiles the lists: about 1,500 patterns in one automaton, given
    /// room for a lazy DFA so a match costs well under a microsecond.
    ///
    /// # Errors
    ///
    /// [`PatternError`] if a pattern does not compile.
    pub fn new() -> Result<Self, PatternError> {
        let previews = PREVIEW_FETCHERS
            .iter()
            .map(|fetcher| regex::escape(fetcher))
            .collect::<Vec<_>>()
            .join("|");
        let crawlers = CRAWLER_PATTERNS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|pattern| format!("(?:{pattern})"))
            .collect::<Vec<_>>()
            .join("|");
        let build = |pattern: &str| {
            RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(256 << 20)
                .dfa_size_limit(32 << 20)
                .build()
        };
        Ok(Self {
            previews: build(&previews)?,
            crawlers: build(&crawlers)?,
        })
    }

    /// The class of a fetch; `woothee_crawler` is woothee's verdict.
    pub fn classify(&self, user_agent: &str, method: Option<&str>, woothee_crawler: bool) -> Class {
        self.fetcher(user_agent).class(method, woothee_crawler)
    }

    /// What the lists say of a user agent (cacheable: it depends on the
    /// agent alone).
    pub fn fetcher(&self, user_agent: &str) -> Fetcher {
        let preview = self.previews.is_match(user_agent);
        Fetcher {
            preview,
            crawler: !preview && self.crawlers.is_match(user_agent),
        }
    }
}

/// What the lists say of one user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetcher {
    /// A link-preview fetcher.
    pub preview: bool,
    /// A crawler or automation by the list.
    pub crawler: bool,
}

impl Fetcher {
    /// The class of one fetch by this agent with `method`.
    pub fn class(self, method: Option<&str>, woothee_crawler: bool) -> Class {
        if method == Some("HEAD") || self.preview {
            Class::Preview
        } else if woothee_crawler || self.crawler {
            Class::Bot
        } else {
            Class::Human
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_bots_and_people_apart() {
        let classes = Classifier::new().expect("the shipped lists compile");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0";
        for person in [chrome, iphone, firefox] {
            assert_eq!(
                classes.classify(person, Some("GET"), false),
                Class::Human,
                "{person}"
            );
            assert_eq!(
                classes.classify(person, None, false),
                Class::Human,
                "{person}"
            );
        }
        assert_eq!(
            classes.classify(chrome, Some("HEAD"), false),
            Class::Preview
        );
        for preview in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Twitterbot/1.0",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "WhatsApp/2.23.20.0",
            "TelegramBot (like TwitterBot)",
            "http.rb/5.1.1 (Mastodon/4.2.10; +https://mastodon.social/)",
        ] {
            assert_eq!(
                classes.classify(preview, Some("GET"), false),
                Class::Preview,
                "{preview}"
            );
        }
        for bot in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "python-requests/2.31.0",
            "curl/8.5.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ] {
            assert_eq!(
                classes.classify(bot, Some("GET"), false),
                Class::Bot,
                "{bot}"
            );
        }
        assert_eq!(classes.classify("anything", None, true), Class::Bot);
    }
}
