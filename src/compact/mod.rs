//! `astropipe compact`: merges the committed increments into a new HATS generation of the
//! `sources` table (balanced partitions, at most `max_rows` rows each) with its margin cache,
//! rewrites `exposures` as one sorted file, commits the switch atomically, points the HATS
//! collection at the new generation, and garbage-collects files no version needs any more.
//!
//! The data stream through DataFusion (`ORDER BY _healpix_29` spills to disk beyond the memory
//! limit), so catalogs larger than memory compact too. A crash at any point leaves the previous
//! version readable: new files are invisible until the commit record exists, and nothing is
//! deleted before the grace period.

//! One file per step: [`plan`] (the row-count histogram → adaptive partitions), [`partition`]
//! (one sorted pass writing the partition files and their margins, then the rows outside the
//! HATS dataset), [`metadata`] (the HATS metadata files), the commit here, and [`gc`] (garbage
//! collection). Compaction reads the snapshot through the query engine ([`crate::query`]);
//! the catalog itself knows no query engine.

mod gc;
mod metadata;
mod partition;
mod plan;

pub use gc::collect_garbage;

use crate::catalog::commit::{self, CommitRecord, FileEntry, Generation, Snapshot};
use crate::catalog::{EXPOSURES, SOURCES, SOURCES_MARGIN};
use crate::query::session;
use crate::storage::Location;
use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error("query during compaction: {0}")]
    Query(String),
    #[error("writing {path}: {message}")]
    Write { path: String, message: String },
    #[error("another writer removed files this compaction merges; run compact again")]
    Conflict,
}

/// Settings of a compaction.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub catalog: String,
    /// Most rows in a partition (HATS `hats_max_rows`).
    pub max_rows: u64,
    /// Margin cache threshold, arcseconds.
    pub margin_arcsec: f64,
    /// Order of the row-count histogram that partitions are built from (finest possible order).
    pub hist_order: u8,
    /// Files no longer live are deleted only after this long.
    pub grace: Duration,
    /// Memory for sorting before spilling to disk.
    pub memory_limit: usize,
}

impl CompactOptions {
    pub fn new(catalog: impl Into<String>) -> Self {
        CompactOptions {
            catalog: catalog.into(),
            max_rows: 1_000_000,
            margin_arcsec: 10.0,
            hist_order: 10,
            grace: Duration::from_secs(3600),
            memory_limit: 1 << 30,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompactReport {
    pub catalog: String,
    /// The version committed, when there was anything to compact.
    pub version: Option<u64>,
    pub generation: Option<String>,
    pub partitions: usize,
    pub max_order: u8,
    pub rows: u64,
    pub unlocated_rows: u64,
    pub margin_rows: u64,
    pub exposures: u64,
    pub files_merged: usize,
    pub gc_deleted: usize,
    pub seconds: f64,
}

impl std::fmt::Display for CompactReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "compact {}", self.catalog)?;
        match (&self.version, &self.generation) {
            (Some(v), Some(g)) => {
                writeln!(f, "  committed version {v}: generation {g}")?;
                writeln!(
                    f,
                    "  {} sources in {} partitions (deepest order {}), {} without position, {} margin rows",
                    self.rows,
                    self.partitions,
                    self.max_order,
                    self.unlocated_rows,
                    self.margin_rows
                )?;
                writeln!(
                    f,
                    "  {} exposures; {} files merged",
                    self.exposures, self.files_merged
                )?;
            }
            _ => writeln!(f, "  nothing new to compact")?,
        }
        writeln!(f, "  garbage collected: {} files", self.gc_deleted)?;
        write!(f, "  seconds: {:.2}", self.seconds)
    }
}

async fn put(loc: &Location, rel: &str, bytes: bytes::Bytes) -> Result<u64, CompactError> {
    let n = bytes.len() as u64;
    loc.store
        .put(&loc.path(rel), PutPayload::from(bytes))
        .await
        .map_err(|e| CompactError::Write {
            path: rel.into(),
            message: e.to_string(),
        })?;
    Ok(n)
}

async fn query(
    ctx: &SessionContext,
    sql: &str,
) -> Result<datafusion::execution::SendableRecordBatchStream, CompactError> {
    ctx.sql(sql)
        .await
        .map_err(|e| CompactError::Query(e.to_string()))?
        .execute_stream()
        .await
        .map_err(|e| CompactError::Query(e.to_string()))
}

/// Whether the snapshot holds anything outside its current generation.
fn needs_compaction(snap: &Snapshot) -> bool {
    let Some(g) = &snap.generation else {
        return !snap.files_of(SOURCES).is_empty() || !snap.files_of(EXPOSURES).is_empty();
    };
    let in_gen = |f: &&FileEntry, prefix: &str| f.path.starts_with(prefix);
    snap.files_of(SOURCES)
        .iter()
        .any(|f| !in_gen(f, &format!("{SOURCES}/{}/", g.sources_dir)))
        || snap
            .files_of(EXPOSURES)
            .iter()
            .any(|f| !in_gen(f, &format!("{EXPOSURES}/{}/", g.sources_dir)))
}

