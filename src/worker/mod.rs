//! `astropipe worker`: the image-processor service. Jobs come in over HTTP ([`api`]), are
//! recorded durably in the catalog's object store ([`queue`]) before the 202 answer, and are
//! processed by this or any other replica: claimed with a lease, renewed while the ingest runs,
//! taken over by another worker when a killed worker's lease lapses. At most `concurrency`
//! jobs run at once. On SIGTERM the worker stops claiming, lets running jobs finish for up to
//! the grace period, then gives the rest back to the queue and exits.
//!
//! Inputs are local paths (as the pod sees them), `s3://` object URIs or prefixes (read from
//! the store by the ingest), or an uploaded FITS body (staged in the scratch directory, `/tmp`
//! by default; the exposures' `file_uri` is that scratch path).

pub mod api;
pub mod queue;

use crate::ingest::{self, IngestOptions};
use crate::storage::Location;
use crate::telemetry::metrics;
use queue::{Job, Queue, QueueError, State};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub catalog: String,
    pub addr: SocketAddr,
    /// Jobs processed at once.
    pub concurrency: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often the queue is scanned for work.
    pub poll: Duration,
    /// How long SIGTERM waits for running jobs before releasing them.
    pub grace: Duration,
    /// Where downloads and uploads are staged.
    pub scratch: std::path::PathBuf,
    /// Name of this worker in leases (defaults to hostname-pid).
    pub owner: String,
    /// Require `Authorization: Bearer TOKEN` on the jobs API (probes and metrics stay open).
    pub auth_token: Option<String>,
}

impl WorkerOptions {
    pub fn new(catalog: impl Into<String>, addr: SocketAddr) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        WorkerOptions {
            catalog: catalog.into(),
            addr,
            concurrency: 1,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(25),
            scratch: std::env::temp_dir().join("astropipe-worker"),
            owner: format!("{host}-{}", std::process::id()),
            auth_token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the HTTP handlers and the processing loop share.
pub struct WorkerState {
    pub queue: Queue,
    pub opts: WorkerOptions,
    /// False once shutdown began (readiness fails, nothing new is claimed).
    pub accepting: AtomicBool,
}

pub struct Worker {
    state: Arc<WorkerState>,
    listener: tokio::net::TcpListener,
}

impl Worker {
    pub async fn build(opts: WorkerOptions) -> Result<Worker, WorkerError> {
        let loc = Location::open(&opts.catalog)?;
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| WorkerError::Bind {
                addr: opts.addr,
                source,
            })?;
        Ok(Worker {
            state: Arc::new(WorkerState {
                queue: Queue::new(loc),
                opts,
                accepting: AtomicBool::new(true),
            }),
            listener,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> Arc<WorkerState> {
        self.state.clone()
    }

    /// Serves the API and processes jobs until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), WorkerError> {
        let state = self.state.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let processor = tokio::spawn(process_loop(state.clone(), stop_rx.clone()));
        tracing::info!(addr = %self.listener.local_addr()?, owner = %state.opts.owner, "worker serving");
        let app = api::router(state.clone());
        let mut http_stop = stop_rx.clone();
        let http = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|v| *v).await;
                })
                .await
        });
        shutdown.await;
        state.accepting.store(false, Ordering::Release);
        let _ = stop_tx.send(true);
        let _ = processor.await;
        let _ = http.await;
        Ok(())
    }
}

/// Claims and runs jobs until stopped.
async fn process_loop(state: Arc<WorkerState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(state.opts.concurrency.max(1)));
    let mut running = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        match state.queue.list().await {
            Ok(jobs) => {
                let t = queue::now();
                let depth = jobs.iter().filter(|j| j.claimable(t)).count();
                metrics().jobs_queue_depth.set(depth as i64);
                for job in jobs.into_iter().filter(|j| j.claimable(t)) {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        break;
                    };
                    match state
                        .queue
                        .claim(&job, &state.opts.owner, state.opts.lease.as_secs_f64())
                        .await
                    {
                        Ok(Some(claimed)) => {
                            let st = state.clone();
                            let stop = stop.clone();
                            running.spawn(async move {
                                run_job(st, claimed, stop).await;
                                drop(permit);
                            });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, job = %job.spec.id, "claim failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the job queue"),
        }
        while running.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(state.opts.poll) => {}
            _ = stop.changed() => {}
        }
    }
    // Drain: running jobs get the grace period; then their tasks give them back to the queue.
    let deadline = tokio::time::sleep(state.opts.grace + Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = running.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                tracing::warn!(jobs = running.len(), "jobs still running after the grace period; their leases will lapse");
                break;
            }
        }
    }
}

