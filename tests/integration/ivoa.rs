//! The IVOA protocols driven by pyvo (from PyPI, in the test venv) — TAP sync and async,
//! TAP_SCHEMA, VOSI, Simple Cone Search — agreeing with plain SQL on the same cone; and the
//! raw documents (VOTable statuses, UWS redirects, errors) checked directly.

use super::helpers::{Scratch, TestServer, run_python, sample_field_catalog, test_python};

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyvo_tap_and_cone_search_agree_with_sql() {
    let Some(python) = test_python() else { return };
    let s = Scratch::new("pyvo");
    let (ra, dec) = sample_field_catalog(&s).await;
    let server = TestServer::start(&s.path("cat")).await;
    let radius = 0.05;
    let mut want: Vec<String> = server
        .rows(&format!(
            "SELECT source_id FROM sources WHERE cone_contains(ra, dec, {ra}, {dec}, {radius})"
        ))
        .await
        .iter()
        .map(|r| r["source_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert!(want.len() > 5, "{want:?}");
    let total = server.rows("SELECT count(*) AS n FROM sources").await[0]["n"]
        .as_u64()
        .unwrap();

    let base = format!("http://{}", server.addr);
    let args: Vec<String> = vec![base, ra.to_string(), dec.to_string(), radius.to_string()];
    let got = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(&python, "pyvo_client.py", &a)
    })
    .await
    .unwrap();

    assert_eq!(strs(&got["sync_ids"]), want, "TAP sync");
    assert_eq!(got["sync_status"], "OK");
    assert_eq!(strs(&got["lower_ids"]), want, "lower-case ADQL 2.1 forms");
    assert_eq!(strs(&got["async_ids"]), want, "TAP async (UWS)");
    assert_eq!(strs(&got["scs_ids"]), want, "Simple Cone Search");
    assert_eq!(got["scs_ra_col"], "ra");
    assert_eq!(got["scs_dec_col"], "dec");
    assert_eq!(got["scs_sorted"], true, "{}", got["scs_dist"]);
    assert_eq!(got["ra_unit"], "deg");
    assert_eq!(got["ra_ucd"], "pos.eq.ra;meta.main");
    assert!(total > 5);
    assert_eq!(got["overflow_rows"], 5);
    assert_eq!(got["overflow_status"], "OVERFLOW");
    let err = got["error"].as_str().expect("a bad query fails");
    assert!(err.contains("nowhere"), "{err}");
    let tables = strs(&got["tap_schema_tables"]);
    for t in [
        "sources",
        "exposures",
        "TAP_SCHEMA.tables",
        "TAP_SCHEMA.columns",
    ] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    assert_eq!(
        got["tap_schema_columns"]["dec"],
        serde_json::json!(["deg", "pos.eq.dec;meta.main"])
    );
    let vosi = strs(&got["vosi_tables"]);
    assert!(vosi.contains(&"sources".to_string()), "{vosi:?}");
    assert_eq!(
        got["vosi_ra"],
        serde_json::json!(["deg", "pos.eq.ra;meta.main"])
    );
    assert_eq!(got["available"], true);
    assert_eq!(got["maxrec"], 100_000);
    assert_eq!(
        got["hardlimit"],
        server
            .state
            .limits
            .max_rows
            .unwrap_or(astropipe::ivoa::tap::HARD_MAXREC)
    );
    let features = strs(&got["geometry_features"]);
    for f in [
        "BOX",
        "CIRCLE",
        "CONTAINS",
        "DISTANCE",
        "INTERSECTS",
        "POINT",
        "POLYGON",
    ] {
        assert!(features.contains(&f.to_string()), "{features:?}");
    }
}

