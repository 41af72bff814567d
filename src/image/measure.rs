//! Measurement of detected objects (SExtractor's definitions: Bertin & Arnouts 1996 §4;
//! Kron 1980 for the AUTO aperture): isophotal barycentre and its error, second moments and
//! the ellipse (a, b, θ), peak, circular aperture fluxes with exact pixel overlap, Kron radius
//! and AUTO flux, half-light radius, windowed centroid (SExtractor's XWIN/YWIN) and its error,
//! FWHM, and flags.

use super::aperture::{EllipseCoeffs, sum_circle, sum_ellipse};
use super::detect::Object;
use super::flags;

/// Settings of the measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOptions {
    /// Radii (pixels) of the circular apertures.
    pub aperture_radii: Vec<f64>,
    /// Detector gain (e⁻/ADU) for the Poisson term of flux errors; `None` = background only.
    pub gain: Option<f64>,
    /// Kron factor k and minimum radius (SExtractor PHOT_AUTOPARAMS 2.5, 3.5).
    pub kron_factor: f64,
    pub kron_min_radius: f64,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            aperture_radii: vec![3.0, 5.0, 8.0],
            gain: None,
            kron_factor: 2.5,
            kron_min_radius: 3.5,
        }
    }
}

/// Everything measured on one object; pixel coordinates are 0-based.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub x: f64,
    pub y: f64,
    /// Variances of the barycentre (pixels²).
    pub err_x2: f64,
    pub err_y2: f64,
    /// Windowed centroid (the barycentre when the iteration fails) and its variances.
    pub x_win: f64,
    pub y_win: f64,
    pub err_x_win2: f64,
    pub err_y_win2: f64,
    /// Radius holding half the isophotal flux (pixels; NaN when undefined), as SEP's
    /// `flux_radius` normalised by its `flux`; it sizes the centroid window.
    pub flux_radius: f64,
    pub x2: f64,
    pub y2: f64,
    pub xy: f64,
    pub a: f64,
    pub b: f64,
    /// Position angle of the major axis, degrees counter-clockwise from +x, in (−90, 90].
    pub theta_deg: f64,
    pub npix: usize,
    pub peak: f64,
    pub flux_iso: f64,
    pub flux_aper: Vec<f64>,
    pub flux_aper_err: Vec<f64>,
    pub kron_radius: f64,
    pub flux_auto: f64,
    pub flux_auto_err: f64,
    pub fwhm: f64,
    pub flags: i32,
}

impl Measurement {
    pub fn snr(&self) -> f64 {
        if self.flux_auto_err > 0.0 {
            self.flux_auto / self.flux_auto_err
        } else {
            f64::NAN
        }
    }

    pub fn ellipticity(&self) -> f64 {
        if self.a > 0.0 {
            1.0 - self.b / self.a
        } else {
            f64::NAN
        }
    }
}

