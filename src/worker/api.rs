//! The worker's HTTP API:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/jobs` | JSON `{"inputs": [...]}` (paths or `s3://` URIs under `--allow-input`; 400 otherwise), or a FITS body (`Content-Type: application/fits` or `application/octet-stream`, streamed to the store, at most `--max-upload-mb`) → 202 `{"id", "state"}`, durable before the answer; 429 when the client is over its rate or the queue is full |
//! | `GET /v1/jobs?state=` | jobs, oldest first, optionally of one state |
//! | `GET /v1/jobs/{id}` | `{"id", "state", "inputs", "error", "attempts", "result", timings}` |
//! | `DELETE /v1/jobs/{id}` | cancels a queued or running job (409 when it already finished) |
//! | `POST /v1/jobs/{id}/retry` | queues a failed or cancelled job again (202; 409 otherwise) |
//! | `GET /livez`, `/readyz`, `/metrics` (open; everything else needs the bearer token when `--auth-token` is set) | probes (ready: the queue's store answers and the worker is not shutting down), Prometheus |

use super::WorkerState;
use super::queue::{Queue, QueueError, State};
use crate::http::auth::{Auth, require_token};
use crate::http::client::ClientId;
use crate::http::errors::ApiError;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Largest JSON request body.
const MAX_JSON_BYTES: usize = 1 << 20;
const MAX_INPUTS: usize = 10_000;

type S = AxState<Arc<WorkerState>>;

pub fn router(state: Arc<WorkerState>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(show).delete(cancel))
        .route("/v1/jobs/{id}/retry", post(retry))
        .route("/livez", get(crate::http::probes::livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::http::metrics::metrics_text))
        .fallback(crate::http::errors::not_found)
        .layer(axum::middleware::from_fn(crate::http::catch_panic))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            Auth::new(state.opts.auth_token.as_deref(), "worker"),
            require_token,
        ))
        .layer(axum::middleware::from_fn(crate::http::metrics::track))
        .with_state(state)
}

fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::NotFound(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no job {id:?}"),
        ),
        QueueError::Conflict { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            other.to_string(),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    inputs: Vec<String>,
}

fn too_many(message: String) -> ApiError {
    ApiError::too_many(message)
}

/// Checks the client's rate and the queue's room before anything is stored.
fn admit(state: &WorkerState, client: &ClientId) -> Result<(), ApiError> {
    if let Err(wait) = state.rate.take(client) {
        crate::telemetry::metrics()
            .refusals
            .with_label_values(&["submit_rate"])
            .inc();
        return Err(too_many(format!(
            "this client submits more than {} jobs a minute; try again in {wait} s (--submit-per-minute)",
            state.opts.submit_per_minute
        )));
    }
    let mut d = state.depth.lock().unwrap_or_else(|p| p.into_inner());
    let mine = d.by_client.get(client.as_str()).copied().unwrap_or(0);
    if d.total >= state.opts.max_queued {
        crate::telemetry::metrics()
            .refusals
            .with_label_values(&["queue_depth"])
            .inc();
        return Err(too_many(format!(
            "the queue holds {} waiting jobs, its limit; try again later (--max-queued-jobs)",
            d.total
        )));
    }
    if mine >= state.opts.max_client_queued {
        crate::telemetry::metrics()
            .refusals
            .with_label_values(&["client_queue_depth"])
            .inc();
        return Err(too_many(format!(
            "this client has {mine} waiting jobs, its limit; wait for some to run (--max-client-queued-jobs)"
        )));
    }
    // Counted until the next scan sees the job.
    d.total += 1;
    *d.by_client.entry(client.as_str().to_string()).or_default() += 1;
    Ok(())
}

