//! Queries over the catalog.
//!
//! - [`session`]: the DataFusion context (UDFs, catalog tables, refresh on new versions);
//! - [`guard`]: the read-only check on logical plans;
//! - [`format`]: streaming result encoders (JSON, NDJSON, CSV, Arrow IPC, Parquet, VOTable
//!   via [`votable`], text);
//! - [`adql`]: ADQL → SQL for TAP; [`tap_schema`]: the `TAP_SCHEMA` tables;
//! - [`table`]: the Parquet table provider that prunes by sky region;
//! - [`discover`]: `--table NAME=URI` (HATS catalogs, collections, Parquet datasets);
//! - [`functions`]: the table functions `cone_search` and `xmatch` ([`xmatch`]).

pub mod adql;
pub mod discover;
pub mod format;
pub mod functions;
pub mod guard;
pub mod session;
pub mod table;
pub mod tap_schema;
pub mod votable;
pub mod xmatch;

use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a query did not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would modify something (403).
    #[error(transparent)]
    Forbidden(#[from] guard::Forbidden),
    /// The SQL does not parse or plan: syntax, unknown table or column, type errors (400).
    #[error("{0}")]
    Invalid(String),
    /// Execution failed (500, unless the cause says otherwise).
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than the time limit.
    #[error("{0}")]
    Timeout(String),
    /// The query needed more memory than a query may use.
    #[error("{0}")]
    ResourcesExhausted(String),
}

impl QueryError {
    fn from_planning(e: DataFusionError) -> Self {
        QueryError::Invalid(clean_message(&e))
    }

    /// An execution error, classified.
    pub fn from_execution(e: &DataFusionError) -> Self {
        let mut root = e;
        while let DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) = root
        {
            root = inner;
        }
        match root {
            DataFusionError::ResourcesExhausted(m) => QueryError::ResourcesExhausted(format!(
                "the query needs more memory than one query may use: {}",
                m.lines().next().unwrap_or_default()
            )),
            DataFusionError::External(x) if x.to_string().starts_with(TIMEOUT_PREFIX) => {
                QueryError::Timeout(x.to_string())
            }
            DataFusionError::Plan(_)
            | DataFusionError::SQL(..)
            | DataFusionError::SchemaError(..) => QueryError::Invalid(clean_message(e)),
            _ => QueryError::Execution(clean_message(e)),
        }
    }
}

/// What one query may use. `None` is no limit.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub timeout: Option<std::time::Duration>,
    /// Bytes of memory for the query's operators (sorts and joins spill or fail beyond).
    pub memory: Option<usize>,
    /// Rows in a result; more are cut off and the result is marked truncated.
    pub max_rows: Option<usize>,
}

const TIMEOUT_PREFIX: &str = "the query ran longer than";

/// A running query under [`Limits`].
pub struct Limited {
    pub stream: SendableRecordBatchStream,
    /// The result schema as planned (what a client was told before execution; the stream's
    /// physical schema can differ in nullability when constants were folded).
    pub planned_schema: arrow::datatypes::SchemaRef,
    /// Set once rows were cut off by the row limit (known when the stream ends).
    pub truncated: Arc<AtomicBool>,
}

/// Plans, guards and starts executing `sql` with its own memory pool (sharing the caches of
/// `ctx`), a deadline and a row cap.
pub async fn execute_limited(
    ctx: &SessionContext,
    sql: &str,
    limits: &Limits,
) -> Result<Limited, QueryError> {
    execute_limited_params(ctx, sql, None, limits).await
}

/// [`execute_limited`] with placeholder values.
pub async fn execute_limited_params(
    ctx: &SessionContext,
    sql: &str,
    params: Option<&[datafusion::common::ScalarValue]>,
    limits: &Limits,
) -> Result<Limited, QueryError> {
    let deadline = limits.timeout.map(|t| (tokio::time::Instant::now() + t, t));
    let ctx = match limits.memory {
        Some(bytes) => {
            let rt = RuntimeEnvBuilder::from_runtime_env(ctx.runtime_env().as_ref())
                .with_memory_pool(Arc::new(GreedyMemoryPool::new(bytes)))
                .build_arc()
                .map_err(|e| QueryError::Execution(clean_message(&e)))?;
            let state = SessionStateBuilder::new_from_existing(ctx.state())
                .with_runtime_env(rt)
                .build();
            SessionContext::new_with_state(state)
        }
        None => ctx.clone(),
    };
    let start = async {
        let plan = plan_with_params(&ctx, sql, params).await?;
        let planned = Arc::new(plan.schema().as_arrow().clone());
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(QueryError::from_planning)?;
        let stream = df
            .execute_stream()
            .await
            .map_err(|e| QueryError::from_execution(&e))?;
        Ok::<_, QueryError>((stream, planned))
    };
    let (stream, planned_schema) = match deadline {
        Some((at, t)) => tokio::time::timeout_at(at, start)
            .await
            .map_err(|_| QueryError::Timeout(format!("{TIMEOUT_PREFIX} {} s", t.as_secs())))??,
        None => start.await?,
    };
    let truncated = Arc::new(AtomicBool::new(false));
    let schema = stream.schema();
    let state = LimitState {
        inner: stream,
        deadline,
        left: limits.max_rows,
        truncated: truncated.clone(),
        done: false,
    };
    let s = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let next = match st.deadline {
            Some((at, t)) => match tokio::time::timeout_at(at, st.inner.next()).await {
                Ok(n) => n,
                Err(_) => {
                    st.done = true;
                    let e = DataFusionError::External(
                        format!("{TIMEOUT_PREFIX} {} s", t.as_secs()).into(),
                    );
                    return Some((Err(e), st));
                }
            },
            None => st.inner.next().await,
        };
        match next {
            None => None,
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
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
    })
}

struct LimitState {
    inner: SendableRecordBatchStream,
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    left: Option<usize>,
    truncated: Arc<AtomicBool>,
    done: bool,
}

/// DataFusion messages without the internal backtrace noise.
pub fn clean_message(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Plans `sql` and checks it against the read-only guard.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, QueryError> {
    plan_with_params(ctx, sql, None).await
}

/// Plans `sql` with values for its `$1`, `$2`, ... placeholders (prepared statements), and
/// checks it against the read-only guard.
pub async fn plan_with_params(
    ctx: &SessionContext,
    sql: &str,
    params: Option<&[datafusion::common::ScalarValue]>,
) -> Result<LogicalPlan, QueryError> {
    if sql.trim().is_empty() {
        return Err(QueryError::Invalid("empty query".into()));
    }
    let mut plan = ctx
        .state()
        .create_logical_plan(sql)
        .await
        .map_err(QueryError::from_planning)?;
    guard::check(&plan)?;
    if let Some(p) = params {
        plan = plan
            .with_param_values(datafusion::common::ParamValues::from(p.to_vec()))
            .map_err(QueryError::from_planning)?;
    }
    Ok(plan)
}

/// Plans, guards and starts executing `sql`.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
) -> Result<SendableRecordBatchStream, QueryError> {
    let plan = plan(ctx, sql).await?;
    let df = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(QueryError::from_planning)?;
    df.execute_stream()
        .await
        .map_err(|e| QueryError::from_execution(&e))
}
