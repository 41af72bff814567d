//! What every protocol of `serve` shares — HTTP SQL, TAP and Cone Search, Arrow Flight SQL:
//! the loaded catalog and its query context (refreshed when a new version is committed), the
//! limits and process-wide budgets of queries, the per-client query slots, the connection
//! settings (trusted proxies), and ([`respond`]) a query's result as an HTTP response.

pub mod respond;

use crate::catalog::commit;
use crate::http::auth::Auth;
use crate::http::client::{ClientId, Slot, Slots};
use crate::http::conn::ConnLimits;
use crate::query::{Budget, Limits, session};
use crate::storage::Location;
use crate::telemetry::metrics;
use datafusion::prelude::SessionContext;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The state every request handler of `serve` shares.
pub struct AppState {
    pub ctx: SessionContext,
    pub loc: Location,
    pub ready: AtomicBool,
    pub version: AtomicU64,
    pub limits: Limits,
    /// The memory and spill budgets all queries draw from.
    pub budget: Arc<Budget>,
    pub auth: Auth,
    /// Queries each client runs at once.
    pub query_slots: Slots,
    pub conn: ConnLimits,
    /// When the catalog's store last answered (unix ms), for `/readyz` without a store call.
    pub store_ok_at: AtomicU64,
    pub refresh: Duration,
}

impl AppState {
    /// Whether a request's `Authorization` header carries the token (always, without one).
    pub fn authorized(&self, header: Option<&str>) -> bool {
        self.auth.allows(header)
    }

    /// The client a request comes from (see [`ClientId`]).
    pub fn client(&self, peer: Option<SocketAddr>, headers: &axum::http::HeaderMap) -> ClientId {
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        ClientId::of_request(peer, headers, &self.conn.trusted_proxies)
    }

    /// One of `client`'s query slots, or [`AllSlotsTaken`].
    pub fn query_slot(&self, client: &ClientId) -> Result<Slot, AllSlotsTaken> {
        self.query_slots.try_acquire(client).ok_or_else(|| {
            metrics()
                .refusals
                .with_label_values(&["client_queries"])
                .inc();
            AllSlotsTaken(self.query_slots.per_client())
        })
    }

    /// Whether the catalog is loaded and its store answered the refresher lately (no store
    /// call per probe).
    pub fn is_ready(&self) -> bool {
        let at = self.store_ok_at.load(Ordering::Acquire);
        let window = (self.refresh * 3 + Duration::from_secs(10)).as_millis() as u64;
        self.ready.load(Ordering::Acquire) && at > 0 && now_ms().saturating_sub(at) <= window
    }

    /// Re-registers the tables when a newer version has been committed.
    pub async fn refresh(&self) -> Result<bool, session::SessionError> {
        let latest = commit::latest_version(&self.loc).await?;
        self.store_ok_at.store(now_ms(), Ordering::Release);
        if latest == self.version.load(Ordering::Acquire) && self.ready.load(Ordering::Acquire) {
            return Ok(false);
        }
        let snap = commit::snapshot(&self.loc).await?;
        session::register_snapshot(&self.ctx, &self.loc, &snap)?;
        session::forget_unlisted_files(&self.ctx);
        metrics()
            .hot_cache_bytes
            .set(session::hot_data(&self.ctx).used() as i64);
        self.version.store(snap.version, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        metrics().catalog_version.set(snap.version as i64);
        tracing::info!(version = snap.version, "catalog loaded");
        Ok(true)
    }
}

/// A client already runs as many queries as it may.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this client already runs {0} queries; wait for one to finish (--max-client-queries)")]
pub struct AllSlotsTaken(pub usize);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
