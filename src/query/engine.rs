//! Where queries from the network run: a dedicated runtime whose threads have large stacks,
//! apart from the runtime that serves connections and probes.
//!
//! Planning and executing a deep-but-legal plan recurse; on these threads they cannot
//! overflow. A query that panics (a bug here or in DataFusion) fails alone with an internal
//! error; the process and every other query go on. Heavy queries keep these threads busy,
//! not the threads that accept connections and answer `/livez`.
//!
//! [`plan`] checks and plans a statement; [`execute`] plans and runs one under its
//! [`Limits`], drawing memory and spill space from the process-wide [`Budget`], and hands
//! back a stream whose deadline covers planning, execution and the reader's pace.

use super::bounded::{self, ValueBudget};
use super::limits::{Budget, LimitExceeded, Limits};
use super::plans::PlanCache;
use super::{QueryError, guard, statement};
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::time::Instant;

/// Stack of each query thread. Only the pages a query touches are committed.
pub const STACK_BYTES: usize = 64 << 20;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("astropipe-query")
        .thread_stack_size(STACK_BYTES)
        .enable_all()
        .build()
}

/// Starts the query runtime now (a server calls this before it accepts connections). Made on
/// the first query instead, it could meet a flood of connections holding every file
/// descriptor, fail, and fail that query.
pub fn start() -> std::io::Result<()> {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME.get().is_none()
        && let Err(spare) = RUNTIME.set(build_runtime()?)
    {
        // A query made it first (through `runtime`). A runtime cannot be dropped on an
        // async thread, which this may be.
        std::thread::spawn(move || drop(spare));
    }
    Ok(())
}

/// The query runtime, started on first use when [`start`] was not called (the CLI, tests).
fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| build_runtime().expect("the query runtime starts"))
}

/// Aborts a task of the query runtime when dropped (the client went away, or gave up).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

fn internal(p: Box<dyn std::any::Any + Send>) -> QueryError {
    let m = panic_message(p.as_ref());
    tracing::error!(panic = %m, "a query panicked");
    QueryError::Internal(format!("the query failed unexpectedly: {m}"))
}

/// Runs `fut` on the query runtime; a panic inside it becomes [`QueryError::Internal`].
pub async fn run<T: Send + 'static>(
    fut: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    let handle = runtime().spawn(AssertUnwindSafe(fut).catch_unwind());
    let _abort = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => Err(internal(p)),
        Err(e) if e.is_panic() => Err(internal(e.into_panic())),
        Err(e) => Err(QueryError::Internal(format!("the query was stopped: {e}"))),
    }
}

/// Checks and plans `sql` (with values for its `$1`, `$2`, ... placeholders), and applies
/// the read-only guard, on the query runtime. The plan may come from the context's
/// [`PlanCache`] (then it is optimized already; its schema is the statement's).
pub async fn plan(
    ctx: &SessionContext,
    sql: &str,
    params: Option<Vec<ScalarValue>>,
    limits: &Limits,
) -> Result<LogicalPlan, QueryError> {
    let (ctx, sql, limits) = (ctx.clone(), sql.to_string(), limits.clone());
    run(async move {
        let state = ctx.state();
        Ok(plan_or_reuse(&state, &sql, params.as_deref(), &limits)
            .await?
            .0)
    })
    .await
}

/// Checks, plans and guards `sql` on the current thread (which must be a query thread or have
/// a large stack); or — when the context has a [`PlanCache`] that serves it — takes the
/// optimized plan of the statement's shape with its values put back (true: optimized
/// already).
async fn plan_or_reuse(
    state: &SessionState,
    sql: &str,
    params: Option<&[ScalarValue]>,
    limits: &Limits,
) -> Result<(LogicalPlan, bool), QueryError> {
    let stmt = parse(state, sql, limits)?;
    if let Some(plan) = reuse(state, &stmt, params).await {
        return Ok((plan, true));
    }
    Ok((plan_fresh(state, stmt, params).await?, false))
}

/// `sql` parsed, within the statement limits (its text, then its tree).
fn parse(state: &SessionState, sql: &str, limits: &Limits) -> Result<DFStatement, QueryError> {
    if sql.trim().is_empty() {
        return Err(QueryError::Invalid("empty query".into()));
    }
    statement::check_text(sql, limits)?;
    let dialect = state.config().options().sql_parser.dialect;
    let stmt = state
        .sql_to_statement(sql, &dialect)
        .map_err(|e| QueryError::Invalid(super::clean_message(&e)))?;
    statement::check_tree(&stmt, limits)?;
    Ok(stmt)
}

