//! `astropipe serve`: the catalog service.
//!
//! [`Server::build`] binds and loads the catalog, [`Server::run_until_stopped`] serves until
//! the shutdown future resolves (SIGTERM/Ctrl-C from `main`), so tests start the real server on
//! port 0. The HTTP surface (SQL, TAP, Cone Search, probes, metrics) is in [`http`]; Arrow
//! Flight SQL, on its own port when `--flight-addr` is given, in [`flight`].

pub mod flight;
pub mod http;
pub mod shutdown;

use crate::catalog::commit;
use crate::http::client::{ClientId, Slots};
use crate::http::conn::ConnLimits;
use crate::query::{Budget, Limits, session};
use crate::storage::{Location, StorageError};
use crate::telemetry::metrics;
use datafusion::prelude::SessionContext;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TAP async results directory {path}: {source}")]
    Results {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Settings of the catalog service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub catalog: String,
    pub addr: SocketAddr,
    /// How often to look for newly committed catalog versions.
    pub refresh: Duration,
    /// Extra tables, `NAME=URI`.
    pub tables: Vec<String>,
    /// Where Arrow Flight SQL listens, if at all.
    pub flight_addr: Option<SocketAddr>,
    /// The bearer token every query endpoint requires, if any.
    pub auth_token: Option<String>,
    /// What one query may use.
    pub limits: Limits,
    /// Memory all queries together may use (bytes).
    pub memory: usize,
    /// Spill bytes all queries together may write.
    pub spill: u64,
    /// Queries one client may run at once (its async TAP jobs wait for a free slot).
    pub client_queries: usize,
    /// Connection deadlines and caps.
    pub conn: ConnLimits,
    /// Async TAP jobs one client may keep, and where their results are written.
    pub tap: http::tap::TapLimits,
    /// Flight SQL prepared statements one client may keep open.
    pub prepared_per_client: usize,
}

impl ServeOptions {
    /// Defaults for a catalog at `catalog` served on `addr`.
    pub fn new(catalog: impl Into<String>, addr: SocketAddr) -> Self {
        let limits = Limits {
            timeout: Some(Duration::from_secs(60)),
            memory: Some(1 << 30),
            max_rows: Some(1_000_000),
            max_result_bytes: Some(1 << 30),
            spill_bytes: Some(1 << 30),
            ..Limits::default()
        };
        ServeOptions {
            catalog: catalog.into(),
            addr,
            refresh: Duration::from_secs(5),
            tables: Vec::new(),
            flight_addr: None,
            auth_token: None,
            conn: conn_limits_for(&limits, Vec::new()),
            limits,
            memory: default_total_memory(),
            spill: 4 << 30,
            client_queries: 4,
            tap: http::tap::TapLimits::default(),
            prepared_per_client: 64,
        }
    }
}

/// Half of the memory the process may use (its container's limit), at least 256 MiB.
pub fn default_total_memory() -> usize {
    let avail = crate::query::limits::available_memory().unwrap_or(4 << 30);
    ((avail / 2).max(256 << 20)).min(usize::MAX as u64) as usize
}

/// The connection deadlines of the catalog service: a request may take as long as a query
/// (or the longest UWS `WAIT`), plus time to send its response.
pub fn conn_limits_for(limits: &Limits, trusted: Vec<ipnet::IpNet>) -> ConnLimits {
    let query = limits.timeout.unwrap_or(Duration::from_secs(600));
    ConnLimits {
        request_timeout: query.max(http::tap::MAX_WAIT) + Duration::from_secs(30),
        trusted_proxies: Arc::new(trusted),
        ..ConnLimits::default()
    }
}

/// What every request handler shares.
pub struct AppState {
    pub ctx: SessionContext,
    pub loc: Location,
    pub ready: AtomicBool,
    pub version: AtomicU64,
    pub limits: Limits,
    /// The memory and spill budgets all queries draw from.
    pub budget: Arc<Budget>,
    pub auth_token: Option<String>,
    /// Queries each client runs at once.
    pub query_slots: Slots,
    pub conn: ConnLimits,
    /// When the catalog's store last answered (unix ms), for `/readyz` without a store call.
    pub store_ok_at: AtomicU64,
    pub refresh: Duration,
    /// TAP async (UWS) jobs.
    pub uws: http::tap::Jobs,
    pub prepared_per_client: usize,
}

