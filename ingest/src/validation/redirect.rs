//! `POST /v1/redirects`: one short-link click (`reference/000_*`).

use serde_json::{Map, Value};

use super::{Context, Fields, Rule, ValidationError};

/// Longest short code.
pub(crate) const MAX_SHORT_CODE: usize = 16;

/// A valid redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRequest {
    pub short_code: String,
    pub full_url: String,
    pub client_id: i64,
    pub user_agent: String,
    pub referrer: Option<String>,
    /// Microseconds; now when the producer gave none.
    pub occurred_at: i64,
    /// The visitor's address, canonical (`IpAddr`'s text).
    pub ip: Option<String>,
    /// `GET` or `HEAD`, as HTTP spells them.
    pub method: Option<String>,
    /// `link`, `qr` or a label of `[a-z0-9_-]{1,32}`.
    pub source: Option<String>,
    pub accept_language: Option<String>,
}

/// Longest `source` label.
pub(crate) const MAX_SOURCE: usize = 32;
/// Longest `accept_language`, in characters.
pub const MAX_ACCEPT_LANGUAGE: usize = 256;

/// Parses a redirect object; `user_agent` falls back to the request header.
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_redirect(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<RedirectRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&[
        "short_code",
        "full_url",
        "client_id",
        "user_agent",
        "referrer",
        "occurred_at",
        "ip",
        "method",
        "source",
        "accept_language",
    ]);
    let short_code = fields.string("short_code", true).and_then(|code| {
        let valid = code.len() <= MAX_SHORT_CODE
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Some(code.to_owned())
        } else {
            fields.push(
                "short_code",
                Rule::Pattern,
                format!("`short_code` must be 1 to {MAX_SHORT_CODE} of [A-Za-z0-9_-]"),
            );
            None
        }
    });
    let full_url = fields
        .string("full_url", true)
        .and_then(|text| match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Some(text.to_owned())
            }
            _ => {
                fields.push(
                    "full_url",
                    Rule::Url,
                    "`full_url` must be an absolute http or https URL",
                );
                None
            }
        });
    let client_id = fields.integer("client_id", 0);
    let user_agent = match fields.has("user_agent") {
        true => fields.string("user_agent", true).map(str::to_owned),
        false => match context.user_agent.filter(|ua| !ua.is_empty()) {
            Some(header) => Some(header.to_owned()),
            None => {
                fields.push(
                    "user_agent",
                    Rule::Required,
                    "missing `user_agent`: send it in the body or the User-Agent header",
                );
                None
            }
        },
    };
    let referrer = fields.string("referrer", false).map(str::to_owned);
    let occurred_at = match fields.has("occurred_at") {
        true => fields.timestamp("occurred_at", true, context),
        false => Some(context.now),
    };
    // The address is never echoed back: messages name the rule only.
    let ip =
        fields
            .string("ip", false)
            .and_then(|text| match text.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip.to_string()),
                Err(_) => {
                    fields.push("ip", Rule::Pattern, "`ip` must be an IPv4 or IPv6 address");
                    None
                }
            });
    let method = fields.string("method", false).and_then(|text| {
        if matches!(text, "GET" | "HEAD") {
            Some(text.to_owned())
        } else {
            fields.push("method", Rule::Pattern, "`method` must be `GET` or `HEAD`");
            None
        }
    });
    let source = fields.string("source", false).and_then(|text| {
        let valid = text.len() <= MAX_SOURCE
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Some(text.to_owned())
        } else {
            fields.push(
                "source",
                Rule::Pattern,
                format!("`source` must be `link`, `qr` or 1 to {MAX_SOURCE} of [a-z0-9_-]"),
            );
            None
        }
    });
    let accept_language = fields.string("accept_language", false).and_then(|text| {
        if text.chars().count() <= MAX_ACCEPT_LANGUAGE {
            Some(text.to_owned())
        } else {
            fields.push(
                "accept_language",
                Rule::Pattern,
                format!("`accept_language` must be at most {MAX_ACCEPT_LANGUAGE} characters"),
            );
            None
        }
    });
    let request = (|| {
        Some(RedirectRequest {
            short_code: short_code?,
            full_url: full_url?,
            client_id: client_id?,
            user_agent: user_agent?,
            referrer,
            occurred_at: occurred_at?,
            ip,
            method,
            source,
            accept_language,
        })
    })();
    fields.finish(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::parse_object;
    use crate::validation::test_support::{NOW, first_of, with_context};
    use serde_json::json;

    fn parse(body: Value, header: Option<&str>) -> Result<RedirectRequest, ValidationError> {
        let object = parse_object(body.to_string().as_bytes())?;
        with_context(header, |context| parse_redirect(&object, context))
    }

    fn valid() -> Value {
        json!({"short_code": "abc_12-Z", "full_url": "https://example.org/x?y=1", "client_id": 7, "user_agent": "Mozilla/5.0"})
    }

    #[test]
    fn accepts_a_click_and_defaults_the_time_to_now() {
        let redirect = parse(valid(), None).expect("valid");
        assert_eq!(redirect.short_code, "abc_12-Z");
        assert_eq!(redirect.occurred_at, NOW);
        assert_eq!(redirect.referrer, None);
    }

    #[test]
    fn visitor_fields_are_normalised_and_an_address_is_never_echoed() {
        let mut body = valid();
        let object = body.as_object_mut().expect("object");
        object.insert("ip".into(), json!(" 2001:DB8:0:0::1 "));
        object.insert("method".into(), json!("HEAD"));
        object.insert("source".into(), json!("qr"));
        object.insert("accept_language".into(), json!("de-CH,de;q=0.9"));
        let redirect = parse(body, None).expect("valid");
        assert_eq!(
            (
                redirect.ip.as_deref(),
                redirect.method.as_deref(),
                redirect.source.as_deref(),
                redirect.accept_language.as_deref()
            ),
            (
                Some("2001:db8::1"),
                Some("HEAD"),
                Some("qr"),
                Some("de-CH,de;q=0.9")
            )
        );
        let mut bad = valid();
        bad.as_object_mut()
            .expect("object")
            .insert("ip".into(), json!("10.0.0.999"));
        let err = parse(bad, None).expect_err("not an address");
        assert!(
            err.violations.iter().all(|v| !v.message.contains("10.0.0")),
            "{err:?}"
        );
    }

    #[test]
    fn user_agent_comes_from_the_header_when_the_body_has_none() {
        let mut body = valid();
        body.as_object_mut().expect("object").remove("user_agent");
        assert_eq!(
            parse(body.clone(), Some("curl/8"))
                .expect("valid")
                .user_agent,
            "curl/8"
        );
        let err = parse(body, None).expect_err("no user agent at all");
        assert_eq!(first_of(&err), (Some("user_agent".into()), Rule::Required));
    }

    #[test]
    fn names_each_broken_rule() {
        let cases = [
            (
                "short_code",
                json!("this-code-is-far-too-long"),
                Rule::Pattern,
            ),
            ("short_code", json!("bad code"), Rule::Pattern),
            ("short_code", json!(""), Rule::NonEmpty),
            ("full_url", json!("/relative"), Rule::Url),
            ("full_url", json!("ftp://example.org/"), Rule::Url),
            ("client_id", json!(-1), Rule::Minimum),
            (
                "occurred_at",
                json!("2099-01-01T00:00:00Z"),
                Rule::FutureTimestamp,
            ),
            ("occurred_at", json!("yesterday"), Rule::Timestamp),
            ("referrer", json!(5), Rule::Type),
            ("ip", json!("999.1.1.1"), Rule::Pattern),
            ("ip", json!(17), Rule::Type),
            ("method", json!("POST"), Rule::Pattern),
            ("method", json!("head"), Rule::Pattern),
            ("source", json!("QR"), Rule::Pattern),
            ("source", json!("x".repeat(33)), Rule::Pattern),
            ("accept_language", json!("x".repeat(257)), Rule::Pattern),
        ];
        for (field, value, rule) in cases {
            let mut body = valid();
            body[field] = value.clone();
            let err = parse(body, None).expect_err("invalid");
            assert_eq!(
                first_of(&err),
                (Some(field.to_owned()), rule),
                "{field} = {value}"
            );
        }
    }
}
