//! Arrow Flight SQL driven by the real ADBC Flight SQL driver (from PyPI, in the test venv):
//! statements, prepared statements with bound parameters, the metadata calls, the read-only
//! guard and bearer-token auth; answers compared with the HTTP endpoint's.

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
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("protocol=\"flight\"") && l.contains("outcome=\"ok\"")),
        "{metrics}"
    );
}
