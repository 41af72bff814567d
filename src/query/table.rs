//! [`SkyTable`]: a Parquet table provider that prunes by sky position.
//!
//! A table is a list of Parquet files in one object store, with the columns of its position
//! (`ra`, `dec`) and of its HEALPix index (`_healpix_29`, NESTED order 29) when it has them.
//! When a query's WHERE clause holds a containment predicate with a constant region —
//! `cone_contains(ra, dec, ...)`, `box_contains(...)`, `polygon_contains(...)`, which is also
//! what ADQL `CONTAINS(POINT, CIRCLE/BOX/POLYGON)` becomes — the provider turns the region into
//! ranges of `_healpix_29` ([`astropipe_udfs::region`]) and
//!
//! 1. skips every file whose index range (from the commit log, the HATS partition it is, or its
//!    footer statistics) misses them;
//! 2. hands DataFusion's Parquet reader the predicate `(_healpix_29 >= lo AND _healpix_29 < hi)
//!    OR ...` together with the query's filters, so row groups and pages outside are skipped
//!    by their statistics (page index) and rows by late materialisation — all before a single
//!    distance is computed. `EXPLAIN` shows the ranges in the scan's predicate.
//!
//! File footers are read through the runtime's file-metadata cache, so they are fetched once
//! and reused by every later query.

use super::hot::HotData;
use arrow::datatypes::SchemaRef;
use astropipe_udfs::region::{self, Region};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::union::UnionExec;
use std::sync::Arc;

/// Most HEALPix ranges a region becomes (coarser cells beyond).
pub const MAX_RANGES: usize = 48;

/// The position and index columns of a table with a sky position.
#[derive(Debug, Clone, PartialEq)]
pub struct Spatial {
    pub ra: String,
    pub dec: String,
    /// NESTED HEALPix at order 29 of (ra, dec).
    pub healpix: String,
}

impl Spatial {
    pub fn standard() -> Self {
        Spatial {
            ra: "ra".into(),
            dec: "dec".into(),
            healpix: crate::catalog::schema::HEALPIX_29.into(),
        }
    }
}

/// One Parquet file of a table.
#[derive(Debug, Clone)]
pub struct SkyFile {
    /// Location in the store.
    pub path: object_store::path::Path,
    pub size: u64,
    /// `[lo, hi]` (inclusive) of the index column in the file; `None` when unknown (the file
    /// is always scanned); `lo > hi` when it has no positioned row.
    pub range: Option<(i64, i64)>,
    /// The HATS partition (or, in a margin cache, the partition it borders) of the file.
    pub pixel: Option<crate::catalog::hats::Pixel>,
}

/// A table of Parquet files that prunes by sky region.
#[derive(Debug, Clone)]
pub struct SkyTable {
    pub name: String,
    pub schema: SchemaRef,
    pub store_url: ObjectStoreUrl,
    pub files: Vec<SkyFile>,
    pub spatial: Option<Spatial>,
    /// A HATS margin cache of this table and its threshold, arcseconds.
    pub margin: Option<(Arc<SkyTable>, f64)>,
}

impl SkyTable {
    /// The `_healpix_29` ranges every matching row must be in, from the region predicates
    /// among `filters` (intersected); `None` when they do not restrict the sky.
    pub fn ranges_for(&self, filters: &[Expr]) -> Option<Vec<(i64, i64)>> {
        let sp = self.spatial.as_ref()?;
        let mut out: Option<Vec<(i64, i64)>> = None;
        for f in filters {
            for r in Region::all_in(f, &sp.ra, &sp.dec) {
                if let Some(ranges) = r.healpix_ranges(MAX_RANGES) {
                    out = Some(match out {
                        None => ranges,
                        Some(prev) => region::intersect(&prev, &ranges),
                    });
                }
            }
        }
        out
    }

    /// The files that may hold rows in `ranges` (all of them without ranges).
    pub fn files_in(&self, ranges: Option<&[(i64, i64)]>) -> Vec<&SkyFile> {
        let Some(ranges) = ranges else {
            return self.files.iter().collect();
        };
        self.files
            .iter()
            .filter(|f| match f.range {
                None => true,
                Some((lo, hi)) if lo > hi => false,
                Some((lo, hi)) => {
                    // First range ending after lo; does it start at or before hi?
                    let i = ranges.partition_point(|r| r.1 <= lo);
                    i < ranges.len() && ranges[i].0 <= hi
                }
            })
            .collect()
    }

