//! Catalog storage: HATS compaction (partitions, metadata, sort, margins), garbage collection,
//! reprocessing, concurrent writers.

use super::helpers::{Scratch, copy_samples, ingest, query_strings};
use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type};
use astropipe::catalog::hats::Pixel;
use astropipe::catalog::{CommitRecord, SOURCES, commit, schema};
use astropipe::compact::{self, CompactOptions};
use astropipe::ingest::IngestOptions;
use astropipe::storage::Location;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Commits synthetic source rows as one increment, as an ingest would.
pub async fn commit_rows(loc: &Location, rows: &[schema::SourceRow]) {
    let run_id = commit::new_run_id();
    let batch = schema::sources_batch(rows).unwrap();
    let f =
        astropipe::catalog::put_increment_file(loc, SOURCES, &run_id, &batch, schema::HEALPIX_29)
            .await
            .unwrap();
    for _ in 0..16 {
        let snap = commit::snapshot(loc).await.unwrap();
        let record = CommitRecord {
            version: snap.version + 1,
            run_id: run_id.clone(),
            created_at: commit::now_rfc3339(),
            pipeline_version: "test".into(),
            operation: "ingest".into(),
            add: vec![f.clone()],
            remove: vec![],
            inputs: vec![],
            generation: None,
        };
        if commit::try_put(loc, &record).await.unwrap() {
            return;
        }
    }
    panic!("could not commit");
}