async fn submit(
    AxState(state): S,
    peer: crate::http::Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state.accepting.load(Ordering::Acquire) {
        return Err(ApiError::not_ready("the worker is shutting down"));
    }
    let peer = peer
        .0
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let client = ClientId::of_request(peer, &headers, &state.opts.conn.trusted_proxies);
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let upload = ct.starts_with("application/fits")
        || ct.starts_with("image/fits")
        || ct.starts_with("application/octet-stream");
    let job = if upload {
        let max = state.opts.max_upload_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the upload is larger than {max} bytes (--max-upload-mb)"),
            ));
        }
        let _slot = state.uploads.try_acquire(&client).ok_or_else(|| {
            too_many(format!(
                "this client is already sending {} uploads; wait for one to finish",
                state.uploads.per_client()
            ))
        })?;
        admit(&state, &client)?;
        let id = Queue::new_id();
        let stream = body.into_data_stream();
        state
            .queue
            .put_upload(&id, stream, max)
            .await
            .map_err(upload_error)?;
        state
            .queue
            .submit(id, Vec::new(), true, Some(client.to_string()))
            .await
            .map_err(queue_error)?
    } else {
        let bytes = axum::body::to_bytes(body, MAX_JSON_BYTES)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request: {e}")))?;
        let req: Submit = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "expected {{\"inputs\": [\"path or s3:// URI\", ...]}} or a FITS body: {e}"
            ))
        })?;
        if req.inputs.is_empty() || req.inputs.len() > MAX_INPUTS {
            return Err(ApiError::bad_request(format!(
                "inputs must hold 1 to {MAX_INPUTS} paths or URIs"
            )));
        }
        if state.opts.allowed.is_empty() {
            return Err(ApiError::bad_request(
                "this worker takes uploads only: it was started without --allow-input",
            ));
        }
        let inputs = req
            .inputs
            .iter()
            .map(|i| state.opts.allowed.admit(i.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                crate::telemetry::metrics()
                    .refusals
                    .with_label_values(&["input_not_allowed"])
                    .inc();
                ApiError::new(StatusCode::BAD_REQUEST, "input_not_allowed", e.to_string())
            })?;
        admit(&state, &client)?;
        state
            .queue
            .submit(Queue::new_id(), inputs, false, Some(client.to_string()))
            .await
            .map_err(queue_error)?
    };
    tracing::info!(job = %job.spec.id, inputs = job.spec.inputs.len(), client = %client, "job accepted");
    Ok((StatusCode::ACCEPTED, Json(job.to_json())))
}

fn upload_error(e: QueueError) -> ApiError {
    match e {
        QueueError::UploadTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        QueueError::NotFits | QueueError::UploadBody(_) => ApiError::bad_request(e.to_string()),
        other => queue_error(other),
    }
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
}

async fn list(AxState(state): S, Query(p): Query<ListParams>) -> Result<Json<Value>, ApiError> {
    let want = match p.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(State::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "state={s}: use queued, running, succeeded, failed or cancelled"
            ))
        })?),
    };
    let jobs = state.queue.list().await.map_err(queue_error)?;
    let out: Vec<Value> = jobs
        .iter()
        .filter(|j| want.is_none_or(|w| j.state() == w))
        .map(|j| j.to_json())
        .collect();
    Ok(Json(json!({ "jobs": out })))
}

async fn show(AxState(state): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let job = state.queue.get(&id).await.map_err(queue_error)?;
    Ok(Json(job.to_json()))
}

async fn cancel(AxState(state): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let job = state.queue.cancel(&id).await.map_err(queue_error)?;
    crate::telemetry::metrics()
        .jobs_finished
        .with_label_values(&["cancelled"])
        .inc();
    Ok(Json(job.to_json()))
}

async fn retry(
    AxState(state): S,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let job = state.queue.get(&id).await.map_err(queue_error)?;
    if job.spec.upload && !state.queue.has_upload(&id).await.map_err(queue_error)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the upload of this job was deleted once it was processed; upload the file again",
        ));
    }
    let job = state.queue.retry(&id).await.map_err(queue_error)?;
    Ok((StatusCode::ACCEPTED, Json(job.to_json())))
}

/// Ready when accepting and the queue's store answered the last scan (no store call per
/// probe); the body says only that.
async fn readyz(AxState(state): S) -> Result<Json<Value>, ApiError> {
    let ready = state.accepting.load(Ordering::Acquire) && state.store_reachable();
    crate::http::probes::ready(ready, None)
}
