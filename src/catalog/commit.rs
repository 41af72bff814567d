//! The commit log: how increments become visible, atomically.
//!
//! Every change (an ingest increment, a compaction, a reprocessing) writes new, uniquely named
//! files first and then one commit record `_commits/<version>.json`, created with a
//! conditional put (`PutMode::Create`): two writers can never claim the same version, and a
//! reader sees a change exactly when its record exists. Files without a record (a crash before
//! the commit) are invisible and are garbage-collected by `compact`.
//!
//! A record lists the files it adds and removes, the inputs (content hashes) it covers, and,
//! for compactions, the HATS generation it makes current. `compact` also writes checkpoints
//! (`_commits/<version>.checkpoint.json`, the whole snapshot) so readers do not replay the
//! full log.

use crate::storage::Location;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const COMMITS_DIR: &str = "_commits";

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("catalog {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("catalog {uri}: commit record {path} is corrupt: {message}")]
    Corrupt {
        uri: String,
        path: String,
        message: String,
    },
    #[error(
        "catalog {uri}: the next version was taken by another writer {attempts} times in a row"
    )]
    Contended { uri: String, attempts: usize },
}

fn default_kind() -> String {
    "data".into()
}

/// A file of a table, relative to the catalog root. `kind` is `data` (rows of the table) or
/// `meta` (HATS metadata: properties, partition_info.csv, _metadata, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The `[min, max]` of `_healpix_29` over the file's rows (sources only; absent when the
    /// file has no positioned row), so readers skip files outside a region unopened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healpix: Option<[i64; 2]>,
}

impl FileEntry {
    pub fn data(table: &str, path: String, rows: u64, bytes: u64) -> Self {
        FileEntry {
            table: table.into(),
            path,
            rows,
            bytes,
            kind: default_kind(),
            healpix: None,
        }
    }

    /// With the `[min, max]` of `_healpix_29` of its rows.
    pub fn with_healpix(mut self, range: Option<[i64; 2]>) -> Self {
        self.healpix = range;
        self
    }
    pub fn meta(table: &str, path: String, bytes: u64) -> Self {
        FileEntry {
            table: table.into(),
            path,
            rows: 0,
            bytes,
            kind: "meta".into(),
            healpix: None,
        }
    }
    pub fn is_data(&self) -> bool {
        self.kind == "data"
    }
}

/// An input file whose HDUs a change holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEntry {
    pub sha256: String,
    pub uri: String,
    pub exposure_ids: Vec<i64>,
}

/// The HATS generation written by a compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Directory of the sources HATS catalog, relative to `sources/`.
    pub sources_dir: String,
    /// Directory of its margin catalog, relative to `sources/`.
    pub margin_dir: Option<String>,
    pub partitions: usize,
    pub max_order: u8,
    /// Threshold of the margin cache, arcseconds.
    #[serde(default)]
    pub margin_arcsec: Option<f64>,
}

/// One commit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub version: u64,
    pub run_id: String,
    pub created_at: String,
    pub pipeline_version: String,
    /// `ingest`, `compact` or `reprocess`.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub add: Vec<FileEntry>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub inputs: Vec<InputEntry>,
    #[serde(default)]
    pub generation: Option<Generation>,
}

/// The state of the catalog at one version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u64,
    /// Live files by table.
    pub files: BTreeMap<String, Vec<FileEntry>>,
    /// Committed inputs by content hash.
    pub inputs: HashMap<String, InputEntry>,
    /// The current HATS generation, if the catalog was ever compacted.
    #[serde(default)]
    pub generation: Option<Generation>,
    /// When each removed file stopped being live (RFC 3339), for garbage collection.
    #[serde(default)]
    pub removed_at: HashMap<String, String>,
}

impl Snapshot {
    /// Live data files of a table.
    pub fn files_of(&self, table: &str) -> Vec<&FileEntry> {
        self.files
            .get(table)
            .map(|v| v.iter().filter(|f| f.is_data()).collect())
            .unwrap_or_default()
    }

    pub fn rows_of(&self, table: &str) -> u64 {
        self.files_of(table).iter().map(|f| f.rows).sum()
    }

