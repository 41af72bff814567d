//! Queries over the catalog.
//!
//! - [`session`]: the DataFusion context (UDFs, catalog tables, refresh on new versions);
//! - [`guard`]: the read-only check on logical plans;
//! - [`format`]: streaming result encoders (JSON, NDJSON, CSV, Arrow IPC, Parquet, text);
//! - [`table`]: the Parquet table provider that prunes by sky region.

pub mod format;
pub mod guard;
pub mod session;
pub mod table;

use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

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
}

impl QueryError {
    fn from_planning(e: DataFusionError) -> Self {
        QueryError::Invalid(clean_message(&e))
    }
}

/// DataFusion messages without the internal backtrace noise.
pub fn clean_message(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Plans `sql` and checks it against the read-only guard.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, QueryError> {
    if sql.trim().is_empty() {
        return Err(QueryError::Invalid("empty query".into()));
    }
    let plan = ctx
        .state()
        .create_logical_plan(sql)
        .await
        .map_err(QueryError::from_planning)?;
    guard::check(&plan)?;
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
        .map_err(|e| QueryError::Execution(clean_message(&e)))
}