/// Runs a compaction (when there is anything new), refreshes the HATS collection pointer and
/// collects garbage.
pub async fn run(opts: &CompactOptions) -> Result<CompactReport, CompactError> {
    let t0 = Instant::now();
    let loc = Location::open(&opts.catalog)?;
    let snap = commit::snapshot(&loc).await?;
    let mut report = CompactReport {
        catalog: loc.uri.clone(),
        ..Default::default()
    };
    if needs_compaction(&snap) {
        report = compact_snapshot(&loc, &snap, opts).await?;
    }
    let latest = commit::snapshot(&loc).await?;
    if let Some(g) = &latest.generation {
        write_collection_pointer(&loc, g).await?;
        commit::write_checkpoint(&loc, &latest).await?;
    }
    report.gc_deleted = collect_garbage(&loc, opts.grace).await?;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

async fn write_collection_pointer(loc: &Location, g: &Generation) -> Result<(), CompactError> {
    let text = crate::catalog::hats::collection_properties(
        SOURCES,
        &g.sources_dir,
        g.margin_dir.as_deref(),
    );
    put(
        loc,
        &format!("{SOURCES}/collection.properties"),
        bytes::Bytes::from(text),
    )
    .await?;
    Ok(())
}

/// One compaction under way: what its steps share.
struct Compaction<'a> {
    loc: &'a Location,
    snap: &'a Snapshot,
    opts: &'a CompactOptions,
    /// The snapshot's tables, in a context that spills sorts beyond the memory limit.
    ctx: SessionContext,
    run_id: String,
    gen_name: String,
    margin_name: String,
    /// Files written so far (the commit's `add`).
    add: Vec<FileEntry>,
    report: CompactReport,
}

async fn compact_snapshot(
    loc: &Location,
    snap: &Snapshot,
    opts: &CompactOptions,
) -> Result<CompactReport, CompactError> {
    let run_id = commit::new_run_id();
    let gen_name = format!(
        "gen-{:06}-{}",
        snap.version + 1,
        &run_id[run_id.len().saturating_sub(8)..]
    );
    let margin_name = format!("{gen_name}_{}arcs", opts.margin_arcsec);
    let ctx = session::new_context_with_memory(loc, Some(opts.memory_limit))?;
    session::register_snapshot(&ctx, loc, snap)?;
    let mut c = Compaction {
        loc,
        snap,
        opts,
        ctx,
        run_id,
        report: CompactReport {
            catalog: loc.uri.clone(),
            generation: Some(gen_name.clone()),
            ..Default::default()
        },
        gen_name,
        margin_name,
        add: Vec::new(),
    };
    let parts = c.partitions().await?;
    let (closed, margin_closed) = c.write_partitions(&parts).await?;
    c.write_outside().await?;
    let max_order = c.write_metadata(&parts, &closed, &margin_closed).await?;
    let generation = Generation {
        sources_dir: c.gen_name.clone(),
        margin_dir: if margin_closed.is_empty() && closed.is_empty() {
            None
        } else {
            Some(c.margin_name.clone())
        },
        partitions: closed.len(),
        max_order,
        margin_arcsec: Some(opts.margin_arcsec),
    };
    c.commit(generation).await
}

impl Compaction<'_> {
    /// Commits the switch: everything live before becomes garbage, the new generation live.
    async fn commit(mut self, generation: Generation) -> Result<CompactReport, CompactError> {
        let remove: Vec<String> = [SOURCES, EXPOSURES, SOURCES_MARGIN]
            .iter()
            .flat_map(|t| {
                self.snap
                    .files
                    .get(*t)
                    .into_iter()
                    .flatten()
                    .map(|f| f.path.clone())
            })
            .collect();
        self.report.files_merged = remove.len();
        let mut version = self.snap.version + 1;
        for _ in 0..64 {
            let record = CommitRecord {
                version,
                run_id: self.run_id.clone(),
                created_at: commit::now_rfc3339(),
                pipeline_version: env!("CARGO_PKG_VERSION").to_string(),
                operation: "compact".into(),
                add: self.add.clone(),
                remove: remove.clone(),
                inputs: Vec::new(),
                generation: Some(generation.clone()),
            };
            if commit::try_put(self.loc, &record).await? {
                self.report.version = Some(version);
                return Ok(self.report);
            }
            // Someone committed meanwhile: fine as long as everything merged is still live (new
            // increments simply stay live next to the new generation).
            let fresh = commit::snapshot(self.loc).await?;
            if !remove.iter().all(|p| fresh.is_live(p)) {
                return Err(CompactError::Conflict);
            }
            version = fresh.version + 1;
        }
        Err(CompactError::Commit(commit::CommitError::Contended {
            uri: self.loc.uri.clone(),
            attempts: 64,
        }))
    }
}

/// Casts a query batch to the catalog schema (same columns; restores field metadata).
fn conform(
    b: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, CompactError> {
    RecordBatch::try_new(schema.clone(), b.columns().to_vec())
        .map_err(|e| CompactError::Query(e.to_string()))
}
