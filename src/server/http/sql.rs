//! `POST /v1/sql`: the body is the SQL text, or JSON `{"sql": "..."}`. The result streams in
//! the format chosen by `?format=` or by `Accept` (q-values honoured; 406 when nothing
//! acceptable is supported): JSON array of row objects (default), NDJSON, CSV, Arrow IPC
//! stream, Parquet, VOTable — streamed and limited as [`crate::service::respond`] does it.

use crate::format::Format;
use crate::http::errors::ApiError;
use crate::service::AppState;
use crate::service::respond::{outcome, stream_query};
use crate::telemetry::metrics;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Deserialize, Default)]
pub struct SqlParams {
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SqlBody {
    sql: String,
}

/// Largest accepted request body.
pub const MAX_SQL_BYTES: usize = 1 << 20;

pub async fn post_sql(
    State(state): State<Arc<AppState>>,
    Query(params): Query<SqlParams>,
    peer: crate::http::Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let format = choose_format(params.format.as_deref(), &headers)?;
    if format == Format::Table {
        return Err(ApiError::not_acceptable(
            "format=table is for the command line",
        ));
    }
    let sql = sql_text(&headers, &body)?;
    let client = state.client(peer.0, &headers);
    let t0 = Instant::now();
    let result = stream_query(&state, &client, &sql, format, &state.limits, &[]).await;
    let m = metrics();
    m.queries
        .with_label_values(&["http", outcome(&result)])
        .inc();
    m.query_seconds
        .with_label_values(&["http"])
        .observe(t0.elapsed().as_secs_f64());
    match result {
        // A client that asked for a VOTable gets its errors as a VOTable error document.
        Err(e) if matches!(format, Format::VOTable | Format::VOTableBinary2) => {
            let mut r =
                (e.status, crate::ivoa::votable::error_document(&e.message)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/x-votable+xml"),
            );
            Ok(r)
        }
        other => other,
    }
}

fn sql_text(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    if body.len() > MAX_SQL_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the query is larger than {MAX_SQL_BYTES} bytes"),
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
        || text.trim_start().starts_with('{');
    let sql = if is_json {
        serde_json::from_str::<SqlBody>(text)
            .map_err(|e| ApiError::bad_request(format!("expected {{\"sql\": \"...\"}}: {e}")))?
            .sql
    } else {
        text.to_string()
    };
    if sql.trim().is_empty() {
        return Err(ApiError::bad_request("no SQL in the request body"));
    }
    Ok(sql)
}

/// `?format=` wins; otherwise the best acceptable media type of `Accept` by q-value.
pub fn choose_format(param: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(name) = param {
        return Format::from_name(name).ok_or_else(|| {
            ApiError::not_acceptable(format!(
                "unknown format {name:?}: use json, ndjson, csv, arrow, parquet or votable"
            ))
        });
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    let mut ranges: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let mt = it.next()?.trim();
            let mut q = 1.0f32;
            for p in it {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            (!mt.is_empty()).then_some((q, i, mt))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (q, _, mt) in ranges {
        if q <= 0.0 {
            continue;
        }
        if mt == "*/*" || mt == "application/*" {
            return Ok(Format::Json);
        }
        if mt == "text/*" {
            return Ok(Format::Csv);
        }
        if let Some(f) = Format::from_media_type(&mt.to_ascii_lowercase()) {
            return Ok(f);
        }
    }
    Err(ApiError::not_acceptable(format!(
        "none of {accept:?} is supported: application/json, application/x-ndjson, text/csv, \
         application/vnd.apache.arrow.stream, application/vnd.apache.parquet"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(
            choose_format(None, &HeaderMap::new()).unwrap(),
            Format::Json
        );
        assert_eq!(
            choose_format(None, &accept("text/csv")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            choose_format(
                None,
                &accept("text/csv;q=0.5, application/vnd.apache.arrow.stream")
            )
            .unwrap(),
            Format::ArrowIpc
        );
        assert_eq!(
            choose_format(None, &accept("image/png, */*;q=0.1")).unwrap(),
            Format::Json
        );
        assert_eq!(
            choose_format(None, &accept("image/png"))
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            choose_format(Some("csv"), &accept("image/png")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            choose_format(Some("xml"), &HeaderMap::new())
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
    }
}
