//! Positional cross-match of two sky tables: every pair closer than a radius (or the k nearest
//! right rows of each left row), with the separation.
//!
//! The sky is cut into units: the left table's HATS partitions, or — for tables that are not
//! partitioned — balanced HEALPix pixels made from a histogram of the left rows (the same
//! adaptive scheme as compaction). A unit reads its left rows (exactly those in the pixel, so
//! each left row is matched once) and the right rows that can lie within the radius:
//!
//! - the right partition of the same pixel plus its margin cache, when the right table has one
//!   at least as wide as the radius;
//! - otherwise the right rows of the pixel and of its neighbouring cells (the external edge, at
//!   an order whose cells are at least twice the radius across), read by `_healpix_29` range.
//!
//! Units are read through the pruning Parquet scans and matched in memory (right rows sorted by
//! declination, a band search per left row, exact separation by unit vectors), spread over the
//! plan's output partitions so they run in parallel.

use super::table::{SkyFile, SkyTable};
use crate::catalog::hats::{INDEX_ORDER, Pixel};
use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use astropipe_udfs::region::ranges_predicate;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Rows per unit when the left table is not HATS-partitioned.
const UNIT_ROWS: u64 = 200_000;
/// Order of the histogram units are made from.
const HIST_ORDER: u8 = 8;

/// Which input a column of the output comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Left(usize),
    Right(usize),
    Sep,
}

/// The table `xmatch('left', 'right', radius_arcsec [, k])` returns.
#[derive(Debug)]
pub struct XmatchTable {
    left: Arc<SkyTable>,
    right: Arc<SkyTable>,
    radius_arcsec: f64,
    k: Option<usize>,
    schema: SchemaRef,
    sources: Vec<Source>,
}

impl XmatchTable {
    pub fn new(
        left: Arc<SkyTable>,
        right: Arc<SkyTable>,
        radius_arcsec: f64,
        k: Option<usize>,
    ) -> Result<Self> {
        if left.spatial.is_none() || right.spatial.is_none() {
            return plan_err!("xmatch needs two tables with ra, dec and _healpix_29 columns");
        }
        if !(radius_arcsec > 0.0 && radius_arcsec <= 3600.0) {
            return plan_err!("xmatch radius must be in (0, 3600] arcseconds, got {radius_arcsec}");
        }
        if k == Some(0) {
            return plan_err!("xmatch k must be at least 1");
        }
        let (ls, rs) = if left.name == right.name {
            ("_left".to_string(), "_right".to_string())
        } else {
            (format!("_{}", left.name), format!("_{}", right.name))
        };
        let mut fields = Vec::new();
        let mut sources = Vec::new();
        for (i, f) in left.schema.fields().iter().enumerate() {
            fields.push(
                f.as_ref()
                    .clone()
                    .with_name(format!("{}{ls}", f.name()))
                    .with_nullable(true),
            );
            sources.push(Source::Left(i));
        }
        for (i, f) in right.schema.fields().iter().enumerate() {
            fields.push(
                f.as_ref()
                    .clone()
                    .with_name(format!("{}{rs}", f.name()))
                    .with_nullable(true),
            );
            sources.push(Source::Right(i));
        }
        let mut md = std::collections::HashMap::new();
        md.insert("unit".to_string(), "arcsec".to_string());
        md.insert("ucd".to_string(), "pos.angDistance".to_string());
        md.insert(
            "description".to_string(),
            "separation of the pair".to_string(),
        );
        fields.push(Field::new("sep_arcsec", DataType::Float64, false).with_metadata(md));
        sources.push(Source::Sep);
        Ok(XmatchTable {
            left,
            right,
            radius_arcsec,
            k,
            schema: Arc::new(Schema::new(fields)),
            sources,
        })
    }

    /// The units: the left table's partitions, or balanced pixels from a histogram.
    async fn units(&self, state: &dyn Session) -> Result<Vec<Pixel>> {
        let pixels: BTreeSet<Pixel> = self.left.files.iter().filter_map(|f| f.pixel).collect();
        if !pixels.is_empty()
            && self
                .left
                .files
                .iter()
                .all(|f| f.pixel.is_some() || f.range.is_some_and(|r| r.0 > r.1))
        {
            return Ok(pixels.into_iter().collect());
        }
        let sp = self.left.spatial.as_ref().expect("checked in new");
        let hp_idx = self.left.schema.index_of(&sp.healpix)?;
        let files: Vec<&SkyFile> = self.left.files.iter().collect();
        let plan = self
            .left
            .scan_files(state, &files, Some(&vec![hp_idx]), None, None, false)?;
        let batches = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
        let shift = 2 * (INDEX_ORDER - HIST_ORDER) as u32;
        let mut hist: BTreeMap<u64, u64> = BTreeMap::new();
        for b in &batches {
            let c = b.column(0).as_primitive::<Int64Type>();
            for v in c.iter().flatten() {
                *hist.entry((v as u64) >> shift).or_default() += 1;
            }
        }
        Ok(
            crate::catalog::hats::alignment(&hist, HIST_ORDER, UNIT_ROWS)
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
        )
    }

