//! The catalog: Arrow tables `exposures` and `sources` stored as Parquet in an object store.
//!
//! - [`schema`]: the tables' schemas (units and UCDs in field metadata) and row types;
//! - [`writer`]: sorted Parquet encoding, row groups encoded in parallel;
//! - [`commit`]: the commit log that makes increments visible atomically;
//! - [`hats`]: the HATS layout (adaptive partitions, properties, `_metadata`);
//! - [`margin`]: margin caches for cross-matching at partition edges.
//!
//! Compaction (increments → a new HATS generation) reads through the query engine and lives
//! above it, in [`crate::compact`].
//!
//! Layout under the catalog root:
//! ```text
//! _commits/<version>.json                      commit records (written last, PutMode::Create)
//! _commits/<version>.checkpoint.json           snapshots, so readers need not replay the log
//! <table>/_increments/<run_id>.parquet         data files of one increment
//! sources/collection.properties                HATS collection → current generation + margin
//! sources/<gen>/dataset/Norder=K/Dir=D/Npix=N.parquet, hats.properties, partition_info.csv
//! sources/<gen>_<threshold>arcs/...            the margin catalog of that generation
//! exposures/<gen>/exposures.parquet            exposures as of that compaction
//! ```
//! A version is exactly the data files its snapshot names; nothing is rewritten in place.

pub mod commit;
pub mod hats;
pub mod margin;
pub mod schema;
pub mod writer;

use crate::storage::Location;
use arrow::array::RecordBatch;
pub use commit::{CommitError, CommitRecord, FileEntry, Generation, InputEntry, Snapshot};
use object_store::{ObjectStoreExt, PutPayload};

pub const EXPOSURES: &str = "exposures";
pub const SOURCES: &str = "sources";
/// Table name of the `sources` margin cache in the commit log.
pub const SOURCES_MARGIN: &str = "sources_margin";

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
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("storing {path}: {source}")]
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
    Ok(FileEntry::data(table, rel, batch.num_rows() as u64, n).with_healpix(healpix_range(batch)))
}

/// `[min, max]` of the `_healpix_29` column of a batch (`None` without the column or a value).
pub fn healpix_range(batch: &RecordBatch) -> Option<[i64; 2]> {
    use arrow::array::AsArray;
    let c = batch.column_by_name(schema::HEALPIX_29)?;
    let c = c.as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    Some([arrow::compute::min(c)?, arrow::compute::max(c)?])
}

/// Rewrites the live data files that hold rows of `exposures` without those rows (for
/// `--reprocess`). Returns the paths to remove and the replacement files to add; files with no
/// row left are only removed.
pub async fn rewrite_without(
    loc: &Location,
    snap: &Snapshot,
    exposures: &std::collections::HashSet<i64>,
    run_id: &str,
) -> Result<(Vec<String>, Vec<FileEntry>), CatalogError> {
    use arrow::array::{Array, AsArray, BooleanArray};
    use arrow::datatypes::Int64Type;
    let mut remove = Vec::new();
    let mut add = Vec::new();
    for (table, sort_by) in [(EXPOSURES, "exposure_id"), (SOURCES, schema::HEALPIX_29)] {
        for (n, f) in snap.files_of(table).into_iter().enumerate() {
            let batches = read_parquet(loc, &f.path).await?;
            let mut touched = false;
            let mut kept = Vec::new();
            for b in batches {
                let ids = b
                    .column_by_name("exposure_id")
                    .map(|c| c.as_primitive::<Int64Type>().clone())
                    .ok_or_else(|| CatalogError::Read {
                        path: f.path.clone(),
                        message: "no exposure_id column".into(),
                    })?;
                let keep: BooleanArray = (0..ids.len())
                    .map(|i| Some(ids.is_null(i) || !exposures.contains(&ids.value(i))))
                    .collect();
                if keep.true_count() != b.num_rows() {
                    touched = true;
                }
                let filtered =
                    arrow::compute::filter_record_batch(&b, &keep).map_err(|source| {
                        CatalogError::Batch {
                            table: table.into(),
                            source,
                        }
                    })?;
                if filtered.num_rows() > 0 {
                    kept.push(filtered);
                }
            }
            if !touched {
                continue;
            }
            remove.push(f.path.clone());
            if kept.is_empty() {
                continue;
            }
            let schema = kept[0].schema();
            let all = arrow::compute::concat_batches(&schema, &kept).map_err(|source| {
                CatalogError::Batch {
                    table: table.into(),
                    source,
                }
            })?;
            let bytes =
                writer::encode_sorted(&all, sort_by).map_err(|source| CatalogError::Encode {
                    table: table.into(),
                    source,
                })?;
            let rel = format!("{table}/_increments/{run_id}-rewrite-{n}.parquet");
            let len = bytes.len() as u64;
            loc.store
                .put(&loc.path(&rel), PutPayload::from(bytes))
                .await
                .map_err(|source| CatalogError::Put {
                    path: rel.clone(),
                    source,
                })?;
            add.push(
                FileEntry::data(table, rel, all.num_rows() as u64, len)
                    .with_healpix(healpix_range(&all)),
            );
        }
    }
    Ok((remove, add))
}

/// Reads a whole Parquet file of the catalog.
pub async fn read_parquet(loc: &Location, rel: &str) -> Result<Vec<RecordBatch>, CatalogError> {
    let get_err = |source| CatalogError::Put {
        path: rel.into(),
        source,
    };
    let bytes = loc
        .store
        .get(&loc.path(rel))
        .await
        .map_err(get_err)?
        .bytes()
        .await
        .map_err(get_err)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(65_536).build())
        .map_err(|e| CatalogError::Read {
            path: rel.into(),
            message: e.to_string(),
        })?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CatalogError::Read {
            path: rel.into(),
            message: e.to_string(),
        })
}
