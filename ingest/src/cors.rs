//! CORS for browser SDKs (`--cors-allow-origin`, off by default): a
//! preflight from an allowed origin is answered without authentication;
//! the headers a producer sends (`Authorization`, `Content-Type`,
//! `Content-Encoding`, `Idempotency-Key`, `X-Request-Id`) are allowed, and
//! `X-Request-Id` and `Retry-After` are readable by the page.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// An allowed origin: `*` or `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Parses one `--cors-allow-origin` value.
    ///
    /// # Errors
    ///
    /// A message naming the value and the form expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Self(text.to_owned()));
        }
        let expected =
            || format!("{text:?}: an origin is `*` or `https://host[:port]`, without a path");
        let url = url::Url::parse(text).map_err(|_| expected())?;
        let bare = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.path() == "/"
            && !text.ends_with('/')
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty();
        if bare {
            Ok(Self(text.to_owned()))
        } else {
            Err(expected())
        }
    }
}

/// The CORS layer for `origins`, or `None` when the list is empty.
pub fn layer(origins: &[Origin]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin.0 == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(&origin.0).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_bare_scheme_host_and_port_or_a_star() {
        for good in ["*", "https://app.example.com", "http://localhost:3000"] {
            assert!(Origin::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "app.example.com",
            "https://app.example.com/",
            "https://a.example/path",
            "ftp://x",
            "https://u@x",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
