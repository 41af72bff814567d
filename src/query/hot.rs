//! [`HotData`]: the decoded columns of the partitions that region queries (cones) read most,
//! kept in memory under a byte bound, with each file's rows sorted by HEALPix index.
//!
//! A cone on a warm partition then costs a binary search per index range and a `take` of the
//! few matching rows, instead of opening the file and decoding its pages: partitions written
//! by LSDB or hats-import are one row group whose rows are in no particular order, so page
//! statistics skip little and every cone decoded the whole index column.
//!
//! - Granularity: one entry per (file, column) holding the file's whole column decoded (as
//!   the table's type), and one per file holding its rows sorted by `_healpix_29` (an
//!   [`SortedIndex`]). Files are immutable (commits write new files; the key holds the size
//!   too), so an entry is never stale; [`HotData::retain_files`] drops the entries of files a
//!   new catalog version no longer lists.
//! - Admission: a file is loaded on its second miss within the recent-miss window, so a scan
//!   of many cold files once (or a flood of random cones over a catalog larger than the cache)
//!   does not churn it; a file whose columns would take more than a quarter of the cache is
//!   never loaded.
//! - Bound and eviction: [`quick_cache`] (S3-FIFO) weighted by each entry's bytes; the cache
//!   never holds more than its capacity.

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use futures::TryStreamExt;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use std::sync::Arc;

/// What a cache lookup or load did (for the service's metrics; the engine knows no telemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotEvent {
    /// A file's rows came from memory.
    Hit,
    /// A file was read from storage (not cached, or not yet admitted).
    Miss,
    /// A file's columns were loaded: `bytes` of them; the cache now holds `held` bytes.
    Load { bytes: u64, held: u64 },
}

type Observer = Box<dyn Fn(HotEvent) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    path: String,
    size: u64,
    /// A column name, or `None` for the file's [`SortedIndex`].
    column: Option<String>,
}

#[derive(Clone)]
enum Entry {
    Column(ArrayRef),
    Index(Arc<SortedIndex>),
}

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<Key, Entry> for Weigh {
    fn weight(&self, key: &Key, val: &Entry) -> u64 {
        let data = match val {
            Entry::Column(a) => a.get_array_memory_size(),
            Entry::Index(i) => i.bytes(),
        };
        (data + key.path.len() + 64) as u64
    }
}

/// A file's positioned rows sorted by HEALPix index (rows without one are left out).
#[derive(Debug)]
pub struct SortedIndex {
    cells: Vec<i64>,
    rows: Vec<u32>,
}

impl SortedIndex {
    pub fn build(index: &Int64Array) -> Self {
        let mut pairs: Vec<(i64, u32)> = index
            .iter()
            .enumerate()
            .filter_map(|(row, c)| c.map(|c| (c, row as u32)))
            .collect();
        pairs.sort_unstable();
        let (cells, rows) = pairs.into_iter().unzip();
        SortedIndex { cells, rows }
    }

    fn bytes(&self) -> usize {
        self.cells.capacity() * 8 + self.rows.capacity() * 4
    }

    /// The rows (ascending) whose index is in one of `ranges` (sorted, half-open `[lo, hi)`).
    pub fn rows_in(&self, ranges: &[(i64, i64)]) -> Vec<u32> {
        let mut out = Vec::new();
        for &(lo, hi) in ranges {
            let a = self.cells.partition_point(|&c| c < lo);
            let b = a + self.cells[a..].partition_point(|&c| c < hi);
            out.extend_from_slice(&self.rows[a..b]);
        }
        out.sort_unstable();
        out
    }
}

/// The bounded in-memory cache of hot partitions' columns (see the module's documentation).
pub struct HotData {
    cache: quick_cache::sync::Cache<Key, Entry, Weigh>,
    /// Files missed lately (the admission window).
    missed: quick_cache::sync::Cache<(String, u64), ()>,
    /// Files that could not be loaded (read errors, an index column of another type): not
    /// tried again, so such a table costs one warning, not one per query.
    refused: quick_cache::sync::Cache<(String, u64), ()>,
    /// Bytes at most (0: off); fixed when made.
    capacity: u64,
    observer: Option<Observer>,
}

