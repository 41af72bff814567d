//! [`PlanCache`]: optimized logical plans keyed by a statement's *shape* — its text with the
//! numeric literals that are function arguments or comparison operands lifted out as typed
//! parameters — so a repeated cone with new numbers skips planning and logical optimization.
//!
//! `cone_contains(ra, dec, 150.1, 2.2, 0.0167)` and `... 210.0, -30.5, 0.1)` share the shape
//! `PREPARE q(DOUBLE, DOUBLE, DOUBLE) AS ... cone_contains(ra, dec, $1, $2, $3)`. The shape is
//! planned once as DataFusion plans a `PREPARE` (placeholders typed as the literals were),
//! optimized, and kept; each query then substitutes its values, folds constants again (so
//! casts of the new literals are literals, and the sky table sees its region's numbers), and
//! goes straight to physical planning.
//!
//! What is cached is kept conservative, so a cached plan is the plan the statement would get:
//! - only numbers directly under a function call, a comparison or `BETWEEN` are lifted (not
//!   `LIMIT`, ordinals, `IN` lists or arithmetic, whose values planning may use);
//! - only plans over one table with projections, filters, aggregates, sorts and limits (no
//!   joins, subqueries, unions, `EXPLAIN`, extension nodes), whose functions are all immutable
//!   (no `now()`, which planning folds) and none of [`super::bounded`]'s (they carry a
//!   query's value budget);
//! - a shape that does not plan, or is not cacheable, is remembered as such and its statements
//!   are planned as before;
//! - a statement with its own placeholders (a Flight SQL prepared statement) is not lifted:
//!   it is its own shape, typed as the values bound to it (numbers and booleans);
//! - the cache serves only the context it was made for (compared by its catalog list: a TAP
//!   request with uploads plans in a context of its own), and is emptied whenever a table is
//!   registered or replaced (a new catalog version).

use datafusion::catalog::CatalogProviderList;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::optimizer::OptimizerContext;
use datafusion::optimizer::optimizer::Optimizer;
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, DataType as SqlType, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, Statement, UnaryOperator, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Shapes remembered (plans and refusals).
pub const ENTRIES: usize = 1024;

#[derive(Clone)]
enum Cached {
    Plan(Arc<LogicalPlan>),
    /// The shape does not plan, or its plan is not cacheable.
    No,
}

