//! `POST /v1/sql`: the body is the SQL text, or JSON `{"sql": "..."}`. The result streams in
//! the format chosen by `?format=` or by `Accept` (q-values honoured; 406 when nothing
//! acceptable is supported): JSON array of row objects (default), NDJSON, CSV, Arrow IPC
//! stream, Parquet. Results are limited by the service's [`crate::query::Limits`]: the headers
//! `x-astropipe-row-limit` and `x-astropipe-byte-limit` give the caps and the HTTP trailer
//! `x-astropipe-truncated` (sent after the body) says whether the result was cut at one.

use super::errors::ApiError;
use crate::http::client::{ClientId, Slot};
use crate::query;
use crate::query::format::{BatchEncoder, Format};
use crate::server::AppState;
use crate::telemetry::metrics;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use http_body::Frame;
use serde::Deserialize;
use std::collections::VecDeque;
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
/// Response header giving the byte limit of results.
pub const BYTE_LIMIT_HEADER: &str = "x-astropipe-byte-limit";
/// Trailer (sent after the body) saying whether the result was cut at the row or byte limit.
pub const TRUNCATED_TRAILER: &str = "x-astropipe-truncated";

/// Rows encoded at a time, so that the byte limit cuts a result close to it.
const SLICE_ROWS: usize = 1024;

/// Runs `sql` for `client` under `limits` and streams the result in `format` (also used by
/// TAP and Cone Search). The client holds one of its query slots until the response ends
/// (429 when it has none left). `ucds` replaces the UCDs of named columns in the VOTable
/// head (Cone Search needs its UCD1 names).
pub async fn stream_query(
    state: &AppState,
    client: &ClientId,
    sql: &str,
    format: Format,
    limits: &query::Limits,
    ucds: &[(&str, &str)],
) -> Result<Response, ApiError> {
    let slot = state.query_slots.try_acquire(client).ok_or_else(|| {
        metrics()
            .refusals
            .with_label_values(&["client_queries"])
            .inc();
        ApiError::too_many(format!(
            "this client already runs {} queries; wait for one to finish (--max-client-queries)",
            state.query_slots.per_client()
        ))
    })?;
    stream_query_in_slot(state, sql, format, limits, ucds, Some(slot)).await
}