impl std::fmt::Debug for HotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotData")
            .field("capacity", &self.capacity())
            .field("used", &self.used())
            .finish()
    }
}

impl Default for HotData {
    /// An empty, disabled cache (capacity 0).
    fn default() -> Self {
        HotData::new(0, None)
    }
}

/// Recent misses remembered for admission.
const MISS_WINDOW: usize = 4096;

impl HotData {
    /// A cache of at most `bytes`; `observer` hears every hit, miss and load.
    pub fn new(bytes: u64, observer: Option<Observer>) -> Self {
        HotData {
            // Few shards (lookups are a handful per query), so that one shard holds a quarter
            // of the capacity: the largest entry admitted (see `load`) fits. quick_cache needs
            // a positive capacity; 0 disables the cache below.
            cache: quick_cache::sync::Cache::with_options(
                quick_cache::OptionsBuilder::new()
                    .shards(4)
                    .estimated_items_capacity(1024)
                    .weight_capacity(bytes.max(1))
                    .build()
                    .expect("valid cache options"),
                Weigh,
                Default::default(),
                Default::default(),
            ),
            missed: quick_cache::sync::Cache::new(MISS_WINDOW),
            refused: quick_cache::sync::Cache::new(MISS_WINDOW),
            capacity: bytes,
            observer,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.cache.weight()
    }

    fn tell(&self, e: HotEvent) {
        if let Some(o) = &self.observer {
            o(e);
        }
    }

    /// Drops every entry of a file for which `keep(path)` is false.
    pub fn retain_files(&self, keep: impl Fn(&str) -> bool) {
        self.cache.retain(|k, _| keep(&k.path));
        self.missed.retain(|k, _| keep(&k.0));
        self.refused.retain(|k, _| keep(&k.0));
    }

    fn column(&self, path: &str, size: u64, name: &str) -> Option<ArrayRef> {
        let key = Key {
            path: path.to_string(),
            size,
            column: Some(name.to_string()),
        };
        match self.cache.get(&key)? {
            Entry::Column(a) => Some(a),
            Entry::Index(_) => None,
        }
    }

    fn index(&self, path: &str, size: u64) -> Option<Arc<SortedIndex>> {
        let key = Key {
            path: path.to_string(),
            size,
            column: None,
        };
        match self.cache.get(&key)? {
            Entry::Index(i) => Some(i),
            Entry::Column(_) => None,
        }
    }

    /// The rows of file `path` whose HEALPix index lies in `ranges`, with the columns of
    /// `schema` (a projection of the table), when the file's index and those columns are all
    /// in memory. Every row whose index is in `ranges` is there (and only those).
    pub fn rows(
        &self,
        path: &str,
        size: u64,
        schema: &SchemaRef,
        ranges: &[(i64, i64)],
    ) -> Option<RecordBatch> {
        if self.capacity() == 0 {
            return None;
        }
        let index = self.index(path, size)?;
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| self.column(path, size, f.name()))
            .collect::<Option<_>>()?;
        let rows = UInt32Array::from(index.rows_in(ranges));
        let taken = columns
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &rows, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ok()?;
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(schema.clone(), taken, &options).ok()
    }

    /// Records a miss of file `path`; true when the file should now be loaded (its second
    /// miss in the window, and the cache is on).
    pub fn admit(&self, path: &str, size: u64) -> bool {
        self.tell(HotEvent::Miss);
        if self.capacity() == 0 {
            return false;
        }
        let k = (path.to_string(), size);
        if self.refused.get(&k).is_some() {
            return false;
        }
        if self.missed.get(&k).is_some() {
            self.missed.remove(&k);
            true
        } else {
            self.missed.insert(k, ());
            false
        }
    }

    /// Remembers that file `path` could not be loaded (it is read from storage from now on).
    pub fn refuse(&self, path: &str, size: u64) {
        self.refused.insert((path.to_string(), size), ());
    }

    /// Counts a file served from memory.
    pub fn hit(&self) {
        self.tell(HotEvent::Hit);
    }

