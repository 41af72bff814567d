//! IVOA Table Access Protocol 1.1 at `/tap`, for pyvo, astroquery and TOPCAT: what the
//! synchronous ([`sync`]) and asynchronous ([`uws`]) queries share (parameters, the query,
//! errors as VOTables), and the VOSI resources ([`vosi`]).
//!
//! - `/tap/sync` (GET or POST, parameter names in any case): `REQUEST=doQuery`, `LANG=ADQL`,
//!   `QUERY`, `MAXREC`, `RESPONSEFORMAT` (or `FORMAT`): `votable` (default), `csv`, `parquet`.
//!   ADQL is translated by [`super::adql`] and runs through the same guard and limits as
//!   `/v1/sql`; the VOTable says `QUERY_STATUS` OK, then OVERFLOW after the table when
//!   `MAXREC` (or the service's row or byte cap) cut it; `MAXREC=0` answers the columns only.
//!   Errors are VOTable documents with `QUERY_STATUS` ERROR and a 4xx/5xx status.
//! - `/tap/async`: UWS 1.1 jobs ([`uws`]).
//! - VOSI ([`vosi`]); TAP_SCHEMA is queryable ([`super::tap_schema`]).
//!
//! Absolute URLs in documents and `Location` headers come from [`crate::http::client::base_url`]
//! (forwarded headers only from trusted proxies, hosts validated) and are XML-escaped.

pub mod sync;
pub mod uws;
pub mod vosi;

pub use uws::Jobs;

use super::{adql, votable};
use crate::format::Format;
use crate::http::client::{ClientId, Slot, base_url};
use crate::http::errors::ApiError;
use crate::query::{self, Limits};
use crate::service::AppState;
use crate::service::respond::{outcome, stream_query, stream_query_in_slot};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Rows a query returns when it sets no MAXREC.
pub const DEFAULT_MAXREC: usize = 100_000;
/// MAXREC ceiling when the service sets no row cap.
pub const HARD_MAXREC: usize = 10_000_000;
pub(crate) const EXECUTION_DURATION_S: u64 = 600;
/// Longest a `WAIT` blocks.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Parameters one job may carry, and their total size beyond the query itself.
pub(crate) const MAX_PARAMS: usize = 64;
pub(crate) const MAX_PARAM_BYTES: usize = 16 << 10;

pub(crate) const VOTABLE_CT: &str = "application/x-votable+xml";
pub(crate) const XML_CT: &str = "text/xml; charset=utf-8";

/// Why the async jobs' store could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("TAP async results directory {path}: {source}")]
pub struct TapError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// What async jobs may hold.
#[derive(Debug, Clone)]
pub struct TapLimits {
    /// Jobs one client keeps (any phase).
    pub jobs_per_client: usize,
    /// Jobs of all clients together.
    pub max_jobs: usize,
    /// A job is destroyed this long after its creation.
    pub lifetime: Duration,
    /// A job never started is destroyed this long after its creation.
    pub pending_lifetime: Duration,
    /// The directory results are written under (a private subdirectory is made in it).
    pub results_dir: PathBuf,
    /// Bytes of results kept on disk, all jobs together.
    pub results_bytes: u64,
}

impl Default for TapLimits {
    fn default() -> Self {
        TapLimits {
            jobs_per_client: 32,
            max_jobs: 4096,
            lifetime: Duration::from_secs(24 * 3600),
            pending_lifetime: Duration::from_secs(3600),
            results_dir: std::env::temp_dir(),
            results_bytes: 8 << 30,
        }
    }
}

/// Request parameters, names upper-cased (TAP parameter names are case-insensitive).
pub(crate) type Params = HashMap<String, String>;

pub(crate) fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
    let mut out = Params::new();
    let mut add = |bytes: &[u8]| {
        for (k, v) in url::form_urlencoded::parse(bytes) {
            out.insert(k.to_ascii_uppercase(), v.into_owned());
        }
    };
    if let Some(q) = query {
        add(q.as_bytes());
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        add(body);
    }
    out
}

/// A TAP error: a VOTable error document with a fitting status.
pub(crate) fn tap_error(status: StatusCode, message: &str) -> Response {
    let mut r = (status, votable::error_document(message)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE_CT));
    r
}

pub(crate) fn from_api(e: ApiError) -> Response {
    tap_error(e.status, &e.message)
}

pub(crate) fn xml(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(XML_CT));
    r
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Where the client reached us, for absolute links (validated, see the module docs).
pub(crate) fn base(state: &AppState, peer: &crate::http::Peer, headers: &HeaderMap) -> String {
    base_url(peer.0, headers, &state.conn.trusted_proxies, None)
}

