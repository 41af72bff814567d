//! IVOA Table Access Protocol 1.1 at `/tap`, for pyvo, astroquery and TOPCAT.
//!
//! - `/tap/sync` (GET or POST, parameter names in any case): `REQUEST=doQuery`, `LANG=ADQL`,
//!   `QUERY`, `MAXREC`, `RESPONSEFORMAT` (or `FORMAT`): `votable` (default), `csv`, `parquet`.
//!   ADQL is translated by [`crate::query::adql`] and runs through the same guard and limits
//!   as `/v1/sql`; the VOTable says `QUERY_STATUS` OK, then OVERFLOW after the table when
//!   `MAXREC` (or the service's row or byte cap) cut it; `MAXREC=0` answers the columns only.
//!   Errors are VOTable documents with `QUERY_STATUS` ERROR and a 4xx/5xx status.
//! - `/tap/async`: UWS 1.1 jobs — `POST` creates one (303 to it; `PHASE=RUN` starts it at
//!   once), `POST {job}/phase` with `PHASE=RUN|ABORT`, `GET {job}?WAIT=s` blocks until the
//!   phase changes (at most 60 s), `{job}/results/result`, `{job}/error`, `DELETE {job}`
//!   (or `POST ACTION=DELETE`). Jobs live in this process (they do not survive a restart),
//!   bounded per client ([`TapLimits`]): a client keeps at most `jobs_per_client` jobs (its
//!   oldest finished job makes room for a new one; 429 when all are unfinished), a job
//!   never run is destroyed after an hour, every job after 24 h. A job runs in one of its
//!   client's query slots (it stays QUEUED until one is free). Results are written to a
//!   directory on disk, never held in memory, within a total size.
//! - VOSI `/tap/capabilities` (ADQL with its geometry functions, output formats, limits),
//!   `/tap/availability`, `/tap/tables` (units, UCDs, descriptions); TAP_SCHEMA is queryable
//!   ([`crate::query::tap_schema`]).
//!
//! Absolute URLs in documents and `Location` headers come from [`crate::http::client::base_url`]
//! (forwarded headers only from trusted proxies, hosts validated) and are XML-escaped.

use super::errors::ApiError;
use super::sql::{stream_query, stream_query_in_slot};
use crate::http::client::{ClientId, base_url};
use crate::query::format::Format;
use crate::query::{self, Limits, adql, tap_schema, votable};
use crate::server::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

/// Rows a query returns when it sets no MAXREC.
pub const DEFAULT_MAXREC: usize = 100_000;
/// MAXREC ceiling when the service sets no row cap.
pub const HARD_MAXREC: usize = 10_000_000;
const EXECUTION_DURATION_S: u64 = 600;
/// Longest a `WAIT` blocks.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Parameters one job may carry, and their total size beyond the query itself.
const MAX_PARAMS: usize = 64;
const MAX_PARAM_BYTES: usize = 16 << 10;

const VOTABLE_CT: &str = "application/x-votable+xml";
const XML_CT: &str = "text/xml; charset=utf-8";

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
type Params = HashMap<String, String>;

fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
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
fn tap_error(status: StatusCode, message: &str) -> Response {
    let mut r = (status, votable::error_document(message)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE_CT));
    r
}

fn from_api(e: ApiError) -> Response {
    tap_error(e.status, &e.message)
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(XML_CT));
    r
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Where the client reached us, for absolute links (validated, see the module docs).
fn base(state: &AppState, peer: &crate::http::Peer, headers: &HeaderMap) -> String {
    base_url(peer.0, headers, &state.conn.trusted_proxies, None)
}

/// A validated query request.
#[derive(Debug, Clone)]
struct TapQuery {
    adql: String,
    sql: String,
    maxrec: usize,
    format: Format,
}

