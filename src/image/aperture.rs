//! Aperture sums: circles with the exact area of overlap between the circle and each pixel,
//! ellipses by 5 × 5 sub-pixel sampling of boundary pixels (as SEP's default `subpix=5`).
//! Pixel (i, j) covers [i − ½, i + ½] × [j − ½, j + ½] in 0-based coordinates.

/// Result of summing an aperture.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ApertureSum {
    pub flux: f64,
    /// Σ area × rms² (the background-noise variance of the sum).
    pub variance: f64,
    /// Area summed (pixels).
    pub area: f64,
    /// True when part of the aperture is off the image or on NaN pixels.
    pub incomplete: bool,
}

/// Area of the disc of radius `r` centred at the origin inside the rectangle
/// [x0, x1] × [y0, y1].
pub fn circle_rect_overlap(r: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let q = |x: f64, y: f64| x.signum() * y.signum() * quadrant(r, x.abs(), y.abs());
    q(x1, y1) - q(x0, y1) - q(x1, y0) + q(x0, y0)
}

/// Area of the disc of radius r within [0, a] × [0, b] (a, b ≥ 0).
fn quadrant(r: f64, a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        return 0.0;
    }
    if a * a + b * b <= r * r {
        return a * b;
    }
    let a = a.min(r);
    let b = b.min(r);
    // The arc meets y = b at x = xc; to its left the region is the full strip of height b.
    let xc = (r * r - b * b).max(0.0).sqrt();
    if xc >= a {
        return a * b;
    }
    let g = |x: f64| {
        0.5 * (x * (r * r - x * x).max(0.0).sqrt() + r * r * (x / r).clamp(-1.0, 1.0).asin())
    };
    b * xc + g(a) - g(xc)
}

/// Sums `img` (and `rms²`) over a circle of radius `r` centred on (cx, cy).
pub fn sum_circle(
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    cx: f64,
    cy: f64,
    r: f64,
) -> ApertureSum {
    let mut out = ApertureSum::default();
    if r.is_nan() || r <= 0.0 || !cx.is_finite() || !cy.is_finite() {
        out.incomplete = true;
        return out;
    }
    let xmin = (cx - r - 0.5).floor() as i64;
    let xmax = (cx + r + 0.5).ceil() as i64;
    let ymin = (cy - r - 0.5).floor() as i64;
    let ymax = (cy + r + 0.5).ceil() as i64;
    let r_in = (r - std::f64::consts::FRAC_1_SQRT_2).max(0.0);
    let r_out = r + std::f64::consts::FRAC_1_SQRT_2;
    for j in ymin..=ymax {
        for i in xmin..=xmax {
            let dx = i as f64 - cx;
            let dy = j as f64 - cy;
            let d = (dx * dx + dy * dy).sqrt();
            let w = if d <= r_in {
                1.0
            } else if d >= r_out {
                0.0
            } else {
                circle_rect_overlap(r, dx - 0.5, dx + 0.5, dy - 0.5, dy + 0.5)
            };
            if w <= 0.0 {
                continue;
            }
            accumulate(&mut out, img, rms, width, height, i, j, w);
        }
    }
    out
}

/// Ellipse shape parameters as SExtractor's CXX, CYY, CXY: a point at offset (dx, dy) is at
/// elliptical radius `sqrt(cxx dx² + cyy dy² + cxy dx dy)` (in units of the semi-axes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EllipseCoeffs {
    pub cxx: f64,
    pub cyy: f64,
    pub cxy: f64,
}

impl EllipseCoeffs {
    pub fn new(a: f64, b: f64, theta: f64) -> Self {
        let (s, c) = theta.sin_cos();
        let (a2, b2) = (a * a, b * b);
        EllipseCoeffs {
            cxx: c * c / a2 + s * s / b2,
            cyy: s * s / a2 + c * c / b2,
            cxy: 2.0 * c * s * (1.0 / a2 - 1.0 / b2),
        }
    }

    #[inline]
    pub fn r2(&self, dx: f64, dy: f64) -> f64 {
        self.cxx * dx * dx + self.cyy * dy * dy + self.cxy * dx * dy
    }
}

