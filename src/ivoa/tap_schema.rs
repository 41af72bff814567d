//! `TAP_SCHEMA` (TAP 1.1 §4): the `schemas`, `tables`, `columns`, `keys` and `key_columns`
//! tables, queryable with ADQL like any other, built on every scan from the tables the
//! session serves at that moment (the catalog's and `--table`s, `ivoa.ObsCore`, and
//! TAP_SCHEMA itself), with units, UCDs, utypes and descriptions from the Arrow field
//! metadata. Columns of the standard tables are flagged `std`; names that are not ADQL
//! regular identifiers (`"size"`, `"_healpix_29"`) are listed delimited; `keys` holds the
//! five foreign keys TAP 1.1 defines between the TAP_SCHEMA tables. [`describe`] is shared
//! with the VOSI `/tap/tables` document.

use super::votable;
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use std::sync::Arc;

/// The schema name clients query (`TAP_SCHEMA.tables`; unquoted, any case).
pub const NAME: &str = "tap_schema";
/// The schema the served tables live in.
pub const PUBLIC: &str = "public";

/// ADQL 2.1's reserved words (§2.1.2: SQL-92's and ADQL's own): a column with one of these
/// names, or any name that is not a regular identifier, is listed delimited (`"size"`).
const RESERVED: &[&str] = &[
    "ABSOLUTE",
    "ACTION",
    "ADD",
    "ALL",
    "ALLOCATE",
    "ALTER",
    "AND",
    "ANY",
    "ARE",
    "AS",
    "ASC",
    "ASSERTION",
    "AT",
    "AUTHORIZATION",
    "AVG",
    "BEGIN",
    "BETWEEN",
    "BIT",
    "BIT_LENGTH",
    "BOTH",
    "BY",
    "CASCADE",
    "CASCADED",
    "CASE",
    "CAST",
    "CATALOG",
    "CHAR",
    "CHARACTER",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "CHECK",
    "CLOSE",
    "COALESCE",
    "COLLATE",
    "COLLATION",
    "COLUMN",
    "COMMIT",
    "CONNECT",
    "CONNECTION",
    "CONSTRAINT",
    "CONSTRAINTS",
    "CONTINUE",
    "CONVERT",
    "CORRESPONDING",
    "COUNT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURSOR",
    "DATE",
    "DAY",
    "DEALLOCATE",
    "DECIMAL",
    "DECLARE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DESCRIPTOR",
    "DIAGNOSTICS",
    "DISCONNECT",
    "DISTINCT",
    "DOMAIN",
    "DOUBLE",
    "DROP",
    "ELSE",
    "END",
    "END-EXEC",
    "ESCAPE",
    "EXCEPT",
    "EXCEPTION",
    "EXEC",
    "EXECUTE",
    "EXISTS",
    "EXTERNAL",
    "EXTRACT",
    "FALSE",
    "FETCH",
    "FIRST",
    "FLOAT",
    "FOR",
    "FOREIGN",
    "FOUND",
    "FROM",
    "FULL",
    "GET",
    "GLOBAL",
    "GO",
    "GOTO",
    "GRANT",
    "GROUP",
    "HAVING",
    "HOUR",
    "IDENTITY",
    "IMMEDIATE",
    "IN",
    "INDICATOR",
    "INITIALLY",
    "INNER",
    "INPUT",
    "INSENSITIVE",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "ISOLATION",
    "JOIN",
    "KEY",
    "LANGUAGE",
    "LAST",
    "LEADING",
    "LEFT",
    "LEVEL",
    "LIKE",
    "LOCAL",
    "LOWER",
    "MATCH",
    "MAX",
    "MIN",
    "MINUTE",
    "MODULE",
    "MONTH",
    "NAMES",
    "NATIONAL",
    "NATURAL",
    "NCHAR",
    "NEXT",
    "NO",
    "NOT",
    "NULL",
    "NULLIF",
    "NUMERIC",
    "OCTET_LENGTH",
    "OF",
    "ON",
    "ONLY",
    "OPEN",
    "OPTION",
    "OR",
    "ORDER",
    "OUTER",
    "OUTPUT",
    "OVERLAPS",
    "PAD",
    "PARTIAL",
    "POSITION",
    "PRECISION",
    "PREPARE",
    "PRESERVE",
    "PRIMARY",
    "PRIOR",
    "PRIVILEGES",
    "PROCEDURE",
    "PUBLIC",
    "READ",
    "REAL",
    "REFERENCES",
    "RELATIVE",
    "RESTRICT",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "ROWS",
    "SCHEMA",
    "SCROLL",
    "SECOND",
    "SECTION",
    "SELECT",
    "SESSION",
    "SESSION_USER",
    "SET",
    "SIZE",
    "SMALLINT",
    "SOME",
    "SPACE",
    "SQL",
    "SQLCODE",
    "SQLERROR",
    "SQLSTATE",
    "SUBSTRING",
    "SUM",
    "SYSTEM_USER",
    "TABLE",
    "TEMPORARY",
    "THEN",
    "TIME",
    "TIMESTAMP",
    "TIMEZONE_HOUR",
    "TIMEZONE_MINUTE",
    "TO",
    "TRAILING",
    "TRANSACTION",
    "TRANSLATE",
    "TRANSLATION",
    "TRIM",
    "TRUE",
    "UNION",
    "UNIQUE",
    "UNKNOWN",
    "UPDATE",
    "UPPER",
    "USAGE",
    "USER",
    "USING",
    "VALUE",
    "VALUES",
    "VARCHAR",
    "VARYING",
    "VIEW",
    "WHEN",
    "WHENEVER",
    "WHERE",
    "WITH",
    "WORK",
    "WRITE",
    "YEAR",
    "ZONE",
    "ABS",
    "ACOS",
    "AREA",
    "ASIN",
    "ATAN",
    "ATAN2",
    "BIT_AND",
    "BIT_NOT",
    "BIT_OR",
    "BIT_XOR",
    "BOX",
    "CEILING",
    "CENTROID",
    "CIRCLE",
    "CONTAINS",
    "COORD1",
    "COORD2",
    "COORDSYS",
    "COS",
    "COT",
    "DEGREES",
    "DISTANCE",
    "EXP",
    "FLOOR",
    "ILIKE",
    "INTERSECTS",
    "IN_UNIT",
    "LOG",
    "LOG10",
    "MOD",
    "PI",
    "POINT",
    "POLYGON",
    "POWER",
    "RADIANS",
    "REGION",
    "RAND",
    "ROUND",
    "SIN",
    "SQRT",
    "TOP",
    "TAN",
    "TRUNCATE",
    "OFFSET",
];

