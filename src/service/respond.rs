//! A query's result as an HTTP response, for every endpoint of `serve` that answers with
//! rows (`/v1/sql`, TAP, Cone Search): run under the service's limits in one of the client's
//! query slots, streamed batch by batch in the chosen format, cut at the row or byte cap
//! (the header `x-astropipe-row-limit` / `x-astropipe-byte-limit` gives them, the trailer
//! `x-astropipe-truncated` says whether one cut the result; a VOTable also says OVERFLOW).
//! Query errors become statuses here, once.

use super::AppState;
use crate::format::{BatchEncoder, Format};
use crate::http::client::{ClientId, Slot};
use crate::http::errors::ApiError;
use crate::query::{self, LimitExceeded, QueryError};
use crate::telemetry::metrics;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use http_body::Frame;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let (status, code) = status_of(&e);
        if let QueryError::Limit(l) = &e {
            metrics().refusals.with_label_values(&[l.name()]).inc();
        }
        ApiError::new(status, code, e.to_string())
    }
}

/// The HTTP status and stable code of a query error.
pub fn status_of(e: &QueryError) -> (StatusCode, &'static str) {
    use LimitExceeded as L;
    match e {
        QueryError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden_statement"),
        QueryError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
        QueryError::Limit(l) => match l {
            L::StatementSize { .. } | L::Depth { .. } => {
                (StatusCode::BAD_REQUEST, "query_too_large")
            }
            L::Value { .. } | L::Batch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "value_too_large")
            }
            L::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            L::Spill {
                all_queries: false, ..
            } => (StatusCode::UNPROCESSABLE_ENTITY, "resources_exhausted"),
            L::Spill {
                all_queries: true, ..
            } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        },
        QueryError::ResourcesExhausted(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "resources_exhausted")
        }
        QueryError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        QueryError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        QueryError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

/// The outcome label of a finished request in `astropipe_queries_total`.
pub fn outcome(r: &Result<Response, ApiError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.status == StatusCode::FORBIDDEN => "forbidden",
        Err(e) if e.status.is_client_error() => "invalid",
        Err(_) => "error",
    }
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
    stream_query_on(state, &state.ctx, sql, format, limits, ucds, slot).await
}

/// [`stream_query_in_slot`] on another session than the service's (one that sees a query's
/// own tables, such as TAP uploads), under the service's budgets.
pub async fn stream_query_on(
    state: &AppState,
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    format: Format,
    limits: &query::Limits,
    ucds: &[(&str, &str)],
    slot: Option<Slot>,
) -> Result<Response, ApiError> {
    let limited = query::execute(ctx, sql, None, limits, &state.budget).await?;
    let truncated = limited.truncated.clone();
    let mut stream = limited.stream;
    let schema = with_ucds(&stream.schema(), ucds);
    let (enc, head) =
        BatchEncoder::new(format, &schema).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Pull the first batch before answering, so that most execution errors still get a
    // proper status instead of a truncated body.
    let first = match stream.next().await {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return Err(QueryError::from_execution(&e).into()),
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
                            let message = QueryError::from_execution(&err).to_string();
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