    /// `_healpix_29` ranges holding every right row within the radius of pixel `p`.
    fn neighbourhood(&self, p: Pixel) -> Vec<(i64, i64)> {
        let r_deg = self.radius_arcsec / 3600.0;
        // Deepest order whose cells are at least twice the radius across, but at most three
        // orders below the pixel (a ring of 32 cells: few ranges to test, little extra read).
        let d = ((58.6 / (2.0 * r_deg)).log2().floor()).clamp(0.0, INDEX_ORDER as f64) as u8;
        let d = d.min(p.order + 3);
        let mut ranges: Vec<(i64, i64)> = vec![p.index_range()];
        if d >= p.order {
            let shift = 2 * (INDEX_ORDER - d) as u32;
            for h in cdshealpix::nested::external_edge(p.order, p.pixel, d - p.order).iter() {
                ranges.push(((h << shift) as i64, ((h + 1) << shift) as i64));
            }
        } else {
            // Cells smaller than the radius: a cone around the pixel.
            let (lon, lat) = cdshealpix::nested::center(p.order, p.pixel);
            let circum = cdshealpix::nested::vertices(p.order, p.pixel)
                .iter()
                .map(|&(a, b)| {
                    astropipe_udfs::sphere::ang_sep_deg(
                        lon.to_degrees(),
                        lat.to_degrees(),
                        a.to_degrees(),
                        b.to_degrees(),
                    )
                })
                .fold(0.0, f64::max);
            if let Some(v) = (astropipe_udfs::region::Region::Cone {
                ra: lon.to_degrees(),
                dec: lat.to_degrees(),
                radius: circum + r_deg,
            })
            .healpix_ranges(256)
            {
                ranges.extend(v);
            } else {
                ranges.push((0, i64::MAX));
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for r in ranges {
            match merged.last_mut() {
                Some(l) if r.0 <= l.1 => l.1 = l.1.max(r.1),
                _ => merged.push(r),
            }
        }
        merged
    }
}

/// Columns of one side to read: what the output needs, plus ra, dec and the index.
fn side_columns(t: &SkyTable, wanted: &BTreeSet<usize>) -> Result<(Vec<usize>, [usize; 3])> {
    let sp = t.spatial.as_ref().expect("checked");
    let mut cols: BTreeSet<usize> = wanted.clone();
    let pos = [
        t.schema.index_of(&sp.ra)?,
        t.schema.index_of(&sp.dec)?,
        t.schema.index_of(&sp.healpix)?,
    ];
    cols.extend(pos);
    let cols: Vec<usize> = cols.into_iter().collect();
    let at = |i: usize| cols.iter().position(|&c| c == i).unwrap_or(0);
    Ok((cols.clone(), [at(pos[0]), at(pos[1]), at(pos[2])]))
}

#[async_trait]
impl TableProvider for XmatchTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let out_cols: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.sources.len()).collect());
        let mut lw = BTreeSet::new();
        let mut rw = BTreeSet::new();
        for &c in &out_cols {
            match self.sources[c] {
                Source::Left(i) => {
                    lw.insert(i);
                }
                Source::Right(i) => {
                    rw.insert(i);
                }
                Source::Sep => {}
            }
        }
        let (lcols, lpos) = side_columns(&self.left, &lw)?;
        let (rcols, rpos) = side_columns(&self.right, &rw)?;
        let lhp = &self.left.spatial.as_ref().expect("checked").healpix;
        let rhp = &self.right.spatial.as_ref().expect("checked").healpix;
        let margin = self
            .right
            .margin
            .as_ref()
            .filter(|(_, threshold)| *threshold >= self.radius_arcsec);
        let mut units = Vec::new();
        for p in self.units(state).await? {
            let range = p.index_range();
            let lfiles = self.left.files_in(Some(&[(range.0, range.1)]));
            if lfiles.is_empty() {
                continue;
            }
            let left = self.left.scan_files(
                state,
                &lfiles,
                Some(&lcols),
                Some(ranges_predicate(lhp, &[range])),
                None,
                true,
            )?;
            // The right partition of this very pixel and its margin, or the neighbourhood.
            let own: Vec<&SkyFile> = self
                .right
                .files
                .iter()
                .filter(|f| f.pixel == Some(p))
                .collect();
            let mut right = Vec::new();
            match margin {
                Some((m, _)) if !own.is_empty() => {
                    right.push(self.right.scan_files(
                        state,
                        &own,
                        Some(&rcols),
                        None,
                        None,
                        false,
                    )?);
                    let mfiles: Vec<&SkyFile> =
                        m.files.iter().filter(|f| f.pixel == Some(p)).collect();
                    if !mfiles.is_empty() {
                        right.push(m.scan_files(
                            state,
                            &mfiles,
                            Some(&rcols),
                            None,
                            None,
                            false,
                        )?);
                    }
                }
                _ => {
                    let ranges = self.neighbourhood(p);
                    let rfiles = self.right.files_in(Some(&ranges));
                    if !rfiles.is_empty() {
                        right.push(self.right.scan_files(
                            state,
                            &rfiles,
                            Some(&rcols),
                            Some(ranges_predicate(rhp, &ranges)),
                            None,
                            true,
                        )?);
                    }
                }
            }
            units.push(Unit {
                pixel: p,
                left,
                right,
            });
        }
        let out_schema = Arc::new(self.schema.project(&out_cols)?);
        // Where each output column is in the read left/right columns.
        let map: Vec<Source> = out_cols
            .iter()
            .map(|&c| match self.sources[c] {
                Source::Left(i) => Source::Left(lcols.iter().position(|&x| x == i).unwrap_or(0)),
                Source::Right(i) => Source::Right(rcols.iter().position(|&x| x == i).unwrap_or(0)),
                Source::Sep => Source::Sep,
            })
            .collect();
        let partitions = state
            .config()
            .target_partitions()
            .max(1)
            .min(units.len().max(1));
        Ok(Arc::new(XmatchExec {
            units: Arc::new(units),
            params: Arc::new(Params {
                radius_deg: self.radius_arcsec / 3600.0,
                k: self.k,
                lpos,
                rpos,
                map,
                schema: out_schema.clone(),
            }),
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(out_schema),
                Partitioning::UnknownPartitioning(partitions),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
        }))
    }
}

