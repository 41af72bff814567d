//! Sky background and its RMS (SExtractor's estimator: Bertin & Arnouts 1996, §3.1).
//!
//! 1. The image is cut into meshes of `mesh` × `mesh` pixels. In each, the mean and σ of the
//!    valid pixels are computed, the pixels are clipped to mean ± 2σ, and a histogram of the
//!    rest (over mean ± 5σ) is iteratively σ-clipped at 3σ around its median; the mode is then
//!    estimated as `2.5 median − 1.5 mean` (or the median when the distribution is too skewed,
//!    |mean − median| > 0.3 σ, i.e. the mesh is crowded) and σ is the clipped σ.
//! 2. Meshes with fewer than half their pixels valid are replaced by the mean of the nearest
//!    valid meshes; the mesh grid is median-filtered (`filter` × `filter`, default 3) to
//!    remove the bias of bright stars and defects.
//! 3. The full-resolution maps come from bicubic natural-spline interpolation between mesh
//!    centres (extrapolated by the edge segment beyond the outermost centres).

use rayon::prelude::*;

/// Settings of the estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackgroundOptions {
    /// Mesh size in pixels (SEP/SExtractor default 64).
    pub mesh: usize,
    /// Median filter size in meshes (default 3; 1 disables).
    pub filter: usize,
}

impl Default for BackgroundOptions {
    fn default() -> Self {
        BackgroundOptions {
            mesh: 64,
            filter: 3,
        }
    }
}

/// The background model of one image: mesh values and their spline second derivatives.
#[derive(Debug, Clone)]
pub struct Background {
    pub width: usize,
    pub height: usize,
    pub mesh: usize,
    /// Number of meshes along x and y.
    pub nx: usize,
    pub ny: usize,
    /// Mesh background and σ, row-major `ny` × `nx`.
    pub back: Vec<f32>,
    pub sigma: Vec<f32>,
    d2_back: Vec<f32>,
    d2_sigma: Vec<f32>,
    /// Per column: spline weights; per segment: its columns (see [`x_table`]).
    x_weights: [Vec<f32>; 4],
    x_segments: Vec<(usize, usize, usize)>,
    /// Median of the mesh backgrounds and σs.
    pub global_back: f32,
    pub global_rms: f32,
}

const HIST_NSIGMA: f64 = 5.0;
const HIST_MAX_LEVELS: usize = 4096;
const HIST_MIN_PER_BIN: f64 = 4.0;

impl Background {
    /// Estimates the background of a `width` × `height` row-major image; NaN pixels are
    /// ignored.
    pub fn estimate(pixels: &[f32], width: usize, height: usize, opts: BackgroundOptions) -> Self {
        let mesh = opts.mesh.max(1);
        let nx = width.div_ceil(mesh).max(1);
        let ny = height.div_ceil(mesh).max(1);
        let stats: Vec<Option<(f32, f32)>> = (0..nx * ny)
            .into_par_iter()
            .map(|m| {
                let (mx, my) = (m % nx, m / nx);
                let x0 = mx * mesh;
                let y0 = my * mesh;
                let x1 = (x0 + mesh).min(width);
                let y1 = (y0 + mesh).min(height);
                mesh_stats(pixels, width, x0, x1, y0, y1)
            })
            .collect();
        let (mut back, mut sigma) = fill_bad_meshes(&stats, nx, ny);
        if opts.filter > 1 {
            (back, sigma) = median_filter(&back, &sigma, nx, ny, opts.filter);
        }
        let global_back = median(&mut back.clone());
        let mut global_rms = median(&mut sigma.clone());
        if global_rms <= 0.0 {
            let mut positive: Vec<f32> = sigma.iter().copied().filter(|s| *s > 0.0).collect();
            global_rms = if positive.is_empty() {
                1.0
            } else {
                median(&mut positive)
            };
        }
        let d2_back = spline_columns(&back, nx, ny);
        let d2_sigma = spline_columns(&sigma, nx, ny);
        let (x_weights, x_segments) = x_table(width, mesh, nx);
        Background {
            x_weights,
            x_segments,
            width,
            height,
            mesh,
            nx,
            ny,
            back,
            sigma,
            d2_back,
            d2_sigma,
            global_back,
            global_rms,
        }
    }

    /// The interpolated background along image row `y`, written into `out` (length `width`).
    pub fn back_row(&self, y: usize, out: &mut [f32]) {
        self.interp_row(&self.back, &self.d2_back, y, out);
    }

