//! Positional joins that prune like `xmatch`: a join of any table (a TAP upload, a subquery)
//! with a sky table on a proximity condition — `cone_contains(s.ra, s.dec, u.ra, u.dec, r)`,
//! `ang_sep_deg(u.ra, u.dec, s.ra, s.dec) < r` (what ADQL's `CONTAINS(POINT, CIRCLE)` and
//! `DISTANCE(...) < r` become), constant `r` — would otherwise be a nested-loop join over the
//! whole sky table. [`SkyJoinRule`] rewrites it into a [`SkyJoinNode`]; its execution
//! ([`SkyJoinExec`]):
//!
//! 1. collects the other side (its memory charged to the query's pool);
//! 2. indexes its rows by HEALPix cell at the deepest order whose cells are at least twice the
//!    radius across, each row under its own cell and the 8 neighbours;
//! 3. reads only the sky table's files, row groups and pages holding those cells (the
//!    `_healpix_29` ranges, through the same pruning scan as any cone), with the sky side's
//!    own filters;
//! 4. pairs each sky row with the rows indexed under its cell that are within the radius.
//!
//! The original join condition (and the sky side's filters) stay in a filter above, so the
//! answer is exactly the nested-loop join's.

use super::table::SkyTable;
use crate::catalog::hats::INDEX_ORDER;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use astropipe_udfs::region::ranges_predicate;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, Result, ScalarValue};
use datafusion::datasource::DefaultTableSource;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Extension, Filter, JoinType, LogicalPlan, Operator, UserDefinedLogicalNode,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Largest radius rewritten (degrees); wider joins keep the nested loop.
const MAX_RADIUS_DEG: f64 = 10.0;
/// Ranges handed to the Parquet reader for page pruning (the fine ranges choose the files).
/// Few: measured on the 10 M-row bench catalog, 256 ranges made a 10 000-position join 5x
/// slower than 8 (2.08 s vs 0.40 s: the page selections they make cost more than the rows
/// they skip), and files are pruned by the fine ranges anyway.
const READER_RANGES: usize = 8;

/// The proximity condition found in a join filter.
struct Proximity {
    /// (ra, dec) columns of each side, in the order they appear.
    a: (Column, Column),
    b: (Column, Column),
    radius_deg: f64,
}

fn literal_f64(e: &Expr) -> Option<f64> {
    match e {
        Expr::Literal(v, _) => match v.cast_to(&DataType::Float64).ok()? {
            ScalarValue::Float64(Some(x)) if x.is_finite() => Some(x),
            _ => None,
        },
        Expr::Cast(c) => literal_f64(&c.expr),
        Expr::TryCast(c) => literal_f64(&c.expr),
        Expr::BinaryExpr(b) => {
            let (l, r) = (literal_f64(&b.left)?, literal_f64(&b.right)?);
            match b.op {
                Operator::Plus => Some(l + r),
                Operator::Minus => Some(l - r),
                Operator::Multiply => Some(l * r),
                Operator::Divide if r != 0.0 => Some(l / r),
                _ => None,
            }
        }
        _ => None,
    }
}

fn column(e: &Expr) -> Option<Column> {
    match e {
        Expr::Column(c) => Some(c.clone()),
        Expr::Cast(c) => column(&c.expr),
        Expr::TryCast(c) => column(&c.expr),
        _ => None,
    }
}

