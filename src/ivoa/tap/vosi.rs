//! VOSI resources of the TAP service: `/tap/availability`, `/tap/capabilities` (ADQL with
//! its geometry functions, output formats, limits, the Cone Search next to it) and
//! `/tap/tables[/{name}]` (columns with units, UCDs and descriptions).

use super::super::tap_schema::{self, TableDesc};
use super::super::xml::Xml;
use super::{
    DEFAULT_MAXREC, EXECUTION_DURATION_S, Jobs, VOTABLE_CT, base, hard_limit, tap_error, xml,
};
use crate::http::Peer;
use crate::service::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const VS_NS: &str = "http://www.ivoa.net/xml/VODataService/v1.1";
const TABLES_NS: &str = "http://www.ivoa.net/xml/VOSITables/v1.0";

pub async fn availability(State(state): State<Arc<AppState>>) -> Response {
    let up = state.ready.load(std::sync::atomic::Ordering::Acquire);
    let mut x = Xml::new();
    x.open(
        "vosi:availability",
        &[(
            "xmlns:vosi",
            "http://www.ivoa.net/xml/VOSIAvailability/v1.0",
        )],
    )
    .text("vosi:available", &[], if up { "true" } else { "false" })
    .text(
        "vosi:note",
        &[],
        if up { "serving" } else { "loading the catalog" },
    )
    .close("vosi:availability");
    xml(StatusCode::OK, x.finish())
}

pub async fn capabilities(
    State(state): State<Arc<AppState>>,
    State(jobs): State<Arc<Jobs>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let base = base(&state, &peer, &headers);
    let hard = hard_limit(&state);
    let default = DEFAULT_MAXREC.min(hard);
    let retention = jobs.limits.lifetime.as_secs().to_string();
    let duration = EXECUTION_DURATION_S.to_string();
    let mut x = Xml::new();
    x.open(
        "vosi:capabilities",
        &[
            (
                "xmlns:vosi",
                "http://www.ivoa.net/xml/VOSICapabilities/v1.0",
            ),
            ("xmlns:xsi", XSI_NS),
            ("xmlns:vr", "http://www.ivoa.net/xml/VOResource/v1.0"),
            ("xmlns:vs", VS_NS),
            ("xmlns:tr", "http://www.ivoa.net/xml/TAPRegExt/v1.0"),
        ],
    );
    x.open(
        "capability",
        &[
            ("standardID", "ivo://ivoa.net/std/TAP"),
            ("xsi:type", "tr:TableAccess"),
        ],
    )
    .open(
        "interface",
        &[
            ("xsi:type", "vs:ParamHTTP"),
            ("role", "std"),
            ("version", "1.1"),
        ],
    )
    .text("accessURL", &[("use", "base")], &format!("{base}/tap"))
    .close("interface")
    .open("language", &[])
    .text("name", &[], "ADQL")
    .text("version", &[("ivo-id", "ivo://ivoa.net/std/ADQL#v2.0")], "2.0")
    .text(
        "description",
        &[],
        "ADQL 2.0 (with ADQL 2.1's optional coordinate systems), translated to DataFusion SQL with astropipe's astronomy functions",
    )
    .open(
        "languageFeatures",
        &[("type", "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo")],
    );
    for f in [
        "POINT",
        "CIRCLE",
        "BOX",
        "POLYGON",
        "CONTAINS",
        "INTERSECTS",
        "DISTANCE",
        "COORD1",
        "COORD2",
    ] {
        x.open("feature", &[]).text("form", &[], f).close("feature");
    }
    x.close("languageFeatures").close("language");
    for (mime, alias, id) in [
        (
            VOTABLE_CT,
            "votable",
            Some("ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
        ),
        ("text/csv", "csv", None),
        ("application/vnd.apache.parquet", "parquet", None),
    ] {
        match id {
            Some(i) => x.open("outputFormat", &[("ivo-id", i)]),
            None => x.open("outputFormat", &[]),
        };
        x.text("mime", &[], mime)
            .text("alias", &[], alias)
            .close("outputFormat");
    }
    x.open("retentionPeriod", &[])
        .text("default", &[], &retention)
        .text("hard", &[], &retention)
        .close("retentionPeriod")
        .open("executionDuration", &[])
        .text("default", &[], &duration)
        .text("hard", &[], &duration)
        .close("executionDuration")
        .open("outputLimit", &[])
        .text("default", &[("unit", "row")], &default.to_string())
        .text("hard", &[("unit", "row")], &hard.to_string())
        .close("outputLimit")
        .close("capability");
    for (std, path) in [
        ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "availability"),
        ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
    ] {
        x.open("capability", &[("standardID", std)])
            .open(
                "interface",
                &[("xsi:type", "vs:ParamHTTP"), ("version", "1.1")],
            )
            .text(
                "accessURL",
                &[("use", "full")],
                &format!("{base}/tap/{path}"),
            )
            .close("interface")
            .close("capability");
    }
    x.open(
        "capability",
        &[("standardID", "ivo://ivoa.net/std/ConeSearch")],
    )
    .open(
        "interface",
        &[
            ("xsi:type", "vs:ParamHTTP"),
            ("role", "std"),
            ("version", "1.03"),
        ],
    )
    .text("accessURL", &[("use", "base")], &format!("{base}/scs?"))
    .close("interface")
    .close("capability")
    .close("vosi:capabilities");
    xml(StatusCode::OK, x.finish())
}