/// The plan cache of one session context (see the module's documentation).
pub struct PlanCache {
    plans: quick_cache::sync::Cache<String, Cached>,
    context: OnceLock<Arc<dyn CatalogProviderList>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache")
            .field("entries", &self.plans.len())
            .field("hits", &self.hits())
            .finish()
    }
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache {
            plans: quick_cache::sync::Cache::new(ENTRIES),
            context: OnceLock::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

/// A statement split into its shape and the values lifted out of it.
pub struct Lifted {
    pub key: String,
    statement: Statement,
    pub values: Vec<ScalarValue>,
}

impl PlanCache {
    /// Serves the context whose catalog list is `list` (only that one).
    pub fn bind(&self, list: Arc<dyn CatalogProviderList>) {
        let _ = self.context.set(list);
    }

    fn serves(&self, state: &SessionState) -> bool {
        self.context
            .get()
            .is_some_and(|l| Arc::ptr_eq(l, state.catalog_list()))
    }

    /// Forgets every plan (tables changed).
    pub fn clear(&self) {
        self.plans.clear();
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Queries planned from a cached shape.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Shapes planned (a first sighting, or after eviction or a new catalog version).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The plan of `stmt` through the cache, on `state` (which must be a query's state made
    /// from the served context); `None` when the statement is not for the cache (plan it the
    /// usual way). Errors only as planning the substituted plan would.
    pub async fn plan(
        &self,
        state: &SessionState,
        stmt: &DFStatement,
        params: Option<&[ScalarValue]>,
        guard: impl Fn(&LogicalPlan) -> bool,
    ) -> Option<LogicalPlan> {
        if !self.serves(state) {
            return None;
        }
        let lifted = match params {
            None => lift(stmt)?,
            Some(p) => with_params(stmt, p)?,
        };
        let cached = match self.plans.get(&lifted.key) {
            Some(c) => {
                if matches!(c, Cached::Plan(_)) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                }
                c
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let c = match shape_plan(state, &lifted).await {
                    Some(p) if guard(&p) => Cached::Plan(Arc::new(p)),
                    _ => Cached::No,
                };
                self.plans.insert(lifted.key.clone(), c.clone());
                c
            }
        };
        let Cached::Plan(plan) = cached else {
            return None;
        };
        let plan = LogicalPlan::clone(&plan)
            .with_param_values(ParamValues::from(lifted.values))
            .ok()?;
        // Fold the new literals (casts of them, arithmetic on them) as planning would have.
        let simplify = Optimizer::with_rules(vec![Arc::new(SimplifyExpressions::new())]);
        let config = OptimizerContext::new().with_max_passes(1);
        simplify.optimize(plan, &config, |_, _| {}).ok()
    }
}

/// The shape of a statement with its own placeholders and values for them (a Flight SQL
/// prepared statement): the statement itself, typed as the values are (numbers and booleans;
/// other types are planned as usual).
pub fn with_params(stmt: &DFStatement, params: &[ScalarValue]) -> Option<Lifted> {
    use datafusion::arrow::datatypes::DataType as T;
    let DFStatement::Statement(s) = stmt else {
        return None;
    };
    if !matches!(s.as_ref(), Statement::Query(_))
        || params.is_empty()
        || Visit::visit(s.as_ref(), &mut OwnPlaceholders).is_continue()
    {
        return None;
    }
    let types = params
        .iter()
        .map(|p| match p.data_type() {
            T::Boolean => Some(SqlType::Boolean),
            T::Int32 => Some(SqlType::Int(None)),
            T::Int64 => Some(SqlType::BigInt(None)),
            T::Float32 => Some(SqlType::Real),
            T::Float64 => Some(SqlType::Double(ast::ExactNumberInfo::None)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let prepare = Statement::Prepare {
        name: Ident::new("astropipe_shape"),
        data_types: types,
        statement: Box::new(s.as_ref().clone()),
    };
    Some(Lifted {
        key: prepare.to_string(),
        statement: prepare,
        values: params.to_vec(),
    })
}

/// The statement's shape and values, when it has numbers to lift and no placeholders of its
/// own.
pub fn lift(stmt: &DFStatement) -> Option<Lifted> {
    let DFStatement::Statement(s) = stmt else {
        return None;
    };
    if !matches!(s.as_ref(), Statement::Query(_)) {
        return None;
    }
    if Visit::visit(s.as_ref(), &mut OwnPlaceholders).is_break() {
        return None;
    }
    let mut statement = s.as_ref().clone();
    let mut v = Lift {
        values: Vec::new(),
        types: Vec::new(),
    };
    let _ = VisitMut::visit(&mut statement, &mut v);
    if v.values.is_empty() {
        return None;
    }
    let prepare = Statement::Prepare {
        name: Ident::new("astropipe_shape"),
        data_types: v.types,
        statement: Box::new(statement),
    };
    Some(Lifted {
        key: prepare.to_string(),
        statement: prepare,
        values: v.values,
    })
}

struct Lift {
    values: Vec<ScalarValue>,
    types: Vec<SqlType>,
}

/// Stops at the statement's own first placeholder.
struct OwnPlaceholders;

impl Visitor for OwnPlaceholders {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
        match e {
            ast::Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

impl Lift {
    /// Replaces a number (or a negated one) by the next placeholder, typed as DataFusion
    /// types the literal (Int64 when it fits, else Float64; anything else stays).
    fn take(&mut self, e: &mut ast::Expr) {
        let (text, negative) = match e {
            ast::Expr::Value(v) => match &v.value {
                Value::Number(n, _) => (n.clone(), false),
                _ => return,
            },
            ast::Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => match expr.as_ref() {
                ast::Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => (n.clone(), true),
                    _ => return,
                },
                _ => return,
            },
            _ => return,
        };
        if text.contains('_') {
            return;
        }
        let signed = if negative {
            format!("-{text}")
        } else {
            text.clone()
        };
        let (value, ty) = if let Ok(i) = signed.parse::<i64>() {
            (ScalarValue::Int64(Some(i)), SqlType::BigInt(None))
        } else if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
            && let Ok(f) = signed.parse::<f64>()
        {
            (
                ScalarValue::Float64(Some(f)),
                SqlType::Double(ast::ExactNumberInfo::None),
            )
        } else {
            return;
        };
        self.values.push(value);
        self.types.push(ty);
        *e = ast::Expr::Value(Value::Placeholder(format!("${}", self.values.len())).into());
    }
}

impl VisitorMut for Lift {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        match e {
            ast::Expr::Function(f) => {
                if let FunctionArguments::List(list) = &mut f.args {
                    for a in &mut list.args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                            self.take(x);
                        }
                    }
                }
            }
            ast::Expr::BinaryOp {
                left,
                op:
                    BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
                    | BinaryOperator::Eq
                    | BinaryOperator::NotEq,
                right,
            } => {
                self.take(left);
                self.take(right);
            }
            ast::Expr::Between { low, high, .. } => {
                self.take(low);
                self.take(high);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Plans and optimizes a shape; `None` when it does not plan or is not cacheable.
async fn shape_plan(state: &SessionState, lifted: &Lifted) -> Option<LogicalPlan> {
    let stmt = DFStatement::Statement(Box::new(lifted.statement.clone()));
    let plan = state.statement_to_plan(stmt).await.ok()?;
    let LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(p)) = plan else {
        return None;
    };
    let input = Arc::unwrap_or_clone(p.input);
    if !cacheable(&input) {
        return None;
    }
    let optimized = state.optimize(&input).ok()?;
    cacheable(&optimized).then_some(optimized)
}

/// One table, simple operators, immutable functions only, none of the bounded ones.
fn cacheable(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let mut tables = 0;
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(_) => tables += 1,
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_) => {}
            _ => ok = false,
        }
        let _ = node.apply_expressions(|e| {
            let _ = e.apply(|x| {
                match x {
                    Expr::ScalarFunction(f)
                        if f.func.signature().volatility != Volatility::Immutable =>
                    {
                        ok = false
                    }
                    Expr::AggregateFunction(f)
                        if f.func.signature().volatility != Volatility::Immutable =>
                    {
                        ok = false
                    }
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => ok = false,
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            });
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok && tables == 1 && super::bounded::count_calls(plan) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn shape(sql: &str) -> Option<(String, Vec<ScalarValue>)> {
        let state = SessionContext::new().state();
        let dialect = state.config().options().sql_parser.dialect;
        let stmt = state.sql_to_statement(sql, &dialect).unwrap();
        lift(&stmt).map(|l| (l.key, l.values))
    }

    #[test]
    fn numbers_under_functions_and_comparisons_are_lifted_and_nothing_else() {
        let (a, va) = shape(
            "SELECT id FROM t WHERE cone_contains(ra, dec, 150.5, -2, 0.1) AND mag < 20 LIMIT 5",
        )
        .unwrap();
        let (b, vb) = shape(
            "SELECT id FROM t WHERE cone_contains(ra, dec, 10.25, 30, 1e-3) AND mag < 21 LIMIT 5",
        )
        .unwrap();
        assert_eq!(a, b, "one shape");
        assert!(a.contains("LIMIT 5"), "{a}");
        assert!(
            a.starts_with("PREPARE astropipe_shape (DOUBLE, BIGINT, DOUBLE, BIGINT)"),
            "{a}"
        );
        assert_eq!(
            va,
            vec![
                ScalarValue::Float64(Some(150.5)),
                ScalarValue::Int64(Some(-2)),
                ScalarValue::Float64(Some(0.1)),
                ScalarValue::Int64(Some(20)),
            ]
        );
        assert_eq!(vb[2], ScalarValue::Float64(Some(1e-3)));
        // Other types give other shapes; ordinals, IN lists and arithmetic stay.
        assert_ne!(
            shape("SELECT 1 FROM t WHERE mag < 20.0").unwrap().0,
            shape("SELECT 1 FROM t WHERE mag < 20").unwrap().0
        );
        assert!(shape("SELECT a FROM t ORDER BY 1 LIMIT 3").is_none());
        assert!(shape("SELECT a FROM t WHERE a IN (1, 2) AND b = c + 1").is_none());
        // A statement with its own placeholders is left alone.
        assert!(shape("SELECT a FROM t WHERE a < $1 AND b < 3").is_none());
    }

    async fn rows(ctx: &SessionContext, plan: Option<LogicalPlan>, sql: &str) -> String {
        let batches = match plan {
            Some(p) => {
                let state = ctx.state();
                let physical = state
                    .query_planner()
                    .create_physical_plan(&p, &state)
                    .await
                    .unwrap();
                datafusion::physical_plan::collect(physical, state.task_ctx())
                    .await
                    .unwrap()
            }
            None => ctx.sql(sql).await.unwrap().collect().await.unwrap(),
        };
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    fn context() -> (SessionContext, Arc<PlanCache>) {
        let cache = Arc::new(PlanCache::default());
        let config = datafusion::prelude::SessionConfig::new().with_extension(cache.clone());
        let ctx = SessionContext::new_with_config(config);
        cache.bind(ctx.state().catalog_list().clone());
        let x = arrow::array::Int64Array::from_iter_values(0..1000);
        let y = arrow::array::Float32Array::from_iter_values((0..1000).map(|v| v as f32 * 0.25));
        let batch = arrow::array::RecordBatch::try_from_iter(vec![
            ("x", Arc::new(x) as arrow::array::ArrayRef),
            ("y", Arc::new(y) as arrow::array::ArrayRef),
        ])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        (ctx, cache)
    }

    async fn cached(ctx: &SessionContext, cache: &PlanCache, sql: &str) -> Option<LogicalPlan> {
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let stmt = state.sql_to_statement(sql, &dialect).unwrap();
        cache.plan(&state, &stmt, None, |_| true).await
    }

    #[tokio::test]
    async fn a_shape_is_planned_once_and_each_query_gets_its_own_answer() {
        let (ctx, cache) = context();
        for k in 0..20 {
            let sql = format!(
                "SELECT count(*) AS n, sum(y) AS s, max(power(y, {k}.5)) AS p FROM t \
                 WHERE x > {k}0 AND y <= {k}0.25 AND round(y, 1) <> 3"
            );
            let plan = cached(&ctx, &cache, &sql).await;
            assert!(plan.is_some(), "{sql}");
            assert_eq!(
                rows(&ctx, plan, &sql).await,
                rows(&ctx, None, &sql).await,
                "{sql}"
            );
        }
        assert_eq!((cache.misses(), cache.hits()), (1, 19));
        // A Float32 column against a literal that is not a Float32: as the literal would.
        let sql = "SELECT count(*) AS n FROM t WHERE y < 20.1";
        let plan = cached(&ctx, &cache, sql).await;
        assert_eq!(rows(&ctx, plan, sql).await, rows(&ctx, None, sql).await);
        // A statement with its own placeholders and values for them (Flight SQL).
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let own = "SELECT count(*) AS n FROM t WHERE x > $1 AND y < $2";
        let stmt = state.sql_to_statement(own, &dialect).unwrap();
        for (a, b) in [(10i64, 50.0f64), (500, 100.5)] {
            let p = [ScalarValue::Int64(Some(a)), ScalarValue::Float64(Some(b))];
            let plan = cache.plan(&state, &stmt, Some(&p), |_| true).await;
            assert!(plan.is_some(), "{own} with {p:?}");
            let literal = format!("SELECT count(*) AS n FROM t WHERE x > {a} AND y < {b:?}");
            assert_eq!(rows(&ctx, plan, "").await, rows(&ctx, None, &literal).await);
        }
        assert_eq!(cache.hits(), 20, "the second values reuse the first plan");
        // Volatile functions, joins, subqueries: not cached (planned as usual).
        for sql in [
            "SELECT count(*) FROM t WHERE x < 5 AND random() < 2",
            "SELECT count(*) FROM t a JOIN t b ON a.x = b.x WHERE a.x < 5",
            "SELECT count(*) FROM t WHERE x < (SELECT max(x) FROM t WHERE x < 10)",
        ] {
            assert!(cached(&ctx, &cache, sql).await.is_none(), "{sql}");
        }
        // Another context (a TAP request with uploads has its own) is not served.
        let other = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_extension(cache.clone()),
        );
        other
            .register_batch(
                "t",
                arrow::array::RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::new(
                    vec![arrow::datatypes::Field::new(
                        "x",
                        arrow::datatypes::DataType::Int64,
                        false,
                    )],
                ))),
            )
            .unwrap();
        assert!(
            cached(&other, &cache, "SELECT x FROM t WHERE x > 1")
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_entries_and_empties_on_demand() {
        let (ctx, cache) = context();
        for i in 0..(ENTRIES + 200) {
            let sql = format!("SELECT x AS a{i} FROM t WHERE x > 1");
            cached(&ctx, &cache, &sql).await;
            assert!(cache.len() <= ENTRIES);
        }
        assert!(cache.len() > ENTRIES / 2);
        cache.clear();
        assert!(cache.is_empty());
    }
}
