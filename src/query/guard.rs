//! The read-only guard: clients query the catalog; they never create, change, copy or set
//! anything through SQL. Checked on the logical plan (so `EXPLAIN` of a forbidden statement
//! and forbidden nodes inside subqueries are caught too) before anything executes.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the catalog is read-only: {what} is not allowed")]
pub struct Forbidden {
    pub what: String,
}

/// Refuses DDL (CREATE/DROP, CREATE EXTERNAL TABLE), DML (INSERT/UPDATE/DELETE), COPY and
/// session statements (SET, transactions, PREPARE/EXECUTE).
pub fn check(plan: &LogicalPlan) -> Result<(), Forbidden> {
    let mut found: Option<String> = None;
    let _ = plan.apply_with_subqueries(|node| {
        let what = match node {
            LogicalPlan::Ddl(ddl) => Some(format!("DDL ({})", ddl.name())),
            LogicalPlan::Dml(dml) => Some(format!("DML ({})", dml.op)),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Statement(s) => Some(format!("the statement {}", s.name())),
            _ => None,
        };
        if let Some(w) = what {
            found = Some(w);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match found {
        Some(what) => Err(Forbidden { what }),
        None => Ok(()),
    }
}
