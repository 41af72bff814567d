//! The HTTP API (axum): one file per endpoint group.
//!
//! | route | file |
//! | --- | --- |
//! | `POST /v1/sql` | [`sql`] |
//! | `GET /v1/tables`, `GET /v1/tables/{name}` | [`tables`] |
//! | `GET|POST /tap/sync`, `/tap/async[/{id}[/...]]`, `GET /tap/capabilities`, `/tap/availability`, `/tap/tables[/{name}]` | [`tap`] |
//! | `GET /scs?RA=&DEC=&SR=` | [`scs`] |
//! | `GET /livez`, `/readyz`, `/healthz` | [`health`] |
//! | `GET /metrics` | [`metrics`] |
//!
//! Errors are JSON `{"code", "message"}` ([`errors`]).

pub mod errors;
pub mod health;
pub mod metrics;
pub mod scs;
pub mod sql;
pub mod tables;
pub mod tap;

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
        .route("/tap/sync", get(tap::sync).post(tap::sync))
        .route("/tap/async", get(tap::async_list).post(tap::async_create))
        .route(
            "/tap/async/{id}",
            get(tap::async_job)
                .post(tap::async_job)
                .delete(tap::async_job),
        )
        .route("/tap/async/{id}/results/result", get(tap::async_result))
        .route(
            "/tap/async/{id}/{item}",
            get(tap::async_item).post(tap::async_item),
        )
        .route("/tap/capabilities", get(tap::capabilities))
        .route("/tap/availability", get(tap::availability))
        .route("/tap/tables", get(tap::tables))
        .route("/tap/tables/{name}", get(tap::table))
        .route("/scs", get(scs::cone))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/healthz", get(health::readyz))
        .route("/metrics", get(metrics::metrics_text))
        .fallback(errors::not_found)
        .layer(axum::middleware::from_fn(crate::http::catch_panic))
        .layer(DefaultBodyLimit::max(sql::MAX_SQL_BYTES + 1))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
