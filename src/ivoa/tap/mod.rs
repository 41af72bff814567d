//! IVOA Table Access Protocol 1.1 at `/tap`, for pyvo, astroquery, TOPCAT and STILTS: what
//! the synchronous ([`sync`]) and asynchronous ([`uws`], stored by [`jobs`]) queries share —
//! parameters from the query string, urlencoded or `multipart/form-data` bodies (DALI),
//! TAP_UPLOAD tables ([`upload`]), the query, errors as VOTables — and the VOSI resources
//! ([`vosi`]) and DALI examples.
//!
//! - `/tap/sync` (GET or POST, parameter names in any case): `REQUEST=doQuery`, `LANG=ADQL`,
//!   `QUERY`, `MAXREC`, `RESPONSEFORMAT` (or `FORMAT`): `votable` (TABLEDATA, default),
//!   `votable/b2` or `application/x-votable+xml;serialization=BINARY2`, `csv`, `parquet`,
//!   `json`; `UPLOAD=name,param:part` with the VOTable in multipart part `part` (several
//!   separated by `;`), queried as `TAP_UPLOAD.name`. ADQL is translated by
//!   [`super::adql`] and runs through the same guard and limits as `/v1/sql`; the VOTable
//!   says `QUERY_STATUS` OK, then OVERFLOW after the table when `MAXREC` (or the service's row
//!   or byte cap) cut it; `MAXREC=0` answers the columns only. Errors are VOTable documents
//!   with `QUERY_STATUS` ERROR and a 4xx/5xx status.
//! - `/tap/async`: UWS 1.1 jobs ([`uws`]).
//! - VOSI ([`vosi`]); TAP_SCHEMA is queryable ([`super::tap_schema`]); `/tap/examples`.
//!
//! Absolute URLs in documents and `Location` headers come from [`crate::http::client::base_url`]
//! (forwarded headers only from trusted proxies, hosts validated) and are XML-escaped.

pub mod jobs;
pub mod sync;
pub mod upload;
pub mod uws;
pub mod vosi;

pub use jobs::Jobs;

use super::{adql, votable};
use crate::format::Format;
use crate::http::client::{ClientId, Slot, base_url};
use crate::http::errors::ApiError;
use crate::query::{self, Limits};
use crate::service::AppState;
use crate::service::respond::{outcome, stream_query_on};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
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

/// What async jobs and uploads may hold.
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
    /// Bytes of results kept in the store, all jobs together.
    pub results_bytes: u64,
    /// Bytes of upload tables one request may carry.
    pub upload_bytes: u64,
    /// Rows of one upload table.
    pub upload_rows: usize,
    /// URL prefixes an upload may be fetched from (none: URL uploads refused).
    pub upload_url_prefixes: Vec<String>,
}

impl Default for TapLimits {
    fn default() -> Self {
        TapLimits {
            jobs_per_client: 32,
            max_jobs: 4096,
            lifetime: Duration::from_secs(24 * 3600),
            pending_lifetime: Duration::from_secs(3600),
            results_bytes: 8 << 30,
            upload_bytes: 16 << 20,
            upload_rows: 1_000_000,
            upload_url_prefixes: Vec::new(),
        }
    }
}

impl TapLimits {
    /// What an uploaded VOTable may hold.
    pub fn upload_limits(&self) -> super::votable::read::ReadLimits {
        super::votable::read::ReadLimits {
            max_columns: 1000,
            max_rows: self.upload_rows,
            max_cell: 1 << 20,
        }
    }
}

/// Request parameters, names upper-cased (TAP parameter names are case-insensitive).
pub(crate) type Params = HashMap<String, String>;

/// A TAP request's parameters and its multipart file parts (upload tables).
#[derive(Debug, Default)]
pub(crate) struct TapRequest {
    pub(crate) params: Params,
    pub(crate) parts: HashMap<String, Bytes>,
}

/// The `boundary` parameter of a multipart Content-Type. Lenient where clients are: some
/// (astroquery's TapPlus) send a boundary with `=` in it unquoted, which strict parsers refuse.
fn boundary_of(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty() && v.len() <= 70).then(|| v.to_string())
    })
}

