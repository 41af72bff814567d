//! Per-exposure quality metrics from the measured sources.

use super::{Extraction, flags};

/// Quality summary of one exposure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub background_level: f64,
    pub background_rms: f64,
    /// Median FWHM (pixels) of unflagged, well-detected sources.
    pub fwhm_pix: Option<f64>,
    /// Median ellipticity 1 − b/a of the same sources.
    pub ellipticity: Option<f64>,
    pub n_sources: usize,
}

/// Sources used for the seeing and shape statistics: S/N ≥ 20 and none of the flags that
/// distort a profile (saturated, truncated, bad pixels, blended, neighbours, cosmic ray).
pub fn quality(ex: &Extraction) -> Quality {
    let good: Vec<_> = ex
        .sources
        .iter()
        .filter(|s| {
            s.m.flags
                & (flags::SATURATED
                    | flags::TRUNCATED
                    | flags::BAD_PIXELS
                    | flags::BLENDED
                    | flags::NEIGHBOURS
                    | flags::COSMIC_RAY)
                == 0
                && s.m.snr() >= 20.0
        })
        .collect();
    let med = |mut v: Vec<f64>| -> Option<f64> {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        })
    };
    Quality {
        background_level: ex.global_back as f64,
        background_rms: ex.global_rms as f64,
        fwhm_pix: med(good.iter().map(|s| s.m.fwhm).collect()),
        ellipticity: med(good.iter().map(|s| s.m.ellipticity()).collect()),
        n_sources: ex.sources.len(),
    }
}
