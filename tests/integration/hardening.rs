//! The catalog service and the image processor attacked as an anonymous client would: every
//! request that once aborted the process, held memory without limit, locked other clients
//! out or read what it should not is sent to the real binaries (limits and a token set, a
//! low file-descriptor limit), and each must get a clear 4xx (or a failed job with a reason)
//! while the process stays up, answers `/livez`, serves other clients, and keeps its peak
//! memory (VmHWM) under a stated bound.

use super::helpers::{Proc, Scratch, sample_field_catalog};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const TOKEN: &str = "hardening-token-0123456789";

/// All queries together may use this much (`--memory-mb`).
const MEMORY_MB: u64 = 256;
/// What the process may hold beyond the query budget: its own heap, the catalog's metadata,
/// the runtime's threads and buffers, result encoding. Measured at about 150 MiB.
const MARGIN_MB: u64 = 320;

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

struct Service {
    proc: Proc,
    http: SocketAddr,
    flight: SocketAddr,
    c: reqwest::Client,
    _tmp: Scratch,
}

impl Service {
    fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.http)
    }

    async fn sql(&self, sql: &str, client: &str) -> (u16, String) {
        let r = self
            .c
            .post(self.url("/v1/sql"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("X-Forwarded-For", client)
            .body(sql.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            String::from_utf8_lossy(&r.bytes().await.unwrap()).into(),
        )
    }

    async fn tap(&self, path: &str, pairs: &[(&str, &str)], client: &str) -> reqwest::Response {
        self.c
            .post(self.url(path))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("X-Forwarded-For", client)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap()
    }

    /// The process runs and answers `/livez` promptly.
    async fn assert_up(&mut self, after: &str) {
        assert!(self.proc.alive(), "the service died after: {after}");
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            self.c.get(self.url("/livez")).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("/livez did not answer after: {after}"))
        .unwrap();
        assert_eq!(r.status(), 200, "{after}");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{after}: slow /livez"
        );
    }

    fn peak_mb(&self) -> u64 {
        self.proc.status_kib("VmHWM") / 1024
    }
}

async fn start_service(s: &Scratch) -> Service {
    sample_field_catalog(s).await;
    let tmp = Scratch::new("hardening-tmp");
    let cat = s.path("cat").display().to_string();
    let results = s.path("tap-results");
    std::fs::create_dir_all(&results).unwrap();
    let memory = MEMORY_MB.to_string();
    let results_dir = results.display().to_string();
    let tmpdir = tmp.root().display().to_string();
    let mut proc = Proc::spawn(
        &[
            "serve",
            "--catalog",
            &cat,
            "--addr",
            "127.0.0.1:0",
            "--flight-addr",
            "127.0.0.1:0",
            "--auth-token",
            TOKEN,
            "--query-timeout-seconds",
            "5",
            "--query-memory-mb",
            "128",
            "--memory-mb",
            &memory,
            "--row-limit",
            "10000",
            "--result-mb",
            "4",
            "--query-spill-mb",
            "16",
            "--spill-mb",
            "24",
            "--max-client-queries",
            "8",
            "--max-client-tap-jobs",
            "4",
            "--max-client-prepared",
            "16",
            "--header-timeout-seconds",
            "2",
            "--idle-timeout-seconds",
            "5",
            "--body-timeout-seconds",
            "3",
            "--trusted-proxy",
            "127.0.0.1",
            "--tap-jobs",
            &results_dir,
        ],
        &[("TMPDIR", &tmpdir)],
        Some(256),
    );
    let http = proc.addr_of("serving");
    let flight = proc.addr_of("serving Flight SQL");
    Service {
        proc,
        http,
        flight,
        // No pooled connections: the service may close idle ones to make room. Redirects
        // are looked at, not followed.
        c: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _tmp: tmp,
    }
}

