//! The durable job queue, kept in the catalog's object store next to the data it feeds:
//!
//! ```text
//! <catalog>/_jobs/<id>/job.json              the request (inputs, creation time), written first
//! <catalog>/_jobs/<id>/upload.fits           an uploaded FITS body (upload jobs only)
//! <catalog>/_jobs/<id>/events/<seq:08>.json  state changes, each a conditional create
//! ```
//!
//! A job's state is its highest-numbered event (none yet: queued), kept by
//! [`crate::storage::log`]: every change is a conditional create of the next sequence number,
//! so of two processes racing for one change — two workers claiming, a cancel against a
//! completion — exactly one wins and the other re-reads. A claim is a `running` event with an owner and a lease deadline;
//! the owner renews it while it works; a `running` job whose lease has expired (its worker
//! was killed) may be claimed again by anyone. Processing is therefore at-least-once; the
//! catalog's content-hash commits make repeating an ingest a no-op.

use crate::storage::Location;
use crate::storage::log::{Log, LogError};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

const ROOT: &str = "_jobs";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("no job {0}")]
    NotFound(String),
    #[error("job {id} is {state}: {why}")]
    Conflict {
        id: String,
        state: State,
        why: &'static str,
    },
    #[error("the upload is larger than {limit} bytes (--max-upload-mb)")]
    UploadTooLarge { limit: u64 },
    #[error("the upload is not a FITS file (it must start with a SIMPLE card, or be gzip)")]
    NotFits,
    #[error("the upload stopped: {0}")]
    UploadBody(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        [
            State::Queued,
            State::Running,
            State::Succeeded,
            State::Failed,
            State::Cancelled,
        ]
        .into_iter()
        .find(|v| v.name().eq_ignore_ascii_case(s))
    }
    pub fn finished(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What was asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    /// Local paths or object URIs (`s3://...`); `upload.fits` for an uploaded body.
    pub inputs: Vec<String>,
    pub upload: bool,
    pub created_at: f64,
    /// Who submitted it (the client address), for per-client queue caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// One state change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub state: State,
    pub at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<f64>,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the run did (ingest report summary), on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// When this attempt started running (carried along on renewals and the final event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
}

/// How a run ended, as recorded in the job's events.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// What the run did (the ingest report's summary).
    Succeeded(serde_json::Value),
    /// Why it failed, for the user.
    Failed(String),
}

/// A job as the API shows it.
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: JobSpec,
    /// The latest event (None: queued, nothing happened yet).
    pub last: Option<Event>,
}

impl Job {
    pub fn state(&self) -> State {
        self.last.as_ref().map_or(State::Queued, |e| e.state)
    }
    fn next_seq(&self) -> u64 {
        self.last.as_ref().map_or(0, |e| e.seq + 1)
    }
    /// Runs started so far.
    pub fn attempt(&self) -> u32 {
        self.last.as_ref().map_or(0, |e| e.attempt)
    }
    /// When it reached its final state.
    pub fn finished_at(&self) -> Option<f64> {
        self.last
            .as_ref()
            .filter(|e| e.state.finished())
            .map(|e| e.at)
    }
    /// Whether a worker may take it now.
    pub fn claimable(&self, now: f64) -> bool {
        match &self.last {
            None => true,
            Some(e) => match e.state {
                State::Queued => true,
                State::Running => e.lease_until.is_some_and(|t| t < now),
                _ => false,
            },
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        let last = self.last.as_ref();
        serde_json::json!({
            "id": self.spec.id,
            "state": self.state().name(),
            "inputs": self.spec.inputs,
            "upload": self.spec.upload,
            "error": last.and_then(|e| e.error.clone()),
            "attempts": self.attempt(),
            "owner": last.and_then(|e| e.owner.clone()),
            "result": last.and_then(|e| e.result.clone()),
            "created_at": crate::catalog::commit::rfc3339(to_time(self.spec.created_at)),
            "started_at": last.and_then(|e| e.started_at).map(|t| crate::catalog::commit::rfc3339(to_time(t))),
            "finished_at": last.filter(|e| e.state.finished()).map(|e| crate::catalog::commit::rfc3339(to_time(e.at))),
            "seconds": last.filter(|e| e.state.finished()).and_then(|e| e.started_at.map(|s| e.at - s)),
        })
    }
}

fn to_time(secs: f64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0))
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A FITS file (one 2880-byte block at least, checked by the caller) or a gzip stream.
fn looks_like_fits(head: &[u8]) -> bool {
    head.starts_with(b"SIMPLE  =") || head.starts_with(&[0x1f, 0x8b])
}

