//! The real server on port 0: cone search over HTTP recovers injected stars, formats, the
//! read-only guard, probes and metrics.

use super::helpers::{Scratch, TestServer, copy_samples, ingest};
use astropipe::synthetic::FrameSpec;
use serde_json::Value;

/// A catalog holding real samples and a synthetic frame; returns the frame.
async fn demo_like_catalog(s: &Scratch) -> astropipe::synthetic::Frame {
    let inputs = s.path("in");
    copy_samples(
        &inputs,
        &["m13.fits", "test0.fits", "thumbnail-image.fit.gz"],
    );
    let frame = FrameSpec {
        width: 1024,
        height: 1024,
        n_stars: 150,
        ..FrameSpec::default()
    }
    .generate();
    std::fs::write(inputs.join("synthetic.fits"), frame.to_fits()).unwrap();
    let report = ingest(&[&inputs], &s.path("cat")).await;
    assert_eq!(report.files_ingested, 4, "{report}");
    frame
}

#[tokio::test]
async fn cone_search_over_http_recovers_bright_injected_stars() {
    let s = Scratch::new("cone");
    let frame = demo_like_catalog(&s).await;
    let srv = TestServer::start(&s.path("cat")).await;
    let (ra0, dec0) = (frame.spec.ra0, frame.spec.dec0);
    let rows = srv
        .rows(&format!(
            "SELECT ra, dec, flux, snr FROM sources WHERE cone_contains(ra, dec, {ra0}, {dec0}, 0.1)"
        ))
        .await;
    let found: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r["ra"].as_f64().unwrap(), r["dec"].as_f64().unwrap()))
        .collect();
    let bright: Vec<_> = frame.stars.iter().filter(|s| s.flux >= 1e4).collect();
    assert!(bright.len() > 30, "the frame has enough bright stars");
    let mut worst: f64 = 0.0;
    for star in &bright {
        let best = found
            .iter()
            .map(|&(ra, dec)| {
                astropipe_udfs::sphere::ang_sep_deg(ra, dec, star.ra, star.dec) * 3600.0
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            best < 0.5,
            "star at ({}, {}) flux {} recovered {best}\" away",
            star.ra,
            star.dec,
            star.flux
        );
        worst = worst.max(best);
    }
    eprintln!(
        "{} bright stars, worst offset {worst:.3} arcsec",
        bright.len()
    );
    // Nothing outside the cone came back, and the real images are elsewhere on the sky.
    for (ra, dec) in &found {
        assert!(astropipe_udfs::sphere::ang_sep_deg(*ra, *dec, ra0, dec0) <= 0.1 + 1e-12);
    }
}

/// Every example of `sql/examples/`, verbatim, against a catalog of the demo's synthetic
/// field: each returns rows, the cone finds stars nearest first, and the ADQL cone over
/// `/tap/sync` returns five of the SQL cone's sources.
#[tokio::test]
async fn example_queries_run_and_the_cone_example_finds_stars() {
    use astropipe::examples::{EXAMPLES, Example, Lang};
    let s = Scratch::new("examples");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "test0.fits"]);
    std::fs::write(
        inputs.join("synthetic_demo.fits"),
        astropipe::demo::demo_frame().to_fits(),
    )
    .unwrap();
    ingest(&[&inputs], &s.path("cat")).await;
    let srv = TestServer::start(&s.path("cat")).await;
    for e in EXAMPLES.iter().filter(|e| e.lang == Lang::Sql) {
        let rows = srv.rows(e.text).await;
        assert!(!rows.is_empty(), "{} returned nothing", e.file);
    }
    let cone = srv
        .rows(Example::named("cone_search.sql").unwrap().text)
        .await;
    assert!(cone.len() >= 3, "cone example found {}", cone.len());
    let seps: Vec<f64> = cone
        .iter()
        .map(|r| r["sep_arcsec"].as_f64().unwrap())
        .collect();
    assert!(seps.windows(2).all(|w| w[0] <= w[1]) && seps.iter().all(|s| *s <= 60.0 + 1e-9));

    let adql = Example::named("cone_search.adql").unwrap();
    let r = srv
        .client
        .post(srv.url("/tap/sync"))
        .form(&[
            ("REQUEST", "doQuery"),
            ("LANG", "ADQL"),
            ("QUERY", adql.text),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let votable = r.text().await.unwrap();
    let ids: Vec<&str> = votable
        .split("<TR><TD>")
        .skip(1)
        .map(|tr| tr.split("</TD>").next().unwrap())
        .collect();
    assert_eq!(ids.len(), 5.min(cone.len()), "{votable}");
    for id in ids {
        assert!(
            cone.iter().any(|r| r["source_id"].as_str() == Some(id)),
            "{id} is not in the SQL cone"
        );
    }
}

#[tokio::test]
async fn formats_by_accept_and_query_parameter() {
    let s = Scratch::new("formats");
    demo_like_catalog(&s).await;
    let srv = TestServer::start(&s.path("cat")).await;
    let q = "SELECT exposure_id, hdu FROM exposures ORDER BY exposure_id";
    let (st, ct, body) = srv.sql(q, None).await;
    assert_eq!((st, ct.as_str()), (200, "application/json"));
    let json: Value = serde_json::from_slice(&body).unwrap();
    let n = json.as_array().unwrap().len();
    assert_eq!(n, 7, "m13 1 + test0 4 + thumbnail 1 + synthetic 1");

    let (st, ct, body) = srv.sql(q, Some("text/csv")).await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/csv"));
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.lines().next(), Some("exposure_id,hdu"));
    assert_eq!(text.lines().count(), n + 1);

    let (st, ct, body) = srv
        .sql(q, Some("application/vnd.apache.arrow.stream"))
        .await;
    assert_eq!(
        (st, ct.as_str()),
        (200, "application/vnd.apache.arrow.stream")
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, n);

    let (st, _, body) = srv.sql(q, Some("image/png")).await;
    assert_eq!(st, 406);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["code"], "not_acceptable");

    // JSON body form and ?format=ndjson.
    let resp = srv
        .client
        .post(srv.url("/v1/sql?format=ndjson"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "sql": q }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap().lines().count(), n);
}

