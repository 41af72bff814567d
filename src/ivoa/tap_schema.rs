//! `TAP_SCHEMA` (TAP 1.1 §4): the `schemas`, `tables`, `columns`, `keys` and `key_columns`
//! tables, queryable with ADQL like any other, built on every scan from the tables the
//! session serves at that moment (the catalog's and `--table`s), with units, UCDs and
//! descriptions from the Arrow field metadata. [`describe`] is shared with the VOSI
//! `/tap/tables` document.

use super::votable;
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use std::sync::Arc;

/// The schema name clients query (`TAP_SCHEMA.tables`; unquoted, any case).
pub const NAME: &str = "tap_schema";
/// The schema the served tables live in.
pub const PUBLIC: &str = "public";

/// One column of a served table.
#[derive(Debug, Clone)]
pub struct ColumnDesc {
    pub name: String,
    pub datatype: &'static str,
    pub arraysize: Option<&'static str>,
    pub xtype: Option<&'static str>,
    pub unit: Option<String>,
    pub ucd: Option<String>,
    pub description: Option<String>,
}

/// One served table.
#[derive(Debug, Clone)]
pub struct TableDesc {
    pub schema: &'static str,
    pub name: String,
    pub description: String,
    pub columns: Vec<ColumnDesc>,
}

fn table_description(name: &str) -> String {
    match name {
        "sources" => "Sources detected and measured on the ingested images (one row per detection)",
        "exposures" => "Ingested image HDUs with their pointing, calibration and quality figures",
        _ => "",
    }
    .to_string()
}

fn columns_of(schema: &Schema) -> Vec<ColumnDesc> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let (datatype, arraysize, xtype) = votable::votable_type(f.data_type());
            let md = f.metadata();
            let get = |k: &str| md.get(k).filter(|v| !v.is_empty()).cloned();
            ColumnDesc {
                name: f.name().clone(),
                datatype,
                arraysize,
                xtype,
                unit: get("unit"),
                ucd: get("ucd"),
                description: get("description"),
            }
        })
        .collect()
}

/// The served tables (sorted by name) and the TAP_SCHEMA tables themselves.
pub async fn describe(public: &dyn SchemaProvider) -> Result<Vec<TableDesc>> {
    let mut names = public.table_names();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if let Some(t) = public.table(&name).await? {
            out.push(TableDesc {
                schema: PUBLIC,
                description: table_description(&name),
                columns: columns_of(&t.schema()),
                name,
            });
        }
    }
    for (name, schema) in tap_tables() {
        out.push(TableDesc {
            schema: "TAP_SCHEMA",
            name: format!("TAP_SCHEMA.{name}"),
            description: format!("TAP_SCHEMA.{name}: service metadata"),
            columns: columns_of(&schema),
        });
    }
    Ok(out)
}

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn i(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}

fn tap_tables() -> Vec<(&'static str, Schema)> {
    vec![
        (
            "schemas",
            Schema::new(vec![
                s("schema_name"),
                s("utype"),
                s("description"),
                i("schema_index"),
            ]),
        ),
        (
            "tables",
            Schema::new(vec![
                s("schema_name"),
                s("table_name"),
                s("table_type"),
                s("utype"),
                s("description"),
                i("table_index"),
            ]),
        ),
        (
            "columns",
            Schema::new(vec![
                s("table_name"),
                s("column_name"),
                s("utype"),
                s("ucd"),
                s("unit"),
                s("description"),
                s("datatype"),
                s("arraysize"),
                s("xtype"),
                i("size"),
                i("principal"),
                i("indexed"),
                i("std"),
                i("column_index"),
            ]),
        ),
        (
            "keys",
            Schema::new(vec![
                s("key_id"),
                s("from_table"),
                s("target_table"),
                s("utype"),
                s("description"),
            ]),
        ),
        (
            "key_columns",
            Schema::new(vec![s("key_id"), s("from_column"), s("target_column")]),
        ),
    ]
}

/// Columns flagged `principal` (shown by default in clients such as TOPCAT).
fn principal(column: &str) -> bool {
    matches!(
        column,
        "source_id"
            | "exposure_id"
            | "ra"
            | "dec"
            | "flux"
            | "flux_err"
            | "mag_auto"
            | "snr"
            | "flags"
            | "mjd_obs"
            | "filter"
            | "object"
            | "date_obs"
    )
}

