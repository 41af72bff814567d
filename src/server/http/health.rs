//! Probes: `/livez` (the process answers), `/readyz` and its alias `/healthz` (the catalog is
//! loaded and its store reachable; 503 otherwise).

use super::errors::ApiError;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::not_ready("the catalog is not loaded yet"));
    }
    crate::catalog::commit::latest_version(&state.loc)
        .await
        .map_err(|e| ApiError::not_ready(format!("catalog store unreachable: {e}")))?;
    Ok(Json(json!({
        "status": "ready",
        "catalog": state.loc.uri,
        "version": state.version.load(Ordering::Acquire),
    })))
}
