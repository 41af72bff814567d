//! `/tap/sync` (GET or POST): one query, answered in the request.

use super::{Jobs, SlotBy, execute, from_api, parse_query, read_request, uploads_of};
use crate::http::Peer;
use crate::service::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

pub async fn sync(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    peer: Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match read_request(raw.as_deref(), &headers, body).await {
        Ok(r) => r,
        Err(e) => return from_api(e),
    };
    let mut q = match parse_query(&state, &req.params) {
        Ok(q) => q,
        Err(e) => return from_api(e),
    };
    q.uploads = match uploads_of(&jobs.limits, &req).await {
        Ok(u) => u,
        Err(e) => return from_api(e),
    };
    let client = state.client(peer.0, &headers);
    match execute(&state, &jobs.limits, &q, SlotBy::Now(&client)).await {
        Ok(r) => r,
        Err(e) => from_api(e),
    }
}
