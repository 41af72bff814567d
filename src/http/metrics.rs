//! `/metrics` (Prometheus text) and the middleware that counts and times every request by
//! route pattern.

use crate::telemetry::{metrics, render};
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

pub async fn metrics_text() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let t0 = Instant::now();
    let resp = next.run(req).await;
    let m = metrics();
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .inc();
    m.http_request_seconds
        .with_label_values(&[route.as_str()])
        .observe(t0.elapsed().as_secs_f64());
    resp
}