fn proximity(e: &Expr) -> Option<Proximity> {
    let call = |e: &Expr, name: &str| -> Option<Vec<Expr>> {
        match e {
            Expr::ScalarFunction(f) if f.name() == name => Some(f.args.clone()),
            _ => None,
        }
    };
    let four = |a: &[Expr]| -> Option<((Column, Column), (Column, Column))> {
        Some((
            (column(&a[0])?, column(&a[1])?),
            (column(&a[2])?, column(&a[3])?),
        ))
    };
    if let Some(args) = call(e, "cone_contains")
        && args.len() == 5
    {
        let (a, b) = four(&args)?;
        return Some(Proximity {
            a,
            b,
            radius_deg: literal_f64(&args[4])?,
        });
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (sep, bound) = match op {
        Operator::Lt | Operator::LtEq => (left.as_ref(), right.as_ref()),
        Operator::Gt | Operator::GtEq => (right.as_ref(), left.as_ref()),
        _ => return None,
    };
    let args = call(sep, "ang_sep_deg")?;
    if args.len() != 4 {
        return None;
    }
    let (a, b) = four(&args)?;
    Some(Proximity {
        a,
        b,
        radius_deg: literal_f64(bound)?,
    })
}

/// The sky table under a join input (through aliases and filters), with what was stripped.
struct SkySide {
    table: Arc<SkyTable>,
    /// Indices of the table's columns the side outputs, in order.
    projection: Vec<usize>,
    /// The scan's filters and the filters above it, for pruning and the filter on top.
    filters: Vec<Expr>,
}

fn sky_side(plan: &LogicalPlan) -> Option<SkySide> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => sky_side(&a.input),
        LogicalPlan::Filter(f) => {
            let mut s = sky_side(&f.input)?;
            s.filters.push(f.predicate.clone());
            Some(s)
        }
        LogicalPlan::TableScan(scan) => {
            if scan.fetch.is_some() {
                return None;
            }
            let source = (scan.source.as_ref() as &dyn Any).downcast_ref::<DefaultTableSource>()?;
            let table = (source.table_provider.as_ref() as &dyn Any)
                .downcast_ref::<SkyTable>()?
                .clone();
            table.spatial.as_ref()?;
            let projection = scan
                .projection
                .clone()
                .unwrap_or_else(|| (0..table.schema.fields().len()).collect());
            Some(SkySide {
                table: Arc::new(table),
                projection,
                filters: scan.filters.clone(),
            })
        }
        _ => None,
    }
}

/// Rewrites proximity joins with a sky table into [`SkyJoinNode`]s.
#[derive(Debug, Default)]
pub struct SkyJoinRule;

impl OptimizerRule for SkyJoinRule {
    fn name(&self) -> &str {
        "sky_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some(filter) = &join.filter else {
            return Ok(Transformed::no(plan));
        };
        if join.join_type != JoinType::Inner || !join.on.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let conjuncts = datafusion::logical_expr::utils::split_conjunction(filter);
        let Some(p) = conjuncts.iter().find_map(|c| proximity(c)) else {
            return Ok(Transformed::no(plan));
        };
        if !(p.radius_deg > 0.0 && p.radius_deg <= MAX_RADIUS_DEG) {
            return Ok(Transformed::no(plan));
        }
        let (ls, rs) = (join.left.schema(), join.right.schema());
        let side_of = |c: &(Column, Column)| -> Option<bool> {
            if ls.has_column(&c.0) && ls.has_column(&c.1) {
                Some(true)
            } else if rs.has_column(&c.0) && rs.has_column(&c.1) {
                Some(false)
            } else {
                None
            }
        };
        let (Some(a_left), Some(b_left)) = (side_of(&p.a), side_of(&p.b)) else {
            return Ok(Transformed::no(plan));
        };
        if a_left == b_left {
            return Ok(Transformed::no(plan));
        }
        let (left_cols, right_cols) = if a_left { (&p.a, &p.b) } else { (&p.b, &p.a) };
        // Exactly one side must be a sky table whose position the condition uses.
        let (lsky, rsky) = (sky_side(&join.left), sky_side(&join.right));
        let uses_position = |s: &SkySide, cols: &(Column, Column)| {
            let sp = s.table.spatial.as_ref().expect("checked in sky_side");
            cols.0.name == sp.ra && cols.1.name == sp.dec
        };
        // Both sides sky tables (a join of two catalogs): the one with fewer bytes on disk is
        // collected and indexed, the other scanned where it can match (its memory is charged
        // to the query, so a join too large for it fails cleanly; `xmatch` joins two large
        // catalogs partition by partition).
        let bytes = |s: &SkySide| s.table.files.iter().map(|f| f.size).sum::<u64>();
        let (sky, sky_is_left, small_cols) = match (lsky, rsky) {
            (Some(l), None) if uses_position(&l, left_cols) => (l, true, right_cols),
            (None, Some(r)) if uses_position(&r, right_cols) => (r, false, left_cols),
            (Some(l), Some(r)) => {
                let (l_ok, r_ok) = (uses_position(&l, left_cols), uses_position(&r, right_cols));
                if l_ok && (bytes(&l) >= bytes(&r) || !r_ok) {
                    (l, true, right_cols)
                } else if r_ok {
                    (r, false, left_cols)
                } else {
                    return Ok(Transformed::no(plan));
                }
            }
            _ => return Ok(Transformed::no(plan)),
        };
        let small = if sky_is_left {
            join.right.as_ref().clone()
        } else {
            join.left.as_ref().clone()
        };
        let node = SkyJoinNode {
            small,
            small_ra: small_cols.0.clone(),
            small_dec: small_cols.1.clone(),
            sky_is_left,
            table: sky.table,
            projection: sky.projection,
            pruning: sky.filters.iter().map(unqualified).collect(),
            radius_deg: p.radius_deg,
            schema: join.schema.clone(),
        };
        // Everything the join and the sky side checked is checked again above the candidates.
        let mut predicate = filter.clone();
        for f in sky.filters {
            predicate = predicate.and(f);
        }
        let ext = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            predicate,
            Arc::new(ext),
        )?)))
    }
}

