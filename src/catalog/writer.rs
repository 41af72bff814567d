//! Parquet encoding of catalog batches: rows sorted by a key column (the HATS `_healpix_29`
//! for sources), the sort declared in the file metadata, page statistics for pruning.

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take_record_batch};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("sorting by {column}: {source}")]
    Sort {
        column: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("no column {0} to sort by")]
    NoColumn(String),
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Rows per row group: small enough that row-group statistics prune cone searches.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Sorts `batch` by `sort_by` (nulls last) and encodes it as one Parquet file.
pub fn encode_sorted(batch: &RecordBatch, sort_by: &str) -> Result<Bytes, WriteError> {
    let idx = batch
        .schema()
        .index_of(sort_by)
        .map_err(|_| WriteError::NoColumn(sort_by.into()))?;
    let sort_err = |source| WriteError::Sort {
        column: sort_by.into(),
        source,
    };
    let indices = lexsort_to_indices(
        &[SortColumn {
            values: batch.column(idx).clone(),
            options: Some(SortOptions {
                descending: false,
                nulls_first: false,
            }),
        }],
        None,
    )
    .map_err(sort_err)?;
    let sorted = take_record_batch(batch, &indices).map_err(sort_err)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: idx as i32,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("astropipe {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut w = ArrowWriter::try_new(&mut buf, sorted.schema(), Some(props))?;
    w.write(&sorted)?;
    w.close()?;
    Ok(Bytes::from(buf))
}