/// The optimized plan of `stmt`'s shape from the state's [`PlanCache`], its values put back;
/// `None` when the cache does not serve this state or the shape is not for it. Such plans
/// hold none of [`bounded`]'s calls, so `state` needs no query's value budget.
async fn reuse(
    state: &SessionState,
    stmt: &DFStatement,
    params: Option<&[ScalarValue]>,
) -> Option<LogicalPlan> {
    let cache = state.config().get_extension::<PlanCache>()?;
    cache
        .plan(state, stmt, params, |p| guard::check(p).is_ok())
        .await
}

/// `stmt` planned (not optimized), guarded, with `params` bound.
async fn plan_fresh(
    state: &SessionState,
    stmt: DFStatement,
    params: Option<&[ScalarValue]>,
) -> Result<LogicalPlan, QueryError> {
    let mut plan = state
        .statement_to_plan(stmt)
        .await
        .map_err(QueryError::from_planning)?;
    guard::check(&plan)?;
    if let Some(p) = params {
        plan = plan
            .with_param_values(ParamValues::from(p.to_vec()))
            .map_err(QueryError::from_planning)?;
    }
    Ok(plan)
}

/// A running query.
pub struct Limited {
    pub stream: SendableRecordBatchStream,
    /// The result schema as planned (what a client was told before execution; the stream's
    /// physical schema can differ in nullability when constants were folded).
    pub planned_schema: SchemaRef,
    /// Set once rows were cut off by the row or byte limit (known when the stream ends).
    pub truncated: Arc<AtomicBool>,
    /// When the query must be finished, response included.
    pub deadline: Option<Instant>,
}

/// What the query task reports before the first batch.
type Started = Result<(SchemaRef, SchemaRef), QueryError>;

