//! Every HTTP route of `serve`, one file per endpoint group:
//!
//! | route | handlers |
//! | --- | --- |
//! | `POST /v1/sql` | [`sql`] |
//! | `GET /v1/tables`, `GET /v1/tables/{name}` | [`tables`] |
//! | `GET|POST /tap/sync` | [`crate::ivoa::tap::sync`] |
//! | `/tap/async[/{id}[/...]]` | [`crate::ivoa::tap::uws`] |
//! | `GET /tap/capabilities`, `/tap/availability`, `/tap/tables[/{name}]`, `/tap/examples` | [`crate::ivoa::tap::vosi`] |
//! | `GET /scs?RA=&DEC=&SR=`, `GET /scs/capabilities`, `/scs/availability` | [`crate::ivoa::scs`] |
//! | `GET|POST /sia/query`, `GET /sia/capabilities`, `/sia/availability` | [`crate::ivoa::sia`] |
//! | `GET /v1/exposures/{id}/file` | [`exposures`] |
//! | `GET /livez`, `/readyz`, `/healthz` | [`crate::http::probes`] |
//! | `GET /metrics` | [`crate::http::metrics`] |
//!
//! Errors are JSON `{"code", "message"}` ([`crate::http::errors`]); TAP, SIA and Cone Search
//! answer VOTable error documents. Every response names the server (`Server: astropipe/x.y`).
//! Request bodies are capped at 1 MiB, TAP's at the upload limit plus 1 MiB.

pub mod exposures;
pub mod sql;
pub mod tables;

use crate::http::auth::require_token;
use crate::http::errors::ApiError;
use crate::ivoa::tap::{self, Jobs};
use crate::ivoa::{scs, sia};
use crate::service::AppState;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The router's state: the service's and the async TAP jobs' (each handler takes what it
/// needs of it).
#[derive(Clone)]
pub struct Routes {
    pub app: Arc<AppState>,
    pub jobs: Arc<Jobs>,
}

impl FromRef<Routes> for Arc<AppState> {
    fn from_ref(r: &Routes) -> Self {
        r.app.clone()
    }
}

impl FromRef<Routes> for Arc<Jobs> {
    fn from_ref(r: &Routes) -> Self {
        r.jobs.clone()
    }
}

/// Ready when the catalog is loaded and its store answered lately; the catalog and version
/// only for a caller with the token.
async fn readyz(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let details = (state.auth.token.is_some() && state.authorized(header)).then(|| {
        json!({
            "catalog": state.loc.uri,
            "version": state.version.load(Ordering::Acquire),
        })
    });
    crate::http::probes::ready(state.is_ready(), details)
}

/// `Server: astropipe/<version>` on every response (TAP validators ask for it).
async fn server_header(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        axum::http::header::SERVER,
        axum::http::HeaderValue::from_static(concat!("astropipe/", env!("CARGO_PKG_VERSION"))),
    );
    r
}

pub fn router(app: Arc<AppState>, jobs: Arc<Jobs>) -> Router {
    let auth = app.auth.clone();
    let tap_body = jobs.limits.upload_bytes as usize + (1 << 20);
    let tap = Router::new()
        .route("/tap/sync", get(tap::sync::sync).post(tap::sync::sync))
        .route("/tap/async", get(tap::uws::list).post(tap::uws::create))
        .route(
            "/tap/async/{id}",
            get(tap::uws::job).post(tap::uws::job).delete(tap::uws::job),
        )
        .route("/tap/async/{id}/results/result", get(tap::uws::result))
        .route(
            "/tap/async/{id}/{item}",
            get(tap::uws::item).post(tap::uws::item),
        )
        .route("/sia/query", get(sia::query).post(sia::query))
        .layer(DefaultBodyLimit::max(tap_body));
    Router::new()
        .route("/v1/sql", post(sql::post_sql))
        .route("/v1/tables", get(tables::list))
        .route("/v1/tables/{name}", get(tables::describe))
        .route("/v1/tables/{name}/moc", get(tables::moc))
        .route("/v1/exposures/{id}/file", get(exposures::file))
        .route("/tap/capabilities", get(tap::vosi::capabilities))
        .route("/tap/availability", get(tap::vosi::availability))
        .route("/tap/tables", get(tap::vosi::tables))
        .route("/tap/tables/{name}", get(tap::vosi::table))
        .route("/tap/examples", get(tap::vosi::examples))
        .route("/sia/capabilities", get(sia::capabilities))
        .route("/sia/availability", get(tap::vosi::availability))
        .route("/scs", get(scs::cone))
        .route("/scs/capabilities", get(scs::capabilities))
        .route("/scs/availability", get(tap::vosi::availability))
        .route("/livez", get(crate::http::probes::livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(readyz))
        .route("/metrics", get(crate::http::metrics::metrics_text))
        .merge(tap)
        .fallback(crate::http::errors::not_found)
        .layer(axum::middleware::from_fn(crate::http::catch_panic))
        .layer(DefaultBodyLimit::max(sql::MAX_SQL_BYTES + 1))
        .layer(axum::middleware::from_fn_with_state(auth, require_token))
        .layer(axum::middleware::from_fn(crate::http::metrics::track))
        .layer(axum::middleware::map_response(server_header))
        .with_state(Routes { app, jobs })
}