/// An expression with its column qualifiers removed (pruning works on the table's names).
fn unqualified(e: &Expr) -> Expr {
    e.clone()
        .transform(|x| match x {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

/// A join of `small` with a sky table on proximity (see the module docs).
#[derive(Debug, Clone)]
pub struct SkyJoinNode {
    small: LogicalPlan,
    small_ra: Column,
    small_dec: Column,
    sky_is_left: bool,
    table: Arc<SkyTable>,
    projection: Vec<usize>,
    /// The sky side's filters, unqualified, for pruning only.
    pruning: Vec<Expr>,
    radius_deg: f64,
    schema: DFSchemaRef,
}

impl SkyJoinNode {
    fn key(&self) -> (String, u64, bool, &Vec<usize>) {
        (
            self.table.name.clone(),
            self.radius_deg.to_bits(),
            self.sky_is_left,
            &self.projection,
        )
    }
}

impl PartialEq for SkyJoinNode {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
            && self.small == o.small
            && self.small_ra == o.small_ra
            && self.small_dec == o.small_dec
            && self.pruning == o.pruning
            && Arc::ptr_eq(&self.table, &o.table)
    }
}
impl Eq for SkyJoinNode {}

impl PartialOrd for SkyJoinNode {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        self.key().partial_cmp(&o.key())
    }
}

impl Hash for SkyJoinNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
        self.small.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for SkyJoinNode {
    fn name(&self) -> &str {
        "SkyJoin"
    }
    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.small]
    }
    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }
    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }
    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        // Nothing is pushed through: the filter above is the join's own condition. (The
        // optimizer compares unqualified names.)
        self.schema.columns().into_iter().map(|c| c.name).collect()
    }
    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SkyJoin: {} within {} arcsec of ({}, {})",
            self.table.name,
            self.radius_deg * 3600.0,
            self.small_ra,
            self.small_dec
        )
    }
    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let mut n = self.clone();
        if let Some(i) = inputs.into_iter().next() {
            n.small = i;
        }
        Ok(n)
    }
}

/// Plans [`SkyJoinNode`]s.
#[derive(Debug, Default)]
pub struct SkyJoinPlanner;