fn parse_query(state: &AppState, p: &Params) -> Result<TapQuery, ApiError> {
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

fn hard_limit(state: &AppState) -> usize {
    state.limits.max_rows.unwrap_or(HARD_MAXREC)
}

/// How a TAP query gets its client's query slot.
enum SlotBy<'a> {
    /// Now or never (a synchronous request: 429 when the client has none free).
    Now(&'a ClientId),
    /// Already held (an async job waited for it).
    Held(crate::http::client::Slot),
}

/// Runs a TAP query to a streamed response (or an error for the caller to render).
async fn execute(state: &AppState, q: &TapQuery, slot: SlotBy<'_>) -> Result<Response, ApiError> {
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
    let outcome = match &r {
        Ok(_) => "ok",
        Err(e) if e.status == StatusCode::FORBIDDEN => "forbidden",
        Err(e) if e.status.is_client_error() => "invalid",
        Err(_) => "error",
    };
    let m = crate::telemetry::metrics();
    m.queries.with_label_values(&["tap", outcome]).inc();
    m.query_seconds
        .with_label_values(&["tap"])
        .observe(t0.elapsed().as_secs_f64());
    r
}

/// `MAXREC=0`: the result's columns and an OVERFLOW status, without running the query.
async fn columns_only(state: &AppState, q: &TapQuery) -> Result<Response, ApiError> {
    let plan = query::plan(&state.ctx, &q.sql, None, &state.limits).await?;
    let schema = plan.schema().as_arrow().clone();
    let (enc, head) = votable::VotableEncoder::new(&schema, &[]);
    let body = head + &enc.finish(&votable::Ending::Overflow);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE_CT));
    Ok(r)
}

pub async fn sync(
    State(state): State<Arc<AppState>>,
    peer: crate::http::Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let q = match parse_query(&state, &p) {
        Ok(q) => q,
        Err(e) => return from_api(e),
    };
    let client = state.client(peer.0, &headers);
    match execute(&state, &q, SlotBy::Now(&client)).await {
        Ok(r) => r,
        Err(e) => from_api(e),
    }
}

// ---------------------------------------------------------------- UWS (async)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Queued,
    Executing,
    Completed,
    Error,
    Aborted,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::Queued => "QUEUED",
            Phase::Executing => "EXECUTING",
            Phase::Completed => "COMPLETED",
            Phase::Error => "ERROR",
            Phase::Aborted => "ABORTED",
        }
    }
    fn active(self) -> bool {
        matches!(self, Phase::Pending | Phase::Queued | Phase::Executing)
    }
}

/// A finished job's result, in a file of the results directory.
#[derive(Debug, Clone)]
struct ResultFile {
    path: PathBuf,
    content_type: String,
    bytes: u64,
}

struct Job {
    owner: ClientId,
    params: BTreeMap<String, String>,
    query: Option<TapQuery>,
    phase: tokio::sync::watch::Sender<Phase>,
    created: SystemTime,
    started: Option<SystemTime>,
    ended: Option<SystemTime>,
    result: Option<ResultFile>,
    error: Option<String>,
    task: Option<tokio::task::AbortHandle>,
}

/// The async jobs of this process.
pub struct Jobs {
    jobs: Mutex<BTreeMap<String, Job>>,
    limits: TapLimits,
    /// A private directory for the results, removed with the service.
    dir: tempfile::TempDir,
    /// Bytes of results on disk.
    stored: AtomicU64,
}