    /// Readers of this table's files whose footers go through the runtime's metadata cache.
    fn reader_factory(&self, state: &dyn Session) -> Result<Arc<CachedParquetFileReaderFactory>> {
        let store = state.runtime_env().object_store(&self.store_url)?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        Ok(Arc::new(CachedParquetFileReaderFactory::new(store, cache)))
    }

    /// Builds the Parquet scan of `files` with `predicate` pushed into the reader.
    pub fn scan_files(
        &self,
        state: &dyn Session,
        files: &[&SkyFile],
        projection: Option<&Vec<usize>>,
        predicate: Option<Expr>,
        limit: Option<usize>,
        row_filter: bool,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let mut source = ParquetSource::new(self.schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(self.reader_factory(state)?)
            .with_enable_page_index(true)
            .with_pushdown_filters(row_filter);
        if let Some(p) = predicate {
            let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
            source = source.with_predicate(state.create_physical_expr(p, &df_schema)?);
        }
        // Files in groups of similar total size, one group per target partition.
        let n = state.config().target_partitions().max(1).min(files.len());
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> =
            (0..n).map(|_| (0, Vec::new())).collect();
        let mut sorted: Vec<&&SkyFile> = files.iter().collect();
        sorted.sort_by_key(|f| std::cmp::Reverse(f.size));
        for f in sorted {
            if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
                g.0 += f.size;
                g.1.push(PartitionedFile::new(f.path.to_string(), f.size));
            }
        }
        let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(groups.into_iter().map(|g| FileGroup::new(g.1)).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

impl SkyTable {
    /// A region scan through the [`HotData`] cache: the rows in `ranges` of each file held in
    /// memory come from there; the other files are read from storage (and loaded into the
    /// cache once they are hot). Rows are a superset of the region's, as from the reader:
    /// the query's filters are re-checked above.
    #[allow(clippy::too_many_arguments)]
    async fn scan_hot(
        &self,
        state: &dyn Session,
        hot: &HotData,
        files: &[&SkyFile],
        ranges: &[(i64, i64)],
        healpix: &str,
        projection: Option<&Vec<usize>>,
        predicate: Option<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let mut batches = Vec::new();
        let mut cold = Vec::new();
        for &f in files {
            let path = f.path.as_ref();
            let mut rows = hot.rows(path, f.size, &schema, ranges);
            if rows.is_none() && hot.admit(path, f.size) {
                let reader = self.reader_factory(state)?.create_reader(
                    0,
                    PartitionedFile::new(f.path.to_string(), f.size),
                    None,
                    &ExecutionPlanMetricsSet::new(),
                )?;
                match hot
                    .load(reader, &f.path, f.size, &self.schema, &schema, healpix)
                    .await
                {
                    Ok(()) => rows = hot.rows(path, f.size, &schema, ranges),
                    Err(e) => {
                        hot.refuse(path, f.size);
                        tracing::warn!(file = %f.path, error = %e, "not cached: read from storage from now on");
                    }
                }
            }
            match rows {
                Some(b) => {
                    hot.hit();
                    if b.num_rows() > 0 {
                        batches.push(b);
                    }
                }
                None => cold.push(f),
            }
        }
        let mut parts: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !batches.is_empty() || cold.is_empty() {
            parts.push(MemorySourceConfig::try_new_exec(
                &[batches],
                schema.clone(),
                None,
            )?);
        }
        if !cold.is_empty() {
            parts.push(self.scan_files(state, &cold, projection, predicate, None, true)?);
        }
        UnionExec::try_new(parts)
    }
}

#[async_trait]
impl TableProvider for SkyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is used for pruning and re-checked above the scan (Inexact).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let ranges = self.ranges_for(filters);
        let files = self.files_in(ranges.as_deref());
        // The region as index ranges; DataFusion's own filter pushdown adds the query's
        // filters to the reader's predicate after this.
        let predicate = match (&ranges, &self.spatial) {
            (Some(r), Some(sp)) => Some(region::ranges_predicate(&sp.healpix, r)),
            _ => None,
        };
        // A limit is only safe to push into the reader without filters.
        let limit = if filters.is_empty() { limit } else { None };
        if let (Some(r), Some(sp)) = (&ranges, &self.spatial) {
            let hot = state.config().get_extension::<HotData>();
            if let Some(hot) = hot.filter(|h| h.capacity() > 0) {
                return self
                    .scan_hot(state, &hot, &files, r, &sp.healpix, projection, predicate)
                    .await;
            }
        }
        self.scan_files(state, &files, projection, predicate, limit, true)
    }
}
