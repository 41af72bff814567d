//! `astropipe compact`: merges the committed increments into a new HATS generation of the
//! `sources` table (balanced partitions, at most `max_rows` rows each) with its margin cache,
//! rewrites `exposures` as one sorted file, commits the switch atomically, points the HATS
//! collection at the new generation, and garbage-collects files no version needs any more.
//!
//! The data stream through DataFusion (`ORDER BY _healpix_29` spills to disk beyond the memory
//! limit), so catalogs larger than memory compact too. A crash at any point leaves the previous
//! version readable: new files are invisible until the commit record exists, and nothing is
//! deleted before the grace period.

use super::commit::{self, CommitRecord, FileEntry, Generation, Snapshot};
use super::hats::{self, Pixel};
use super::margin;
use super::writer::{self, ParallelWriter};
use super::{EXPOSURES, SOURCES, schema};
use crate::query::session;
use crate::storage::Location;
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::file::metadata::ParquetMetaData;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Table name of the margin cache in the commit log.
pub const SOURCES_MARGIN: &str = "sources_margin";

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

/// An open partition file: row groups encoded in parallel, streamed to the store.
struct PartWriter {
    rel: String,
    writer: Option<ParallelWriter>,
    upload: BufWriter,
    bytes: u64,
    healpix: Option<[i64; 2]>,
}

/// A written file.
struct Closed {
    rel: String,
    rows: u64,
    bytes: u64,
    healpix: Option<[i64; 2]>,
    md: ParquetMetaData,
}

impl Closed {
    fn entry(&self, table: &str) -> FileEntry {
        FileEntry::data(table, self.rel.clone(), self.rows, self.bytes).with_healpix(self.healpix)
    }
}

