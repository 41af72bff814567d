//! `/tap/sync` (GET or POST): one query, answered in the request.

use super::{SlotBy, execute, from_api, parse_params, parse_query};
use crate::http::Peer;
use crate::service::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

pub async fn sync(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse_params(raw.as_deref(), &headers, &body);
    let q = match parse_query(&state, &p) {
        Ok(q) => q,
        Err(e) => return from_api(e),
    };
    let client = state.client(peer.0, &headers);
    match execute(&state, &q, SlotBy::Now(&client)).await {
        Ok(r) => r,
        Err(e) => from_api(e),
    }
}
