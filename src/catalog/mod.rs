//! The catalog: Arrow tables `exposures` and `sources` stored as Parquet in an object store.
//!
//! - [`schema`]: the tables' schemas (units and UCDs in field metadata) and row types;
//! - [`writer`]: sorted Parquet encoding;
//! - [`commit`]: the commit log that makes increments visible atomically.
//!
//! Layout under the catalog root:
//! ```text
//! _commits/<version>.json                      commit records (written last, PutMode::Create)
//! <table>/_increments/<run_id>.parquet         data files of one increment
//! ```

pub mod commit;
pub mod schema;
pub mod writer;

use crate::storage::Location;
use arrow::array::RecordBatch;
pub use commit::{CommitError, CommitRecord, FileEntry, InputEntry, Snapshot};
use object_store::{ObjectStoreExt, PutPayload};

pub const EXPOSURES: &str = "exposures";
pub const SOURCES: &str = "sources";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("writing {table}: {source}")]
    Encode {
        table: String,
        #[source]
        source: writer::WriteError,
    },
    #[error("writing {path}: {source}")]
    Put {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("building the {table} batch: {source}")]
    Batch {
        table: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// Encodes `batch` sorted by `sort_by` and stores it as `<table>/_increments/<run_id>.parquet`.
pub async fn put_increment_file(
    loc: &Location,
    table: &str,
    run_id: &str,
    batch: &RecordBatch,
    sort_by: &str,
) -> Result<FileEntry, CatalogError> {
    let bytes = writer::encode_sorted(batch, sort_by).map_err(|source| CatalogError::Encode {
        table: table.into(),
        source,
    })?;
    let rel = format!("{table}/_increments/{run_id}.parquet");
    let path = loc.path(&rel);
    let n = bytes.len() as u64;
    loc.store
        .put(&path, PutPayload::from(bytes))
        .await
        .map_err(|source| CatalogError::Put {
            path: path.to_string(),
            source,
        })?;
    Ok(FileEntry {
        table: table.into(),
        path: rel,
        rows: batch.num_rows() as u64,
        bytes: n,
    })
}
