//! Calibration end to end: raw bias, dark and flat frames with an overscan strip go through
//! `astropipe calib build`; the masters carry their provenance; `ingest --calib` applies them
//! to a raw science frame (overscan, trim, bias, scaled dark, flat, bad-pixel mask) so that
//! star fluxes come out right where the uncalibrated frame is off by the flat's pattern, and
//! sky positions stay right after trimming; `exposures` records the masters used.

use super::helpers::{Scratch, astropipe_ok, query_strings};
use astropipe::fits::FitsFile;
use astropipe::fits::HeaderValue;
use astropipe::fits::writer::{Encoding, FitsWriter};
use astropipe::synthetic::{FrameSpec, Rng};

const W: usize = 200;
const H: usize = 160;
const OS: usize = 16; // overscan columns, on the left
const BAD_COLUMN: usize = 120; // in trimmed coordinates

fn flat(x: usize, y: usize) -> f64 {
    if x == BAD_COLUMN {
        return 0.2;
    }
    0.7 + 0.6 * x as f64 / W as f64 + 0.02 * ((y as f64) / 7.0).sin()
}

fn bias_pattern(x: usize, y: usize) -> f64 {
    5.0 * ((x * 7 + y * 13) % 11) as f64 / 11.0
}

const DARK_RATE: f64 = 0.05;

/// A raw frame: `signal` (trimmed geometry) × flat + dark + bias + overscan level + noise.
fn raw(
    signal: &dyn Fn(usize, usize) -> f64,
    exptime: f64,
    use_flat: bool,
    rng: &mut Rng,
    noise: f64,
) -> Vec<f64> {
    let rw = W + OS;
    let mut px = vec![0f64; rw * H];
    for y in 0..H {
        let level = 480.0 + 0.1 * y as f64; // drifts along the columns: per-row overscan
        for xr in 0..rw {
            let mut v = level + noise * rng.normal();
            if xr >= OS {
                let x = xr - OS;
                let f = if use_flat { flat(x, y) } else { 1.0 };
                v += signal(x, y) * f + DARK_RATE * exptime + bias_pattern(x, y);
            }
            px[y * rw + xr] = v;
        }
    }
    px
}

fn write(path: &std::path::Path, px: &[f64], exptime: f64, extra: &[(&str, HeaderValue)]) {
    let mut cards: Vec<(&str, HeaderValue)> = vec![
        ("INSTRUME", HeaderValue::Str("simulator".into())),
        ("FILTER", HeaderValue::Str("r".into())),
        ("CCDSUM", HeaderValue::Str("1 1".into())),
        ("EXPTIME", HeaderValue::Float(exptime)),
        ("DATE-OBS", HeaderValue::Str("2026-11-20T03:00:00".into())),
        ("BIASSEC", HeaderValue::Str(format!("[1:{OS},1:{H}]"))),
        (
            "TRIMSEC",
            HeaderValue::Str(format!("[{}:{},1:{H}]", OS + 1, OS + W)),
        ),
    ];
    cards.extend(extra.iter().cloned());
    let mut w = FitsWriter::new();
    w.image(W + OS, H, px, Encoding::F32, &cards);
    std::fs::write(path, w.finish()).unwrap();
}

