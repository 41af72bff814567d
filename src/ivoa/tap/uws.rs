//! UWS 1.1 async jobs at `/tap/async`: `POST` creates one (303 to it; `PHASE=RUN` starts it at
//! once), `POST {job}/phase` with `PHASE=RUN|ABORT`, `GET {job}?WAIT=s` blocks until the phase
//! changes (at most [`MAX_WAIT`]), `{job}/results/result`, `{job}/error`, `DELETE {job}` (or
//! `POST ACTION=DELETE`).
//!
//! Jobs live in this process, bounded per client ([`TapLimits`]): a client keeps at most
//! `jobs_per_client` jobs (its oldest finished job makes room for a new one; 429 when all are
//! unfinished), a job never run is destroyed after `pending_lifetime`, every job after
//! `lifetime`. A job runs in one of its client's query slots (it stays QUEUED until one is
//! free). Results are written to a private directory, never held in memory, within
//! `results_bytes` for all jobs together.

use super::super::xml::Xml;
use super::{
    EXECUTION_DURATION_S, MAX_PARAM_BYTES, MAX_PARAMS, MAX_WAIT, Params, SlotBy, TapError,
    TapLimits, TapQuery, VOTABLE_CT, base, execute, from_api, parse_params, parse_query, see_other,
    tap_error, xml,
};
use crate::catalog::commit::rfc3339;
use crate::http::Peer;
use crate::http::client::ClientId;
use crate::query;
use crate::service::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

const UWS_NS: &str = "http://www.ivoa.net/xml/UWS/v1.0";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

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
    pub(crate) limits: TapLimits,
    /// A private directory for the results, removed with the service.
    dir: tempfile::TempDir,
    /// Bytes of results on disk.
    stored: AtomicU64,
}

