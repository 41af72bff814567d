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
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The ADQL optional features the translator and DataFusion answer (tested in `adql.rs` and
/// the integration tests).
const FEATURES: &[(&str, &[&str])] = &[
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo",
        &[
            "POINT",
            "CIRCLE",
            "BOX",
            "POLYGON",
            "CONTAINS",
            "INTERSECTS",
            "DISTANCE",
            "AREA",
            "CENTROID",
            "COORD1",
            "COORD2",
            "COORDSYS",
        ],
    ),
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adql-string",
        &["LOWER", "ILIKE"],
    ),
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adql-sets",
        &["UNION", "EXCEPT", "INTERSECT"],
    ),
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adql-common-table",
        &["WITH"],
    ),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-type", &["CAST"]),
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adql-unit",
        &["IN_UNIT"],
    ),
    (
        "ivo://ivoa.net/std/TAPRegExt#features-adql-offset",
        &["OFFSET"],
    ),
];

/// astropipe's functions, callable from ADQL (TAPRegExt UDF forms).
const UDFS: &[(&str, &str)] = &[
    (
        "ang_sep_deg(ra1 DOUBLE, dec1 DOUBLE, ra2 DOUBLE, dec2 DOUBLE) -> DOUBLE",
        "Great-circle distance in degrees (Vincenty)",
    ),
    (
        "cone_contains(ra DOUBLE, dec DOUBLE, ra0 DOUBLE, dec0 DOUBLE, radius DOUBLE) -> BOOLEAN",
        "Whether (ra, dec) is within radius degrees of (ra0, dec0); pruned by HEALPix",
    ),
    (
        "healpix_nested(norder INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT",
        "NESTED HEALPix index at order norder",
    ),
    (
        "healpix_ring(norder INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT",
        "RING HEALPix index at order norder",
    ),
    (
        "healpix_29(ra DOUBLE, dec DOUBLE) -> BIGINT",
        "The HATS index _healpix_29",
    ),
    (
        "flux_to_mag(flux DOUBLE, zp DOUBLE) -> DOUBLE",
        "zp - 2.5 log10(flux), NULL for flux <= 0",
    ),
    (
        "mag_to_flux(mag DOUBLE, zp DOUBLE) -> DOUBLE",
        "10^((zp - mag) / 2.5)",
    ),
    (
        "galactic_l(ra DOUBLE, dec DOUBLE) -> DOUBLE",
        "Galactic longitude of an ICRS position",
    ),
    (
        "galactic_b(ra DOUBLE, dec DOUBLE) -> DOUBLE",
        "Galactic latitude of an ICRS position",
    ),
    (
        "ecliptic_lon(ra DOUBLE, dec DOUBLE) -> DOUBLE",
        "Ecliptic longitude (J2000) of an ICRS position",
    ),
    (
        "ecliptic_lat(ra DOUBLE, dec DOUBLE) -> DOUBLE",
        "Ecliptic latitude (J2000) of an ICRS position",
    ),
    (
        "mjd_to_timestamp(mjd DOUBLE) -> TIMESTAMP",
        "The UTC time of an MJD",
    ),
    (
        "timestamp_to_mjd(t TIMESTAMP) -> DOUBLE",
        "The MJD of a time",
    ),
];
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
    .text(
        "dataModel",
        &[("ivo-id", "ivo://ivoa.net/std/ObsCore#core-1.1")],
        "ObsCore-1.1",
    )
    .open("language", &[])
    .text("name", &[], "ADQL")
    .text("version", &[("ivo-id", "ivo://ivoa.net/std/ADQL#v2.1")], "2.1")
    .text("version", &[("ivo-id", "ivo://ivoa.net/std/ADQL#v2.0")], "2.0")
    .text(
        "description",
        &[],
        "ADQL 2.1 translated to DataFusion SQL with astropipe's astronomy functions; geometries are ICRS",
    );
    for (kind, forms) in FEATURES {
        x.open("languageFeatures", &[("type", kind)]);
        for f in *forms {
            x.open("feature", &[]).text("form", &[], f).close("feature");
        }
        x.close("languageFeatures");
    }
    x.open(
        "languageFeatures",
        &[("type", "ivo://ivoa.net/std/TAPRegExt#features-udf")],
    );
    for (form, description) in UDFS {
        x.open("feature", &[])
            .text("form", &[], form)
            .text("description", &[], description)
            .close("feature");
    }
    x.close("languageFeatures").close("language");
    for (mime, alias, id) in [
        (
            VOTABLE_CT,
            "votable",
            Some("ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
        ),
        (
            "application/x-votable+xml;serialization=BINARY2",
            "votable/b2",
            Some("ivo://ivoa.net/std/TAPRegExt#output-votable-binary2"),
        ),
        ("text/csv", "csv", None),
        ("application/json", "json", None),
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
    x.empty(
        "uploadMethod",
        &[("ivo-id", "ivo://ivoa.net/std/TAPRegExt#upload-inline")],
    );
    // URLs only where the operator allowed some (--tap-upload-urls).
    let prefixes = &jobs.limits.upload_url_prefixes;
    for (scheme, method) in [("http://", "upload-http"), ("https://", "upload-https")] {
        if prefixes.iter().any(|p| p.starts_with(scheme)) {
            x.empty(
                "uploadMethod",
                &[("ivo-id", &format!("ivo://ivoa.net/std/TAPRegExt#{method}"))],
            );
        }
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
        .open("uploadLimit", &[])
        .text(
            "hard",
            &[("unit", "byte")],
            &jobs.limits.upload_bytes.to_string(),
        )
        .close("uploadLimit")
        .close("capability");
    resource_capabilities(
        &mut x,
        &format!("{base}/tap"),
        &[
            ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
            ("ivo://ivoa.net/std/VOSI#availability", "availability"),
            ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
            ("ivo://ivoa.net/std/DALI#examples", "examples"),
        ],
    );
    // Cone Search and SIA are services of their own, each with its capabilities resource
    // (`/scs/capabilities`, `/sia/capabilities`); TAP's lists TAP and its VOSI resources.
    x.close("vosi:capabilities");
    xml(StatusCode::OK, x.finish())
}

/// The VOSI capabilities of a service other than TAP at `{base}/{path}` (SCS, SIA): its own
/// capability, written by `service`, then its VOSI capabilities and availability resources.
pub fn service_capabilities(base: &str, path: &str, service: impl FnOnce(&mut Xml)) -> Response {
    let mut x = Xml::new();
    x.open(
        "vosi:capabilities",
        &[
            (
                "xmlns:vosi",
                "http://www.ivoa.net/xml/VOSICapabilities/v1.0",
            ),
            ("xmlns:xsi", XSI_NS),
            ("xmlns:vs", VS_NS),
        ],
    );
    service(&mut x);
    resource_capabilities(
        &mut x,
        &format!("{base}/{path}"),
        &[
            ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
            ("ivo://ivoa.net/std/VOSI#availability", "availability"),
        ],
    );
    x.close("vosi:capabilities");
    xml(StatusCode::OK, x.finish())
}

/// One capability per (standardID, resource) of a service rooted at `root`.
fn resource_capabilities(x: &mut Xml, root: &str, resources: &[(&str, &str)]) {
    for (std, resource) in resources {
        x.open("capability", &[("standardID", std)])
            .open(
                "interface",
                &[("xsi:type", "vs:ParamHTTP"), ("version", "1.1")],
            )
            .text(
                "accessURL",
                &[("use", "full")],
                &format!("{root}/{resource}"),
            )
            .close("interface")
            .close("capability");
    }
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
        if let Some(u) = &c.utype {
            x.text("utype", &[], u);
        }
        let mut attrs = vec![("xsi:type", "vs:VOTableType")];
        if let Some(a) = c.arraysize {
            attrs.push(("arraysize", a));
        }
        if let Some(t) = c.xtype {
            attrs.push(("extendedType", t));
        }
        x.text("dataType", &attrs, c.datatype);
        if c.name == "\"_healpix_29\"" {
            x.text("flag", &[], "indexed");
        }
        if t.standard {
            x.text("flag", &[], "std");
        }
        x.close("column");
    }
    // The foreign keys from this table (TAP_SCHEMA's own, TAP 1.1 §4), as TAP_SCHEMA.keys has them.
    for (_, from, target, from_col, target_col) in tap_schema::KEYS {
        if *from == t.name {
            x.open("foreignKey", &[])
                .text("targetTable", &[], target)
                .open("fkColumn", &[])
                .text("fromColumn", &[], from_col)
                .text("targetColumn", &[], target_col)
                .close("fkColumn")
                .close("foreignKey");
        }
    }
}

async fn described(state: &AppState) -> Result<Vec<TableDesc>, Response> {
    let catalog = state
        .ctx
        .catalog("astropipe")
        .ok_or_else(|| tap_error(StatusCode::INTERNAL_SERVER_ERROR, "no catalog"))?;
    tap_schema::describe(catalog.as_ref())
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
    for schema in [tap_schema::PUBLIC, "ivoa", "TAP_SCHEMA"] {
        if !tables.iter().any(|t| t.schema == schema) {
            continue;
        }
        x.open("schema", &[]).text("name", &[], schema);
        for t in tables.iter().filter(|t| t.schema == schema) {
            let kind = if t.kind == "view" { "view" } else { "output" };
            x.open("table", &[("type", kind)]);
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

/// `/tap/examples`: the ADQL examples of `sql/examples/` as a DALI examples document
/// (XHTML with RDFa: each example's name and query).
pub async fn examples() -> Response {
    let mut x = Xml::new();
    x.open(
        "html",
        &[
            ("xmlns", "http://www.w3.org/1999/xhtml"),
            ("xml:lang", "en"),
        ],
    )
    .open("head", &[])
    .text("title", &[], "astropipe TAP examples")
    .close("head")
    .open("body", &[("vocab", "http://www.ivoa.net/rdf/examples#")])
    .text("h1", &[], "astropipe TAP examples");
    for e in crate::examples::EXAMPLES
        .iter()
        .filter(|e| e.lang == crate::examples::Lang::Adql)
    {
        let id = e.file.trim_end_matches(".adql").replace('_', "-");
        let resource = format!("#{id}");
        let query: String = e
            .text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        x.open(
            "div",
            &[("typeof", "example"), ("id", &id), ("resource", &resource)],
        )
        .text("h2", &[("property", "name")], &e.title())
        .text("pre", &[("property", "query")], query.trim())
        .close("div");
    }
    x.close("body").close("html");
    let mut r = (StatusCode::OK, x.finish()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/xhtml+xml; charset=utf-8"),
    );
    r
}