/// The provider registered as `tap_schema` in the serving catalog.
#[derive(Debug)]
pub struct TapSchema {
    public: Arc<dyn SchemaProvider>,
}

impl TapSchema {
    pub fn new(public: Arc<dyn SchemaProvider>) -> Self {
        TapSchema { public }
    }

    async fn batch(&self, name: &str, schema: SchemaRef) -> Result<RecordBatch> {
        let tables = describe(self.public.as_ref()).await?;
        let strs = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let ints = |v: Vec<Option<i32>>| Arc::new(Int32Array::from(v)) as ArrayRef;
        let columns: Vec<ArrayRef> = match name {
            "schemas" => vec![
                strs(vec![Some(PUBLIC.into()), Some("TAP_SCHEMA".into())]),
                strs(vec![None, None]),
                strs(vec![
                    Some("The astropipe catalog".into()),
                    Some("TAP service metadata".into()),
                ]),
                ints(vec![Some(0), Some(1)]),
            ],
            "tables" => vec![
                strs(tables.iter().map(|t| Some(t.schema.to_string())).collect()),
                strs(tables.iter().map(|t| Some(t.name.clone())).collect()),
                strs(tables.iter().map(|_| Some("table".into())).collect()),
                strs(tables.iter().map(|_| None).collect()),
                strs(tables.iter().map(|t| Some(t.description.clone())).collect()),
                ints((0..tables.len() as i32).map(Some).collect()),
            ],
            "columns" => {
                let rows: Vec<(&TableDesc, usize, &ColumnDesc)> = tables
                    .iter()
                    .flat_map(|t| t.columns.iter().enumerate().map(move |(k, c)| (t, k, c)))
                    .collect();
                vec![
                    strs(rows.iter().map(|r| Some(r.0.name.clone())).collect()),
                    strs(rows.iter().map(|r| Some(r.2.name.clone())).collect()),
                    strs(rows.iter().map(|_| None).collect()),
                    strs(rows.iter().map(|r| r.2.ucd.clone()).collect()),
                    strs(rows.iter().map(|r| r.2.unit.clone()).collect()),
                    strs(rows.iter().map(|r| r.2.description.clone()).collect()),
                    strs(rows.iter().map(|r| Some(r.2.datatype.into())).collect()),
                    strs(rows.iter().map(|r| r.2.arraysize.map(Into::into)).collect()),
                    strs(rows.iter().map(|r| r.2.xtype.map(Into::into)).collect()),
                    ints(rows.iter().map(|_| None).collect()),
                    ints(
                        rows.iter()
                            .map(|r| Some(principal(&r.2.name) as i32))
                            .collect(),
                    ),
                    ints(
                        rows.iter()
                            .map(|r| Some((r.2.name == "_healpix_29") as i32))
                            .collect(),
                    ),
                    ints(rows.iter().map(|_| Some(0)).collect()),
                    ints(rows.iter().map(|r| Some(r.1 as i32)).collect()),
                ]
            }
            _ => schema
                .fields()
                .iter()
                .map(|f| arrow::array::new_empty_array(f.data_type()))
                .collect(),
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

#[async_trait]
impl SchemaProvider for TapSchema {
    fn table_names(&self) -> Vec<String> {
        tap_tables()
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((_, schema)) = tap_tables()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            return Ok(None);
        };
        let schema = Arc::new(schema);
        let batch = self
            .batch(&name.to_ascii_lowercase(), schema.clone())
            .await?;
        Ok(Some(Arc::new(MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        tap_tables()
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// Registers `TAP_SCHEMA` next to the served tables of `ctx` (ADQL clients query it; unquoted
/// names fold to lower case, quoted ones keep theirs, so both spellings are registered).
pub fn register(ctx: &datafusion::prelude::SessionContext) -> datafusion::error::Result<()> {
    if let Some(cat) = ctx.catalog("astropipe")
        && let Some(public) = cat.schema(PUBLIC)
    {
        let tap: std::sync::Arc<dyn datafusion::catalog::SchemaProvider> =
            std::sync::Arc::new(TapSchema::new(public));
        for name in [NAME, "TAP_SCHEMA"] {
            cat.register_schema(name, tap.clone())?;
        }
    }
    Ok(())
}