/// Sums over the ellipse of semi-axes (a, b) scaled by `scale`, angle `theta` (radians,
/// counter-clockwise from +x), centred on (cx, cy).
#[allow(clippy::too_many_arguments)]
pub fn sum_ellipse(
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    cx: f64,
    cy: f64,
    a: f64,
    b: f64,
    theta: f64,
    scale: f64,
) -> ApertureSum {
    let mut out = ApertureSum::default();
    let (sa, sb) = (a * scale, b * scale);
    if sa.is_nan() || sb.is_nan() || sa <= 0.0 || sb <= 0.0 || !cx.is_finite() || !cy.is_finite() {
        out.incomplete = true;
        return out;
    }
    let e = EllipseCoeffs::new(sa, sb, theta);
    let r = sa.max(sb);
    let xmin = (cx - r - 0.5).floor() as i64;
    let xmax = (cx + r + 0.5).ceil() as i64;
    let ymin = (cy - r - 0.5).floor() as i64;
    let ymax = (cy + r + 0.5).ceil() as i64;
    // A pixel whose centre is this far inside (outside) the boundary, in elliptical radius,
    // is wholly inside (outside): half a pixel diagonal over the shortest semi-axis.
    let margin = std::f64::consts::FRAC_1_SQRT_2 / sb.min(sa);
    const SUB: usize = 5;
    for j in ymin..=ymax {
        for i in xmin..=xmax {
            let dx = i as f64 - cx;
            let dy = j as f64 - cy;
            let rr = e.r2(dx, dy).sqrt();
            let w = if rr < 1.0 - margin {
                1.0
            } else if rr > 1.0 + margin {
                0.0
            } else {
                let mut n = 0;
                for sj in 0..SUB {
                    for si in 0..SUB {
                        let ox = dx - 0.5 + (si as f64 + 0.5) / SUB as f64;
                        let oy = dy - 0.5 + (sj as f64 + 0.5) / SUB as f64;
                        if e.r2(ox, oy) <= 1.0 {
                            n += 1;
                        }
                    }
                }
                n as f64 / (SUB * SUB) as f64
            };
            if w <= 0.0 {
                continue;
            }
            accumulate(&mut out, img, rms, width, height, i, j, w);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn accumulate(
    out: &mut ApertureSum,
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    i: i64,
    j: i64,
    w: f64,
) {
    if i < 0 || j < 0 || i >= width as i64 || j >= height as i64 {
        out.incomplete = true;
        return;
    }
    let k = j as usize * width + i as usize;
    let v = img[k];
    if !v.is_finite() {
        out.incomplete = true;
        return;
    }
    out.flux += w * v as f64;
    let s = rms[k] as f64;
    out.variance += w * s * s;
    out.area += w;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn overlap_areas_are_exact() {
        // Whole disc inside a big rectangle.
        assert!((circle_rect_overlap(2.0, -5.0, 5.0, -5.0, 5.0) - 4.0 * PI).abs() < 1e-12);
        // Half disc.
        assert!((circle_rect_overlap(2.0, 0.0, 5.0, -5.0, 5.0) - 2.0 * PI).abs() < 1e-12);
        // Quarter disc.
        assert!((circle_rect_overlap(1.0, 0.0, 1.0, 0.0, 1.0) - PI / 4.0).abs() < 1e-12);
        // Unit square fully inside.
        assert!((circle_rect_overlap(3.0, -0.5, 0.5, -0.5, 0.5) - 1.0).abs() < 1e-12);
        // Outside.
        assert_eq!(circle_rect_overlap(1.0, 2.0, 3.0, 2.0, 3.0), 0.0);
    }

    #[test]
    fn circle_sum_of_flat_image_is_its_area() {
        let (w, h) = (41, 41);
        let img = vec![1.0f32; w * h];
        let rms = vec![2.0f32; w * h];
        for (cx, cy, r) in [(20.0, 20.0, 5.0), (20.3, 19.7, 7.25), (20.5, 20.5, 0.7)] {
            let s = sum_circle(&img, &rms, w, h, cx, cy, r);
            assert!(
                (s.flux - PI * r * r).abs() < 1e-9,
                "{cx},{cy},{r}: {}",
                s.flux
            );
            assert!((s.variance - 4.0 * PI * r * r).abs() < 1e-8);
            assert!(!s.incomplete);
        }
        let edge = sum_circle(&img, &rms, w, h, 1.0, 20.0, 5.0);
        assert!(edge.incomplete);
    }

    #[test]
    fn ellipse_sum_of_flat_image_is_close_to_its_area() {
        let (w, h) = (81, 81);
        let img = vec![1.0f32; w * h];
        let rms = vec![1.0f32; w * h];
        let s = sum_ellipse(&img, &rms, w, h, 40.2, 39.9, 6.0, 3.0, 0.6, 2.0);
        let area = PI * 12.0 * 6.0;
        assert!((s.flux - area).abs() / area < 2e-3, "{} vs {area}", s.flux);
    }
}
