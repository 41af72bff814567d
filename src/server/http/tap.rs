//! IVOA Table Access Protocol 1.1 at `/tap`, for pyvo, astroquery and TOPCAT.
//!
//! - `/tap/sync` (GET or POST, parameter names in any case): `REQUEST=doQuery`, `LANG=ADQL`,
//!   `QUERY`, `MAXREC`, `RESPONSEFORMAT` (or `FORMAT`): `votable` (default), `csv`, `parquet`.
//!   ADQL is translated by [`crate::query::adql`] and runs through the same guard and limits
//!   as `/v1/sql`; the VOTable says `QUERY_STATUS` OK, then OVERFLOW after the table when
//!   `MAXREC` (or the service's row cap) cut it; `MAXREC=0` answers the columns only.
//!   Errors are VOTable documents with `QUERY_STATUS` ERROR and a 4xx/5xx status.
//! - `/tap/async`: UWS 1.1 jobs — `POST` creates one (303 to it; `PHASE=RUN` starts it at
//!   once), `POST {job}/phase` with `PHASE=RUN|ABORT`, `GET {job}?WAIT=s` blocks until the
//!   phase changes (at most 60 s), `{job}/results/result`, `{job}/error`, `DELETE {job}`
//!   (or `POST ACTION=DELETE`). Jobs live in this process's memory (at most 256; results
//!   bounded by MAXREC) for 24 h: they do not survive a restart.
//! - VOSI `/tap/capabilities` (ADQL with its geometry functions, output formats, limits),
//!   `/tap/availability`, `/tap/tables` (units, UCDs, descriptions); TAP_SCHEMA is queryable
//!   ([`crate::query::tap_schema`]).

use super::errors::ApiError;
use super::sql::stream_query;
use crate::query::format::Format;
use crate::query::{self, Limits, adql, tap_schema, votable};
use crate::server::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Rows a query returns when it sets no MAXREC.
pub const DEFAULT_MAXREC: usize = 100_000;
/// MAXREC ceiling when the service sets no row cap.
pub const HARD_MAXREC: usize = 10_000_000;
const MAX_JOBS: usize = 256;
const JOB_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const EXECUTION_DURATION_S: u64 = 600;
const MAX_WAIT: Duration = Duration::from_secs(60);

const VOTABLE_CT: &str = "application/x-votable+xml";
const XML_CT: &str = "text/xml; charset=utf-8";

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

/// `http://host` as the client addressed us (for absolute links in UWS and VOSI documents).
fn base_url(headers: &HeaderMap) -> String {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let proto = get("x-forwarded-proto").unwrap_or("http");
    let host = get("x-forwarded-host")
        .or_else(|| get(header::HOST.as_str()))
        .unwrap_or("localhost");
    format!("{proto}://{host}")
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
    let sql = adql::to_sql(&adql).map_err(|e| ApiError::bad_request(e.to_string()))?;
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

/// Runs a TAP query to a streamed response (or an error for the caller to render).
async fn execute(state: &AppState, q: &TapQuery) -> Result<Response, ApiError> {
    let t0 = std::time::Instant::now();
    tracing::debug!(adql = %q.adql, sql = %q.sql, maxrec = q.maxrec, "TAP query");
    let r = if q.maxrec == 0 {
        columns_only(state, q).await
    } else {
        let limits = Limits {
            max_rows: Some(q.maxrec),
            ..state.limits.clone()
        };
        stream_query(state, &q.sql, q.format, &limits, &[]).await
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
    let plan = query::plan_with_params(&state.ctx, &q.sql, None).await?;
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let q = match parse_query(&state, &p) {
        Ok(q) => q,
        Err(e) => return from_api(e),
    };
    match execute(&state, &q).await {
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

struct Job {
    params: BTreeMap<String, String>,
    query: Option<TapQuery>,
    phase: tokio::sync::watch::Sender<Phase>,
    created: SystemTime,
    started: Option<SystemTime>,
    ended: Option<SystemTime>,
    result: Option<(String, Bytes)>,
    error: Option<String>,
    task: Option<tokio::task::AbortHandle>,
}

/// The async jobs of this process.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<BTreeMap<String, Job>>,
}

impl Jobs {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Job) -> T) -> Option<T> {
        self.jobs.lock().ok()?.get_mut(id).map(f)
    }
}

use crate::catalog::commit::rfc3339;

fn job_xml(id: &str, job: &Job, base: &str) -> String {
    let phase = *job.phase.borrow();
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uws:job xmlns:uws=\"http://www.ivoa.net/xml/UWS/v1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" version=\"1.1\">\n",
    );
    let t = |x: Option<SystemTime>| match x {
        Some(t) => format!(">{}<", rfc3339(t)),
        None => " xsi:nil=\"true\"/><".into(),
    };
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
        let body = t(v);
        if body.starts_with(' ') {
            let _ = writeln!(s, "<uws:{tag} xsi:nil=\"true\"/>");
        } else {
            let _ = writeln!(s, "<uws:{tag}{body}/uws:{tag}>");
        }
    }
    let _ = writeln!(
        s,
        "<uws:executionDuration>{EXECUTION_DURATION_S}</uws:executionDuration>"
    );
    let _ = writeln!(
        s,
        "<uws:destruction>{}</uws:destruction>",
        rfc3339(job.created + JOB_LIFETIME)
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
            "<uws:result id=\"result\" xlink:type=\"simple\" xlink:href=\"{base}/tap/async/{id}/results/result\"/>"
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

/// Drops expired jobs and, beyond the cap, the oldest finished ones.
fn sweep(jobs: &mut BTreeMap<String, Job>) {
    let now = SystemTime::now();
    jobs.retain(|_, j| j.created + JOB_LIFETIME > now);
    while jobs.len() >= MAX_JOBS {
        let oldest = jobs
            .iter()
            .filter(|(_, j)| !j.phase.borrow().active())
            .min_by_key(|(_, j)| j.created)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                jobs.remove(&k);
            }
            None => break,
        }
    }
}