fn parse_properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn files_under(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Parses `.../Norder=K/Dir=D/Npix=N.parquet`.
fn pixel_of(path: &Path) -> Pixel {
    let s = path.to_string_lossy();
    let num = |key: &str| -> u64 {
        let i = s.rfind(key).unwrap_or_else(|| panic!("{key} in {s}")) + key.len();
        s[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    Pixel {
        order: num("Norder=") as u8,
        pixel: num("Npix="),
    }
}

fn read_file(
    path: &Path,
) -> (
    Vec<arrow::array::RecordBatch>,
    parquet::file::metadata::ParquetMetaData,
) {
    let f = std::fs::File::open(path).unwrap();
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let md = b.metadata().as_ref().clone();
    let batches = b.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    (batches, md)
}

/// (source_id, ra, dec, _healpix_29) of every row in a file.
fn rows_of(path: &Path) -> Vec<(String, f64, f64, i64)> {
    let (batches, _) = read_file(path);
    let mut out = Vec::new();
    for b in batches {
        let id = b
            .column_by_name("source_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let ra = b
            .column_by_name("ra")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        let dec = b
            .column_by_name("dec")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        let hp = b
            .column_by_name("_healpix_29")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        for i in 0..b.num_rows() {
            out.push((
                id.value(i).to_string(),
                ra.value(i),
                dec.value(i),
                hp.value(i),
            ));
        }
    }
    out
}

fn ang_sep_arcsec(a: (f64, f64), b: (f64, f64)) -> f64 {
    astropipe_udfs::sphere::ang_sep_deg(a.0, a.1, b.0, b.1) * 3600.0
}

async fn snapshot_of(dir: &Path) -> (Location, commit::Snapshot) {
    let loc = Location::open(&dir.display().to_string()).unwrap();
    let snap = commit::snapshot(&loc).await.unwrap();
    (loc, snap)
}

fn compact_opts(dir: &Path, max_rows: u64) -> CompactOptions {
    let mut o = CompactOptions::new(dir.display().to_string());
    o.max_rows = max_rows;
    o.grace = Duration::ZERO;
    o.memory_limit = 64 << 20;
    o
}

#[tokio::test]
async fn compaction_writes_balanced_sorted_hats_partitions() {
    let s = Scratch::new("hats");
    let cat = s.path("cat");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    // A dense field, a sparse wide field and a second field across RA = 0, in three
    // increments, plus rows without a position.
    let mut all = Vec::new();
    for (i, (n, c, r)) in [
        (12_000, (150.0, 2.2), 0.5),
        (3_000, (150.0, 2.2), 20.0),
        (2_000, (0.1, -30.0), 1.0),
    ]
    .into_iter()
    .enumerate()
    {
        let rows = astropipe::synthetic::source_rows(n, c, r, &[100 + i as i64], 7 + i as u64);
        commit_rows(&loc, &rows).await;
        all.extend(rows);
    }
    let mut unlocated = astropipe::synthetic::source_rows(25, (10.0, 10.0), 1.0, &[999], 99);
    for r in &mut unlocated {
        r.ra = None;
        r.dec = None;
        r.healpix_29 = None;
    }
    commit_rows(&loc, &unlocated).await;
    let before = query_strings(&cat, "SELECT source_id FROM sources ORDER BY source_id").await;
    assert_eq!(before.len(), 17_025);

    let report = compact::run(&compact_opts(&cat, 2_000)).await.unwrap();
    assert_eq!(report.rows, 17_000, "{report}");
    assert_eq!(report.unlocated_rows, 25, "{report}");
    assert!(report.partitions >= 9, "{report}");
    let generation = report.generation.clone().unwrap();
    let gen_dir = cat.join("sources").join(&generation);

    // hats.properties.
    let props =
        parse_properties(&std::fs::read_to_string(gen_dir.join("hats.properties")).unwrap());
    for (k, v) in [
        ("dataproduct_type", "object"),
        ("hats_nrows", "17000"),
        ("hats_col_ra", "ra"),
        ("hats_col_dec", "dec"),
        ("hats_col_healpix", "_healpix_29"),
        ("hats_col_healpix_order", "29"),
        ("hats_max_rows", "2000"),
        ("hats_version", "v1.0"),
    ] {
        assert_eq!(
            props.get(k).map(String::as_str),
            Some(v),
            "{k} in {props:?}"
        );
    }
    let collection = parse_properties(
        &std::fs::read_to_string(cat.join("sources/collection.properties")).unwrap(),
    );
    assert_eq!(collection["hats_primary_table_url"], generation);

    // partition_info.csv lists exactly the partition files; partitions are adaptive.
    let listed: Vec<Pixel> = std::fs::read_to_string(gen_dir.join("partition_info.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (o, p) = l.split_once(',').unwrap();
            Pixel {
                order: o.parse().unwrap(),
                pixel: p.parse().unwrap(),
            }
        })
        .collect();
    let files = files_under(&gen_dir.join("dataset"), ".parquet");
    let mut on_disk: Vec<Pixel> = files.iter().map(|p| pixel_of(p)).collect();
    on_disk.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, on_disk);
    let orders: HashSet<u8> = listed.iter().map(|p| p.order).collect();
    assert!(
        orders.len() >= 2,
        "dense sky gets deeper orders than sparse sky: {orders:?}"
    );
    assert_eq!(
        props["hats_order"],
        orders.iter().max().unwrap().to_string()
    );

    // Every partition: within its pixel, sorted, sort declared, at most max_rows, units kept.
    let mut total = 0;
    for f in &files {
        let px = pixel_of(f);
        let (lo, hi) = px.index_range();
        let rows = rows_of(f);
        assert!(
            !rows.is_empty() && rows.len() <= 2_000,
            "{} rows in {f:?}",
            rows.len()
        );
        assert!(
            rows.windows(2).all(|w| w[0].3 <= w[1].3),
            "{f:?} sorted by _healpix_29"
        );
        assert!(
            rows.iter().all(|r| r.3 >= lo && r.3 < hi),
            "{f:?} rows inside the pixel"
        );
        total += rows.len();
        let (_, md) = read_file(f);
        let hp_idx = md
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == "_healpix_29")
            .unwrap();
        for rg in md.row_groups() {
            let sc = rg.sorting_columns().expect("sorting columns declared");
            assert_eq!(sc[0].column_idx as usize, hp_idx);
            assert!(!sc[0].descending);
        }
        let schema = parquet::arrow::parquet_to_arrow_schema(
            md.file_metadata().schema_descr(),
            md.file_metadata().key_value_metadata(),
        )
        .unwrap();
        assert_eq!(
            schema
                .field_with_name("ra")
                .unwrap()
                .metadata()
                .get("unit")
                .map(String::as_str),
            Some("deg")
        );
    }
    assert_eq!(total, 17_000);

    // _metadata sums the partitions; _common_metadata holds the schema.
    let md = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(
            std::fs::read(gen_dir.join("dataset/_metadata")).unwrap(),
        ))
        .unwrap();
    assert_eq!(md.file_metadata().num_rows(), 17_000);
    assert!(md.row_groups().iter().all(|rg| {
        rg.column(0)
            .file_path()
            .is_some_and(|p| p.starts_with("Norder="))
    }));
    let (b, md) = read_file(&gen_dir.join("dataset/_common_metadata"));
    assert!(b.iter().all(|b| b.num_rows() == 0));
    assert_eq!(
        md.file_metadata().schema_descr().num_columns(),
        schema::SOURCES.fields().len()
    );

    // Readers see the same rows; the merged increments are gone (grace 0), live files exist.
    let after = query_strings(&cat, "SELECT source_id FROM sources ORDER BY source_id").await;
    assert_eq!(before, after);
    let (_, snap) = snapshot_of(&cat).await;
    assert!(files_under(&cat.join("sources/_increments"), ".parquet").is_empty());
    for p in snap.live_paths() {
        assert!(cat.join(p).exists(), "live file {p} exists");
    }
    // Compacting again with nothing new commits nothing.
    let again = compact::run(&compact_opts(&cat, 2_000)).await.unwrap();
    assert_eq!(again.version, None, "{again}");
}

#[tokio::test]
async fn margin_cache_holds_every_neighbour_across_partition_edges() {
    let s = Scratch::new("margin");
    let cat = s.path("cat");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    // A dense patch centred on a corner shared by several order-k pixels, so that many
    // partition edges run through it (mean separation ~5 arcsec).
    let (ra0, dec0) = (45.0, 0.0);
    let rows = astropipe::synthetic::source_rows(30_000, (ra0, dec0), 0.25, &[1], 11);
    commit_rows(&loc, &rows).await;
    let mut o = compact_opts(&cat, 1_500);
    o.margin_arcsec = 10.0;
    let report = compact::run(&o).await.unwrap();
    assert!(report.partitions >= 8, "{report}");
    assert!(report.margin_rows > 0, "{report}");
    let generation_name = report.generation.unwrap();
    let margin_dir = cat
        .join("sources")
        .join(format!("{generation_name}_10arcs"));
    let props =
        parse_properties(&std::fs::read_to_string(margin_dir.join("hats.properties")).unwrap());
    assert_eq!(props["dataproduct_type"], "margin");
    assert_eq!(props["hats_primary_table_url"], generation_name);
    assert_eq!(props["hats_margin_threshold"], "10");

    // Partition of every row, and the margin of every partition.
    let mut part_of: HashMap<String, Pixel> = HashMap::new();
    let mut pos: HashMap<String, (f64, f64)> = HashMap::new();
    for f in files_under(
        &cat.join("sources").join(&generation_name).join("dataset"),
        ".parquet",
    ) {
        let px = pixel_of(&f);
        for (id, ra, dec, _) in rows_of(&f) {
            part_of.insert(id.clone(), px);
            pos.insert(id, (ra, dec));
        }
    }
    let mut margin: HashMap<Pixel, HashSet<String>> = HashMap::new();
    for f in files_under(&margin_dir.join("dataset"), ".parquet") {
        let px = pixel_of(&f);
        let rows = rows_of(&f);
        assert!(
            rows.windows(2).all(|w| w[0].3 <= w[1].3),
            "margin files are sorted"
        );
        for (id, ..) in rows {
            assert_ne!(
                part_of[&id], px,
                "a margin holds rows of other partitions only"
            );
            margin.entry(px).or_default().insert(id);
        }
    }
    // Brute force over a grid of 10-arcsec cells: every pair closer than 10" that straddles
    // two partitions has each row in the other's margin.
    let cell = 10.0 / 3600.0;
    let mut grid: HashMap<(i64, i64), Vec<&String>> = HashMap::new();
    for (id, (ra, dec)) in &pos {
        grid.entry(((ra / cell).floor() as i64, (dec / cell).floor() as i64))
            .or_default()
            .push(id);
    }
    let mut straddling = 0;
    for (id, &(ra, dec)) in &pos {
        let (cx, cy) = ((ra / cell).floor() as i64, (dec / cell).floor() as i64);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for other in grid.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                    if part_of[*other] == part_of[id]
                        || ang_sep_arcsec((ra, dec), pos[*other]) >= 10.0
                    {
                        continue;
                    }
                    straddling += 1;
                    assert!(
                        margin.get(&part_of[id]).is_some_and(|m| m.contains(*other)),
                        "{other} is {:.2}\" from {id} but missing from the margin of {:?}",
                        ang_sep_arcsec((ra, dec), pos[*other]),
                        part_of[id]
                    );
                }
            }
        }
    }
    assert!(
        straddling > 100,
        "the test exercises partition edges ({straddling} pairs)"
    );
}

