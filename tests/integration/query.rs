//! Astronomy SQL over the catalog: spatial pruning (cone, box, polygon) returns exactly the
//! rows a brute-force scan does, and skips files it does not need.

use super::catalog::commit_rows;
use super::helpers::{Scratch, query_strings};
use astropipe::compact::{self, CompactOptions};
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

/// Pairs (left id, right id) closer than `r_arcsec`, by brute force over a grid.
fn brute_pairs(
    left: &[(String, f64, f64)],
    right: &[(String, f64, f64)],
    r_arcsec: f64,
) -> Vec<(String, String)> {
    let cell = r_arcsec / 3600.0 * 2.0;
    let key = |ra: f64, dec: f64| {
        (
            (dec / cell).floor() as i64,
            (ra * dec.to_radians().cos().max(0.01) / cell).floor() as i64,
        )
    };
    let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
    for (j, (_, ra, dec)) in right.iter().enumerate() {
        grid.entry(key(*ra, *dec)).or_default().push(j);
    }
    let mut out = Vec::new();
    for (id, ra, dec) in left {
        let (a, b) = key(*ra, *dec);
        for da in -2..=2 {
            for db in -2..=2 {
                for &j in grid.get(&(a + da, b + db)).into_iter().flatten() {
                    let (rid, rra, rdec) = &right[j];
                    if astropipe_udfs::sphere::ang_sep_deg(*ra, *dec, *rra, *rdec) * 3600.0
                        <= r_arcsec
                    {
                        out.push((id.clone(), rid.clone()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

async fn id_positions(
    ctx: &datafusion::prelude::SessionContext,
    table: &str,
) -> Vec<(String, f64, f64)> {
    let b = ctx
        .sql(&format!(
            "SELECT source_id, ra, dec FROM {table} WHERE ra IS NOT NULL"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in b {
        let id = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let id = id
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let ra = b
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        let dec = b
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        for i in 0..b.num_rows() {
            out.push((id.value(i).to_string(), ra.value(i), dec.value(i)));
        }
    }
    out
}

async fn pairs(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<(String, String)> {
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in b {
        let l = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let r = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let l = l
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let r = r
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            out.push((l.value(i).to_string(), r.value(i).to_string()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn xmatch_finds_every_pair_across_partition_edges() {
    let s = Scratch::new("xmatch");
    // Left: a dense patch, compacted into many partitions (with a 10" margin cache).
    let left_cat = s.path("left");
    let loc = Location::open(&left_cat.display().to_string()).unwrap();
    let left_rows = astropipe::synthetic::source_rows(8_000, (45.0, 0.0), 0.3, &[1], 5);
    commit_rows(&loc, &left_rows).await;
    let mut o = CompactOptions::new(left_cat.display().to_string());
    o.max_rows = 700;
    compact::run(&o).await.unwrap();
    // Right: jittered copies of half the left rows plus unrelated rows, in its own catalog
    // (other partitions), and the same rows as one plain Parquet file (not HATS).
    let mut rng = astropipe::synthetic::Rng::new(77);
    let mut right_rows = astropipe::synthetic::source_rows(3_000, (45.0, 0.0), 0.3, &[2], 6);
    for (i, r) in left_rows.iter().step_by(2).enumerate() {
        let mut c = r.clone();
        c.source_id = format!("copy-{i:06}");
        c.exposure_id = 3;
        let (ra, dec) = (
            r.ra.unwrap() + rng.normal() * 0.5 / 3600.0,
            r.dec.unwrap() + rng.normal() * 0.5 / 3600.0,
        );
        c.ra = Some(ra);
        c.dec = Some(dec);
        c.healpix_29 = astropipe_udfs::healpix::nested_index(29, ra, dec);
        right_rows.push(c);
    }
    let right_cat = s.path("right");
    let rloc = Location::open(&right_cat.display().to_string()).unwrap();
    commit_rows(&rloc, &right_rows).await;
    let mut o = CompactOptions::new(right_cat.display().to_string());
    o.max_rows = 2_000;
    compact::run(&o).await.unwrap();
    let plain = s.path("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let batch = astropipe::catalog::schema::sources_batch(&right_rows).unwrap();
    std::fs::write(
        plain.join("right.parquet"),
        astropipe::catalog::writer::encode_sorted(&batch, "_healpix_29").unwrap(),
    )
    .unwrap();

    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    astropipe::query::session::register_extra_tables(
        &ctx,
        &[
            format!("other={}", right_cat.join("sources").display()),
            format!("flat={}", plain.display()),
        ],
    )
    .await
    .unwrap();
    let left = id_positions(&ctx, "sources").await;
    let right = id_positions(&ctx, "other").await;
    assert_eq!(right.len(), right_rows.len());
    let r = 2.0;
    let want = brute_pairs(&left, &right, r);
    assert!(want.len() > 3_000, "{} true pairs", want.len());
    // HATS left against HATS right (neighbourhood reads), and against a plain file.
    for t in ["other", "flat"] {
        let t0 = std::time::Instant::now();
        let got = pairs(
            &ctx,
            &format!("SELECT source_id_sources, source_id_{t} FROM xmatch('sources', '{t}', {r})"),
        )
        .await;
        eprintln!("xmatch with {t}: {:?}", t0.elapsed());
        assert_eq!(got.len(), want.len(), "xmatch with {t}");
        assert_eq!(got, want, "xmatch with {t}");
    }
    // The same match written as a join of the two sky tables on proximity: planned as a
    // pruned sky join (the smaller side indexed), not a nested loop, and exactly the pairs.
    for t in ["other", "flat"] {
        let sql = format!(
            "SELECT a.source_id, b.source_id FROM sources AS a JOIN {t} AS b \
             ON cone_contains(b.ra, b.dec, a.ra, a.dec, {r} / 3600.0)"
        );
        let plan = ctx
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(plan.contains("SkyJoinExec"), "{plan}");
        assert_eq!(pairs(&ctx, &sql).await, want, "proximity join with {t}");
    }
    // A self-match uses the margin cache; every row finds itself.
    let want_self = brute_pairs(&left, &left, r);
    let got_self = pairs(
        &ctx,
        &format!("SELECT source_id_left, source_id_right FROM xmatch('sources', 'sources', {r})"),
    )
    .await;
    assert_eq!(got_self, want_self);
    // k = 1: each matched left row once, with its nearest.
    let t0 = std::time::Instant::now();
    let nearest = pairs(
        &ctx,
        "SELECT source_id_sources, source_id_other FROM xmatch('sources', 'other', 2.0, 1)",
    )
    .await;
    eprintln!("k=1 xmatch: {:?}", t0.elapsed());
    let distinct_left: std::collections::BTreeSet<&String> = want.iter().map(|p| &p.0).collect();
    assert_eq!(
        nearest.len(),
        distinct_left.len(),
        "one pair per matched left row"
    );
    let pos: std::collections::HashMap<&String, (f64, f64)> = left
        .iter()
        .chain(right.iter())
        .map(|(id, ra, dec)| (id, (*ra, *dec)))
        .collect();
    let sep = |a: &String, b: &String| {
        astropipe_udfs::sphere::ang_sep_deg(pos[a].0, pos[a].1, pos[b].0, pos[b].1)
    };
    for (l, r) in &nearest {
        let best = want
            .iter()
            .filter(|p| &p.0 == l)
            .map(|p| sep(l, &p.1))
            .fold(f64::MAX, f64::min);
        assert!(
            (sep(l, r) - best).abs() < 1e-12,
            "{l}: {r} is not the nearest"
        );
    }
    // cone_search agrees with the cone predicate and gives separations.
    let a = query_strings(
        &left_cat,
        "SELECT source_id FROM cone_search('sources', 45.05, 0.02, 0.05) ORDER BY source_id",
    )
    .await;
    let b = query_strings(&left_cat, "SELECT source_id FROM sources WHERE cone_contains(ra, dec, 45.05, 0.02, 0.05) ORDER BY source_id").await;
    assert!(!a.is_empty());
    assert_eq!(a, b);
    let far = query_strings(
        &left_cat,
        "SELECT max(sep_arcsec) FROM cone_search('sources', 45.05, 0.02, 0.05)",
    )
    .await;
    assert!(far[0].parse::<f64>().unwrap() <= 180.0);
}
