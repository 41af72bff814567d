//! UWS 1.1 async jobs at `/tap/async`, stored by [`super::jobs`] (any replica answers):
//!
//! - `POST /tap/async`: a new job (PENDING; `PHASE=RUN` starts it), 303 to it;
//! - `GET /tap/async[?PHASE=..&AFTER=..&LAST=n]`: the caller's jobs (its owner: the client
//!   address, the forwarded one behind a trusted proxy), filtered as UWS 1.1 §2.2.3.1 says;
//! - `GET {job}[?WAIT=s[&PHASE=..]]`: the job document, blocking up to [`MAX_WAIT`] while it is
//!   in `PHASE` (or any active phase);
//! - `POST {job}/phase` `PHASE=RUN|ABORT`; `POST {job}/parameters` (PENDING only; uploads
//!   too); `POST {job}/destruction`, `{job}/executionduration`; `DELETE {job}` or
//!   `POST {job}` `ACTION=DELETE`; 303 to the job (the list after a delete);
//! - `GET {job}/phase|quote|owner|executionduration|destruction|error|parameters|results`,
//!   `{job}/results/result` (streamed from the store).
//!
//! A client keeps at most `jobs_per_client` jobs (its oldest finished job makes room; 429 when
//! all are unfinished); a job never run is destroyed after `pending_lifetime`, others after
//! `lifetime`. A job runs in one of its owner's query slots.

use super::super::xml::Xml;
use super::jobs::{Job, JobError, Jobs, Phase, to_time};
use super::{
    MAX_PARAM_BYTES, MAX_PARAMS, MAX_WAIT, TapRequest, base, from_api, parse_query, read_request,
    see_other, tap_error, uploads_of, xml,
};
use crate::catalog::commit::rfc3339;
use crate::http::Peer;
use crate::http::errors::ApiError;
use crate::service::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const UWS_NS: &str = "http://www.ivoa.net/xml/UWS/v1.0";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Parameters that steer the job, not the query: never stored as job parameters.
const CONTROL: &[&str] = &[
    "PHASE",
    "ACTION",
    "WAIT",
    "DESTRUCTION",
    "EXECUTIONDURATION",
];

/// Who owns a request's jobs: the client (its address, or the forwarded one behind a trusted
/// proxy), with or without a token — everyone holding a shared token is not one owner, and
/// one client's jobs must not fill another's cap.
pub(crate) fn owner(state: &AppState, peer: &Peer, headers: &HeaderMap) -> String {
    state.client(peer.0, headers).as_str().to_string()
}

