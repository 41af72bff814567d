//! `astropipe worker`: the image-processor service. Jobs come in over HTTP ([`api`]), are
//! recorded durably in the catalog's object store ([`queue`]) before the 202 answer, and are
//! processed by this or any other replica: claimed with a lease, renewed while the ingest runs,
//! taken over by another worker when a killed worker's lease lapses. At most `concurrency`
//! jobs run at once. On SIGTERM the worker stops claiming, lets running jobs finish for up to
//! the grace period, then gives the rest back to the queue and exits.
//!
//! Inputs are local paths (as the pod sees them) or `s3://` object URIs or prefixes (read from
//! the store by the ingest) under the roots `--allow-input` names, or an uploaded FITS body
//! (streamed to the store, staged in the scratch directory while processed, deleted once the
//! job ends; the exposures' `file_uri` is that scratch path).
//!
//! Bounded against any client: submissions per client and minute, jobs waiting (in all and
//! per client), uploads at once per client and their size; a job ends failed after
//! `max_attempts` runs its worker did not survive, or when one run exceeds `job_timeout`.

pub mod api;
pub mod queue;

use crate::http::client::{RateLimiter, Slots};
use crate::http::conn::ConnLimits;
use crate::ingest::inputs::InputRoots;
use crate::ingest::{self, IngestOptions};
use crate::storage::Location;
use crate::telemetry::metrics;
use queue::{Job, Outcome, Queue, QueueError, State};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Where job inputs may come from (uploads are always allowed; nothing else without roots).
    pub allowed: Arc<InputRoots>,
    /// Largest uploaded body.
    pub max_upload_bytes: u64,
    /// Uploads one client may send at once.
    pub client_uploads: usize,
    /// Runs of one job (a worker dying on it counts) before it ends failed.
    pub max_attempts: u32,
    /// Longest one run of a job may take.
    pub job_timeout: Duration,
    /// Submissions one client may make per minute.
    pub submit_per_minute: u32,
    /// Jobs waiting at most (429 beyond), and per client.
    pub max_queued: usize,
    pub max_client_queued: usize,
    /// Finished jobs (and their records) are deleted after this long.
    pub retention: Duration,
    /// What an input file may claim.
    pub fits: crate::fits::FitsLimits,
    /// Connection deadlines and caps.
    pub conn: ConnLimits,
}

/// Body timeout of uploads (`--upload-timeout-seconds` default).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

fn is_upload(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::POST && parts.uri.path() == "/v1/jobs"
}

/// The worker's connection limits: uploads get their own, longer, body timeout.
pub fn conn_limits(upload_timeout: Duration) -> ConnLimits {
    ConnLimits {
        long_body: is_upload,
        long_body_timeout: upload_timeout,
        request_timeout: upload_timeout + Duration::from_secs(60),
        ..ConnLimits::default()
    }
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
            allowed: Arc::new(InputRoots::default()),
            max_upload_bytes: 2 << 30,
            client_uploads: 2,
            max_attempts: 3,
            job_timeout: Duration::from_secs(3600),
            submit_per_minute: 60,
            max_queued: 10_000,
            max_client_queued: 1_000,
            retention: Duration::from_secs(7 * 24 * 3600),
            fits: crate::fits::FitsLimits::default(),
            conn: conn_limits(UPLOAD_TIMEOUT),
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
    /// Submissions per client and minute.
    pub rate: RateLimiter,
    /// Uploads in progress per client.
    pub uploads: Slots,
    /// Jobs waiting, as of the last scan plus submissions since.
    pub depth: Mutex<Depth>,
    /// When the queue's store last answered a scan (unix ms), for `/readyz`.
    pub store_ok_at: std::sync::atomic::AtomicU64,
}

/// Jobs waiting, in all and by client.
#[derive(Debug, Default)]
pub struct Depth {
    pub total: usize,
    pub by_client: std::collections::HashMap<String, usize>,
}

