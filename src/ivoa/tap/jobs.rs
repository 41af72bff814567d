//! Async TAP jobs kept in the catalog's object store, so any replica of the service answers for
//! any job and a job outlives the process that ran it:
//!
//! ```text
//! _tap/jobs/<id>/job.json              who asked, when (written first)
//! _tap/jobs/<id>/events/<seq>.json     the job's state after each change (conditional create)
//! _tap/jobs/<id>/upload/<name>.xml     inline TAP_UPLOAD tables (VOTable), read when it runs
//! _tap/results/<id>                    the result, written as it streams
//! _tap/owners/<owner>/<id>             one marker per job of an owner (listing, per-owner cap)
//! _tap/expiry/<secs>-<id>              destruction times (the sweeper deletes what is due)
//! _tap/active/<id>                     queued or executing jobs (the sweeper checks leases)
//! ```
//!
//! The log is [`crate::storage::log`], as the worker's queue: every change appends the next
//! event with a conditional create, so two replicas racing (a RUN on one, an ABORT on the
//! other) cannot both win. A replica that runs a job holds a lease, renewed while it works;
//! when the lease lapses (the replica was killed) any replica's sweeper takes the job over
//! (up to [`MAX_ATTEMPTS`] runs) or ends it as ERROR with the reason — never stuck EXECUTING.

use super::{TapLimits, TapQuery, parse_query};
use crate::http::client::ClientId;
use crate::service::AppState;
use crate::storage::Location;
use crate::storage::log::{Log, LogError, valid_id};
use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs a job gets before it is ended as ERROR (its replica died each time).
pub const MAX_ATTEMPTS: u32 = 2;
/// How long a replica's claim on a job lasts without renewal.
const LEASE_S: f64 = 15.0;
/// How often a running job's lease is renewed.
const RENEW: Duration = Duration::from_secs(5);

/// UWS phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Phase {
    Pending,
    Queued,
    Executing,
    Completed,
    Error,
    Aborted,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::Queued => "QUEUED",
            Phase::Executing => "EXECUTING",
            Phase::Completed => "COMPLETED",
            Phase::Error => "ERROR",
            Phase::Aborted => "ABORTED",
        }
    }
    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::Pending,
            Phase::Queued,
            Phase::Executing,
            Phase::Completed,
            Phase::Error,
            Phase::Aborted,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }
    pub fn active(self) -> bool {
        matches!(self, Phase::Pending | Phase::Queued | Phase::Executing)
    }
    fn running(self) -> bool {
        matches!(self, Phase::Queued | Phase::Executing)
    }
}

/// What never changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    /// The owner: a client address or a token's hash.
    pub owner: String,
    /// Seconds since the epoch.
    pub created: f64,
}

/// A finished job's result object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultMeta {
    pub content_type: String,
    pub bytes: u64,
}

/// The job's state after a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobState {
    pub phase: Phase,
    pub at: f64,
    /// TAP parameters, names upper-cased (QUERY, LANG, MAXREC, RESPONSEFORMAT, UPLOAD, ...).
    pub params: BTreeMap<String, String>,
    /// Names of the stored upload tables.
    #[serde(default)]
    pub uploads: Vec<String>,
    pub destruction: f64,
    pub execution_duration: u64,
    #[serde(default)]
    pub runner: Option<String>,
    #[serde(default)]
    pub lease_until: Option<f64>,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub started: Option<f64>,
    #[serde(default)]
    pub ended: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub result: Option<ResultMeta>,
}

/// A job as read: its spec, its latest state and that state's sequence number.
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: JobSpec,
    pub seq: u64,
    pub state: JobState,
}

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("no async job {0:?}")]
    NotFound(String),
    #[error(
        "this client has {0} async jobs, its limit, none of them finished; delete or abort some first"
    )]
    ClientFull(usize),
    #[error("too many async jobs ({0}); try again later")]
    ServiceFull(usize),
    #[error("the job is {0}: {1}")]
    Conflict(&'static str, &'static str),
    #[error("the job kept changing; try again")]
    Busy,
}

