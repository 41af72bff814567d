//! L.A.Cosmic against astroscrappy 1.3 (`tests/golden/make_scrappy_golden.py` says how the
//! answers were made): on the real GMOS frame it flags what astroscrappy flags (≥ 95% both
//! ways); on a star field with injected hits it recovers ≥ 95% of them with no more false
//! flags than astroscrappy; and hits never become catalog sources.

use astropipe::fits::FitsFile;
use astropipe::image::cosmic::{CosmicOptions, clean};
use astropipe::image::{ExtractOptions, extract};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    super::helpers::repo_root()
}

fn golden() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("tests/golden/scrappy_golden.json")).unwrap())
        .unwrap()
}

fn indices(v: &Value) -> HashSet<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect()
}

fn read(path: PathBuf, hdu: usize) -> (Vec<f32>, usize, usize) {
    let f = FitsFile::open(&path).unwrap();
    let img = f.read_plane::<f32>(f.hdu(hdu).unwrap(), 0).unwrap();
    (img.pixels, img.width, img.height)
}

fn flagged(mask: &[bool]) -> HashSet<usize> {
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn gmos_hits_agree_with_astroscrappy() {
    let g = &golden()["gmos"];
    let (mut px, w, h) = read(root().join("tests/data/gmos.fits"), 1);
    assert_eq!((w, h), (200, 150));
    let opts = CosmicOptions {
        gain: g["gain"].as_f64().unwrap() as f32,
        readnoise: g["readnoise"].as_f64().unwrap() as f32,
        ..Default::default()
    };
    let ours = flagged(&clean(&mut px, w, h, None, &opts));
    let theirs = indices(&g["flagged"]);
    let both = ours.intersection(&theirs).count() as f64;
    let (recall, precision) = (both / theirs.len() as f64, both / ours.len() as f64);
    eprintln!(
        "gmos: astroscrappy {} pixels, astropipe {}, common {both} (recall {recall:.3}, precision {precision:.3})",
        theirs.len(),
        ours.len()
    );
    assert!(recall >= 0.95 && precision >= 0.95);
}

#[test]
fn injected_hits_are_recovered_and_never_become_sources() {
    let g = &golden()["injected"];
    let (mut px, w, h) = read(root().join("tests/golden/sep_frame.fits.gz"), 0);
    let hits: Vec<usize> = g["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    for (p, a) in hits.iter().zip(g["added"].as_array().unwrap()) {
        px[*p] += a.as_f64().unwrap() as f32;
    }
    let raw = px.clone();
    let opts = CosmicOptions {
        gain: g["gain"].as_f64().unwrap() as f32,
        readnoise: g["readnoise"].as_f64().unwrap() as f32,
        ..Default::default()
    };
    let ours = flagged(&clean(&mut px, w, h, None, &opts));
    let hit_set: HashSet<usize> = hits.iter().copied().collect();
    let theirs = indices(&g["flagged"]);
    let recovered = ours.intersection(&hit_set).count() as f64 / hit_set.len() as f64;
    let false_ours = ours.difference(&hit_set).count();
    let false_theirs = theirs.difference(&hit_set).count();
    eprintln!(
        "injected: {} hit pixels; astropipe recovers {recovered:.3}, {false_ours} false; astroscrappy recovers {:.3}, {false_theirs} false",
        hit_set.len(),
        theirs.intersection(&hit_set).count() as f64 / hit_set.len() as f64
    );
    assert!(recovered >= 0.95);
    assert!(false_ours <= false_theirs);

    // Through the whole extraction: no source sits on a hit.
    let ex = extract(
        raw,
        w,
        h,
        &ExtractOptions {
            cosmic: Some(opts),
            ..Default::default()
        },
    );
    let on_hit = ex
        .sources
        .iter()
        .filter(|s| {
            hits.iter().any(|&p| {
                let (x, y) = ((p % w) as f64, (p / w) as f64);
                (s.m.x - x).hypot(s.m.y - y) < 2.0
            })
        })
        .count();
    assert_eq!(on_hit, 0, "{on_hit} sources on cosmic-ray hits");
    assert!(ex.cosmic_ray_pixels >= hits.len() * 95 / 100);
}
