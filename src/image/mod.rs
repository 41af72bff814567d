//! Image science, one stage per file, run on one image plane by [`extract`]:
//!
//! - [`cosmic`]: L.A.Cosmic cosmic-ray detection and cleaning (astroscrappy's conventions);
//! - [`background`]: SExtractor mesh background and RMS maps;
//! - [`detect`]: matched filter, threshold, 8-connected labelling; [`deblend`]: 32-level
//!   multi-threshold deblending;
//! - [`measure`]: isophotal and windowed centroids, shapes, aperture and AUTO fluxes,
//!   half-light radius, FWHM, flags ([`aperture`] holds the aperture sums, [`flags`] the flag
//!   bits); the neighbours flag is set here, across sources;
//! - [`quality`]: per-exposure metrics;
//! - [`preview`]: the picture of `astropipe preview` (a PNG through the `png` crate).
//!
//! Calibration comes before (the ingest's pipeline applies [`crate::calib`]'s masters).
//! Not implemented: SExtractor's CLEAN pass (merging spurious detections in bright wings).

pub mod aperture;
pub mod background;
pub mod cosmic;
pub mod deblend;
pub mod detect;
pub mod flags;
pub mod measure;
pub mod preview;
pub mod quality;

use background::{Background, BackgroundOptions};
use cosmic::CosmicOptions;
use detect::DetectOptions;
use measure::{MeasureOptions, Measurement};
use rayon::prelude::*;

/// All settings of the extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractOptions {
    /// Cosmic-ray rejection (on by default; `None` turns it off).
    pub cosmic: Option<CosmicOptions>,
    /// Whether the read noise was configured (else the header's RDNOISE wins).
    pub readnoise_set: bool,
    pub background: BackgroundOptions,
    pub detect: DetectOptions,
    pub measure: MeasureOptions,
    /// Raw pixel level at or above which a pixel counts as saturated.
    pub saturation: Option<f64>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            cosmic: Some(CosmicOptions::default()),
            readnoise_set: false,
            background: BackgroundOptions::default(),
            detect: DetectOptions::default(),
            measure: MeasureOptions::default(),
            saturation: None,
        }
    }
}

/// The result of extracting one image.
#[derive(Debug, Clone)]
pub struct Extraction {
    pub global_back: f32,
    pub global_rms: f32,
    pub sources: Vec<Source>,
    /// Pixels flagged (and cleaned) as cosmic-ray hits.
    pub cosmic_ray_pixels: usize,
    /// Which pixels those are (when cosmic-ray rejection ran).
    pub cosmic_mask: Option<Vec<bool>>,
}

/// A measured source with the background under it.
#[derive(Debug, Clone)]
pub struct Source {
    pub m: Measurement,
    /// Background level (ADU) at the source position.
    pub background: f64,
}

/// Runs cosmic-ray rejection, background, detection and measurement on one image (`pixels`
/// row-major, physical values, NaN for invalid pixels). The image buffer is consumed (cleaned
/// and background-subtracted in place). Hits are cleaned before detection, so they never
/// become sources; a source with a hit among its pixels is flagged `COSMIC_RAY`.
pub fn extract(pixels: Vec<f32>, width: usize, height: usize, opts: &ExtractOptions) -> Extraction {
    let saturated = opts.saturation.map(|level| saturation_mask(&pixels, level));
    extract_with_mask(pixels, width, height, opts, saturated)
}

/// Pixels at or above `level`.
pub fn saturation_mask(pixels: &[f32], level: f64) -> Vec<bool> {
    let level = level as f32;
    pixels.par_iter().map(|&v| v >= level).collect()
}

