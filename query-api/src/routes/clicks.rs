//! `GET /v1/links/{short_code}/stats` and `GET /v1/clients/{client_id}/reports/{month}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Months, NaiveDate, Utc};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::paging::rfc3339;
use crate::params::{only, text};
use crate::stats::{Daily, Granularity, GroupBy, report_csv, series, top};
use crate::store::Apart;

/// The most buckets one series holds.
pub(crate) const MAX_BUCKETS: i64 = 3_700;

/// The longest short code ingest accepts.
pub(crate) const MAX_SHORT_CODE: usize = 16;

/// Short codes as ingest accepts them.
fn short_code(code: &str) -> Result<&str, ApiError> {
    if (1..=MAX_SHORT_CODE).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(code)
    } else {
        Err(ApiError::InvalidParameter {
            parameter: "short_code",
            message: format!("must be 1-{MAX_SHORT_CODE} of [A-Za-z0-9_-]"),
        })
    }
}

/// `YYYY-MM-DD`, or `YYYY-MM` (its first day, or with `end` its last).
fn date(parameter: &'static str, text: &str, end: bool) -> Result<NaiveDate, ApiError> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day);
    }
    if let Ok(first) = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d") {
        if !end {
            return Ok(first);
        }
        if let Some(last) = first
            .checked_add_months(Months::new(1))
            .and_then(|next| next.pred_opt())
        {
            return Ok(last);
        }
    }
    Err(ApiError::InvalidParameter {
        parameter,
        message: "must be a UTC day (2021-02-28) or month (2021-02)".into(),
    })
}

/// `?from&to&granularity=day|month&group_by=<split>` → a zero-filled
/// series of human clicks (bots and previews apart), totals and `as_of`.
#[utoipa::path(get, path = "/v1/links/{short_code}/stats", tag = "clicks",
    params(crate::openapi::ShortCodePath, crate::openapi::LinkStatsQuery),
    responses((status = 200, body = crate::openapi::LinkStats), crate::openapi::ErrorResponses))]
pub(crate) async fn link_stats(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    only(&query, &["from", "to", "granularity", "group_by"])?;
    let code = short_code(&code)?;
    let granularity = match text(&query, "granularity")? {
        None => Granularity::Day,
        Some(text) => Granularity::parse(text).ok_or(ApiError::InvalidParameter {
            parameter: "granularity",
            message: "must be `day` or `month`".into(),
        })?,
    };
    let group_by = text(&query, "group_by")?
        .map(|text| split("group_by", text))
        .transpose()?;
    let (from, to) = range(&query, granularity, true)?;
    let humans = state.store.link_clicks(code, from, to, group_by).await?;
    let bots = state
        .store
        .apart_clicks(Apart::Bots, code, from, to)
        .await?;
    let previews = state
        .store
        .apart_clicks(Apart::Previews, code, from, to)
        .await?;
    let as_of = state
        .store
        .as_of(schemas::Topic::Redirects.default_name())
        .await?;
    let visitors = state.store.visitor_sketches(code, from, to).await?;
    let result = series(
        granularity,
        from,
        to,
        group_by.is_some(),
        Daily {
            humans: &humans,
            bots: &bots,
            previews: &previews,
            visitors: &visitors,
        },
    );
    Ok(Json(json!({
        "short_code": code,
        "from": from.format("%Y-%m-%d").to_string(),
        "to": to.format("%Y-%m-%d").to_string(),
        "granularity": granularity,
        "group_by": group_by.map(GroupBy::name),
        "total_clicks": result.total_clicks,
        "total_bot_clicks": result.total_bot_clicks,
        "total_previews": result.total_previews,
        "total_unique_visitors": result.total_unique_visitors,
        "group_totals": result.group_totals,
        "series": result.series,
        "as_of": as_of.map(rfc3339),
    })))
}

/// A split's name, or a 400 naming `parameter` and listing the splits.
fn split(parameter: &'static str, text: &str) -> Result<GroupBy, ApiError> {
    GroupBy::parse(text).ok_or_else(|| ApiError::InvalidParameter {
        parameter,
        message: format!("must be one of {}", GroupBy::names()),
    })
}

/// `from` and `to` of a stats request: defaults, and for a series
/// (`bucketed`) `from` not after `to` and at most [`MAX_BUCKETS`] buckets
/// of `granularity`. Unbucketed, a `to` before `from` selects no day.
fn range(
    query: &HashMap<String, String>,
    granularity: Granularity,
    bucketed: bool,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = match text(query, "to")? {
        Some(text) => date("to", text, true)?,
        None => Utc::now().date_naive(),
    };
    let from = match text(query, "from")? {
        Some(text) => date("from", text, false)?,
        None => match granularity {
            Granularity::Day => to - chrono::Days::new(29),
            Granularity::Month => to
                .with_day(1)
                .and_then(|first| first.checked_sub_months(Months::new(11)))
                .unwrap_or(to),
        },
    };
    if bucketed && from > to {
        return Err(ApiError::InvalidParameter {
            parameter: "to",
            message: "must not be before `from`".into(),
        });
    }
    // Counted, not built: a range of millennia is refused in microseconds.
    if bucketed && granularity.count(from, to) > MAX_BUCKETS {
        return Err(ApiError::InvalidParameter {
            parameter: "from",
            message: format!("range holds more than {MAX_BUCKETS} buckets"),
        });
    }
    Ok((from, to))
}