/// Measures `obj` on the background-subtracted image `img` with its RMS map.
/// `saturated(x, y)` tells whether a raw pixel reached the saturation level.
pub fn measure(
    obj: &Object,
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    opts: &MeasureOptions,
    saturated: &dyn Fn(usize, usize) -> bool,
) -> Measurement {
    let mut fl = if obj.blended { flags::BLENDED } else { 0 };
    let mut mom = Moments::default();
    let mut peak = f64::NEG_INFINITY;
    let mut flux_iso = 0f64;
    for (x, y) in obj.pixels() {
        let v = img[y * width + x] as f64;
        if !v.is_finite() {
            fl |= flags::BAD_PIXELS;
            continue;
        }
        if saturated(x, y) {
            fl |= flags::SATURATED;
        }
        flux_iso += v;
        peak = peak.max(v);
        // Barycentre and moments use the positive part (pixels just above threshold can be
        // slightly negative in the unfiltered image).
        mom.add(x as f64, y as f64, v.max(0.0));
    }
    let s = mom.s;
    let (xmin, xmax, ymin, ymax) = obj.bbox();
    if xmin == 0 || ymin == 0 || xmax + 1 >= width || ymax + 1 >= height {
        fl |= flags::TRUNCATED;
    }
    let (x, y, mut x2, mut y2, xy) = if s > 0.0 {
        mom.central()
    } else {
        fl |= flags::ISO_INCOMPLETE;
        let (cx, cy) = ((xmin + xmax) as f64 / 2.0, (ymin + ymax) as f64 / 2.0);
        (cx, cy, 1.0 / 12.0, 1.0 / 12.0, 0.0)
    };
    // Degenerate (single row/column) objects: add the variance of a uniform pixel.
    if x2 * y2 - xy * xy < 1.0 / 144.0 {
        x2 += 1.0 / 12.0;
        y2 += 1.0 / 12.0;
    }
    let (a, b, theta) = ellipse_from_moments(x2, y2, xy);
    // Barycentre errors: Σ σ_i² (x_i − x̄)² / (Σ I)².
    let (mut ex, mut ey) = (0f64, 0f64);
    if s > 0.0 {
        for (px, py) in obj.pixels() {
            let r = rms[py * width + px] as f64;
            let mut var = r * r;
            if let Some(g) = opts.gain.filter(|g| *g > 0.0) {
                var += (img[py * width + px] as f64).max(0.0) / g;
            }
            ex += var * (px as f64 - x).powi(2);
            ey += var * (py as f64 - y).powi(2);
        }
        ex /= s * s;
        ey /= s * s;
    }
    let poisson = |flux: f64| {
        opts.gain
            .filter(|g| *g > 0.0)
            .map_or(0.0, |g| flux.max(0.0) / g)
    };
    let mut flux_aper = Vec::with_capacity(opts.aperture_radii.len());
    let mut flux_aper_err = Vec::with_capacity(opts.aperture_radii.len());
    for &r in &opts.aperture_radii {
        let sum = sum_circle(img, rms, width, height, x, y, r);
        if sum.incomplete {
            fl |= flags::APER_INCOMPLETE;
        }
        flux_aper.push(sum.flux);
        flux_aper_err.push((sum.variance + poisson(sum.flux)).sqrt());
    }
    let kron_radius = kron_radius(img, width, height, x, y, a, b, theta);
    let scale = if kron_radius > 0.0 {
        (opts.kron_factor * kron_radius).max(opts.kron_min_radius)
    } else {
        opts.kron_min_radius
    };
    let auto = sum_ellipse(img, rms, width, height, x, y, a, b, theta, scale);
    if auto.incomplete {
        fl |= flags::APER_INCOMPLETE;
    }
    let fwhm = half_max_fwhm(obj, img, width, peak);
    let known: Vec<(f64, f64)> = opts
        .aperture_radii
        .iter()
        .copied()
        .zip(flux_aper.iter().copied())
        .collect();
    let flux_radius = flux_radius(
        img,
        rms,
        width,
        height,
        (x, y),
        flux_iso,
        0.5,
        (6.0 * a).max(3.0),
        &known,
    );
    // The window is a Gaussian whose FWHM is the half-light diameter (SExtractor, SEP).
    let win = if flux_radius.is_finite() {
        windowed_centroid(img, rms, width, height, x, y, 2.0 * flux_radius / 2.354_82)
    } else {
        None
    };
    let (x_win, y_win, err_x_win2, err_y_win2) = win.unwrap_or((x, y, ex, ey));
    Measurement {
        x,
        y,
        err_x2: ex,
        err_y2: ey,
        x_win,
        y_win,
        err_x_win2,
        err_y_win2,
        flux_radius,
        x2,
        y2,
        xy,
        a,
        b,
        theta_deg: theta.to_degrees(),
        npix: obj.npix,
        peak,
        flux_iso,
        flux_aper,
        flux_aper_err,
        kron_radius,
        flux_auto: auto.flux,
        flux_auto_err: (auto.variance + poisson(auto.flux)).sqrt(),
        fwhm,
        flags: fl,
    }
}

/// Weighted sums for a barycentre and second moments.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    pub s: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl Moments {
    #[inline]
    pub fn add(&mut self, x: f64, y: f64, w: f64) {
        self.s += w;
        self.sx += w * x;
        self.sy += w * y;
        self.sxx += w * x * x;
        self.syy += w * y * y;
        self.sxy += w * x * y;
    }

    /// (x̄, ȳ, x², y², xy) for a positive total weight.
    pub fn central(&self) -> (f64, f64, f64, f64, f64) {
        let (x, y) = (self.sx / self.s, self.sy / self.s);
        (
            x,
            y,
            self.sxx / self.s - x * x,
            self.syy / self.s - y * y,
            self.sxy / self.s - x * y,
        )
    }
}

/// Semi-axes and angle (radians) of the ellipse with second moments (x2, y2, xy).
pub fn ellipse_from_moments(x2: f64, y2: f64, xy: f64) -> (f64, f64, f64) {
    let mean = 0.5 * (x2 + y2);
    let diff = 0.5 * (x2 - y2);
    let root = (diff * diff + xy * xy).sqrt();
    let a = (mean + root).max(0.0).sqrt();
    let b = (mean - root).max(0.0).sqrt();
    let theta = if root > 0.0 {
        0.5 * (2.0 * xy).atan2(x2 - y2)
    } else {
        0.0
    };
    (a, b, theta)
}

