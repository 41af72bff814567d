//! Image science against SEP on the same frame: `tests/golden/` holds a synthetic star field
//! (truth known) and what SEP 1.4 measured on it (`make_sep_golden.py` says exactly how).
//! Background within 0.1% of SEP's; circular apertures within 0.1% of SEP's exact ones;
//! completeness at S/N ≥ 10 no lower than SEP's, false detections no more than SEP's,
//! windowed centroids no further from the truth than SEP's, AUTO fluxes of bright stars
//! within 1% of the truth.

use astropipe::fits::FitsFile;
use astropipe::image::aperture::sum_circle;
use astropipe::image::background::{Background, BackgroundOptions};
use astropipe::image::{ExtractOptions, extract};
use serde_json::Value;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    super::helpers::repo_root().join("tests/golden")
}

fn golden() -> Value {
    serde_json::from_slice(&std::fs::read(golden_dir().join("sep_golden.json")).unwrap()).unwrap()
}

fn column(v: &Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no column {key}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn frame() -> (Vec<f32>, usize, usize) {
    let f = FitsFile::open(&golden_dir().join("sep_frame.fits.gz")).unwrap();
    let img = f.read_plane::<f32>(f.hdu(0).unwrap(), 0).unwrap();
    (img.pixels, img.width, img.height)
}

struct Truth {
    x: Vec<f64>,
    y: Vec<f64>,
    flux: Vec<f64>,
    snr: Vec<f64>,
}

fn truth(g: &Value) -> Truth {
    let t = &g["truth"];
    let flux = column(t, "flux");
    let (sig, noise) = (
        t["psf_sigma"].as_f64().unwrap(),
        t["noise"].as_f64().unwrap(),
    );
    // Noise-limited S/N of a Gaussian star measured optimally: F / (σ_n √(4π) σ_psf).
    let snr = flux
        .iter()
        .map(|f| f / (noise * (4.0 * std::f64::consts::PI).sqrt() * sig))
        .collect();
    Truth {
        x: column(t, "x"),
        y: column(t, "y"),
        flux,
        snr,
    }
}

/// Index of the nearest position within `r` pixels of (x, y).
fn nearest(xs: &[f64], ys: &[f64], x: f64, y: f64, r: f64) -> Option<usize> {
    let mut best = None;
    let mut bd = r * r;
    for i in 0..xs.len() {
        let d = (xs[i] - x).powi(2) + (ys[i] - y).powi(2);
        if d <= bd {
            bd = d;
            best = Some(i);
        }
    }
    best
}

struct Scores {
    completeness: f64,
    false_detections: usize,
    median_centroid_error: f64,
    /// Centroid error of each truth star with S/N ≥ 10 (None when not found).
    errors: Vec<Option<f64>>,
}

/// Median centroid error over the stars both lists found.
fn common_median(a: &Scores, b: &Scores) -> (f64, f64, usize) {
    let (mut ea, mut eb): (Vec<f64>, Vec<f64>) = a
        .errors
        .iter()
        .zip(&b.errors)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .unzip();
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|p, q| p.total_cmp(q));
        v[v.len() / 2]
    };
    let n = ea.len();
    (med(&mut ea), med(&mut eb), n)
}

/// Completeness over truth stars with S/N ≥ 10 (a detection within 1.5 px), false detections
/// (no truth star within 1.5 px... of any flux), and the median centroid error of stars
/// with S/N ≥ 10.
fn score(t: &Truth, xs: &[f64], ys: &[f64]) -> Scores {
    let (mut n, mut found) = (0, 0);
    let mut errs = Vec::new();
    let mut errors = Vec::new();
    for i in 0..t.x.len() {
        if t.snr[i] < 10.0 {
            continue;
        }
        n += 1;
        let e = nearest(xs, ys, t.x[i], t.y[i], 1.5)
            .map(|j| ((xs[j] - t.x[i]).powi(2) + (ys[j] - t.y[i]).powi(2)).sqrt());
        if let Some(e) = e {
            found += 1;
            errs.push(e);
        }
        errors.push(e);
    }
    let false_detections = (0..xs.len())
        .filter(|&j| nearest(&t.x, &t.y, xs[j], ys[j], 1.5).is_none())
        .count();
    errs.sort_by(|a, b| a.total_cmp(b));
    Scores {
        completeness: found as f64 / n as f64,
        false_detections,
        median_centroid_error: errs[errs.len() / 2],
        errors,
    }
}