impl WorkerState {
    /// Whether the queue's store answered lately (no store call per probe).
    pub fn store_reachable(&self) -> bool {
        let at = self.store_ok_at.load(Ordering::Acquire);
        let window = (self.opts.poll * 3 + Duration::from_secs(10)).as_millis() as u64;
        at > 0 && now_ms().saturating_sub(at) <= window
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
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
        let queue = Queue::new(loc);
        // Ready once the store has answered.
        queue.ping().await?;
        Ok(Worker {
            state: Arc::new(WorkerState {
                queue,
                rate: RateLimiter::new(opts.submit_per_minute),
                uploads: Slots::new(opts.client_uploads),
                depth: Mutex::new(Depth::default()),
                store_ok_at: std::sync::atomic::AtomicU64::new(now_ms()),
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
        let conn = state.opts.conn.clone();
        let http = tokio::spawn(crate::http::conn::serve(
            self.listener,
            app,
            conn,
            async move {
                let _ = http_stop.wait_for(|v| *v).await;
            },
            Duration::from_secs(10),
        ));
        shutdown.await;
        state.accepting.store(false, Ordering::Release);
        let _ = stop_tx.send(true);
        let _ = processor.await;
        let _ = http.await;
        Ok(())
    }
}

/// Claims and runs jobs until stopped; ends jobs whose workers kept dying on them, and
/// deletes finished jobs past their retention.
async fn process_loop(state: Arc<WorkerState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(state.opts.concurrency.max(1)));
    let mut running = tokio::task::JoinSet::new();
    let mut scans = 0u64;
    loop {
        if *stop.borrow() {
            break;
        }
        scans += 1;
        match state.queue.list().await {
            Ok(jobs) => {
                state.store_ok_at.store(now_ms(), Ordering::Release);
                let t = queue::now();
                let mut depth = Depth::default();
                for j in jobs.iter().filter(|j| j.claimable(t)) {
                    depth.total += 1;
                    if let Some(c) = &j.spec.client {
                        *depth.by_client.entry(c.clone()).or_default() += 1;
                    }
                }
                metrics().jobs_queue_depth.set(depth.total as i64);
                if let Ok(mut d) = state.depth.lock() {
                    *d = depth;
                }
                if scans % 60 == 1 {
                    expire(&state, &jobs).await;
                }
                for job in jobs.into_iter().filter(|j| j.claimable(t)) {
                    // A job claimed max_attempts times whose lease lapsed: its worker died on
                    // it each time (crash, out of memory, killed). It is not tried again.
                    if job.state() == State::Running && job.attempt() >= state.opts.max_attempts {
                        give_up(&state, &job).await;
                        continue;
                    }
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

/// Ends a job its workers kept dying on.
async fn give_up(state: &WorkerState, job: &Job) {
    let reason = format!(
        "abandoned after {} attempts: the worker processing it stopped each time before finishing (a crash, running out of memory, or a kill); it is not retried (--max-attempts)",
        job.attempt()
    );
    match state.queue.abandon(job, reason).await {
        Ok(true) => {
            tracing::warn!(job = %job.spec.id, attempts = job.attempt(), "job abandoned");
            metrics().jobs_finished.with_label_values(&["failed"]).inc();
            if job.spec.upload {
                let _ = state.queue.delete_upload(&job.spec.id).await;
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(job = %job.spec.id, error = %e, "cannot end the job"),
    }
}

/// Deletes finished jobs older than the retention period.
async fn expire(state: &WorkerState, jobs: &[Job]) {
    let cutoff = queue::now() - state.opts.retention.as_secs_f64();
    for j in jobs
        .iter()
        .filter(|j| j.finished_at().is_some_and(|t| t < cutoff))
    {
        if let Err(e) = state.queue.purge(&j.spec.id).await {
            tracing::warn!(job = %j.spec.id, error = %e, "cannot delete an expired job");
        }
    }
}

/// Runs one claimed job: renews the lease while the ingest works; records the outcome.
async fn run_job(state: Arc<WorkerState>, job: Job, stop: tokio::sync::watch::Receiver<bool>) {
    let id = job.spec.id.clone();
    tracing::info!(job = %id, inputs = job.spec.inputs.len(), attempt = job.attempt(), "job started");
    let t0 = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let work = {
        let st = state.clone();
        let job = job.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { execute(&st, &job, cancel).await })
    };
    let timeout = tokio::time::sleep(state.opts.job_timeout);
    tokio::pin!(timeout);
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
            r = &mut work => break Some(match r {
                Ok(Ok(v)) => Outcome::Succeeded(v),
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
                Err(e) => Outcome::Failed(JobError::Task(e.to_string()).to_string()),
            }),
            _ = &mut timeout => {
                // Stop the ingest before its next file, and record the failure now.
                cancel.store(true, Ordering::Release);
                work.abort();
                metrics().refusals.with_label_values(&["job_timeout"]).inc();
                break Some(Outcome::Failed(
                    JobError::Timeout(state.opts.job_timeout.as_secs()).to_string(),
                ));
            }
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
    let ok = matches!(outcome, Outcome::Succeeded(_));
    let finished = state.queue.finish(&current, outcome).await;
    if current.spec.upload && matches!(finished, Ok(true)) {
        // Processed: the upload is not kept.
        if let Err(e) = state.queue.delete_upload(&id).await {
            tracing::warn!(job = %id, error = %e, "cannot delete the upload");
        }
    }
    match finished {
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

/// Why a job's run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("scratch {path}: {source}")]
    Scratch {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upload: {0}")]
    Upload(QueueError),
    #[error(transparent)]
    NotAllowed(#[from] crate::ingest::inputs::NotAllowed),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("nothing could be ingested: {0}")]
    NothingIngested(String),
    #[error("timed out after {0} s (--job-timeout-seconds)")]
    Timeout(u64),
    #[error("the job's task failed: {0}")]
    Task(String),
}

/// Stages the inputs and ingests them.
async fn execute(
    state: &WorkerState,
    job: &Job,
    cancel: Arc<AtomicBool>,
) -> Result<serde_json::Value, JobError> {
    let t0 = Instant::now();
    let dir = state.opts.scratch.join(&job.spec.id);
    std::fs::create_dir_all(&dir).map_err(|source| JobError::Scratch {
        path: dir.display().to_string(),
        source,
    })?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut inputs = Vec::new();
    if job.spec.upload {
        let p = dir.join("upload.fits");
        state
            .queue
            .download_upload(&job.spec.id, &p)
            .await
            .map_err(JobError::Upload)?;
        inputs.push(p.display().to_string());
    } else {
        // Checked when the job was submitted; checked again here, since the roots may have
        // changed since (another worker, a restart with other flags).
        for input in &job.spec.inputs {
            inputs.push(state.opts.allowed.admit(input)?);
        }
    }
    metrics()
        .job_seconds
        .with_label_values(&["stage_inputs"])
        .observe(t0.elapsed().as_secs_f64());
    let t1 = Instant::now();
    let mut opts = IngestOptions::new(inputs, state.opts.catalog.clone());
    opts.fits = state.opts.fits;
    opts.cancel = Some(cancel);
    if !job.spec.upload {
        opts.allowed = Some(state.opts.allowed.clone());
    }
    let report = ingest::run(&opts).await?;
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
        Err(JobError::NothingIngested(
            report
                .failures
                .iter()
                .map(|f| format!("{}: {}", f.input, f.reason))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Removes a scratch directory when the job's work ends, however it ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
