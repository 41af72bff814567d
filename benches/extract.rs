//! Criterion benches of the image kernels on a synthetic 2048² frame (1000 stars, the
//! `make_synthetic.py` model: sky 1000 + gradient, σ_noise 10, Gaussian PSF σ 1.5 px).
//! The comparison with SEP on the same frame is `benches/ingest_vs_sep.py`.

use astropipe::image::background::{Background, BackgroundOptions};
use astropipe::image::{ExtractOptions, extract};
use astropipe::synthetic::FrameSpec;
use criterion::{Criterion, criterion_group, criterion_main};

fn frame() -> (Vec<f32>, usize, usize) {
    let spec = FrameSpec {
        width: 2048,
        height: 2048,
        n_stars: 1000,
        log_flux: (2.5, 5.5),
        ..FrameSpec::default()
    };
    let f = spec.generate();
    (
        f.pixels.iter().map(|&v| v as f32).collect(),
        spec.width,
        spec.height,
    )
}

fn benches(c: &mut Criterion) {
    let (px, w, h) = frame();
    let mut g = c.benchmark_group("synthetic_2048");
    g.sample_size(10);
    g.bench_function("background", |b| {
        b.iter(|| Background::estimate(&px, w, h, BackgroundOptions::default()))
    });
    g.bench_function("background+detect+measure", |b| {
        b.iter(|| extract(px.clone(), w, h, &ExtractOptions::default()))
    });
    g.finish();
}

criterion_group!(extract_benches, benches);
criterion_main!(extract_benches);
