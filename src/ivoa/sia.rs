//! Simple Image Access 2.0 at `/sia/query` (GET or POST), answered from `ivoa.ObsCore`
//! ([`super::obscore`]) as a VOTable, with its VOSI `/sia/capabilities` and
//! `/sia/availability`. Parameters (SIA 2.0 §3; a parameter given several times matches any of
//! its values, different parameters must all match):
//!
//! - `POS`: `CIRCLE ra dec radius`, `RANGE ra1 ra2 dec1 dec2`, `POLYGON ra1 dec1 ...`
//!   (degrees, ICRS): images whose footprint overlaps the region;
//! - `BAND` (metres), `TIME` (MJD), `EXPTIME` (s), `FOV` (deg), `SPATRES` (arcsec): an
//!   interval `lo hi` (`-Inf`/`+Inf` open; one number: an interval containing it) the image's
//!   own interval or value overlaps;
//! - `ID`, `COLLECTION`, `FACILITY`, `INSTRUMENT`, `DPTYPE`, `TARGET`: exact strings; `CALIB`:
//!   a calibration level;
//! - `MAXREC`, `RESPONSEFORMAT` (as TAP).
//!
//! Errors are DALI error VOTables with status 400.

use super::tap::{from_api, read_request, response_format, tap_error};
use super::xml::Xml;
use crate::format::Format;
use crate::http::Peer;
use crate::query::Limits;
use crate::service::AppState;
use crate::service::respond::stream_query;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Rows a query returns when it sets no MAXREC.
const DEFAULT_MAXREC: usize = 10_000;

/// The SIA capability, added to a VOSI capabilities document.
pub fn capability(x: &mut Xml, base: &str) {
    x.open(
        "capability",
        &[("standardID", "ivo://ivoa.net/std/SIA#query-2.0")],
    )
    .open(
        "interface",
        &[
            ("xsi:type", "vs:ParamHTTP"),
            ("role", "std"),
            ("version", "2.0"),
        ],
    )
    .text(
        "accessURL",
        &[("use", "base")],
        &format!("{base}/sia/query"),
    )
    .close("interface")
    .close("capability");
}

/// `/sia/capabilities`: SIA and the VOSI resources.
pub async fn capabilities(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let base = super::tap::base(&state, &peer, &headers);
    super::tap::vosi::service_capabilities(&base, "sia", |x| capability(x, &base))
}

/// Why a parameter is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Bad(String);

fn numbers(name: &str, v: &str) -> Result<Vec<f64>, Bad> {
    v.split_whitespace()
        .map(|t| match t {
            "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
            "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
            _ => t
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| Bad(format!("{name}={v}: {t:?} is not a number"))),
        })
        .collect()
}

fn sql_f64(x: f64) -> String {
    format!("{x:?}")
}

