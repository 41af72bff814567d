//! Bearer-token auth, the same for `serve` and `worker`: with a token configured, every route
//! but the probes and `/metrics` needs `Authorization: Bearer TOKEN` (compared in constant time
//! for the token's length); without one, everything is open.

use super::errors::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Routes open without a token.
pub const OPEN_ROUTES: &[&str] = &["/livez", "/readyz", "/healthz", "/metrics"];

/// Whether an `Authorization` header carries `Bearer <token>` (always true without a token).
pub fn bearer_matches(token: Option<&str>, header: Option<&str>) -> bool {
    let Some(want) = token else {
        return true;
    };
    let Some(got) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The token a service requires, and the protocol label its refusals are counted under.
#[derive(Debug, Clone)]
pub struct Auth {
    pub token: Option<Arc<str>>,
    pub protocol: &'static str,
}

impl Auth {
    pub fn new(token: Option<&str>, protocol: &'static str) -> Self {
        Auth {
            token: token.map(Arc::from),
            protocol,
        }
    }

    /// Whether a request's `Authorization` header carries the token (always, without one).
    pub fn allows(&self, header: Option<&str>) -> bool {
        bearer_matches(self.token.as_deref(), header)
    }
}

/// Middleware: refuses requests without the token (401), except on the open routes.
pub async fn require_token(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    if OPEN_ROUTES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.allows(header) {
        next.run(req).await
    } else {
        crate::telemetry::metrics()
            .auth_failures
            .with_label_values(&[auth.protocol])
            .inc();
        ApiError::unauthorized().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(bearer_matches(None, None));
        assert!(bearer_matches(
            Some("secret-token-1234"),
            Some("Bearer secret-token-1234")
        ));
        assert!(!bearer_matches(
            Some("secret-token-1234"),
            Some("Bearer secret-token-1235")
        ));
        assert!(!bearer_matches(
            Some("secret-token-1234"),
            Some("Bearer secret")
        ));
        assert!(!bearer_matches(Some("secret-token-1234"), None));
    }
}