/// The queue of one catalog.
#[derive(Clone)]
pub struct Queue {
    log: Log,
    loc: Location,
}

impl Queue {
    pub fn new(loc: Location) -> Self {
        Queue {
            log: Log::new(loc.clone(), ROOT),
            loc,
        }
    }

    fn path(&self, rel: &str) -> Path {
        self.log.path(rel)
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        crate::catalog::commit::new_run_id()
    }

    fn upload_path(&self, id: &str) -> Path {
        self.path(&format!("{id}/upload.fits"))
    }

    /// Streams an uploaded body into the store for job `id` (multipart, a few MiB in memory
    /// at a time), refusing a body that is not FITS or is larger than `max` bytes; nothing is
    /// left behind when it is refused or breaks off.
    pub async fn put_upload<S, E>(&self, id: &str, body: S, max: u64) -> Result<u64, QueueError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let upload = self.loc.store.put_multipart(&self.upload_path(id)).await?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, 5 << 20);
        let mut body = body;
        let mut total = 0u64;
        let mut head: Vec<u8> = Vec::new();
        let outcome: Result<(), QueueError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| QueueError::UploadBody(e.to_string()))?;
                total += chunk.len() as u64;
                if total > max {
                    return Err(QueueError::UploadTooLarge { limit: max });
                }
                if head.len() < 9 {
                    head.extend_from_slice(&chunk[..chunk.len().min(9 - head.len())]);
                    if head.len() == 9 && !looks_like_fits(&head) {
                        return Err(QueueError::NotFits);
                    }
                }
                w.wait_for_capacity(2).await?;
                w.write(&chunk);
            }
            let gzip = head.starts_with(&[0x1f, 0x8b]);
            if !looks_like_fits(&head) || (!gzip && total < 2880) {
                return Err(QueueError::NotFits);
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                w.finish().await?;
                Ok(total)
            }
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// Records a new job; it is durable when this returns. An upload job's body must have
    /// been stored under the same id first ([`Queue::put_upload`]).
    pub async fn submit(
        &self,
        id: String,
        inputs: Vec<String>,
        upload: bool,
        client: Option<String>,
    ) -> Result<Job, QueueError> {
        let spec = JobSpec {
            id: id.clone(),
            inputs: if upload {
                vec!["upload.fits".into()]
            } else {
                inputs
            },
            upload,
            created_at: now(),
            client,
        };
        self.log
            .create_json(&format!("{id}/job.json"), &spec)
            .await?;
        Ok(Job { spec, last: None })
    }

    /// Copies an upload job's body to a local file, streaming.
    pub async fn download_upload(
        &self,
        id: &str,
        dest: &std::path::Path,
    ) -> Result<(), QueueError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let got = self.loc.store.get(&self.upload_path(id)).await?;
        let mut stream = got.into_stream();
        let mut f = tokio::fs::File::create(dest)
            .await
            .map_err(|e| QueueError::UploadBody(e.to_string()))?;
        while let Some(chunk) = stream.next().await {
            f.write_all(&chunk?)
                .await
                .map_err(|e| QueueError::UploadBody(e.to_string()))?;
        }
        f.flush()
            .await
            .map_err(|e| QueueError::UploadBody(e.to_string()))?;
        Ok(())
    }

    /// Whether an upload job's body is still stored.
    pub async fn has_upload(&self, id: &str) -> Result<bool, QueueError> {
        match self.loc.store.head(&self.upload_path(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an upload job's body (once the job has ended).
    pub async fn delete_upload(&self, id: &str) -> Result<(), QueueError> {
        match self.loc.store.delete(&self.upload_path(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object of a job (its record, events and upload).
    pub async fn purge(&self, id: &str) -> Result<(), QueueError> {
        Ok(self.log.purge(id, "job.json").await?)
    }

    /// One job with its latest state.
    pub async fn get(&self, id: &str) -> Result<Job, QueueError> {
        if !crate::storage::log::valid_id(id) {
            return Err(QueueError::NotFound(id.into()));
        }
        let Some(spec) = self
            .log
            .read_json::<JobSpec>(&format!("{id}/job.json"))
            .await?
        else {
            return Err(QueueError::NotFound(id.into()));
        };
        let last = self.log.latest::<Event>(id).await?.map(|(_, e)| e);
        Ok(Job { spec, last })
    }

    /// Whether the store answers (one listing call).
    pub async fn ping(&self) -> Result<(), QueueError> {
        Ok(self.log.ping().await?)
    }

    /// Every job, oldest first.
    pub async fn list(&self) -> Result<Vec<Job>, QueueError> {
        let mut out = Vec::new();
        for id in self.log.ids().await? {
            match self.get(&id).await {
                Ok(j) => out.push(j),
                // A job directory whose job.json is not there yet (or an upload in flight).
                Err(QueueError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.spec.created_at.total_cmp(&b.spec.created_at));
        Ok(out)
    }

    /// Appends the event after `job`'s latest; false when someone else changed it first.
    async fn append(&self, job: &Job, event: Event) -> Result<bool, QueueError> {
        Ok(self.log.append(&job.spec.id, event.seq, &event).await?)
    }

    fn event(job: &Job, state: State) -> Event {
        let prev = job.last.as_ref();
        Event {
            seq: job.next_seq(),
            state,
            at: now(),
            owner: None,
            lease_until: None,
            attempt: job.attempt(),
            error: None,
            result: None,
            started_at: prev.and_then(|e| e.started_at),
        }
    }

    /// Claims a claimable job for `owner` with a lease; None when it was not claimable or
    /// another worker won.
    pub async fn claim(
        &self,
        job: &Job,
        owner: &str,
        lease: f64,
    ) -> Result<Option<Job>, QueueError> {
        let t = now();
        if !job.claimable(t) {
            return Ok(None);
        }
        let mut e = Self::event(job, State::Running);
        e.owner = Some(owner.into());
        e.lease_until = Some(t + lease);
        e.attempt = job.attempt() + 1;
        e.started_at = Some(t);
        if self.append(job, e.clone()).await? {
            Ok(Some(Job {
                spec: job.spec.clone(),
                last: Some(e),
            }))
        } else {
            Ok(None)
        }
    }

    /// Extends the lease of a job this owner runs; None when it changed meanwhile (cancelled,
    /// or taken over after the lease lapsed): the owner should stop claiming it as its own.
    pub async fn renew(&self, job: &Job, lease: f64) -> Result<Option<Job>, QueueError> {
        let mut e = Self::event(job, State::Running);
        let prev = job.last.as_ref();
        e.owner = prev.and_then(|p| p.owner.clone());
        e.lease_until = Some(now() + lease);
        if self.append(job, e.clone()).await? {
            Ok(Some(Job {
                spec: job.spec.clone(),
                last: Some(e),
            }))
        } else {
            Ok(None)
        }
    }

    /// Ends a run this owner holds: succeeded (with a result) or failed (with the reason).
    /// False when the job changed meanwhile (e.g. it was cancelled).
    pub async fn finish(&self, job: &Job, outcome: Outcome) -> Result<bool, QueueError> {
        let (state, result, error) = match outcome {
            Outcome::Succeeded(r) => (State::Succeeded, Some(r), None),
            Outcome::Failed(e) => (State::Failed, None, Some(e)),
        };
        let mut e = Self::event(job, state);
        e.owner = job.last.as_ref().and_then(|p| p.owner.clone());
        e.result = result;
        e.error = error;
        self.append(job, e).await
    }

    /// Ends, as failed with `reason`, a job whose worker kept dying on it (its lease lapsed
    /// with `attempt` runs spent). False when another worker changed it first.
    pub async fn abandon(&self, job: &Job, reason: String) -> Result<bool, QueueError> {
        let mut e = Self::event(job, State::Failed);
        e.error = Some(reason);
        self.append(job, e).await
    }

    /// Gives a running job back to the queue (graceful shutdown).
    pub async fn release(&self, job: &Job) -> Result<bool, QueueError> {
        self.append(job, Self::event(job, State::Queued)).await
    }

    /// Moves a job to `to` if its state allows, retrying on races.
    async fn transition(
        &self,
        id: &str,
        to: State,
        allowed: fn(State) -> bool,
        why: &'static str,
    ) -> Result<Job, QueueError> {
        for _ in 0..16 {
            let job = self.get(id).await?;
            if !allowed(job.state()) {
                return Err(QueueError::Conflict {
                    id: id.into(),
                    state: job.state(),
                    why,
                });
            }
            let e = Self::event(&job, to);
            if self.append(&job, e.clone()).await? {
                return Ok(Job {
                    spec: job.spec,
                    last: Some(e),
                });
            }
        }
        Err(QueueError::Conflict {
            id: id.into(),
            state: self.get(id).await?.state(),
            why: "it kept changing",
        })
    }

    /// Cancels a queued or running job (a running ingest finishes its current commit).
    pub async fn cancel(&self, id: &str) -> Result<Job, QueueError> {
        self.transition(
            id,
            State::Cancelled,
            |s| !s.finished(),
            "only queued or running jobs can be cancelled",
        )
        .await
    }

    /// Queues a failed or cancelled job again.
    pub async fn retry(&self, id: &str) -> Result<Job, QueueError> {
        self.transition(
            id,
            State::Queued,
            |s| matches!(s, State::Failed | State::Cancelled),
            "only failed or cancelled jobs can be retried",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claims_race_to_one_winner_and_leases_expire() {
        let loc = Location::open("memory://queue-test").unwrap();
        let q = Queue::new(loc);
        let job = q
            .submit(Queue::new_id(), vec!["a.fits".into()], false, None)
            .await
            .unwrap();
        assert_eq!(q.get(&job.spec.id).await.unwrap().state(), State::Queued);
        // Two workers with the same view: one claim wins.
        let (a, b) = tokio::join!(q.claim(&job, "w1", 60.0), q.claim(&job, "w2", 60.0));
        let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
        assert_eq!(winners, 1);
        let running = q.get(&job.spec.id).await.unwrap();
        assert_eq!(running.state(), State::Running);
        assert!(!running.claimable(now()));
        // A lapsed lease can be taken over; the old owner's renewal then loses.
        assert!(running.claimable(now() + 120.0));
        let stale = running.clone();
        let mut lapsed = running.clone();
        if let Some(e) = lapsed.last.as_mut() {
            e.lease_until = Some(0.0);
        }
        let taken = q.claim(&lapsed, "w3", 60.0).await.unwrap().unwrap();
        assert_eq!(taken.last.as_ref().unwrap().attempt, 2);
        assert!(q.renew(&stale, 60.0).await.unwrap().is_none());
        // Cancel wins over a completion that comes later.
        q.cancel(&job.spec.id).await.unwrap();
        assert!(
            !q.finish(&taken, Outcome::Succeeded(serde_json::json!({})))
                .await
                .unwrap()
        );
        assert_eq!(q.get(&job.spec.id).await.unwrap().state(), State::Cancelled);
        assert!(q.cancel(&job.spec.id).await.is_err());
        assert_eq!(q.retry(&job.spec.id).await.unwrap().state(), State::Queued);
        assert_eq!(q.list().await.unwrap().len(), 1);
        // A job whose worker died on it too often ends failed; purging removes it.
        let j = q.get(&job.spec.id).await.unwrap();
        assert!(q.abandon(&j, "died".into()).await.unwrap());
        assert_eq!(q.get(&job.spec.id).await.unwrap().state(), State::Failed);
        q.purge(&job.spec.id).await.unwrap();
        assert!(q.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn uploads_are_streamed_checked_and_capped() {
        let q = Queue::new(Location::open("memory://upload-test").unwrap());
        let chunks = |parts: Vec<Vec<u8>>| {
            futures::stream::iter(
                parts
                    .into_iter()
                    .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p))),
            )
        };
        let mut fits = b"SIMPLE  =".to_vec();
        fits.resize(2880 * 2, b' ');
        let id = Queue::new_id();
        let n = q
            .put_upload(
                &id,
                chunks(vec![fits[..5].to_vec(), fits[5..].to_vec()]),
                10_000,
            )
            .await
            .unwrap();
        assert_eq!(n, 5760);
        assert!(matches!(
            q.put_upload(&Queue::new_id(), chunks(vec![fits.clone()]), 100)
                .await,
            Err(QueueError::UploadTooLarge { limit: 100 })
        ));
        assert!(matches!(
            q.put_upload(&Queue::new_id(), chunks(vec![b"hello world".to_vec()]), 100)
                .await,
            Err(QueueError::NotFits)
        ));
        q.delete_upload(&id).await.unwrap();
    }
}