    /// The interpolated background RMS along row `y`.
    pub fn rms_row(&self, y: usize, out: &mut [f32]) {
        self.interp_row(&self.sigma, &self.d2_sigma, y, out);
    }

    /// Subtracts the background from `pixels` in place and returns the full-resolution RMS map.
    pub fn subtract_and_rms(&self, pixels: &mut [f32]) -> Vec<f32> {
        let w = self.width;
        let mut rms = vec![0f32; pixels.len()];
        pixels
            .par_chunks_mut(w)
            .zip(rms.par_chunks_mut(w))
            .enumerate()
            .for_each_init(
                || vec![0f32; w],
                |line, (y, (row, rms_row))| {
                    self.back_row(y, line);
                    for (p, b) in row.iter_mut().zip(line.iter()) {
                        *p -= *b;
                    }
                    self.rms_row(y, rms_row);
                },
            );
        rms
    }

    /// The interpolated background at one pixel.
    pub fn back_at(&self, x: usize, y: usize) -> f32 {
        let node = self.nodes_at_row(&self.back, &self.d2_back, y);
        if self.nx == 1 {
            return node[0];
        }
        let d2x = natural_spline(&node);
        let (i, t) = segment((x as f64 + 0.5) / self.mesh as f64 - 0.5, self.nx);
        spline_eval(node[i], node[i + 1], d2x[i], d2x[i + 1], t) as f32
    }

    /// The mesh columns interpolated along y at row `y`.
    fn nodes_at_row(&self, values: &[f32], d2: &[f32], y: usize) -> Vec<f32> {
        let (nx, ny) = (self.nx, self.ny);
        if ny == 1 {
            return values[..nx].to_vec();
        }
        let (j, t) = segment((y as f64 + 0.5) / self.mesh as f64 - 0.5, ny);
        (0..nx)
            .map(|i| {
                let lo = j * nx + i;
                let hi = lo + nx;
                spline_eval(values[lo], values[hi], d2[lo], d2[hi], t) as f32
            })
            .collect()
    }

    fn interp_row(&self, values: &[f32], d2: &[f32], y: usize, out: &mut [f32]) {
        let node = self.nodes_at_row(values, d2, y);
        if self.nx == 1 {
            out.fill(node[0]);
            return;
        }
        let d2x = natural_spline(&node);
        // Pixels in runs along each spline segment, the cubic's weights from a per-image table.
        for &(i, x0, x1) in &self.x_segments {
            let (lo, hi, dlo, dhi) = (node[i], node[i + 1], d2x[i] / 6.0, d2x[i + 1] / 6.0);
            let [w0, w1, w2, w3] = &self.x_weights;
            let (w0, w1, w2, w3) = (&w0[x0..x1], &w1[x0..x1], &w2[x0..x1], &w3[x0..x1]);
            for (k, o) in out[x0..x1].iter_mut().enumerate() {
                *o = w0[k] * lo + w1[k] * hi + w2[k] * dlo + w3[k] * dhi;
            }
        }
    }
}

/// For every column x: the spline segment and the weights (1 − t, t, (1−t)³ − (1−t),
/// t³ − t) of its nodes and second derivatives; and the runs of columns per segment.
#[allow(clippy::type_complexity)]
fn x_table(width: usize, mesh: usize, nx: usize) -> ([Vec<f32>; 4], Vec<(usize, usize, usize)>) {
    let mut weights: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(width));
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    if nx < 2 {
        return (
            [
                vec![1.0; width],
                vec![0.0; width],
                vec![0.0; width],
                vec![0.0; width],
            ],
            vec![(0, 0, width)],
        );
    }
    for x in 0..width {
        let (i, t) = segment((x as f64 + 0.5) / mesh as f64 - 0.5, nx);
        let a = 1.0 - t;
        weights[0].push(a as f32);
        weights[1].push(t as f32);
        weights[2].push((a * a * a - a) as f32);
        weights[3].push((t * t * t - t) as f32);
        match runs.last_mut() {
            Some(r) if r.0 == i => r.2 = x + 1,
            _ => runs.push((i, x, x + 1)),
        }
    }
    (weights, runs)
}

/// Segment index `i` (0..n-2) and position `t` within it for a node coordinate `d` (node k sits
/// at d = k); outside the nodes `t` runs below 0 or above 1 (extrapolation).
#[inline]
fn segment(d: f64, n: usize) -> (usize, f64) {
    let i = (d.floor().max(0.0) as usize).min(n - 2);
    (i, d - i as f64)
}