/// [`extract`] with the saturated pixels given (e.g. found on the raw frame before
/// calibration changed the levels).
pub fn extract_with_mask(
    mut pixels: Vec<f32>,
    width: usize,
    height: usize,
    opts: &ExtractOptions,
    saturated_mask: Option<Vec<bool>>,
) -> Extraction {
    let cr_mask = opts.cosmic.as_ref().map(|c| {
        let mut c = *c;
        if let Some(g) = opts.measure.gain.filter(|g| *g > 0.0) {
            c.gain = g as f32;
        }
        if let Some(level) = opts.saturation {
            c.satlevel = level as f32 * c.gain;
        }
        cosmic::clean(&mut pixels, width, height, None, &c)
    });
    let cosmic_ray_pixels = cr_mask
        .as_ref()
        .map_or(0, |m| m.iter().filter(|b| **b).count());
    let bkg = Background::estimate(&pixels, width, height, opts.background);
    let rms = bkg.subtract_and_rms(&mut pixels);
    let objects = detect::detect(&pixels, &rms, width, height, &opts.detect);
    let is_sat = |x: usize, y: usize| saturated_mask.as_ref().is_some_and(|m| m[y * width + x]);
    let is_cr = |x: usize, y: usize| cr_mask.as_ref().is_some_and(|m| m[y * width + x]);
    let mut sources: Vec<Source> = objects
        .par_iter()
        .map(|obj| {
            let mut m = measure::measure(obj, &pixels, &rms, width, height, &opts.measure, &is_sat);
            if obj.pixels().any(|(x, y)| is_cr(x, y)) {
                m.flags |= flags::COSMIC_RAY;
            }
            let background = background_at(&bkg, m.x, m.y);
            Source { m, background }
        })
        .collect();
    flag_neighbours(&mut sources, &opts.measure);
    Extraction {
        global_back: bkg.global_back,
        global_rms: bkg.global_rms,
        sources,
        cosmic_ray_pixels,
        cosmic_mask: cr_mask,
    }
}

/// SExtractor's flag 1: another detection at least a tenth as bright (isophotal flux) lies
/// within the AUTO aperture (its centre within the Kron ellipse's semi-major axis plus two of
/// its own semi-major axes), so it biases the AUTO flux.
fn flag_neighbours(sources: &mut [Source], opts: &MeasureOptions) {
    const CELL: f64 = 32.0;
    let key = |x: f64, y: f64| ((x / CELL).floor() as i64, (y / CELL).floor() as i64);
    let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> =
        std::collections::HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        grid.entry(key(s.m.x, s.m.y)).or_default().push(i);
    }
    let flagged: Vec<usize> = (0..sources.len())
        .into_par_iter()
        .filter(|&i| {
            let m = &sources[i].m;
            let reach = (opts.kron_factor * m.kron_radius).max(opts.kron_min_radius) * m.a.max(0.5);
            let (cx, cy) = key(m.x, m.y);
            let cells = (reach / CELL).ceil() as i64 + 1;
            for gy in cy - cells..=cy + cells {
                for gx in cx - cells..=cx + cells {
                    for &j in grid.get(&(gx, gy)).into_iter().flatten() {
                        let o = &sources[j].m;
                        if j != i
                            && o.flux_iso > 0.1 * m.flux_iso
                            && (o.x - m.x).hypot(o.y - m.y) < reach + 2.0 * o.a
                        {
                            return true;
                        }
                    }
                }
            }
            false
        })
        .collect();
    for i in flagged {
        sources[i].m.flags |= flags::NEIGHBOURS;
    }
}

fn background_at(bkg: &Background, x: f64, y: f64) -> f64 {
    let xi = (x.round().max(0.0) as usize).min(bkg.width.saturating_sub(1));
    let yi = (y.round().max(0.0) as usize).min(bkg.height.saturating_sub(1));
    bkg.back_at(xi, yi) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_bright_pairs_are_flagged_as_neighbours_and_isolated_stars_are_not() {
        let (w, h) = (96, 64);
        let mut img = vec![100f32; w * h];
        for &(cx, cy, f) in &[
            (30.0, 30.0, 5000.0),
            (36.0, 31.0, 4000.0),
            (75.0, 30.0, 5000.0),
        ] {
            for y in 0..h {
                for x in 0..w {
                    let r2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    img[y * w + x] +=
                        (f / (2.0 * std::f64::consts::PI * 2.25) * (-0.5 * r2 / 2.25).exp()) as f32;
                }
            }
        }
        // A little deterministic noise so the background has an RMS.
        for (i, v) in img.iter_mut().enumerate() {
            *v += ((i * 7919 % 13) as f32 - 6.0) * 0.5;
        }
        let ex = extract(
            img,
            w,
            h,
            &ExtractOptions {
                cosmic: None,
                ..Default::default()
            },
        );
        let near = |x: f64| ex.sources.iter().find(|s| (s.m.x - x).abs() < 2.0).unwrap();
        assert!(near(30.0).m.flags & flags::NEIGHBOURS != 0);
        assert!(near(36.0).m.flags & flags::NEIGHBOURS != 0);
        assert_eq!(near(75.0).m.flags & flags::NEIGHBOURS, 0);
    }
}