/// A validated query request.
#[derive(Debug, Clone)]
pub(crate) struct TapQuery {
    pub(crate) adql: String,
    pub(crate) sql: String,
    pub(crate) maxrec: usize,
    pub(crate) format: Format,
}

pub(crate) fn parse_query(state: &AppState, p: &Params) -> Result<TapQuery, ApiError> {
    if let Some(r) = p.get("REQUEST")
        && !r.eq_ignore_ascii_case("doQuery")
    {
        return Err(ApiError::bad_request(format!(
            "REQUEST={r} is not supported: use REQUEST=doQuery"
        )));
    }
    if let Some(l) = p.get("LANG") {
        let l = l.to_ascii_uppercase();
        if !(l == "ADQL" || l.starts_with("ADQL-")) {
            return Err(ApiError::bad_request(format!(
                "LANG={l} is not supported: use LANG=ADQL"
            )));
        }
    }
    let adql = p
        .get("QUERY")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("QUERY is missing"))?
        .clone();
    // The translator only sees statements within the size limit.
    query::statement::check_text(&adql, &state.limits).map_err(query::QueryError::from)?;
    let hard = hard_limit(state);
    let maxrec = match p.get("MAXREC") {
        None => DEFAULT_MAXREC.min(hard),
        Some(m) => m
            .trim()
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("MAXREC={m} is not a whole number")))?
            .min(hard),
    };
    let format = match p
        .get("RESPONSEFORMAT")
        .or_else(|| p.get("FORMAT"))
        .map(|f| f.to_ascii_lowercase())
    {
        None => Format::VOTable,
        Some(f) => {
            let mt = f.split(';').next().unwrap_or("").trim().to_string();
            match Format::from_name(&mt).or_else(|| Format::from_media_type(&mt)) {
                Some(
                    x @ (Format::VOTable
                    | Format::Csv
                    | Format::Parquet
                    | Format::Json
                    | Format::Ndjson),
                ) => x,
                _ if mt.starts_with("votable") || mt.contains("votable") => Format::VOTable,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "RESPONSEFORMAT={f} is not supported: use votable, csv or parquet"
                    )));
                }
            }
        }
    };
    let sql = adql::to_sql_with_depth(&adql, state.limits.max_depth)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(TapQuery {
        adql,
        sql,
        maxrec,
        format,
    })
}

pub(crate) fn hard_limit(state: &AppState) -> usize {
    state.limits.max_rows.unwrap_or(HARD_MAXREC)
}

/// How a TAP query gets its client's query slot.
pub(crate) enum SlotBy<'a> {
    /// Now or never (a synchronous request: 429 when the client has none free).
    Now(&'a ClientId),
    /// Already held (an async job waited for it).
    Held(Slot),
}

/// Runs a TAP query to a streamed response (or an error for the caller to render).
pub(crate) async fn execute(
    state: &AppState,
    q: &TapQuery,
    slot: SlotBy<'_>,
) -> Result<Response, ApiError> {
    let t0 = std::time::Instant::now();
    tracing::debug!(adql = %q.adql, sql = %q.sql, maxrec = q.maxrec, "TAP query");
    let r = if q.maxrec == 0 {
        columns_only(state, q).await
    } else {
        let limits = Limits {
            max_rows: Some(q.maxrec),
            ..state.limits.clone()
        };
        match slot {
            SlotBy::Now(client) => {
                stream_query(state, client, &q.sql, q.format, &limits, &[]).await
            }
            SlotBy::Held(s) => {
                stream_query_in_slot(state, &q.sql, q.format, &limits, &[], Some(s)).await
            }
        }
    };
    let m = crate::telemetry::metrics();
    m.queries.with_label_values(&["tap", outcome(&r)]).inc();
    m.query_seconds
        .with_label_values(&["tap"])
        .observe(t0.elapsed().as_secs_f64());
    r
}

/// `MAXREC=0`: the result's columns and an OVERFLOW status, without running the query.
pub(crate) async fn columns_only(state: &AppState, q: &TapQuery) -> Result<Response, ApiError> {
    let plan = query::plan(&state.ctx, &q.sql, None, &state.limits).await?;
    let schema = plan.schema().as_arrow().clone();
    let (enc, head) = votable::VotableEncoder::new(&schema, &[]);
    let body = head + &enc.finish(&votable::Ending::Overflow);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE_CT));
    Ok(r)
}
