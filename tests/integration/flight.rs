//! Arrow Flight SQL driven by two clients no one here wrote: the ADBC Flight SQL driver (from
//! PyPI, in the test venv) and arrow-flight's Rust `FlightSqlServiceClient` (always runs):
//! statements, prepared statements with bound parameters, the metadata calls, the read-only
//! guard and auth (handshake and bearer); answers compared with the HTTP endpoint's.

use super::helpers::{Scratch, TestServer, run_python, sample_field_catalog, test_python};
use astropipe::server::ServeOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_flight_sql_driver_sees_what_http_sees() {
    let Some(python) = test_python() else { return };
    let s = Scratch::new("flight");
    let (ra0, dec0) = sample_field_catalog(&s).await;

    let token = "flight-test-token-0123456789";
    let mut opts = ServeOptions::new(
        s.path("cat").display().to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    opts.flight_addr = Some("127.0.0.1:0".parse().unwrap());
    opts.auth_token = Some(token.into());
    let server = TestServer::start_with(opts).await;
    let flight = server.flight_addr.expect("Flight SQL listens");
    let (ra, dec, radius) = (ra0, dec0, 0.05);

    // The HTTP answers to compare with.
    let http = |sql: String| {
        let c = server.client.clone();
        let url = server.url("/v1/sql");
        async move {
            let r = c
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .body(sql)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            serde_json::from_slice::<Vec<serde_json::Value>>(&r.bytes().await.unwrap()).unwrap()
        }
    };
    let ids = |rows: Vec<serde_json::Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["source_id"].as_str().unwrap().to_string())
            .collect()
    };
    let cone = |r: f64| {
        format!(
            "SELECT source_id FROM sources WHERE cone_contains(ra, dec, {ra}, {dec}, {r}) ORDER BY source_id"
        )
    };
    let want_cone = ids(http(cone(radius)).await);
    let want_half = ids(http(cone(radius / 2.0)).await);
    let want_n = http("SELECT count(*) AS n FROM sources".into()).await[0]["n"].clone();
    let want_exp = http("SELECT count(*) AS n FROM exposures".into()).await[0]["n"].clone();
    assert!(want_cone.len() > 5 && want_half.len() < want_cone.len());

    let args: Vec<String> = vec![
        format!("grpc://{flight}"),
        token.to_string(),
        ra.to_string(),
        dec.to_string(),
        radius.to_string(),
    ];
    let got = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(&python, "adbc_flight.py", &args)
    })
    .await
    .unwrap();

    assert_eq!(got["count"], want_n);
    assert_eq!(got["exposures_bearer"], want_exp);
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(strs(&got["cone_ids"]), want_cone);
    assert_eq!(
        strs(&got["prepared_ids"]),
        want_cone,
        "prepared statement, first binding"
    );
    assert_eq!(strs(&got["prepared_half_ids"]), want_half, "second binding");
    let mag = got["udf"].as_f64().unwrap();
    assert!((mag - (25.0 - 2.5 * 3.0)).abs() < 1e-12, "{mag}");

    // The read-only guard and bad SQL: errors with reasons, not a dead server.
    let forbidden = got["forbidden"].to_string();
    assert!(
        forbidden.contains("the catalog is read-only") && forbidden.contains("PermissionDenied"),
        "{forbidden}"
    );
    assert!(
        got["bad_sql"].to_string().contains("INVALID_ARGUMENT: [FlightSQL] Error during planning: table 'astropipe.public.nowhere' not found"),
        "{}",
        got["bad_sql"]
    );
    assert!(!got["wrong_token"].is_null(), "a wrong token must fail");
    let wrong = got["wrong_token"].to_string();
    assert!(
        wrong.contains("UNAUTHENTICATED") || wrong.to_lowercase().contains("unauthenticated"),
        "{wrong}"
    );

    // Metadata: both tables with their columns, in catalog astropipe, schema public.
    let objects = &got["objects"];
    for t in ["sources", "exposures"] {
        assert_eq!(objects[t]["catalog"], "astropipe", "{objects}");
        assert_eq!(objects[t]["schema"], "public");
        assert_eq!(objects[t]["type"], "TABLE");
    }
    let cols = strs(&objects["sources"]["columns"]);
    for c in ["source_id", "ra", "dec", "flux", "_healpix_29"] {
        assert!(cols.contains(&c.to_string()), "{cols:?}");
    }
    assert_eq!(strs(&got["sources_schema"]), cols);
    assert!(strs(&got["table_types"]).contains(&"TABLE".to_string()));
    assert_eq!(got["info"]["vendor_name"], "astropipe", "{}", got["info"]);

    // Flight queries are counted under their own protocol label.
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("protocol=\"flight\"") && l.contains("outcome=\"ok\"")),
        "{metrics}"
    );
}