/// Plans, guards and starts executing `sql` under `limits` on the query runtime: with its
/// own memory pool (at most `limits.memory`, taken from `budget`), its own spill allowance,
/// a deadline and a row cap. Batches reach the caller through a small channel, so a slow
/// reader holds at most two batches and the deadline still ends the query.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
    params: Option<Vec<ScalarValue>>,
    limits: &Limits,
    budget: &Arc<Budget>,
) -> Result<Limited, QueryError> {
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let seconds = limits.timeout.map_or(0, |t| t.as_secs());
    let timeout = move || QueryError::Limit(LimitExceeded::Timeout { seconds });
    let (start_tx, start_rx) = tokio::sync::oneshot::channel::<Started>();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow::array::RecordBatch, QueryError>>(2);
    let (ctx, sql, limits2, budget) =
        (ctx.clone(), sql.to_string(), limits.clone(), budget.clone());
    let task = runtime().spawn(async move {
        let limits = limits2;
        let pool = budget.query_pool(limits.memory);
        let classify = |e: DataFusionError| match QueryError::from_execution(&e) {
            QueryError::ResourcesExhausted(_) if pool.shared_exhausted() => {
                QueryError::Busy(super::clean_message(&e))
            }
            other => other,
        };
        let start = async {
            let mut rt = RuntimeEnvBuilder::from_runtime_env(ctx.runtime_env().as_ref())
                .with_memory_pool(pool.clone());
            rt.disk_manager = None;
            rt.disk_manager_builder = Some(match limits.spill_bytes {
                Some(0) => DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                limit => {
                    let factory = budget
                        .spill_factory(limit.unwrap_or(u64::MAX))
                        .map_err(|e| QueryError::Internal(super::clean_message(&e)))?;
                    DiskManagerBuilder::default().with_temp_file_factory(Arc::new(factory))
                }
            });
            let rt = rt
                .build_arc()
                .map_err(|e| QueryError::Internal(super::clean_message(&e)))?;
            let values = ValueBudget::new(limits.max_value_bytes, limits.memory);
            // A statement of a cached shape is planned on the served state as it is: its plan
            // holds no bounded calls, so it needs no copy of the state with them registered
            // (that copy — every function registry cloned — cost as much as the cone).
            let base = ctx.state();
            let stmt = parse(&base, &sql, &limits)?;
            let (state, plan, optimized) = match reuse(&base, &stmt, params.as_deref()).await {
                Some(plan) => (base, plan, true),
                None => {
                    let mut state = SessionStateBuilder::new_from_existing(base)
                        .with_runtime_env(rt.clone())
                        .build();
                    bounded::register(&mut state, &values)
                        .map_err(|e| QueryError::Internal(super::clean_message(&e)))?;
                    let plan = plan_fresh(&state, stmt, params.as_deref()).await?;
                    (state, plan, false)
                }
            };
            values.split(limits.memory, bounded::count_calls(&plan));
            let planned = Arc::new(plan.schema().as_arrow().clone());
            let physical = if optimized {
                state
                    .query_planner()
                    .create_physical_plan(&plan, &state)
                    .await
            } else {
                state.create_physical_plan(&plan).await
            }
            .map_err(QueryError::from_planning)?;
            // Executed under the query's runtime (its memory pool and spill allowance). The
            // physical plan holds its functions; execution looks none up by name, so the task
            // carries no copy of the registries.
            let task = TaskContext::new(
                None,
                state.session_id().to_string(),
                state.config().clone(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                rt,
            );
            let stream = datafusion::physical_plan::execute_stream(physical, Arc::new(task))
                .map_err(classify)?;
            Ok::<_, QueryError>((stream, planned))
        };
        let started = match deadline {
            Some(at) => tokio::time::timeout_at(at, AssertUnwindSafe(start).catch_unwind())
                .await
                .unwrap_or_else(|_| Ok(Err(timeout()))),
            None => AssertUnwindSafe(start).catch_unwind().await,
        };
        let mut stream = match started {
            Ok(Ok((stream, planned))) => {
                let physical = stream.schema();
                if start_tx.send(Ok((planned, physical))).is_err() {
                    return;
                }
                stream
            }
            Ok(Err(e)) => {
                let _ = start_tx.send(Err(e));
                return;
            }
            Err(p) => {
                let _ = start_tx.send(Err(internal(p)));
                return;
            }
        };
        loop {
            let next = AssertUnwindSafe(stream.next()).catch_unwind();
            let next = match deadline {
                Some(at) => match tokio::time::timeout_at(at, next).await {
                    Ok(n) => n,
                    Err(_) => {
                        let _ = tx.try_send(Err(timeout()));
                        break;
                    }
                },
                None => next.await,
            };
            let item = match next {
                Ok(None) => break,
                Ok(Some(Ok(b))) => Ok(b),
                Ok(Some(Err(e))) => Err(classify(e)),
                Err(p) => Err(internal(p)),
            };
            let last = item.is_err();
            let sent = match deadline {
                Some(at) => matches!(tokio::time::timeout_at(at, tx.send(item)).await, Ok(Ok(()))),
                None => tx.send(item).await.is_ok(),
            };
            if !sent || last {
                break;
            }
        }
        drop(stream);
    });
    let abort = AbortOnDrop(task.abort_handle());
    let started = match deadline {
        Some(at) => tokio::time::timeout_at(at, start_rx)
            .await
            .map_err(|_| timeout())?,
        None => start_rx.await,
    };
    let (planned_schema, schema) = match started {
        Ok(r) => r?,
        Err(_) => {
            // The task ended without a word: it was aborted or its runtime stopped.
            return Err(QueryError::Internal("the query task stopped".into()));
        }
    };
    let truncated = Arc::new(AtomicBool::new(false));
    let state = Receiving {
        rx,
        deadline,
        seconds,
        left: limits.max_rows,
        truncated: truncated.clone(),
        done: false,
        _abort: abort,
    };
    let s = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let next = match st.deadline {
            Some(at) => match tokio::time::timeout_at(at, st.rx.recv()).await {
                Ok(n) => n,
                Err(_) => {
                    st.done = true;
                    let e = QueryError::Limit(LimitExceeded::Timeout {
                        seconds: st.seconds,
                    });
                    return Some((Err(e.into_datafusion()), st));
                }
            },
            None => st.rx.recv().await,
        };
        match next {
            None => None,
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e.into_datafusion()), st))
            }
            Some(Ok(b)) => match st.left {
                None => Some((Ok(b), st)),
                Some(0) => {
                    if b.num_rows() > 0 {
                        st.truncated.store(true, Ordering::Release);
                        return None;
                    }
                    Some((Ok(b), st))
                }
                Some(n) if b.num_rows() > n => {
                    st.truncated.store(true, Ordering::Release);
                    st.left = Some(0);
                    st.done = true;
                    Some((Ok(b.slice(0, n)), st))
                }
                Some(n) => {
                    st.left = Some(n - b.num_rows());
                    Some((Ok(b), st))
                }
            },
        }
    });
    Ok(Limited {
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, s)),
        planned_schema,
        truncated,
        deadline,
    })
}

