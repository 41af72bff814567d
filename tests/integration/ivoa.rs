//! The IVOA protocols driven by pyvo (from PyPI, in the test venv) — TAP sync and async,
//! TAP_SCHEMA, VOSI, Simple Cone Search — agreeing with plain SQL on the same cone; and the
//! raw documents (VOTable statuses, UWS redirects, errors) checked directly.

use super::helpers::{
    Scratch, TestServer, multipart, run_python, sample_field_catalog, test_python,
};

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
        body.contains("<FIELD name=\"ra\" datatype=\"double\" ref=\"icrs\" unit=\"deg\""),
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
    // Cone Search: bad parameters are VOTable errors with status 200 (SCS 1.03 §2.3).
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
        assert_eq!(status, 200, "{q}: {body}");
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

/// A form or multipart TAP request.
async fn tap_form(
    server: &TestServer,
    path: &str,
    pairs: &[(&str, &str)],
) -> (u16, String, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let r = server
        .client
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

async fn adql(server: &TestServer, query: &str) -> (u16, String) {
    let (s, _, b) = tap_form(
        server,
        "/tap/sync",
        &[("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", query)],
    )
    .await;
    (s, b)
}

/// The cells of a TABLEDATA VOTable, row by row.
fn cells(votable: &str) -> Vec<Vec<String>> {
    votable
        .split("<TR>")
        .skip(1)
        .map(|tr| {
            let tr = tr.split("</TR>").next().unwrap();
            tr.split("<TD")
                .skip(1)
                .map(|td| {
                    if td.starts_with("/>") {
                        String::new()
                    } else {
                        td.trim_start_matches('>')
                            .split("</TD>")
                            .next()
                            .unwrap()
                            .to_string()
                    }
                })
                .collect()
        })
        .collect()
}

/// ADQL 2.1's geometry as values (DALI xtypes), its measures, reversed CONTAINS, REGION,
/// hexadecimal literals, IN_UNIT, delimited identifiers; TAP_SCHEMA's std flags, keys and
/// delimited names; multipart parameters; BINARY2 and refused formats; upload refusals; the
/// Server header; the examples document, each of its queries answering.
#[tokio::test]
async fn adql_geometry_tap_schema_formats_and_examples() {
    let s = Scratch::new("adql21");
    let (ra, dec) = sample_field_catalog(&s).await;
    let server = TestServer::start(&s.path("cat")).await;

    let (st, body) = adql(
        &server,
        "SELECT TOP 2 POINT('ICRS', ra, dec) AS p, CIRCLE('ICRS', ra, dec, 0.01) AS c, POLYGON('ICRS', 1, 1, 2, 1, 2, 2) AS g, ra, dec FROM sources ORDER BY source_id",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    for (name, size, xtype) in [
        ("p", "2", "point"),
        ("c", "3", "circle"),
        ("g", "*", "polygon"),
    ] {
        assert!(
            body.contains(&format!(
                "<FIELD name=\"{name}\" datatype=\"double\" arraysize=\"{size}\" xtype=\"{xtype}\" ref=\"icrs\""
            )),
            "{name}: {body}"
        );
    }
    let rows = cells(&body);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][0],
        format!("{} {}", rows[0][3], rows[0][4]),
        "{body}"
    );
    assert_eq!(rows[0][2], "1.0 1.0 2.0 1.0 2.0 2.0");

    let (st, body) = adql(
        &server,
        "SELECT COORDSYS(POINT('ICRS', 1, 2)) AS cs, AREA(CIRCLE('ICRS', 0, 0, 1)) AS a, CENTROID(POLYGON('ICRS', 0, 0, 90, 0, 0, 90)) AS ctr, 0x10 AS h, IN_UNIT(ra, 'arcsec') AS ra_as, ra FROM sources WHERE \"source_id\" IS NOT NULL ORDER BY source_id OFFSET 0",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let r = &cells(&body)[0];
    assert_eq!(r[0], "ICRS");
    let area: f64 = r[1].parse().unwrap();
    assert!((area - 3.14143).abs() < 1e-4, "{area}");
    let ctr: Vec<f64> = r[2].split(' ').map(|v| v.parse().unwrap()).collect();
    assert!(
        (ctr[0] - 45.0).abs() < 1e-9 && (ctr[1] - 35.2644).abs() < 1e-3,
        "{ctr:?}"
    );
    assert_eq!(r[3], "16");
    let (ra_as, ra1): (f64, f64) = (r[4].parse().unwrap(), r[5].parse().unwrap());
    assert!((ra_as - ra1 * 3600.0).abs() < 1e-6, "{ra_as} {ra1}");
    assert!(
        body.contains("name=\"ra_as\" datatype=\"double\" unit=\"arcsec\""),
        "{body}"
    );
    assert!(
        body.contains("name=\"a\" datatype=\"double\" unit=\"deg**2\""),
        "{body}"
    );
    // A circle is never inside a point (ADQL's CONTAINS), only a zero one at the point.
    let (st, body) = adql(
        &server,
        &format!("SELECT count(*) AS n FROM sources WHERE CONTAINS(CIRCLE('ICRS', ra, dec, 0.01), POINT('ICRS', {ra}, {dec})) = 1"),
    )
    .await;
    assert_eq!((st, cells(&body)[0][0].as_str()), (200, "0"), "{body}");
    let (st, body) = adql(
        &server,
        "SELECT count(*) FROM sources WHERE CONTAINS(CIRCLE('ICRS', ra, dec, 0), POINT('ICRS', ra, dec)) = 1",
    )
    .await;
    // Every source with a position is inside the zero circle at its own position.
    let placed = server
        .rows("SELECT count(*) AS n FROM sources WHERE ra IS NOT NULL AND dec IS NOT NULL")
        .await[0]["n"]
        .to_string();
    assert_eq!((st, cells(&body)[0][0].clone()), (200, placed), "{body}");
    let all = server.rows("SELECT count(*) AS n FROM sources").await[0]["n"].to_string();
    let (st, body) = adql(&server, "SELECT REGION('Circle ICRS 1 2 3') FROM sources").await;
    assert_eq!(st, 400);
    assert!(
        body.contains("STC-S") && body.contains("not supported"),
        "{body}"
    );
    // Delimited identifiers keep their case: "ra" is the column, "RA" is not.
    assert_eq!(
        adql(&server, "SELECT TOP 1 \"ra\" FROM sources").await.0,
        200
    );
    assert_eq!(
        adql(&server, "SELECT TOP 1 \"RA\" FROM sources").await.0,
        400
    );
    // ObsCore's region is queryable as a region column.
    let (st, body) = adql(
        &server,
        &format!("SELECT obs_id, AREA(s_region) AS a FROM ivoa.ObsCore WHERE CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1"),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        cells(&body).len(),
        1,
        "the synthetic field holds its own centre: {body}"
    );

    // TAP_SCHEMA: standard columns flagged std, the five keys, delimited names.
    let (_, body) = adql(
        &server,
        "SELECT count(*) FROM TAP_SCHEMA.columns WHERE table_name LIKE 'TAP_SCHEMA.%' AND std = 0",
    )
    .await;
    assert_eq!(cells(&body)[0][0], "0", "{body}");
    let (_, body) = adql(
        &server,
        "SELECT key_id, from_table, target_table FROM TAP_SCHEMA.keys",
    )
    .await;
    assert_eq!(cells(&body).len(), 5, "{body}");
    let (_, body) = adql(
        &server,
        "SELECT column_name FROM TAP_SCHEMA.columns WHERE table_name IN ('sources', 'TAP_SCHEMA.columns') ORDER BY column_name",
    )
    .await;
    let names: Vec<String> = cells(&body).into_iter().map(|r| r[0].clone()).collect();
    assert!(
        names.contains(&"&quot;_healpix_29&quot;".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"&quot;size&quot;".to_string()), "{names:?}");
    let (_, body) = adql(
        &server,
        "SELECT table_name, table_type FROM TAP_SCHEMA.tables WHERE schema_name = 'ivoa'",
    )
    .await;
    assert_eq!(
        cells(&body),
        vec![vec!["ivoa.ObsCore".to_string(), "view".to_string()]]
    );

    // Parameters in a multipart body, as DALI allows.
    let (ct, form) = multipart(&[
        ("REQUEST", None, b"doQuery"),
        ("LANG", None, b"ADQL"),
        ("QUERY", None, b"SELECT count(*) AS n FROM sources"),
    ]);
    let r = server
        .client
        .post(server.url("/tap/sync"))
        .header("content-type", ct)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["server"]
            .to_str()
            .unwrap()
            .starts_with("astropipe/"),
        "the Server header"
    );
    let body = r.text().await.unwrap();
    assert_eq!(cells(&body)[0][0], all, "{body}");

    // BINARY2 when asked; formats not served are refused, not silently replaced.
    for f in [
        "votable/b2",
        "application/x-votable+xml;serialization=BINARY2",
    ] {
        let (st, ct, body) = tap_form(
            &server,
            "/tap/sync",
            &[
                ("LANG", "ADQL"),
                (
                    "QUERY",
                    "SELECT TOP 5 source_id, ra, flux FROM sources ORDER BY source_id",
                ),
                ("RESPONSEFORMAT", f),
            ],
        )
        .await;
        assert_eq!(st, 200, "{body}");
        assert!(ct.contains("BINARY2"), "{ct}");
        let t = astropipe::ivoa::votable::read::read(body.as_bytes(), &Default::default()).unwrap();
        assert_eq!(t.num_rows(), 5);
    }
    for f in [
        "fits",
        "application/x-votable+xml;serialization=FITS",
        "votable/fits",
    ] {
        let (st, _, body) = tap_form(
            &server,
            "/tap/sync",
            &[
                ("LANG", "ADQL"),
                ("QUERY", "SELECT 1"),
                ("RESPONSEFORMAT", f),
            ],
        )
        .await;
        assert_eq!(st, 400, "{f}: {body}");
        assert!(body.contains("not served"), "{body}");
    }

    // Uploads that cannot be used say why.
    let upload = |query: &str, upload: &str, part: Option<(&str, Vec<u8>)>| {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![
            ("LANG", None, b"ADQL"),
            ("QUERY", None, query.as_bytes()),
            ("UPLOAD", None, upload.as_bytes()),
        ];
        if let Some((name, bytes)) = &part {
            parts.push((name, Some("t.xml"), bytes));
        }
        let (ct, form) = multipart(&parts);
        let req = server
            .client
            .post(server.url("/tap/sync"))
            .header("content-type", ct)
            .body(form);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = upload(
        "SELECT * FROM TAP_UPLOAD.t",
        "t,http://example.org/t.xml",
        None,
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        body.contains("does not fetch tables from http://example.org"),
        "{body}"
    );
    let (st, body) = upload("SELECT * FROM TAP_UPLOAD.t", "t,param:missing", None).await;
    assert_eq!(st, 400);
    assert!(body.contains("no multipart part named"), "{body}");
    let (st, body) = upload(
        "SELECT * FROM TAP_UPLOAD.t",
        "t,param:t",
        Some(("t", b"<VOTABLE><RESOURCE><TABLE><FIELD name=\"x\" datatype=\"floatComplex\"/></TABLE></RESOURCE></VOTABLE>".to_vec())),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body.contains("floatComplex"), "{body}");
    let vot = format!(
        "<VOTABLE><RESOURCE><TABLE><FIELD name=\"id\" datatype=\"int\"/><FIELD name=\"RA\" datatype=\"double\"/><FIELD name=\"Dec\" datatype=\"double\"/><DATA><TABLEDATA><TR><TD>7</TD><TD>{ra}</TD><TD>{dec}</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    );
    let (st, body) = upload(
        "SELECT u.id, u.ra, u.dec FROM TAP_UPLOAD.mine AS u",
        "mine,param:t",
        Some(("t", vot.into_bytes())),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(cells(&body)[0][0], "7");

    // The examples: every ADQL example of sql/examples/ is there, and answers.
    let r = server
        .client
        .get(server.url("/tap/examples"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc = r.text().await.unwrap();
    assert!(
        doc.contains("vocab=\"http://www.ivoa.net/rdf/examples#\""),
        "{doc}"
    );
    for e in astropipe::examples::EXAMPLES
        .iter()
        .filter(|e| e.lang == astropipe::examples::Lang::Adql)
    {
        let id = e.file.trim_end_matches(".adql").replace('_', "-");
        assert!(doc.contains(&format!("id=\"{id}\"")), "{id}: {doc}");
        let (st, body) = adql(&server, e.text).await;
        assert_eq!(st, 200, "{}: {body}", e.file);
        assert!(!cells(&body).is_empty(), "{} returned nothing", e.file);
    }
}

/// `GET /v1/tables/{t}/moc`: the MOC of the rows' positions equals mocpy's (JSON and FITS,
/// read by mocpy) at a coarse and a fine order; bad requests get clear 4xx answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_moc_matches_mocpys_from_the_same_positions() {
    let s = Scratch::new("moc");
    sample_field_catalog(&s).await;
    let server = TestServer::start(&s.path("cat")).await;
    for (path, status) in [
        ("/v1/tables/sources/moc?order=30", 400),
        ("/v1/tables/sources/moc?format=png", 400),
        ("/v1/tables/nowhere/moc", 404),
        ("/v1/tables/exposures/moc", 400),
    ] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}: {}", r.text().await.unwrap());
    }
    let r = server
        .client
        .get(server.url("/v1/tables/sources/moc?order=6"))
        .header("Accept", "application/fits")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/fits");
    assert!(r.bytes().await.unwrap().starts_with(b"SIMPLE  ="));

    // A MOC larger than the row limit is refused with its size, not cut; a small one is
    // still served (bitmap path at order 6, distinct cells at order 14).
    let mut opts = astropipe::server::ServeOptions::new(
        s.path("cat").display().to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    opts.limits.max_rows = Some(10);
    let small = TestServer::start_with(opts).await;
    for (order, status) in [(6, 200), (11, 422), (14, 422)] {
        let r = small
            .client
            .get(small.url(&format!("/v1/tables/sources/moc?order={order}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "order {order}");
        let body = r.text().await.unwrap();
        if status == 422 {
            assert!(body.contains("moc_too_large"), "{body}");
        }
    }

    let Some(python) = test_python() else { return };
    let base = format!("http://{}", server.addr);
    for order in [6, 14] {
        let (python, base) = (python.clone(), base.clone());
        let v = tokio::task::spawn_blocking(move || {
            run_python(
                &python,
                "moc_check.py",
                &[&base, "sources", &order.to_string()],
            )
        })
        .await
        .unwrap();
        assert!(v["rows"].as_u64().unwrap() > 100, "{v}");
        assert_eq!(v["json_equal"], true, "order {order}: {v}");
        assert_eq!(v["fits_equal"], true, "order {order}: {v}");
        assert_eq!(v["json_max_order"], order, "{v}");
        assert_eq!(v["fits_max_order"], order, "{v}");
        // At order 14 (13″ cells) the field's sources are mostly cells of their own.
        if order == 14 {
            assert!(v["cells_ours"].as_u64().unwrap() > 100, "{v}");
        }
        let (a, b) = (
            v["sky_fraction_ours"].as_f64().unwrap(),
            v["sky_fraction_mocpy"].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-9 * b.max(1e-12), "{v}");
    }
}
