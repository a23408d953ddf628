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
}

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
    let request = (|| {
        Some(RedirectRequest {
            short_code: short_code?,
            full_url: full_url?,
            client_id: client_id?,
            user_agent: user_agent?,
            referrer,
            occurred_at: occurred_at?,
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