#[derive(Debug)]
struct Unit {
    pixel: Pixel,
    left: Arc<dyn ExecutionPlan>,
    right: Vec<Arc<dyn ExecutionPlan>>,
}

#[derive(Debug)]
struct Params {
    radius_deg: f64,
    k: Option<usize>,
    /// (ra, dec, index) positions in the read columns.
    lpos: [usize; 3],
    rpos: [usize; 3],
    map: Vec<Source>,
    schema: SchemaRef,
}

/// The cross-match plan: its partitions take the units round-robin.
#[derive(Debug)]
pub struct XmatchExec {
    units: Arc<Vec<Unit>>,
    params: Arc<Params>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for XmatchExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "XmatchExec: radius={}arcsec, k={:?}, units={}",
            self.params.radius_deg * 3600.0,
            self.params.k,
            self.units.len()
        )
    }
}

async fn collect_all(
    plan: &Arc<dyn ExecutionPlan>,
    ctx: &Arc<TaskContext>,
) -> Result<Vec<RecordBatch>> {
    let n = plan.properties().partitioning.partition_count();
    let mut out = Vec::new();
    for p in 0..n {
        let s = plan.execute(p, ctx.clone())?;
        out.extend(s.try_collect::<Vec<_>>().await?);
    }
    Ok(out)
}

impl ExecutionPlan for XmatchExec {
    fn name(&self) -> &str {
        "XmatchExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let n = self.properties.partitioning.partition_count().max(1);
        let units = self.units.clone();
        let params = self.params.clone();
        let mine: Vec<usize> = (0..units.len()).filter(|i| i % n == partition).collect();
        let schema = params.schema.clone();
        let stream = futures::stream::iter(mine).then(move |i| {
            let units = units.clone();
            let params = params.clone();
            let ctx = context.clone();
            async move {
                let u = &units[i];
                let left = collect_all(&u.left, &ctx).await?;
                let mut right = Vec::new();
                for r in &u.right {
                    right.extend(collect_all(r, &ctx).await?);
                }
                let pixel = u.pixel;
                tokio::task::spawn_blocking(move || match_unit(&params, pixel, &left, &right))
                    .await
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.try_filter(|b| futures::future::ready(b.num_rows() > 0)),
        )))
    }
}

fn concat(batches: &[RecordBatch]) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    Ok(Some(arrow::compute::concat_batches(
        &first.schema(),
        batches,
    )?))
}

fn unit_vector(ra: f64, dec: f64) -> [f64; 3] {
    astropipe_udfs::sphere::unit_vector(ra, dec)
}