/// A table's name, description and columns, inside an element opened by the caller.
fn table_content(t: &TableDesc, x: &mut Xml) {
    x.text("name", &[], &t.name);
    if !t.description.is_empty() {
        x.text("description", &[], &t.description);
    }
    for c in &t.columns {
        x.open("column", &[]).text("name", &[], &c.name);
        if let Some(d) = &c.description {
            x.text("description", &[], d);
        }
        if let Some(u) = &c.unit {
            x.text("unit", &[], u);
        }
        if let Some(u) = &c.ucd {
            x.text("ucd", &[], u);
        }
        let mut attrs = vec![("xsi:type", "vs:VOTableType")];
        if let Some(a) = c.arraysize {
            attrs.push(("arraysize", a));
        }
        if let Some(t) = c.xtype {
            attrs.push(("extendedType", t));
        }
        x.text("dataType", &attrs, c.datatype);
        if c.name == "_healpix_29" {
            x.text("flag", &[], "indexed");
        }
        x.close("column");
    }
}

async fn described(state: &AppState) -> Result<Vec<TableDesc>, Response> {
    let public = state
        .ctx
        .catalog("astropipe")
        .and_then(|c| c.schema(tap_schema::PUBLIC))
        .ok_or_else(|| tap_error(StatusCode::INTERNAL_SERVER_ERROR, "no public schema"))?;
    tap_schema::describe(public.as_ref())
        .await
        .map_err(|e| tap_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// The VOSI tableset (`/tap/tables`).
pub async fn tables(State(state): State<Arc<AppState>>) -> Response {
    let tables = match described(&state).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut x = Xml::new();
    x.open(
        "vosi:tableset",
        &[
            ("xmlns:vosi", TABLES_NS),
            ("xmlns:vs", VS_NS),
            ("xmlns:xsi", XSI_NS),
        ],
    );
    for schema in [tap_schema::PUBLIC, "TAP_SCHEMA"] {
        x.open("schema", &[]).text("name", &[], schema);
        for t in tables.iter().filter(|t| t.schema == schema) {
            x.open("table", &[("type", "output")]);
            table_content(t, &mut x);
            x.close("table");
        }
        x.close("schema");
    }
    x.close("vosi:tableset");
    xml(StatusCode::OK, x.finish())
}

/// One table (`/tap/tables/{name}`).
pub async fn table(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let tables = match described(&state).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(t) = tables.iter().find(|t| t.name.eq_ignore_ascii_case(&name)) else {
        return tap_error(StatusCode::NOT_FOUND, &format!("no table {name:?}"));
    };
    let mut x = Xml::new();
    x.open(
        "vosi:table",
        &[
            ("xmlns:vosi", TABLES_NS),
            ("xmlns:vs", VS_NS),
            ("xmlns:xsi", XSI_NS),
            ("type", "output"),
        ],
    );
    table_content(t, &mut x);
    x.close("vosi:table");
    xml(StatusCode::OK, x.finish())
}