/// Why a job's run ended in ERROR (its text is the job's error summary).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The query was refused or failed before its first byte (the service's own message).
    #[error("{0}")]
    Query(String),
    /// The query failed while its result was being written.
    #[error("the query failed: {0}")]
    Failed(String),
    #[error("the service's storage for async results is full; try again later")]
    StorageFull,
    #[error("cannot store the result: {0}")]
    Store(#[from] object_store::Error),
    #[error("cannot list the stored results: {0}")]
    Log(#[from] LogError),
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

pub fn to_time(secs: f64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0))
}

/// A path-safe key for an owner.
fn owner_key(owner: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(owner.as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The async jobs of one catalog's service (shared by its replicas through the store).
pub struct Jobs {
    log: Log,
    /// `_tap/` markers and results.
    tap: Log,
    pub limits: TapLimits,
    /// This process, in `runner` fields.
    replica: String,
    /// Jobs this process runs, to stop them at once on ABORT or DELETE.
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Jobs {
    pub fn new(loc: Location, limits: TapLimits) -> Self {
        Jobs {
            log: Log::new(loc.clone(), "_tap/jobs"),
            tap: Log::new(loc, "_tap"),
            limits,
            replica: uuid::Uuid::new_v4().simple().to_string(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// This replica's name in `runner` fields.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub async fn get(&self, id: &str) -> Result<Job, JobError> {
        if !valid_id(id) {
            return Err(JobError::NotFound(id.into()));
        }
        let spec: Option<JobSpec> = self.log.read_json(&format!("{id}/job.json")).await?;
        let Some(spec) = spec else {
            return Err(JobError::NotFound(id.into()));
        };
        let Some((seq, state)) = self.log.latest::<JobState>(id).await? else {
            return Err(JobError::NotFound(id.into()));
        };
        if state.destruction <= now() {
            return Err(JobError::NotFound(id.into()));
        }
        Ok(Job { spec, seq, state })
    }

    /// The stored VOTable of one upload table.
    pub async fn upload(&self, id: &str, name: &str) -> Result<Bytes, JobError> {
        let path = self.log.path(&format!("{id}/upload/{name}.xml"));
        Ok(self.log.loc.store.get(&path).await?.bytes().await?)
    }

    /// The jobs of `owner`, oldest first.
    pub async fn list(&self, owner: &str) -> Result<Vec<Job>, JobError> {
        let key = owner_key(owner);
        let mut out = Vec::new();
        for m in self.tap.list(&format!("owners/{key}")).await? {
            let Some(id) = m.location.filename() else {
                continue;
            };
            match self.get(id).await {
                Ok(j) if j.spec.owner == owner => out.push(j),
                Ok(_) => {}
                Err(JobError::NotFound(_)) => {
                    // Destroyed or half-created: its marker goes.
                    let _ = self.tap.delete(&format!("owners/{key}/{id}")).await;
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.spec.created.total_cmp(&b.spec.created));
        Ok(out)
    }

    /// Makes room for one more job of `owner` (its oldest finished job goes when it is at
    /// its cap).
    async fn make_room(&self, owner: &str) -> Result<(), JobError> {
        let mine = self.list(owner).await?;
        if mine.len() >= self.limits.jobs_per_client {
            match mine.iter().find(|j| !j.state.phase.active()) {
                Some(old) => self.delete(&old.spec.id).await?,
                None => return Err(JobError::ClientFull(mine.len())),
            }
        }
        let all = self.log.ids().await?.len();
        if all >= self.limits.max_jobs {
            self.sweep_expired().await?;
            if self.log.ids().await?.len() >= self.limits.max_jobs {
                return Err(JobError::ServiceFull(all));
            }
        }
        Ok(())
    }

    /// Records a new PENDING job with its parameters and upload tables.
    pub async fn create(
        &self,
        owner: &str,
        params: BTreeMap<String, String>,
        uploads: Vec<(String, Bytes)>,
    ) -> Result<Job, JobError> {
        self.make_room(owner).await?;
        let id = crate::catalog::commit::new_run_id();
        let t = now();
        let spec = JobSpec {
            id: id.clone(),
            owner: owner.to_string(),
            created: t,
        };
        self.log
            .create_json(&format!("{id}/job.json"), &spec)
            .await?;
        let mut names = Vec::new();
        for (name, bytes) in uploads {
            let path = self.log.path(&format!("{id}/upload/{name}.xml"));
            self.log
                .loc
                .store
                .put(&path, PutPayload::from(bytes))
                .await?;
            names.push(name);
        }
        let destruction = t + self.limits.pending_lifetime.as_secs_f64();
        let state = JobState {
            phase: Phase::Pending,
            at: t,
            params,
            uploads: names,
            destruction,
            execution_duration: super::EXECUTION_DURATION_S,
            runner: None,
            lease_until: None,
            attempt: 0,
            started: None,
            ended: None,
            error: None,
            result: None,
        };
        self.log.append(&id, 0, &state).await?;
        self.tap
            .create(&format!("owners/{}/{id}", owner_key(owner)), Vec::new())
            .await?;
        self.set_expiry(&id, None, destruction).await?;
        Ok(Job {
            spec,
            seq: 0,
            state,
        })
    }

    async fn set_expiry(&self, id: &str, old: Option<f64>, new: f64) -> Result<(), JobError> {
        self.tap
            .create(&format!("expiry/{:012}-{id}", new as u64), Vec::new())
            .await?;
        if let Some(o) = old
            && o as u64 != new as u64
        {
            self.tap
                .delete(&format!("expiry/{:012}-{id}", o as u64))
                .await?;
        }
        Ok(())
    }

    /// Appends a change computed from the latest state; None when `change` declines
    /// (returns None) for the state it sees. Retries when another replica changed it first.
    async fn change(
        &self,
        id: &str,
        change: impl Fn(&Job) -> Result<Option<JobState>, JobError>,
    ) -> Result<Option<Job>, JobError> {
        for _ in 0..16 {
            let job = self.get(id).await?;
            let Some(mut next) = change(&job)? else {
                return Ok(None);
            };
            next.at = now();
            if self.log.append(id, job.seq + 1, &next).await? {
                return Ok(Some(Job {
                    spec: job.spec,
                    seq: job.seq + 1,
                    state: next,
                }));
            }
        }
        Err(JobError::Busy)
    }

    /// Replaces parameters (and upload tables) of a PENDING job.
    pub async fn update_params(
        &self,
        id: &str,
        params: BTreeMap<String, String>,
        uploads: Vec<(String, Bytes)>,
    ) -> Result<Job, JobError> {
        for (name, bytes) in &uploads {
            let path = self.log.path(&format!("{id}/upload/{name}.xml"));
            self.log
                .loc
                .store
                .put(&path, PutPayload::from(bytes.clone()))
                .await?;
        }
        let names: Vec<String> = uploads.into_iter().map(|(n, _)| n).collect();
        self.change(id, |j| {
            if j.state.phase != Phase::Pending {
                return Err(JobError::Conflict(
                    j.state.phase.name(),
                    "parameters can only be changed while the job is PENDING",
                ));
            }
            let mut s = j.state.clone();
            for (k, v) in &params {
                s.params.insert(k.clone(), v.clone());
            }
            for n in &names {
                if !s.uploads.contains(n) {
                    s.uploads.push(n.clone());
                }
            }
            Ok(Some(s))
        })
        .await?
        .ok_or(JobError::Busy)
    }

    /// Sets the destruction time (at most the service's lifetime after creation).
    pub async fn set_destruction(&self, id: &str, at: f64) -> Result<Job, JobError> {
        let max = self.limits.lifetime.as_secs_f64();
        let old = self.get(id).await?.state.destruction;
        let job = self
            .change(id, |j| {
                let mut s = j.state.clone();
                s.destruction = at.clamp(now(), j.spec.created + max);
                Ok(Some(s))
            })
            .await?
            .ok_or(JobError::Busy)?;
        self.set_expiry(id, Some(old), job.state.destruction)
            .await?;
        Ok(job)
    }

    /// Sets the execution duration of a PENDING job (at most the service's).
    pub async fn set_execution_duration(&self, id: &str, secs: u64) -> Result<Job, JobError> {
        self.change(id, |j| {
            if j.state.phase != Phase::Pending {
                return Err(JobError::Conflict(
                    j.state.phase.name(),
                    "the execution duration can only be changed while the job is PENDING",
                ));
            }
            let mut s = j.state.clone();
            s.execution_duration = if secs == 0 {
                super::EXECUTION_DURATION_S
            } else {
                secs.min(super::EXECUTION_DURATION_S)
            };
            Ok(Some(s))
        })
        .await?
        .ok_or(JobError::Busy)
    }

    /// Queues a PENDING job on this replica and starts it.
    pub async fn run(self: &Arc<Self>, app: &Arc<AppState>, id: &str) -> Result<Job, JobError> {
        let max = self.limits.lifetime.as_secs_f64();
        let claimed = self
            .change(id, |j| {
                if j.state.phase != Phase::Pending {
                    return Ok(None);
                }
                let mut s = j.state.clone();
                s.phase = Phase::Queued;
                s.runner = Some(self.replica.clone());
                s.lease_until = Some(now() + LEASE_S);
                s.attempt = 1;
                // A started job lives the service's full lifetime.
                s.destruction = s.destruction.max(j.spec.created + max);
                Ok(Some(s))
            })
            .await?;
        match claimed {
            Some(job) => {
                self.tap.create(&format!("active/{id}"), Vec::new()).await?;
                self.set_expiry(id, None, job.state.destruction).await?;
                self.spawn(app.clone(), job.clone());
                Ok(job)
            }
            None => self.get(id).await,
        }
    }

    /// Aborts a job that has not finished.
    pub async fn abort(&self, id: &str) -> Result<Job, JobError> {
        let job = self
            .change(id, |j| {
                if !j.state.phase.active() {
                    return Ok(None);
                }
                let mut s = j.state.clone();
                s.phase = Phase::Aborted;
                s.ended = Some(now());
                s.runner = None;
                s.lease_until = None;
                Ok(Some(s))
            })
            .await?;
        self.stop_local(id);
        let _ = self.tap.delete(&format!("active/{id}")).await;
        match job {
            Some(j) => Ok(j),
            None => self.get(id).await,
        }
    }

    fn stop_local(&self, id: &str) {
        if let Some(h) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            h.abort();
        }
    }

    /// Deletes a job: stops it, removes its result, uploads, markers and record.
    pub async fn delete(&self, id: &str) -> Result<(), JobError> {
        let job = self.get(id).await;
        self.stop_local(id);
        let _ = self.tap.delete(&format!("results/{id}")).await;
        let _ = self.tap.delete(&format!("active/{id}")).await;
        self.log.purge(id, "job.json").await?;
        if let Ok(j) = job {
            let _ = self
                .tap
                .delete(&format!("owners/{}/{id}", owner_key(&j.spec.owner)))
                .await;
            let _ = self
                .tap
                .delete(&format!("expiry/{:012}-{id}", j.state.destruction as u64))
                .await;
            Ok(())
        } else {
            Err(JobError::NotFound(id.into()))
        }
    }

    /// The result object of a COMPLETED job, streamed.
    pub async fn result(
        &self,
        id: &str,
    ) -> Result<
        (
            ResultMeta,
            futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
        ),
        JobError,
    > {
        let job = self.get(id).await?;
        let Some(meta) = job.state.result.clone() else {
            return Err(JobError::Conflict(
                job.state.phase.name(),
                "the job has no result (yet)",
            ));
        };
        let got = self
            .tap
            .loc
            .store
            .get(&self.tap.path(&format!("results/{id}")))
            .await?;
        Ok((meta, got.into_stream()))
    }

    /// Deletes jobs whose destruction time has passed.
    pub async fn sweep_expired(&self) -> Result<usize, JobError> {
        let t = now() as u64;
        let mut n = 0;
        for m in self.tap.list("expiry").await? {
            let Some(name) = m.location.filename() else {
                continue;
            };
            let Some((secs, id)) = name.split_once('-') else {
                continue;
            };
            if secs.parse::<u64>().map_or(true, |s| s > t) {
                continue;
            }
            match self
                .log
                .read_json::<JobSpec>(&format!("{id}/job.json"))
                .await
            {
                Ok(Some(spec)) => {
                    let latest = self.log.latest::<JobState>(id).await?;
                    // Only if the job's current destruction is the marker's (it may have moved).
                    if latest.is_none_or(|(_, s)| s.destruction as u64 <= t) {
                        self.stop_local(id);
                        let _ = self.tap.delete(&format!("results/{id}")).await;
                        let _ = self.tap.delete(&format!("active/{id}")).await;
                        self.log.purge(id, "job.json").await?;
                        let _ = self
                            .tap
                            .delete(&format!("owners/{}/{id}", owner_key(&spec.owner)))
                            .await;
                        n += 1;
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
            self.tap.delete(&format!("expiry/{name}")).await?;
        }
        Ok(n)
    }

    /// Takes over (or ends) running jobs whose replica stopped renewing their lease.
    pub async fn sweep_leases(self: &Arc<Self>, app: &Arc<AppState>) -> Result<(), JobError> {
        for m in self.tap.list("active").await? {
            let Some(id) = m.location.filename().map(str::to_string) else {
                continue;
            };
            let job = match self.get(&id).await {
                Ok(j) => j,
                Err(JobError::NotFound(_)) => {
                    self.tap.delete(&format!("active/{id}")).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !job.state.phase.running() {
                self.tap.delete(&format!("active/{id}")).await?;
                continue;
            }
            let lapsed = job.state.lease_until.is_none_or(|t| t < now());
            if !lapsed {
                continue;
            }
            let me = self.replica.clone();
            let taken = self
                .change(&id, |j| {
                    let lapsed = j.state.lease_until.is_none_or(|t| t < now());
                    if !j.state.phase.running() || !lapsed {
                        return Ok(None);
                    }
                    let mut s = j.state.clone();
                    if s.attempt >= MAX_ATTEMPTS {
                        s.phase = Phase::Error;
                        s.ended = Some(now());
                        s.error = Some(format!(
                            "the service replica running this job stopped ({} attempts); submit it again",
                            s.attempt
                        ));
                        s.runner = None;
                        s.lease_until = None;
                    } else {
                        s.phase = Phase::Queued;
                        s.runner = Some(me.clone());
                        s.lease_until = Some(now() + LEASE_S);
                        s.attempt += 1;
                    }
                    Ok(Some(s))
                })
                .await?;
            if let Some(j) = taken {
                if j.state.phase == Phase::Queued {
                    tracing::warn!(job = %id, attempt = j.state.attempt, "taking over an async TAP job whose lease lapsed");
                    self.spawn(app.clone(), j);
                } else {
                    self.tap.delete(&format!("active/{id}")).await?;
                }
            }
        }
        Ok(())
    }

    fn spawn(self: &Arc<Self>, app: Arc<AppState>, job: Job) {
        let jobs = self.clone();
        let id = job.spec.id.clone();
        let handle = tokio::spawn(async move {
            let id = job.spec.id.clone();
            if let Err(e) = jobs.execute(&app, job).await {
                tracing::warn!(job = %id, error = %e, "async TAP job");
            }
            jobs.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, handle.abort_handle());
    }

    /// A change to a job this replica runs; None when it is no longer ours.
    async fn advance(&self, id: &str, f: impl Fn(&mut JobState)) -> Result<Option<Job>, JobError> {
        let me = self.replica.clone();
        self.change(id, |j| {
            if !j.state.phase.running() || j.state.runner.as_deref() != Some(me.as_str()) {
                return Ok(None);
            }
            let mut s = j.state.clone();
            f(&mut s);
            Ok(Some(s))
        })
        .await
    }

    /// Runs a job this replica has claimed (QUEUED), to COMPLETED or ERROR.
    async fn execute(self: &Arc<Self>, app: &Arc<AppState>, job: Job) -> Result<(), JobError> {
        let id = job.spec.id.clone();
        let params: super::Params = job.state.params.clone().into_iter().collect();
        let mut query = match parse_query(app, &params) {
            Ok(q) => q,
            Err(e) => return self.fail(&id, e.message).await,
        };
        for name in &job.state.uploads {
            match self.upload(&id, name).await {
                Ok(bytes) => query.uploads.push((name.clone(), bytes)),
                Err(e) => return self.fail(&id, format!("upload {name}: {e}")).await,
            }
        }
        // The owner's query slot (the job stays QUEUED until one is free).
        let slot = app
            .query_slots
            .acquire(&ClientId::from_stored(job.spec.owner.clone()))
            .await;
        let Some(_) = self
            .advance(&id, |s| {
                s.phase = Phase::Executing;
                s.started = Some(now());
                s.lease_until = Some(now() + LEASE_S);
            })
            .await?
        else {
            return Ok(()); // aborted or deleted meanwhile
        };
        // Renew the lease while the query runs; stop when the job is no longer ours.
        let (lost_tx, mut lost_rx) = tokio::sync::watch::channel(false);
        let renewer = {
            let jobs = self.clone();
            let id = id.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW).await;
                    match jobs
                        .advance(&id, |s| s.lease_until = Some(now() + LEASE_S))
                        .await
                    {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(JobError::NotFound(_)) => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(e) => tracing::warn!(job = %id, error = %e, "renewing a job's lease"),
                    }
                }
            })
        };
        let limits = crate::query::Limits {
            timeout: Some(
                app.limits
                    .timeout
                    .unwrap_or(Duration::MAX)
                    .min(Duration::from_secs(job.state.execution_duration)),
            ),
            ..app.limits.clone()
        };
        let run = self.run_to_store(app, &id, &query, &limits, slot);
        let outcome = tokio::select! {
            r = run => Some(r),
            _ = lost_rx.wait_for(|lost| *lost) => None,
        };
        renewer.abort();
        let Some(outcome) = outcome else {
            let _ = self.tap.delete(&format!("results/{id}")).await;
            return Ok(());
        };
        let done = match outcome {
            Ok(meta) => {
                self.advance(&id, |s| {
                    s.phase = Phase::Completed;
                    s.ended = Some(now());
                    s.result = Some(meta.clone());
                    s.runner = None;
                    s.lease_until = None;
                })
                .await?
            }
            Err(e) => {
                let message = e.to_string();
                let _ = self.tap.delete(&format!("results/{id}")).await;
                self.advance(&id, |s| {
                    s.phase = Phase::Error;
                    s.ended = Some(now());
                    s.error = Some(message.clone());
                    s.runner = None;
                    s.lease_until = None;
                })
                .await?
            }
        };
        if done.is_none() {
            let _ = self.tap.delete(&format!("results/{id}")).await;
        }
        self.tap.delete(&format!("active/{id}")).await?;
        Ok(())
    }

    async fn fail(&self, id: &str, message: String) -> Result<(), JobError> {
        self.advance(id, |s| {
            s.phase = Phase::Error;
            s.ended = Some(now());
            s.error = Some(message.clone());
            s.runner = None;
            s.lease_until = None;
        })
        .await?;
        self.tap.delete(&format!("active/{id}")).await?;
        Ok(())
    }

    /// Runs the query and streams its encoded result into `_tap/results/<id>`, within the
    /// service's result storage.
    async fn run_to_store(
        &self,
        app: &Arc<AppState>,
        id: &str,
        query: &TapQuery,
        limits: &crate::query::Limits,
        slot: crate::http::client::Slot,
    ) -> Result<ResultMeta, RunError> {
        let used: u64 = self.tap.list("results").await?.iter().map(|m| m.size).sum();
        let room = self.limits.results_bytes.saturating_sub(used);
        let resp = super::execute_with(app, &self.limits, query, super::SlotBy::Held(slot), limits)
            .await
            .map_err(|e| RunError::Query(e.message))?;
        let content_type = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(super::VOTABLE_CT)
            .to_string();
        let path = self.tap.path(&format!("results/{id}"));
        let upload = self.tap.loc.store.put_multipart(&path).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
        let mut body = resp.into_body().into_data_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(RunError::Failed(e.to_string()));
                }
            };
            bytes += chunk.len() as u64;
            if bytes > room {
                let _ = w.abort().await;
                crate::telemetry::metrics()
                    .refusals
                    .with_label_values(&["tap_results_bytes"])
                    .inc();
                return Err(RunError::StorageFull);
            }
            w.wait_for_capacity(2).await?;
            w.write(&chunk);
        }
        w.finish().await?;
        Ok(ResultMeta {
            content_type,
            bytes,
        })
    }

    /// Checks leases and destruction times every few seconds, for as long as the service runs.
    pub fn start_sweeper(self: &Arc<Self>, app: Arc<AppState>) -> tokio::task::JoinHandle<()> {
        let jobs = self.clone();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = jobs.sweep_leases(&app).await {
                    tracing::warn!(error = %e, "async TAP jobs: lease sweep");
                }
                tick += 1;
                if tick.is_multiple_of(30)
                    && let Err(e) = jobs.sweep_expired().await
                {
                    tracing::warn!(error = %e, "async TAP jobs: expiry sweep");
                }
            }
        })
    }
}
