//! TAP_UPLOAD (TAP 1.1 §3.3.9): uploaded VOTables ([`crate::ivoa::votable::read`]) become the
//! tables of a `tap_upload` schema seen by one query only. The query runs on a copy of the
//! service's session whose catalog shows that schema beside the served ones; nothing is
//! registered in the shared session. A join of an upload with a sky table on proximity prunes
//! the sky table by HEALPix ([`crate::query::skyjoin`]).

use crate::ivoa::votable::read::{ReadError, ReadLimits, read};
use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider,
};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// The schema uploads appear in (`TAP_UPLOAD.name`, any case unquoted).
pub const SCHEMA: &str = "tap_upload";

/// Reads an uploaded VOTable; column names that are regular identifiers are lower-cased, as
/// ADQL reads unquoted names case-insensitively.
pub fn parse(bytes: &[u8], limits: &ReadLimits) -> Result<RecordBatch, ReadError> {
    let batch = read(bytes, limits)?;
    let schema = batch.schema();
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let n = f.name();
            let regular = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let name = if regular {
                n.to_ascii_lowercase()
            } else {
                n.clone()
            };
            let name = if seen.insert(name.clone()) {
                name
            } else {
                n.clone()
            };
            f.as_ref().clone().with_name(name)
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec()).map_err(|e| {
        ReadError::Column {
            name: String::new(),
            why: e.to_string(),
        }
    })
}

/// The service's catalog with a `tap_upload` schema beside its own.
#[derive(Debug)]
struct WithUploads {
    inner: Arc<dyn CatalogProvider>,
    uploads: Arc<dyn SchemaProvider>,
}

impl CatalogProvider for WithUploads {
    fn schema_names(&self) -> Vec<String> {
        let mut v = self.inner.schema_names();
        v.push(SCHEMA.to_string());
        v
    }
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name.eq_ignore_ascii_case(SCHEMA) {
            Some(self.uploads.clone())
        } else {
            self.inner.schema(name)
        }
    }
}

/// A session like `base` in which `tables` are `tap_upload.<name>`.
pub fn session(
    base: &SessionContext,
    tables: Vec<(String, RecordBatch)>,
) -> Result<SessionContext> {
    let schema = Arc::new(MemorySchemaProvider::new());
    for (name, batch) in tables {
        let t = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        schema.register_table(name, Arc::new(t))?;
    }
    let state = base.state();
    let list = Arc::new(MemoryCatalogProviderList::new());
    for name in state.catalog_list().catalog_names() {
        if let Some(c) = state.catalog_list().catalog(&name) {
            let c: Arc<dyn CatalogProvider> = if name == "astropipe" {
                Arc::new(WithUploads {
                    inner: c,
                    uploads: schema.clone(),
                })
            } else {
                c
            };
            list.register_catalog(name, c);
        }
    }
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(list)
        .build();
    Ok(SessionContext::new_with_state(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_are_queryable_beside_the_catalog_for_one_session_only() {
        let base = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new()
                .with_default_catalog_and_schema("astropipe", "public"),
        );
        base.sql("CREATE TABLE public_t AS SELECT 1 AS x")
            .await
            .unwrap();
        let vot = r#"<VOTABLE><RESOURCE><TABLE><FIELD name="RA" datatype="double"/><FIELD name="Name" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>10.5</TD><TD>a</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"#;
        let b = parse(vot.as_bytes(), &ReadLimits::default()).unwrap();
        let ctx = session(&base, vec![("mine".into(), b)]).unwrap();
        let out = ctx
            .sql("SELECT ra, name, (SELECT x FROM public_t) AS x FROM TAP_UPLOAD.mine")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(out[0].num_rows(), 1);
        assert!(base.sql("SELECT * FROM tap_upload.mine").await.is_err());
    }
}
