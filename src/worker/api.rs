//! The worker's HTTP API:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/jobs` | JSON `{"inputs": [...]}` (paths or `s3://` URIs), or a FITS body (`Content-Type: application/fits` or `application/octet-stream`) → 202 `{"id", "state"}`, durable before the answer |
//! | `GET /v1/jobs?state=` | jobs, oldest first, optionally of one state |
//! | `GET /v1/jobs/{id}` | `{"id", "state", "inputs", "error", "attempts", "result", timings}` |
//! | `DELETE /v1/jobs/{id}` | cancels a queued or running job (409 when it already finished) |
//! | `POST /v1/jobs/{id}/retry` | queues a failed or cancelled job again (202; 409 otherwise) |
//! | `GET /livez`, `/readyz`, `/metrics` (open; everything else needs the bearer token when `--auth-token` is set) | probes (ready: the queue's store answers and the worker is not shutting down), Prometheus |

use super::WorkerState;
use super::queue::{QueueError, State};
use crate::server::http::errors::ApiError;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Largest uploaded FITS body.
pub const MAX_UPLOAD_BYTES: usize = 2 << 30;
const MAX_INPUTS: usize = 100_000;

type S = AxState<Arc<WorkerState>>;

pub fn router(state: Arc<WorkerState>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(show).delete(cancel))
        .route("/v1/jobs/{id}/retry", post(retry))
        .route("/livez", get(crate::server::http::health::livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::server::http::metrics::metrics_text))
        .fallback(crate::server::http::errors::not_found)
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn(
            crate::server::http::metrics::track,
        ))
        .with_state(state)
}

/// The jobs API needs the token when one is set; probes and metrics never do.
async fn require_token(
    AxState(state): S,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let open = matches!(req.uri().path(), "/livez" | "/readyz" | "/metrics");
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if open || crate::server::bearer_matches(state.opts.auth_token.as_deref(), header) {
        next.run(req).await
    } else {
        crate::telemetry::metrics()
            .auth_failures
            .with_label_values(&["worker"])
            .inc();
        ApiError::unauthorized().into_response()
    }
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
struct Submit {
    inputs: Vec<String>,
}

async fn submit(
    AxState(state): S,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state.accepting.load(Ordering::Acquire) {
        return Err(ApiError::not_ready("the worker is shutting down"));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let job = if ct.starts_with("application/fits")
        || ct.starts_with("image/fits")
        || ct.starts_with("application/octet-stream")
    {
        if body.len() < 2880 || !body.starts_with(b"SIMPLE  =") {
            return Err(ApiError::bad_request(
                "the body is not a FITS file (it must start with a SIMPLE card and hold at least one 2880-byte block)",
            ));
        }
        state
            .queue
            .submit(Vec::new(), Some(body.to_vec()))
            .await
            .map_err(queue_error)?
    } else {
        let req: Submit = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "expected {{\"inputs\": [\"path or s3:// URI\", ...]}} or a FITS body: {e}"
            ))
        })?;
        if req.inputs.is_empty() || req.inputs.len() > MAX_INPUTS {
            return Err(ApiError::bad_request(format!(
                "inputs must hold 1 to {MAX_INPUTS} paths or URIs"
            )));
        }
        if let Some(bad) = req.inputs.iter().find(|i| i.trim().is_empty()) {
            return Err(ApiError::bad_request(format!("empty input {bad:?}")));
        }
        state
            .queue
            .submit(req.inputs, None)
            .await
            .map_err(queue_error)?
    };
    tracing::info!(job = %job.spec.id, inputs = job.spec.inputs.len(), "job accepted");
    Ok((StatusCode::ACCEPTED, Json(job.to_json())))
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
    let job = state.queue.retry(&id).await.map_err(queue_error)?;
    Ok((StatusCode::ACCEPTED, Json(job.to_json())))
}

async fn readyz(AxState(state): S) -> Result<Json<Value>, ApiError> {
    if !state.accepting.load(Ordering::Acquire) {
        return Err(ApiError::not_ready("shutting down"));
    }
    state
        .queue
        .ping()
        .await
        .map_err(|e| ApiError::not_ready(format!("job queue unreachable: {e}")))?;
    Ok(Json(
        json!({ "status": "ready", "owner": state.opts.owner }),
    ))
}
