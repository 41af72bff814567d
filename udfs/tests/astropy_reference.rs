//! The functions, called through DataFusion SQL, against astropy's answers
//! (`tests/data/reference.json`, made by `tests/data/make_reference.py`): positions to 1 mas,
//! HEALPix indices exactly, MJD to the microsecond.

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

fn reference() -> serde_json::Value {
    // Looked up at run time: a test binary reused from a build in another checkout (CI's
    // clean clone shares the target directory) must read this checkout's file.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{root}/tests/data/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

async fn context(v: &serde_json::Value) -> SessionContext {
    let mut ctx = SessionContext::new();
    let registry: &mut dyn FunctionRegistry = &mut ctx;
    astropipe_udfs::register_all(registry).unwrap();
    let cols = ["ra", "dec", "ra2", "dec2"];
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(*c, DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let arrays = cols
        .iter()
        .map(|c| Arc::new(Float64Array::from(floats(v, c))) as _)
        .collect();
    let batch = RecordBatch::try_new(schema, arrays).unwrap();
    ctx.register_batch("p", batch).unwrap();
    ctx
}

async fn column(ctx: &SessionContext, sql: &str) -> Vec<Option<f64>> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let c = arrow::compute::cast(b.column(0), &DataType::Float64).unwrap();
        let c = c.as_primitive::<Float64Type>();
        out.extend((0..c.len()).map(|i| (!c.is_null(i)).then(|| c.value(i))));
    }
    out
}

fn sep_mas(a: (f64, f64), b: (f64, f64)) -> f64 {
    astropipe_udfs::sphere::ang_sep_deg(a.0, a.1, b.0, b.1) * 3.6e6
}

#[tokio::test]
async fn frame_conversions_agree_with_astropy_to_a_milliarcsecond() {
    let v = reference();
    let ctx = context(&v).await;
    for (lon_sql, lat_sql, lon_key, lat_key) in [
        (
            "galactic_l(ra, dec)",
            "galactic_b(ra, dec)",
            "gal_l",
            "gal_b",
        ),
        (
            "ecliptic_lon(ra, dec)",
            "ecliptic_lat(ra, dec)",
            "ecl_lon",
            "ecl_lat",
        ),
    ] {
        let lon = column(&ctx, &format!("SELECT {lon_sql} FROM p")).await;
        let lat = column(&ctx, &format!("SELECT {lat_sql} FROM p")).await;
        let (el, eb) = (floats(&v, lon_key), floats(&v, lat_key));
        for i in 0..el.len() {
            let got = (lon[i].unwrap(), lat[i].unwrap());
            let d = sep_mas(got, (el[i], eb[i]));
            assert!(
                d < 1.0,
                "{lon_sql} row {i}: {got:?} vs ({}, {}): {d} mas",
                el[i],
                eb[i]
            );
        }
    }
    // And back: galactic → ICRS, ecliptic → ICRS round trips through astropy's values.
    let (ra, dec) = (floats(&v, "ra"), floats(&v, "dec"));
    for (to_ra, to_dec, lon_key, lat_key) in [
        ("galactic_to_ra", "galactic_to_dec", "gal_l", "gal_b"),
        ("ecliptic_to_ra", "ecliptic_to_dec", "ecl_lon", "ecl_lat"),
    ] {
        let (el, eb) = (floats(&v, lon_key), floats(&v, lat_key));
        for i in 0..el.len() {
            let q = format!(
                "SELECT {to_ra}({l}, {b}) UNION ALL SELECT {to_dec}({l}, {b})",
                l = el[i],
                b = eb[i]
            );
            let r = column(&ctx, &q).await;
            let d = sep_mas((r[0].unwrap(), r[1].unwrap()), (ra[i], dec[i]));
            assert!(d < 1.0, "{to_ra} row {i}: {d} mas");
        }
    }
}

#[tokio::test]
async fn separations_agree_with_astropy() {
    let v = reference();
    let ctx = context(&v).await;
    let got = column(&ctx, "SELECT ang_sep_deg(ra, dec, ra2, dec2) FROM p").await;
    for (i, want) in floats(&v, "sep_deg").into_iter().enumerate() {
        let d = (got[i].unwrap() - want).abs() * 3.6e6;
        assert!(d < 0.01, "row {i}: {:?} vs {want} ({d} mas)", got[i]);
    }
}

#[tokio::test]
async fn healpix_indices_agree_with_astropy_healpix() {
    let v = reference();
    let ctx = context(&v).await;
    for (key, want) in v["healpix"].as_object().unwrap() {
        let (scheme, order) = key.split_once('_').unwrap();
        let sql = format!("SELECT healpix_{scheme}({order}, ra, dec) FROM p");
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let got: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        let want: Vec<i64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        // The exact pole (dec = 90) may fall in any of the cells meeting there.
        for i in 0..want.len() {
            if floats(&v, "dec")[i].abs() == 90.0 {
                continue;
            }
            assert_eq!(got[i], want[i], "{key} row {i}");
        }
    }
}

#[tokio::test]
async fn mjd_round_trips_through_timestamps_as_astropy_time() {
    let v = reference();
    let ctx = context(&v).await;
    let mjds = floats(&v, "mjd");
    let isot: Vec<&str> = v["mjd_isot_utc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for (m, iso) in mjds.iter().zip(isot) {
        let b = ctx
            .sql(&format!("SELECT CAST(mjd_to_timestamp({m}) AS VARCHAR), timestamp_to_mjd(mjd_to_timestamp({m}))"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::compute::cast(b[0].column(0), &DataType::Utf8).unwrap();
        let text = text.as_string::<i32>().value(0).to_string();
        // astropy prints milliseconds; compare to the millisecond.
        assert!(
            text.replace(' ', "T").starts_with(&iso[..19]),
            "{m}: {text} vs {iso}"
        );
        let back = b[0].column(1).as_primitive::<Float64Type>().value(0);
        assert!((back - m).abs() * 86_400e6 < 1.0, "{m} -> {back}");
    }
}