impl AppState {
    /// Whether a request's `Authorization` header carries the token (always, without one).
    pub fn authorized(&self, header: Option<&str>) -> bool {
        bearer_matches(self.auth_token.as_deref(), header)
    }

    /// The client a request comes from (see [`ClientId`]).
    pub fn client(&self, peer: Option<SocketAddr>, headers: &axum::http::HeaderMap) -> ClientId {
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        ClientId::of_request(peer, headers, &self.conn.trusted_proxies)
    }

    /// Whether the catalog's store answered recently (checked by the refresher, not per call).
    pub fn store_reachable(&self) -> bool {
        let at = self.store_ok_at.load(Ordering::Acquire);
        let now = now_ms();
        at > 0
            && now.saturating_sub(at)
                <= (self.refresh * 3 + Duration::from_secs(10)).as_millis() as u64
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Whether an `Authorization` header carries `Bearer <token>` (always true without a token);
/// compared in constant time for the token's length. Shared by `serve` and `worker`.
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

impl AppState {
    /// Re-registers the tables when a newer version has been committed.
    pub async fn refresh(&self) -> Result<bool, ServeError> {
        let latest = commit::latest_version(&self.loc)
            .await
            .map_err(session::SessionError::from)?;
        self.store_ok_at.store(now_ms(), Ordering::Release);
        if latest == self.version.load(Ordering::Acquire) && self.ready.load(Ordering::Acquire) {
            return Ok(false);
        }
        let snap = commit::snapshot(&self.loc)
            .await
            .map_err(session::SessionError::from)?;
        session::register_snapshot(&self.ctx, &self.loc, &snap)?;
        self.version.store(snap.version, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        metrics().catalog_version.set(snap.version as i64);
        tracing::info!(version = snap.version, "catalog loaded");
        Ok(true)
    }
}

/// A bound, loaded server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    flight: Option<tokio::net::TcpListener>,
    state: Arc<AppState>,
    refresh: Duration,
}

impl Server {
    pub async fn build(opts: &ServeOptions) -> Result<Server, ServeError> {
        let loc = Location::open(&opts.catalog)?;
        let ctx = session::new_context(&loc)?;
        session::register_extra_tables(&ctx, &opts.tables).await?;
        let budget = Budget::new(opts.memory, opts.spill);
        let mut limits = opts.limits.clone();
        // One query never gets more than all of them together.
        limits.memory = limits.memory.map(|m| m.min(opts.memory));
        let state = Arc::new(AppState {
            ctx,
            loc,
            ready: AtomicBool::new(false),
            version: AtomicU64::new(0),
            limits,
            budget,
            auth_token: opts.auth_token.clone(),
            query_slots: Slots::new(opts.client_queries),
            conn: opts.conn.clone(),
            store_ok_at: AtomicU64::new(0),
            refresh: opts.refresh,
            uws: http::tap::Jobs::new(opts.tap.clone())?,
            prepared_per_client: opts.prepared_per_client,
        });
        state.refresh().await?;
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.addr.to_string(),
                source,
            })?;
        let flight =
            match opts.flight_addr {
                Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|source| {
                    ServeError::Bind {
                        addr: a.to_string(),
                        source,
                    }
                })?),
                None => None,
            };
        Ok(Server {
            listener,
            flight,
            state,
            refresh: opts.refresh,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where Flight SQL listens, when enabled.
    pub fn flight_addr(&self) -> Option<SocketAddr> {
        self.flight.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let state = self.state.clone();
        let every = self.refresh;
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.refresh().await {
                    tracing::warn!(error = %e, "catalog refresh failed");
                }
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let flight = self.flight.map(|l| {
            if let Ok(a) = l.local_addr() {
                tracing::info!(addr = %a, "serving Flight SQL");
            }
            let mut rx = stop_rx.clone();
            let state = self.state.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                if let Err(e) = flight::serve(state, l, stop).await {
                    tracing::error!(error = %e, "Flight SQL server failed");
                }
            })
        });
        let app = http::router(self.state.clone());
        tracing::info!(addr = %self.listener.local_addr()?, "serving");
        let stop = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let r = crate::http::conn::serve(
            self.listener,
            app,
            self.state.conn.clone(),
            stop,
            Duration::from_secs(30),
        )
        .await;
        refresher.abort();
        if let Some(f) = flight {
            let _ = f.await;
        }
        r.map_err(ServeError::Io)
    }
}
