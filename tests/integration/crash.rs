//! Crash safety: the real binary killed with SIGKILL at random moments during `ingest` (20
//! times) and `compact`; after every kill the committed catalog is whole (every live file
//! complete, no duplicate, nothing half-visible), and once the work is run to completion the
//! catalog equals a clean run's, row for row.

use super::helpers::{Proc, Scratch, astropipe_ok};
use astropipe::catalog::commit;
use astropipe::storage::Location;
use astropipe::synthetic::{FrameSpec, Rng};
use std::path::Path;
use std::time::{Duration, Instant};

const FRAMES: usize = 12;

fn write_frames(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..FRAMES {
        let f = FrameSpec {
            width: 256,
            height: 256,
            ra0: 30.0 + 0.05 * i as f64,
            dec0: -10.0 + 0.03 * i as f64,
            n_stars: 40,
            seed: 1000 + i as u64,
            ..FrameSpec::default()
        }
        .generate();
        std::fs::write(dir.join(format!("frame_{i:02}.fits")), f.to_fits()).unwrap();
    }
}

/// Every table dumped in a canonical order (exposures without the processing time).
async fn dump(cat: &Path) -> String {
    let loc = Location::open(&cat.display().to_string()).unwrap();
    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    let mut out = String::new();
    for q in [
        "SELECT * FROM sources ORDER BY source_id",
        "SELECT * EXCLUDE (processed_at) FROM exposures ORDER BY exposure_id",
    ] {
        let b = ctx.sql(q).await.unwrap().collect().await.unwrap();
        out.push_str(
            &arrow::util::pretty::pretty_format_batches(&b)
                .unwrap()
                .to_string(),
        );
    }
    out
}

/// What a reader sees right after a kill: every commit record parses, every live file is a
/// complete Parquet file with the rows its commit says, and no row is there twice.
async fn check_consistent(cat: &Path) -> u64 {
    let loc = Location::open(&cat.display().to_string()).unwrap();
    let snap = commit::snapshot(&loc).await.expect("the commit log reads");
    for (table, files) in &snap.files {
        for f in files.iter().filter(|f| f.is_data()) {
            let bytes =
                std::fs::read(cat.join(&f.path)).unwrap_or_else(|e| panic!("live {}: {e}", f.path));
            let md = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&bytes::Bytes::from(bytes))
                .unwrap_or_else(|e| panic!("live {} is not a complete Parquet file: {e}", f.path));
            assert_eq!(
                md.file_metadata().num_rows() as u64,
                f.rows,
                "{table} {}",
                f.path
            );
        }
    }
    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    let b = ctx
        .sql("SELECT count(*) AS n, count(DISTINCT source_id) AS d FROM sources")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = b[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    let d = b[0]
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, d, "no duplicate source");
    assert_eq!(n as u64, snap.rows_of("sources"));
    n as u64
}

fn timed(args: &[&str]) -> Duration {
    let t0 = Instant::now();
    astropipe_ok(&[], args);
    t0.elapsed()
}

/// Starts the command and SIGKILLs it after `after` (if it is still running).
fn kill_after(args: &[&str], after: Duration) -> bool {
    let mut p = Proc::spawn(args, &[], None);
    std::thread::sleep(after);
    let killed = p.alive();
    p.kill(); // SIGKILL
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_and_compact_loses_and_duplicates_nothing() {
    let s = Scratch::new("crash");
    let inputs = s.path("in");
    write_frames(&inputs);
    let inp = inputs.display().to_string();
    let clean = s.path("clean");
    let clean_s = clean.display().to_string();
    let t_ingest = timed(&["ingest", &inp, "--catalog", &clean_s, "--chunk-files", "2"]);
    // The first run pays for cold caches: time a second one into a fresh catalog and kill
    // within the shorter, so that kills land.
    let warm = s.path("warm").display().to_string();
    let t_ingest = t_ingest.min(timed(&[
        "ingest",
        &inp,
        "--catalog",
        &warm,
        "--chunk-files",
        "2",
    ]));
    let expected = dump(&clean).await;
    assert!(expected.lines().count() > FRAMES * 30);
    let t_compact = timed(&["compact", "--catalog", &clean_s, "--max-rows", "200"]);
    assert_eq!(dump(&clean).await, expected, "compaction keeps every row");

    let mut rng = Rng::new(20_261_126);
    let mut kills = 0;
    let mut rounds = 0;
    while kills < 20 {
        rounds += 1;
        // A resumed ingest has less left to do, so later kills of a round land less often;
        // under a loaded machine (other tests running) the timing varies more: many rounds
        // are allowed, and the loop ends at 20 kills anyway.
        assert!(rounds < 60, "only {kills} kills landed in {rounds} rounds");
        let cat = s.path(&format!("crash{rounds}"));
        let cat_s = cat.display().to_string();
        // A few kills into one catalog, each resuming where the last one stopped.
        for _ in 0..5 {
            let at = t_ingest.mul_f64(rng.uniform());
            if kill_after(
                &["ingest", &inp, "--catalog", &cat_s, "--chunk-files", "2"],
                at,
            ) {
                kills += 1;
            }
            check_consistent(&cat).await;
        }
        astropipe_ok(
            &[],
            &["ingest", &inp, "--catalog", &cat_s, "--chunk-files", "2"],
        );
        assert_eq!(
            dump(&cat).await,
            expected,
            "round {rounds}: the catalog equals a clean run's"
        );
        // Kill a compaction (grace 0: it also collects garbage), then let one finish.
        if rounds <= 2 {
            let compact = [
                "compact",
                "--catalog",
                &cat_s,
                "--max-rows",
                "200",
                "--gc-grace-seconds",
                "0",
            ];
            for _ in 0..3 {
                kill_after(&compact, t_compact.mul_f64(rng.uniform()));
                check_consistent(&cat).await;
                assert_eq!(dump(&cat).await, expected, "after a killed compaction");
            }
            astropipe_ok(&[], &compact);
            assert_eq!(dump(&cat).await, expected, "after compaction");
        }
    }
}