impl Jobs {
    pub fn new(limits: TapLimits) -> Result<Self, crate::server::ServeError> {
        std::fs::create_dir_all(&limits.results_dir).map_err(|source| {
            crate::server::ServeError::Results {
                path: limits.results_dir.display().to_string(),
                source,
            }
        })?;
        let dir = tempfile::Builder::new()
            .prefix("astropipe-tap-")
            .tempdir_in(&limits.results_dir)
            .map_err(|source| crate::server::ServeError::Results {
                path: limits.results_dir.display().to_string(),
                source,
            })?;
        Ok(Jobs {
            jobs: Mutex::new(BTreeMap::new()),
            limits,
            dir,
            stored: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Job) -> T) -> Option<T> {
        self.lock().get_mut(id).map(f)
    }

    /// Removes a job: stops it and deletes its result.
    fn remove_locked(&self, jobs: &mut BTreeMap<String, Job>, id: &str) -> bool {
        let Some(mut j) = jobs.remove(id) else {
            return false;
        };
        if let Some(t) = j.task.take() {
            t.abort();
        }
        if let Some(r) = j.result.take() {
            let _ = std::fs::remove_file(&r.path);
            self.stored.fetch_sub(r.bytes, Ordering::AcqRel);
        }
        true
    }

    /// Drops expired jobs (and jobs never started within their shorter lifetime).
    fn sweep(&self, jobs: &mut BTreeMap<String, Job>) {
        let now = SystemTime::now();
        let expired: Vec<String> = jobs
            .iter()
            .filter(|(_, j)| {
                j.created + self.limits.lifetime <= now
                    || (*j.phase.borrow() == Phase::Pending
                        && j.created + self.limits.pending_lifetime <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.remove_locked(jobs, &k);
        }
    }

    /// The oldest finished job (of `owner`, when given).
    fn oldest_finished(jobs: &BTreeMap<String, Job>, owner: Option<&ClientId>) -> Option<String> {
        jobs.iter()
            .filter(|(_, j)| !j.phase.borrow().active() && owner.is_none_or(|o| &j.owner == o))
            .min_by_key(|(_, j)| j.created)
            .map(|(k, _)| k.clone())
    }

    /// Makes room for one more job of `owner`: its own oldest finished job goes when it is
    /// at its cap, anyone's oldest finished job when the service is. Err when nothing can go.
    fn make_room(
        &self,
        jobs: &mut BTreeMap<String, Job>,
        owner: &ClientId,
    ) -> Result<(), (StatusCode, String)> {
        self.sweep(jobs);
        let mine = jobs.values().filter(|j| &j.owner == owner).count();
        if mine >= self.limits.jobs_per_client {
            match Self::oldest_finished(jobs, Some(owner)) {
                Some(k) => {
                    self.remove_locked(jobs, &k);
                }
                None => {
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "this client has {mine} unfinished async jobs, its limit; delete or abort some first"
                        ),
                    ));
                }
            }
        }
        if jobs.len() >= self.limits.max_jobs {
            match Self::oldest_finished(jobs, None) {
                Some(k) => {
                    self.remove_locked(jobs, &k);
                }
                None => {
                    return Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many unfinished async jobs; try again later".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

use crate::catalog::commit::rfc3339;

fn job_xml(id: &str, job: &Job, base: &str, lifetime: Duration) -> String {
    let phase = *job.phase.borrow();
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uws:job xmlns:uws=\"http://www.ivoa.net/xml/UWS/v1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" version=\"1.1\">\n",
    );
    let _ = writeln!(s, "<uws:jobId>{}</uws:jobId>", votable::escape(id));
    s.push_str("<uws:ownerId xsi:nil=\"true\"/>\n");
    let _ = writeln!(s, "<uws:phase>{}</uws:phase>", phase.name());
    s.push_str("<uws:quote xsi:nil=\"true\"/>\n");
    let _ = writeln!(
        s,
        "<uws:creationTime>{}</uws:creationTime>",
        rfc3339(job.created)
    );
    for (tag, v) in [("startTime", job.started), ("endTime", job.ended)] {
        match v {
            Some(t) => {
                let _ = writeln!(s, "<uws:{tag}>{}</uws:{tag}>", rfc3339(t));
            }
            None => {
                let _ = writeln!(s, "<uws:{tag} xsi:nil=\"true\"/>");
            }
        }
    }
    let _ = writeln!(
        s,
        "<uws:executionDuration>{EXECUTION_DURATION_S}</uws:executionDuration>"
    );
    let _ = writeln!(
        s,
        "<uws:destruction>{}</uws:destruction>",
        rfc3339(job.created + lifetime)
    );
    s.push_str("<uws:parameters>\n");
    for (k, v) in &job.params {
        let _ = writeln!(
            s,
            "<uws:parameter id=\"{}\">{}</uws:parameter>",
            votable::escape(&k.to_ascii_lowercase()),
            votable::escape(v)
        );
    }
    s.push_str("</uws:parameters>\n<uws:results>\n");
    if job.result.is_some() {
        let _ = writeln!(
            s,
            "<uws:result id=\"result\" xlink:type=\"simple\" xlink:href=\"{}\"/>",
            votable::escape(&format!("{base}/tap/async/{id}/results/result"))
        );
    }
    s.push_str("</uws:results>\n");
    if let Some(e) = &job.error {
        let _ = writeln!(
            s,
            "<uws:errorSummary type=\"fatal\" hasDetail=\"true\"><uws:message>{}</uws:message></uws:errorSummary>",
            votable::escape(e)
        );
    }
    s.push_str("</uws:job>\n");
    s
}

pub async fn async_create(
    State(state): State<Arc<AppState>>,
    peer: crate::http::Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    // A bad query is accepted as a job that will fail with the reason (UWS practice), but a
    // missing QUERY is refused at once.
    if !p.contains_key("QUERY") {
        return tap_error(StatusCode::BAD_REQUEST, "QUERY is missing");
    }
    let others: usize = p
        .iter()
        .filter(|(k, _)| k.as_str() != "QUERY")
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if p.len() > MAX_PARAMS || others > MAX_PARAM_BYTES {
        return tap_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "a job takes at most {MAX_PARAMS} parameters of {MAX_PARAM_BYTES} bytes besides QUERY"
            ),
        );
    }
    if let Err(e) = query::statement::check_text(&p["QUERY"], &state.limits) {
        return from_api(query::QueryError::from(e).into());
    }
    let (query, error) = match parse_query(&state, &p) {
        Ok(q) => (Some(q), None),
        Err(e) => (None, Some(e.message)),
    };
    let owner = state.client(peer.0, &headers);
    let id = crate::catalog::commit::new_run_id();
    let run = p
        .get("PHASE")
        .is_some_and(|v| v.eq_ignore_ascii_case("RUN"));
    {
        let mut jobs = state.uws.lock();
        if let Err((status, message)) = state.uws.make_room(&mut jobs, &owner) {
            crate::telemetry::metrics()
                .refusals
                .with_label_values(&["tap_jobs"])
                .inc();
            return tap_error(status, &message);
        }
        let params = p
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "PHASE" | "ACTION"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        jobs.insert(
            id.clone(),
            Job {
                owner,
                params,
                query,
                phase: tokio::sync::watch::channel(Phase::Pending).0,
                created: SystemTime::now(),
                started: None,
                ended: None,
                result: None,
                error,
                task: None,
            },
        );
    }
    if run {
        start(&state, &id);
    }
    see_other(&format!("{}/tap/async/{id}", base(&state, &peer, &headers)))
}

/// Moves a PENDING job to QUEUED and runs it once its client has a free query slot.
fn start(state: &Arc<AppState>, id: &str) {
    let Some(Some((query, owner))) = state.uws.with(id, |j| {
        if *j.phase.borrow() != Phase::Pending {
            return None;
        }
        if j.error.is_some() {
            // The query was refused when the job was created: it fails with that reason.
            j.ended = Some(SystemTime::now());
            j.phase.send_replace(Phase::Error);
            return None;
        }
        j.phase.send_replace(Phase::Queued);
        j.query.clone().map(|q| (q, j.owner.clone()))
    }) else {
        return;
    };
    let st = state.clone();
    let job_id = id.to_string();
    let handle = tokio::spawn(async move {
        let slot = st.query_slots.acquire(&owner).await;
        st.uws.with(&job_id, |j| {
            j.started = Some(SystemTime::now());
            j.phase.send_replace(Phase::Executing);
        });
        let outcome = match execute(&st, &query, SlotBy::Held(slot)).await {
            Ok(resp) => store_result(&st, &job_id, resp).await,
            Err(e) => Err(e.message),
        };
        let mut jobs = st.uws.lock();
        match jobs.get_mut(&job_id) {
            Some(j) => {
                j.ended = Some(SystemTime::now());
                match outcome {
                    Ok(r) => {
                        j.result = Some(r);
                        j.phase.send_replace(Phase::Completed);
                    }
                    Err(e) => {
                        j.error = Some(e);
                        j.phase.send_replace(Phase::Error);
                    }
                }
            }
            // Deleted while it ran: its result goes too.
            None => {
                if let Ok(r) = outcome {
                    let _ = std::fs::remove_file(&r.path);
                    st.uws.stored.fetch_sub(r.bytes, Ordering::AcqRel);
                }
            }
        }
    });
    state.uws.with(id, |j| j.task = Some(handle.abort_handle()));
}

/// Writes a response body to the job's result file, within the service's result storage.
async fn store_result(state: &AppState, id: &str, resp: Response) -> Result<ResultFile, String> {
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(VOTABLE_CT)
        .to_string();
    let path = state.uws.dir.path().join(format!("{id}.result"));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("cannot store the result: {e}"))?;
    let mut bytes = 0u64;
    let mut body = resp.into_body().into_data_stream();
    let fail = |bytes: u64, message: String| {
        let _ = std::fs::remove_file(&path);
        state.uws.stored.fetch_sub(bytes, Ordering::AcqRel);
        Err(message)
    };
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return fail(bytes, format!("the query failed: {e}")),
        };
        let n = chunk.len() as u64;
        let total = state.uws.stored.fetch_add(n, Ordering::AcqRel) + n;
        bytes += n;
        if total > state.uws.limits.results_bytes {
            crate::telemetry::metrics()
                .refusals
                .with_label_values(&["tap_results_bytes"])
                .inc();
            return fail(
                bytes,
                "the service's storage for async results is full; try again later".into(),
            );
        }
        if let Err(e) = file.write_all(&chunk).await {
            return fail(bytes, format!("cannot store the result: {e}"));
        }
    }
    if let Err(e) = file.flush().await {
        return fail(bytes, format!("cannot store the result: {e}"));
    }
    Ok(ResultFile {
        path,
        content_type,
        bytes,
    })
}