/// Cubic spline value between nodes `lo` and `hi` with second derivatives `d2lo`, `d2hi`
/// (unit spacing), at fraction `t`.
#[inline]
fn spline_eval(lo: f32, hi: f32, d2lo: f32, d2hi: f32, t: f64) -> f64 {
    let a = 1.0 - t;
    a * lo as f64
        + t * hi as f64
        + ((a * a * a - a) * d2lo as f64 + (t * t * t - t) * d2hi as f64) / 6.0
}

/// Second derivatives of the natural cubic spline through equally spaced `y`.
fn natural_spline(y: &[f32]) -> Vec<f32> {
    let n = y.len();
    let mut m = vec![0f64; n];
    if n < 3 {
        return vec![0.0; n];
    }
    // Tridiagonal system M[i-1] + 4 M[i] + M[i+1] = 6 (y[i+1] - 2 y[i] + y[i-1]), M[0] = M[n-1] = 0.
    let mut c = vec![0f64; n];
    let mut e = vec![0f64; n];
    for i in 1..n - 1 {
        let rhs = 6.0 * (y[i + 1] as f64 - 2.0 * y[i] as f64 + y[i - 1] as f64);
        let p = 4.0 + c[i - 1];
        c[i] = -1.0 / p;
        e[i] = (rhs - e[i - 1]) / p;
    }
    for i in (1..n - 1).rev() {
        m[i] = c[i] * m[i + 1] + e[i];
    }
    m.into_iter().map(|v| v as f32).collect()
}

/// Second derivatives along y of each mesh column.
fn spline_columns(v: &[f32], nx: usize, ny: usize) -> Vec<f32> {
    let mut out = vec![0f32; nx * ny];
    for i in 0..nx {
        let col: Vec<f32> = (0..ny).map(|j| v[j * nx + i]).collect();
        for (j, d) in natural_spline(&col).into_iter().enumerate() {
            out[j * nx + i] = d;
        }
    }
    out
}

/// Clipped mode and σ of one mesh, or `None` when fewer than half its pixels are valid.
fn mesh_stats(
    px: &[f32],
    w: usize,
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
) -> Option<(f32, f32)> {
    let total = (x1 - x0) * (y1 - y0);
    let rows = || (y0..y1).map(move |y| &px[y * w + x0..y * w + x1]);
    // Sums of deviations from a pivot, in f32 lanes per row (vectorised) and f64 across rows:
    // precise enough for a mean and σ of a few thousand pixels.
    let pivot = rows()
        .flatten()
        .copied()
        .find(|v| v.is_finite())
        .unwrap_or(0.0);
    let (mut n, mut s, mut s2) = (0usize, 0f64, 0f64);
    for row in rows() {
        let (rn, rs, rs2) = lane_sums(row, |v| {
            let d = v - pivot;
            (v.is_finite(), d)
        });
        n += rn as usize;
        s += rs as f64;
        s2 += rs2 as f64;
    }
    if n == 0 || (n as f64) < total as f64 * 0.5 {
        return None;
    }
    let dmean = s / n as f64;
    let sig = (s2 / n as f64 - dmean * dmean).max(0.0).sqrt();
    let (lcut, hcut) = ((dmean - 2.0 * sig) as f32, (dmean + 2.0 * sig) as f32);
    let (mut n, mut s, mut s2) = (0usize, 0f64, 0f64);
    for row in rows() {
        // NaN compares false: excluded like the out-of-range values.
        let (rn, rs, rs2) = lane_sums(row, |v| {
            let d = v - pivot;
            (d >= lcut && d <= hcut, d)
        });
        n += rn as usize;
        s += rs as f64;
        s2 += rs2 as f64;
    }
    if n == 0 {
        return Some(((dmean + pivot as f64) as f32, 0.0));
    }
    let dm = s / n as f64;
    let mean = dm + pivot as f64;
    let sigma = (s2 / n as f64 - dm * dm).max(0.0).sqrt();
    if sigma == 0.0 {
        return Some((mean as f32, 0.0));
    }
    // Histogram over mean ± 5σ with about HIST_MIN_PER_BIN pixels per bin at the mode.
    let step = (2.0 / std::f64::consts::PI).sqrt() * HIST_NSIGMA / HIST_MIN_PER_BIN;
    let nlevels = ((step * n as f64) as usize + 1).min(HIST_MAX_LEVELS);
    let qscale = 2.0 * HIST_NSIGMA * sigma / nlevels as f64;
    let qzero = mean - HIST_NSIGMA * sigma;
    let mut hist = vec![0u64; nlevels];
    let (z, inv) = ((qzero - pivot as f64) as f32, (1.0 / qscale) as f32);
    let top = nlevels as f32;
    for row in rows() {
        for &v in row {
            // Truncation is the floor for the non-negative values kept (NaN fails the test).
            let b = (v - pivot - z) * inv + 0.5;
            if b >= 0.0 && b < top {
                hist[b as usize] += 1;
            }
        }
    }
    let (mode, sig) = histogram_mode(&hist);
    let value = qzero + mode * qscale;
    Some((value as f32, (sig * qscale) as f32))
}

