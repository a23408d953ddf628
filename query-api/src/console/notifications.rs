//! *Notifications*: what the rules sent a user, in order, paged.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;

use super::page::{Section, count, document, given, pages, value};
use super::{ConsoleError, Viewer};
use crate::routes::{self, AppState};

/// `GET /console/notifications?user_id&limit&cursor`.
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Html<String>, ConsoleError> {
    let params = given(&query, &["user_id", "limit", "cursor"]);
    let user = value(&query, "user_id");
    let listing = if user.is_empty() {
        None
    } else {
        Some(
            routes::notifications(State(state), Query(params.clone()))
                .await?
                .0,
        )
    };
    Ok(document(
        "Notifications",
        Section::Notifications,
        Some(&viewer),
        html! {
            form.search method="get" action="/console/notifications" {
                label for="user_id" { "User id" }
                input id="user_id" name="user_id" value=(user) required;
                button type="submit" { "Show notifications" }
            }
            @if let Some(listing) = &listing {
                @let rows = listing["notifications"].as_array().map_or(&[][..], Vec::as_slice);
                h2 { (count(rows.len(), "notification")) " for " (user) ", oldest first" }
                @if rows.is_empty() {
                    p { "None." }
                } @else {
                    div.scroll {
                        table #notifications {
                            thead { tr {
                                th scope="col" { "Fired at" }
                                th scope="col" { "Rule" }
                                th scope="col" { "Message" }
                                th scope="col" { "Event at" }
                                th scope="col" { "Late by" }
                                th scope="col" { "Data" }
                            } }
                            tbody {
                                @for row in rows {
                                    tr {
                                        td { (row["fired_at"].as_str().unwrap_or("")) }
                                        td { (row["rule"].as_str().unwrap_or("")) }
                                        td { (row["message"].as_str().unwrap_or("")) }
                                        td { (row["occurred_at"].as_str().unwrap_or("")) }
                                        td.number { (row["late_by_seconds"]) " s" }
                                        td { pre.data { (serde_json::to_string_pretty(&row["data"]).unwrap_or_default()) } }
                                    }
                                }
                            }
                        }
                    }
                }
                (pages("/console/notifications", &params, &["user_id", "limit", "cursor"], listing["next_cursor"].as_str()))
            }
        },
    ))
}