fn abort(state: &AppState, id: &str) {
    state.uws.with(id, |j| {
        if j.phase.borrow().active() {
            if let Some(t) = j.task.take() {
                t.abort();
            }
            j.ended = Some(SystemTime::now());
            j.phase.send_replace(Phase::Aborted);
        }
    });
}

fn delete(state: &AppState, id: &str) -> bool {
    let mut jobs = state.uws.lock();
    state.uws.remove_locked(&mut jobs, id)
}

fn no_job(id: &str) -> Response {
    tap_error(StatusCode::NOT_FOUND, &format!("no async job {id:?}"))
}

/// Jobs of the calling client (UWS 1.1 lets a service list only the caller's own).
pub async fn async_list(
    State(state): State<Arc<AppState>>,
    peer: crate::http::Peer,
    headers: HeaderMap,
) -> Response {
    let base = base(&state, &peer, &headers);
    let owner = state.client(peer.0, &headers);
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uws:jobs xmlns:uws=\"http://www.ivoa.net/xml/UWS/v1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\">\n",
    );
    {
        let mut jobs = state.uws.lock();
        state.uws.sweep(&mut jobs);
        for (id, j) in jobs.iter().filter(|(_, j)| j.owner == owner) {
            let _ = writeln!(
                s,
                "<uws:jobref id=\"{}\" xlink:href=\"{}\"><uws:phase>{}</uws:phase><uws:creationTime>{}</uws:creationTime></uws:jobref>",
                votable::escape(id),
                votable::escape(&format!("{base}/tap/async/{id}")),
                j.phase.borrow().name(),
                rfc3339(j.created)
            );
        }
    }
    s.push_str("</uws:jobs>\n");
    xml(StatusCode::OK, s)
}

