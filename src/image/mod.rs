//! Image science, one stage per file, run on one image plane by [`extract`]:
//!
//! - [`background`]: SExtractor mesh background and RMS maps;
//! - [`detect`]: matched filter, threshold, 8-connected labelling; [`deblend`]: 32-level
//!   multi-threshold deblending;
//! - [`measure`]: centroids, shapes, aperture and AUTO fluxes, flags ([`aperture`] holds the
//!   aperture sums, [`flags`] the flag bits);
//! - [`quality`]: per-exposure metrics.
//!
//! Calibration, cosmic-ray rejection and deblending will each join as their own stage here.

pub mod aperture;
pub mod background;
pub mod deblend;
pub mod detect;
pub mod flags;
pub mod measure;
pub mod quality;

use background::{Background, BackgroundOptions};
use detect::DetectOptions;
use measure::{MeasureOptions, Measurement};
use rayon::prelude::*;

/// All settings of the extraction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtractOptions {
    pub background: BackgroundOptions,
    pub detect: DetectOptions,
    pub measure: MeasureOptions,
    /// Raw pixel level at or above which a pixel counts as saturated.
    pub saturation: Option<f64>,
}

/// The result of extracting one image.
#[derive(Debug, Clone)]
pub struct Extraction {
    pub global_back: f32,
    pub global_rms: f32,
    pub sources: Vec<Source>,
}

/// A measured source with the background under it.
#[derive(Debug, Clone)]
pub struct Source {
    pub m: Measurement,
    /// Background level (ADU) at the source position.
    pub background: f64,
}

/// Runs background, detection and measurement on one image (`pixels` row-major, physical
/// values, NaN for invalid pixels). The image buffer is consumed (background-subtracted in
/// place).
pub fn extract(
    mut pixels: Vec<f32>,
    width: usize,
    height: usize,
    opts: &ExtractOptions,
) -> Extraction {
    let saturated_mask: Option<Vec<bool>> = opts.saturation.map(|level| {
        let level = level as f32;
        pixels.par_iter().map(|&v| v >= level).collect()
    });
    let bkg = Background::estimate(&pixels, width, height, opts.background);
    let rms = bkg.subtract_and_rms(&mut pixels);
    let objects = detect::detect(&pixels, &rms, width, height, &opts.detect);
    let is_sat = |x: usize, y: usize| saturated_mask.as_ref().is_some_and(|m| m[y * width + x]);
    let sources = objects
        .par_iter()
        .map(|obj| {
            let m = measure::measure(obj, &pixels, &rms, width, height, &opts.measure, &is_sat);
            let background = background_at(&bkg, m.x, m.y);
            Source { m, background }
        })
        .collect();
    Extraction {
        global_back: bkg.global_back,
        global_rms: bkg.global_rms,
        sources,
    }
}

fn background_at(bkg: &Background, x: f64, y: f64) -> f64 {
    let xi = (x.round().max(0.0) as usize).min(bkg.width.saturating_sub(1));
    let yi = (y.round().max(0.0) as usize).min(bkg.height.saturating_sub(1));
    let mut row = vec![0f32; bkg.width];
    bkg.back_row(yi, &mut row);
    row[xi] as f64
}
