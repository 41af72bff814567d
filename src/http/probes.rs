//! Probes: `/livez` (the process answers: no dependencies), and the shape of every readiness
//! answer (`/readyz`, `/healthz`): 200 `{"status": "ready"}` or 503, plus details only for a
//! caller that presented the service's token. Each service decides readiness from what it
//! already knows (no store call per probe).

use super::errors::ApiError;
use axum::Json;
use serde_json::{Value, json};

pub async fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A readiness answer: `details` (merged into the body) only go to an authorized caller.
pub fn ready(is_ready: bool, details: Option<Value>) -> Result<Json<Value>, ApiError> {
    if !is_ready {
        return Err(ApiError::not_ready("not ready"));
    }
    let mut body = json!({ "status": "ready" });
    if let (Some(Value::Object(d)), Some(b)) = (details, body.as_object_mut()) {
        b.extend(d);
    }
    Ok(Json(body))
}
