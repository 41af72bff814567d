//! Interop: the HATS readers astronomers use (`hats.read_hats`, `lsdb.open_catalog`, from PyPI,
//! installed by tests/run-all.sh) open our compacted catalog, and LSDB's cone search returns the
//! rows ours does.

use super::helpers::{Scratch, query_strings, run_python, test_python};
use astropipe::catalog::compact::{self, CompactOptions};
use astropipe::storage::Location;

#[tokio::test]
async fn lsdb_opens_the_catalog_and_its_cone_search_matches_ours() {
    let Some(python) = test_python() else { return };
    let s = Scratch::new("lsdb");
    let cat = s.path("cat");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    // Two fields, one dense enough to split into several partitions.
    for (n, c, r, seed) in [(6_000, (150.0, 2.2), 0.3, 1), (1_000, (151.0, 2.5), 2.0, 2)] {
        let rows = astropipe::synthetic::source_rows(n, c, r, &[seed as i64], seed);
        super::catalog::commit_rows(&loc, &rows).await;
    }
    let mut o = CompactOptions::new(cat.display().to_string());
    o.max_rows = 1_000;
    let report = compact::run(&o).await.unwrap();
    assert!(report.partitions > 3, "{report}");

    // A cone that crosses partition boundaries.
    let (ra, dec, radius_arcsec) = (150.05, 2.25, 360.0);
    let ours = query_strings(
        &cat,
        &format!(
            "SELECT source_id FROM sources WHERE cone_contains(ra, dec, {ra}, {dec}, {}) ORDER BY source_id",
            radius_arcsec / 3600.0
        ),
    )
    .await;
    assert!(ours.len() > 100, "{} rows in the cone", ours.len());
    let v = run_python(
        &python,
        "hats_cone.py",
        &[
            &cat.join("sources").display().to_string(),
            &ra.to_string(),
            &dec.to_string(),
            &radius_arcsec.to_string(),
        ],
    );
    assert_eq!(v["hats_nrows"], 7_000, "{v}");
    assert_eq!(v["lsdb_rows"], 7_000, "{v}");
    assert_eq!(v["partitions"], report.partitions, "{v}");
    assert_eq!(v["has_margin"], true, "LSDB loads the margin cache: {v}");
    let cols: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for c in ["source_id", "ra", "dec", "flux", "flags"] {
        assert!(cols.contains(&c), "{c} in {cols:?}");
    }
    let lsdb_ids: Vec<String> = v["cone_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(lsdb_ids, ours, "LSDB's cone search returns our rows");
}