struct Receiving {
    rx: tokio::sync::mpsc::Receiver<Result<arrow::array::RecordBatch, QueryError>>,
    deadline: Option<Instant>,
    seconds: u64,
    left: Option<usize>,
    truncated: Arc<AtomicBool>,
    done: bool,
    _abort: AbortOnDrop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_fails_its_own_query_and_nothing_else() {
        let e = run(async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            Ok::<(), QueryError>(())
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&e, QueryError::Internal(m) if m.contains("boom")),
            "{e}"
        );
        assert_eq!(run(async { Ok::<_, QueryError>(7) }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn deep_but_legal_plans_plan_on_the_query_threads() {
        let ctx = SessionContext::new();
        // Just under the default depth: planned (not refused, not overflowing).
        let sql = format!("SELECT {}", vec!["1"; 120].join(" + "));
        let limits = Limits::default();
        plan(&ctx, &sql, None, &limits).await.unwrap();
        let too_deep = format!("SELECT {}", vec!["1"; 200].join(" + "));
        assert!(matches!(
            plan(&ctx, &too_deep, None, &limits).await,
            Err(QueryError::Limit(LimitExceeded::Depth { .. }))
        ));
        // A client's stream ends at its deadline even while the query computes.
        let slow = Limits {
            timeout: Some(std::time::Duration::from_millis(300)),
            ..Limits::default()
        };
        let t0 = std::time::Instant::now();
        let r = execute(
            &ctx,
            "SELECT count(*) FROM generate_series(1, 100000000000) t(x) WHERE x % 7 = 3",
            None,
            &slow,
            &Budget::unlimited(),
        )
        .await;
        let err = match r {
            Err(e) => e,
            Ok(mut l) => match l.stream.next().await {
                Some(Err(e)) => QueryError::from_execution(&e),
                other => panic!("expected a timeout, got {:?}", other.map(|b| b.is_ok())),
            },
        };
        assert!(
            matches!(err, QueryError::Limit(LimitExceeded::Timeout { .. })),
            "{err}"
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(3));
    }

    /// A statement whose plan comes from the plan cache runs on the served state, but under
    /// the query's own runtime: its memory limit holds as on the planned-afresh path.
    #[tokio::test]
    async fn a_cached_plan_runs_under_its_own_memory_limit() {
        let cache = Arc::new(PlanCache::default());
        let config = datafusion::prelude::SessionConfig::new().with_extension(cache.clone());
        let ctx = SessionContext::new_with_config(config);
        cache.bind(ctx.state().catalog_list().clone());
        let x = arrow::array::Float64Array::from_iter_values((0..200_000).map(f64::from));
        let batch = arrow::array::RecordBatch::try_from_iter([(
            "x",
            Arc::new(x) as arrow::array::ArrayRef,
        )])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let collect = |sql: &'static str, limits: Limits| {
            let ctx = ctx.clone();
            async move {
                let mut l = execute(&ctx, sql, None, &limits, &Budget::unlimited()).await?;
                let mut rows = 0;
                while let Some(b) = l.stream.next().await {
                    rows += b.map_err(|e| QueryError::from_execution(&e))?.num_rows();
                }
                Ok::<_, QueryError>(rows)
            }
        };
        let small = Limits {
            memory: Some(256 << 10),
            ..Limits::default()
        };
        for sql in [
            "SELECT array_agg(x) FROM t WHERE x > 5",
            "SELECT array_agg(x) FROM t WHERE x > 6",
        ] {
            assert_eq!(collect(sql, Limits::default()).await.unwrap(), 1, "{sql}");
            let e = collect(sql, small.clone()).await.unwrap_err();
            assert!(matches!(e, QueryError::ResourcesExhausted(_)), "{sql}: {e}");
        }
        assert_eq!(cache.misses(), 1);
        assert!(cache.hits() >= 3, "{cache:?}");
    }
}
