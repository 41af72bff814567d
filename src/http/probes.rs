//! Probes: `/livez` (the process answers), `/readyz` and its alias `/healthz` (the catalog is
//! loaded and its store answered the refresher lately; 503 otherwise).

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

/// Ready when the catalog is loaded and its store answered the last refresh (no store call
/// per probe). The body says only ready or not, unless the caller presents the service's
/// token: then it names the catalog and the version served.
pub async fn readyz(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::not_ready("not ready"));
    }
    if !state.store_reachable() {
        return Err(ApiError::not_ready("not ready"));
    }
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.auth_token.is_some() && state.authorized(header) {
        return Ok(Json(json!({
            "status": "ready",
            "catalog": state.loc.uri,
            "version": state.version.load(Ordering::Acquire),
        })));
    }
    Ok(Json(json!({ "status": "ready" })))
}