    /// Reads the columns of `schema` (a projection of the table; the `healpix` column is added)
    /// of one file, whole, and keeps them with the file's sorted index. Columns the file lacks
    /// are nulls; types are cast to the table's. Does nothing when they would take more than a
    /// quarter of the cache.
    pub async fn load(
        &self,
        reader: Box<dyn AsyncFileReader + Send>,
        path: &object_store::path::Path,
        size: u64,
        table: &SchemaRef,
        schema: &SchemaRef,
        healpix: &str,
    ) -> Result<()> {
        let key_path = path.to_string();
        let mut names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| self.column(&key_path, size, n).is_none())
            .collect();
        let have_index = self.index(&key_path, size).is_some();
        if !have_index && !names.iter().any(|n| n == healpix) {
            names.push(healpix.to_string());
        }
        if names.is_empty() {
            return Ok(());
        }
        let reader: Box<dyn AsyncFileReader> = reader;
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let file_schema = builder.schema().clone();
        let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
        // Estimated size first: a file too big for the cache is not read at all.
        let estimate: usize = names
            .iter()
            .map(|n| {
                table
                    .field_with_name(n)
                    .ok()
                    .and_then(|f| f.data_type().primitive_width())
                    .unwrap_or(16)
                    * rows
            })
            .sum::<usize>()
            + if have_index { 0 } else { rows * 12 };
        if estimate as u64 > self.capacity() / 4 {
            return Ok(());
        }
        let present: Vec<usize> = names
            .iter()
            .filter_map(|n| file_schema.index_of(n).ok())
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), present.iter().copied());
        let batches: Vec<RecordBatch> = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()?
            .try_collect()
            .await?;
        let mut loaded = 0u64;
        for n in &names {
            let field = table.field_with_name(n)?;
            let column: ArrayRef = match file_schema.index_of(n) {
                Err(_) => arrow::array::new_null_array(field.data_type(), rows),
                Ok(_) => {
                    let parts: Vec<ArrayRef> = batches
                        .iter()
                        .filter_map(|b| b.column_by_name(n).cloned())
                        .collect();
                    let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                    let whole = if parts.is_empty() {
                        arrow::array::new_empty_array(field.data_type())
                    } else {
                        arrow::compute::concat(&parts)?
                    };
                    if whole.data_type() == field.data_type() {
                        whole
                    } else {
                        arrow::compute::cast(&whole, field.data_type())?
                    }
                }
            };
            if column.len() != rows {
                return Err(DataFusionError::Execution(format!(
                    "{key_path}: column {n} has {} rows, the file {rows}",
                    column.len()
                )));
            }
            if n == healpix && !have_index {
                let cells = column
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| {
                        DataFusionError::Execution(format!("{key_path}: {n} is not Int64"))
                    })?;
                let index = Arc::new(SortedIndex::build(cells));
                loaded += index.bytes() as u64;
                self.cache.insert(
                    Key {
                        path: key_path.clone(),
                        size,
                        column: None,
                    },
                    Entry::Index(index),
                );
            }
            loaded += column.get_array_memory_size() as u64;
            self.cache.insert(
                Key {
                    path: key_path.clone(),
                    size,
                    column: Some(n.clone()),
                },
                Entry::Column(column),
            );
        }
        self.tell(HotEvent::Load {
            bytes: loaded,
            held: self.used(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_exactly_the_rows_in_the_ranges() {
        let cells = Int64Array::from(vec![Some(50), Some(10), None, Some(30), Some(10), Some(99)]);
        let i = SortedIndex::build(&cells);
        assert_eq!(i.rows_in(&[(10, 11)]), vec![1, 4]);
        assert_eq!(i.rows_in(&[(0, 10), (30, 51)]), vec![0, 3]);
        assert_eq!(i.rows_in(&[(11, 30)]), Vec::<u32>::new());
        assert_eq!(i.rows_in(&[(0, i64::MAX)]), vec![0, 1, 3, 4, 5]);
    }

    #[test]
    fn a_disabled_cache_admits_nothing() {
        let h = HotData::default();
        assert!(!h.admit("a", 1));
        assert!(!h.admit("a", 1));
        let on = HotData::new(1 << 20, None);
        assert!(!on.admit("a", 1), "first miss only remembered");
        assert!(on.admit("a", 1), "second miss loads");
        assert!(!on.admit("a", 2), "another size is another file");
        on.refuse("b", 1);
        assert!(
            !on.admit("b", 1) && !on.admit("b", 1),
            "a refused file is not loaded again"
        );
    }
}