/// Count, sum and sum of squares of `f(v).1` over the values where `f(v).0` holds, in eight
/// independent lanes (so the float reductions vectorise).
#[inline]
fn lane_sums(row: &[f32], f: impl Fn(f32) -> (bool, f32)) -> (u32, f32, f32) {
    let mut n = [0u32; 8];
    let mut s = [0f32; 8];
    let mut q = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let (ok, d) = f(c[l]);
            let d = if ok { d } else { 0.0 };
            n[l] += u32::from(ok);
            s[l] += d;
            q[l] += d * d;
        }
    }
    for &v in rest {
        let (ok, d) = f(v);
        let d = if ok { d } else { 0.0 };
        n[0] += u32::from(ok);
        s[0] += d;
        q[0] += d * d;
    }
    (n.iter().sum(), s.iter().sum(), q.iter().sum())
}

/// Iterative 3σ-clipped statistics of a histogram: returns (mode estimate, σ) in bin units.
/// Sums over bin ranges come from prefix sums, so each iteration costs O(log n).
fn histogram_mode(hist: &[u64]) -> (f64, f64) {
    let top = hist.len() - 1;
    // c[i], s[i], q[i]: Σ over bins < i of count, count·bin, count·bin², in integers (exact,
    // and one-cycle adds: the chain runs over every bin of every mesh).
    let len = hist.len() + 1;
    let (mut c, mut sm, mut q) = (vec![0u64; len], vec![0u64; len], vec![0u64; len]);
    let (mut ac, mut asm, mut aq) = (0u64, 0u64, 0u64);
    for (i, &h) in hist.iter().enumerate() {
        let i = i as u64;
        ac += h;
        asm += h * i;
        aq += h * i * i;
        c[i as usize + 1] = ac;
        sm[i as usize + 1] = asm;
        q[i as usize + 1] = aq;
    }
    let (mut lo, mut hi) = (0usize, top);
    let (mut mean, mut med, mut sig) = (0.0, 0.0, f64::INFINITY);
    for _ in 0..100 {
        let prev = sig;
        let n = (c[hi + 1] - c[lo]) as f64;
        if n == 0.0 {
            break;
        }
        mean = (sm[hi + 1] - sm[lo]) as f64 / n;
        sig = ((q[hi + 1] - q[lo]) as f64 / n - mean * mean)
            .max(0.0)
            .sqrt();
        // Interpolated median: the bin where the cumulative count reaches half.
        let half = c[lo] as f64 + n / 2.0;
        let k = c[lo + 1..=hi + 1].partition_point(|&v| (v as f64) < half) + lo;
        let below = c[k] as f64;
        let count = hist[k] as f64;
        med = k as f64 - 0.5
            + if count > 0.0 {
                (half - below) / count
            } else {
                0.0
            };
        let l = med - 3.0 * sig;
        let h = med + 3.0 * sig;
        lo = if l > 0.0 { (l + 0.5) as usize } else { 0 };
        hi = if h < top as f64 {
            (h + 0.5) as usize
        } else {
            top
        };
        if hi < lo {
            break;
        }
        if sig < 0.1 || ((sig / prev) - 1.0).abs() <= 1e-4 {
            break;
        }
    }
    let mode = if sig > 0.0 && ((mean - med) / sig).abs() < 0.3 {
        2.5 * med - 1.5 * mean
    } else {
        med
    };
    (mode, sig)
}