#[async_trait]
impl ExtensionPlanner for SkyJoinPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(n) = node.as_any().downcast_ref::<SkyJoinNode>() else {
            return Ok(None);
        };
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return Ok(None);
        };
        let small_schema = n.small.schema();
        let small_pos = [
            small_schema.index_of_column(&n.small_ra)?,
            small_schema.index_of_column(&n.small_dec)?,
        ];
        let sp = n.table.spatial.as_ref().expect("checked by the rule");
        let mut read = n.projection.clone();
        let at = |name: &str, read: &mut Vec<usize>| -> Result<usize> {
            let i = n.table.schema.index_of(name)?;
            Ok(match read.iter().position(|&c| c == i) {
                Some(p) => p,
                None => {
                    read.push(i);
                    read.len() - 1
                }
            })
        };
        let sky_pos = [
            at(&sp.ra, &mut read)?,
            at(&sp.dec, &mut read)?,
            at(&sp.healpix, &mut read)?,
        ];
        let schema: SchemaRef = Arc::new(n.schema.as_arrow().clone());
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Some(Arc::new(SkyJoinExec {
            small: physical_inputs[0].clone(),
            small_pos,
            sky_is_left: n.sky_is_left,
            table: n.table.clone(),
            read,
            out_cols: n.projection.len(),
            sky_pos,
            pruning: n.pruning.clone(),
            radius_deg: n.radius_deg,
            state: Arc::new(state.clone()),
            schema,
            properties,
        })))
    }
}

/// Executes a [`SkyJoinNode`] (one output partition; the sky scan runs in parallel).
pub struct SkyJoinExec {
    small: Arc<dyn ExecutionPlan>,
    small_pos: [usize; 2],
    sky_is_left: bool,
    table: Arc<SkyTable>,
    /// Table columns read: the output's, then ra/dec/index if not among them.
    read: Vec<usize>,
    out_cols: usize,
    sky_pos: [usize; 3],
    pruning: Vec<Expr>,
    radius_deg: f64,
    state: Arc<SessionState>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for SkyJoinExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SkyJoinExec({})", self.table.name)
    }
}

impl DisplayAs for SkyJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SkyJoinExec: table={}, radius={}arcsec",
            self.table.name,
            self.radius_deg * 3600.0
        )
    }
}

/// The other side's rows by HEALPix cell.
struct Index {
    batch: RecordBatch,
    ra: Vec<f64>,
    dec: Vec<f64>,
    order: u8,
    cells: HashMap<u64, Vec<u32>>,
}

impl Index {
    fn new(batch: RecordBatch, pos: [usize; 2], radius_deg: f64) -> Result<Index> {
        let f = |i: usize| -> Result<Vec<f64>> {
            let a = arrow::compute::cast(batch.column(i), &DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            Ok((0..a.len())
                .map(|k| if a.is_null(k) { f64::NAN } else { a.value(k) })
                .collect())
        };
        let (ra, dec) = (f(pos[0])?, f(pos[1])?);
        // Deepest order whose cells are at least twice the radius across (as xmatch).
        let order =
            ((58.6 / (2.0 * radius_deg)).log2().floor()).clamp(0.0, INDEX_ORDER as f64) as u8;
        let layer = cdshealpix::nested::get(order);
        let mut cells: HashMap<u64, Vec<u32>> = HashMap::new();
        for i in 0..ra.len() {
            if !(ra[i].is_finite() && dec[i].is_finite() && dec[i].abs() <= 90.0) {
                continue;
            }
            let h = layer.hash(ra[i].to_radians(), dec[i].to_radians());
            cells.entry(h).or_default().push(i as u32);
            for n in layer.neighbours(h, false).values_vec() {
                cells.entry(n).or_default().push(i as u32);
            }
        }
        for v in cells.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        Ok(Index {
            batch,
            ra,
            dec,
            order,
            cells,
        })
    }

    /// `_healpix_29` ranges of every indexed cell, merged.
    fn ranges(&self) -> Vec<(i64, i64)> {
        let shift = 2 * (INDEX_ORDER - self.order) as u32;
        let mut cells: Vec<u64> = self.cells.keys().copied().collect();
        cells.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::new();
        for c in cells {
            let (lo, hi) = ((c << shift) as i64, ((c + 1) << shift) as i64);
            match out.last_mut() {
                Some(l) if l.1 == lo => l.1 = hi,
                _ => out.push((lo, hi)),
            }
        }
        out
    }
}

/// `ranges` coarsened to at most `n` by closing the smallest gaps.
fn coarsen(ranges: &[(i64, i64)], n: usize) -> Vec<(i64, i64)> {
    if ranges.len() <= n {
        return ranges.to_vec();
    }
    let mut gaps: Vec<(i64, usize)> = ranges
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0 - w[0].1, i))
        .collect();
    gaps.sort_unstable();
    let mut close = vec![false; ranges.len()];
    for (_, i) in gaps.iter().take(ranges.len() - n) {
        close[*i] = true;
    }
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut cur = ranges[0];
    for i in 0..ranges.len() - 1 {
        if close[i] {
            cur.1 = ranges[i + 1].1;
        } else {
            out.push(cur);
            cur = ranges[i + 1];
        }
    }
    out.push(cur);
    out
}