/// `GET /tap/async/{id}` (with `WAIT` blocking), `POST` (`ACTION=DELETE`, `PHASE=...`),
/// `DELETE`.
pub async fn async_job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    peer: crate::http::Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let base = base(&state, &peer, &headers);
    if method == Method::DELETE
        || (method == Method::POST
            && p.get("ACTION")
                .is_some_and(|a| a.eq_ignore_ascii_case("DELETE")))
    {
        return if delete(&state, &id) {
            see_other(&format!("{base}/tap/async"))
        } else {
            no_job(&id)
        };
    }
    if method == Method::POST {
        return phase_post(state, id, p, base);
    }
    if let Some(wait) = p.get("WAIT") {
        let secs: i64 = wait.trim().parse().unwrap_or(-1);
        let limit = if secs < 0 {
            MAX_WAIT
        } else {
            Duration::from_secs(secs as u64).min(MAX_WAIT)
        };
        let want = p.get("PHASE").map(|s| s.to_ascii_uppercase());
        let Some(mut rx) = state.uws.with(&id, |j| j.phase.subscribe()) else {
            return no_job(&id);
        };
        let now = *rx.borrow_and_update();
        let waits = now.active() && want.as_deref().is_none_or(|w| w == now.name());
        if waits {
            let _ = tokio::time::timeout(limit, rx.changed()).await;
        }
    }
    let lifetime = state.uws.limits.lifetime;
    match state.uws.with(&id, |j| job_xml(&id, j, &base, lifetime)) {
        Some(s) => xml(StatusCode::OK, s),
        None => no_job(&id),
    }
}

