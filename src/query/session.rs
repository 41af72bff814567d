//! The query session: one DataFusion `SessionContext` with the astronomy UDFs and the
//! catalog's committed tables, refreshed when a new version is committed.

use crate::catalog::commit::{self, Snapshot};
use crate::catalog::{EXPOSURES, SOURCES, schema};
use crate::query::table::{SkyFile, SkyTable, Spatial};
use crate::storage::Location;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error("registering table {table}: {source}")]
    Register {
        table: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

/// The catalog tables and the schema each has.
pub fn catalog_tables() -> [(&'static str, SchemaRef); 2] {
    [
        (EXPOSURES, schema::EXPOSURES.clone()),
        (SOURCES, schema::SOURCES.clone()),
    ]
}

/// A new context with the UDFs registered and the catalog's store reachable.
pub fn new_context(loc: &Location) -> Result<SessionContext, SessionError> {
    new_context_with_memory(loc, None)
}

/// A new context whose queries use at most `memory_limit` bytes, spilling sorts to disk
/// beyond that (used by `compact` on catalogs larger than memory).
pub fn new_context_with_memory(
    loc: &Location,
    memory_limit: Option<usize>,
) -> Result<SessionContext, SessionError> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("astropipe", "public");
    let mut ctx = match memory_limit {
        None => SessionContext::new_with_config(config),
        Some(limit) => {
            let rt = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_memory_limit(limit, 1.0)
                .build_arc()
                .map_err(|source| SessionError::Register {
                    table: "(runtime)".into(),
                    source,
                })?;
            SessionContext::new_with_config_rt(config, rt)
        }
    };
    ctx.register_object_store(&loc.store_url, loc.store.clone());
    let registry: &mut dyn FunctionRegistry = &mut ctx;
    astropipe_udfs::register_all(registry).map_err(|source| SessionError::Register {
        table: "(functions)".into(),
        source,
    })?;
    Ok(ctx)
}

/// Registers (or replaces) the catalog tables of `snap` on `ctx`.
pub fn register_snapshot(
    ctx: &SessionContext,
    loc: &Location,
    snap: &Snapshot,
) -> Result<(), SessionError> {
    for (table, schema) in catalog_tables() {
        let provider =
            table_provider(loc, snap, table, schema).map_err(|source| SessionError::Register {
                table: table.into(),
                source,
            })?;
        let _ = ctx.deregister_table(table);
        ctx.register_table(table, provider)
            .map_err(|source| SessionError::Register {
                table: table.into(),
                source,
            })?;
    }
    Ok(())
}

fn table_provider(
    loc: &Location,
    snap: &Snapshot,
    table: &str,
    schema: SchemaRef,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    let files = snap.files_of(table);
    if files.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let store_url = ObjectStoreUrl::parse(loc.store_url.as_str())?;
    let sky_files = files
        .iter()
        .map(|f| SkyFile {
            path: loc.path(&f.path),
            size: f.bytes,
            range: match (table, f.healpix) {
                (SOURCES, Some([lo, hi])) => Some((lo, hi)),
                // A sources file recorded without a range has no positioned row only when it
                // came from a writer that records ranges; older files are scanned.
                _ => None,
            },
        })
        .collect();
    Ok(Arc::new(SkyTable {
        name: table.to_string(),
        schema,
        store_url,
        files: sky_files,
        spatial: (table == SOURCES).then(Spatial::standard),
        margin: None,
    }))
}

/// Builds a context over the latest committed version of the catalog at `loc`.
pub async fn open(loc: &Location) -> Result<(SessionContext, Snapshot), SessionError> {
    let ctx = new_context(loc)?;
    let snap = commit::snapshot(loc).await?;
    register_snapshot(&ctx, loc, &snap)?;
    Ok((ctx, snap))
}