#[tokio::test]
async fn tap_and_scs_documents_say_what_happened() {
    let s = Scratch::new("tapdocs");
    let (ra, dec) = sample_field_catalog(&s).await;
    let server = TestServer::start(&s.path("cat")).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String| {
        let c = c.clone();
        let url = server.url(&path);
        async move {
            let r = c.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, ct, r.text().await.unwrap())
        }
    };
    // CSV, with TOP and a BOX; the same rows as SQL.
    let adql = format!(
        "SELECT TOP 3 source_id FROM sources WHERE CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', {ra}, {dec}, 0.1, 0.1)) = 1 ORDER BY source_id"
    );
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("REQUEST", "doQuery")
        .append_pair("LANG", "ADQL")
        .append_pair("QUERY", &adql)
        .append_pair("RESPONSEFORMAT", "csv")
        .finish();
    let (status, ct, body) = get(format!("/tap/sync?{q}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let want = server
        .rows(&format!(
            "SELECT source_id FROM sources WHERE box_contains(ra, dec, {ra}, {dec}, 0.1, 0.1) ORDER BY source_id LIMIT 3"
        ))
        .await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "{body}");
    for (line, row) in lines[1..].iter().zip(&want) {
        assert_eq!(*line, row["source_id"].as_str().unwrap());
    }
    // MAXREC=0: the columns (with units) and OVERFLOW, no rows.
    let (status, _, body) = get(format!(
        "/tap/sync?REQUEST=doQuery&LANG=ADQL&MAXREC=0&QUERY={}",
        url::form_urlencoded::byte_serialize(b"SELECT source_id, ra, flux FROM sources")
            .collect::<String>()
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.matches("<FIELD ").count(), 3, "{body}");
    assert!(
        body.contains("<FIELD name=\"ra\" datatype=\"double\" unit=\"deg\""),
        "{body}"
    );
    assert!(!body.contains("<TR>"), "{body}");
    assert!(body.contains("value=\"OVERFLOW\""), "{body}");
    // Errors are VOTables with QUERY_STATUS ERROR and a 4xx; writes are refused.
    for (query, status, needle) in [
        ("SELECT nope FROM sources", 400, "nope"),
        ("SELECT TOP x FROM sources", 400, "TOP needs a whole number"),
        ("DROP TABLE sources", 403, "read-only"),
        (
            "SELECT * FROM sources WHERE CONTAINS(POINT('GALACTIC', ra, dec), CIRCLE('GALACTIC', 1, 2, 3)) = 1",
            400,
            "GALACTIC",
        ),
    ] {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("request", "doQuery")
            .append_pair("lang", "ADQL")
            .append_pair("query", query)
            .finish();
        let (got, ct, body) = get(format!("/tap/sync?{q}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(ct.contains("votable"), "{ct}");
        assert!(
            body.contains("name=\"QUERY_STATUS\" value=\"ERROR\""),
            "{body}"
        );
        assert!(body.contains(needle), "{query}: {body}");
    }
    // UWS: create (303 to the job), run, wait, result, delete.
    let r = c
        .post(server.url("/tap/async"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "LANG=ADQL&QUERY={}",
            url::form_urlencoded::byte_serialize(b"SELECT count(*) AS n FROM sources")
                .collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let job = r.headers()["location"].to_str().unwrap().to_string();
    let path = job
        .trim_start_matches(&format!("http://{}", server.addr))
        .to_string();
    assert!(path.starts_with("/tap/async/"), "{job}");
    assert_eq!(get(format!("{path}/phase")).await.2, "PENDING");
    let r = c
        .post(server.url(&format!("{path}/phase")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("PHASE=RUN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, _, doc) = get(format!("{path}?WAIT=30")).await;
    let doc = if doc.contains("<uws:phase>COMPLETED</uws:phase>") {
        doc
    } else {
        get(format!("{path}?WAIT=30")).await.2
    };
    assert!(doc.contains("<uws:phase>COMPLETED</uws:phase>"), "{doc}");
    assert!(doc.contains("/results/result\""), "{doc}");
    let (status, _, result) = get(format!("{path}/results/result")).await;
    assert_eq!(status, 200);
    let n = server.rows("SELECT count(*) AS n FROM sources").await[0]["n"].clone();
    assert!(result.contains(&format!("<TD>{n}</TD>")), "{result}");
    let r = c.delete(server.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get(path.clone()).await.0, 404);
    // A failing async job ends in ERROR with the reason.
    let r = c
        .post(server.url("/tap/async"))
        .body(format!(
            "PHASE=RUN&QUERY={}",
            url::form_urlencoded::byte_serialize(b"SELECT nope FROM sources").collect::<String>()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    let path = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches(&format!("http://{}", server.addr))
        .to_string();
    let mut doc = get(format!("{path}?WAIT=30")).await.2;
    if !doc.contains("ERROR") {
        doc = get(format!("{path}?WAIT=30")).await.2;
    }
    assert!(
        doc.contains("<uws:phase>ERROR</uws:phase>") && doc.contains("nope"),
        "{doc}"
    );
    // Cone Search: bad parameters are VOTable errors.
    for (q, needle) in [
        (format!("RA={ra}&DEC=95&SR=0.1"), "DEC=95"),
        (format!("RA={ra}&SR=0.1"), "DEC is missing"),
        (format!("RA={ra}&DEC={dec}&SR=45"), "SR=45"),
        (
            format!("RA={ra}&DEC={dec}&SR=0.1&TABLE=nothing"),
            "no table",
        ),
    ] {
        let (status, _, body) = get(format!("/scs?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body.contains("name=\"Error\"") && body.contains(needle),
            "{q}: {body}"
        );
    }
    let (status, _, body) = get(format!("/scs?RA={ra}&DEC={dec}&SR=0.05&VERB=1")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("ucd=\"ID_MAIN\"") && body.contains("ucd=\"POS_EQ_RA_MAIN\""),
        "{body}"
    );
    assert_eq!(body.matches("<FIELD ").count(), 4, "{body}");
    // VOSI availability and the row cap's OVERFLOW on /v1/sql?format=votable too.
    let (_, _, avail) = get("/tap/availability".into()).await;
    assert!(
        avail.contains("<vosi:available>true</vosi:available>"),
        "{avail}"
    );
}
