//! The analysts' console at `/console`: HTML pages rendered on the server
//! from the same handlers that answer the JSON API, so a page shows exactly
//! what the API answers for the same parameters.
//!
//! - [`session`]: the signed session cookie and CSRF tokens.
//! - `page`: the layout every page shares, and URL helpers.
//! - `chart`: SVG charts drawn in Rust.
//! - one module per view: `sign_in`, `links`, `reports`, `events`,
//!   `errors` (with the admin actions), `notifications`.
//!
//! Nothing runs in the browser: no script at all, every asset is compiled
//! into the binary, and the Content-Security-Policy says so
//! ([`CONTENT_SECURITY_POLICY`]); a violation the browser reports is
//! counted (`eventide_console_csp_violations_total`) and logged.

mod chart;
mod errors;
mod events;
mod links;
mod notifications;
mod page;
mod reports;
pub(crate) mod session;
mod sign_in;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use schemas::keys::{Principal, Scope};

use crate::error::ApiError;
use crate::routes::AppState;
use session::{Session, Sessions};

/// Every console page's policy: nothing but this origin's stylesheet and
/// images, no script, no frames, forms only to this origin; violations
/// reported to [`CSP_REPORT`].
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; report-uri /console/csp-report";

/// Where browsers report what the policy blocked.
const CSP_REPORT: &str = "/console/csp-report";

/// The counter of reported policy violations.
pub const CSP_VIOLATIONS_METRIC: &str = "eventide_console_csp_violations_total";

/// Sign-in attempts by `outcome`: `signed_in`, `unknown_key`, `forbidden`.
pub const SIGN_INS_METRIC: &str = "eventide_console_sign_ins_total";

/// The console's state: how it signs sessions.
#[derive(Debug, Clone)]
pub struct Console {
    sessions: Sessions,
}

impl Console {
    /// A console signing sessions with `secret` (or a random secret of this
    /// process) that last `ttl`.
    pub fn new(secret: Option<&str>, ttl: std::time::Duration) -> Self {
        Self {
            sessions: Sessions::new(secret, ttl),
        }
    }
}

/// Who is looking: the signed-in key, its session and the session's CSRF
/// token.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) session: Session,
    pub(crate) csrf: String,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.principal.may(Scope::Admin)
    }
}

/// The console's routes, when the state has a console.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    if state.console.is_none() {
        return Router::new();
    }
    let signed_in = Router::new()
        .route("/console", get(page::home))
        .route("/console/links", get(links::search))
        .route("/console/links/{short_code}", get(links::link))
        .route("/console/clients", get(reports::search))
        .route(
            "/console/clients/{client_id}/reports/{month}",
            get(reports::report),
        )
        .route(
            "/console/clients/{client_id}/reports/{month}/csv",
            get(reports::csv),
        )
        .route("/console/events", get(events::events))
        .route("/console/errors", get(errors::errors))
        .route("/console/destinations/{name}/{action}", post(errors::steer))
        .route("/console/replays", post(errors::replay))
        .route("/console/notifications", get(notifications::notifications))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route_layer(middleware::from_fn_with_state(
            state.limits.clone(),
            bounded,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), signed_in));
    Router::new()
        .merge(signed_in)
        .route(
            "/console/sign-in",
            get(sign_in::form).post(sign_in::sign_in),
        )
        .route("/console/console.css", get(stylesheet))
        .route("/console/favicon.svg", get(page::favicon))
        .route(CSP_REPORT, post(csp_report))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/{*rest}", get(no_page))
        .layer(middleware::from_fn(secure_headers))
        // Pages are text that repeats (a chart's marks): gzip takes a
        // 90-day links page from 77 KB to a few.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The query limits for pages: past the deadline, a page saying so (with
/// the API's `Retry-After`), not the API's JSON.
async fn bounded(
    State(limits): State<crate::limits::QueryLimits>,
    request: Request,
    next: Next,
) -> Result<Response, ConsoleError> {
    Ok(crate::limits::within(&limits, next.run(request)).await?)
}

/// A console path with no page: a page saying so, not the API's JSON.
async fn no_page(uri: axum::http::Uri) -> ConsoleError {
    ConsoleError::Api(ApiError::NotFound {
        path: uri.path().to_owned(),
    })
}

/// The console's state; only routed when there is one.
fn console(state: &AppState) -> Result<&Console, ConsoleError> {
    state.console.as_ref().ok_or(ConsoleError::Disabled)
}