/// Kron's first-moment radius, in units of (a, b), from the pixels within 6 (a, b)
/// (SExtractor; 0 when undefined).
#[allow(clippy::too_many_arguments)]
pub fn kron_radius(
    img: &[f32],
    width: usize,
    height: usize,
    x: f64,
    y: f64,
    a: f64,
    b: f64,
    theta: f64,
) -> f64 {
    const R: f64 = 6.0;
    if !(a > 0.0 && b > 0.0) {
        return 0.0;
    }
    let e = EllipseCoeffs::new(a, b, theta);
    let ext = R * a;
    let xmin = ((x - ext).floor().max(0.0)) as usize;
    let xmax = ((x + ext).ceil().min(width as f64 - 1.0)).max(0.0) as usize;
    let ymin = ((y - ext).floor().max(0.0)) as usize;
    let ymax = ((y + ext).ceil().min(height as f64 - 1.0)).max(0.0) as usize;
    let (mut r1, mut f) = (0f64, 0f64);
    for j in ymin..=ymax {
        for i in xmin..=xmax {
            let dx = i as f64 - x;
            let dy = j as f64 - y;
            let r2 = e.r2(dx, dy);
            if r2 > R * R {
                continue;
            }
            let v = img[j * width + i] as f64;
            if !v.is_finite() {
                continue;
            }
            r1 += r2.sqrt() * v;
            f += v;
        }
    }
    if f > 0.0 && r1 > 0.0 { r1 / f } else { 0.0 }
}

/// Radius of the circle around (x, y) holding `frac` of `total` (SExtractor's FLUX_RADIUS),
/// by bisection on exact-overlap circular apertures within `rmax`; NaN when undefined.
#[allow(clippy::too_many_arguments)]
pub fn flux_radius(
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    (x, y): (f64, f64),
    total: f64,
    frac: f64,
    rmax: f64,
    known: &[(f64, f64)],
) -> f64 {
    if total.is_nan() || total <= 0.0 || !x.is_finite() || !y.is_finite() {
        return f64::NAN;
    }
    let target = frac * total;
    let sum = |r: f64| sum_circle(img, rms, width, height, x, y, r).flux;
    // Bracket: the apertures already summed (`known`: radius, flux) narrow it when one of
    // them within `rmax` holds the target.
    let (mut lo, mut flo) = (0.0f64, -target);
    let mut bracket = None;
    let mut sorted: Vec<(f64, f64)> = known.iter().copied().filter(|k| k.0 <= rmax).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (r, f) in sorted {
        if f >= target {
            bracket = Some((r, f));
            break;
        }
        (lo, flo) = (r, f - target);
    }
    let (mut hi, at_hi) = match bracket {
        Some(b) => b,
        None => {
            (lo, flo) = (0.0, -target);
            (rmax, sum(rmax))
        }
    };
    if at_hi < target {
        return f64::NAN;
    }
    // Regula falsi (Illinois) on the smooth growth curve, to 0.005 px: the radius sizes a
    // centroid window, finer makes no difference there.
    let mut fhi = at_hi - target;
    let mut side = 0i8;
    let mut r = hi;
    for _ in 0..40 {
        if hi - lo < 5e-3 {
            break;
        }
        r = (lo * fhi - hi * flo) / (fhi - flo);
        if !(r > lo && r < hi) {
            r = 0.5 * (lo + hi);
        }
        let f = sum(r) - target;
        if f.abs() < 1e-6 * target {
            return r;
        }
        if f < 0.0 {
            (lo, flo) = (r, f);
            if side == -1 {
                fhi /= 2.0;
            }
            side = -1;
        } else {
            (hi, fhi) = (r, f);
            if side == 1 {
                flo /= 2.0;
            }
            side = 1;
        }
    }
    r
}