impl SkyJoinExec {
    /// The candidate pairs of one sky batch, as output rows.
    fn pairs(&self, index: &Index, sky: &RecordBatch) -> Result<RecordBatch> {
        let hp = sky.column(self.sky_pos[2]).as_primitive::<Int64Type>();
        let f = |i: usize| -> Result<ArrayRef> {
            Ok(arrow::compute::cast(sky.column(i), &DataType::Float64)?)
        };
        let (ra, dec) = (f(self.sky_pos[0])?, f(self.sky_pos[1])?);
        let (ra, dec) = (
            ra.as_primitive::<Float64Type>(),
            dec.as_primitive::<Float64Type>(),
        );
        let shift = 2 * (INDEX_ORDER - index.order) as u32;
        // A little wider than the radius: the filter above decides exactly.
        let limit = self.radius_deg * (1.0 + 1e-9) + 1e-12;
        let (mut si, mut oi) = (Vec::new(), Vec::new());
        for k in 0..sky.num_rows() {
            if hp.is_null(k) || ra.is_null(k) || dec.is_null(k) {
                continue;
            }
            let cell = (hp.value(k) as u64) >> shift;
            let Some(cands) = index.cells.get(&cell) else {
                continue;
            };
            let (a, d) = (ra.value(k), dec.value(k));
            for &j in cands {
                let j = j as usize;
                if (index.dec[j] - d).abs() <= limit
                    && astropipe_udfs::sphere::ang_sep_deg(index.ra[j], index.dec[j], a, d) <= limit
                {
                    si.push(k as u32);
                    oi.push(j as u32);
                }
            }
        }
        let (si, oi) = (UInt32Array::from(si), UInt32Array::from(oi));
        let mut small_cols: Vec<ArrayRef> = Vec::new();
        for c in index.batch.columns() {
            small_cols.push(arrow::compute::take(c, &oi, None)?);
        }
        let mut sky_cols: Vec<ArrayRef> = Vec::new();
        for c in sky.columns().iter().take(self.out_cols) {
            sky_cols.push(arrow::compute::take(c, &si, None)?);
        }
        let cols: Vec<ArrayRef> = if self.sky_is_left {
            sky_cols.into_iter().chain(small_cols).collect()
        } else {
            small_cols.into_iter().chain(sky_cols).collect()
        };
        let opts = RecordBatchOptions::new().with_row_count(Some(si.len()));
        // Types follow the output schema (nullability there may be relaxed by the join).
        let cols: Vec<ArrayRef> = cols
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    arrow::compute::cast(&c, f.data_type())
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &opts,
        )?)
    }
}