/// Files (not directories) under `p`.
fn files_under(p: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += files_under(&e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_bytes(&e.path()),
                Ok(m) => n += m.len(),
                Err(_) => {}
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_queries_get_clear_errors_and_the_service_stays_up() {
    let s = Scratch::new("hardening-serve");
    let mut svc = start_service(&s).await;
    let me = "10.0.0.1";

    // Deep expressions: a clear 400 naming the limit, before anything is planned.
    let plus = format!("SELECT {}", vec!["1"; 2000].join("+"));
    let ors = format!(
        "SELECT count(*) FROM sources WHERE {}",
        (0..3000)
            .map(|i| format!("source_id = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    for (what, sql) in [("plus", &plus), ("or", &ors)] {
        let (st, body) = svc.sql(sql, me).await;
        assert_eq!(st, 400, "{what}: {body}");
        assert!(body.contains("--max-query-depth"), "{what}: {body}");
        svc.assert_up(what).await;
    }
    let unions = vec!["SELECT 1"; 1000].join(" UNION ALL ");
    assert_eq!(svc.sql(&unions, me).await.0, 400);
    let huge = format!("SELECT '{}'", "x".repeat(300_000));
    let (st, body) = svc.sql(&huge, me).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("--max-query-bytes"), "{body}");

    // The same through ADQL (sync and async).
    let parens = format!(
        "SELECT {}1{} FROM sources",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let logs = format!(
        "SELECT {}flux{} FROM sources",
        "LOG(".repeat(1000),
        ")".repeat(1000)
    );
    for adql in [&parens, &logs] {
        let r = svc
            .tap(
                "/tap/sync",
                &[("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", adql)],
                me,
            )
            .await;
        assert_eq!(r.status(), 400);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("QUERY_STATUS") && body.contains("deep"),
            "{body}"
        );
        let r = svc
            .tap("/tap/async", &[("LANG", "ADQL"), ("QUERY", adql)], me)
            .await;
        assert_eq!(r.status(), 400);
        svc.assert_up("deep ADQL").await;
    }

    // A value as large as memory: refused before it is built, within the time limit.
    let t0 = Instant::now();
    for accept in ["application/json", "text/csv"] {
        let r = svc
            .c
            .post(svc.url("/v1/sql"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Accept", accept)
            .body("SELECT length(repeat('x', 1000000000)) AS n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{accept}");
        let body = r.text().await.unwrap();
        assert!(body.contains("--max-value-mb"), "{body}");
    }
    // Many values each within the value limit but together beyond the query's memory.
    let many = format!(
        "SELECT {} FROM generate_series(1, 100) t(x)",
        (0..40)
            .map(|i| format!("length(repeat('x', 10000000 + x + {i})) AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (st, body) = svc.sql(&many, me).await;
    assert_eq!(st, 422, "{body}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    svc.assert_up("repeat").await;

    // Heavy queries at once: each stops at its own memory limit, all of them within the
    // process-wide pool.
    let heavy = "SELECT cardinality(array_agg(x)) AS n FROM generate_series(1, 60000000) t(x)";
    let runs = (0..6).map(|i| {
        let client = format!("10.0.1.{i}");
        let svc = &svc;
        async move { svc.sql(heavy, &client).await }
    });
    for (st, body) in futures::future::join_all(runs).await {
        eprintln!("heavy: {st} {body}");
        assert!(st == 422 || st == 503 || st == 504, "{st}: {body}");
    }
    svc.assert_up("heavy queries").await;

    // A sort larger than memory spills, up to its spill limit, and stops there.
    let tmp = svc._tmp.root().to_path_buf();
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let w = watching.clone();
    let watcher = std::thread::spawn(move || {
        let mut most = 0;
        while w.load(std::sync::atomic::Ordering::Acquire) {
            most = most.max(dir_bytes(&tmp));
            std::thread::sleep(Duration::from_millis(10));
        }
        most
    });
    let (st, body) = svc
        .sql(
            "SELECT x, repeat('a', 200) AS pad FROM generate_series(1, 3000000) t(x) ORDER BY random()",
            me,
        )
        .await;
    watching.store(false, std::sync::atomic::Ordering::Release);
    let spilled = watcher.join().unwrap();
    eprintln!("spilling sort: {st} {body}; spill files reached {spilled} bytes");
    assert!(st == 422 || st == 503 || st == 504, "{st}: {body}");
    assert!(
        spilled <= 24 << 20,
        "spill files reached {spilled} bytes, the total is 24 MiB"
    );
    svc.assert_up("spilling sort").await;

    // A result beyond the byte cap is cut and says so.
    let big = "SELECT x, repeat('y', 1000) AS pad FROM generate_series(1, 9000) t(x)";
    let r = svc
        .tap(
            "/tap/sync",
            &[("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", big)],
            me,
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(body.len() < 6 << 20, "{}", body.len());
    assert!(String::from_utf8_lossy(&body[body.len().saturating_sub(2000)..]).contains("OVERFLOW"));

    // Async jobs: results in the store (here a directory), not in memory.
    let rss_before = svc.proc.status_kib("VmRSS");
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let r = svc
            .tap(
                "/tap/async",
                &[("LANG", "ADQL"), ("QUERY", big), ("PHASE", "RUN")],
                me,
            )
            .await;
        assert_eq!(r.status(), 303);
        jobs.push(r.headers()["location"].to_str().unwrap().to_string());
    }
    for job in &jobs {
        let t0 = Instant::now();
        loop {
            let x = svc
                .c
                .get(format!("{job}?WAIT=5"))
                .header("Authorization", format!("Bearer {TOKEN}"))
                .header("X-Forwarded-For", me)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if x.contains("COMPLETED") {
                break;
            }
            assert!(!x.contains("ERROR"), "{x}");
            assert!(t0.elapsed() < Duration::from_secs(60), "{x}");
        }
    }
    let stored = dir_bytes(&s.path("tap-results"));
    assert!(
        stored > 4 * (3 << 20),
        "results are on disk: {stored} bytes"
    );
    let grew = svc.proc.status_kib("VmRSS").saturating_sub(rss_before) / 1024;
    assert!(grew < 64, "RSS grew by {grew} MiB holding async results");
    let result = svc
        .c
        .get(format!("{}/results/result", jobs[0]))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(result.len() > 3 << 20);
    assert!(String::from_utf8_lossy(&result[result.len() - 2000..]).contains("OVERFLOW"));

    // Jobs left PENDING: the client that left them is refused at its own cap (its finished
    // jobs make room, its unfinished ones do not); the other clients are served.
    let mut refused = false;
    for _ in 0..8 {
        let r = svc
            .tap(
                "/tap/async",
                &[("LANG", "ADQL"), ("QUERY", "SELECT 1")],
                "10.9.9.9",
            )
            .await;
        if r.status() == 429 {
            refused = true;
            break;
        }
        assert_eq!(r.status(), 303);
    }
    assert!(
        refused,
        "a client holding only pending jobs is refused at its cap"
    );
    for other in [me, "10.8.8.8"] {
        let r = svc
            .tap(
                "/tap/async",
                &[("LANG", "ADQL"), ("QUERY", "SELECT 1")],
                other,
            )
            .await;
        assert_eq!(r.status(), 303, "{other} is still served");
    }

    // Forwarded headers from a trusted proxy: validated before they are echoed.
    for (host, want) in [
        ("tap.example.org", Some("http://tap.example.org/tap/async/")),
        ("evil\"><x y=\"", None),
    ] {
        let r = svc
            .c
            .post(svc.url("/tap/async"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("X-Forwarded-For", "10.7.7.7")
            .header("X-Forwarded-Host", host)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("LANG", "ADQL"), ("QUERY", "SELECT 1")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        match want {
            Some(w) => assert!(loc.starts_with(w), "{loc}"),
            None => assert!(
                !loc.contains('"') && !loc.contains('<') && !loc.contains("evil"),
                "{loc}"
            ),
        }
    }
    let caps = svc
        .c
        .get(svc.url("/tap/capabilities"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Host", "a\"b")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!caps.contains("a\"b"), "{}", &caps[..300.min(caps.len())]);

    // /readyz tells nothing internal without the token.
    let anon = svc.c.get(svc.url("/readyz")).send().await.unwrap();
    assert_eq!(anon.status(), 200);
    let anon = anon.text().await.unwrap();
    assert!(
        !anon.contains("catalog") && !anon.contains("version"),
        "{anon}"
    );
    let known = svc
        .c
        .get(svc.url("/readyz"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(known.contains("version"), "{known}");

    let peak = svc.peak_mb();
    assert!(
        peak < MEMORY_MB + MARGIN_MB,
        "peak RSS {peak} MiB, bound {} MiB",
        MEMORY_MB + MARGIN_MB
    );
    eprintln!(
        "serve peak RSS under attack: {peak} MiB (bound {} MiB)",
        MEMORY_MB + MARGIN_MB
    );
    svc.assert_up("the whole run").await;
}

/// Opens a connection and sends part of a request header.
fn half_open(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .ok()?;
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_connections_cannot_starve_probes_or_other_clients() {
    let s = Scratch::new("hardening-conns");
    let mut svc = start_service(&s).await;
    // The service runs with 256 file descriptors: far fewer than the connections sent.
    let mut held = Vec::new();
    for _ in 0..2000 {
        if let Some(c) = half_open(svc.http) {
            held.push(c);
        }
    }
    // Probes and queries still get through while the flood holds its sockets.
    for _ in 0..5 {
        svc.assert_up("2000 half-sent headers").await;
        let (st, _) = svc.sql("SELECT 1", "10.0.0.2").await;
        assert_eq!(st, 200);
    }
    // A body that stalls: the connection is closed after the body timeout.
    let mut slow = TcpStream::connect(svc.http).unwrap();
    slow.write_all(
        format!(
            "POST /v1/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\nSELECT"
        )
        .as_bytes(),
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        t0.elapsed() < Duration::from_secs(12),
        "a stalled body held the connection for {:?}",
        t0.elapsed()
    );
    // The header timeout closes the half-open ones.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = svc
        .c
        .get(svc.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("astropipe_http_connections "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(open < 20.0, "{open} connections still open");
    drop(held);
    svc.assert_up("the flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flight_sql_refuses_deep_plans_and_bounds_prepared_statements() {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    let s = Scratch::new("hardening-flight");
    let mut svc = start_service(&s).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", svc.flight))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_header("authorization", format!("Bearer {TOKEN}"));
    let deep = format!("SELECT {}", vec!["1"; 2000].join("+"));
    let e = client.execute(deep, None).await.unwrap_err();
    assert!(e.to_string().contains("max-query-depth"), "{e}");
    svc.assert_up("deep Flight SQL statement").await;
    let Err(e) = client
        .prepare(
            format!(
                "SELECT count(*) FROM sources WHERE {}",
                vec!["flux > 0"; 3000].join(" OR ")
            ),
            None,
        )
        .await
    else {
        panic!("a deep prepared statement is refused");
    };
    assert!(e.to_string().contains("max-query-depth"), "{e}");
    // Prepared statements never closed: the client's cap, then a clear refusal.
    let rss0 = svc.proc.status_kib("VmRSS");
    let mut open = Vec::new();
    let mut refused = None;
    for _ in 0..3000 {
        match client
            .prepare("SELECT count(*) FROM sources".into(), None)
            .await
        {
            Ok(p) => open.push(p),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    assert_eq!(open.len(), 16);
    assert!(
        refused.as_deref().unwrap_or("").contains("prepared"),
        "{refused:?}"
    );
    let grew = svc.proc.status_kib("VmRSS").saturating_sub(rss0) / 1024;
    assert!(grew < 64, "prepared statements grew RSS by {grew} MiB");
    // A query through Flight still works (the statements are closed by the client later).
    let info = client
        .execute("SELECT count(*) AS n FROM sources".into(), None)
        .await
        .unwrap();
    assert_eq!(info.endpoint.len(), 1);
    for p in open {
        p.close().await.unwrap();
    }
    client
        .prepare("SELECT 1".into(), None)
        .await
        .expect("room again once closed");
    svc.assert_up("Flight").await;
}

// ------------------------------------------------------------------ the image processor

/// A primary header of a tile-compressed (RICE_1) image claiming `side`² pixels, with a few
/// KiB of table data.
fn rice_claiming(side: i64) -> Vec<u8> {
    use astropipe::fits::HeaderValue as V;
    use astropipe::fits::writer::card;
    let mut out = Vec::new();
    let mut block = |cards: &[(&str, V)]| {
        let mut h = Vec::new();
        for (k, v) in cards {
            h.extend_from_slice(&card(k, v, None));
        }
        let mut end = [b' '; 80];
        end[..3].copy_from_slice(b"END");
        h.extend_from_slice(&end);
        h.resize(h.len().div_ceil(2880) * 2880, b' ');
        out.extend_from_slice(&h);
    };
    block(&[
        ("SIMPLE", V::Bool(true)),
        ("BITPIX", V::Int(8)),
        ("NAXIS", V::Int(0)),
        ("EXTEND", V::Bool(true)),
    ]);
    let rows = side;
    let heap = 4096i64;
    block(&[
        ("XTENSION", V::Str("BINTABLE".into())),
        ("BITPIX", V::Int(8)),
        ("NAXIS", V::Int(2)),
        ("NAXIS1", V::Int(8)),
        ("NAXIS2", V::Int(rows)),
        ("PCOUNT", V::Int(heap)),
        ("GCOUNT", V::Int(1)),
        ("TFIELDS", V::Int(1)),
        ("TTYPE1", V::Str("COMPRESSED_DATA".into())),
        ("TFORM1", V::Str("1PB(4096)".into())),
        ("ZIMAGE", V::Bool(true)),
        ("ZBITPIX", V::Int(16)),
        ("ZNAXIS", V::Int(2)),
        ("ZNAXIS1", V::Int(side)),
        ("ZNAXIS2", V::Int(side)),
        ("ZTILE1", V::Int(side)),
        ("ZTILE2", V::Int(1)),
        ("ZCMPTYPE", V::Str("RICE_1".into())),
    ]);
    // Every tile's descriptor points at the same bytes of the heap.
    let mut data = Vec::new();
    for _ in 0..rows {
        data.extend_from_slice(&4096i32.to_be_bytes());
        data.extend_from_slice(&0i32.to_be_bytes());
    }
    data.extend(std::iter::repeat_n(0u8, heap as usize));
    data.resize(data.len().div_ceil(2880) * 2880, 0);
    out.extend_from_slice(&data);
    out
}

/// A gzip stream of a small FITS image followed by `zeros` bytes of zeros (a bomb).
fn gzip_bomb(side: i64, zeros: usize) -> Vec<u8> {
    use astropipe::fits::HeaderValue as V;
    use astropipe::fits::writer::card;
    use flate2::write::GzEncoder;
    let mut h = Vec::new();
    for (k, v) in [
        ("SIMPLE", V::Bool(true)),
        ("BITPIX", V::Int(16)),
        ("NAXIS", V::Int(2)),
        ("NAXIS1", V::Int(side)),
        ("NAXIS2", V::Int(side)),
    ] {
        h.extend_from_slice(&card(k, &v, None));
    }
    let mut end = [b' '; 80];
    end[..3].copy_from_slice(b"END");
    h.extend_from_slice(&end);
    h.resize(2880, b' ');
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&h).unwrap();
    let zero = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(zero.len());
        e.write_all(&zero[..n]).unwrap();
        left -= n;
    }
    e.finish().unwrap()
}

struct Jobs {
    base: String,
    c: reqwest::Client,
}

impl Jobs {
    async fn post(&self, ct: &str, body: Vec<u8>, client: &str) -> (u16, serde_json::Value) {
        let r = self
            .c
            .post(format!("{}/v1/jobs", self.base))
            .header("content-type", ct)
            .header("X-Forwarded-For", client)
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let b = r.bytes().await.unwrap();
        (
            st,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }
    async fn inputs(&self, inputs: &[&str], client: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "inputs": inputs }).to_string();
        self.post("application/json", body.into_bytes(), client)
            .await
    }
    async fn wait_final(&self, id: &str) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let j: serde_json::Value = serde_json::from_slice(
                &self
                    .c
                    .get(format!("{}/v1/jobs/{id}", self.base))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap(),
            )
            .unwrap();
            if matches!(
                j["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return j;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "{j}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn start_worker(cat: &str, raw: &str, extra: &[&str]) -> (Proc, Jobs) {
    let mut args = vec![
        "worker",
        "--catalog",
        cat,
        "--addr",
        "127.0.0.1:0",
        "--allow-input",
        raw,
        "--lease-seconds",
        "3",
        "--poll-ms",
        "200",
        "--max-upload-mb",
        "8",
        "--upload-timeout-seconds",
        "3",
        "--header-timeout-seconds",
        "2",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, &[], Some(256));
    let addr = p.addr_of("worker serving");
    (
        p,
        Jobs {
            base: format!("http://{addr}"),
            c: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_uploads_and_inputs_fail_cleanly_and_the_worker_goes_on() {
    let s = Scratch::new("hardening-worker");
    let raw = s.path("raw");
    std::fs::create_dir_all(raw.join("night1")).unwrap();
    std::fs::create_dir_all(s.path("private")).unwrap();
    std::fs::write(s.path("private/secret.fits"), b"SIMPLE  = T").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(s.path("private/secret.fits"), raw.join("night1/link.fits"))
        .unwrap();
    let cat = s.path("cat").display().to_string();
    let (mut w, jobs) = start_worker(&cat, &raw.display().to_string(), &[]);
    let me = "10.1.0.1";

    // Inputs outside the allowed roots: 400 at submission, one message whatever exists.
    let private = s.path("private").display().to_string();
    let mut messages = Vec::new();
    for bad in [
        format!("{private}/*"),
        format!("{private}/secret.fits"),
        format!("{private}/missing.fits"),
        "/etc/passwd".to_string(),
        format!("file://{private}/secret.fits"),
        format!("{}/../private/secret.fits", raw.display()),
        "s3://someone-elses-bucket/".to_string(),
        "http://127.0.0.1/a.fits".to_string(),
    ] {
        let (st, body) = jobs.inputs(&[&bad], me).await;
        assert_eq!(st, 400, "{bad}: {body}");
        messages.push(body["message"].as_str().unwrap().replace(&bad, "X"));
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // A link inside a root that points outside is refused once resolved.
    let (st, body) = jobs
        .inputs(&[&format!("{}/night1", raw.display())], me)
        .await;
    assert_eq!(st, 202, "{body}");
    let done = jobs.wait_final(body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("allowed root"),
        "{done}"
    );

    // Bodies that claim more than they hold: refused per file, memory near the file size.
    let rss0 = w.status_kib("VmRSS");
    for (what, body) in [
        ("RICE 30000²", rice_claiming(30_000)),
        ("RICE 20000²", rice_claiming(20_000)),
        ("gzip claiming 30000²", gzip_bomb(30_000, 64 << 20)),
    ] {
        let (st, job) = jobs.post("application/fits", body, me).await;
        assert_eq!(st, 202, "{what}: {job}");
        let done = jobs.wait_final(job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "failed", "{what}: {done}");
        assert!(
            done["error"].as_str().unwrap().contains("refused"),
            "{what}: {done}"
        );
        assert!(w.alive(), "{what}");
    }
    // A bomb whose header claims a small image and then inflates to 1 GiB of zeros: only
    // what the header claims is inflated.
    let (st, job) = jobs
        .post("application/fits", gzip_bomb(64, 1 << 30), me)
        .await;
    assert_eq!(st, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = jobs.wait_final(&id).await;
    assert!(
        done["state"] == "succeeded" || done["state"] == "failed",
        "{done}"
    );
    let grew = w.status_kib("VmHWM").saturating_sub(rss0) / 1024;
    assert!(grew < 200, "refusing the bombs took {grew} MiB");
    // Processed uploads are not kept.
    assert!(!s.path(&format!("cat/_jobs/{id}/upload.fits")).exists());

    // Uploads: too large at once (413), a stalled body is dropped, nothing is stored.
    let mut raw_conn = TcpStream::connect(jobs.base.trim_start_matches("http://")).unwrap();
    raw_conn
        .write_all(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/fits\r\nContent-Length: 2147483648\r\n\r\n")
        .unwrap();
    raw_conn
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut resp = [0u8; 64];
    let n = raw_conn.read(&mut resp).unwrap();
    assert!(String::from_utf8_lossy(&resp[..n]).contains("413"));
    let before = files_under(&s.path("cat/_jobs"));
    let mut stalled = TcpStream::connect(jobs.base.trim_start_matches("http://")).unwrap();
    stalled
        .write_all(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/fits\r\nContent-Length: 4000000\r\n\r\nSIMPLE  =                    T")
        .unwrap();
    stalled.write_all(&vec![b' '; 1 << 20]).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = stalled.read_to_end(&mut buf);
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
    assert_eq!(
        files_under(&s.path("cat/_jobs")),
        before,
        "a broken upload left something behind"
    );
    // An upload at the size limit streams through without holding it in memory.
    let rss1 = w.status_kib("VmRSS");
    let mut big = b"SIMPLE  =                    T".to_vec();
    big.resize(8 << 20, b' ');
    let (st, _) = jobs.post("application/fits", big, me).await;
    assert_eq!(st, 202);
    let grew = w.status_kib("VmRSS").saturating_sub(rss1) / 1024;
    assert!(grew < 24, "an 8 MiB upload grew RSS by {grew} MiB");

    // Submissions per client and minute are capped; other clients go on.
    let mut limited = false;
    for _ in 0..70 {
        let (st, _) = jobs
            .inputs(
                &[&format!("{}/night1/none.fits", raw.display())],
                "10.1.0.2",
            )
            .await;
        if st == 429 {
            limited = true;
            break;
        }
        assert_eq!(st, 202);
    }
    assert!(limited, "60 submissions a minute per client");
    let (st, _) = jobs
        .inputs(
            &[&format!("{}/night1/none.fits", raw.display())],
            "10.1.0.3",
        )
        .await;
    assert_eq!(st, 202);
    assert!(w.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_kills_its_worker_ends_failed_after_the_attempts() {
    let s = Scratch::new("hardening-poison");
    let raw = s.path("raw");
    std::fs::create_dir_all(&raw).unwrap();
    // Frames that take a while to process, so the worker can be killed while it runs.
    for seed in 0..6 {
        let f = astropipe::synthetic::FrameSpec {
            width: 2048,
            height: 2048,
            n_stars: 2000,
            seed,
            ..astropipe::synthetic::FrameSpec::default()
        }
        .generate();
        std::fs::write(raw.join(format!("slow{seed}.fits")), f.to_fits()).unwrap();
    }
    let cat = s.path("cat").display().to_string();
    let rawp = raw.display().to_string();
    let extra = ["--max-attempts", "2"];
    let (mut w, jobs) = start_worker(&cat, &rawp, &extra);
    let (st, job) = jobs.inputs(&[&rawp], "10.2.0.1").await;
    assert_eq!(st, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // Two runs, each ended by kill -9 mid-job (as an out-of-memory kill would end them).
    running(&jobs, &id, 1).await;
    w.kill();
    let (mut w, jobs) = start_worker(&cat, &rawp, &extra);
    running(&jobs, &id, 2).await;
    w.kill();
    // The next worker does not run it a third time: it ends failed, with the reason.
    let (mut w, jobs) = start_worker(&cat, &rawp, &extra);
    let done = jobs.wait_final(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("abandoned after 2 attempts"),
        "{done}"
    );
    assert_eq!(done["attempts"], 2, "{done}");
    assert!(w.alive());
}

/// Waits until job `id` runs its `attempt`-th time.
async fn running(jobs: &Jobs, id: &str, attempt: u64) {
    let t0 = Instant::now();
    loop {
        let j: serde_json::Value = serde_json::from_slice(
            &jobs
                .c
                .get(format!("{}/v1/jobs/{id}", jobs.base))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        if j["state"] == "running" && j["attempts"] == attempt {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