/// Reads the parameters of a request: the query string, then an urlencoded or
/// `multipart/form-data` body (DALI allows either for every parameter).
pub(crate) async fn read_request(
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<TapRequest, ApiError> {
    let mut out = TapRequest::default();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.params.insert(k.to_ascii_uppercase(), v.into_owned());
        }
    }
    if body.is_empty() {
        return Ok(out);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        let boundary = boundary_of(ct).ok_or_else(|| {
            ApiError::bad_request("multipart body: the Content-Type names no boundary")
        })?;
        let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut fields = 0usize;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?
        {
            fields += 1;
            if fields > MAX_PARAMS + 16 {
                return Err(ApiError::bad_request(format!(
                    "a request takes at most {MAX_PARAMS} parameters"
                )));
            }
            let name = field.name().unwrap_or("").to_string();
            let is_file = field.file_name().is_some()
                || field
                    .content_type()
                    .is_some_and(|m| m.essence_str() != "text/plain");
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("multipart part {name}: {e}")))?;
            if is_file {
                out.parts.insert(name, data);
            } else {
                let text = String::from_utf8(data.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("parameter {name} is not UTF-8 text"))
                })?;
                out.params.insert(name.to_ascii_uppercase(), text);
            }
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") || !ct.contains('/') {
        for (k, v) in url::form_urlencoded::parse(&body) {
            out.params.insert(k.to_ascii_uppercase(), v.into_owned());
        }
    }
    Ok(out)
}

/// The upload tables a request names (`UPLOAD=name,param:part;...`), as VOTable bytes, each
/// checked to parse within the limits.
pub(crate) async fn uploads_of(
    tap: &TapLimits,
    req: &TapRequest,
) -> Result<Vec<(String, Bytes)>, ApiError> {
    let Some(spec) = req.params.get("UPLOAD").filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, Bytes)> = Vec::new();
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, source)) = item.split_once(',') else {
            return Err(ApiError::bad_request(format!(
                "UPLOAD={item}: use UPLOAD=name,param:part (the table in multipart part `part`)"
            )));
        };
        let name = name.trim();
        let regular = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !regular {
            return Err(ApiError::bad_request(format!(
                "UPLOAD table name {name:?} must be an ADQL regular identifier (letters, digits, _)"
            )));
        }
        let name = name.to_ascii_lowercase();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::bad_request(format!("UPLOAD names {name} twice")));
        }
        let source = source.trim();
        let bytes = if let Some(part) = source.strip_prefix("param:") {
            req.parts.get(part).cloned().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "UPLOAD {name}: the request has no multipart part named {part:?}"
                ))
            })?
        } else if source.starts_with("http://") || source.starts_with("https://") {
            let used: usize = out.iter().map(|(_, b)| b.len()).sum();
            fetch_upload(
                tap,
                &name,
                source,
                tap.upload_bytes.saturating_sub(used as u64),
            )
            .await?
        } else {
            return Err(ApiError::bad_request(format!(
                "UPLOAD {name}: {source:?} is neither param:PART nor a URL"
            )));
        };
        let total: usize = out.iter().map(|(_, b)| b.len()).sum::<usize>() + bytes.len();
        if total as u64 > tap.upload_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "the uploaded tables are larger than {} bytes (--tap-upload-mb)",
                    tap.upload_bytes
                ),
            ));
        }
        upload::parse(&bytes, &tap.upload_limits())
            .map_err(|e| ApiError::bad_request(format!("UPLOAD {name}: {e}")))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// Longest a URL upload may take to arrive.