fn phase_post(state: Arc<AppState>, id: String, p: Params, base: String) -> Response {
    match p.get("PHASE").map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("RUN") => start(&state, &id),
        Some("ABORT") => abort(&state, &id),
        Some(other) => {
            return tap_error(
                StatusCode::BAD_REQUEST,
                &format!("PHASE={other}: use RUN or ABORT"),
            );
        }
        None => {}
    }
    if state.uws.with(&id, |_| ()).is_none() {
        return no_job(&id);
    }
    see_other(&format!("{base}/tap/async/{id}"))
}

/// `GET|POST /tap/async/{id}/{item}`: phase, results/result, error, parameters, quote,
/// executionduration, destruction, owner.
pub async fn async_item(
    State(state): State<Arc<AppState>>,
    Path((id, item)): Path<(String, String)>,
    method: Method,
    peer: crate::http::Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let base = base(&state, &peer, &headers);
    if method == Method::POST && item == "phase" {
        return phase_post(state, id, p, base);
    }
    let text = |s: String| {
        let mut r = (StatusCode::OK, s).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    let lifetime = state.uws.limits.lifetime;
    let found = state.uws.with(&id, |j| match item.as_str() {
        "phase" => text(j.phase.borrow().name().to_string()),
        "error" => match &j.error {
            Some(e) => tap_error(StatusCode::OK, e),
            None => tap_error(StatusCode::NOT_FOUND, "the job has no error"),
        },
        "quote" => text(String::new()),
        "owner" => text(String::new()),
        "executionduration" => text(EXECUTION_DURATION_S.to_string()),
        "destruction" => text(rfc3339(j.created + lifetime)),
        "parameters" | "results" => xml(StatusCode::OK, job_xml(&id, j, &base, lifetime)),
        _ => tap_error(StatusCode::NOT_FOUND, &format!("no job item {item:?}")),
    });
    found.unwrap_or_else(|| no_job(&id))
}

/// The result file, streamed from disk.
pub async fn async_result(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let found = state.uws.with(&id, |j| j.result.clone());
    match found {
        None => no_job(&id),
        Some(None) => tap_error(StatusCode::NOT_FOUND, "the job has no result (yet)"),
        Some(Some(r)) => match tokio::fs::File::open(&r.path).await {
            Ok(f) => {
                let mut resp =
                    Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(f)));
                if let Ok(v) = HeaderValue::from_str(&r.content_type) {
                    resp.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                resp
            }
            Err(_) => tap_error(StatusCode::NOT_FOUND, "the job's result is gone"),
        },
    }
}

