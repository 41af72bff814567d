//! Queries over the catalog (the engine knows no protocol: results are encoded by
//! [`crate::format`], requests come through `service`, `server` and `ivoa`).
//!
//! - [`session`]: the DataFusion context (UDFs, catalog tables, refresh on new versions);
//! - [`guard`]: the read-only check on logical plans;
//! - [`table`]: the Parquet table provider that prunes by sky region, and [`hot`], the
//!   bounded cache of hot partitions' columns its region scans read first;
//! - [`discover`]: `--table NAME=URI` (HATS catalogs, collections, Parquet datasets);
//! - [`functions`]: the table functions `cone_search` and `xmatch` ([`xmatch`]);
//! - [`skyjoin`]: joins of any table with a sky table on proximity, pruned like `xmatch`;
//! - [`engine`]: where queries from the network run (a big-stack runtime of their own) under
//!   their [`limits`], after [`statement`]'s size and depth checks; [`bounded`] keeps
//!   functions such as `repeat` from building values larger than allowed; [`plans`] keeps
//!   the optimized plans of statement shapes, so a repeated cone is not planned again.

pub mod bounded;
pub mod discover;
pub mod engine;
pub mod functions;
pub mod guard;
pub mod hot;
pub mod limits;
pub mod plans;
pub mod session;
pub mod skyjoin;
pub mod statement;
pub mod table;
pub mod xmatch;

pub use engine::{Limited, execute, plan};
pub use limits::{Budget, LimitExceeded, Limits};

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Why a query did not run, or stopped. Each kind maps to one status per protocol
/// (`server::http::errors`, the Flight SQL status, the VOTable error).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would modify something (403).
    #[error(transparent)]
    Forbidden(#[from] guard::Forbidden),
    /// The SQL does not parse, plan or evaluate: syntax, unknown table or column, type
    /// errors, a cast or division that fails on the data (400).
    #[error("{0}")]
    Invalid(String),
    /// A limit refused or stopped the query: statement size or depth (400), a value too
    /// large (422), the time limit (504).
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The query needed more memory (or spill space) than one query may use (422).
    #[error("{0}")]
    ResourcesExhausted(String),
    /// All queries together are using the service's memory: try again later (503).
    #[error("the service is busy, try again later: {0}")]
    Busy(String),
    /// The service could not read its data (object store, files): 503.
    #[error("{0}")]
    Unavailable(String),
    /// A bug: a panic or an internal error, contained to this query (500).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    fn from_planning(e: DataFusionError) -> Self {
        match Self::from_execution(&e) {
            QueryError::Internal(_) => QueryError::Invalid(clean_message(&e)),
            other => other,
        }
    }

    /// Classifies an error raised while planning or executing: the client's mistakes are
    /// [`QueryError::Invalid`]; limits, memory, storage and bugs have their own kinds.
    pub fn from_execution(e: &DataFusionError) -> Self {
        let mut root = e;
        loop {
            match root {
                DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                    root = inner
                }
                DataFusionError::Shared(inner) => root = inner.as_ref(),
                _ => break,
            }
        }
        if let DataFusionError::External(x) = root
            && let Some(q) = x.downcast_ref::<QueryError>()
        {
            return q.clone_kind();
        }
        if let Some(l) = LimitExceeded::find(root) {
            return QueryError::Limit(l.clone());
        }
        let message = clean_message(e);
        match root {
            DataFusionError::ResourcesExhausted(m) => QueryError::ResourcesExhausted(format!(
                "the query needs more memory than one query may use: {}",
                m.lines().next().unwrap_or_default()
            )),
            DataFusionError::Plan(_)
            | DataFusionError::SQL(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::Execution(_)
            | DataFusionError::Collection(_) => QueryError::Invalid(message),
            DataFusionError::ArrowError(a, _) => match a.as_ref() {
                ArrowError::IoError(..) | ArrowError::ExternalError(_) => {
                    QueryError::Internal(message)
                }
                // Casts, arithmetic, parsing: the data met the query's expressions.
                _ => QueryError::Invalid(message),
            },
            DataFusionError::ObjectStore(_)
            | DataFusionError::IoError(_)
            | DataFusionError::ParquetError(_) => QueryError::Unavailable(message),
            _ => QueryError::Internal(message),
        }
    }

    /// A copy of this error (the kinds hold only text).
    fn clone_kind(&self) -> Self {
        match self {
            QueryError::Forbidden(f) => QueryError::Forbidden(f.clone()),
            QueryError::Invalid(m) => QueryError::Invalid(m.clone()),
            QueryError::Limit(l) => QueryError::Limit(l.clone()),
            QueryError::ResourcesExhausted(m) => QueryError::ResourcesExhausted(m.clone()),
            QueryError::Busy(m) => QueryError::Busy(m.clone()),
            QueryError::Unavailable(m) => QueryError::Unavailable(m.clone()),
            QueryError::Internal(m) => QueryError::Internal(m.clone()),
        }
    }

    /// This error inside a DataFusion error (for streams), kept typed.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

/// DataFusion messages without the internal backtrace noise.
pub fn clean_message(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
