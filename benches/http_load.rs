//! Sustained cone-search load on a running `astropipe serve`, for
//! `benches/query_vs_duckdb.py --load-seconds N` (or by hand):
//!
//! `cargo bench --bench http_load -- --url http://127.0.0.1:PORT [--seconds 60]
//!  [--connections 32] [--table cat] [--radius-deg 0.016667] [--server-pid PID]
//!  [--centre RA,DEC] [--count] [--scs | --flight HOST:PORT]`
//!
//! Each connection loops: a 1′ cone at a random centre (uniform on the sphere, seeded), or
//! always at `--centre`, as `POST /v1/sql` (`SELECT id, ra, dec, mag`, or `count(*)` with
//! `--count`) or, with `--scs`, as `GET /scs?...&VERB=1`, or, with `--flight`, as a Flight
//! SQL prepared statement (prepared once per connection; each query binds its centre and
//! radius with DoPut, then GetFlightInfo and DoGet — the three calls every Flight SQL
//! driver makes); the response is read in full. Prints JSON: queries/s, p50/p90/p99/max
//! latency, errors, and — with `--server-pid` — the server's resident memory sampled every
//! second (first, last, max), to show it stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn rss_mb(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A small deterministic generator (SplitMix64), so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One connection's loop of Flight SQL prepared cones: (latencies, errors, bytes of Arrow data).
async fn flight_loop(
    addr: String,
    sql: String,
    c: usize,
    centre: Option<(f64, f64)>,
    radius: f64,
    stop: Arc<AtomicBool>,
) -> (Vec<f64>, u64, u64) {
    use arrow::array::{ArrayRef, Float64Array, RecordBatch};
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use futures::TryStreamExt;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("flight address")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("flight connect");
    let mut client = FlightSqlServiceClient::new(channel);
    let mut prepared = client.prepare(sql, None).await.expect("prepare");
    let mut rng = Rng(0xA57E_0000 + c as u64);
    let (mut lat, mut errors, mut bytes) = (Vec::new(), 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let (ra, dec) = centre.unwrap_or_else(|| {
            (
                360.0 * rng.next(),
                (2.0 * rng.next() - 1.0).asin().to_degrees(),
            )
        });
        let column = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let params = RecordBatch::try_from_iter([
            ("$1", column(ra)),
            ("$2", column(dec)),
            ("$3", column(radius)),
        ])
        .expect("parameters");
        let t0 = Instant::now();
        prepared.set_parameters(params).expect("bind");
        let once = async {
            let info = prepared.execute().await?;
            let ticket = info.endpoint[0].ticket.clone().expect("ticket");
            let batches: Vec<RecordBatch> = client.do_get(ticket).await?.try_collect().await?;
            Ok::<_, arrow_flight::error::FlightError>(
                batches
                    .iter()
                    .map(|b| b.get_array_memory_size() as u64)
                    .sum::<u64>(),
            )
        };
        match once.await {
            Ok(b) => {
                bytes += b;
                lat.push(t0.elapsed().as_secs_f64());
            }
            Err(_) => errors += 1,
        }
    }
    (lat, errors, bytes)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(url) = arg("--url") else {
        eprintln!(
            "usage: cargo bench --bench http_load -- --url http://HOST:PORT [--seconds N] [--connections C] [--table T] [--server-pid PID]"
        );
        std::process::exit(2);
    };
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(60);
    let conns: usize = arg("--connections")
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let table = arg("--table").unwrap_or_else(|| "cat".into());
    let radius: f64 = arg("--radius-deg")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0 / 60.0);
    let pid: Option<u32> = arg("--server-pid").and_then(|s| s.parse().ok());
    let centre: Option<(f64, f64)> = arg("--centre").and_then(|s| {
        let (a, b) = s.split_once(',')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    let count = std::env::args().any(|a| a == "--count");
    let scs = std::env::args().any(|a| a == "--scs");
    let flight = arg("--flight");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(conns)
            .build()
            .expect("client");
        let stop = Arc::new(AtomicBool::new(false));
        let endpoint = url.clone();
        let mut tasks = Vec::new();
        for c in 0..conns {
            let (client, stop, endpoint, table) =
                (client.clone(), stop.clone(), endpoint.clone(), table.clone());
            if let Some(addr) = flight.clone() {
                let what = if count { "count(*)" } else { "id, ra, dec, mag" };
                let sql = format!(
                    "SELECT {what} FROM {table} WHERE cone_contains(ra, dec, $1, $2, $3)"
                );
                tasks.push(tokio::spawn(flight_loop(addr, sql, c, centre, radius, stop)));
                continue;
            }
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(0xA57E_0000 + c as u64);
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut rows_bytes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (ra, dec) = centre.unwrap_or_else(|| {
                        (360.0 * rng.next(), (2.0 * rng.next() - 1.0).asin().to_degrees())
                    });
                    let what = if count { "count(*)" } else { "id, ra, dec, mag" };
                    let req = if scs {
                        client.get(format!(
                            "{endpoint}/scs?RA={ra}&DEC={dec}&SR={radius}&TABLE={table}&VERB=1"
                        ))
                    } else {
                        client.post(format!("{endpoint}/v1/sql")).body(format!(
                            "SELECT {what} FROM {table} WHERE cone_contains(ra, dec, {ra}, {dec}, {radius})"
                        ))
                    };
                    let t0 = Instant::now();
                    match req.send().await {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(b) => {
                                rows_bytes += b.len() as u64;
                                lat.push(t0.elapsed().as_secs_f64());
                            }
                            Err(_) => errors += 1,
                        },
                        _ => errors += 1,
                    }
                }
                (lat, errors, rows_bytes)
            }));
        }
        let mut rss = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(seconds) {
            if let Some(p) = pid.and_then(rss_mb) {
                rss.push(p);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let mut lat = Vec::new();
        let mut errors = 0;
        let mut bytes = 0;
        for t in tasks {
            let (l, e, b) = t.await.expect("task");
            lat.extend(l);
            errors += e;
            bytes += b;
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
                * 1e3
        };
        let rss_first = rss.first().copied().unwrap_or(f64::NAN);
        let rss_last = rss.last().copied().unwrap_or(f64::NAN);
        let rss_max = rss.iter().copied().fold(f64::NAN, f64::max);
        format!(
            "{{\"seconds\": {elapsed:.1}, \"connections\": {conns}, \"queries\": {}, \"qps\": {:.1}, \"errors\": {errors}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \"response_bytes\": {bytes}, \"rss_mb_first\": {rss_first:.1}, \"rss_mb_last\": {rss_last:.1}, \"rss_mb_max\": {rss_max:.1}, \"rss_samples\": {}}}",
            lat.len(),
            lat.len() as f64 / elapsed,
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0),
            rss.len()
        )
    });
    println!("{out}");
}
