//! `POST /v1/sql`: the body is the SQL text, or JSON `{"sql": "..."}`. The result streams in
//! the format chosen by `?format=` or by `Accept` (q-values honoured; 406 when nothing
//! acceptable is supported): JSON array of row objects (default), NDJSON, CSV, Arrow IPC
//! stream, Parquet. Results are limited by the service's [`crate::query::Limits`]: the header
//! `x-astropipe-row-limit` gives the row cap and the HTTP trailer `x-astropipe-truncated`
//! (sent after the body) says whether the result was cut at it.

use super::errors::ApiError;
use crate::query::format::{BatchEncoder, Format};
use crate::query::{self, clean_message};
use crate::server::AppState;
use crate::telemetry::metrics;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use http_body::Frame;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    let t0 = Instant::now();
    let result = stream_query(&state, &sql, format, &state.limits, &[]).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.status == StatusCode::FORBIDDEN => "forbidden",
        Err(e) if e.status.is_client_error() => "invalid",
        Err(_) => "error",
    };
    let m = metrics();
    m.queries.with_label_values(&["http", outcome]).inc();
    m.query_seconds
        .with_label_values(&["http"])
        .observe(t0.elapsed().as_secs_f64());
    result
}

/// Response header giving the row limit of results.
pub const ROW_LIMIT_HEADER: &str = "x-astropipe-row-limit";
/// Trailer (sent after the body) saying whether the result was cut at the row limit.
pub const TRUNCATED_TRAILER: &str = "x-astropipe-truncated";

/// Runs `sql` under `limits` and streams the result in `format` (also used by TAP and Cone
/// Search). `ucds` replaces the UCDs of named columns in the VOTable head (Cone Search needs
/// its UCD1 names).
pub async fn stream_query(
    state: &AppState,
    sql: &str,
    format: Format,
    limits: &query::Limits,
    ucds: &[(&str, &str)],
) -> Result<Response, ApiError> {
    let limited = query::execute_limited(&state.ctx, sql, limits).await?;
    let truncated = limited.truncated.clone();
    let mut stream = limited.stream;
    let schema = with_ucds(&stream.schema(), ucds);
    let (mut enc, head) =
        BatchEncoder::new(format, &schema).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Pull the first batch before answering, so that most execution errors still get a
    // proper status instead of a truncated body.
    let first = match stream.next().await {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return Err(query::QueryError::from_execution(&e).into()),
        None => None,
    };
    let mut prefix = head;
    if let Some(b) = &first {
        prefix.extend(
            enc.encode(b)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
    }
    let frames = body_frames(prefix, stream, enc, truncated);
    let mut resp = Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::TRAILER, HeaderValue::from_static(TRUNCATED_TRAILER));
    if let Some(n) = limits.max_rows {
        h.insert(ROW_LIMIT_HEADER, HeaderValue::from(n));
    }
    Ok(resp)
}

/// `schema` with the `ucd` metadata of the named columns replaced.
pub fn with_ucds(schema: &SchemaRef, ucds: &[(&str, &str)]) -> SchemaRef {
    if ucds.is_empty() {
        return schema.clone();
    }
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut f = f.as_ref().clone();
            if let Some((_, ucd)) = ucds.iter().find(|(n, _)| *n == f.name()) {
                let mut md = f.metadata().clone();
                md.insert("ucd".into(), ucd.to_string());
                f = f.with_metadata(md);
            }
            f
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// The body: the encoded batches, the encoder's trailer, then the HTTP trailer saying whether
/// the row limit cut the result.
fn body_frames(
    prefix: Vec<u8>,
    stream: datafusion::execution::SendableRecordBatchStream,
    enc: BatchEncoder,
    truncated: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send {
    enum Step {
        Prefix(Vec<u8>),
        Batches,
        Trailer,
        Done,
    }
    let state = (Step::Prefix(prefix), stream, Some(enc), truncated);
    futures::stream::unfold(state, |(step, mut stream, mut enc, truncated)| async move {
        match step {
            Step::Prefix(p) => Some((
                Ok(Frame::data(Bytes::from(p))),
                (Step::Batches, stream, enc, truncated),
            )),
            Step::Batches => match stream.next().await {
                Some(Ok(batch)) => {
                    let e = enc.as_mut()?;
                    match e.encode(&batch) {
                        Ok(bytes) => Some((
                            Ok(Frame::data(Bytes::from(bytes))),
                            (Step::Batches, stream, enc, truncated),
                        )),
                        Err(err) => Some((
                            Err(std::io::Error::other(err.to_string())),
                            (Step::Done, stream, None, truncated),
                        )),
                    }
                }
                Some(Err(err)) => {
                    let message = clean_message(&err);
                    match enc.take() {
                        // VOTable says it inside the document, which then ends normally.
                        Some(e) if e.reports_errors_in_band() => Some((
                            Ok(Frame::data(Bytes::from(e.fail(&message)))),
                            (Step::Trailer, stream, None, truncated),
                        )),
                        _ => Some((
                            Err(std::io::Error::other(message)),
                            (Step::Done, stream, None, truncated),
                        )),
                    }
                }
                None => {
                    let e = enc.take()?;
                    match e.finish_with(truncated.load(Ordering::Acquire)) {
                        Ok(bytes) => Some((
                            Ok(Frame::data(Bytes::from(bytes))),
                            (Step::Trailer, stream, None, truncated),
                        )),
                        Err(err) => Some((
                            Err(std::io::Error::other(err.to_string())),
                            (Step::Done, stream, None, truncated),
                        )),
                    }
                }
            },
            Step::Trailer => {
                let mut t = HeaderMap::new();
                let v = if truncated.load(Ordering::Acquire) {
                    "true"
                } else {
                    "false"
                };
                t.insert(TRUNCATED_TRAILER, HeaderValue::from_static(v));
                if v == "true" {
                    metrics().truncated_results.inc();
                }
                Some((
                    Ok(Frame::trailers(t)),
                    (Step::Done, stream, None, truncated),
                ))
            }
            Step::Done => None,
        }
    })
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