    /// Every live path (data and metadata).
    pub fn live_paths(&self) -> std::collections::HashSet<&str> {
        self.files
            .values()
            .flatten()
            .map(|f| f.path.as_str())
            .collect()
    }

    pub fn is_live(&self, path: &str) -> bool {
        self.files.values().flatten().any(|f| f.path == path)
    }

    pub fn apply(&mut self, c: &CommitRecord) {
        self.version = c.version;
        for r in &c.remove {
            for files in self.files.values_mut() {
                files.retain(|f| &f.path != r);
            }
            self.removed_at.insert(r.clone(), c.created_at.clone());
        }
        for a in &c.add {
            self.files
                .entry(a.table.clone())
                .or_default()
                .push(a.clone());
            self.removed_at.remove(&a.path);
        }
        for i in &c.inputs {
            self.inputs.insert(i.sha256.clone(), i.clone());
        }
        if c.generation.is_some() {
            self.generation = c.generation.clone();
        }
    }
}

fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

fn checkpoint_name(version: u64) -> String {
    format!("{version:020}.checkpoint.json")
}

fn store_err(loc: &Location) -> impl Fn(object_store::Error) -> CommitError + '_ {
    move |source| CommitError::Store {
        uri: loc.uri.clone(),
        source,
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    loc: &Location,
    path: &object_store::path::Path,
) -> Result<T, CommitError> {
    let bytes = loc
        .store
        .get(path)
        .await
        .map_err(store_err(loc))?
        .bytes()
        .await
        .map_err(store_err(loc))?;
    serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt {
        uri: loc.uri.clone(),
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// Versions of the commit records and checkpoints present.
async fn list_log(loc: &Location) -> Result<(Vec<u64>, Vec<u64>), CommitError> {
    let prefix = loc.path(COMMITS_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(store_err(loc))?;
    let (mut commits, mut checkpoints) = (Vec::new(), Vec::new());
    for m in metas {
        let Some(name) = m.location.filename() else {
            continue;
        };
        if let Some(v) = name
            .strip_suffix(".checkpoint.json")
            .and_then(|v| v.parse::<u64>().ok())
        {
            checkpoints.push(v);
        } else if let Some(v) = name
            .strip_suffix(".json")
            .and_then(|v| v.parse::<u64>().ok())
        {
            commits.push(v);
        }
    }
    commits.sort_unstable();
    checkpoints.sort_unstable();
    Ok((commits, checkpoints))
}

/// Reads every commit record, in version order.
pub async fn read_log(loc: &Location) -> Result<Vec<CommitRecord>, CommitError> {
    let (commits, _) = list_log(loc).await?;
    let mut out = Vec::with_capacity(commits.len());
    for v in commits {
        out.push(get_json(loc, &loc.path(&format!("{COMMITS_DIR}/{}", commit_name(v)))).await?);
    }
    Ok(out)
}

/// The latest snapshot: the newest checkpoint, then the commits after it.
pub async fn snapshot(loc: &Location) -> Result<Snapshot, CommitError> {
    let (commits, checkpoints) = list_log(loc).await?;
    let mut s = match checkpoints.last() {
        Some(&v) => {
            get_json(
                loc,
                &loc.path(&format!("{COMMITS_DIR}/{}", checkpoint_name(v))),
            )
            .await?
        }
        None => Snapshot::default(),
    };
    let from = s.version;
    for v in commits.into_iter().filter(|&v| v > from) {
        let c: CommitRecord =
            get_json(loc, &loc.path(&format!("{COMMITS_DIR}/{}", commit_name(v)))).await?;
        s.apply(&c);
    }
    Ok(s)
}

/// Writes a checkpoint of `snap` (idempotent; a lost race means an identical one exists).
pub async fn write_checkpoint(loc: &Location, snap: &Snapshot) -> Result<(), CommitError> {
    let path = loc.path(&format!("{COMMITS_DIR}/{}", checkpoint_name(snap.version)));
    let body = serde_json::to_vec(snap).map_err(|e| CommitError::Corrupt {
        uri: loc.uri.clone(),
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc
        .store
        .put_opts(&path, PutPayload::from(body), opts)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(source) => Err(CommitError::Store {
            uri: loc.uri.clone(),
            source,
        }),
    }
}

/// Tries to create the commit record of `record.version`. Returns `false` when another writer
/// already holds that version (the caller re-reads the snapshot and tries the next one).
pub async fn try_put(loc: &Location, record: &CommitRecord) -> Result<bool, CommitError> {
    let name = commit_name(record.version);
    let body = serde_json::to_vec_pretty(record).map_err(|e| CommitError::Corrupt {
        uri: loc.uri.clone(),
        path: name.clone(),
        message: e.to_string(),
    })?;
    let path = loc.path(&format!("{COMMITS_DIR}/{name}"));
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc
        .store
        .put_opts(&path, PutPayload::from(body), opts)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(source) => Err(CommitError::Store {
            uri: loc.uri.clone(),
            source,
        }),
    }
}

/// The latest committed version, from a listing only: cheap enough to poll.
pub async fn latest_version(loc: &Location) -> Result<u64, CommitError> {
    let (commits, _) = list_log(loc).await?;
    Ok(commits.last().copied().unwrap_or(0))
}

/// The current UTC time as RFC 3339 (seconds precision).
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// A time as UTC RFC 3339 (seconds precision).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seconds since the Unix epoch of an RFC 3339 time (as written by [`now_rfc3339`]).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// A new unique run id: seconds since the epoch and a random UUID.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_secs(), uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let s = now_rfc3339();
        let t = parse_rfc3339(&s).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((t - now).abs() <= 2, "{s}");
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86_401));
    }

    #[test]
    fn times_are_written_as_rfc3339_utc_seconds() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_504_000);
        assert_eq!(rfc3339(t), "2025-11-30T12:00:00Z");
        assert_eq!(
            parse_rfc3339("2025-11-30T13:00:00+01:00"),
            Some(1_764_504_000)
        );
        assert_eq!(parse_rfc3339("2025-11-30 12:00"), None);
    }

    fn record(version: u64, add: &[&str], remove: &[&str]) -> CommitRecord {
        CommitRecord {
            version,
            run_id: format!("run{version}"),
            created_at: now_rfc3339(),
            pipeline_version: "test".into(),
            operation: "ingest".into(),
            add: add
                .iter()
                .map(|p| FileEntry::data("sources", p.to_string(), version, 10))
                .collect(),
            remove: remove.iter().map(|p| p.to_string()).collect(),
            inputs: vec![InputEntry {
                sha256: format!("sha{version}"),
                uri: format!("f{version}.fits"),
                exposure_ids: vec![version as i64],
            }],
            generation: None,
        }
    }

    #[tokio::test]
    async fn checkpoints_give_the_same_snapshot_as_the_log() {
        let loc = Location::open("memory://cat").unwrap();
        let mut replay = Snapshot::default();
        for v in 1..=40u64 {
            let a = format!("sources/_increments/{v}.parquet");
            let removed = format!("sources/_increments/{}.parquet", v - 1);
            let r = if v % 5 == 0 {
                record(v, &[&a], &[&removed])
            } else {
                record(v, &[&a], &[])
            };
            assert!(try_put(&loc, &r).await.unwrap());
            assert!(!try_put(&loc, &r).await.unwrap(), "a version is taken once");
            replay.apply(&r);
            if v == 32 {
                write_checkpoint(&loc, &replay).await.unwrap();
            }
        }
        let snap = snapshot(&loc).await.unwrap();
        assert_eq!(snap.version, 40);
        assert_eq!(snap.live_paths(), replay.live_paths());
        assert_eq!(snap.inputs.len(), 40);
        assert_eq!(snap.removed_at.len(), replay.removed_at.len());
        assert_eq!(snap.rows_of("sources"), replay.rows_of("sources"));
        // A checkpoint ahead of nothing, written twice, changes nothing.
        write_checkpoint(&loc, &snap).await.unwrap();
        write_checkpoint(&loc, &snap).await.unwrap();
        assert_eq!(
            snapshot(&loc).await.unwrap().live_paths(),
            replay.live_paths()
        );
    }
}
