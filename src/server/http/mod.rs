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
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
