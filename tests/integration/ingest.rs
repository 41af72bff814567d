//! Ingest end to end: real sample files, a synthetic frame with injected stars, corrupt
//! files among good ones, idempotent re-runs.

use super::helpers::{Scratch, copy_samples, data_dir, ingest};
use astropipe::synthetic::FrameSpec;

#[tokio::test]
async fn corrupt_files_are_reported_and_the_batch_goes_on() {
    let s = Scratch::new("corrupt");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "test0.fits"]);
    // A file cut in the middle of its data, one that is not FITS at all, and an empty one.
    let m13 = std::fs::read(data_dir().join("m13.fits")).unwrap();
    std::fs::write(inputs.join("truncated.fits"), &m13[..m13.len() / 2]).unwrap();
    std::fs::write(
        inputs.join("not_fits.fits"),
        b"this is a text file, not FITS",
    )
    .unwrap();
    std::fs::write(inputs.join("empty.fits"), b"").unwrap();
    let report = ingest(&[&inputs], &s.path("cat")).await;
    assert_eq!(report.files, 5);
    assert_eq!(report.files_ingested, 2, "{report}");
    assert_eq!(report.files_failed, 3, "{report}");
    let reason = |name: &str| {
        report
            .failures
            .iter()
            .find(|p| p.input.ends_with(name))
            .map(|p| p.reason.clone())
            .unwrap_or_else(|| panic!("{name} not reported: {report}"))
    };
    assert!(
        reason("truncated.fits").contains("truncated"),
        "{}",
        reason("truncated.fits")
    );
    assert!(reason("not_fits.fits").contains("not a FITS file"));
    assert!(reason("empty.fits").contains("not a FITS file"));
    assert!(report.success(false));
    assert!(!report.success(true), "--strict fails when anything failed");
    // m13 (1 image) + test0 (4 image extensions; the primary has no data).
    assert_eq!(report.hdus, 5, "{report}");
    assert!(report.sources > 50, "{report}");
}

#[tokio::test]
async fn reingesting_the_same_content_is_a_no_op() {
    let s = Scratch::new("idem");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "sip-wcs.fits"]);
    // The same bytes under another name count once.
    std::fs::copy(inputs.join("m13.fits"), inputs.join("m13_copy.fits")).unwrap();
    let first = ingest(&[&inputs], &s.path("cat")).await;
    assert_eq!(first.files_ingested, 2, "{first}");
    assert_eq!(first.files_already_ingested, 1, "{first}");
    assert_eq!(first.versions.len(), 1);
    let second = ingest(&[&inputs], &s.path("cat")).await;
    assert_eq!(second.files_ingested, 0, "{second}");
    assert_eq!(second.files_already_ingested, 3, "{second}");
    assert!(second.versions.is_empty(), "nothing new to commit");
    assert!(second.success(true));
    let loc = astropipe::storage::Location::open(&s.path("cat").display().to_string()).unwrap();
    let snap = astropipe::catalog::commit::snapshot(&loc).await.unwrap();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.rows_of("sources") as usize, first.sources);
}

#[tokio::test]
async fn nothing_ingestible_is_a_failure() {
    let s = Scratch::new("nothing");
    let inputs = s.path("in");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("bad.fits"), b"SIMPLE  = nonsense").unwrap();
    let report = ingest(&[&inputs, &s.path("missing-dir")], &s.path("cat")).await;
    assert_eq!(report.files_ingested, 0);
    assert!(!report.success(false));
    assert!(
        report
            .failures
            .iter()
            .any(|p| p.input.ends_with("missing-dir"))
    );
}

#[tokio::test]
async fn synthetic_frame_sources_carry_sky_positions_and_healpix() {
    let s = Scratch::new("synth");
    let frame = FrameSpec {
        n_stars: 40,
        ..FrameSpec::default()
    }
    .generate();
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/synthetic.fits"), frame.to_fits()).unwrap();
    let report = ingest(&[&s.path("in")], &s.path("cat")).await;
    assert_eq!(report.files_ingested, 1, "{report}");
    let loc = astropipe::storage::Location::open(&s.path("cat").display().to_string()).unwrap();
    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    let df = ctx
        .sql(
            "SELECT count(*) AS n, count(ra) AS n_ra, \
             sum(CASE WHEN _healpix_29 = healpix_29(ra, dec) THEN 1 ELSE 0 END) AS n_hpx_ok \
             FROM sources",
        )
        .await
        .unwrap();
    let b = df.collect().await.unwrap();
    let col = |i: usize| {
        b[0].column(i)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0)
    };
    assert!(col(0) >= 38, "found {} of 40 stars", col(0));
    assert_eq!(col(0), col(1), "every source has a position");
    assert_eq!(
        col(0),
        col(2),
        "_healpix_29 agrees with healpix_29(ra, dec)"
    );
    // Exposure metadata from the header.
    let df = ctx
        .sql("SELECT object, filter, exptime, mjd_obs, pixel_scale_arcsec, wcs_status FROM exposures")
        .await
        .unwrap();
    let b = df.collect().await.unwrap();
    let s = arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string();
    assert!(
        s.contains("SYNTHETIC") && s.contains("| r ") && s.contains("| ok"),
        "{s}"
    );
    let px = b[0]
        .column(4)
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap()
        .value(0);
    assert!((px - 0.4).abs() < 1e-6, "pixel scale {px}");
}
