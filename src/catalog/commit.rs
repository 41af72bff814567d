//! The commit log: how increments become visible, atomically.
//!
//! Each ingest increment writes new, uniquely named Parquet files and then one commit record
//! `_commits/<version>.json`, created with a conditional put (`PutMode::Create`): two writers
//! can never claim the same version, and a reader sees an increment exactly when its record
//! exists. Files without a record (a crash before the commit) are invisible.

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

/// A data file of a table, relative to the catalog root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// An input file whose HDUs an increment holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEntry {
    pub sha256: String,
    pub uri: String,
    pub exposure_ids: Vec<i64>,
}

/// One commit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub version: u64,
    pub run_id: String,
    pub created_at: String,
    pub pipeline_version: String,
    #[serde(default)]
    pub add: Vec<FileEntry>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub inputs: Vec<InputEntry>,
}

/// The state of the catalog at one version: the live files of each table and the inputs.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: u64,
    pub files: BTreeMap<String, Vec<FileEntry>>,
    /// Committed inputs by content hash.
    pub inputs: HashMap<String, InputEntry>,
}

impl Snapshot {
    pub fn files_of(&self, table: &str) -> &[FileEntry] {
        self.files.get(table).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub fn rows_of(&self, table: &str) -> u64 {
        self.files_of(table).iter().map(|f| f.rows).sum()
    }

    fn apply(&mut self, c: &CommitRecord) {
        self.version = c.version;
        for r in &c.remove {
            for files in self.files.values_mut() {
                files.retain(|f| &f.path != r);
            }
        }
        for a in &c.add {
            self.files
                .entry(a.table.clone())
                .or_default()
                .push(a.clone());
        }
        for i in &c.inputs {
            self.inputs.insert(i.sha256.clone(), i.clone());
        }
    }
}

fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

/// Reads every commit record, in version order.
pub async fn read_log(loc: &Location) -> Result<Vec<CommitRecord>, CommitError> {
    let store_err = |source| CommitError::Store {
        uri: loc.uri.clone(),
        source,
    };
    let prefix = loc.path(COMMITS_DIR);
    let mut metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(store_err)?;
    metas.retain(|m| m.location.filename().is_some_and(|f| f.ends_with(".json")));
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut out = Vec::with_capacity(metas.len());
    for m in metas {
        let bytes = loc
            .store
            .get(&m.location)
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        let rec: CommitRecord =
            serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt {
                uri: loc.uri.clone(),
                path: m.location.to_string(),
                message: e.to_string(),
            })?;
        out.push(rec);
    }
    Ok(out)
}

/// The latest snapshot.
pub async fn snapshot(loc: &Location) -> Result<Snapshot, CommitError> {
    let mut s = Snapshot::default();
    for c in read_log(loc).await? {
        s.apply(&c);
    }
    Ok(s)
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

/// The latest committed version, from a listing only (no record is read): cheap enough to
/// poll.
pub async fn latest_version(loc: &Location) -> Result<u64, CommitError> {
    let prefix = loc.path(COMMITS_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|source| CommitError::Store {
            uri: loc.uri.clone(),
            source,
        })?;
    Ok(metas
        .iter()
        .filter_map(|m| {
            m.location
                .filename()?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0))
}
