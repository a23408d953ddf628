//! *Client reports*: a client's month, its codes most clicked first, and
//! the API's CSV of it.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};

use super::chart;
use super::page::{Section, as_of, document, segment, value};
use super::{ConsoleError, Viewer};
use crate::routes::AppState;
use crate::routes::clicks::{self, Report};

/// Codes the report's chart shows; the table lists all.
const CHART_CODES: usize = 20;

/// The client and month form.
pub(crate) fn search_form(client_id: &str, month: &str) -> Markup {
    let this_month = Utc::now().format("%Y-%m").to_string();
    let month = if month.is_empty() { &this_month } else { month };
    html! {
        form.search method="get" action="/console/clients" {
            label for="client_id" { "Client id" }
            input id="client_id" name="client_id" value=(client_id) required inputmode="numeric"
                pattern="[0-9]+" title="an integer >= 0";
            label for="month" { "Month" }
            input id="month" name="month" value=(month) required placeholder="YYYY-MM"
                pattern="[0-9]{4}-[0-9]{2}" title="YYYY-MM" size="7";
            button type="submit" { "Show report" }
        }
    }
}

/// `GET /console/clients?client_id&month`: the form, or the report.
pub(crate) async fn search(
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (client_id, month) = (value(&query, "client_id"), value(&query, "month"));
    if !client_id.is_empty() && !month.is_empty() {
        return Redirect::to(&format!(
            "/console/clients/{}/reports/{}",
            segment(client_id),
            segment(month)
        ))
        .into_response();
    }
    document(
        "Client reports",
        Section::Clients,
        Some(&viewer),
        search_form(client_id, month),
    )
    .into_response()
}

/// `GET /console/clients/{client_id}/reports/{month}`.
pub(crate) async fn report(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((client_id, month)): Path<(String, String)>,
) -> Result<Html<String>, ConsoleError> {
    let report = clicks::report(&state, &client_id, &month).await?;
    let answer = clicks::report_json(&state, &report).await?;
    let total = Report::total(&report.lines);
    let rows: Vec<(String, i64)> = report
        .lines
        .iter()
        .take(CHART_CODES)
        .map(|line| (line.short_code.clone(), line.clicks))
        .collect();
    let csv = format!(
        "/console/clients/{}/reports/{}/csv",
        report.client_id, report.month
    );
    let title = format!("Client {} in {}", report.client_id, report.month);
    Ok(document(
        &title,
        Section::Clients,
        Some(&viewer),
        html! {
            (search_form(&report.client_id.to_string(), &report.month))
            dl.totals {
                div { dt { "People's clicks" } dd #total-clicks { (total) } }
                div { dt { "Short codes" } dd { (report.lines.len()) } }
            }
            p { a.button href=(csv) download { "Download CSV" } }
            @if report.lines.is_empty() {
                p { "No clicks on this client's links in " (report.month) "." }
            } @else {
                (chart::bars(&format!("People's clicks per short code, the {} most clicked", rows.len()),
                    "Short code", &rows, total))
                h2 { "Every short code" }
                div.scroll {
                    table #report {
                        thead { tr {
                            th scope="col" { "Short code" }
                            th scope="col" { "People's clicks" }
                            th scope="col" { "Unique visitors" }
                            th scope="col" { "Previews" }
                        } }
                        tbody {
                            @for line in &report.lines {
                                tr {
                                    th scope="row" {
                                        a href={ "/console/links/" (segment(&line.short_code)) "?from=" (report.month) "&to=" (report.month) } {
                                            (line.short_code)
                                        }
                                    }
                                    td.number { (line.clicks) }
                                    td.number { (line.unique_visitors) }
                                    td.number { (line.previews) }
                                }
                            }
                        }
                    }
                }
            }
            (as_of(&answer["as_of"]))
        },
    ))
}

/// `GET /console/clients/{client_id}/reports/{month}/csv`: the API's CSV.
pub(crate) async fn csv(
    State(state): State<AppState>,
    Path((client_id, month)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let report = clicks::report(&state, &client_id, &month).await?;
    Ok(clicks::csv_download(&report)?)
}