/// Why a console request was not answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// Not signed in (or the session ended): sign in, then come back.
    #[error("sign in to see this page")]
    SignIn { back_to: String },
    /// The key may not do this.
    #[error("this key may not {0}")]
    Forbidden(&'static str),
    /// A form that changes something came without this session's token, or
    /// from another site.
    #[error("this form has expired or came from another site; reload the page and try again")]
    Csrf,
    /// The console is off in this process.
    #[error("the console is not enabled here")]
    Disabled,
    /// What the API would have answered.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Disabled => StatusCode::NOT_FOUND,
            Self::Api(err) => err.status(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let Self::SignIn { back_to } = &self {
            return Redirect::to(&page::url("/console/sign-in", &[("next", back_to)]))
                .into_response();
        }
        if let Self::Api(err) = self {
            // Logged and counted as the API does; shown as a page.
            let status = err.status();
            let message = err.to_string();
            let api = err.into_response();
            let mut shown = (status, page::problem(status, &message)).into_response();
            if let Some(retry_after) = api.headers().get(header::RETRY_AFTER) {
                shown
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after.clone());
            }
            return shown;
        }
        let status = self.status();
        (status, page::problem(status, &self.to_string())).into_response()
    }
}

/// Lets a signed-in viewer through, with [`Viewer`] in the request's
/// extensions; sends anyone else to sign in and back.
async fn signed_in(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ConsoleError> {
    let back_to = request
        .uri()
        .path_and_query()
        .map_or("/console", |p| p.as_str())
        .to_owned();
    let viewer = viewer(&state, request.headers()).ok_or(ConsoleError::SignIn { back_to })?;
    if !viewer.principal.may(Scope::Query) {
        return Err(ConsoleError::Forbidden("read the query API"));
    }
    if request.method() == Method::POST {
        same_origin(request.headers())?;
    }
    request.extensions_mut().insert(viewer);
    Ok(next.run(request).await)
}

/// The viewer a request's session cookie names, if it is valid and its key
/// still known.
fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    let console = state.console.as_ref()?;
    let now = chrono::Utc::now().timestamp();
    let session = cookies(headers)
        .filter(|(name, _)| *name == session::COOKIE)
        .find_map(|(_, value)| console.sessions.open(value, now).ok())?;
    let principal = state.auth.principal_by_hash(&session.key_hash)?;
    let csrf = console.sessions.csrf(&session);
    Some(Viewer {
        principal,
        session,
        csrf,
    })
}

/// Every `name=value` of the request's `Cookie` headers.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// A form post must come from a page of this origin: browsers send
/// `Origin` (or `Sec-Fetch-Site`) with every POST, and a cross-site form
/// cannot forge them.
fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return Err(ConsoleError::Csrf);
    }
    if let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST)) {
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or(origin);
        if bare != host {
            return Err(ConsoleError::Csrf);
        }
    }
    Ok(())
}

/// Headers on every console response: the policy, no sniffing, no
/// framing, no caching of pages that show data.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The stylesheet, compiled in.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/console.css"),
    )
        .into_response()
}

/// The most of a violation report that is read.
const CSP_REPORT_LIMIT: usize = 16 * 1024;

/// A browser's report of something the policy blocked: counted and logged
/// (which directive, which document), never stored.
async fn csp_report(body: axum::body::Bytes) -> StatusCode {
    let report: serde_json::Value =
        serde_json::from_slice(&body[..body.len().min(CSP_REPORT_LIMIT)])
            .unwrap_or(serde_json::Value::Null);
    let report = &report["csp-report"];
    metrics::counter!(CSP_VIOLATIONS_METRIC).increment(1);
    tracing::warn!(
        directive = report["violated-directive"].as_str().unwrap_or("?"),
        document = report["document-uri"].as_str().unwrap_or("?"),
        blocked = report["blocked-uri"].as_str().unwrap_or("?"),
        "console content security policy violation"
    );
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::limits::QueryLimits;

    #[tokio::test(start_paused = true)]
    async fn a_page_past_its_deadline_is_a_503_page_with_retry_after() {
        let app = Router::new()
            .route(
                "/console/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "done"
                }),
            )
            .route_layer(middleware::from_fn_with_state(
                QueryLimits::new(4, Duration::from_secs(1)),
                bounded,
            ));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/console/slow")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header(header::RETRY_AFTER), "1");
        assert!(
            header(header::CONTENT_TYPE).starts_with("text/html"),
            "{}",
            header(header::CONTENT_TYPE)
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("did not finish within"), "{body}");
    }
}