#[tokio::test]
async fn garbage_collection_keeps_what_committed_versions_reference() {
    let s = Scratch::new("gc");
    let cat = s.path("cat");
    let loc = Location::open(&cat.display().to_string()).unwrap();
    commit_rows(
        &loc,
        &astropipe::synthetic::source_rows(500, (10.0, 10.0), 0.5, &[1], 1),
    )
    .await;
    commit_rows(
        &loc,
        &astropipe::synthetic::source_rows(500, (11.0, 10.0), 0.5, &[2], 2),
    )
    .await;
    // Files a crashed writer left behind: never committed.
    std::fs::write(
        cat.join("sources/_increments/crashed-run.parquet"),
        b"partial",
    )
    .unwrap();
    std::fs::write(
        cat.join("sources/_increments/crashed-upload.parquet#1"),
        b"partial",
    )
    .unwrap();
    let increments = files_under(&cat.join("sources/_increments"), "");
    assert_eq!(increments.len(), 4);
    let mut o = compact_opts(&cat, 10_000);
    o.grace = Duration::from_secs(3600);
    let r = compact::run(&o).await.unwrap();
    assert_eq!(r.gc_deleted, 0, "nothing is old enough: {r}");
    for f in &increments {
        assert!(f.exists(), "{f:?} kept within the grace period");
    }
    // A reader of the previous version still finds every file it references.
    let log = commit::read_log(&loc).await.unwrap();
    let mut prev = commit::Snapshot::default();
    for c in &log[..log.len() - 1] {
        prev.apply(c);
    }
    for p in prev.live_paths() {
        assert!(
            cat.join(p).exists(),
            "{p} of version {} exists",
            prev.version
        );
    }
    // With no grace, the uncommitted files and the merged increments go; live files stay.
    let gone = compact::collect_garbage(&loc, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        gone,
        increments.len(),
        "2 merged increments + 2 crashed files"
    );
    let snap = commit::snapshot(&loc).await.unwrap();
    for p in snap.live_paths() {
        assert!(cat.join(p).exists(), "live {p} kept");
    }
    assert!(cat.join("sources/collection.properties").exists());
    assert_eq!(
        query_strings(&cat, "SELECT count(*) FROM sources").await,
        vec!["1000"]
    );
}