impl Jobs {
    pub fn new(limits: TapLimits) -> Result<Self, TapError> {
        let err = |source| TapError {
            path: limits.results_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&limits.results_dir).map_err(err)?;
        let dir = tempfile::Builder::new()
            .prefix("astropipe-tap-")
            .tempdir_in(&limits.results_dir)
            .map_err(err)?;
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

fn job_xml(id: &str, job: &Job, base: &str, lifetime: Duration) -> String {
    let nil = [("xsi:nil", "true")];
    let mut x = Xml::new();
    x.open(
        "uws:job",
        &[
            ("xmlns:uws", UWS_NS),
            ("xmlns:xlink", XLINK_NS),
            ("xmlns:xsi", XSI_NS),
            ("version", "1.1"),
        ],
    );
    x.text("uws:jobId", &[], id)
        .empty("uws:ownerId", &nil)
        .text("uws:phase", &[], job.phase.borrow().name())
        .empty("uws:quote", &nil)
        .text("uws:creationTime", &[], &rfc3339(job.created));
    for (tag, v) in [("uws:startTime", job.started), ("uws:endTime", job.ended)] {
        match v {
            Some(t) => x.text(tag, &[], &rfc3339(t)),
            None => x.empty(tag, &nil),
        };
    }
    x.text(
        "uws:executionDuration",
        &[],
        &EXECUTION_DURATION_S.to_string(),
    )
    .text("uws:destruction", &[], &rfc3339(job.created + lifetime))
    .open("uws:parameters", &[]);
    for (k, v) in &job.params {
        x.text("uws:parameter", &[("id", &k.to_ascii_lowercase())], v);
    }
    x.close("uws:parameters").open("uws:results", &[]);
    if job.result.is_some() {
        let href = format!("{base}/tap/async/{id}/results/result");
        x.empty(
            "uws:result",
            &[
                ("id", "result"),
                ("xlink:type", "simple"),
                ("xlink:href", &href),
            ],
        );
    }
    x.close("uws:results");
    if let Some(e) = &job.error {
        x.open(
            "uws:errorSummary",
            &[("type", "fatal"), ("hasDetail", "true")],
        )
        .text("uws:message", &[], e)
        .close("uws:errorSummary");
    }
    x.close("uws:job");
    x.finish()
}

/// `POST /tap/async`: a new job (PENDING, or started with `PHASE=RUN`), 303 to it.
pub async fn create(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    peer: Peer,
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
        let mut all = jobs.lock();
        if let Err((status, message)) = jobs.make_room(&mut all, &owner) {
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
        all.insert(
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
        start(&state, &jobs, &id);
    }
    see_other(&format!("{}/tap/async/{id}", base(&state, &peer, &headers)))
}

/// Moves a PENDING job to QUEUED and runs it once its client has a free query slot.
fn start(state: &Arc<AppState>, jobs: &Arc<Jobs>, id: &str) {
    let Some(Some((query, owner))) = jobs.with(id, |j| {
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
    let (st, js) = (state.clone(), jobs.clone());
    let job_id = id.to_string();
    let handle = tokio::spawn(async move {
        let slot = st.query_slots.acquire(&owner).await;
        js.with(&job_id, |j| {
            j.started = Some(SystemTime::now());
            j.phase.send_replace(Phase::Executing);
        });
        let outcome = match execute(&st, &query, SlotBy::Held(slot)).await {
            Ok(resp) => store_result(&js, &job_id, resp)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.message),
        };
        let mut all = js.lock();
        match all.get_mut(&job_id) {
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
                    js.stored.fetch_sub(r.bytes, Ordering::AcqRel);
                }
            }
        }
    });
    jobs.with(id, |j| j.task = Some(handle.abort_handle()));
}

/// Why a job's result could not be kept.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("the query failed: {0}")]
    Query(String),
    #[error("the service's storage for async results is full; try again later")]
    Full,
    #[error("cannot store the result: {0}")]
    Io(std::io::Error),
}

/// Writes a response body to the job's result file, within the service's result storage.
async fn store_result(jobs: &Jobs, id: &str, resp: Response) -> Result<ResultFile, StoreError> {
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(VOTABLE_CT)
        .to_string();
    let path = jobs.dir.path().join(format!("{id}.result"));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(StoreError::Io)?;
    let mut bytes = 0u64;
    let mut body = resp.into_body().into_data_stream();
    let fail = |bytes: u64, e: StoreError| {
        let _ = std::fs::remove_file(&path);
        jobs.stored.fetch_sub(bytes, Ordering::AcqRel);
        Err(e)
    };
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return fail(bytes, StoreError::Query(e.to_string())),
        };
        let n = chunk.len() as u64;
        let total = jobs.stored.fetch_add(n, Ordering::AcqRel) + n;
        bytes += n;
        if total > jobs.limits.results_bytes {
            crate::telemetry::metrics()
                .refusals
                .with_label_values(&["tap_results_bytes"])
                .inc();
            return fail(bytes, StoreError::Full);
        }
        if let Err(e) = file.write_all(&chunk).await {
            return fail(bytes, StoreError::Io(e));
        }
    }
    if let Err(e) = file.flush().await {
        return fail(bytes, StoreError::Io(e));
    }
    Ok(ResultFile {
        path,
        content_type,
        bytes,
    })
}

fn abort(jobs: &Jobs, id: &str) {
    jobs.with(id, |j| {
        if j.phase.borrow().active() {
            if let Some(t) = j.task.take() {
                t.abort();
            }
            j.ended = Some(SystemTime::now());
            j.phase.send_replace(Phase::Aborted);
        }
    });
}

fn delete(jobs: &Jobs, id: &str) -> bool {
    let mut all = jobs.lock();
    jobs.remove_locked(&mut all, id)
}

fn no_job(id: &str) -> Response {
    tap_error(StatusCode::NOT_FOUND, &format!("no async job {id:?}"))
}

