//! Astronomy SQL over the catalog: spatial pruning (cone, box, polygon) returns exactly the
//! rows a brute-force scan does, and skips files it does not need.

use super::catalog::commit_rows;
use super::helpers::{Scratch, query_strings};
use astropipe::catalog::compact::{self, CompactOptions};
use astropipe::storage::Location;

/// A catalog with fields around the sky (one across RA = 0, one near the north pole), in
/// several increments, optionally compacted into HATS partitions.
async fn sky_catalog(s: &Scratch, compacted: bool) -> std::path::PathBuf {
    let cat = s.path(if compacted { "hats" } else { "increments" });
    let loc = Location::open(&cat.display().to_string()).unwrap();
    for (i, (c, r, n)) in [
        ((150.0, 2.2), 1.0, 4_000),
        ((0.2, -10.0), 1.5, 3_000),
        ((40.0, 88.5), 2.0, 3_000),
        ((250.0, -45.0), 10.0, 2_000),
    ]
    .into_iter()
    .enumerate()
    {
        let rows = astropipe::synthetic::source_rows(n, c, r, &[i as i64 + 1], 40 + i as u64);
        commit_rows(&loc, &rows).await;
    }
    if compacted {
        let mut o = CompactOptions::new(cat.display().to_string());
        o.max_rows = 800;
        compact::run(&o).await.unwrap();
    }
    cat
}

#[tokio::test]
async fn region_queries_return_exactly_the_brute_force_rows() {
    let s = Scratch::new("prune");
    for compacted in [false, true] {
        let cat = sky_catalog(&s, compacted).await;
        // (pruned predicate, brute-force predicate: same region, nothing the planner can use)
        let cases = [
            (
                "cone_contains(ra, dec, 150.1, 2.3, 0.2)",
                "ang_sep_deg(ra, dec, 150.1, 2.3) <= 0.2",
            ),
            (
                "cone_contains(ra, dec, 359.8, -10.2, 0.8)",
                "ang_sep_deg(ra, dec, 359.8, -10.2) <= 0.8",
            ),
            (
                "cone_contains(ra, dec, 100.0, 89.9, 1.5)",
                "ang_sep_deg(ra, dec, 100.0, 89.9) <= 1.5",
            ),
            (
                "box_contains(ra, dec, 0.0, -10.0, 1.0, 0.5)",
                "box_contains(ra, dec, 0.0 + 0 * flux, -10.0, 1.0, 0.5)",
            ),
            (
                "box_contains(ra, dec, 40.0, 89.0, 30.0, 4.0)",
                "box_contains(ra, dec, 40.0 + 0 * flux, 89.0, 30.0, 4.0)",
            ),
            (
                "polygon_contains(ra, dec, 149.5, 2.0, 150.5, 1.8, 150.3, 2.9, 149.9, 2.4)",
                "polygon_contains(ra, dec, 149.5 + 0 * flux, 2.0, 150.5, 1.8, 150.3, 2.9, 149.9, 2.4)",
            ),
        ];
        for (pruned, brute) in cases {
            let q = |w: &str| format!("SELECT source_id FROM sources WHERE {w} ORDER BY source_id");
            let got = query_strings(&cat, &q(pruned)).await;
            let want = query_strings(&cat, &q(brute)).await;
            assert!(!want.is_empty(), "{pruned}: the test region holds rows");
            assert_eq!(got, want, "{pruned} (compacted: {compacted})");
        }
    }
}

#[tokio::test]
async fn explain_shows_healpix_ranges_and_fewer_files() {
    let s = Scratch::new("explain");
    let cat = sky_catalog(&s, true).await;
    let loc = Location::open(&cat.display().to_string()).unwrap();
    let (ctx, snap) = astropipe::query::session::open(&loc).await.unwrap();
    let total = snap.files_of("sources").len();
    let plan = |sql: String| {
        let ctx = ctx.clone();
        async move {
            let b = ctx
                .sql(&format!("EXPLAIN {sql}"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            arrow::util::pretty::pretty_format_batches(&b)
                .unwrap()
                .to_string()
        }
    };
    let text =
        plan("SELECT count(*) FROM sources WHERE cone_contains(ra, dec, 150.1, 2.3, 0.05)".into())
            .await;
    assert!(text.contains("_healpix_29@"), "{text}");
    let files_scanned = text.matches("Npix=").count();
    assert!(
        files_scanned >= 1 && files_scanned < total,
        "{files_scanned} of {total} files:\n{text}"
    );
    // No region: every file.
    let all = plan("SELECT count(*) FROM sources WHERE flux > 0".into()).await;
    assert!(!all.contains("_healpix_29@"), "{all}");
}