impl ExecutionPlan for SkyJoinExec {
    fn name(&self) -> &str {
        "SkyJoinExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.small]
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
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SkyJoinExec {
            small: children[0].clone(),
            small_pos: self.small_pos,
            sky_is_left: self.sky_is_left,
            table: self.table.clone(),
            read: self.read.clone(),
            out_cols: self.out_cols,
            sky_pos: self.sky_pos,
            pruning: self.pruning.clone(),
            radius_deg: self.radius_deg,
            state: self.state.clone(),
            schema: self.schema.clone(),
            properties: self.properties.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return datafusion::common::internal_err!("SkyJoinExec has one partition");
        }
        let this = Arc::new(SkyJoinExec {
            small: self.small.clone(),
            small_pos: self.small_pos,
            sky_is_left: self.sky_is_left,
            table: self.table.clone(),
            read: self.read.clone(),
            out_cols: self.out_cols,
            sky_pos: self.sky_pos,
            pruning: self.pruning.clone(),
            radius_deg: self.radius_deg,
            state: self.state.clone(),
            schema: self.schema.clone(),
            properties: self.properties.clone(),
        });
        let schema = self.schema.clone();
        let stream = futures::stream::once(async move {
            // 1. The other side, whole, charged to the query's memory pool.
            let reservation = MemoryConsumer::new("SkyJoinExec").register(context.memory_pool());
            let small_schema = this.small.schema();
            let mut batches = Vec::new();
            for p in 0..this.small.properties().partitioning.partition_count() {
                let mut s = this.small.execute(p, context.clone())?;
                while let Some(b) = s.next().await {
                    let b = b?;
                    reservation.try_grow(b.get_array_memory_size())?;
                    batches.push(b);
                }
            }
            let small = arrow::compute::concat_batches(&small_schema, &batches)?;
            drop(batches);
            // 2. Its index, 3. the sky rows near it.
            let index = Arc::new(Index::new(small, this.small_pos, this.radius_deg)?);
            let ranges = index.ranges();
            let sp = this.table.spatial.as_ref().expect("checked by the rule");
            let files = this.table.files_in(Some(&ranges));
            let mut predicate = ranges_predicate(&sp.healpix, &coarsen(&ranges, READER_RANGES));
            for f in &this.pruning {
                predicate = predicate.and(f.clone());
            }
            let scan = this.table.scan_files(
                this.state.as_ref(),
                &files,
                Some(&this.read),
                (!ranges.is_empty()).then_some(predicate),
                None,
                // Pruning only (files, row groups, pages): the pairing checks every row's
                // cell anyway, and hundreds of ranges per row would cost more than it saves.
                false,
            )?;
            let n = scan.properties().partitioning.partition_count();
            let mut builder = RecordBatchReceiverStream::builder(scan.schema(), n.max(1));
            for p in 0..n {
                let (scan, context, tx) = (scan.clone(), context.clone(), builder.tx());
                builder.spawn(async move {
                    let mut s = scan.execute(p, context)?;
                    while let Some(b) = s.next().await {
                        if tx.send(b).await.is_err() {
                            break;
                        }
                    }
                    Ok(())
                });
            }
            let sky = builder.build();
            // 4. Pairs, batch by batch.
            let out = sky.map(move |b| {
                let b = b?;
                let _keep = &reservation;
                this.pairs(&index, &b)
            });
            Ok::<_, datafusion::error::DataFusionError>(out)
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .filter(|b| futures::future::ready(b.as_ref().map_or(true, |b| b.num_rows() > 0)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::coarsen;

    #[test]
    fn coarsening_closes_the_smallest_gaps() {
        let r = vec![(0, 10), (12, 20), (100, 110), (111, 120), (500, 510)];
        assert_eq!(coarsen(&r, 5), r);
        assert_eq!(coarsen(&r, 3), vec![(0, 20), (100, 120), (500, 510)]);
        assert_eq!(coarsen(&r, 1), vec![(0, 510)]);
    }
}
