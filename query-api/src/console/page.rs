//! What every console page shares: the document, the navigation, the
//! problem page, and URLs with their parameters.

use std::collections::HashMap;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use super::Viewer;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Home,
    Links,
    Clients,
    Events,
    Errors,
    Notifications,
    SignIn,
}

const NAVIGATION: [(Section, &str, &str); 5] = [
    (Section::Links, "/console/links", "Links"),
    (Section::Clients, "/console/clients", "Client reports"),
    (Section::Events, "/console/events", "Events"),
    (Section::Errors, "/console/errors", "Errors"),
    (
        Section::Notifications,
        "/console/notifications",
        "Notifications",
    ),
];

/// A whole page: `title` as the document's title and first heading.
pub(crate) fn document(
    title: &str,
    section: Section,
    viewer: Option<&Viewer>,
    body: Markup,
) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Eventide console" }
                link rel="stylesheet" href="/console/console.css";
                link rel="icon" href="/console/favicon.svg" type="image/svg+xml";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        a.brand href="/console" { "Eventide" }
                        @if section != Section::SignIn {
                            ul {
                                @for (target, href, label) in NAVIGATION {
                                    li {
                                        @if target == section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(viewer) = viewer {
                        form.session method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            span { "Signed in as " strong { (viewer.principal.key_id) }
                                @if viewer.is_admin() { " (admin)" } }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(page.into_string())
}

/// The page of a request that could not be answered.
pub(crate) fn problem(status: StatusCode, message: &str) -> Html<String> {
    let title = status.canonical_reason().unwrap_or("Problem");
    document(
        title,
        Section::Home,
        None,
        html! {
            p.problem role="alert" { (message) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

/// `path` with the non-empty `params` as its query string.
pub(crate) fn url(path: &str, params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// One path segment, percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The `names` of a page's query that hold something, as the API takes
/// them: an empty form field is no parameter, and a parameter the API
/// does not know is not passed on.
pub(crate) fn given(query: &HashMap<String, String>, names: &[&str]) -> HashMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let value = query.get(*name)?.trim();
            (!value.is_empty()).then(|| ((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// A query value, or the empty string.
pub(crate) fn value<'a>(query: &'a HashMap<String, String>, name: &str) -> &'a str {
    query.get(name).map_or("", |v| v.trim())
}

/// `GET /console`: where to go from here.
pub(crate) async fn home(Extension(viewer): Extension<Viewer>) -> Html<String> {
    document(
        "Console",
        Section::Home,
        Some(&viewer),
        html! {
            p { "What the pipeline has counted and stored, as the query API answers it." }
            div.cards {
                section {
                    h2 { "Links" }
                    (super::links::search_form(""))
                }
                section {
                    h2 { "Client reports" }
                    (super::reports::search_form("", ""))
                }
                section {
                    h2 { "Events" }
                    p { a href="/console/events" { "Event types and their counts" } }
                    form method="get" action="/console/events" {
                        label for="home-session" { "Session id" }
                        input id="home-session" name="session_id" required;
                        button type="submit" { "Show events" }
                    }
                }
                section {
                    h2 { "Errors" }
                    p { a href="/console/errors" { "Refused requests and dead letters" } }
                }
                section {
                    h2 { "Notifications" }
                    form method="get" action="/console/notifications" {
                        label for="home-user" { "User id" }
                        input id="home-user" name="user_id" required;
                        button type="submit" { "Show notifications" }
                    }
                }
            }
        },
    )
}

/// The browser's tab icon, so it asks for nothing outside the console.
pub(crate) async fn favicon() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d4f7a"/><path d="M3 11h10M3 8h7M3 5h4" stroke="#fff" stroke-width="2"/></svg>"##,
    )
        .into_response()
}

/// "as of": when the newest counted record was written, or that nothing
/// has been counted yet.
pub(crate) fn as_of(as_of: &serde_json::Value) -> Markup {
    html! {
        p.as-of {
            @match as_of.as_str() {
                Some(at) => { "Counted through " time datetime=(at) { (at) } "." }
                None => { "Nothing counted yet." }
            }
        }
    }
}

/// `n` and `noun`, plural when `n` is not one.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// "First page" and "Next page" of a listing at `path`: the page's
/// `params` (those of `names`) kept, the API's `next_cursor` followed.
pub(crate) fn pages(
    path: &str,
    params: &HashMap<String, String>,
    names: &[&str],
    next_cursor: Option<&str>,
) -> Markup {
    let link = |cursor: &str| {
        let mut pairs: Vec<(&str, &str)> = names
            .iter()
            .filter(|name| **name != "cursor")
            .filter_map(|name| params.get(*name).map(|v| (*name, v.as_str())))
            .collect();
        pairs.push(("cursor", cursor));
        url(path, &pairs)
    };
    html! {
        nav.pages aria-label="Pages" {
            @if params.contains_key("cursor") {
                a href=(link("")) { "First page" }
            }
            @if let Some(next) = next_cursor {
                a rel="next" href=(link(next)) { "Next page" }
            }
        }
    }
}