/// Matches the left rows of `pixel` against the right rows; returns the output rows.
fn match_unit(
    p: &Params,
    pixel: Pixel,
    left: &[RecordBatch],
    right: &[RecordBatch],
) -> Result<RecordBatch> {
    let empty = || RecordBatch::new_empty(p.schema.clone());
    let (Some(l), Some(r)) = (concat(left)?, concat(right)?) else {
        return Ok(empty());
    };
    let f64col = |b: &RecordBatch, i: usize| -> Result<Float64Array> {
        Ok(arrow::compute::cast(b.column(i), &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    };
    let (lra, ldec) = (f64col(&l, p.lpos[0])?, f64col(&l, p.lpos[1])?);
    let lhp = l.column(p.lpos[2]).as_primitive::<Int64Type>().clone();
    let (rra, rdec) = (f64col(&r, p.rpos[0])?, f64col(&r, p.rpos[1])?);
    let (lo, hi) = pixel.index_range();
    // Right rows with a position, sorted by declination.
    let mut order: Vec<u32> = (0..r.num_rows() as u32)
        .filter(|&i| rra.is_valid(i as usize) && rdec.is_valid(i as usize))
        .collect();
    order.sort_by(|&a, &b| rdec.value(a as usize).total_cmp(&rdec.value(b as usize)));
    let decs: Vec<f64> = order.iter().map(|&i| rdec.value(i as usize)).collect();
    let vecs: Vec<[f64; 3]> = order
        .iter()
        .map(|&i| unit_vector(rra.value(i as usize), rdec.value(i as usize)))
        .collect();
    let r_deg = p.radius_deg;
    // Squared chord of the radius, slightly grown so rounding never drops a pair (the exact
    // separation decides below).
    let chord2 = (2.0 * (r_deg.to_radians() / 2.0).sin()).powi(2) * (1.0 + 1e-9) + 1e-30;
    // Left rows of this unit: in the pixel (reads may bring neighbours), with a position.
    let lrows: Vec<usize> = (0..l.num_rows())
        .filter(|&i| {
            lhp.is_valid(i)
                && lhp.value(i) >= lo
                && lhp.value(i) < hi
                && lra.is_valid(i)
                && ldec.is_valid(i)
        })
        .collect();
    let pairs: Vec<(u32, u32, f64)> = lrows
        .par_chunks(4096)
        .flat_map_iter(|chunk| {
            let mut out = Vec::new();
            for &i in chunk {
                let (ra, dec) = (lra.value(i), ldec.value(i));
                let v = unit_vector(ra, dec);
                let a = decs.partition_point(|&d| d < dec - r_deg);
                let b = decs.partition_point(|&d| d <= dec + r_deg);
                let mut found: Vec<(u32, f64)> = Vec::new();
                for j in a..b {
                    // Chord length: exact for tiny radii, where cosines round to 1.
                    let w = vecs[j];
                    let (dx, dy, dz) = (v[0] - w[0], v[1] - w[1], v[2] - w[2]);
                    if dx * dx + dy * dy + dz * dz <= chord2 {
                        // Exact separation (Vincenty) for the pair.
                        let sep = astropipe_udfs::sphere::ang_sep_deg(
                            ra,
                            dec,
                            rra.value(order[j] as usize),
                            rdec.value(order[j] as usize),
                        );
                        if sep <= r_deg {
                            found.push((order[j], sep));
                        }
                    }
                }
                if let Some(k) = p.k {
                    found.sort_by(|x, y| x.1.total_cmp(&y.1));
                    found.truncate(k);
                }
                out.extend(found.into_iter().map(|(j, s)| (i as u32, j, s * 3600.0)));
            }
            out
        })
        .collect();
    if pairs.is_empty() {
        return Ok(empty());
    }
    let li = UInt32Array::from_iter_values(pairs.iter().map(|x| x.0));
    let ri = UInt32Array::from_iter_values(pairs.iter().map(|x| x.1));
    let sep: ArrayRef = Arc::new(Float64Array::from_iter_values(pairs.iter().map(|x| x.2)));
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(p.map.len());
    for s in &p.map {
        cols.push(match *s {
            Source::Left(i) => arrow::compute::take(l.column(i), &li, None)?,
            Source::Right(i) => arrow::compute::take(r.column(i), &ri, None)?,
            Source::Sep => sep.clone(),
        });
    }
    // Column types follow the output schema (nullability relaxed there); `count(*)` asks for
    // no column at all.
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(pairs.len()));
    Ok(RecordBatch::try_new_with_options(
        p.schema.clone(),
        cols,
        &opts,
    )?)
}