#[test]
fn background_agrees_with_sep_within_a_thousandth() {
    let g = golden();
    let b = &g["background"];
    let (px, w, h) = frame();
    let bkg = Background::estimate(&px, w, h, BackgroundOptions::default());
    let gb = b["global_back"].as_f64().unwrap();
    let gr = b["global_rms"].as_f64().unwrap();
    assert!(
        (bkg.global_back as f64 / gb - 1.0).abs() < 1e-3,
        "global back {} vs SEP {gb}",
        bkg.global_back
    );
    assert!(
        (bkg.global_rms as f64 / gr - 1.0).abs() < 1e-2,
        "global rms {} vs SEP {gr}",
        bkg.global_rms
    );
    let (start, step) = (
        b["sample_start"].as_u64().unwrap() as usize,
        b["sample_step"].as_u64().unwrap() as usize,
    );
    let (sep_back, sep_rms) = (column(b, "back"), column(b, "rms"));
    let mut row = vec![0f32; w];
    let mut rrow = vec![0f32; w];
    let (mut worst_b, mut worst_r) = (0f64, 0f64);
    let mut k = 0;
    for y in (start..h).step_by(step) {
        bkg.back_row(y, &mut row);
        bkg.rms_row(y, &mut rrow);
        for x in (start..w).step_by(step) {
            worst_b = worst_b.max((row[x] as f64 / sep_back[k] - 1.0).abs());
            worst_r = worst_r.max((rrow[x] as f64 / sep_rms[k] - 1.0).abs());
            k += 1;
        }
    }
    assert_eq!(k, sep_back.len());
    eprintln!(
        "background: worst relative difference to SEP: back {worst_b:.2e}, rms {worst_r:.2e}"
    );
    assert!(
        worst_b < 1e-3,
        "background map differs from SEP's by {worst_b:.2e}"
    );
    assert!(
        worst_r < 1e-2,
        "RMS map differs from SEP's by {worst_r:.2e}"
    );
}

#[test]
fn circular_apertures_match_seps_exact_overlap() {
    let g = golden();
    let t = truth(&g);
    let (px, w, h) = frame();
    let zero = vec![0f32; px.len()];
    let mut worst = 0f64;
    for (r, sep) in g["apertures"].as_object().unwrap() {
        let r: f64 = r.parse().unwrap();
        let sep: Vec<f64> = sep
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for ((x, y), sep) in t.x.iter().zip(&t.y).zip(&sep) {
            let ours = sum_circle(&px, &zero, w, h, *x, *y, r).flux;
            worst = worst.max((ours / sep - 1.0).abs());
        }
    }
    eprintln!("apertures: worst relative difference to SEP {worst:.2e}");
    assert!(
        worst < 1e-3,
        "aperture sums differ from SEP's by {worst:.2e}"
    );
}

#[test]
fn extraction_is_at_least_as_good_as_seps() {
    let g = golden();
    let t = truth(&g);
    let o = &g["objects"];
    let (px, w, h) = frame();
    let ex = extract(px, w, h, &ExtractOptions::default());
    let (ox, oy): (Vec<f64>, Vec<f64>) = ex.sources.iter().map(|s| (s.m.x, s.m.y)).unzip();
    let (wx, wy): (Vec<f64>, Vec<f64>) = ex.sources.iter().map(|s| (s.m.x_win, s.m.y_win)).unzip();
    let sep = score(&t, &column(o, "x"), &column(o, "y"));
    let sep_win = score(&t, &column(o, "xwin"), &column(o, "ywin"));
    let ours = score(&t, &ox, &oy);
    let ours_win = score(&t, &wx, &wy);
    eprintln!(
        "SEP: {} objects, completeness {:.4}, false {}, centroid err {:.4} (win {:.4}); \
         astropipe: {} objects, completeness {:.4}, false {}, centroid err {:.4} (win {:.4})",
        column(o, "x").len(),
        sep.completeness,
        sep.false_detections,
        sep.median_centroid_error,
        sep_win.median_centroid_error,
        ex.sources.len(),
        ours.completeness,
        ours.false_detections,
        ours.median_centroid_error,
        ours_win.median_centroid_error,
    );
    assert!(ours.completeness >= sep.completeness);
    assert!(ours.false_detections <= sep.false_detections);
    let (ours_common, sep_common, n_common) = common_median(&ours_win, &sep_win);
    eprintln!(
        "windowed centroid error over the {n_common} stars both found: astropipe {ours_common:.4}, SEP {sep_common:.4}"
    );
    assert!(ours_common <= sep_common);
    // AUTO flux of bright, isolated stars within 1% of the truth (median ratio).
    let mut ratios = Vec::new();
    for s in &ex.sources {
        if let Some(i) = nearest(&t.x, &t.y, s.m.x, s.m.y, 1.0) {
            let isolated = (0..t.x.len())
                .filter(|&j| j != i)
                .all(|j| (t.x[j] - t.x[i]).hypot(t.y[j] - t.y[i]) > 15.0);
            if t.snr[i] > 100.0 && isolated && s.m.flags == 0 {
                ratios.push(s.m.flux_auto / t.flux[i]);
            }
        }
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let med = ratios[ratios.len() / 2];
    eprintln!(
        "AUTO/truth for {} bright isolated stars: median {med:.4}",
        ratios.len()
    );
    assert!((med - 1.0).abs() < 0.01, "AUTO flux median ratio {med}");
}