fn fill_bad_meshes(stats: &[Option<(f32, f32)>], nx: usize, ny: usize) -> (Vec<f32>, Vec<f32>) {
    let mut back = vec![0f32; nx * ny];
    let mut sigma = vec![1f32; nx * ny];
    let good: Vec<(usize, usize, f32, f32)> = stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|(b, sg)| (i % nx, i / nx, b, sg)))
        .collect();
    for (i, s) in stats.iter().enumerate() {
        if let Some((b, sg)) = s {
            back[i] = *b;
            sigma[i] = *sg;
            continue;
        }
        let (px, py) = (i % nx, i / nx);
        let d2 = |&(x, y, _, _): &(usize, usize, f32, f32)| {
            let dx = x as i64 - px as i64;
            let dy = y as i64 - py as i64;
            dx * dx + dy * dy
        };
        if let Some(best) = good.iter().map(d2).min() {
            let near: Vec<_> = good.iter().filter(|g| d2(g) == best).collect();
            back[i] = near.iter().map(|g| g.2).sum::<f32>() / near.len() as f32;
            sigma[i] = near.iter().map(|g| g.3).sum::<f32>() / near.len() as f32;
        }
    }
    (back, sigma)
}

fn median_filter(
    back: &[f32],
    sigma: &[f32],
    nx: usize,
    ny: usize,
    size: usize,
) -> (Vec<f32>, Vec<f32>) {
    let half = (size / 2) as i64;
    let mut b2 = back.to_vec();
    let mut s2 = sigma.to_vec();
    let mut wb = Vec::with_capacity(size * size);
    let mut ws = Vec::with_capacity(size * size);
    for y in 0..ny as i64 {
        // The window shrinks symmetrically at the edges, as SExtractor's does.
        let hy = half.min(y).min(ny as i64 - 1 - y);
        for x in 0..nx as i64 {
            let hx = half.min(x).min(nx as i64 - 1 - x);
            wb.clear();
            ws.clear();
            for yy in y - hy..=y + hy {
                for xx in x - hx..=x + hx {
                    let k = (yy * nx as i64 + xx) as usize;
                    wb.push(back[k]);
                    ws.push(sigma[k]);
                }
            }
            let k = (y * nx as i64 + x) as usize;
            b2[k] = median(&mut wb);
            s2[k] = median(&mut ws);
        }
    }
    (b2, s2)
}

/// Median of a slice (mean of the two middle values for even lengths); reorders the slice.
pub fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let n = v.len();
    let mid = n / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lower = v[..mid].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        0.5 * (lower + m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic Gaussian noise (Box–Muller over a 64-bit LCG).
    fn noise(n: usize, sigma: f32, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u1, u2) = (next(), next());
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32 * sigma
            })
            .collect()
    }

    #[test]
    fn flat_sky_with_gradient_is_recovered() {
        let (w, h) = (256, 192);
        let n = noise(w * h, 10.0, 7);
        let px: Vec<f32> = (0..w * h)
            .map(|i| 1000.0 + 20.0 * (i % w) as f32 / w as f32 + n[i])
            .collect();
        let bkg = Background::estimate(&px, w, h, BackgroundOptions::default());
        assert_eq!((bkg.nx, bkg.ny), (4, 3));
        assert!(
            (bkg.global_rms - 10.0).abs() < 0.5,
            "rms {}",
            bkg.global_rms
        );
        let mut row = vec![0f32; w];
        bkg.back_row(100, &mut row);
        for x in [0usize, 50, 128, 200, 255] {
            let truth = 1000.0 + 20.0 * x as f32 / w as f32;
            assert!((row[x] - truth).abs() < 1.0, "x={x}: {} vs {truth}", row[x]);
        }
    }

    #[test]
    fn bright_star_does_not_bias_the_mesh() {
        let (w, h) = (128, 128);
        let mut px = noise(w * h, 5.0, 3)
            .iter()
            .map(|v| v + 200.0)
            .collect::<Vec<_>>();
        for y in 50..70 {
            for x in 50..70 {
                px[y * w + x] += 5000.0;
            }
        }
        let bkg = Background::estimate(
            &px,
            w,
            h,
            BackgroundOptions {
                mesh: 32,
                filter: 3,
            },
        );
        let mut row = vec![0f32; w];
        bkg.back_row(60, &mut row);
        assert!((row[60] - 200.0).abs() < 2.0, "{}", row[60]);
    }

    #[test]
    fn nan_pixels_are_ignored_and_all_nan_meshes_filled() {
        let (w, h) = (64, 64);
        let mut px = noise(w * h, 2.0, 11)
            .iter()
            .map(|v| v + 50.0)
            .collect::<Vec<_>>();
        for v in px.iter_mut().take(w * 32) {
            *v = f32::NAN;
        }
        let bkg = Background::estimate(
            &px,
            w,
            h,
            BackgroundOptions {
                mesh: 32,
                filter: 1,
            },
        );
        assert!(
            bkg.back.iter().all(|b| (b - 50.0).abs() < 1.0),
            "{:?}",
            bkg.back
        );
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