/// [`stream_query`] for a caller that already holds the client's slot (or needs none).
pub async fn stream_query_in_slot(
    state: &AppState,
    sql: &str,
    format: Format,
    limits: &query::Limits,
    ucds: &[(&str, &str)],
    slot: Option<Slot>,
) -> Result<Response, ApiError> {
    let limited = query::execute(&state.ctx, sql, None, limits, &state.budget).await?;
    let truncated = limited.truncated.clone();
    let mut stream = limited.stream;
    let schema = with_ucds(&stream.schema(), ucds);
    let (enc, head) =
        BatchEncoder::new(format, &schema).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Pull the first batch before answering, so that most execution errors still get a
    // proper status instead of a truncated body.
    let first = match stream.next().await {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return Err(query::QueryError::from_execution(&e).into()),
        None => None,
    };
    let mut queue = VecDeque::new();
    if let Some(b) = first {
        queue.extend(slices(&b));
    }
    let out = Out {
        step: Step::Prefix(head),
        stream: Some(stream),
        queue,
        enc: Some(enc),
        truncated,
        sent: 0,
        max_bytes: limits.max_result_bytes,
        _slot: slot,
    };
    let mut resp = Response::new(Body::new(http_body_util::StreamBody::new(body_frames(out))));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::TRAILER, HeaderValue::from_static(TRUNCATED_TRAILER));
    if let Some(n) = limits.max_rows {
        h.insert(ROW_LIMIT_HEADER, HeaderValue::from(n));
    }
    if let Some(n) = limits.max_result_bytes {
        h.insert(BYTE_LIMIT_HEADER, HeaderValue::from(n));
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

fn slices(b: &RecordBatch) -> Vec<RecordBatch> {
    if b.num_rows() <= SLICE_ROWS {
        return vec![b.clone()];
    }
    (0..b.num_rows())
        .step_by(SLICE_ROWS)
        .map(|at| b.slice(at, SLICE_ROWS.min(b.num_rows() - at)))
        .collect()
}

enum Step {
    Prefix(Vec<u8>),
    Batches,
    Trailer,
    Done,
}

/// The state of a response body being produced.
struct Out {
    step: Step,
    stream: Option<datafusion::execution::SendableRecordBatchStream>,
    /// Slices of the current batch still to encode.
    queue: VecDeque<RecordBatch>,
    enc: Option<BatchEncoder>,
    truncated: Arc<AtomicBool>,
    sent: usize,
    max_bytes: Option<usize>,
    _slot: Option<Slot>,
}

impl Out {
    /// Ends the document (normally, or cut at a limit).
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, std::io::Error>> {
        self.stream = None;
        let e = self.enc.take()?;
        match e.finish_with(self.truncated.load(Ordering::Acquire)) {
            Ok(bytes) => {
                self.step = Step::Trailer;
                Some(Ok(Frame::data(Bytes::from(bytes))))
            }
            Err(err) => {
                self.step = Step::Done;
                Some(Err(std::io::Error::other(err.to_string())))
            }
        }
    }
}

/// The body: the encoded batches, the encoder's trailer, then the HTTP trailer saying whether
/// a limit cut the result.
fn body_frames(
    out: Out,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send {
    futures::stream::unfold(out, |mut o| async move {
        loop {
            match std::mem::replace(&mut o.step, Step::Done) {
                Step::Prefix(p) => {
                    o.sent += p.len();
                    o.step = Step::Batches;
                    if !p.is_empty() {
                        return Some((Ok(Frame::data(Bytes::from(p))), o));
                    }
                }
                Step::Batches => {
                    let pending = o.enc.as_ref().map_or(0, |e| e.pending_bytes());
                    if o.max_bytes.is_some_and(|m| o.sent + pending >= m) {
                        o.truncated.store(true, Ordering::Release);
                        metrics()
                            .refusals
                            .with_label_values(&["result_bytes"])
                            .inc();
                        let f = o.finish()?;
                        return Some((f, o));
                    }
                    if let Some(slice) = o.queue.pop_front() {
                        let e = o.enc.as_mut()?;
                        match e.encode(&slice) {
                            Ok(bytes) => {
                                o.sent += bytes.len();
                                o.step = Step::Batches;
                                if !bytes.is_empty() {
                                    return Some((Ok(Frame::data(Bytes::from(bytes))), o));
                                }
                                continue;
                            }
                            Err(err) => {
                                return Some((Err(std::io::Error::other(err.to_string())), o));
                            }
                        }
                    }
                    let next = match o.stream.as_mut() {
                        Some(s) => s.next().await,
                        None => None,
                    };
                    match next {
                        Some(Ok(batch)) => {
                            o.queue.extend(slices(&batch));
                            o.step = Step::Batches;
                        }
                        Some(Err(err)) => {
                            o.stream = None;
                            let message = query::QueryError::from_execution(&err).to_string();
                            return match o.enc.take() {
                                // VOTable says it inside the document, which then ends normally.
                                Some(e) if e.reports_errors_in_band() => {
                                    o.step = Step::Trailer;
                                    Some((Ok(Frame::data(Bytes::from(e.fail(&message)))), o))
                                }
                                _ => Some((Err(std::io::Error::other(message)), o)),
                            };
                        }
                        None => {
                            let f = o.finish()?;
                            return Some((f, o));
                        }
                    }
                }
                Step::Trailer => {
                    let mut t = HeaderMap::new();
                    let v = if o.truncated.load(Ordering::Acquire) {
                        "true"
                    } else {
                        "false"
                    };
                    t.insert(TRUNCATED_TRAILER, HeaderValue::from_static(v));
                    if v == "true" {
                        metrics().truncated_results.inc();
                    }
                    return Some((Ok(Frame::trailers(t)), o));
                }
                Step::Done => return None,
            }
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
