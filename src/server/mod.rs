//! `astropipe serve`: the catalog service.
//!
//! [`Server::build`] binds and loads the catalog, [`Server::run_until_stopped`] serves until
//! the shutdown future resolves (SIGTERM/Ctrl-C from `main`), so tests start the real server on
//! port 0. [`http`] routes every HTTP endpoint (its own `/v1/sql` and `/v1/tables`, the IVOA
//! protocols of [`crate::ivoa`], probes, metrics); Arrow Flight SQL, on its own port when
//! `--flight-addr` is given, is in [`flight`]. What they share is [`crate::service`].

pub mod flight;
pub mod http;

use crate::http::auth::Auth;
use crate::http::client::Slots;
use crate::http::conn::ConnLimits;
use crate::ivoa::tap::{Jobs, TapLimits};
use crate::query::hot::{HotData, HotEvent};
use crate::query::{Budget, Limits, session};
use crate::service::AppState;
use crate::storage::{Location, StorageError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
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
    #[error("ivoa.ObsCore: {0}")]
    ObsCore(datafusion::error::DataFusionError),
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
    /// Async TAP jobs one client may keep, results and uploads.
    pub tap: TapLimits,
    /// Where async TAP jobs live (default: the catalog's store).
    pub tap_jobs: Option<String>,
    /// The public base URL for links in results (default: http:// and the bound address).
    pub public_url: Option<String>,
    /// Flight SQL prepared statements one client may keep open.
    pub prepared_per_client: usize,
    /// Bytes of hot partitions' decoded columns kept in memory (0: off).
    pub hot_cache: u64,
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
            tap: TapLimits::default(),
            tap_jobs: None,
            public_url: None,
            prepared_per_client: 64,
            hot_cache: default_hot_cache(),
        }
    }
}

/// Half of the memory the process may use (its container's limit), at least 256 MiB.
pub fn default_total_memory() -> usize {
    let avail = crate::query::limits::available_memory().unwrap_or(4 << 30);
    ((avail / 2).max(256 << 20)).min(usize::MAX as u64) as usize
}

/// The hot-data cache's events as metrics.
fn observe_hot_data(e: HotEvent) {
    let m = crate::telemetry::metrics();
    match e {
        HotEvent::Hit => m.hot_cache_files.with_label_values(&["hit"]).inc(),
        HotEvent::Miss => m.hot_cache_files.with_label_values(&["miss"]).inc(),
        HotEvent::Load { bytes, held } => {
            m.hot_cache_loaded_bytes.inc_by(bytes);
            m.hot_cache_bytes.set(held as i64);
        }
    }
}

/// 256 MiB, or an eighth of the container's memory when that is less.
pub fn default_hot_cache() -> u64 {
    let avail = crate::query::limits::available_memory().unwrap_or(4 << 30);
    (avail / 8).min(256 << 20)
}

/// The connection deadlines of the catalog service: a request may take as long as a query
/// (or the longest UWS `WAIT`), plus time to send its response.
pub fn conn_limits_for(limits: &Limits, trusted: Vec<ipnet::IpNet>) -> ConnLimits {
    let query = limits.timeout.unwrap_or(Duration::from_secs(600));
    ConnLimits {
        request_timeout: query.max(crate::ivoa::tap::MAX_WAIT) + Duration::from_secs(30),
        trusted_proxies: Arc::new(trusted),
        ..ConnLimits::default()
    }
}

/// A bound, loaded server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    flight: Option<tokio::net::TcpListener>,
    state: Arc<AppState>,
    jobs: Arc<Jobs>,
    prepared_per_client: usize,
    refresh: Duration,
}

impl Server {
    pub async fn build(opts: &ServeOptions) -> Result<Server, ServeError> {
        crate::query::engine::start()?;
        let loc = Location::open(&opts.catalog)?;
        let hot = Arc::new(HotData::new(
            opts.hot_cache,
            Some(Box::new(observe_hot_data)),
        ));
        let ctx = session::new_context_with(&loc, None, hot)?;
        crate::ivoa::tap_schema::register(&ctx).map_err(|source| {
            session::SessionError::Register {
                table: "TAP_SCHEMA".into(),
                source,
            }
        })?;
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
            auth: Auth::new(opts.auth_token.as_deref(), "http"),
            query_slots: Slots::new(opts.client_queries),
            conn: opts.conn.clone(),
            store_ok_at: AtomicU64::new(0),
            refresh: opts.refresh,
        });
        let jobs_loc = match &opts.tap_jobs {
            Some(uri) => Location::open(uri)?,
            None => state.loc.clone(),
        };
        let jobs = Arc::new(Jobs::new(jobs_loc, opts.tap.clone()));
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.addr.to_string(),
                source,
            })?;
        let public = match &opts.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        crate::ivoa::obscore::register(&state.ctx, &public).map_err(ServeError::ObsCore)?;
        state.refresh().await?;
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
            jobs,
            prepared_per_client: opts.prepared_per_client,
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

    /// The async TAP jobs.
    pub fn jobs(&self) -> Arc<Jobs> {
        self.jobs.clone()
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
            let per_client = self.prepared_per_client;
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                if let Err(e) = flight::serve(state, per_client, l, stop).await {
                    tracing::error!(error = %e, "Flight SQL server failed");
                }
            })
        });
        let sweeper = self.jobs.start_sweeper(self.state.clone());
        let app = http::router(self.state.clone(), self.jobs.clone());
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
        sweeper.abort();
        if let Some(f) = flight {
            let _ = f.await;
        }
        r.map_err(ServeError::Io)
    }
}