pub async fn async_create(
    State(state): State<Arc<AppState>>,
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
    let (query, error) = match parse_query(&state, &p) {
        Ok(q) => (Some(q), None),
        Err(e) => (None, Some(e.message)),
    };
    let id = crate::catalog::commit::new_run_id();
    let run = p
        .get("PHASE")
        .is_some_and(|v| v.eq_ignore_ascii_case("RUN"));
    {
        let Ok(mut jobs) = state.uws.jobs.lock() else {
            return tap_error(StatusCode::INTERNAL_SERVER_ERROR, "job table poisoned");
        };
        sweep(&mut jobs);
        if jobs.len() >= MAX_JOBS {
            return tap_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many unfinished async jobs; try again later",
            );
        }
        let params = p
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "PHASE" | "ACTION"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        jobs.insert(
            id.clone(),
            Job {
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
    see_other(&format!("{}/tap/async/{id}", base_url(&headers)))
}

/// Moves a PENDING job to QUEUED and runs it.
fn start(state: &Arc<AppState>, id: &str) {
    let Some(query) = state.uws.with(id, |j| {
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
        j.query.clone()
    }) else {
        return;
    };
    let Some(query) = query else { return };
    let st = state.clone();
    let job_id = id.to_string();
    let handle = tokio::spawn(async move {
        st.uws.with(&job_id, |j| {
            j.started = Some(SystemTime::now());
            j.phase.send_replace(Phase::Executing);
        });
        let outcome = match execute(&st, &query).await {
            Ok(resp) => {
                let ct = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(VOTABLE_CT)
                    .to_string();
                match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
                    Ok(b) => Ok((ct, b)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.message),
        };
        st.uws.with(&job_id, |j| {
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
        });
    });
    state.uws.with(id, |j| j.task = Some(handle.abort_handle()));
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
    abort(state, id);
    state
        .uws
        .jobs
        .lock()
        .map(|mut j| j.remove(id).is_some())
        .unwrap_or(false)
}

fn no_job(id: &str) -> Response {
    tap_error(StatusCode::NOT_FOUND, &format!("no async job {id:?}"))
}

pub async fn async_list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uws:jobs xmlns:uws=\"http://www.ivoa.net/xml/UWS/v1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\">\n",
    );
    if let Ok(jobs) = state.uws.jobs.lock() {
        for (id, j) in jobs.iter() {
            let _ = writeln!(
                s,
                "<uws:jobref id=\"{id}\" xlink:href=\"{base}/tap/async/{id}\"><uws:phase>{}</uws:phase><uws:creationTime>{}</uws:creationTime></uws:jobref>",
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let base = base_url(&headers);
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
    match state.uws.with(&id, |j| job_xml(&id, j, &base)) {
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    if method == Method::POST && item == "phase" {
        return phase_post(state, id, p, base_url(&headers));
    }
    let text = |s: String| {
        let mut r = (StatusCode::OK, s).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    let found = state.uws.with(&id, |j| match item.as_str() {
        "phase" => text(j.phase.borrow().name().to_string()),
        "error" => match &j.error {
            Some(e) => tap_error(StatusCode::OK, e),
            None => tap_error(StatusCode::NOT_FOUND, "the job has no error"),
        },
        "quote" => text(String::new()),
        "owner" => text(String::new()),
        "executionduration" => text(EXECUTION_DURATION_S.to_string()),
        "destruction" => text(rfc3339(j.created + JOB_LIFETIME)),
        "parameters" | "results" => xml(StatusCode::OK, job_xml(&id, j, &base_url(&headers))),
        _ => tap_error(StatusCode::NOT_FOUND, &format!("no job item {item:?}")),
    });
    found.unwrap_or_else(|| no_job(&id))
}

pub async fn async_result(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let found = state.uws.with(&id, |j| j.result.clone());
    match found {
        None => no_job(&id),
        Some(None) => tap_error(StatusCode::NOT_FOUND, "the job has no result (yet)"),
        Some(Some((ct, bytes))) => {
            let mut r = Response::new(Body::from(bytes));
            if let Ok(v) = HeaderValue::from_str(&ct) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
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

pub async fn capabilities(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
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
        JOB_LIFETIME.as_secs(),
        JOB_LIFETIME.as_secs()
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