/// Most values `top` lists.
pub(crate) const MAX_TOP: usize = 1_000;
/// Values `top` lists unless `limit` says otherwise.
pub(crate) const DEFAULT_TOP: usize = 10;

/// `?dimension=<split>&from&to&limit` → the split's values with the most
/// human clicks over the range, most first, and the clicks of all values.
#[utoipa::path(get, path = "/v1/links/{short_code}/top", tag = "clicks",
    params(crate::openapi::ShortCodePath, crate::openapi::LinkTopQuery),
    responses((status = 200, body = crate::openapi::LinkTop), crate::openapi::ErrorResponses))]
pub(crate) async fn link_top(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    only(&query, &["dimension", "from", "to", "limit"])?;
    let code = short_code(&code)?;
    let dimension = match text(&query, "dimension")? {
        Some(text) => split("dimension", text)?,
        None => {
            return Err(ApiError::InvalidParameter {
                parameter: "dimension",
                message: format!("is required: one of {}", GroupBy::names()),
            });
        }
    };
    let limit = match text(&query, "limit")? {
        None => DEFAULT_TOP,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or(ApiError::InvalidParameter {
                parameter: "limit",
                message: format!("must be 1 to {MAX_TOP}"),
            })?,
    };
    // No series is built: any range reads only the days that hold rows.
    let (from, to) = range(&query, Granularity::Day, false)?;
    let rows = if from > to {
        Vec::new()
    } else {
        state
            .store
            .link_clicks(code, from, to, Some(dimension))
            .await?
    };
    let (values, total) = top(&rows, limit);
    let as_of = state
        .store
        .as_of(schemas::Topic::Redirects.default_name())
        .await?;
    Ok(Json(json!({
        "short_code": code,
        "dimension": dimension.name(),
        "from": from.format("%Y-%m-%d").to_string(),
        "to": to.format("%Y-%m-%d").to_string(),
        "total_clicks": total,
        "values": values,
        "as_of": as_of.map(rfc3339),
    })))
}

/// A client's clicks per short code in a UTC month; JSON, or CSV with
/// `Accept: text/csv`.
#[utoipa::path(get, path = "/v1/clients/{client_id}/reports/{month}", tag = "clicks",
    params(crate::openapi::ClientReportParams),
    responses((status = 200, description = "JSON, or RFC 4180 CSV (header row) with `Accept: text/csv`",
        content((crate::openapi::ClientReport = "application/json"), (String = "text/csv"))),
        crate::openapi::ErrorResponses))]
pub(crate) async fn client_report(
    State(state): State<AppState>,
    Path((client_id, month)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    only(&query, &[])?;
    let report = report(&state, &client_id, &month).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        return csv_download(&report);
    }
    Ok(Json(report_json(&state, &report).await?).into_response())
}

/// The report as the API's JSON.
pub(crate) async fn report_json(
    state: &AppState,
    report: &Report,
) -> Result<serde_json::Value, ApiError> {
    let as_of = state
        .store
        .as_of(schemas::Topic::Redirects.default_name())
        .await?;
    Ok(json!({
        "client_id": report.client_id,
        "month": report.month,
        "total_clicks": Report::total(&report.lines),
        "short_codes": report.lines,
        "as_of": as_of.map(rfc3339),
    }))
}

/// A client's month: its codes, most clicked first.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) client_id: i64,
    pub(crate) month: String,
    pub(crate) lines: Vec<crate::stats::ReportLine>,
}

impl Report {
    /// People's clicks over all of the client's codes.
    pub(crate) fn total(lines: &[crate::stats::ReportLine]) -> i64 {
        lines.iter().map(|line| line.clicks).sum()
    }
}

/// The report of `client_id` (an integer >= 0) for `month` (`YYYY-MM`),
/// with each code's previews and unique visitors over the month.
pub(crate) async fn report(
    state: &AppState,
    client_id: &str,
    month: &str,
) -> Result<Report, ApiError> {
    let client_id: i64 =
        client_id
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or(ApiError::InvalidParameter {
                parameter: "client_id",
                message: "must be an integer >= 0".into(),
            })?;
    let valid_month =
        month.len() == 7 && NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_ok();
    if !valid_month {
        return Err(ApiError::InvalidParameter {
            parameter: "month",
            message: "must be YYYY-MM".into(),
        });
    }
    let mut lines = state.store.client_report(client_id, month).await?;
    let first = date("month", month, false)?;
    let last = date("month", month, true)?;
    for line in &mut lines {
        let previews = state
            .store
            .apart_clicks(Apart::Previews, &line.short_code, first, last)
            .await?;
        line.previews = previews.iter().map(|(_, fetches)| fetches).sum();
        let mut visitors = processor::sketch::Sketch::default();
        for (_, sketch) in state
            .store
            .visitor_sketches(&line.short_code, first, last)
            .await?
        {
            visitors.merge(&sketch);
        }
        line.unique_visitors = visitors.estimate();
    }
    Ok(Report {
        client_id,
        month: month.to_owned(),
        lines,
    })
}

/// The report as the API's CSV download: body and `Content-Disposition`.
pub(crate) fn csv_download(report: &Report) -> Result<Response, ApiError> {
    let body = report_csv(report.client_id, &report.month, &report.lines)
        .map_err(|err| ApiError::Internal(format!("writing CSV: {err}")))?;
    let file = format!(
        "attachment; filename=\"client-{}-{}.csv\"",
        report.client_id, report.month
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/csv; charset=utf-8; header=present".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}
