//! Steps 2–4: one pass over the located sources sorted by `_healpix_29`, writing each
//! partition's file and gathering the rows near its edges into its margin file; then the
//! sources without a position and the exposures, outside the HATS dataset. Row groups are
//! encoded in parallel and streamed to the store.

use super::{CompactError, Compaction, conform, query};
use crate::catalog::commit::FileEntry;
use crate::catalog::hats::Pixel;
use crate::catalog::writer::{self, ParallelWriter};
use crate::catalog::{EXPOSURES, SOURCES, margin, schema};
use crate::storage::Location;
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{Float64Type, Int64Type};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use parquet::file::metadata::ParquetMetaData;
use std::collections::BTreeMap;
use tokio::io::AsyncWriteExt;

/// An open partition file: row groups encoded in parallel, streamed to the store.
pub(super) struct PartWriter {
    rel: String,
    writer: Option<ParallelWriter>,
    upload: BufWriter,
    bytes: u64,
    healpix: Option<[i64; 2]>,
}

/// A written file.
pub(super) struct Closed {
    rel: String,
    pub(super) rows: u64,
    pub(super) bytes: u64,
    healpix: Option<[i64; 2]>,
    pub(super) md: ParquetMetaData,
}

impl Closed {
    pub(super) fn entry(&self, table: &str) -> FileEntry {
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
        let writer = ParallelWriter::try_new(schema.clone(), writer::properties(schema, sort_col))
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
        if let Some([lo, hi]) = crate::catalog::healpix_range(b) {
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

/// Partition files written, with the pixel each covers.
pub(super) type Written = Vec<(Pixel, Closed)>;

impl Compaction<'_> {
    /// Steps 2 and 3: the partition files and the margin files.
    pub(super) async fn write_partitions(
        &mut self,
        parts: &[Pixel],
    ) -> Result<(Written, Written), CompactError> {
        let ranges: Vec<(i64, i64)> = parts.iter().map(|p| p.index_range()).collect();
        let schema_ref = schema::SOURCES.clone();
        let hp_col = schema_ref
            .index_of(schema::HEALPIX_29)
            .map_err(|e| CompactError::Query(e.to_string()))?;
        let m_order = margin::margin_order(self.opts.margin_arcsec);

        // 2. One sorted pass: partition files, and the margin rows of each partition.
        let mut stream = query(
            &self.ctx,
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
                    let rel = format!("{SOURCES}/{}/{}", self.gen_name, parts[pi].file_path());
                    current = Some((
                        pi,
                        PartWriter::open(self.loc, rel, &schema_ref, Some(hp_col))?,
                    ));
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
                            parts,
                            pi,
                            ra.value(i),
                            dec.value(i),
                            self.opts.margin_arcsec,
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
            let rel = format!("{SOURCES}/{}/{}", self.margin_name, parts[pi].file_path());
            let mut w = PartWriter::open(self.loc, rel, &schema_ref, Some(hp_col))?;
            for b in &batches {
                w.write(b).await?;
            }
            let c = w.close().await?;
            margin_closed.push((parts[pi], c));
        }
        Ok((closed, margin_closed))
    }

    /// Step 4: sources without a position (no WCS) and the exposures.
    pub(super) async fn write_outside(&mut self) -> Result<(), CompactError> {
        let schema_ref = schema::SOURCES.clone();
        // 4. Sources without a position (no WCS) and the exposures, outside the HATS dataset.
        let mut unlocated: Option<PartWriter> = None;
        let mut stream = query(
            &self.ctx,
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
                    self.loc,
                    format!("{SOURCES}/{}/unlocated.parquet", self.gen_name),
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
            self.report.unlocated_rows = c.rows;
            self.add.push(c.entry(SOURCES));
        }
        let exp_schema = schema::EXPOSURES.clone();
        let exp_col = exp_schema.index_of("exposure_id").ok();
        let mut exp_writer: Option<PartWriter> = None;
        let mut stream = query(&self.ctx, "SELECT * FROM exposures ORDER BY exposure_id").await?;
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
                    self.loc,
                    format!("{EXPOSURES}/{}/exposures.parquet", self.gen_name),
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
            self.report.exposures = c.rows;
            self.add.push(c.entry(EXPOSURES));
        }
        Ok(())
    }
}