/// The name as ADQL must spell it: as is when it is a regular identifier, else delimited.
pub fn adql_name(name: &str) -> String {
    let regular = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name.to_ascii_uppercase().as_str());
    if regular {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// One column of a served table.
#[derive(Debug, Clone)]
pub struct ColumnDesc {
    pub name: String,
    pub datatype: &'static str,
    pub arraysize: Option<&'static str>,
    pub xtype: Option<&'static str>,
    pub unit: Option<String>,
    pub ucd: Option<String>,
    pub utype: Option<String>,
    pub description: Option<String>,
}

/// One served table.
#[derive(Debug, Clone)]
pub struct TableDesc {
    pub schema: &'static str,
    pub name: String,
    pub description: String,
    pub columns: Vec<ColumnDesc>,
    /// `table` or `view`.
    pub kind: &'static str,
    /// Whether the table is one the TAP standard defines (TAP_SCHEMA, ivoa.ObsCore): its
    /// columns are flagged `std`.
    pub standard: bool,
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
            let t = votable::votable_type(f);
            let (datatype, arraysize, xtype) = (t.datatype, t.arraysize, t.xtype);
            let md = f.metadata();
            let get = |k: &str| md.get(k).filter(|v| !v.is_empty()).cloned();
            ColumnDesc {
                name: adql_name(f.name()),
                datatype,
                arraysize,
                xtype,
                unit: get("unit"),
                ucd: get("ucd"),
                utype: get("utype"),
                description: get("description"),
            }
        })
        .collect()
}

/// The served tables (sorted by name), `ivoa.ObsCore`, and the TAP_SCHEMA tables themselves.
pub async fn describe(catalog: &dyn CatalogProvider) -> Result<Vec<TableDesc>> {
    let mut out = Vec::new();
    if let Some(public) = catalog.schema(PUBLIC) {
        let mut names = public.table_names();
        names.sort();
        for name in names {
            if let Some(t) = public.table(&name).await? {
                out.push(TableDesc {
                    schema: PUBLIC,
                    description: table_description(&name),
                    columns: columns_of(&t.schema()),
                    name,
                    kind: "table",
                    standard: false,
                });
            }
        }
    }
    if let Some(ivoa) = catalog.schema(super::obscore::SCHEMA)
        && let Some(t) = ivoa.table(super::obscore::TABLE).await?
    {
        out.push(TableDesc {
            schema: "ivoa",
            name: "ivoa.ObsCore".into(),
            description: "ObsCore 1.1: the ingested images as data products (one row per image plane)".into(),
            columns: columns_of(&t.schema()),
            kind: "view",
            standard: true,
        });
    }
    for (name, schema) in tap_tables() {
        out.push(TableDesc {
            schema: "TAP_SCHEMA",
            name: format!("TAP_SCHEMA.{name}"),
            description: format!("TAP_SCHEMA.{name}: service metadata"),
            columns: columns_of(&schema),
            kind: "table",
            standard: true,
        });
    }
    Ok(out)
}

