//! *Events*: a session's events, or a category's over a range, in order and
//! paged with the API's cursors; the event types with their counts.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde_json::Value;

use super::page::{Section, count, document, given, pages, url, value};
use super::{ConsoleError, Viewer};
use crate::routes::{self, AppState};

/// What the page passes on to `GET /v1/events`.
const PARAMETERS: [&str; 7] = [
    "session_id",
    "category",
    "name",
    "from",
    "to",
    "limit",
    "cursor",
];

/// `GET /console/events?session_id=|category=[&name]&from&to&limit&cursor`.
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Html<String>, ConsoleError> {
    let params = given(&query, &PARAMETERS);
    let filtered = ["session_id", "category"]
        .iter()
        .any(|name| params.contains_key(*name));
    let listing = if filtered {
        Some(
            routes::events(State(state.clone()), Query(params.clone()))
                .await?
                .0,
        )
    } else {
        None
    };
    let types = routes::event_types(State(state), Query(HashMap::new()))
        .await?
        .0;
    Ok(document(
        "Events",
        Section::Events,
        Some(&viewer),
        html! {
            (filter_form(&query))
            @if let Some(listing) = &listing {
                (list(&params, listing))
            }
            (event_types(&types))
        },
    ))
}

fn filter_form(query: &HashMap<String, String>) -> Markup {
    let field = |id: &str, label: &str, hint: &str| {
        html! {
            div.field {
                label for=(id) { (label) }
                input id=(id) name=(id) value=(value(query, id)) placeholder=(hint);
            }
        }
    };
    html! {
        form.filters method="get" action="/console/events" {
            fieldset {
                legend { "Events of a session, or of a category" }
                (field("session_id", "Session id", ""))
                (field("category", "Category", ""))
                (field("name", "Name (with a category)", ""))
                (field("from", "From", "YYYY-MM-DD or RFC 3339"))
                (field("to", "To", "YYYY-MM-DD or RFC 3339"))
                (field("limit", "Per page", "100"))
                button type="submit" { "Show events" }
            }
        }
    }
}

/// One page of events and the way to the next.
fn list(params: &HashMap<String, String>, listing: &Value) -> Markup {
    let events = listing["events"].as_array().map_or(&[][..], Vec::as_slice);
    html! {
        section aria-labelledby="events-heading" {
            h2 #events-heading { (count(events.len(), "event")) ", oldest first" }
            @if events.is_empty() {
                p { "No events match." }
            } @else {
                ol #events.events {
                    @for event in events {
                        li data-id=(event["id"].as_str().unwrap_or("")) {
                            p.event-head {
                                time datetime=(event["occurred_at"].as_str().unwrap_or("")) {
                                    (event["occurred_at"].as_str().unwrap_or(""))
                                }
                                " "
                                strong { (event["category"].as_str().unwrap_or("")) " / " (event["name"].as_str().unwrap_or("")) }
                                @if event["known_type"] == Value::Bool(false) {
                                    " " span.badge { "unknown type" }
                                }
                            }
                            p.event-meta {
                                "session " a href=(url("/console/events", &[("session_id", event["session_id"].as_str().unwrap_or(""))])) {
                                    (event["session_id"].as_str().unwrap_or(""))
                                }
                                @if let Some(user) = event["user_id"].as_str() {
                                    " · user " a href=(url("/console/notifications", &[("user_id", user)])) { (user) }
                                }
                                " · id " code { (event["id"].as_str().unwrap_or("")) }
                            }
                            pre.data { (serde_json::to_string_pretty(&event["data"]).unwrap_or_default()) }
                        }
                    }
                }
            }
            (pages("/console/events", params, &PARAMETERS, listing["next_cursor"].as_str()))
        }
    }
}

/// The event types table: every type stored, with its count.
fn event_types(types: &Value) -> Markup {
    let types = types["event_types"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    html! {
        section aria-labelledby="types-heading" {
            h2 #types-heading { "Event types" }
            @if types.is_empty() {
                p { "No events stored yet." }
            } @else {
                div.scroll {
                    table #event-types {
                        thead { tr {
                            th scope="col" { "Category" }
                            th scope="col" { "Name" }
                            th scope="col" { "Events" }
                            th scope="col" { "Type" }
                        } }
                        tbody {
                            @for kind in types {
                                @let category = kind["category"].as_str().unwrap_or("");
                                @let name = kind["name"].as_str().unwrap_or("");
                                tr {
                                    td { a href=(url("/console/events", &[("category", category)])) { (category) } }
                                    td { a href=(url("/console/events", &[("category", category), ("name", name)])) { (name) } }
                                    td.number { (kind["events"]) }
                                    td { @if kind["known"] == Value::Bool(true) { "known" } @else { span.badge { "unknown" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