/// SExtractor's windowed centroid: iterates x ← x + 2 Σ w I (xᵢ − x) / Σ w I with a circular
/// Gaussian window of σ `sig` (over 4σ) until the step is below 10⁻⁴ pixel (at most 16
/// times). Returns (x, y, var x, var y), or `None` when the window holds no positive flux or
/// the position leaves the image.
pub fn windowed_centroid(
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    x0: f64,
    y0: f64,
    sig: f64,
) -> Option<(f64, f64, f64, f64)> {
    if sig.is_nan() || sig <= 0.0 {
        return None;
    }
    let (mut x, mut y) = (x0, y0);
    let inv2s2 = 1.0 / (2.0 * sig * sig);
    let rmax = 4.0 * sig;
    let bounds = |c: f64, n: usize| {
        let lo = (c - rmax).floor().max(0.0) as usize;
        let hi = ((c + rmax).ceil().min(n as f64 - 1.0)).max(0.0) as usize;
        (lo, hi)
    };
    for _ in 0..16 {
        let (xmin, xmax) = bounds(x, width);
        let (ymin, ymax) = bounds(y, height);
        let (mut tv, mut sx, mut sy) = (0f64, 0f64, 0f64);
        for j in ymin..=ymax {
            let dy = j as f64 - y;
            for i in xmin..=xmax {
                let dx = i as f64 - x;
                let r2 = dx * dx + dy * dy;
                if r2 > rmax * rmax {
                    continue;
                }
                let v = img[j * width + i] as f64;
                if !v.is_finite() {
                    continue;
                }
                let wv = (-r2 * inv2s2).exp() * v;
                tv += wv;
                sx += wv * dx;
                sy += wv * dy;
            }
        }
        if tv.is_nan() || tv <= 0.0 {
            return None;
        }
        let (stepx, stepy) = (2.0 * sx / tv, 2.0 * sy / tv);
        x += stepx;
        y += stepy;
        if !(x >= -0.5 && y >= -0.5 && x <= width as f64 - 0.5 && y <= height as f64 - 0.5) {
            return None;
        }
        if stepx * stepx + stepy * stepy < 1e-8 {
            break;
        }
    }
    // Errors: 4 Σ w² σᵢ² (xᵢ − x)² / (Σ w I)².
    let (xmin, xmax) = bounds(x, width);
    let (ymin, ymax) = bounds(y, height);
    let (mut tv, mut vx, mut vy) = (0f64, 0f64, 0f64);
    for j in ymin..=ymax {
        let dy = j as f64 - y;
        for i in xmin..=xmax {
            let dx = i as f64 - x;
            let r2 = dx * dx + dy * dy;
            let v = img[j * width + i] as f64;
            if r2 > rmax * rmax || !v.is_finite() {
                continue;
            }
            let w = (-r2 * inv2s2).exp();
            let sigma = rms.get(j * width + i).copied().unwrap_or(0.0) as f64;
            tv += w * v;
            vx += w * w * sigma * sigma * dx * dx;
            vy += w * w * sigma * sigma * dy * dy;
        }
    }
    if tv.is_nan() || tv <= 0.0 {
        return None;
    }
    Some((x, y, 4.0 * vx / (tv * tv), 4.0 * vy / (tv * tv)))
}

/// FWHM from the number of object pixels above half the peak, as for a circular profile:
/// 2 √(n / π).
fn half_max_fwhm(obj: &Object, img: &[f32], width: usize, peak: f64) -> f64 {
    if peak.is_nan() || peak <= 0.0 {
        return f64::NAN;
    }
    let half = peak / 2.0;
    let n = obj
        .pixels()
        .filter(|&(x, y)| img[y * width + x] as f64 >= half)
        .count();
    2.0 * (n as f64 / std::f64::consts::PI).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::detect::{DetectOptions, detect};

    fn gaussian_image(w: usize, h: usize, stars: &[(f64, f64, f64)], sigma: f64) -> Vec<f32> {
        let mut img = vec![0f32; w * h];
        for &(cx, cy, flux) in stars {
            let norm = flux / (2.0 * std::f64::consts::PI * sigma * sigma);
            for y in 0..h {
                for x in 0..w {
                    let r2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    img[y * w + x] += (norm * (-0.5 * r2 / (sigma * sigma)).exp()) as f32;
                }
            }
        }
        img
    }

    #[test]
    fn gaussian_star_is_measured() {
        let (w, h) = (64, 64);
        let img = gaussian_image(w, h, &[(30.3, 33.7, 10000.0)], 1.5);
        let rms = vec![1.0f32; w * h];
        let objs = detect(
            &img,
            &rms,
            w,
            h,
            &DetectOptions {
                kernel: None,
                ..Default::default()
            },
        );
        assert_eq!(objs.len(), 1);
        let m = measure(
            &objs[0],
            &img,
            &rms,
            w,
            h,
            &MeasureOptions::default(),
            &|_, _| false,
        );
        assert!(
            (m.x - 30.3).abs() < 0.01 && (m.y - 33.7).abs() < 0.01,
            "{} {}",
            m.x,
            m.y
        );
        assert!((m.a - m.b).abs() < 0.05, "round star: a={} b={}", m.a, m.b);
        // AUTO flux of a noiseless Gaussian: within 1% of the truth.
        assert!(
            (m.flux_auto / 10000.0 - 1.0).abs() < 0.01,
            "auto {}",
            m.flux_auto
        );
        // 8-pixel aperture holds all but exp(-8²/(2·1.5²)) of the flux.
        assert!(
            (m.flux_aper[2] / 10000.0 - 1.0).abs() < 1e-3,
            "aper {}",
            m.flux_aper[2]
        );
        assert!((m.fwhm - 3.53).abs() < 0.6, "fwhm {}", m.fwhm);
        assert_eq!(m.flags, 0);
    }

    #[test]
    fn elongated_object_has_the_right_angle() {
        let (a, b, t) = ellipse_from_moments(4.0, 1.0, 0.0);
        assert!((a - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12 && t.abs() < 1e-12);
        let (_, _, t) = ellipse_from_moments(2.5, 2.5, 1.5);
        assert!((t.to_degrees() - 45.0).abs() < 1e-9);
    }
}