// ---------------------------------------------------------------- VOSI

pub async fn availability(State(state): State<Arc<AppState>>) -> Response {
    let up = state.ready.load(std::sync::atomic::Ordering::Acquire);
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:availability xmlns:vosi=\"http://www.ivoa.net/xml/VOSIAvailability/v1.0\">\n<vosi:available>{up}</vosi:available>\n<vosi:note>{}</vosi:note>\n</vosi:availability>\n",
            if up { "serving" } else { "loading the catalog" }
        ),
    )
}

pub async fn capabilities(
    State(state): State<Arc<AppState>>,
    peer: crate::http::Peer,
    headers: HeaderMap,
) -> Response {
    let base = votable::escape(&base(&state, &peer, &headers));
    let hard = hard_limit(&state);
    let default = DEFAULT_MAXREC.min(hard);
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:capabilities xmlns:vosi=\"http://www.ivoa.net/xml/VOSICapabilities/v1.0\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:vr=\"http://www.ivoa.net/xml/VOResource/v1.0\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\" xmlns:tr=\"http://www.ivoa.net/xml/TAPRegExt/v1.0\">\n",
    );
    let _ = write!(
        s,
        "<capability standardID=\"ivo://ivoa.net/std/TAP\" xsi:type=\"tr:TableAccess\">\n\
<interface xsi:type=\"vs:ParamHTTP\" role=\"std\" version=\"1.1\"><accessURL use=\"base\">{base}/tap</accessURL></interface>\n\
<language><name>ADQL</name><version ivo-id=\"ivo://ivoa.net/std/ADQL#v2.0\">2.0</version>\
<description>ADQL 2.0 (with ADQL 2.1's optional coordinate systems), translated to DataFusion SQL with astropipe's astronomy functions</description>\n\
<languageFeatures type=\"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo\">"
    );
    for f in [
        "POINT",
        "CIRCLE",
        "BOX",
        "POLYGON",
        "CONTAINS",
        "INTERSECTS",
        "DISTANCE",
        "COORD1",
        "COORD2",
    ] {
        let _ = write!(s, "<feature><form>{f}</form></feature>");
    }
    s.push_str("</languageFeatures>\n</language>\n");
    for (mime, alias, id) in [
        (
            VOTABLE_CT,
            "votable",
            Some("ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
        ),
        ("text/csv", "csv", None),
        ("application/vnd.apache.parquet", "parquet", None),
    ] {
        match id {
            Some(i) => {
                let _ = write!(s, "<outputFormat ivo-id=\"{i}\">");
            }
            None => s.push_str("<outputFormat>"),
        }
        let _ = writeln!(
            s,
            "<mime>{mime}</mime><alias>{alias}</alias></outputFormat>"
        );
    }
    let _ = write!(
        s,
        "<retentionPeriod><default>{}</default><hard>{}</hard></retentionPeriod>\n\
<executionDuration><default>{EXECUTION_DURATION_S}</default><hard>{EXECUTION_DURATION_S}</hard></executionDuration>\n\
<outputLimit><default unit=\"row\">{default}</default><hard unit=\"row\">{hard}</hard></outputLimit>\n\
</capability>\n",
        state.uws.limits.lifetime.as_secs(),
        state.uws.limits.lifetime.as_secs()
    );
    for (std, path) in [
        ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "availability"),
        ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
    ] {
        let _ = writeln!(
            s,
            "<capability standardID=\"{std}\"><interface xsi:type=\"vs:ParamHTTP\" version=\"1.1\"><accessURL use=\"full\">{base}/tap/{path}</accessURL></interface></capability>"
        );
    }
    let _ = writeln!(
        s,
        "<capability standardID=\"ivo://ivoa.net/std/ConeSearch\"><interface xsi:type=\"vs:ParamHTTP\" role=\"std\" version=\"1.03\"><accessURL use=\"base\">{base}/scs?</accessURL></interface></capability>"
    );
    s.push_str("</vosi:capabilities>\n");
    xml(StatusCode::OK, s)
}

