//! Interop: the HATS readers astronomers use (`hats.read_hats`, `lsdb.open_catalog`, from PyPI,
//! installed by tests/run-all.sh) open our compacted catalog, and LSDB's cone search returns the
//! rows ours does.

use super::helpers::{Scratch, query_strings, run_python, test_python};
use astropipe::compact::{self, CompactOptions};
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

#[tokio::test]
async fn a_catalog_written_by_lsdb_is_served_with_pruning_and_its_margin() {
    let Some(python) = test_python() else { return };
    let s = Scratch::new("lsdbtable");
    let ext = s.path("ext");
    let (ra, dec, r_arcsec) = (11.0, 0.1, 900.0);
    let v = run_python(
        &python,
        "make_lsdb_catalog.py",
        &[
            &ext.display().to_string(),
            &ra.to_string(),
            &dec.to_string(),
            &r_arcsec.to_string(),
        ],
    );
    // An empty catalog of our own: only the --table is served.
    let cat = s.path("empty");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    astropipe::query::session::register_extra_tables(&ctx, &[format!("ext={}", ext.display())])
        .await
        .unwrap();
    let one = |sql: String| {
        let ctx = ctx.clone();
        async move {
            let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            let c =
                arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
            c.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        }
    };
    assert_eq!(
        one("SELECT count(*) FROM ext".into()).await,
        v["rows"].as_i64().unwrap()
    );
    // Our cone (pruned) = LSDB's cone search.
    let b = ctx
        .sql(&format!(
            "SELECT id FROM ext WHERE cone_contains(ra, dec, {ra}, {dec}, {}) ORDER BY id",
            r_arcsec / 3600.0
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ours: Vec<i64> = b
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    let theirs: Vec<i64> = v["cone_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs);
    // Pruning: the cone reads a few of the partitions (each one row group, pruned by pixel).
    let plan = ctx
        .sql(&format!(
            "EXPLAIN SELECT id FROM ext WHERE cone_contains(ra, dec, {ra}, {dec}, 0.01)"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    let partitions = v["partitions"].as_u64().unwrap() as usize;
    let read = text.matches("Npix=").count();
    assert!(
        read >= 1 && read < partitions / 4,
        "{read} of {partitions} partitions read:\n{text}"
    );
    // The margin cache is found and used by a self cross-match: each row matches itself.
    let t = astropipe::query::session::sky_tables(&ctx)
        .get("ext")
        .unwrap();
    assert_eq!(t.margin.as_ref().map(|m| m.1), Some(5.0));
    let self_pairs = one("SELECT count(*) FROM xmatch('ext', 'ext', 0.001)".into()).await;
    assert_eq!(self_pairs, v["rows"].as_i64().unwrap());
}