/// `GET /tap/async`: the calling client's jobs (UWS 1.1 lets a service list only the
/// caller's own).
pub async fn list(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let base = base(&state, &peer, &headers);
    let owner = state.client(peer.0, &headers);
    let mut x = Xml::new();
    x.open(
        "uws:jobs",
        &[
            ("xmlns:uws", UWS_NS),
            ("xmlns:xlink", XLINK_NS),
            ("version", "1.1"),
        ],
    );
    {
        let mut all = jobs.lock();
        jobs.sweep(&mut all);
        for (id, j) in all.iter().filter(|(_, j)| j.owner == owner) {
            let href = format!("{base}/tap/async/{id}");
            x.open("uws:jobref", &[("id", id), ("xlink:href", &href)])
                .text("uws:phase", &[], j.phase.borrow().name())
                .text("uws:creationTime", &[], &rfc3339(j.created))
                .close("uws:jobref");
        }
    }
    x.close("uws:jobs");
    xml(StatusCode::OK, x.finish())
}

/// `GET /tap/async/{id}` (with `WAIT` blocking), `POST` (`ACTION=DELETE`, `PHASE=...`),
/// `DELETE`.
#[allow(clippy::too_many_arguments)]
pub async fn job(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    Path(id): Path<String>,
    method: Method,
    peer: Peer,
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
        return if delete(&jobs, &id) {
            see_other(&format!("{base}/tap/async"))
        } else {
            no_job(&id)
        };
    }
    if method == Method::POST {
        return phase_post(&state, &jobs, &id, &p, &base);
    }
    if let Some(wait) = p.get("WAIT") {
        let secs: i64 = wait.trim().parse().unwrap_or(-1);
        let limit = if secs < 0 {
            MAX_WAIT
        } else {
            Duration::from_secs(secs as u64).min(MAX_WAIT)
        };
        let want = p.get("PHASE").map(|s| s.to_ascii_uppercase());
        let Some(mut rx) = jobs.with(&id, |j| j.phase.subscribe()) else {
            return no_job(&id);
        };
        let now = *rx.borrow_and_update();
        let waits = now.active() && want.as_deref().is_none_or(|w| w == now.name());
        if waits {
            let _ = tokio::time::timeout(limit, rx.changed()).await;
        }
    }
    let lifetime = jobs.limits.lifetime;
    match jobs.with(&id, |j| job_xml(&id, j, &base, lifetime)) {
        Some(s) => xml(StatusCode::OK, s),
        None => no_job(&id),
    }
}

fn phase_post(
    state: &Arc<AppState>,
    jobs: &Arc<Jobs>,
    id: &str,
    p: &Params,
    base: &str,
) -> Response {
    match p.get("PHASE").map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("RUN") => start(state, jobs, id),
        Some("ABORT") => abort(jobs, id),
        Some(other) => {
            return tap_error(
                StatusCode::BAD_REQUEST,
                &format!("PHASE={other}: use RUN or ABORT"),
            );
        }
        None => {}
    }
    if jobs.with(id, |_| ()).is_none() {
        return no_job(id);
    }
    see_other(&format!("{base}/tap/async/{id}"))
}

/// `GET|POST /tap/async/{id}/{item}`: phase, results/result, error, parameters, quote,
/// executionduration, destruction, owner.
#[allow(clippy::too_many_arguments)]
pub async fn item(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    Path((id, item)): Path<(String, String)>,
    method: Method,
    peer: Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let base = base(&state, &peer, &headers);
    if method == Method::POST && item == "phase" {
        return phase_post(&state, &jobs, &id, &p, &base);
    }
    let text = |s: String| {
        let mut r = (StatusCode::OK, s).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    let lifetime = jobs.limits.lifetime;
    let found = jobs.with(&id, |j| match item.as_str() {
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

/// `GET /tap/async/{id}/results/result`: the result file, streamed from disk.
pub async fn result(State(jobs): State<Arc<Jobs>>, Path(id): Path<String>) -> Response {
    let found = jobs.with(&id, |j| j.result.clone());
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