impl PartWriter {
    fn open(
        loc: &Location,
        rel: String,
        schema: &arrow::datatypes::SchemaRef,
        sort_col: Option<usize>,
    ) -> Result<Self, CompactError> {
        let upload = BufWriter::new(loc.store.clone(), loc.path(&rel));
        let writer = ParallelWriter::try_new(schema.clone(), writer::properties(sort_col))
            .map_err(|e| CompactError::Write {
                path: rel.clone(),
                message: e.to_string(),
            })?;
        Ok(PartWriter {
            rel,
            writer: Some(writer),
            upload,
            bytes: 0,
            healpix: None,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> CompactError {
        CompactError::Write {
            path: self.rel.clone(),
            message: e.to_string(),
        }
    }

    async fn write(&mut self, b: &RecordBatch) -> Result<(), CompactError> {
        let Some(mut w) = self.writer.take() else {
            return Err(self.err("writer already closed"));
        };
        if let Some([lo, hi]) = super::healpix_range(b) {
            self.healpix = Some(match self.healpix {
                Some([a, z]) => [a.min(lo), z.max(hi)],
                None => [lo, hi],
            });
        }
        let b = b.clone();
        let (w, r) = tokio::task::spawn_blocking(move || {
            let r = w.write(&b).map(|_| w.take_bytes());
            (w, r)
        })
        .await
        .map_err(|e| self.err(e))?;
        self.writer = Some(w);
        let bytes = r.map_err(|e| self.err(e))?;
        self.bytes += bytes.len() as u64;
        if !bytes.is_empty() {
            self.upload
                .write_all(&bytes)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn close(mut self) -> Result<Closed, CompactError> {
        let Some(w) = self.writer.take() else {
            return Err(self.err("writer already closed"));
        };
        let rows = w.rows();
        let (md, bytes) = tokio::task::spawn_blocking(move || w.close())
            .await
            .map_err(|e| self.err(e))?
            .map_err(|e| self.err(e))?;
        self.upload
            .write_all(&bytes)
            .await
            .map_err(|e| self.err(e))?;
        self.upload.shutdown().await.map_err(|e| self.err(e))?;
        Ok(Closed {
            rel: self.rel,
            rows,
            bytes: self.bytes + bytes.len() as u64,
            healpix: self.healpix,
            md,
        })
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
    let text = hats::collection_properties(SOURCES, &g.sources_dir, g.margin_dir.as_deref());
    put(
        loc,
        &format!("{SOURCES}/collection.properties"),
        bytes::Bytes::from(text),
    )
    .await?;
    Ok(())
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
    let mut add: Vec<FileEntry> = Vec::new();
    let mut report = CompactReport {
        catalog: loc.uri.clone(),
        generation: Some(gen_name.clone()),
        ..Default::default()
    };

    // 1. Histogram at hist_order, then the adaptive partitions.
    let h = opts.hist_order.min(hats::INDEX_ORDER);
    let shift = 2 * (hats::INDEX_ORDER - h) as u32;
    let mut stream = query(
        &ctx,
        &format!("SELECT {hp} >> {shift} AS p, count(*) AS n FROM sources WHERE {hp} IS NOT NULL GROUP BY 1", hp = schema::HEALPIX_29),
    )
    .await?;
    let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| CompactError::Query(e.to_string()))?;
        let p = b.column(0).as_primitive::<Int64Type>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            histogram.insert(p.value(i) as u64, n.value(i) as u64);
        }
    }
    let parts: Vec<Pixel> = hats::alignment(&histogram, h, opts.max_rows)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let ranges: Vec<(i64, i64)> = parts.iter().map(|p| p.index_range()).collect();
    let schema_ref = schema::SOURCES.clone();
    let hp_col = schema_ref
        .index_of(schema::HEALPIX_29)
        .map_err(|e| CompactError::Query(e.to_string()))?;
    let m_order = margin::margin_order(opts.margin_arcsec);

    // 2. One sorted pass: partition files, and the margin rows of each partition.
    let mut stream = query(
        &ctx,
        &format!(
            "SELECT * FROM sources WHERE {hp} IS NOT NULL ORDER BY {hp}",
            hp = schema::HEALPIX_29
        ),
    )
    .await?;
    let mut current: Option<(usize, PartWriter)> = None;
    let mut closed: Vec<(Pixel, Closed)> = Vec::new();
    let mut margins: BTreeMap<usize, Vec<RecordBatch>> = BTreeMap::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| CompactError::Query(e.to_string()))?;
        let b = conform(&b, &schema_ref)?;
        let idx = b.column(hp_col).as_primitive::<Int64Type>().clone();
        let ra = b
            .column_by_name("ra")
            .map(|c| c.as_primitive::<Float64Type>().clone());
        let dec = b
            .column_by_name("dec")
            .map(|c| c.as_primitive::<Float64Type>().clone());
        let mut start = 0usize;
        while start < b.num_rows() {
            let v = idx.value(start);
            let pi = ranges.partition_point(|r| r.1 <= v);
            if pi >= parts.len() || v < ranges[pi].0 {
                return Err(CompactError::Query(format!(
                    "row with _healpix_29 {v} outside every partition"
                )));
            }
            // Rows of this batch in partition pi.
            let end = start
                + (start..b.num_rows())
                    .take_while(|&i| idx.value(i) < ranges[pi].1)
                    .count();
            let slice = b.slice(start, end - start);
            if current.as_ref().map(|c| c.0) != Some(pi) {
                if let Some((cpi, w)) = current.take() {
                    let c = w.close().await?;
                    closed.push((parts[cpi], c));
                }
                let rel = format!("{SOURCES}/{gen_name}/{}", parts[pi].file_path());
                current = Some((pi, PartWriter::open(loc, rel, &schema_ref, Some(hp_col))?));
            }
            if let Some((_, w)) = current.as_mut() {
                w.write(&slice).await?;
            }
            // Margin rows: only rows whose margin-order cell is on the partition's edge.
            if let (Some(ra), Some(dec)) = (&ra, &dec) {
                let mut dest: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
                for i in start..end {
                    if ra.is_null(i)
                        || dec.is_null(i)
                        || !margin::on_partition_edge(
                            idx.value(i),
                            parts[pi],
                            m_order.max(parts[pi].order),
                        )
                    {
                        continue;
                    }
                    for n in margin::neighbours(
                        &parts,
                        pi,
                        ra.value(i),
                        dec.value(i),
                        opts.margin_arcsec,
                    ) {
                        dest.entry(n).or_default().push(i as u32);
                    }
                }
                for (n, rows) in dest {
                    let taken = arrow::compute::take_record_batch(&b, &UInt32Array::from(rows))
                        .map_err(|e| CompactError::Query(e.to_string()))?;
                    margins.entry(n).or_default().push(taken);
                }
            }
            start = end;
        }
    }
    if let Some((cpi, w)) = current.take() {
        let c = w.close().await?;
        closed.push((parts[cpi], c));
    }
    drop(stream);

    // 3. Margin catalog files (rows arrive in global _healpix_29 order, so each is sorted).
    let mut margin_closed: Vec<(Pixel, Closed)> = Vec::new();
    for (pi, batches) in margins {
        let rel = format!("{SOURCES}/{margin_name}/{}", parts[pi].file_path());
        let mut w = PartWriter::open(loc, rel, &schema_ref, Some(hp_col))?;
        for b in &batches {
            w.write(b).await?;
        }
        let c = w.close().await?;
        margin_closed.push((parts[pi], c));
    }

    // 4. Sources without a position (no WCS) and the exposures, outside the HATS dataset.
    let mut unlocated: Option<PartWriter> = None;
    let mut stream = query(
        &ctx,
        &format!("SELECT * FROM sources WHERE {} IS NULL", schema::HEALPIX_29),
    )
    .await?;
    while let Some(b) = stream.next().await {
        let b = conform(
            &b.map_err(|e| CompactError::Query(e.to_string()))?,
            &schema_ref,
        )?;
        if b.num_rows() == 0 {
            continue;
        }
        if unlocated.is_none() {
            unlocated = Some(PartWriter::open(
                loc,
                format!("{SOURCES}/{gen_name}/unlocated.parquet"),
                &schema_ref,
                None,
            )?);
        }
        if let Some(w) = unlocated.as_mut() {
            w.write(&b).await?;
        }
    }
    if let Some(w) = unlocated {
        let c = w.close().await?;
        report.unlocated_rows = c.rows;
        add.push(c.entry(SOURCES));
    }
    let exp_schema = schema::EXPOSURES.clone();
    let exp_col = exp_schema.index_of("exposure_id").ok();
    let mut exp_writer: Option<PartWriter> = None;
    let mut stream = query(&ctx, "SELECT * FROM exposures ORDER BY exposure_id").await?;
    while let Some(b) = stream.next().await {
        let b = conform(
            &b.map_err(|e| CompactError::Query(e.to_string()))?,
            &exp_schema,
        )?;
        if b.num_rows() == 0 {
            continue;
        }
        if exp_writer.is_none() {
            exp_writer = Some(PartWriter::open(
                loc,
                format!("{EXPOSURES}/{gen_name}/exposures.parquet"),
                &exp_schema,
                exp_col,
            )?);
        }
        if let Some(w) = exp_writer.as_mut() {
            w.write(&b).await?;
        }
    }
    if let Some(w) = exp_writer {
        let c = w.close().await?;
        report.exposures = c.rows;
        add.push(c.entry(EXPOSURES));
    }

    // 5. HATS metadata of the catalog and its margin.
    let created = commit::now_rfc3339();
    let max_order = parts.iter().map(|p| p.order).max().unwrap_or(0);
    for (catalog_dir, files, table, primary) in [
        (gen_name.clone(), &closed, SOURCES, None),
        (
            margin_name.clone(),
            &margin_closed,
            SOURCES_MARGIN,
            Some((gen_name.clone(), opts.margin_arcsec)),
        ),
    ] {
        let rows: u64 = files.iter().map(|f| f.1.rows).sum();
        for (_, c) in files.iter() {
            add.push(c.entry(table));
        }
        let base = format!("{SOURCES}/{catalog_dir}");
        let pixels: Vec<Pixel> = files.iter().map(|f| f.0).collect();
        let sky_fraction = pixels
            .iter()
            .map(|p| 1.0 / (12.0 * 4f64.powi(p.order as i32)))
            .sum::<f64>();
        let bytes: u64 = files.iter().map(|f| f.1.bytes).sum();
        let props = hats::Properties {
            name: if primary.is_some() {
                format!("{SOURCES}_margin")
            } else {
                SOURCES.to_string()
            },
            dataproduct_type: if primary.is_some() {
                "margin"
            } else {
                "object"
            },
            nrows: rows,
            max_rows: opts.max_rows,
            max_order,
            sky_fraction,
            est_size_kb: bytes.div_ceil(1024),
            primary,
        };
        let mut meta: Vec<(String, bytes::Bytes)> = vec![
            (
                format!("{base}/hats.properties"),
                bytes::Bytes::from(props.render(&created)),
            ),
            (
                format!("{base}/partition_info.csv"),
                bytes::Bytes::from(hats::partition_info_csv(&pixels)),
            ),
            (
                format!("{base}/dataset/_common_metadata"),
                hats::common_metadata(&schema_ref).map_err(|e| CompactError::Write {
                    path: base.clone(),
                    message: e.to_string(),
                })?,
            ),
        ];
        let parts_md: Vec<(String, ParquetMetaData)> = files
            .iter()
            .map(|f| {
                (
                    f.0.file_path().trim_start_matches("dataset/").to_string(),
                    f.1.md.clone(),
                )
            })
            .collect();
        if let Some(m) = hats::combined_metadata(&parts_md).map_err(|e| CompactError::Write {
            path: base.clone(),
            message: e.to_string(),
        })? {
            meta.push((format!("{base}/dataset/_metadata"), m));
        }
        for (rel, bytes) in meta {
            let n = put(loc, &rel, bytes).await?;
            add.push(FileEntry::meta(SOURCES, rel, n));
        }
        if table == SOURCES {
            report.rows = rows;
            report.partitions = pixels.len();
        } else {
            report.margin_rows = rows;
        }
    }
    report.max_order = max_order;

    // 6. Commit: everything live before becomes garbage, the new generation live.
    let remove: Vec<String> = [SOURCES, EXPOSURES, SOURCES_MARGIN]
        .iter()
        .flat_map(|t| {
            snap.files
                .get(*t)
                .into_iter()
                .flatten()
                .map(|f| f.path.clone())
        })
        .collect();
    report.files_merged = remove.len();
    let generation = Generation {
        sources_dir: gen_name.clone(),
        margin_dir: if margin_closed.is_empty() && closed.is_empty() {
            None
        } else {
            Some(margin_name.clone())
        },
        partitions: closed.len(),
        max_order,
        margin_arcsec: Some(opts.margin_arcsec),
    };
    let mut version = snap.version + 1;
    for _ in 0..64 {
        let record = CommitRecord {
            version,
            run_id: run_id.clone(),
            created_at: commit::now_rfc3339(),
            pipeline_version: env!("CARGO_PKG_VERSION").to_string(),
            operation: "compact".into(),
            add: add.clone(),
            remove: remove.clone(),
            inputs: Vec::new(),
            generation: Some(generation.clone()),
        };
        if commit::try_put(loc, &record).await? {
            report.version = Some(version);
            return Ok(report);
        }
        // Someone committed meanwhile: fine as long as everything merged is still live (new
        // increments simply stay live next to the new generation).
        let fresh = commit::snapshot(loc).await?;
        if !remove.iter().all(|p| fresh.is_live(p)) {
            return Err(CompactError::Conflict);
        }
        version = fresh.version + 1;
    }
    Err(CompactError::Commit(commit::CommitError::Contended {
        uri: loc.uri.clone(),
        attempts: 64,
    }))
}

/// Casts a query batch to the catalog schema (same columns; restores field metadata).
fn conform(
    b: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, CompactError> {
    RecordBatch::try_new(schema.clone(), b.columns().to_vec())
        .map_err(|e| CompactError::Query(e.to_string()))
}

/// Deletes objects under the catalog that the latest version does not reference: files removed
/// by a commit more than `grace` ago, and files never committed (a crashed or lost writer) last
/// modified more than `grace` ago. The commit log, the collection pointer and the current HATS
/// generation are kept.
pub async fn collect_garbage(loc: &Location, grace: Duration) -> Result<usize, CompactError> {
    let snap = commit::snapshot(loc).await?;
    let live: std::collections::HashSet<String> = snap
        .live_paths()
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let grace = grace.as_secs() as i64;
    // The generation HATS readers are pointed at stays whole until the next compaction, even
    // where a reprocess has replaced some of its files in the commit log.
    let protected: Vec<String> = snap
        .generation
        .iter()
        .flat_map(|g| {
            let mut v = vec![
                format!("{SOURCES}/{}/", g.sources_dir),
                format!("{EXPOSURES}/{}/", g.sources_dir),
            ];
            if let Some(m) = &g.margin_dir {
                v.push(format!("{SOURCES}/{m}/"));
            }
            v
        })
        .collect();
    let root = loc.root.to_string();
    let objects: Vec<_> = loc
        .store
        .list(Some(&loc.root))
        .try_collect()
        .await
        .map_err(|e| CompactError::Write {
            path: root.clone(),
            message: e.to_string(),
        })?;
    let mut deleted = 0;
    for m in objects {
        let full = m.location.to_string();
        let rel = full
            .strip_prefix(&root)
            .unwrap_or(&full)
            .trim_start_matches('/')
            .to_string();
        if rel.starts_with(commit::COMMITS_DIR)
            || rel.ends_with("collection.properties")
            || live.contains(&rel)
            || protected.iter().any(|p| rel.starts_with(p.as_str()))
        {
            continue;
        }
        let old_enough = match snap
            .removed_at
            .get(&rel)
            .and_then(|t| commit::parse_rfc3339(t))
        {
            Some(removed) => now - removed >= grace,
            None => now - m.last_modified.timestamp() >= grace,
        };
        // Only files the catalog writes: table directories.
        let ours = [SOURCES, EXPOSURES]
            .iter()
            .any(|t| rel.starts_with(&format!("{t}/")));
        if old_enough && ours {
            loc.store
                .delete(&m.location)
                .await
                .map_err(|e| CompactError::Write {
                    path: rel.clone(),
                    message: e.to_string(),
                })?;
            deleted += 1;
        }
    }
    if let Some(dir) = loc.local_dir() {
        deleted += sweep_local_staging(&dir, grace);
    }
    Ok(deleted)
}

/// The local store writes uploads to `<name>#<n>` files and renames them when complete; its
/// listing hides them, so the ones a killed writer left are found on the filesystem.
fn sweep_local_staging(root: &std::path::Path, grace_secs: i64) -> usize {
    fn walk(dir: &std::path::Path, grace_secs: i64, n: &mut usize) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                walk(&p, grace_secs, n);
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            let staging = name
                .rsplit_once('#')
                .is_some_and(|(_, s)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            let age = md
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if staging && age >= grace_secs && std::fs::remove_file(&p).is_ok() {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    for t in [SOURCES, EXPOSURES] {
        walk(&root.join(t), grace_secs, &mut n);
    }
    n
}
