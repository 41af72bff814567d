//! IVOA Simple Cone Search 1.03 at `/scs?RA=&DEC=&SR=` (degrees, ICRS): the sources within SR
//! of (RA, DEC) as a VOTable, nearest first, with the UCD1 names the standard requires on the
//! identifier (`ID_MAIN`), right ascension (`POS_EQ_RA_MAIN`) and declination
//! (`POS_EQ_DEC_MAIN`), plus `dist_deg` (distance from the centre).
//!
//! `VERB=1` gives those three columns, `VERB=2` (default) the principal measurements, `VERB=3`
//! every column. `TABLE=name` searches another served table with `ra`/`dec` columns. SR is
//! at most [`MAX_SR_DEG`]; the service's row cap applies (OVERFLOW when it cuts). Errors are
//! VOTables with an `INFO name="Error"` (and `QUERY_STATUS` ERROR) and status 200, as SCS 1.03
//! §2.3 asks (clients read the message from the document, not the status).

use super::{tap_schema, votable};
use crate::format::Format;
use crate::http::Peer;
use crate::service::AppState;
use crate::service::respond::stream_query;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest search radius served, degrees.
pub const MAX_SR_DEG: f64 = 10.0;

const VERB2: &[&str] = &[
    "exposure_id",
    "flux",
    "flux_err",
    "mag_auto",
    "mag_auto_err",
    "snr",
    "flags",
    "mjd_obs",
    "filter",
];

/// A cone parameter that is missing or not a number.
#[derive(Debug, thiserror::Error)]
enum BadParam {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0}={1} is not a number")]
    NotANumber(&'static str, String),
}

fn scs_error(message: &str) -> Response {
    let m = votable::escape(message);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n<RESOURCE type=\"results\">\n<INFO ID=\"Error\" name=\"Error\" value=\"{m}\"/>\n<INFO name=\"QUERY_STATUS\" value=\"ERROR\">{m}</INFO>\n</RESOURCE>\n</VOTABLE>\n"
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-votable+xml"),
    );
    r
}

pub async fn cone(
    State(state): State<Arc<AppState>>,
    peer: crate::http::Peer,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let p: HashMap<String, String> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.to_ascii_uppercase(), v.into_owned()))
            .collect();
    let num = |k: &'static str| -> Result<f64, BadParam> {
        let v = p.get(k).ok_or(BadParam::Missing(k))?;
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| BadParam::NotANumber(k, v.clone()))
    };
    let (ra, dec, sr) = match (num("RA"), num("DEC"), num("SR")) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return scs_error(&e.to_string()),
    };
    if !(0.0..=360.0).contains(&ra) {
        return scs_error(&format!("RA={ra} is outside 0..360 degrees"));
    }
    if !(-90.0..=90.0).contains(&dec) {
        return scs_error(&format!("DEC={dec} is outside -90..90 degrees"));
    }
    if !(0.0..=MAX_SR_DEG).contains(&sr) {
        return scs_error(&format!("SR={sr} is outside 0..{MAX_SR_DEG} degrees"));
    }
    let verb = match p.get("VERB").map(|v| v.trim()) {
        None | Some("") => 2,
        Some(v) => match v.parse::<u8>() {
            Ok(n @ 1..=3) => n,
            _ => return scs_error(&format!("VERB={v}: use 1, 2 or 3")),
        },
    };
    let table = p.get("TABLE").map(String::as_str).unwrap_or("sources");
    let Some(public) = state
        .ctx
        .catalog("astropipe")
        .and_then(|c| c.schema(tap_schema::PUBLIC))
    else {
        return scs_error("no tables are served");
    };
    let provider = match public.table(table).await {
        Ok(Some(t)) => t,
        _ => return scs_error(&format!("no table {table:?}")),
    };
    let schema = provider.schema();
    let has = |c: &str| schema.field_with_name(c).is_ok();
    if !(has("ra") && has("dec")) {
        return scs_error(&format!("table {table:?} has no ra/dec columns"));
    }
    let id = if has("source_id") {
        "source_id".to_string()
    } else {
        schema.field(0).name().clone()
    };
    let quote = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let mut cols = vec![quote(&id), "ra".into(), "dec".into()];
    match verb {
        1 => {}
        2 => cols.extend(VERB2.iter().filter(|c| has(c)).map(|c| quote(c))),
        _ => cols.extend(
            schema
                .fields()
                .iter()
                .map(|f| f.name())
                .filter(|n| *n != &id && *n != "ra" && *n != "dec")
                .map(|n| quote(n)),
        ),
    }
    let sql = format!(
        "SELECT {}, ang_sep_deg(ra, dec, {ra:?}, {dec:?}) AS dist_deg FROM {} \
         WHERE cone_contains(ra, dec, {ra:?}, {dec:?}, {sr:?}) ORDER BY dist_deg",
        cols.join(", "),
        quote(table)
    );
    let ucds = [
        (id.as_str(), "ID_MAIN"),
        ("ra", "POS_EQ_RA_MAIN"),
        ("dec", "POS_EQ_DEC_MAIN"),
        ("dist_deg", "pos.angDistance"),
    ];
    let t0 = std::time::Instant::now();
    let client = state.client(peer.0, &headers);
    let r = stream_query(&state, &client, &sql, Format::VOTable, &state.limits, &ucds).await;
    let m = crate::telemetry::metrics();
    m.queries
        .with_label_values(&["scs", if r.is_ok() { "ok" } else { "error" }])
        .inc();
    m.query_seconds
        .with_label_values(&["scs"])
        .observe(t0.elapsed().as_secs_f64());
    r.unwrap_or_else(|e| scs_error(&e.message))
}

/// `/scs/capabilities`: Cone Search (with its limits and a query that works) and the VOSI
/// resources.
pub async fn capabilities(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let base = super::tap::base(&state, &peer, &headers);
    let hard = super::tap::hard_limit(&state);
    super::tap::vosi::service_capabilities(&base, "scs", |x| capability(x, &base, hard))
}

/// The Cone Search capability: limits and a query that works.
pub fn capability(x: &mut super::xml::Xml, base: &str, max_records: usize) {
    x.open(
        "capability",
        &[
            ("standardID", "ivo://ivoa.net/std/ConeSearch"),
            ("xsi:type", "cs:ConeSearch"),
            ("xmlns:cs", "http://www.ivoa.net/xml/ConeSearch/v1.0"),
        ],
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
    .text("maxSR", &[], &MAX_SR_DEG.to_string())
    .text("maxRecords", &[], &max_records.to_string())
    .text("verbosity", &[], "true")
    .open("testQuery", &[])
    .text("ra", &[], "0.0")
    .text("dec", &[], "0.0")
    .text("sr", &[], "0.001")
    .close("testQuery")
    .close("capability");
}
