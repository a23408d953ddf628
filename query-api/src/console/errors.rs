//! *Errors*: refused requests and dead letters by time, with reason, field
//! and body sample; for `admin` keys, each destination's state with pause
//! and resume, and replays.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::response::Html;
use axum::{Extension, http::StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::page::{Section, count, document, given, pages, value};
use super::{ConsoleError, Viewer, console};
use crate::routes::admin::{self, ReplayRequest};
use crate::routes::{self, AppState};

/// What the page passes on to `GET /v1/errors`.
const PARAMETERS: [&str; 6] = ["kind", "app", "from", "to", "limit", "cursor"];

/// `GET /console/errors?kind&app&from&to&limit&cursor`.
pub(crate) async fn errors(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Html<String>, ConsoleError> {
    let params = given(&query, &PARAMETERS);
    let listing = routes::errors(State(state.clone()), Query(params.clone()))
        .await?
        .0;
    let destinations = if viewer.is_admin() {
        Some(admin::destination_statuses(&state).await)
    } else {
        None
    };
    Ok(document(
        "Errors",
        Section::Errors,
        Some(&viewer),
        html! {
            (filter_form(&query))
            (list(&params, &listing))
            @if let Some(destinations) = destinations {
                (steering(&viewer, destinations))
            }
        },
    ))
}

fn filter_form(query: &HashMap<String, String>) -> Markup {
    let kind = value(query, "kind");
    html! {
        form.filters method="get" action="/console/errors" {
            fieldset {
                legend { "Which errors" }
                div.field {
                    label for="kind" { "Kind" }
                    select id="kind" name="kind" {
                        @for (option, label) in [("", "all"), ("reject", "refused requests"), ("dead_letter", "dead letters")] {
                            option value=(option) selected[option == kind] { (label) }
                        }
                    }
                }
                div.field {
                    label for="app" { "Application" }
                    input id="app" name="app" value=(value(query, "app"));
                }
                div.field {
                    label for="from" { "From" }
                    input id="from" name="from" value=(value(query, "from")) placeholder="YYYY-MM-DD or RFC 3339";
                }
                div.field {
                    label for="to" { "To" }
                    input id="to" name="to" value=(value(query, "to")) placeholder="YYYY-MM-DD or RFC 3339";
                }
                button type="submit" { "Show errors" }
            }
        }
    }
}

/// One page of errors, oldest first, and the way to the next.
fn list(params: &HashMap<String, String>, listing: &Value) -> Markup {
    let rows = listing["errors"].as_array().map_or(&[][..], Vec::as_slice);
    let text = |row: &Value, field: &str| row[field].as_str().unwrap_or("").to_owned();
    html! {
        section aria-labelledby="errors-heading" {
            h2 #errors-heading { (count(rows.len(), "error")) ", oldest first" }
            @if rows.is_empty() {
                p { "No errors match." }
            } @else {
                div.scroll {
                    table #errors {
                        thead { tr {
                            th scope="col" { "At" }
                            th scope="col" { "Kind" }
                            th scope="col" { "Where" }
                            th scope="col" { "Field" }
                            th scope="col" { "Reason" }
                            th scope="col" { "Body" }
                        } }
                        tbody {
                            @for row in rows {
                                tr data-id=(text(row, "id")) {
                                    td { (text(row, "occurred_at")) }
                                    td {
                                        (if row["kind"] == "reject" { "refused" } else { "dead letter" })
                                        @if let Some(status) = row["status"].as_i64() { " (" (status) ")" }
                                        @if let Some(run) = row["replay_run"].as_str() {
                                            br; small { "again in replay " code { (run) } }
                                        }
                                    }
                                    td { (text(row, "source"))
                                        @if let Some(app) = row["application_id"].as_str() { br; small { "app " (app) } } }
                                    td { @if let Some(field) = row["field"].as_str() { code { (field) } } }
                                    td { strong { (text(row, "reason")) } br; (text(row, "message")) }
                                    td { pre.data.sample { (text(row, "body")) } }
                                }
                            }
                        }
                    }
                }
            }
            (pages("/console/errors", params, &PARAMETERS, listing["next_cursor"].as_str()))
        }
    }
}

/// Destinations with pause and resume, and the replay form (admin keys).
fn steering(viewer: &Viewer, destinations: Result<Value, crate::ApiError>) -> Markup {
    let destinations = match destinations {
        Ok(answer) => answer["destinations"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(err) => {
            return html! {
                section aria-labelledby="destinations-heading" {
                    h2 #destinations-heading { "Destinations" }
                    p.problem { (err.to_string()) }
                }
            };
        }
    };
    let text = |row: &Value, field: &str| row[field].as_str().unwrap_or("–").to_owned();
    html! {
        section aria-labelledby="destinations-heading" {
            h2 #destinations-heading { "Destinations" }
            @if destinations.is_empty() {
                p { "No destinations are configured." }
            } @else {
                div.scroll {
                    table #destinations {
                        thead { tr {
                            th scope="col" { "Destination" }
                            th scope="col" { "State" }
                            th scope="col" { "Lag" }
                            th scope="col" { "Last success" }
                            th scope="col" { "Last error" }
                            th scope="col" { "Change" }
                        } }
                        tbody {
                            @for row in &destinations {
                                @let name = text(row, "destination");
                                @let paused = row["paused"] == Value::Bool(true);
                                tr data-destination=(name) {
                                    th scope="row" { (name) }
                                    td { (if paused { "paused" } else { "delivering" })
                                        @if let Some(by) = row["changed_by"].as_str() { br; small { "by " (by) } }
                                        @if let Some(reason) = row["reason"].as_str().filter(|r| !r.is_empty()) { br; small { (reason) } } }
                                    td.number { (row["lag"].as_i64().map_or("–".to_owned(), |lag| lag.to_string())) }
                                    td { (text(row, "last_success_at")) }
                                    td { (text(row, "last_error_at"))
                                        @if let Some(error) = row["last_error"].as_str() { br; small { (error) } } }
                                    td {
                                        form.inline method="post" action={ "/console/destinations/" (super::page::segment(&name)) "/" (if paused { "resume" } else { "pause" }) } {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            label.visually-hidden for={ "reason-" (name) } { "Reason" }
                                            input id={ "reason-" (name) } name="reason" placeholder="reason" size="12";
                                            button type="submit" { (if paused { "Resume " } else { "Pause " }) (name) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="replay-heading" {
            h2 #replay-heading { "Replay" }
            form.filters method="post" action="/console/replays" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                fieldset {
                    legend { "Send dead letters again, or judge refused requests again" }
                    div.field {
                        label for="target" { "What" }
                        select id="target" name="target" {
                            @for row in &destinations {
                                @let name = text(row, "destination");
                                option value=(name) { "dead letters of " (name) }
                            }
                            option value="rejects" { "refused requests of an application" }
                        }
                    }
                    div.field {
                        label for="application" { "Application (refused requests)" }
                        input id="application" name="application";
                    }
                    div.field {
                        label for="since" { "Since" }
                        input id="since" name="since" placeholder="RFC 3339";
                    }
                    div.field {
                        label for="until" { "Until" }
                        input id="until" name="until" placeholder="RFC 3339";
                    }
                    div.field.check {
                        input type="checkbox" id="dry_run" name="dry_run" value="true" checked;
                        label for="dry_run" { "Dry run: count and list, send nothing" }
                    }
                    button type="submit" { "Replay" }
                }
            }
        }
    }
}

/// Admin keys only, with this session's CSRF token.
fn admin_form(state: &AppState, viewer: &Viewer, csrf: &str) -> Result<(), ConsoleError> {
    if !viewer.is_admin() {
        return Err(ConsoleError::Forbidden("steer delivery"));
    }
    if !console(state)?.sessions.csrf_matches(&viewer.session, csrf) {
        return Err(ConsoleError::Csrf);
    }
    Ok(())
}

/// The pause and resume form.
#[derive(Debug, Deserialize)]
pub(crate) struct Steer {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/destinations/{name}/{pause|resume}`.
pub(crate) async fn steer(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<Steer>,
) -> Result<(StatusCode, Html<String>), ConsoleError> {
    admin_form(&state, &viewer, &form.csrf)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(crate::ApiError::NotFound {
                path: format!("/console/destinations/{name}/{action}"),
            }
            .into());
        }
    };
    let changed_by = format!("console:{}", viewer.principal.key_id);
    let answer = admin::set_paused(&state, &name, paused, form.reason, changed_by).await?;
    let verb = if paused { "Paused" } else { "Resumed" };
    Ok((
        StatusCode::OK,
        document(
            &format!("{verb} {name}"),
            Section::Errors,
            Some(&viewer),
            html! {
                p role="status" { (verb) " " strong { (name) } " on every replica, as "
                    code { (answer["changed_by"].as_str().unwrap_or("")) } "." }
                p { a href="/console/errors" { "Back to errors and destinations" } }
            },
        ),
    ))
}

/// The replay form.
#[derive(Debug, Deserialize)]
pub(crate) struct Replay {
    csrf: String,
    target: String,
    #[serde(default)]
    application: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /console/replays`: a replay run, as `POST /v1/admin/replays`.
pub(crate) async fn replay(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<Replay>,
) -> Result<Html<String>, ConsoleError> {
    admin_form(&state, &viewer, &form.csrf)?;
    let some = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let rejects = form.target == "rejects";
    let request = ReplayRequest {
        rejects,
        application: if rejects {
            some(&form.application)
        } else {
            None
        },
        destination: if rejects { None } else { some(&form.target) },
        since: some(&form.since),
        until: some(&form.until),
        dry_run: form.dry_run.is_some(),
        ..ReplayRequest::default()
    };
    let answer = admin::replay(
        &state,
        request,
        &format!("console:{}", viewer.principal.key_id),
    )
    .await?;
    let counts: Vec<(&str, &Value)> = answer
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(_, v)| !v.is_array())
                .map(|(k, v)| (k.as_str(), v))
                .collect()
        })
        .unwrap_or_default();
    let listed = answer["records"]
        .as_array()
        .or_else(|| answer["requests"].as_array())
        .cloned()
        .unwrap_or_default();
    Ok(document(
        if form.dry_run.is_some() {
            "Replay (dry run)"
        } else {
            "Replay"
        },
        Section::Errors,
        Some(&viewer),
        html! {
            table #replay {
                caption { "The run's counts" }
                tbody {
                    @for (name, count) in counts {
                        tr { th scope="row" { (name) } td { (count.as_str().map_or_else(|| count.to_string(), str::to_owned)) } }
                    }
                }
            }
            @if !listed.is_empty() {
                h2 { "Would replay" }
                div.scroll { pre.data { (serde_json::to_string_pretty(&listed).unwrap_or_default()) } }
            }
            p { a href="/console/errors" { "Back to errors and destinations" } }
        },
    ))
}
