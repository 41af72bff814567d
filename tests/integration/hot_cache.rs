//! The caches of cones: the hot-data cache (`--hot-cache-mb`) — cones answered from memory
//! give exactly the rows storage gives; files are loaded on their second miss and hit after; a
//! new catalog version drops the files it no longer lists; the cache stays within its bound —
//! and the plan cache (a repeated cone shape is planned once; a new version empties it).

use super::helpers::{Scratch, TestServer, ingest};
use astropipe::compact::{self, CompactOptions};
use astropipe::query::session;
use astropipe::server::ServeOptions;
use astropipe::synthetic::FrameSpec;
use std::time::Duration;

async fn server(cat: &std::path::Path, hot: u64) -> TestServer {
    let mut o = ServeOptions::new(cat.display().to_string(), "127.0.0.1:0".parse().unwrap());
    o.refresh = Duration::from_secs(3600);
    o.hot_cache = hot;
    TestServer::start_with(o).await
}

fn ids(rows: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r["source_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// One synthetic field per centre (`n_stars` stars, seeds from `seed`), each ingested on its
/// own into `s.path("cat")`: a catalog of several files.
async fn ingest_fields(s: &Scratch, centres: &[(f64, f64)], n_stars: usize, seed: u64) {
    for (i, &(ra0, dec0)) in centres.iter().enumerate() {
        let frame = FrameSpec {
            width: 512,
            height: 512,
            n_stars,
            ra0,
            dec0,
            seed: seed + i as u64,
            ..FrameSpec::default()
        }
        .generate();
        let dir = s.path(&format!("in{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.fits"), frame.to_fits()).unwrap();
        ingest(&[&dir], &s.path("cat")).await;
    }
}

async fn hits(srv: &TestServer) -> f64 {
    srv.metric("astropipe_hot_cache_files_total{outcome=\"hit\"}")
        .await
}

#[tokio::test]
async fn cones_from_memory_equal_cones_from_storage_and_follow_new_versions() {
    let s = Scratch::new("hot");
    let cat = s.path("cat");
    // Three fields, three ingests: several files with sources.
    ingest_fields(&s, &[(150.0, 2.0), (150.3, 2.1), (210.0, -30.0)], 120, 7).await;
    let cache = 8u64 << 20;
    let hot = server(&cat, cache).await;
    let cold = server(&cat, 0).await;
    let centres = cold
        .rows("SELECT ra, dec FROM sources ORDER BY source_id LIMIT 12")
        .await;
    assert_eq!(centres.len(), 12);
    let cone = |r: &serde_json::Value, radius: f64| {
        format!(
            "SELECT source_id, ra, dec, mag_auto FROM sources \
             WHERE cone_contains(ra, dec, {}, {}, {radius})",
            r["ra"], r["dec"]
        )
    };
    let before = hits(&hot).await;
    let check = |label: &'static str| {
        let (hot, cold, centres) = (&hot, &cold, &centres);
        async move {
            let mut found = 0;
            for c in centres {
                for radius in [0.001, 0.02, 0.2] {
                    let sql = cone(c, radius);
                    let want = ids(&cold.rows(&sql).await);
                    found += want.len();
                    // Three times: miss, load on the second miss, then from memory.
                    for _ in 0..3 {
                        assert_eq!(ids(&hot.rows(&sql).await), want, "{label}: {sql}");
                    }
                }
            }
            assert!(found > 36, "{label}: the cones hold rows ({found})");
        }
    };
    check("increments").await;
    // The cones are one statement shape: planned once, then reused with new numbers.
    let plans = session::plan_cache(&hot.state.ctx);
    assert!(plans.hits() >= 100 && !plans.is_empty(), "{plans:?}");
    let h = session::hot_data(&hot.state.ctx);
    assert!(h.used() > 0 && h.used() <= cache, "{} bytes", h.used());
    assert!(hits(&hot).await > before, "repeated cones hit the cache");
    // The cached rows are those of the cone's HEALPix cells, re-checked by the filter:
    // a count agrees too.
    let c = &centres[0];
    let count = format!(
        "SELECT count(*) AS n FROM sources WHERE cone_contains(ra, dec, {}, {}, 0.2)",
        c["ra"], c["dec"]
    );
    assert_eq!(hot.rows(&count).await, cold.rows(&count).await);

    // A new version made of other files (compaction rewrites them all as HATS partitions):
    // the cache forgets the old ones, and answers stay right.
    let mut o = CompactOptions::new(cat.display().to_string());
    o.max_rows = 150;
    o.grace = Duration::ZERO;
    o.memory_limit = 64 << 20;
    compact::run(&o).await.unwrap();
    hot.state.refresh().await.unwrap();
    cold.state.refresh().await.unwrap();
    assert_eq!(h.used(), 0, "no entry of an unlisted file is kept");
    assert!(plans.is_empty(), "no plan of a replaced table is kept");
    check("compacted").await;
    assert!(h.used() > 0 && h.used() <= cache);
}

#[tokio::test]
async fn a_small_cache_stays_within_its_bound_and_right_while_it_evicts() {
    let s = Scratch::new("hot-small");
    let cat = s.path("cat");
    // Eight files of about 100 sources: each file's ra, dec and index (about 4 KB) is
    // admitted by a 16 KiB cache (a quarter of it at most), all of them together are not.
    let fields: Vec<(f64, f64)> = (0..8).map(|i| (30.0 + i as f64, 10.0)).collect();
    ingest_fields(&s, &fields, 100, 40).await;
    let cache = 16u64 << 10;
    let srv = server(&cat, cache).await;
    let h = session::hot_data(&srv.state.ctx);
    let cone = |(ra, dec): &(f64, f64)| {
        format!("SELECT ra, dec FROM sources WHERE cone_contains(ra, dec, {ra}, {dec}, 0.05)")
    };
    // First pass: every file missed once, answers from storage.
    let mut want = Vec::new();
    for f in &fields {
        let rows = srv.rows(&cone(f)).await;
        assert!(!rows.is_empty(), "the cone at {f:?} holds sources");
        want.push(rows.len());
    }
    let mut held = 0;
    for pass in 0..4 {
        for (f, n) in fields.iter().zip(&want) {
            assert_eq!(
                srv.rows(&cone(f)).await.len(),
                *n,
                "pass {pass}, cone at {f:?}"
            );
            assert!(h.used() <= cache, "{} > {cache}", h.used());
            held = held.max(h.used());
        }
    }
    assert!(held > 0, "files were loaded under the small bound");
}