const UPLOAD_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Fetches an upload table from `url`, if the service allows that prefix: no redirects (a
/// redirect could leave the allowed prefixes), at most `room` bytes, within
/// [`UPLOAD_FETCH_TIMEOUT`].
async fn fetch_upload(
    tap: &TapLimits,
    name: &str,
    url: &str,
    room: u64,
) -> Result<Bytes, ApiError> {
    let allowed = tap
        .upload_url_prefixes
        .iter()
        .any(|p| url.starts_with(p.as_str()));
    if !allowed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "upload_url_refused",
            format!(
                "UPLOAD {name}: this service does not fetch tables from {url} (allowed by --tap-upload-urls: {}); send the VOTable inline as a multipart part (UPLOAD={name},param:PART)",
                if tap.upload_url_prefixes.is_empty() {
                    "none".to_string()
                } else {
                    tap.upload_url_prefixes.join(", ")
                }
            ),
        ));
    }
    let failed = |why: String| ApiError::bad_request(format!("UPLOAD {name}: {url}: {why}"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(UPLOAD_FETCH_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("answered HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        if (body.len() + chunk.len()) as u64 > room {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!(
                    "the uploaded tables are larger than {} bytes (--tap-upload-mb)",
                    tap.upload_bytes
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
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
    /// TAP_UPLOAD tables (VOTable bytes), checked when the request came.
    pub(crate) uploads: Vec<(String, Bytes)>,
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
    let format = match p.get("RESPONSEFORMAT").or_else(|| p.get("FORMAT")) {
        None => Format::VOTable,
        Some(f) => response_format(f)?,
    };
    let sql = adql::to_sql_with_depth(&adql, state.limits.max_depth)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(TapQuery {
        adql,
        sql,
        maxrec,
        format,
        uploads: Vec::new(),
    })
}

/// The format a `RESPONSEFORMAT` asks for (short names, MIME types with parameters).
pub(crate) fn response_format(f: &str) -> Result<Format, ApiError> {
    let lower = f.trim().to_ascii_lowercase();
    let mt = lower.split(';').next().unwrap_or("").trim();
    let binary2 = lower.contains("serialization=binary2");
    let refuse = || {
        ApiError::bad_request(format!(
            "RESPONSEFORMAT={f} is not served: use votable (TABLEDATA), votable/b2 (BINARY2), csv, json or parquet"
        ))
    };
    if binary2 || matches!(mt, "votable/b2" | "votable/binary2" | "binary2") {
        return Ok(Format::VOTableBinary2);
    }
    if lower.contains("serialization=") && !lower.contains("serialization=tabledata") {
        return Err(refuse());
    }
    match mt {
        "votable" | "votable/td" | "vot" => Ok(Format::VOTable),
        _ => match Format::from_name(mt).or_else(|| Format::from_media_type(mt)) {
            Some(
                x @ (Format::VOTable
                | Format::Csv
                | Format::Parquet
                | Format::Json
                | Format::Ndjson),
            ) => Ok(x),
            _ => Err(refuse()),
        },
    }
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
    tap: &TapLimits,
    q: &TapQuery,
    slot: SlotBy<'_>,
) -> Result<Response, ApiError> {
    execute_with(state, tap, q, slot, &state.limits).await
}

/// [`execute`] under given limits (an async job's execution duration).
pub(crate) async fn execute_with(
    state: &AppState,
    tap: &TapLimits,
    q: &TapQuery,
    slot: SlotBy<'_>,
    base: &Limits,
) -> Result<Response, ApiError> {
    let t0 = std::time::Instant::now();
    tracing::debug!(adql = %q.adql, sql = %q.sql, maxrec = q.maxrec, uploads = q.uploads.len(), "TAP query");
    let ctx = if q.uploads.is_empty() {
        None
    } else {
        let mut tables = Vec::new();
        for (name, bytes) in &q.uploads {
            let batch = upload::parse(bytes, &tap.upload_limits())
                .map_err(|e| ApiError::bad_request(format!("UPLOAD {name}: {e}")))?;
            tables.push((name.clone(), batch));
        }
        Some(
            upload::session(&state.ctx, tables)
                .map_err(|e| ApiError::bad_request(format!("UPLOAD: {e}")))?,
        )
    };
    let ctx = ctx.as_ref().unwrap_or(&state.ctx);
    let r = if q.maxrec == 0 {
        columns_only(state, ctx, q).await
    } else {
        let limits = Limits {
            max_rows: Some(q.maxrec),
            ..base.clone()
        };
        match slot {
            SlotBy::Now(client) => match state.query_slot(client) {
                Ok(s) => stream_query_on(state, ctx, &q.sql, q.format, &limits, &[], Some(s)).await,
                Err(e) => Err(ApiError::too_many(e.to_string())),
            },
            SlotBy::Held(s) => {
                stream_query_on(state, ctx, &q.sql, q.format, &limits, &[], Some(s)).await
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
pub(crate) async fn columns_only(
    state: &AppState,
    ctx: &datafusion::prelude::SessionContext,
    q: &TapQuery,
) -> Result<Response, ApiError> {
    let plan = query::plan(ctx, &q.sql, None, &state.limits).await?;
    let schema = plan.schema().as_arrow().clone();
    let (enc, head) = votable::VotableEncoder::new(&schema, &[]);
    let body = head + &enc.finish(&votable::Ending::Overflow);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE_CT));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::boundary_of;

    #[test]
    fn multipart_boundaries_as_clients_send_them() {
        let b = |ct| boundary_of(ct);
        assert_eq!(
            b("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            b("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        // astroquery's TapPlus: '=' unquoted inside the boundary.
        assert_eq!(
            b("multipart/form-data; boundary====1764512345678===").as_deref(),
            Some("===1764512345678===")
        );
        assert_eq!(
            b("multipart/form-data; charset=utf-8; BOUNDARY=x").as_deref(),
            Some("x")
        );
        assert_eq!(b("multipart/form-data"), None);
        assert_eq!(b("multipart/form-data; boundary="), None);
        assert_eq!(
            b(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            None
        );
    }
}