/// A POS value as a region expression.
fn pos(v: &str) -> Result<String, Bad> {
    let v = v.trim();
    let (shape, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
    let n = numbers("POS", rest)?;
    let check = |ra: f64, dec: f64| -> Result<(), Bad> {
        if !(0.0..=360.0).contains(&ra) || !(-90.0..=90.0).contains(&dec) {
            return Err(Bad(format!("POS={v}: ({ra}, {dec}) is not a sky position")));
        }
        Ok(())
    };
    match shape.to_ascii_uppercase().as_str() {
        "CIRCLE" if n.len() == 3 => {
            check(n[0], n[1])?;
            if !(0.0..=180.0).contains(&n[2]) {
                return Err(Bad(format!("POS={v}: the radius must be in [0, 180]")));
            }
            Ok(format!(
                "circle({}, {}, {})",
                sql_f64(n[0]),
                sql_f64(n[1]),
                sql_f64(n[2])
            ))
        }
        "RANGE" if n.len() == 4 => {
            let (ra1, ra2) = (n[0].clamp(0.0, 360.0), n[1].clamp(0.0, 360.0));
            let (d1, d2) = (n[2].clamp(-90.0, 90.0), n[3].clamp(-90.0, 90.0));
            if ra1 > ra2 || d1 > d2 {
                return Err(Bad(format!(
                    "POS={v}: RANGE ra1 ra2 dec1 dec2 with ra1 <= ra2 and dec1 <= dec2"
                )));
            }
            let c = |a: f64| sql_f64(a);
            Ok(format!(
                "polygon({}, {}, {}, {}, {}, {}, {}, {})",
                c(ra1),
                c(d1),
                c(ra2),
                c(d1),
                c(ra2),
                c(d2),
                c(ra1),
                c(d2)
            ))
        }
        "POLYGON" if n.len() >= 6 && n.len() % 2 == 0 => {
            for p in n.chunks(2) {
                check(p[0], p[1])?;
            }
            Ok(format!(
                "polygon({})",
                n.iter().map(|x| sql_f64(*x)).collect::<Vec<_>>().join(", ")
            ))
        }
        _ => Err(Bad(format!(
            "POS={v}: use CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 or POLYGON ra1 dec1 ra2 dec2 ra3 dec3 ..."
        ))),
    }
}

/// An interval parameter against the columns holding the image's own interval.
fn interval(name: &str, v: &str, lo_col: &str, hi_col: &str) -> Result<String, Bad> {
    let n = numbers(name, v)?;
    let (lo, hi) = match n.as_slice() {
        [x] => (*x, *x),
        [a, b] if a <= b => (*a, *b),
        _ => return Err(Bad(format!("{name}={v}: give lo hi (or one value)"))),
    };
    let mut parts = Vec::new();
    if hi.is_finite() {
        parts.push(format!("{lo_col} <= {}", sql_f64(hi)));
    }
    if lo.is_finite() {
        parts.push(format!("{hi_col} >= {}", sql_f64(lo)));
    }
    Ok(if parts.is_empty() {
        "TRUE".into()
    } else {
        parts.join(" AND ")
    })
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL of a request's constraints.
fn constraints(all: &[(String, String)]) -> Result<Vec<String>, Bad> {
    let mut out = Vec::new();
    let mut group = |name: &str, f: &dyn Fn(&str) -> Result<String, Bad>| -> Result<(), Bad> {
        let values: Vec<&String> = all
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect();
        if values.is_empty() {
            return Ok(());
        }
        let any: Vec<String> = values
            .iter()
            .map(|v| f(v).map(|c| format!("({c})")))
            .collect::<Result<_, _>>()?;
        out.push(format!("({})", any.join(" OR ")));
        Ok(())
    };
    group("POS", &|v| {
        pos(v).map(|r| format!("region_intersects(s_region, {r})"))
    })?;
    group("BAND", &|v| interval("BAND", v, "em_min", "em_max"))?;
    group("TIME", &|v| interval("TIME", v, "t_min", "t_max"))?;
    group("EXPTIME", &|v| {
        interval("EXPTIME", v, "t_exptime", "t_exptime")
    })?;
    group("FOV", &|v| interval("FOV", v, "s_fov", "s_fov"))?;
    group("SPATRES", &|v| {
        interval("SPATRES", v, "s_resolution", "s_resolution")
    })?;
    for (param, column) in [
        ("ID", "obs_publisher_did"),
        ("COLLECTION", "obs_collection"),
        ("FACILITY", "facility_name"),
        ("INSTRUMENT", "instrument_name"),
        ("DPTYPE", "dataproduct_type"),
        ("TARGET", "target_name"),
    ] {
        group(param, &|v| Ok(format!("{column} = {}", quoted(v))))?;
    }
    group("CALIB", &|v| {
        v.trim()
            .parse::<i32>()
            .map(|n| format!("calib_level = {n}"))
            .map_err(|_| Bad(format!("CALIB={v} is not a level (0 to 4)")))
    })?;
    Ok(out)
}

/// `/sia/query`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    peer: Peer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Every value of repeated parameters counts: read the pairs, not the last of each.
    let mut all: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.clone().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.to_ascii_uppercase(), v.into_owned()))
            .collect();
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/") {
        match read_request(None, &headers, body).await {
            Ok(r) => all.extend(r.params),
            Err(e) => return from_api(e),
        }
    } else if !body.is_empty() {
        all.extend(
            url::form_urlencoded::parse(&body)
                .map(|(k, v)| (k.to_ascii_uppercase(), v.into_owned())),
        );
    }
    let bad = |m: String| tap_error(StatusCode::BAD_REQUEST, &m);
    let get = |k: &str| {
        all.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let format = match get("RESPONSEFORMAT") {
        None => Format::VOTable,
        Some(f) => match response_format(f) {
            Ok(f) => f,
            Err(e) => return from_api(e),
        },
    };
    let hard = state.limits.max_rows.unwrap_or(super::tap::HARD_MAXREC);
    let maxrec = match get("MAXREC") {
        None => DEFAULT_MAXREC.min(hard),
        Some(m) => match m.trim().parse::<usize>() {
            Ok(n) => n.min(hard),
            Err(_) => return bad(format!("MAXREC={m} is not a whole number")),
        },
    };
    let where_ = match constraints(&all) {
        Ok(c) => c,
        Err(e) => return bad(e.0),
    };
    let sql = format!(
        "SELECT * FROM ivoa.obscore{}{} ORDER BY obs_publisher_did",
        if where_.is_empty() { "" } else { " WHERE " },
        where_.join(" AND ")
    );
    let limits = Limits {
        max_rows: Some(maxrec.max(1)),
        ..state.limits.clone()
    };
    let client = state.client(peer.0, &headers);
    let t0 = std::time::Instant::now();
    let r = stream_query(&state, &client, &sql, format, &limits, &[]).await;
    let m = crate::telemetry::metrics();
    m.queries
        .with_label_values(&["sia", crate::service::respond::outcome(&r)])
        .inc();
    m.query_seconds
        .with_label_values(&["sia"])
        .observe(t0.elapsed().as_secs_f64());
    r.unwrap_or_else(from_api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_from_parameters() {
        let p = |v: &[(&str, &str)]| {
            constraints(
                &v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let c = p(&[
            ("POS", "CIRCLE 10 20 0.5"),
            ("POS", "RANGE 1 2 3 4"),
            ("BAND", "5e-7 +Inf"),
        ])
        .unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].contains("circle(10.0, 20.0, 0.5)") && c[0].contains(" OR "));
        assert_eq!(c[1], "((em_max >= 5e-7))");
        assert_eq!(
            p(&[("TIME", "60000")]).unwrap()[0],
            "((t_min <= 60000.0 AND t_max >= 60000.0))"
        );
        assert_eq!(
            p(&[("TARGET", "M 13'")]).unwrap()[0],
            "((target_name = 'M 13'''))"
        );
        assert!(p(&[("POS", "CIRCLE 10 100 1")]).is_err());
        assert!(p(&[("BAND", "2 1")]).is_err());
        assert!(p(&[("POS", "BOX 1 2 3 4")]).is_err());
    }
}