fn job_error(e: JobError) -> Response {
    let status = match &e {
        JobError::NotFound(_) => StatusCode::NOT_FOUND,
        JobError::ClientFull(_) => StatusCode::TOO_MANY_REQUESTS,
        JobError::ServiceFull(_) | JobError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        JobError::Conflict(..) => StatusCode::CONFLICT,
        JobError::Log(_) | JobError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if matches!(e, JobError::ClientFull(_) | JobError::ServiceFull(_)) {
        crate::telemetry::metrics()
            .refusals
            .with_label_values(&["tap_jobs"])
            .inc();
    }
    tap_error(status, &e.to_string())
}

fn time(secs: f64) -> String {
    rfc3339(to_time(secs))
}

fn job_xml(job: &Job, base: &str) -> String {
    let id = &job.spec.id;
    let s = &job.state;
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
    // runId is left out (it may not be nil); ownerId is nil, the owner being a client address.
    x.text("uws:jobId", &[], id)
        .empty("uws:ownerId", &nil)
        .text("uws:phase", &[], s.phase.name())
        .empty("uws:quote", &nil)
        .text("uws:creationTime", &[], &time(job.spec.created));
    for (tag, v) in [("uws:startTime", s.started), ("uws:endTime", s.ended)] {
        match v {
            Some(t) => x.text(tag, &[], &time(t)),
            None => x.empty(tag, &nil),
        };
    }
    x.text(
        "uws:executionDuration",
        &[],
        &s.execution_duration.to_string(),
    )
    .text("uws:destruction", &[], &time(s.destruction))
    .open("uws:parameters", &[]);
    for (k, v) in &s.params {
        x.text("uws:parameter", &[("id", &k.to_ascii_lowercase())], v);
    }
    x.close("uws:parameters").open("uws:results", &[]);
    if s.result.is_some() {
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
    if let Some(e) = &s.error {
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

/// The query parameters of a request (control parameters left out), checked for size.
fn job_params(req: &TapRequest) -> Result<BTreeMap<String, String>, ApiError> {
    let params: BTreeMap<String, String> = req
        .params
        .iter()
        .filter(|(k, _)| !CONTROL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let others: usize = params
        .iter()
        .filter(|(k, _)| k.as_str() != "QUERY")
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if params.len() > MAX_PARAMS || others > MAX_PARAM_BYTES {
        return Err(ApiError::bad_request(format!(
            "a job takes at most {MAX_PARAMS} parameters of {MAX_PARAM_BYTES} bytes besides QUERY"
        )));
    }
    Ok(params)
}

/// Applies DESTRUCTION / EXECUTIONDURATION when a request sets them.
async fn apply_times(jobs: &Jobs, id: &str, req: &TapRequest) -> Result<(), Response> {
    if let Some(d) = req.params.get("DESTRUCTION") {
        let t = crate::catalog::commit::parse_rfc3339(d.trim())
            .or_else(|| crate::catalog::commit::parse_rfc3339(&format!("{}Z", d.trim())))
            .ok_or_else(|| {
                tap_error(
                    StatusCode::BAD_REQUEST,
                    &format!("DESTRUCTION={d} is not an ISO 8601 time"),
                )
            })?;
        jobs.set_destruction(id, t as f64)
            .await
            .map_err(job_error)?;
    }
    if let Some(d) = req.params.get("EXECUTIONDURATION") {
        let secs: u64 = d.trim().parse().map_err(|_| {
            tap_error(
                StatusCode::BAD_REQUEST,
                &format!("EXECUTIONDURATION={d} is not a whole number of seconds"),
            )
        })?;
        jobs.set_execution_duration(id, secs)
            .await
            .map_err(job_error)?;
    }
    Ok(())
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
    let req = match read_request(raw.as_deref(), &headers, body).await {
        Ok(r) => r,
        Err(e) => return from_api(e),
    };
    // A bad query is accepted as a job that fails with the reason when run (UWS practice),
    // but a missing QUERY, oversized parameters or bad uploads are refused at once.
    let Some(q) = req.params.get("QUERY") else {
        return tap_error(StatusCode::BAD_REQUEST, "QUERY is missing");
    };
    if let Err(e) = crate::query::statement::check_text(q, &state.limits) {
        return from_api(crate::query::QueryError::from(e).into());
    }
    let params = match job_params(&req) {
        Ok(p) => p,
        Err(e) => return from_api(e),
    };
    let uploads = match uploads_of(&jobs.limits, &req).await {
        Ok(u) => u,
        Err(e) => return from_api(e),
    };
    let who = owner(&state, &peer, &headers);
    let job = match jobs.create(&who, params, uploads).await {
        Ok(j) => j,
        Err(e) => return job_error(e),
    };
    let id = job.spec.id.clone();
    if let Err(r) = apply_times(&jobs, &id, &req).await {
        return r;
    }
    if req
        .params
        .get("PHASE")
        .is_some_and(|v| v.eq_ignore_ascii_case("RUN"))
        && let Err(e) = jobs.run(&state, &id).await
    {
        return job_error(e);
    }
    see_other(&format!("{}/tap/async/{id}", base(&state, &peer, &headers)))
}

/// `GET /tap/async`: the caller's jobs, filtered by `PHASE` (repeatable), `AFTER` (a
/// creation time) and `LAST` (the n most recent, newest first).
pub async fn list(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    peer: Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let base = base(&state, &peer, &headers);
    let who = owner(&state, &peer, &headers);
    let mut phases = Vec::new();
    let (mut after, mut last) = (None, None);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.to_ascii_uppercase().as_str() {
            "PHASE" => match Phase::parse(&v) {
                Some(p) => phases.push(p),
                None => {
                    return tap_error(
                        StatusCode::BAD_REQUEST,
                        &format!("PHASE={v} is not a UWS phase"),
                    );
                }
            },
            "AFTER" => match crate::catalog::commit::parse_rfc3339(&v)
                .or_else(|| crate::catalog::commit::parse_rfc3339(&format!("{v}Z")))
            {
                Some(t) => after = Some(t as f64),
                None => {
                    return tap_error(
                        StatusCode::BAD_REQUEST,
                        &format!("AFTER={v} is not an ISO 8601 time"),
                    );
                }
            },
            "LAST" => match v.parse::<usize>() {
                Ok(n) if n > 0 => last = Some(n),
                _ => {
                    return tap_error(
                        StatusCode::BAD_REQUEST,
                        &format!("LAST={v} is not a positive integer"),
                    );
                }
            },
            _ => {}
        }
    }
    let mut mine = match jobs.list(&who).await {
        Ok(v) => v,
        Err(e) => return job_error(e),
    };
    mine.retain(|j| {
        (phases.is_empty() || phases.contains(&j.state.phase))
            && after.is_none_or(|t| j.spec.created > t)
    });
    if let Some(n) = last {
        mine.sort_by(|a, b| b.spec.created.total_cmp(&a.spec.created));
        mine.truncate(n);
    }
    let mut x = Xml::new();
    x.open(
        "uws:jobs",
        &[
            ("xmlns:uws", UWS_NS),
            ("xmlns:xlink", XLINK_NS),
            ("version", "1.1"),
        ],
    );
    for j in &mine {
        let href = format!("{base}/tap/async/{}", j.spec.id);
        x.open("uws:jobref", &[("id", &j.spec.id), ("xlink:href", &href)])
            .text("uws:phase", &[], j.state.phase.name())
            .text("uws:creationTime", &[], &time(j.spec.created))
            .close("uws:jobref");
    }
    x.close("uws:jobs");
    xml(StatusCode::OK, x.finish())
}

/// Blocks until the job leaves `want` (or any active phase), up to `limit`.
async fn wait(
    jobs: &Jobs,
    id: &str,
    want: Option<Phase>,
    limit: Duration,
) -> Result<Job, JobError> {
    let t0 = std::time::Instant::now();
    let first = jobs.get(id).await?;
    let start = first.state.phase;
    let waits = |p: Phase| p.active() && want.is_none_or(|w| w == p);
    if !waits(start) {
        return Ok(first);
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let j = jobs.get(id).await?;
        if j.state.phase != start || t0.elapsed() >= limit {
            return Ok(j);
        }
    }
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
    let req = match read_request(raw.as_deref(), &headers, body).await {
        Ok(r) => r,
        Err(e) => return from_api(e),
    };
    let base = base(&state, &peer, &headers);
    if method == Method::DELETE
        || (method == Method::POST
            && req
                .params
                .get("ACTION")
                .is_some_and(|a| a.eq_ignore_ascii_case("DELETE")))
    {
        return match jobs.delete(&id).await {
            Ok(()) => see_other(&format!("{base}/tap/async")),
            Err(e) => job_error(e),
        };
    }
    if method == Method::POST {
        return post_to_job(&state, &jobs, &id, &req, &base).await;
    }
    let found = match req.params.get("WAIT") {
        Some(w) => {
            let secs: i64 = w.trim().parse().unwrap_or(-1);
            let limit = if secs < 0 {
                MAX_WAIT
            } else {
                Duration::from_secs(secs as u64).min(MAX_WAIT)
            };
            let want = req.params.get("PHASE").and_then(|p| Phase::parse(p));
            wait(&jobs, &id, want, limit).await
        }
        None => jobs.get(&id).await,
    };
    match found {
        Ok(j) => xml(StatusCode::OK, job_xml(&j, &base)),
        Err(e) => job_error(e),
    }
}

/// A POST to a job or its `phase`: PHASE=RUN|ABORT, times, then 303 to the job.
async fn post_to_job(
    state: &Arc<AppState>,
    jobs: &Arc<Jobs>,
    id: &str,
    req: &TapRequest,
    base: &str,
) -> Response {
    if let Err(r) = apply_times(jobs, id, req).await {
        return r;
    }
    let r = match req
        .params
        .get("PHASE")
        .map(|s| s.to_ascii_uppercase())
        .as_deref()
    {
        Some("RUN") => jobs.run(state, id).await,
        Some("ABORT") => jobs.abort(id).await,
        Some(other) => {
            return tap_error(
                StatusCode::BAD_REQUEST,
                &format!("PHASE={other}: use RUN or ABORT"),
            );
        }
        None => jobs.get(id).await,
    };
    match r {
        Ok(_) => see_other(&format!("{base}/tap/async/{id}")),
        Err(e) => job_error(e),
    }
}

fn text(s: String) -> Response {
    let mut r = (StatusCode::OK, s).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `GET|POST /tap/async/{id}/{item}`: phase, results, error, parameters, quote, owner,
/// executionduration, destruction.
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
    let req = match read_request(raw.as_deref(), &headers, body).await {
        Ok(r) => r,
        Err(e) => return from_api(e),
    };
    let base = base(&state, &peer, &headers);
    if method == Method::POST {
        return match item.as_str() {
            "phase" | "destruction" | "executionduration" => {
                post_to_job(&state, &jobs, &id, &req, &base).await
            }
            "parameters" => {
                let params = match job_params(&req) {
                    Ok(p) => p,
                    Err(e) => return from_api(e),
                };
                if let Some(q) = params.get("QUERY") {
                    if let Err(e) = crate::query::statement::check_text(q, &state.limits) {
                        return from_api(crate::query::QueryError::from(e).into());
                    }
                    if let Err(e) = parse_query(&state, &params.clone().into_iter().collect()) {
                        return from_api(e);
                    }
                }
                let uploads = match uploads_of(&jobs.limits, &req).await {
                    Ok(u) => u,
                    Err(e) => return from_api(e),
                };
                if let Err(e) = jobs.update_params(&id, params, uploads).await {
                    return job_error(e);
                }
                if let Err(r) = apply_times(&jobs, &id, &req).await {
                    return r;
                }
                see_other(&format!("{base}/tap/async/{id}"))
            }
            _ => tap_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{item} cannot be changed"),
            ),
        };
    }
    let job = match jobs.get(&id).await {
        Ok(j) => j,
        Err(e) => return job_error(e),
    };
    let s = &job.state;
    match item.as_str() {
        "phase" => text(s.phase.name().to_string()),
        "error" => match &s.error {
            Some(e) => tap_error(StatusCode::OK, e),
            None => tap_error(StatusCode::NOT_FOUND, "the job has no error"),
        },
        "quote" | "owner" | "runId" | "runid" => text(String::new()),
        "executionduration" => text(s.execution_duration.to_string()),
        "destruction" => text(time(s.destruction)),
        "parameters" | "results" => xml(StatusCode::OK, job_xml(&job, &base)),
        _ => tap_error(StatusCode::NOT_FOUND, &format!("no job item {item:?}")),
    }
}

/// `GET /tap/async/{id}/results/result`: the result, streamed from the store.
pub async fn result(State(jobs): State<Arc<Jobs>>, Path(id): Path<String>) -> Response {
    match jobs.result(&id).await {
        Ok((meta, stream)) => {
            let mut resp = Response::new(Body::from_stream(stream));
            if let Ok(v) = HeaderValue::from_str(&meta.content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        Err(JobError::Conflict(_, why)) => tap_error(StatusCode::NOT_FOUND, why),
        Err(e) => job_error(e),
    }
}