#[tokio::test]
async fn ddl_dml_and_copy_are_refused_and_bad_sql_is_a_400() {
    let s = Scratch::new("guard");
    demo_like_catalog(&s).await;
    let srv = TestServer::start(&s.path("cat")).await;
    let forbidden = [
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE sources",
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT * FROM sources) TO '/tmp/astropipe-stolen.csv'",
        "INSERT INTO exposures SELECT * FROM exposures",
        "SET datafusion.execution.batch_size = 1",
        "CREATE VIEW v AS SELECT 1",
        "EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'",
    ];
    for sql in forbidden {
        let (st, _, body) = srv.sql(sql, None).await;
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(st, 403, "{sql}: {err}");
        assert_eq!(err["code"], "forbidden_statement", "{sql}");
        assert!(err["message"].as_str().unwrap().contains("read-only"));
    }
    assert!(!std::path::Path::new("/tmp/astropipe-stolen.csv").exists());
    // The tables are still there and unchanged.
    let rows = srv.rows("SELECT count(*) AS n FROM exposures").await;
    assert_eq!(rows[0]["n"], 7);
    for (sql, code) in [
        ("SELEC 1", "invalid_query"),
        ("SELECT * FROM no_such_table", "invalid_query"),
        ("SELECT no_such_column FROM sources", "invalid_query"),
        ("", "bad_request"),
    ] {
        let (st, _, body) = srv.sql(sql, None).await;
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(st, 400, "{sql:?}: {err}");
        assert_eq!(err["code"], code, "{sql:?}");
    }
}

#[tokio::test]
async fn probes_metrics_tables_and_new_versions() {
    let s = Scratch::new("probes");
    demo_like_catalog(&s).await;
    let srv = TestServer::start(&s.path("cat")).await;
    let get = |p: &str| srv.client.get(srv.url(p)).send();

    assert_eq!(get("/livez").await.unwrap().status(), 200);
    let ready = srv.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    // Nothing internal for an anonymous caller (the version is a metric).
    assert!(
        ready.get("version").is_none() && ready.get("catalog").is_none(),
        "{ready}"
    );
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    srv.rows("SELECT 1").await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("astropipe_build_info{version="),
        "{metrics}"
    );
    assert!(metrics.contains(
        "astropipe_http_requests_total{method=\"POST\",route=\"/v1/sql\",status=\"200\"}"
    ));
    assert!(metrics.contains("astropipe_http_request_duration_seconds_bucket{route=\"/v1/sql\""));
    assert!(metrics.contains("astropipe_queries_total{outcome=\"ok\",protocol=\"http\"}"));
    let tables = srv.get_json("/v1/tables").await;
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["exposures", "sources"]);
    let src = srv.get_json("/v1/tables/sources").await;
    let ra = src["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ra")
        .unwrap();
    assert_eq!(ra["unit"], "deg");
    assert_eq!(ra["ucd"], "pos.eq.ra;meta.main");
    assert_eq!(get("/v1/tables/nope").await.unwrap().status(), 404);
    assert_eq!(get("/no/such/route").await.unwrap().status(), 404);

    // A new increment committed while serving becomes visible without a restart.
    let before = srv.rows("SELECT count(*) AS n FROM exposures").await[0]["n"]
        .as_i64()
        .unwrap();
    copy_samples(&s.path("more"), &["sip-wcs.fits"]);
    ingest(&[&s.path("more")], &s.path("cat")).await;
    srv.state.refresh().await.unwrap();
    let after = srv.rows("SELECT count(*) AS n FROM exposures").await[0]["n"]
        .as_i64()
        .unwrap();
    assert_eq!(after, before + 1);
}
