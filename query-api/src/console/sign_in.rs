//! Signing in with a key, and out.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use schemas::keys::{Auth, DEV_ANALYST_KEY, Scope, hash_key};
use serde::Deserialize;

use super::page::{Section, document};
use super::{ConsoleError, SIGN_INS_METRIC, Viewer, console, same_origin, session, viewer};
use crate::routes::AppState;

/// Where signing in returns to: a console page, never another site.
fn destination(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/console")
                && !next.starts_with("/console/sign-")
                && !next.contains('\\') =>
        {
            next
        }
        _ => "/console",
    }
}

/// `GET /console/sign-in?next=`: the form, or straight on when signed in.
pub(crate) async fn form(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let next = destination(query.get("next").map(String::as_str));
    if viewer(&state, &headers).is_some() {
        return Redirect::to(next).into_response();
    }
    page(&state.auth, next, None).into_response()
}

/// The sign-in page, with why the last attempt failed.
fn page(auth: &Auth, next: &str, failure: Option<&str>) -> axum::response::Html<String> {
    // On the development keys, say which one to use.
    let development = matches!(auth, Auth::Keys(keys)
        if keys.by_hash(&hash_key(DEV_ANALYST_KEY)).is_some());
    document(
        "Sign in",
        Section::SignIn,
        None,
        html! {
            @if let Some(failure) = failure {
                p.problem role="alert" id="sign-in-problem" { (failure) }
            }
            form.sign-in method="post" action="/console/sign-in" {
                label for="key" { "API key with the " code { "query" } " scope" }
                input id="key" name="key" type="password" autocomplete="current-password"
                    required autofocus aria-describedby=[failure.map(|_| "sign-in-problem")];
                input type="hidden" name="next" value=(next);
                button type="submit" { "Sign in" }
            }
            @if development {
                p.hint { "On the local default, sign in with " code { (DEV_ANALYST_KEY) } "." }
            }
        },
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    key: String,
    next: Option<String>,
}

/// `POST /console/sign-in`: a known key with the `query` scope gets a
/// session cookie and goes where it was headed.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, ConsoleError> {
    same_origin(&headers)?;
    let console = console(&state)?;
    let next = destination(form.next.as_deref());
    let outcome = |outcome: &'static str| {
        metrics::counter!(SIGN_INS_METRIC, "outcome" => outcome).increment(1);
    };
    let Some((principal, key_hash)) = state.auth.sign_in(form.key.trim()) else {
        outcome("unknown_key");
        return Ok((
            StatusCode::UNAUTHORIZED,
            page(&state.auth, next, Some("That key is not known here.")),
        )
            .into_response());
    };
    if !principal.may(Scope::Query) {
        outcome("forbidden");
        return Ok((
            StatusCode::FORBIDDEN,
            page(
                &state.auth,
                next,
                Some("That key may not read the query API (it lacks the `query` scope)."),
            ),
        )
            .into_response());
    }
    outcome("signed_in");
    tracing::info!(key_id = %principal.key_id, "console sign-in");
    let (_, cookie) = console
        .sessions
        .issue(&key_hash, chrono::Utc::now().timestamp());
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{}={cookie}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session::COOKIE,
        console.sessions.ttl().as_secs(),
        if secure { "; Secure" } else { "" },
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response())
}

/// The sign-out form's field.
#[derive(Debug, Deserialize)]
pub(crate) struct SignOut {
    csrf: String,
}

/// `POST /console/sign-out`: the cookie is dropped.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<SignOut>,
) -> Result<Response, ConsoleError> {
    let console = console(&state)?;
    if !console.sessions.csrf_matches(&viewer.session, &form.csrf) {
        return Err(ConsoleError::Csrf);
    }
    let cleared = format!(
        "{}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        session::COOKIE
    );
    Ok((
        [(header::SET_COOKIE, cleared)],
        Redirect::to("/console/sign-in"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn signing_in_returns_only_to_console_pages() {
        assert_eq!(
            destination(Some("/console/links/abc?from=2026-01-01")),
            "/console/links/abc?from=2026-01-01"
        );
        for elsewhere in [
            None,
            Some("https://evil.example/console"),
            Some("//evil.example"),
            Some("/v1/events"),
            Some("/console/sign-in?next=/console"),
            Some("/console\\@evil.example"),
        ] {
            assert_eq!(destination(elsewhere), "/console", "{elsewhere:?}");
        }
    }
}
