//! Durable records made of conditional creates, for state that several processes change:
//! the worker's job queue and the catalog service's async TAP jobs.
//!
//! ```text
//! <root>/<id>/<record>.json               written once, first (what was asked)
//! <root>/<id>/events/<seq:08>.json        state changes, each a conditional create
//! ```
//!
//! A record's state is its highest-numbered event. Every change writes the next sequence
//! number with `PutMode::Create`, so of two processes racing for one change exactly one wins
//! and the other sees `false` and re-reads. This needs only conditional create, which every
//! store here has (local files, S3).

use super::Location;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("record {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The records under one prefix of a store.
#[derive(Clone, Debug)]
pub struct Log {
    pub loc: Location,
    root: String,
}

/// Whether `id` can name a record (what ids we make: letters, digits, `-`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Log {
    pub fn new(loc: Location, root: &str) -> Self {
        Log {
            loc,
            root: root.trim_end_matches('/').to_string(),
        }
    }

    /// The path of `rel` under the root.
    pub fn path(&self, rel: &str) -> Path {
        self.loc.path(&format!("{}/{rel}", self.root))
    }

    /// Writes `bytes` at `rel` unless something is there already; false when it was.
    pub async fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, LogError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .loc
            .store
            .put_opts(&self.path(rel), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `rel` holding `value` as JSON; false when it existed.
    pub async fn create_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<bool, LogError> {
        let bytes = serde_json::to_vec_pretty(value).expect("records serialise");
        self.create(rel, bytes).await
    }

    /// The JSON record at `rel`; None when there is none.
    pub async fn read_json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, LogError> {
        let path = self.path(rel);
        let bytes = match self.loc.store.get(&path).await {
            Ok(g) => g.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LogError::Decode {
                path: path.to_string(),
                source,
            })
    }

    /// The latest event of record `id` and its sequence number.
    pub async fn latest<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<(u64, T)>, LogError> {
        let events: Vec<_> = self
            .loc
            .store
            .list(Some(&self.path(&format!("{id}/events"))))
            .try_collect()
            .await?;
        let Some(latest) = events.iter().map(|m| m.location.clone()).max() else {
            return Ok(None);
        };
        let seq = latest
            .filename()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let bytes = self.loc.store.get(&latest).await?.bytes().await?;
        let value = serde_json::from_slice(&bytes).map_err(|source| LogError::Decode {
            path: latest.to_string(),
            source,
        })?;
        Ok(Some((seq, value)))
    }

    /// Appends event `seq` to record `id`; false when another process wrote it first.
    pub async fn append<T: Serialize>(
        &self,
        id: &str,
        seq: u64,
        event: &T,
    ) -> Result<bool, LogError> {
        self.create_json(&format!("{id}/events/{seq:08}.json"), event)
            .await
    }

    /// The ids of every record (one listing).
    pub async fn ids(&self) -> Result<Vec<String>, LogError> {
        let listing = self
            .loc
            .store
            .list_with_delimiter(Some(&self.path("")))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// The objects under `rel` (a "directory"), with their sizes.
    pub async fn list(&self, rel: &str) -> Result<Vec<object_store::ObjectMeta>, LogError> {
        Ok(self
            .loc
            .store
            .list(Some(&self.path(rel)))
            .try_collect()
            .await?)
    }

    /// Deletes one object (absent is fine).
    pub async fn delete(&self, rel: &str) -> Result<(), LogError> {
        match self.loc.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object of record `id`; `record` (its first-written file) goes last, so a
    /// half-deleted record is never seen without its events.
    pub async fn purge(&self, id: &str, record: &str) -> Result<(), LogError> {
        let objects = self.list(id).await?;
        let (first, rest): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|m| m.location.filename() == Some(record));
        for m in rest.into_iter().chain(first) {
            match self.loc.store.delete(&m.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // A local store keeps the emptied directories, which a listing would still show as
        // records; remove them deepest first (one that is not empty stays: a racing writer).
        if let Some(dir) = self.loc.local_dir() {
            let record = dir.join(&self.root).join(id);
            let mut dirs: Vec<_> = walk_dirs(&record);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
        Ok(())
    }

    /// Whether the store answers (one listing call).
    pub async fn ping(&self) -> Result<(), LogError> {
        self.loc
            .store
            .list_with_delimiter(Some(&self.path("")))
            .await?;
        Ok(())
    }
}

/// `dir` and every directory below it.
fn walk_dirs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_race_to_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::open(&dir.path().display().to_string()).unwrap();
        let log = Log::new(loc, "_things");
        assert!(log.create_json("a/rec.json", &1).await.unwrap());
        assert!(!log.create_json("a/rec.json", &2).await.unwrap());
        assert_eq!(log.read_json::<i32>("a/rec.json").await.unwrap(), Some(1));
        assert!(log.latest::<i32>("a").await.unwrap().is_none());
        assert!(log.append("a", 0, &"x").await.unwrap());
        assert!(!log.append("a", 0, &"y").await.unwrap());
        assert!(log.append("a", 1, &"z").await.unwrap());
        assert_eq!(
            log.latest::<String>("a").await.unwrap(),
            Some((1, "z".to_string()))
        );
        assert_eq!(log.ids().await.unwrap(), vec!["a".to_string()]);
        log.purge("a", "rec.json").await.unwrap();
        assert!(log.ids().await.unwrap().is_empty());
        assert!(valid_id("1764-abc") && !valid_id("../x") && !valid_id(""));
    }
}
