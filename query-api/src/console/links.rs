//! *Links*: a short code's clicks over a range, people beside bots and
//! previews, unique visitors, and one breakdown at a time.
//!
//! The numbers are the API's: the series is `GET /v1/links/{code}/stats`
//! with the page's `from`, `to` and `granularity`, and the breakdown is
//! `GET /v1/links/{code}/top?dimension=<group_by>`.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::chart::{self, Column};
use super::page::{Section, as_of, count, document, given, segment, url, value};
use super::{ConsoleError, Viewer};
use crate::routes::AppState;
use crate::routes::clicks;
use crate::stats::GroupBy;

/// Values a breakdown shows.
const BREAKDOWN_VALUES: &str = "20";

/// The short-code search form.
pub(crate) fn search_form(code: &str) -> Markup {
    html! {
        form.search method="get" action="/console/links" {
            label for="code" { "Short code" }
            input id="code" name="code" value=(code) required pattern="[A-Za-z0-9_\\-]{1,16}"
                title="1-16 letters, digits, _ or -";
            button type="submit" { "Show clicks" }
        }
    }
}

/// `GET /console/links?code=`: the search, or the link it names.
pub(crate) async fn search(
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let code = value(&query, "code");
    if !code.is_empty() {
        return Redirect::to(&format!("/console/links/{}", segment(code))).into_response();
    }
    document("Links", Section::Links, Some(&viewer), search_form("")).into_response()
}