#[tokio::test]
async fn reprocess_replaces_rows_atomically_before_and_after_compaction() {
    let s = Scratch::new("reprocess");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "sip-wcs.fits"]);
    let cat = s.path("cat");
    let run = |thresh: f32, reprocess: bool, cat: std::path::PathBuf| {
        let inputs = inputs.clone();
        async move {
            let mut o = IngestOptions::new(
                vec![inputs.display().to_string()],
                cat.display().to_string(),
            );
            o.extract.detect.thresh_sigma = thresh;
            o.reprocess = reprocess;
            astropipe::ingest::run(&o).await.unwrap()
        }
    };
    let first = run(1.5, false, cat.clone()).await;
    assert_eq!(first.files_ingested, 2, "{first}");
    // Reference: a clean catalog made with the new setting.
    let clean = run(4.0, false, s.path("clean")).await;
    assert!(
        clean.sources != first.sources,
        "the threshold changes the catalog"
    );
    let count = |c: std::path::PathBuf| async move {
        query_strings(
            &c,
            "SELECT count(*) || ' ' || count(DISTINCT source_id) FROM sources",
        )
        .await
    };
    let again = run(4.0, true, cat.clone()).await;
    assert_eq!(again.files_ingested, 2, "{again}");
    assert_eq!(
        count(cat.clone()).await,
        vec![format!("{0} {0}", clean.sources)]
    );
    assert_eq!(
        query_strings(&cat, "SELECT count(*) FROM exposures").await,
        vec!["2"]
    );
    // After a compaction the rows live in the HATS generation; reprocess rewrites them there.
    compact::run(&compact_opts(&cat, 100)).await.unwrap();
    let back = run(1.5, true, cat.clone()).await;
    assert_eq!(back.files_ingested, 2, "{back}");
    assert_eq!(
        count(cat.clone()).await,
        vec![format!("{0} {0}", first.sources)]
    );
    assert_eq!(
        query_strings(&cat, "SELECT count(*) FROM exposures").await,
        vec!["2"]
    );
    let by_exposure = "SELECT exposure_id || ':' || count(*) FROM sources GROUP BY exposure_id ORDER BY exposure_id";
    let clean2 = s.path("clean2");
    run(1.5, false, clean2.clone()).await;
    assert_eq!(
        query_strings(&cat, by_exposure).await,
        query_strings(&clean2, by_exposure).await
    );
}

