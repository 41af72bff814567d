//! HTTP plumbing shared by `serve` and `worker`:
//!
//! - [`conn`]: serving connections with per-phase deadlines and a connection cap;
//! - [`client`]: who a request comes from (trusted proxies), the base URL it was sent to,
//!   per-client slots and rate limits;
//! - [`auth`]: the bearer token; [`errors`]: JSON errors with stable codes; [`probes`]:
//!   `/livez` and the readiness answer; [`metrics`]: `/metrics` and per-route request
//!   metrics; [`shutdown`]: SIGTERM / Ctrl-C;
//! - [`catch_panic`]: a handler that panics answers 500 for that request alone.

pub mod auth;
pub mod client;
pub mod conn;
pub mod errors;
pub mod metrics;
pub mod probes;
pub mod shutdown;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use std::net::SocketAddr;

/// Turns a panic inside a handler into a 500 for that request (the connection and the
/// process go on).
pub async fn catch_panic(req: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(p) => {
            let m = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tracing::error!(panic = %m, "a request handler panicked");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({
                    "code": "internal_error",
                    "message": "the request failed unexpectedly",
                })),
            )
                .into_response()
        }
    }
}

/// The address a request came from (set by [`conn::serve`]; None on other servers).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_router_goes_on() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let mut app: Router = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(catch_panic));
        let req = |p: &str| {
            http::Request::builder()
                .uri(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = tower_service::Service::call(&mut app, req("/boom"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = tower_service::Service::call(&mut app, req("/ok"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