/// Collects every batch a FlightInfo's endpoints point at.
async fn fetch(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<arrow::record_batch::RecordBatch> {
    use futures::TryStreamExt;
    let mut out = Vec::new();
    for ep in info.endpoint {
        let ticket = ep.ticket.expect("an endpoint has a ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        out.extend(stream.try_collect::<Vec<_>>().await.expect("stream"));
    }
    out
}

/// The strings of column `name` across batches.
fn column_strings(batches: &[arrow::record_batch::RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no {name}"));
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
        let col = col
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        out.extend(col.iter().map(|v| v.unwrap_or("").to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_flight_sql_client_sees_what_http_sees() {
    use arrow::array::Float64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use arrow_flight::sql::{CommandGetTables, SqlInfo};
    use std::sync::Arc;

    let s = Scratch::new("flight-rs");
    let (ra, dec) = sample_field_catalog(&s).await;
    let token = "flight-rust-token-0123456789";
    let mut opts = ServeOptions::new(
        s.path("cat").display().to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    opts.flight_addr = Some("127.0.0.1:0".parse().unwrap());
    opts.auth_token = Some(token.into());
    let server = TestServer::start_with(opts).await;
    let flight = server.flight_addr.expect("Flight SQL listens");
    let http = |sql: String| {
        let c = server.client.clone();
        let url = server.url("/v1/sql?format=csv");
        async move {
            let r = c
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .body(sql)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let text = r.text().await.unwrap();
            text.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
        }
    };
    let cone = |r: f64| {
        format!(
            "SELECT source_id FROM sources WHERE cone_contains(ra, dec, {ra}, {dec}, {r}) ORDER BY source_id"
        )
    };
    let want_cone = http(cone(0.05)).await;
    let want_half = http(cone(0.025)).await;
    assert!(want_cone.len() > 5 && want_half.len() < want_cone.len());

    let channel = tonic::transport::Channel::from_shared(format!("http://{flight}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // A wrong password is refused at the handshake, and no token means no statements.
    let mut stranger = FlightSqlServiceClient::new(channel.clone());
    let e = stranger
        .handshake("astronomer", "not-the-token")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("wrong credentials") || e.to_string().contains("authentication"),
        "{e}"
    );
    let e = stranger.execute("SELECT 1".into(), None).await.unwrap_err();
    assert!(
        e.to_string().contains("wrong credentials") || e.to_string().contains("authentication"),
        "{e}"
    );

    // Handshake with Basic credentials: the client keeps the bearer token it is given.
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("astronomer", token).await.unwrap();
    assert!(client.token().is_some());

    // A statement.
    let info = client.execute(cone(0.05), None).await.unwrap();
    let got = fetch(&mut client, info).await;
    assert_eq!(column_strings(&got, "source_id"), want_cone);

    // A prepared statement: the parameter types come back, then two bindings.
    let mut prepared = client
        .prepare(
            "SELECT source_id FROM sources WHERE cone_contains(ra, dec, $1, $2, $3) ORDER BY source_id"
                .into(),
            None,
        )
        .await
        .unwrap();
    let params = prepared.parameter_schema().unwrap().clone();
    assert_eq!(params.fields().len(), 3, "{params:?}");
    let bind = |r: f64| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Float64, false),
            Field::new("$2", DataType::Float64, false),
            Field::new("$3", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![ra])),
                Arc::new(Float64Array::from(vec![dec])),
                Arc::new(Float64Array::from(vec![r])),
            ],
        )
        .unwrap()
    };
    let plans = astropipe::query::session::plan_cache(&server.state.ctx);
    let hits = plans.hits();
    for (r, want) in [(0.05, &want_cone), (0.025, &want_half)] {
        prepared.set_parameters(bind(r)).unwrap();
        let info = prepared.execute().await.unwrap();
        let got = fetch(&mut client, info).await;
        assert_eq!(&column_strings(&got, "source_id"), want, "radius {r}");
    }
    // The second binding ran the plan the first one made (the plan cache's shape).
    assert!(plans.hits() > hits, "{plans:?}");
    prepared.close().await.unwrap();

    // Metadata: the tables, with their Arrow schemas; the server's name.
    let info = client
        .get_tables(CommandGetTables {
            include_schema: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let tables = fetch(&mut client, info).await;
    let names = column_strings(&tables, "table_name");
    for t in ["sources", "exposures"] {
        assert!(names.contains(&t.to_string()), "{names:?}");
    }
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerName])
        .await
        .unwrap();
    let sql_info = fetch(&mut client, info).await;
    assert_eq!(sql_info.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(
        format!("{:?}", sql_info[0].column(1)).contains("astropipe"),
        "{:?}",
        sql_info[0]
    );

    // The read-only guard and bad SQL: errors with reasons, and the service goes on.
    let e = client
        .execute("CREATE TABLE t AS SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = client
        .execute("SELECT nope FROM nowhere".into(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    // An error only execution finds (GetFlightInfo plans it fine): DoGet answers with the
    // error as its status, not with a stream that starts and breaks off.
    let info = client
        .execute(
            "SELECT CAST(file_sha256 AS BIGINT) AS n FROM exposures".into(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let e = match client.do_get(ticket).await {
        Err(e) => e,
        Ok(_) => panic!("DoGet of a failing query answered with a stream"),
    };
    assert!(e.to_string().contains("Cannot cast"), "{e}");
    let info = client
        .execute("SELECT count(*) AS n FROM exposures".into(), None)
        .await
        .unwrap();
    let n = fetch(&mut client, info).await;
    assert_eq!(
        column_strings(&n, "n"),
        http("SELECT count(*) AS n FROM exposures".into()).await
    );

    // A Flight SQL round trip costs about what an HTTP one does: no fixed delay per call
    // (Nagle's algorithm meeting delayed ACKs costs ~40 ms, 20x a small query here; two
    // plannings and two calls make Flight ~3x HTTP).
    // Medians of the same small query, interleaved; a ratio, not a time.
    let q = "SELECT count(*) AS n FROM exposures";
    let (mut h, mut f) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let t0 = std::time::Instant::now();
        http(q.into()).await;
        h.push(t0.elapsed().as_secs_f64());
        let t0 = std::time::Instant::now();
        let info = client.execute(q.into(), None).await.unwrap();
        fetch(&mut client, info).await;
        f.push(t0.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (h, f) = (median(&mut h), median(&mut f));
    eprintln!(
        "round trip: HTTP {:.2} ms, Flight SQL {:.2} ms",
        h * 1e3,
        f * 1e3
    );
    assert!(
        f < 6.0 * h,
        "Flight SQL {:.2} ms vs HTTP {:.2} ms per small query",
        f * 1e3,
        h * 1e3
    );
}
