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
use crate::query::{Limits, session};
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
    pub limits: Limits,
}

impl ServeOptions {
    /// Defaults for a catalog at `catalog` served on `addr`.
    pub fn new(catalog: impl Into<String>, addr: SocketAddr) -> Self {
        ServeOptions {
            catalog: catalog.into(),
            addr,
            refresh: Duration::from_secs(5),
            tables: Vec::new(),
            flight_addr: None,
            auth_token: None,
            limits: Limits {
                timeout: Some(Duration::from_secs(60)),
                memory: Some(1 << 30),
                max_rows: Some(1_000_000),
            },
        }
    }
}

/// What every request handler shares.
pub struct AppState {
    pub ctx: SessionContext,
    pub loc: Location,
    pub ready: AtomicBool,
    pub version: AtomicU64,
    pub limits: Limits,
    pub auth_token: Option<String>,
    /// TAP async (UWS) jobs.
    pub uws: http::tap::Jobs,
}

impl AppState {
    /// Whether a request's `Authorization` header carries the token (always, without one).
    pub fn authorized(&self, header: Option<&str>) -> bool {
        bearer_matches(self.auth_token.as_deref(), header)
    }
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
        let state = Arc::new(AppState {
            ctx,
            loc,
            ready: AtomicBool::new(false),
            version: AtomicU64::new(0),
            limits: opts.limits.clone(),
            auth_token: opts.auth_token.clone(),
            uws: Default::default(),
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
        let r = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await;
        refresher.abort();
        if let Some(f) = flight {
            let _ = f.await;
        }
        r.map_err(ServeError::Io)
    }
}
