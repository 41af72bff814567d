//! API errors: a stable machine-readable `code`, a human `message`, and the status that fits
//! the cause (400 bad SQL, 401 missing or wrong token, 403 forbidden statement, 404 unknown
//! route, 406 unsupported format, 413 request too large, 422 query needs more memory than
//! allowed, 503 not ready, 504 query timed out, 500 otherwise).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
    }
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
}

impl From<crate::query::QueryError> for ApiError {
    fn from(e: crate::query::QueryError) -> Self {
        use crate::query::QueryError as Q;
        match e {
            Q::Forbidden(f) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden_statement", f.to_string())
            }
            Q::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m),
            Q::Execution(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "execution_error", m)
            }
            Q::Timeout(m) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", m),
            Q::ResourcesExhausted(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "resources_exhausted", m)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({ "code": self.code, "message": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// Fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}
