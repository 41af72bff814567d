//! The query service's limits and protection: row cap (said in a header and a trailer),
//! timeout, per-query memory, bearer tokens, no file access through SQL.

use super::catalog::commit_rows;
use super::helpers::{Scratch, TestServer};
use astropipe::query::Limits;
use astropipe::server::ServeOptions;
use astropipe::storage::Location;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn small_catalog(s: &Scratch) -> std::path::PathBuf {
    let cat = s.path("cat");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    commit_rows(
        &loc,
        &astropipe::synthetic::source_rows(200, (10.0, 20.0), 0.5, &[1], 3),
    )
    .await;
    cat
}

fn opts(cat: &std::path::Path, limits: Limits, token: Option<&str>) -> ServeOptions {
    let mut o = ServeOptions::new(cat.display().to_string(), "127.0.0.1:0".parse().unwrap());
    o.limits = limits;
    o.auth_token = token.map(str::to_string);
    o
}

/// A raw HTTP/1.1 exchange (to see chunked trailers, which HTTP client libraries hide).
async fn raw_post(addr: std::net::SocketAddr, path: &str, body: &str, extra: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTE: trailers\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn the_row_cap_truncates_and_says_so() {
    let s = Scratch::new("rowcap");
    let cat = small_catalog(&s).await;
    let server = TestServer::start_with(opts(
        &cat,
        Limits {
            max_rows: Some(10),
            ..Default::default()
        },
        None,
    ))
    .await;
    let raw = raw_post(
        server.addr,
        "/v1/sql?format=ndjson",
        "SELECT source_id FROM sources",
        "",
    )
    .await;
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("x-astropipe-row-limit: 10"), "{raw}");
    assert!(lower.contains("x-astropipe-truncated: true"), "{raw}");
    assert_eq!(raw.matches("\"source_id\"").count(), 10, "{raw}");
    // Under the cap: not truncated.
    let raw = raw_post(
        server.addr,
        "/v1/sql?format=ndjson",
        "SELECT source_id FROM sources LIMIT 5",
        "",
    )
    .await;
    assert!(
        raw.to_ascii_lowercase()
            .contains("x-astropipe-truncated: false"),
        "{raw}"
    );
    assert_eq!(raw.matches("\"source_id\"").count(), 5);
    // The JSON default is still a valid array.
    let rows = server.rows("SELECT source_id FROM sources").await;
    assert_eq!(rows.len(), 10);
}

#[tokio::test]
async fn slow_and_memory_hungry_queries_are_stopped_with_a_reason() {
    let s = Scratch::new("limits");
    let cat = small_catalog(&s).await;
    let limits = Limits {
        timeout: Some(Duration::from_secs(1)),
        memory: Some(16 << 20),
        ..Limits::default()
    };
    let server = TestServer::start_with(opts(&cat, limits, None)).await;
    let (status, _, body) = server
        .sql(
            "SELECT count(*) FROM generate_series(1, 20000000000) a WHERE a.value % 7 = 3",
            None,
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 504, "{v}");
    assert_eq!(v["code"], "timeout");
    let (status, _, body) = server
        .sql(
            "SELECT array_agg(value) FROM generate_series(1, 20000000)",
            None,
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["code"], "resources_exhausted");
    // The service is fine afterwards.
    assert_eq!(
        server.rows("SELECT count(*) AS n FROM sources").await[0]["n"],
        200
    );
}

#[tokio::test]
async fn bearer_tokens_guard_every_query_endpoint_but_not_the_probes() {
    let s = Scratch::new("auth");
    let cat = small_catalog(&s).await;
    let token = "a-long-enough-secret-token";
    let server = TestServer::start_with(opts(&cat, Limits::default(), Some(token))).await;
    let c = &server.client;
    let post = |auth: Option<&str>| {
        let mut r = c.post(server.url("/v1/sql")).body("SELECT 1");
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post(Some("Bearer wrong-token-of-some-length"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(&format!("Bearer {token}")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(server.url("/v1/tables"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for open in ["/livez", "/readyz", "/metrics"] {
        assert_eq!(
            c.get(server.url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn sql_cannot_read_or_write_files() {
    let s = Scratch::new("files");
    let cat = small_catalog(&s).await;
    let server = TestServer::start(&cat).await;
    for (sql, status) in [
        ("SELECT * FROM '/etc/passwd'", 400),
        ("SELECT * FROM 'file:///etc/hostname'", 400),
        (
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            403,
        ),
        (
            "COPY (SELECT 1) TO '/tmp/astropipe-should-not-exist.csv'",
            403,
        ),
        ("SELECT * FROM read_parquet('/etc/passwd')", 400),
        ("SELECT * FROM read_csv('/etc/passwd')", 400),
    ] {
        let (got, _, body) = server.sql(sql, None).await;
        assert_eq!(got, status, "{sql}: {}", String::from_utf8_lossy(&body));
    }
    assert!(!std::path::Path::new("/tmp/astropipe-should-not-exist.csv").exists());
}
