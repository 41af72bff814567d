//! Image-science timings for `benches/image_vs_reference.py` (which runs SEP, astroscrappy and
//! numpy on the same frame in the same run and prints the ratios). Usage:
//! `cargo bench --bench image_stages -- FILE`, FILE a 4096² float32 FITS frame. Prints JSON:
//! median seconds over the repetitions of each stage, on one thread and on all cores.

use astropipe::calib::combine::{Method, combine};
use astropipe::fits::FitsFile;
use astropipe::image::cosmic::{CosmicOptions, clean};
use astropipe::image::{ExtractOptions, extract};
mod common;

use common::*;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: cargo bench --bench image_stages -- FILE (see benches/image_vs_reference.py)"
        );
        return;
    };
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // STAGES=extract,lacosmic,combine (default all): what to time, e.g. under a profiler.
    let stages = std::env::var("STAGES").unwrap_or_else(|_| "extract,lacosmic,combine".into());
    let want = |s: &str| stages.split(',').any(|x| x == s);
    let f = FitsFile::open(std::path::Path::new(&path)).unwrap();
    let img = f.read_plane::<f32>(f.hdu(0).unwrap(), 0).unwrap();
    let (w, h) = (img.width, img.height);
    let no_cr = ExtractOptions {
        cosmic: None,
        ..Default::default()
    };
    // The same L.A.Cosmic settings bench_image.py gives astroscrappy.
    let cr = CosmicOptions {
        gain: 1.0,
        readnoise: 10.0,
        satlevel: 1e9,
        ..Default::default()
    };
    let with_cr = ExtractOptions {
        cosmic: Some(cr),
        ..Default::default()
    };
    let mut out = serde_json::Map::new();
    if want("parts") {
        use astropipe::image::background::{Background, BackgroundOptions};
        use astropipe::image::detect::{DetectOptions, convolve, detect};
        use astropipe::image::measure::{MeasureOptions, measure};
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            let (t, bkg) = time(reps, || {
                Background::estimate(&img.pixels, w, h, BackgroundOptions::default())
            });
            out.insert("part_background".into(), t.into());
            let mut px = img.pixels.clone();
            let (t, _) = time_consuming(
                1,
                || img.pixels.clone(),
                |mut p| bkg.subtract_and_rms(&mut p),
            );
            out.insert("part_subtract_and_rms".into(), t.into());
            let rms = bkg.subtract_and_rms(&mut px);
            let d = DetectOptions::default();
            let (t, _) = time(reps, || convolve(&px, w, h, d.kernel.as_ref().unwrap()));
            out.insert("part_convolve".into(), t.into());
            let nodeb = DetectOptions {
                deblend: Default::default(),
                ..d.clone()
            };
            let (t, objs) = time(reps, || detect(&px, &rms, w, h, &nodeb));
            out.insert("part_detect_with_deblend".into(), t.into());
            let m = MeasureOptions::default();
            let (t, _) = time(reps, || {
                objs.iter()
                    .map(|o| measure(o, &px, &rms, w, h, &m, &|_, _| false))
                    .collect::<Vec<_>>()
            });
            out.insert("part_measure".into(), t.into());
        });
    }
    let threads = rayon::current_num_threads();
    for (label, pool_threads) in [("1", 1), ("all", threads)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool_threads)
            .build()
            .unwrap();
        pool.install(|| {
            if want("extract") {
                let (t, ex) =
                    time_consuming(reps, || img.pixels.clone(), |px| extract(px, w, h, &no_cr));
                out.insert(format!("extract_threads_{label}"), t.into());
                out.insert("n_sources".into(), ex.sources.len().into());
            }
            if !want("lacosmic") {
                return;
            }
            let (t, mask) = time_consuming(
                reps,
                || img.pixels.clone(),
                |mut px| clean(&mut px, w, h, None, &cr),
            );
            out.insert(format!("lacosmic_threads_{label}"), t.into());
            out.insert(
                "lacosmic_pixels".into(),
                mask.iter().filter(|m| **m).count().into(),
            );
            let (t, _) = time_consuming(
                reps,
                || img.pixels.clone(),
                |px| extract(px, w, h, &with_cr),
            );
            out.insert(format!("extract_with_cosmics_threads_{label}"), t.into());
        });
    }
    if !want("combine") {
        println!("{}", serde_json::Value::Object(out));
        return;
    }
    // Median of 10 frames of 4096² (Gaussian noise around 500, as bench_image.py's biases).
    let mut rng = astropipe::synthetic::Rng::new(7);
    let stack: Vec<Vec<f32>> = (0..10)
        .map(|_| {
            (0..w * h)
                .map(|_| (500.0 + 5.0 * rng.normal()) as f32)
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = stack.iter().map(|v| v.as_slice()).collect();
    let (t, _) = time(reps, || combine(&refs, Method::Median));
    out.insert("median_combine_10".into(), t.into());
    let (t, _) = time(reps, || {
        combine(&refs, Method::ClippedMedian { sigma: 3.0 })
    });
    out.insert("clipped_median_combine_10".into(), t.into());
    out.insert("threads".into(), threads.into());
    println!("{}", serde_json::Value::Object(out));
}