/// `GET /console/links/{short_code}?from&to&granularity&group_by`.
pub(crate) async fn link(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Html<String>, ConsoleError> {
    let range = given(&query, &["from", "to", "granularity"]);
    let stats = clicks::link_stats(
        State(state.clone()),
        Path(code.clone()),
        Query(range.clone()),
    )
    .await?
    .0;
    let group_by = value(&query, "group_by");
    let breakdown = if group_by.is_empty() {
        None
    } else {
        let mut top = given(&query, &["from", "to"]);
        // The range the series settled on (defaults filled in).
        for bound in ["from", "to"] {
            if let Some(day) = stats[bound].as_str() {
                top.insert(bound.to_owned(), day.to_owned());
            }
        }
        top.insert("dimension".into(), group_by.to_owned());
        top.insert("limit".into(), BREAKDOWN_VALUES.into());
        Some(
            clicks::link_top(State(state), Path(code.clone()), Query(top))
                .await?
                .0,
        )
    };
    let title = format!("Link {code}");
    Ok(document(
        &title,
        Section::Links,
        Some(&viewer),
        html! {
            (search_form(&code))
            (range_form(&code, &query, &stats))
            (summary(&stats))
            (series(&stats))
            (breakdowns(&code, &stats, group_by, breakdown.as_ref()))
            (as_of(&stats["as_of"]))
        },
    ))
}

/// The range, granularity and breakdown of the page.
fn range_form(code: &str, query: &HashMap<String, String>, stats: &Value) -> Markup {
    let granularity = stats["granularity"].as_str().unwrap_or("day");
    let group_by = value(query, "group_by");
    html! {
        form.range method="get" action={ "/console/links/" (segment(code)) } {
            fieldset {
                legend { "Range" }
                label for="from" { "From" }
                input id="from" name="from" value=(stats["from"].as_str().unwrap_or(""))
                    placeholder="YYYY-MM-DD" size="10";
                label for="to" { "To" }
                input id="to" name="to" value=(stats["to"].as_str().unwrap_or(""))
                    placeholder="YYYY-MM-DD" size="10";
                label for="granularity" { "Per" }
                select id="granularity" name="granularity" {
                    @for option in ["day", "month"] {
                        option value=(option) selected[option == granularity] { (option) }
                    }
                }
                label for="group_by" { "Breakdown" }
                select id="group_by" name="group_by" {
                    option value="" selected[group_by.is_empty()] { "none" }
                    @for split in GroupBy::all() {
                        option value=(split.name()) selected[split.name() == group_by] { (split.name()) }
                    }
                }
                button type="submit" { "Show" }
            }
        }
    }
}

/// The range's totals.
fn summary(stats: &Value) -> Markup {
    html! {
        dl.totals {
            div { dt { "People's clicks" } dd #total-clicks { (stats["total_clicks"]) } }
            div { dt { "Bot clicks" } dd #total-bot-clicks { (stats["total_bot_clicks"]) } }
            div { dt { "Previews" } dd #total-previews { (stats["total_previews"]) } }
            div { dt { "Unique visitors " small { "(estimate, ±2%)" } }
                dd #total-unique-visitors { (stats["total_unique_visitors"]) } }
        }
    }
}

/// The series as a chart and as a table.
fn series(stats: &Value) -> Markup {
    let points = stats["series"].as_array().map_or(&[][..], Vec::as_slice);
    let number = |point: &Value, field: &str| point[field].as_i64().unwrap_or(0);
    let columns: Vec<Column> = points
        .iter()
        .map(|point| Column {
            label: point["period"].as_str().unwrap_or("").to_owned(),
            values: vec![
                number(point, "clicks"),
                number(point, "bot_clicks"),
                number(point, "previews"),
            ],
        })
        .collect();
    let per = stats["granularity"].as_str().unwrap_or("day");
    html! {
        section aria-labelledby="series-heading" {
            h2 #series-heading { "Clicks per " (per) }
            (chart::columns("clicks-chart", &format!("Clicks per {per}: people, bots and previews stacked"),
                &["people", "bots", "previews"], &columns))
            details open {
                summary { "The numbers" }
                div.scroll {
                    table #series {
                        thead { tr {
                            th scope="col" { "Period" }
                            th scope="col" { "People" }
                            th scope="col" { "Bots" }
                            th scope="col" { "Previews" }
                            th scope="col" { "Unique visitors" }
                        } }
                        tbody {
                            @for point in points {
                                tr {
                                    th scope="row" { (point["period"].as_str().unwrap_or("")) }
                                    td.number { (point["clicks"]) }
                                    td.number { (point["bot_clicks"]) }
                                    td.number { (point["previews"]) }
                                    td.number { (point["unique_visitors"]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The chosen breakdown as bars, and links to every other.
fn breakdowns(code: &str, stats: &Value, chosen: &str, top: Option<&Value>) -> Markup {
    let at = |split: &str| {
        url(
            &format!("/console/links/{}", segment(code)),
            &[
                ("from", stats["from"].as_str().unwrap_or("")),
                ("to", stats["to"].as_str().unwrap_or("")),
                ("granularity", stats["granularity"].as_str().unwrap_or("")),
                ("group_by", split),
            ],
        )
    };
    html! {
        section aria-labelledby="breakdown-heading" {
            h2 #breakdown-heading { "Breakdowns" }
            nav aria-label="Breakdowns" {
                ul.splits {
                    @for split in GroupBy::all() {
                        li {
                            @if split.name() == chosen {
                                a href=(at(split.name())) aria-current="page" { (split.name()) }
                            } @else {
                                a href=(at(split.name())) { (split.name()) }
                            }
                        }
                    }
                }
            }
            @if let Some(top) = top {
                @let rows: Vec<(String, i64)> = top["values"].as_array().map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|v| (v["value"].as_str().unwrap_or("").to_owned(), v["clicks"].as_i64().unwrap_or(0)))
                    .collect();
                @let total = top["total_clicks"].as_i64().unwrap_or(0);
                @if rows.is_empty() {
                    p { "No people's clicks by " (chosen) " in this range." }
                } @else {
                    (chart::bars(&format!("People's clicks by {chosen}: the {} most clicked of {total} clicks", count(rows.len(), "value")),
                        chosen, &rows, total))
                }
            } @else {
                p { "Choose a breakdown to see where the clicks came from." }
            }
        }
    }
}