/// Runs one claimed job: renews the lease while the ingest works; records the outcome.
async fn run_job(state: Arc<WorkerState>, job: Job, stop: tokio::sync::watch::Receiver<bool>) {
    let id = job.spec.id.clone();
    tracing::info!(job = %id, inputs = job.spec.inputs.len(), "job started");
    let t0 = Instant::now();
    let work = {
        let st = state.clone();
        let job = job.clone();
        tokio::spawn(async move { execute(&st, &job).await })
    };
    let mut current = job;
    let mut work = work;
    let renew_every = state.opts.lease / 3;
    let mut stop = stop;
    let mut release_at: Option<tokio::time::Instant> = None;
    let outcome = loop {
        let release = async {
            match release_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut work => break Some(r.unwrap_or_else(|e| Err(format!("the job's task failed: {e}")))),
            _ = tokio::time::sleep(renew_every) => {
                match state.queue.renew(&current, state.opts.lease.as_secs_f64()).await {
                    Ok(Some(j)) => current = j,
                    Ok(None) => {
                        tracing::warn!(job = %id, "the job changed while running (cancelled or taken over); its result will not be recorded");
                        break None;
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "lease renewal failed"),
                }
            }
            _ = release => {
                // Shutdown and the grace period is over: give the job back.
                match state.queue.release(&current).await {
                    Ok(_) => tracing::info!(job = %id, "released to the queue at shutdown"),
                    Err(e) => tracing::warn!(job = %id, error = %e, "release failed; the lease will lapse"),
                }
                work.abort();
                return;
            }
            _ = stop.changed(), if release_at.is_none() => {
                release_at = Some(tokio::time::Instant::now() + state.opts.grace);
            }
        }
    };
    let Some(outcome) = outcome else { return };
    let seconds = t0.elapsed().as_secs_f64();
    let ok = outcome.is_ok();
    match state.queue.finish(&current, outcome).await {
        Ok(true) => {
            let final_state = if ok { State::Succeeded } else { State::Failed };
            metrics()
                .jobs_finished
                .with_label_values(&[final_state.name()])
                .inc();
            metrics()
                .job_seconds
                .with_label_values(&["total"])
                .observe(seconds);
            tracing::info!(job = %id, state = %final_state, seconds, "job finished");
        }
        Ok(false) => tracing::warn!(job = %id, "the job changed before its result was recorded"),
        Err(e) => tracing::error!(job = %id, error = %e, "cannot record the job's result"),
    }
}

/// Stages the inputs and ingests them.
async fn execute(state: &WorkerState, job: &Job) -> Result<serde_json::Value, String> {
    let t0 = Instant::now();
    let dir = state.opts.scratch.join(&job.spec.id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("scratch {}: {e}", dir.display()))?;
    let mut inputs = Vec::new();
    for input in &job.spec.inputs {
        if job.spec.upload {
            let body = state
                .queue
                .upload(&job.spec.id)
                .await
                .map_err(|e| format!("upload: {e}"))?;
            let p = dir.join("upload.fits");
            std::fs::write(&p, &body).map_err(|e| format!("{}: {e}", p.display()))?;
            inputs.push(p.display().to_string());
        } else {
            inputs.push(input.trim_start_matches("file://").to_string());
        }
    }
    metrics()
        .job_seconds
        .with_label_values(&["stage_inputs"])
        .observe(t0.elapsed().as_secs_f64());
    let t1 = Instant::now();
    let opts = IngestOptions::new(inputs, state.opts.catalog.clone());
    let report = ingest::run(&opts).await.map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    metrics()
        .job_seconds
        .with_label_values(&["ingest"])
        .observe(t1.elapsed().as_secs_f64());
    let summary = serde_json::json!({
        "files": report.files,
        "files_ingested": report.files_ingested,
        "files_already_ingested": report.files_already_ingested,
        "files_failed": report.files_failed,
        "hdus": report.hdus,
        "sources": report.sources,
        "versions": report.versions,
        "failures": report.failures.iter().map(|f| format!("{}: {}", f.input, f.reason)).collect::<Vec<_>>(),
    });
    if report.success(false) {
        Ok(summary)
    } else {
        Err(format!(
            "nothing could be ingested: {}",
            report
                .failures
                .iter()
                .map(|f| format!("{}: {}", f.input, f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}