#[tokio::test]
async fn masters_are_built_and_applied_by_ingest() {
    let s = Scratch::new("calib");
    let mut rng = Rng::new(77);
    let mut args: Vec<String> = vec!["calib".into(), "build".into()];
    for (kind, exptime, n) in [("bias", 0.0, 5), ("dark", 100.0, 5), ("flat", 2.0, 5)] {
        args.push(format!("--{kind}"));
        for i in 0..n {
            let p = s.path(&format!("{kind}{i}.fits"));
            let px = match kind {
                "flat" => raw(&|_, _| 20000.0, exptime, true, &mut rng, 3.0),
                _ => raw(&|_, _| 0.0, exptime, false, &mut rng, 3.0),
            };
            write(&p, &px, exptime, &[]);
            args.push(p.display().to_string());
        }
    }
    let masters = s.path("masters");
    args.extend([
        "--out".into(),
        masters.display().to_string(),
        "--json".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let report: serde_json::Value = serde_json::from_str(&astropipe_ok(&[], &argv)).unwrap();
    let built = report["masters"].as_array().unwrap();
    assert_eq!(built.len(), 3, "{report}");
    let by_kind = |k: &str| built.iter().find(|m| m["kind"] == k).unwrap().clone();
    assert!((by_kind("dark")["median"].as_f64().unwrap() - DARK_RATE).abs() < 0.01);
    assert!((by_kind("flat")["median"].as_f64().unwrap() - 1.0).abs() < 1e-3);
    // The bad column (response 0.2) is in the bad-pixel mask, and nothing else is.
    assert_eq!(by_kind("flat")["bad_pixels"], H);
    // Provenance in the header; the master bias is the bias pattern (overscan removed).
    let f = FitsFile::open(std::path::Path::new(
        by_kind("bias")["path"].as_str().unwrap(),
    ))
    .unwrap();
    let h = &f.hdu(0).unwrap().header;
    assert_eq!(h.str("MASTER"), Some("BIAS"));
    assert_eq!(h.i64("NCOMBINE"), Some(5));
    assert_eq!(h.str("INPUT001"), Some("bias0.fits"));
    assert!(h.str("COMBINE").unwrap().contains("clipped median"));
    let img = f.read_plane::<f32>(f.hdu(0).unwrap(), 0).unwrap();
    assert_eq!((img.width, img.height), (W, H));
    // Residual: the noise of a 5-frame median (about 3 × 1.25 / √5 ≈ 1.7 ADU), no offset.
    let resid: Vec<f64> = (0..W * H)
        .map(|i| img.pixels[i] as f64 - bias_pattern(i % W, i / W))
        .collect();
    let mean = resid.iter().sum::<f64>() / resid.len() as f64;
    let rms = (resid.iter().map(|r| r * r).sum::<f64>() / resid.len() as f64).sqrt();
    assert!(
        mean.abs() < 0.2 && rms < 2.2,
        "master bias residual mean {mean}, rms {rms}"
    );

    // A science frame: stars with a WCS whose CRPIX counts the overscan columns.
    let spec = FrameSpec {
        width: W,
        height: H,
        n_stars: 25,
        log_flux: (4.0, 4.5),
        noise: 0.0,
        sky: 200.0,
        ..FrameSpec::default()
    };
    let truth = spec.generate();
    let signal = |x: usize, y: usize| truth.pixels[y * W + x];
    let sci = raw(&signal, 60.0, true, &mut rng, 3.0);
    let mut cards: Vec<(&str, HeaderValue)> = spec
        .cards()
        .into_iter()
        .filter(|(k, _)| !["INSTRUME", "FILTER", "EXPTIME", "DATE-OBS", "GAIN"].contains(k))
        .collect();
    for c in cards.iter_mut() {
        if c.0 == "CRPIX1"
            && let HeaderValue::Float(v) = c.1
        {
            c.1 = HeaderValue::Float(v + OS as f64);
        }
    }
    let sci_path = s.path("science.fits");
    write(&sci_path, &sci, 60.0, &cards);

    let calibrated = s.path("cat_calib");
    let plain = s.path("cat_plain");
    let sci_s = sci_path.display().to_string();
    astropipe_ok(
        &[],
        &[
            "ingest",
            &sci_s,
            "--catalog",
            &calibrated.display().to_string(),
            "--calib",
            &masters.display().to_string(),
        ],
    );
    astropipe_ok(
        &[],
        &["ingest", &sci_s, "--catalog", &plain.display().to_string()],
    );
    let used = query_strings(
        &calibrated,
        "SELECT concat_ws(' ', calib_bias, calib_dark, calib_flat) FROM exposures",
    )
    .await;
    assert_eq!(used.len(), 1);
    assert!(
        used[0].starts_with("bias_simulator_1x1_20261120.fits dark_simulator_1x1_20261120.fits flat_simulator_1x1_r_20261120.fits"),
        "{used:?}"
    );
    assert_eq!(
        query_strings(
            &plain,
            "SELECT count(*) FROM exposures WHERE calib_flat IS NULL"
        )
        .await,
        vec!["1"]
    );

    // Star fluxes: within 2% of the truth when calibrated, off by the flat when not.
    let ratios = async |cat: std::path::PathBuf| {
        let rows = query_strings(
            &cat,
            "SELECT concat_ws(' ', ra, dec, flux_auto, flags) FROM sources",
        )
        .await;
        let mut out = Vec::new();
        for r in rows {
            let v: Vec<f64> = r.split(' ').map(|x| x.parse().unwrap()).collect();
            let cosd = v[1].to_radians().cos();
            if let Some(star) = truth
                .stars
                .iter()
                .find(|st| ((st.ra - v[0]) * cosd).hypot(st.dec - v[1]) * 3600.0 < 0.5)
            {
                let x = star.x.round() as usize;
                if (x as i64 - BAD_COLUMN as i64).abs() > 8 && v[3] as i64 & 1024 == 0 {
                    out.push(v[2] / star.flux);
                }
            }
        }
        out
    };
    let cal = ratios(calibrated.clone()).await;
    let raw_r = ratios(plain.clone()).await;
    assert!(
        cal.len() >= 18,
        "only {} stars matched within 0.5″ after trimming",
        cal.len()
    );
    let worst_cal = cal.iter().map(|r| (r - 1.0).abs()).fold(0f64, f64::max);
    let worst_raw = raw_r.iter().map(|r| (r - 1.0).abs()).fold(0f64, f64::max);
    eprintln!(
        "calibrated: {} stars, worst |flux/truth - 1| {worst_cal:.4}; uncalibrated: {worst_raw:.4}",
        cal.len()
    );
    assert!(
        worst_cal < 0.03,
        "calibrated fluxes off by up to {worst_cal}"
    );
    assert!(worst_raw > 0.1, "the flat should bias uncalibrated fluxes");
}