fn table_xml(t: &tap_schema::TableDesc, s: &mut String) {
    let _ = write!(
        s,
        "<table type=\"output\"><name>{}</name>",
        votable::escape(&t.name)
    );
    if !t.description.is_empty() {
        let _ = write!(
            s,
            "<description>{}</description>",
            votable::escape(&t.description)
        );
    }
    s.push('\n');
    for c in &t.columns {
        let _ = write!(s, "<column><name>{}</name>", votable::escape(&c.name));
        if let Some(d) = &c.description {
            let _ = write!(s, "<description>{}</description>", votable::escape(d));
        }
        if let Some(u) = &c.unit {
            let _ = write!(s, "<unit>{}</unit>", votable::escape(u));
        }
        if let Some(u) = &c.ucd {
            let _ = write!(s, "<ucd>{}</ucd>", votable::escape(u));
        }
        let _ = write!(s, "<dataType xsi:type=\"vs:VOTableType\"");
        if let Some(a) = c.arraysize {
            let _ = write!(s, " arraysize=\"{a}\"");
        }
        if let Some(x) = c.xtype {
            let _ = write!(s, " extendedType=\"{x}\"");
        }
        let _ = write!(s, ">{}</dataType>", c.datatype);
        if c.name == "_healpix_29" {
            s.push_str("<flag>indexed</flag>");
        }
        s.push_str("</column>\n");
    }
    s.push_str("</table>\n");
}

async fn described(state: &AppState) -> Result<Vec<tap_schema::TableDesc>, Response> {
    let public = state
        .ctx
        .catalog("astropipe")
        .and_then(|c| c.schema(tap_schema::PUBLIC))
        .ok_or_else(|| tap_error(StatusCode::INTERNAL_SERVER_ERROR, "no public schema"))?;
    tap_schema::describe(public.as_ref())
        .await
        .map_err(|e| tap_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// VOSI tableset (`/tap/tables`), or one table (`/tap/tables/{name}`).
pub async fn tables(State(state): State<Arc<AppState>>) -> Response {
    let tables = match described(&state).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:tableset xmlns:vosi=\"http://www.ivoa.net/xml/VOSITables/v1.0\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    for schema in [tap_schema::PUBLIC, "TAP_SCHEMA"] {
        let _ = writeln!(s, "<schema><name>{schema}</name>");
        for t in tables.iter().filter(|t| t.schema == schema) {
            table_xml(t, &mut s);
        }
        s.push_str("</schema>\n");
    }
    s.push_str("</vosi:tableset>\n");
    xml(StatusCode::OK, s)
}

pub async fn table(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let tables = match described(&state).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(t) = tables.iter().find(|t| t.name.eq_ignore_ascii_case(&name)) else {
        return tap_error(StatusCode::NOT_FOUND, &format!("no table {name:?}"));
    };
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:table xmlns:vosi=\"http://www.ivoa.net/xml/VOSITables/v1.0\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" type=\"output\">",
    );
    let mut inner = String::new();
    table_xml(t, &mut inner);
    s.push_str(
        inner
            .trim_start_matches("<table type=\"output\">")
            .trim_end()
            .trim_end_matches("</table>"),
    );
    s.push_str("</vosi:table>\n");
    xml(StatusCode::OK, s)
}
