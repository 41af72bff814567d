//! The query session: one DataFusion `SessionContext` with the astronomy UDFs and table
//! functions, the catalog's committed tables (refreshed when a new version is committed) and
//! any extra `--table`s. Every table is a [`SkyTable`]; [`SkyTables`] (a config extension of
//! the context) finds them by name for the table functions.

use crate::catalog::commit::{self, Snapshot};
use crate::catalog::{EXPOSURES, SOURCES, schema};
use crate::query::hot::HotData;
use crate::query::plans::PlanCache;
use crate::query::table::{SkyFile, SkyTable, Spatial};
use crate::storage::Location;
use arrow::datatypes::SchemaRef;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The sky tables of a context, by name.
#[derive(Debug, Default)]
pub struct SkyTables(RwLock<HashMap<String, Arc<SkyTable>>>);

impl SkyTables {
    pub fn get(&self, name: &str) -> Option<Arc<SkyTable>> {
        self.0.read().ok()?.get(&name.to_ascii_lowercase()).cloned()
    }
    fn insert(&self, name: &str, t: Arc<SkyTable>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(name.to_ascii_lowercase(), t);
        }
    }
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The [`SkyTables`] of a context made by [`new_context`].
pub fn sky_tables(ctx: &SessionContext) -> Arc<SkyTables> {
    ctx.state()
        .config()
        .get_extension::<SkyTables>()
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error(transparent)]
    Discover(#[from] crate::query::discover::DiscoverError),
    #[error("--table {0}: the catalog's own tables cannot be replaced")]
    Reserved(String),
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

/// Plans queries with DataFusion's planner plus our extension nodes ([`super::skyjoin`]).
#[derive(Debug)]
pub struct SkyQueryPlanner;

#[async_trait::async_trait]
impl datafusion::execution::context::QueryPlanner for SkyQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &datafusion::logical_expr::LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::physical_planner::PhysicalPlanner;
        datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(super::skyjoin::SkyJoinPlanner),
        ])
        .create_physical_plan(plan, session)
        .await
    }
}

/// A new context with the UDFs registered and the catalog's store reachable.
pub fn new_context(loc: &Location) -> Result<SessionContext, SessionError> {
    new_context_with(loc, None, Arc::new(HotData::default()))
}

/// The [`PlanCache`] of a context made here (an unbound, unused one otherwise).
pub fn plan_cache(ctx: &SessionContext) -> Arc<PlanCache> {
    ctx.state()
        .config()
        .get_extension::<PlanCache>()
        .unwrap_or_default()
}

/// The [`HotData`] cache of a context made here (a disabled one otherwise).
pub fn hot_data(ctx: &SessionContext) -> Arc<HotData> {
    ctx.state()
        .config()
        .get_extension::<HotData>()
        .unwrap_or_default()
}

/// A new context whose queries use at most `memory_limit` bytes, spilling sorts to disk
/// beyond that (used by `compact` on catalogs larger than memory).
pub fn new_context_with_memory(
    loc: &Location,
    memory_limit: Option<usize>,
) -> Result<SessionContext, SessionError> {
    new_context_with(loc, memory_limit, Arc::new(HotData::default()))
}

/// A new context whose region scans keep hot partitions in `hot` (the service's).
pub fn new_context_with(
    loc: &Location,
    memory_limit: Option<usize>,
    hot: Arc<HotData>,
) -> Result<SessionContext, SessionError> {
    let tables = Arc::new(SkyTables::default());
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("astropipe", "public")
        .with_extension(tables.clone())
        .with_extension(hot)
        .with_extension(Arc::new(PlanCache::default()));
    let rt = match memory_limit {
        None => Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        Some(limit) => datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(limit, 1.0)
            .build_arc()
            .map_err(|source| SessionError::Register {
                table: "(runtime)".into(),
                source,
            })?,
    };
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(rt)
        .with_default_features()
        .with_optimizer_rule(Arc::new(super::skyjoin::SkyJoinRule))
        .with_query_planner(Arc::new(SkyQueryPlanner))
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    plan_cache(&ctx).bind(ctx.state().catalog_list().clone());
    ctx.register_object_store(&loc.store_url, loc.store.clone());
    let registry: &mut dyn FunctionRegistry = &mut ctx;
    astropipe_udfs::register_all(registry).map_err(|source| SessionError::Register {
        table: "(functions)".into(),
        source,
    })?;
    crate::query::functions::register(&ctx, tables);
    Ok(ctx)
}