#[tokio::test]
async fn concurrent_ingests_on_overlapping_inputs_neither_duplicate_nor_lose() {
    let s = Scratch::new("concurrent");
    let a = s.path("a");
    let b = s.path("b");
    copy_samples(&a, &["m13.fits", "sip-wcs.fits", "test0.fits"]);
    copy_samples(&b, &["sip-wcs.fits", "test0.fits", "a8280271.fits"]);
    let cat = s.path("cat");
    let opts = |dir: &Path| {
        let mut o = IngestOptions::new(vec![dir.display().to_string()], cat.display().to_string());
        o.chunk_files = 1;
        o
    };
    let (oa, ob) = (opts(&a), opts(&b));
    let (ra, rb) = tokio::join!(astropipe::ingest::run(&oa), astropipe::ingest::run(&ob));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.files_failed + rb.files_failed, 0, "{ra}\n{rb}");
    let reference = s.path("ref");
    copy_samples(
        &reference,
        &["m13.fits", "sip-wcs.fits", "test0.fits", "a8280271.fits"],
    );
    ingest(&[&reference], &s.path("refcat")).await;
    let q = "SELECT count(*) || ' ' || count(DISTINCT source_id) || ' ' || count(DISTINCT exposure_id) FROM sources";
    assert_eq!(
        query_strings(&cat, q).await,
        query_strings(&s.path("refcat"), q).await
    );
    let q = "SELECT count(*) || ' ' || count(DISTINCT exposure_id) FROM exposures";
    assert_eq!(
        query_strings(&cat, q).await,
        query_strings(&s.path("refcat"), q).await
    );
    let (_, snap) = snapshot_of(&cat).await;
    assert_eq!(snap.inputs.len(), 4, "each input committed once");
}

#[test]
fn alignment_partitions_are_disjoint_and_cover_the_histogram() {
    // A histogram at order 6 around a dense spot.
    let rows = astropipe::synthetic::source_rows(50_000, (200.0, -45.0), 5.0, &[1], 3);
    let mut h: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &rows {
        *h.entry((r.healpix_29.unwrap() as u64) >> (2 * 23))
            .or_default() += 1;
    }
    let parts = astropipe::catalog::hats::alignment(&h, 6, 4_000);
    let total: u64 = parts.iter().map(|p| p.1).sum();
    assert_eq!(total, 50_000);
    assert!(parts.iter().all(|p| p.1 <= 4_000));
    for w in parts.windows(2) {
        assert!(w[0].0.index_range().1 <= w[1].0.index_range().0);
    }
}
