//! The HTTP API (axum): one file per endpoint group.
//!
//! | route | file |
//! | --- | --- |
//! | `POST /v1/sql` | [`sql`] |
//! | `GET /v1/tables`, `GET /v1/tables/{name}` | [`tables`] |
//! | `GET /livez`, `/readyz`, `/healthz` | [`health`] |
//! | `GET /metrics` | [`metrics`] |
//!
//! Errors are JSON `{"code", "message"}` ([`errors`]).

pub mod errors;
pub mod health;
pub mod metrics;
pub mod sql;
pub mod tables;

use crate::server::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// Routes open without a token: probes and metrics.
const OPEN_ROUTES: &[&str] = &["/livez", "/readyz", "/healthz", "/metrics"];

/// Refuses requests without the service's bearer token (when one is set), except on the open
/// routes.
async fn require_token(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if OPEN_ROUTES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.authorized(header) {
        next.run(req).await
    } else {
        crate::telemetry::metrics()
            .auth_failures
            .with_label_values(&["http"])
            .inc();
        errors::ApiError::unauthorized().into_response()
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/sql", post(sql::post_sql))
        .route("/v1/tables", get(tables::list))
        .route("/v1/tables/{name}", get(tables::describe))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/healthz", get(health::readyz))
        .route("/metrics", get(metrics::metrics_text))
        .fallback(errors::not_found)
        .layer(DefaultBodyLimit::max(sql::MAX_SQL_BYTES + 1))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