/// The foreign keys TAP 1.1 §4 defines between the TAP_SCHEMA tables:
/// (key_id, from_table, target_table, from_column, target_column).
pub const KEYS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "tables_schema_name",
        "TAP_SCHEMA.tables",
        "TAP_SCHEMA.schemas",
        "schema_name",
        "schema_name",
    ),
    (
        "columns_table_name",
        "TAP_SCHEMA.columns",
        "TAP_SCHEMA.tables",
        "table_name",
        "table_name",
    ),
    (
        "keys_from_table",
        "TAP_SCHEMA.keys",
        "TAP_SCHEMA.tables",
        "from_table",
        "table_name",
    ),
    (
        "keys_target_table",
        "TAP_SCHEMA.keys",
        "TAP_SCHEMA.tables",
        "target_table",
        "table_name",
    ),
    (
        "key_columns_key_id",
        "TAP_SCHEMA.key_columns",
        "TAP_SCHEMA.keys",
        "key_id",
        "key_id",
    ),
];

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
    catalog: std::sync::Weak<dyn CatalogProvider>,
}

impl TapSchema {
    pub fn new(catalog: &Arc<dyn CatalogProvider>) -> Self {
        TapSchema {
            catalog: Arc::downgrade(catalog),
        }
    }

    async fn batch(&self, name: &str, schema: SchemaRef) -> Result<RecordBatch> {
        let Some(catalog) = self.catalog.upgrade() else {
            return datafusion::common::plan_err!("the catalog is gone");
        };
        let tables = describe(catalog.as_ref()).await?;
        let strs = |v: Vec<Option<String>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let ints = |v: Vec<Option<i32>>| Arc::new(Int32Array::from(v)) as ArrayRef;
        let columns: Vec<ArrayRef> = match name {
            "schemas" => {
                let mut names: Vec<&str> = Vec::new();
                for t in &tables {
                    if !names.contains(&t.schema) {
                        names.push(t.schema);
                    }
                }
                let desc = |n: &str| match n {
                    PUBLIC => "The astropipe catalog",
                    "ivoa" => "IVOA standard views (ObsCore)",
                    _ => "TAP service metadata",
                };
                vec![
                    strs(names.iter().map(|n| Some(n.to_string())).collect()),
                    strs(names.iter().map(|_| None).collect()),
                    strs(names.iter().map(|n| Some(desc(n).to_string())).collect()),
                    ints((0..names.len() as i32).map(Some).collect()),
                ]
            }
            "tables" => vec![
                strs(tables.iter().map(|t| Some(t.schema.to_string())).collect()),
                strs(tables.iter().map(|t| Some(t.name.clone())).collect()),
                strs(tables.iter().map(|t| Some(t.kind.into())).collect()),
                strs(tables.iter().map(|_| None).collect()),
                strs(tables.iter().map(|t| Some(t.description.clone())).collect()),
                ints((0..tables.len() as i32).map(Some).collect()),
            ],
            "keys" => vec![
                strs(KEYS.iter().map(|k| Some(k.0.into())).collect()),
                strs(KEYS.iter().map(|k| Some(k.1.into())).collect()),
                strs(KEYS.iter().map(|k| Some(k.2.into())).collect()),
                strs(KEYS.iter().map(|_| None).collect()),
                strs(
                    KEYS.iter()
                        .map(|k| Some(format!("{} references {}", k.1, k.2)))
                        .collect(),
                ),
            ],
            "key_columns" => vec![
                strs(KEYS.iter().map(|k| Some(k.0.into())).collect()),
                strs(KEYS.iter().map(|k| Some(k.3.into())).collect()),
                strs(KEYS.iter().map(|k| Some(k.4.into())).collect()),
            ],
            "columns" => {
                let rows: Vec<(&TableDesc, usize, &ColumnDesc)> = tables
                    .iter()
                    .flat_map(|t| t.columns.iter().enumerate().map(move |(k, c)| (t, k, c)))
                    .collect();
                vec![
                    strs(rows.iter().map(|r| Some(r.0.name.clone())).collect()),
                    strs(rows.iter().map(|r| Some(r.2.name.clone())).collect()),
                    strs(rows.iter().map(|r| r.2.utype.clone()).collect()),
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
                            .map(|r| Some((r.2.name == "\"_healpix_29\"") as i32))
                            .collect(),
                    ),
                    ints(rows.iter().map(|r| Some(r.0.standard as i32)).collect()),
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
    if let Some(cat) = ctx.catalog("astropipe") {
        let tap: std::sync::Arc<dyn datafusion::catalog::SchemaProvider> =
            std::sync::Arc::new(TapSchema::new(&cat));
        for name in [NAME, "TAP_SCHEMA"] {
            cat.register_schema(name, tap.clone())?;
        }
    }
    Ok(())
}