/// Discovers and registers `--table NAME=URI` tables (and their stores).
pub async fn register_extra_tables(
    ctx: &SessionContext,
    specs: &[String],
) -> Result<(), SessionError> {
    for spec in specs {
        let (name, uri) = crate::query::discover::parse_spec(spec)?;
        if catalog_tables().iter().any(|(t, _)| *t == name) {
            return Err(SessionError::Reserved(name));
        }
        let (loc, table) = crate::query::discover::discover(&name, &uri).await?;
        ctx.register_object_store(&loc.store_url, loc.store.clone());
        tracing::info!(table = %name, uri = %uri, files = table.files.len(), spatial = table.spatial.is_some(), "table registered");
        register_table(ctx, table)?;
    }
    Ok(())
}

/// Registers (or replaces) one table.
pub fn register_table(ctx: &SessionContext, table: SkyTable) -> Result<(), SessionError> {
    let name = table.name.clone();
    let t = Arc::new(table);
    // Plans hold the tables they read: none may outlive a replaced one.
    plan_cache(ctx).clear();
    let _ = ctx.deregister_table(name.as_str());
    ctx.register_table(name.as_str(), t.clone())
        .map_err(|source| SessionError::Register {
            table: name.clone(),
            source,
        })?;
    sky_tables(ctx).insert(&name, t);
    Ok(())
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
        register_table(ctx, Arc::unwrap_or_clone(provider))?;
    }
    Ok(())
}

fn sky_files(loc: &Location, files: &[&crate::catalog::FileEntry], ranges: bool) -> Vec<SkyFile> {
    let mut v: Vec<SkyFile> = files
        .iter()
        .map(|f| SkyFile {
            path: loc.path(&f.path),
            size: f.bytes,
            range: if ranges {
                f.healpix.map(|[lo, hi]| (lo, hi))
            } else {
                None
            },
            pixel: crate::query::discover::pixel_of_path(&f.path),
        })
        .collect();
    v.sort_by_key(|f| f.range.map(|r| r.0));
    v
}

fn table_provider(
    loc: &Location,
    snap: &Snapshot,
    table: &str,
    schema: SchemaRef,
) -> datafusion::error::Result<Arc<SkyTable>> {
    let files = snap.files_of(table);
    let store_url = ObjectStoreUrl::parse(loc.store_url.as_str())?;
    let sources = table == SOURCES;
    let margin_files = snap.files_of(crate::catalog::SOURCES_MARGIN);
    let margin = match (&snap.generation, sources && !margin_files.is_empty()) {
        (Some(g), true) => g.margin_arcsec.map(|t| {
            (
                Arc::new(SkyTable {
                    name: format!("{table}_margin"),
                    schema: schema.clone(),
                    store_url: store_url.clone(),
                    files: sky_files(loc, &margin_files, false),
                    spatial: Some(Spatial::standard()),
                    margin: None,
                }),
                t,
            )
        }),
        _ => None,
    };
    Ok(Arc::new(SkyTable {
        name: table.to_string(),
        schema,
        store_url,
        files: sky_files(loc, &files, sources),
        spatial: sources.then(Spatial::standard),
        margin,
    }))
}

/// Drops from the context's [`HotData`] the files no table lists any more (after a new
/// catalog version was registered).
pub fn forget_unlisted_files(ctx: &SessionContext) {
    let tables = sky_tables(ctx);
    let mut live = std::collections::HashSet::new();
    for name in tables.names() {
        if let Some(t) = tables.get(&name) {
            let margin = t.margin.as_ref().map(|m| &m.0.files);
            for f in t.files.iter().chain(margin.into_iter().flatten()) {
                live.insert(f.path.to_string());
            }
        }
    }
    hot_data(ctx).retain_files(|p| live.contains(p));
}

/// Builds a context over the latest committed version of the catalog at `loc`.
pub async fn open(loc: &Location) -> Result<(SessionContext, Snapshot), SessionError> {
    let ctx = new_context(loc)?;
    let snap = commit::snapshot(loc).await?;
    register_snapshot(&ctx, loc, &snap)?;
    Ok((ctx, snap))
}
