//! Cosmic-ray rejection: L.A.Cosmic (van Dokkum 2001, PASP 113, 1420) with astroscrappy's
//! conventions (separable median filters, its saturated-star mask, `meanmask` cleaning), so
//! that its parameters (`sigclip`, `sigfrac`, `objlim`, `niter`, gain, read noise, saturation)
//! mean the same here.
//!
//! Per iteration, on the image in electrons `I`:
//! - `L⁺`: the Laplacian of `I` subsampled 2×, negative values clipped, rebinned 2× (computed
//!   in one step per pixel, without the subsampled image);
//! - the noise `N = √(med₇(I) + RN²)` and `S = L⁺ / 2N`; `S' = S − med₇(S)`;
//! - candidates: `S' > sigclip` on good pixels whose fine structure
//!   `F = (med₅(I) − med₉(med₅(I))) / N` (floored at 0.01) satisfies `S'/F > objlim`;
//! - growth: the 3×3 neighbours with `S' > sigclip`, then their 3×3 neighbours with
//!   `S' > sigfrac · sigclip`;
//! - the hits are replaced by the mean of their good 5×5 neighbours.
//!
//! `med_k` is astroscrappy's separable median (rows, then columns; a border of k/2 pixels
//! keeps its input values).
//!
//! Cost: `S` and `S'` are computed over the whole frame once, with vectorised median
//! networks; the fine structure (two more median filters) only at the few pixels where
//! `S' > sigclip`. Later iterations only recompute the blocks within reach of a pixel that
//! cleaning changed: everything else is provably the same as in the previous iteration.

use rayon::prelude::*;

/// L.A.Cosmic settings (astroscrappy's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosmicOptions {
    /// Laplacian-to-noise threshold for a hit.
    pub sigclip: f32,
    /// Fraction of `sigclip` for the neighbours of hits.
    pub sigfrac: f32,
    /// Contrast between the Laplacian and the fine-structure image.
    pub objlim: f32,
    /// Maximum number of iterations.
    pub niter: usize,
    /// Gain (e⁻/ADU) and read noise (e⁻) of the detector.
    pub gain: f32,
    pub readnoise: f32,
    /// Saturation level in electrons (as astroscrappy's `satlevel`): saturated stars are
    /// masked, not taken for cosmic rays.
    pub satlevel: f32,
}

impl Default for CosmicOptions {
    fn default() -> Self {
        CosmicOptions {
            sigclip: 4.5,
            sigfrac: 0.3,
            objlim: 5.0,
            niter: 4,
            gain: 1.0,
            readnoise: 6.5,
            satlevel: 65536.0,
        }
    }
}

/// Side of the blocks later iterations recompute.
const BLOCK: usize = 64;
/// How far a changed pixel reaches: med₇ (3) + Laplacian (1) + med₇ of S (3) for `S'`,
/// med₅ (2) + med₉ (4) for `F`, + 2 for the growth.
const REACH: usize = 9;

/// Finds the cosmic-ray hits of `pixels` (ADU, row-major), replaces them in place by the mean
/// of their good 5×5 neighbours, and returns the mask of hits. `bad` marks pixels that are
/// never hits and never used for cleaning (NaN pixels are always bad).
pub fn clean(
    pixels: &mut [f32],
    width: usize,
    height: usize,
    bad: Option<&[bool]>,
    opts: &CosmicOptions,
) -> Vec<bool> {
    let n = width * height;
    let mut crmask = vec![false; n];
    if width < 10 || height < 10 || opts.niter == 0 {
        return crmask;
    }
    let gain = if opts.gain > 0.0 { opts.gain } else { 1.0 };
    let mut img: Vec<f32> = pixels.par_iter().map(|v| v * gain).collect();
    let mask = bad_mask(&mut img, width, height, bad, opts.satlevel);
    let im = Frame {
        w: width,
        h: height,
        rn2: opts.readnoise * opts.readnoise,
    };
    let mut s = vec![0f32; n];
    let mut sp = vec![0f32; n];
    let (nbx, nby) = (width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    let mut dirty: Vec<usize> = (0..nbx * nby).collect();
    let mut hits: Vec<usize> = Vec::new();
    let mut fallback: Option<f32> = None;
    let low = opts.sigfrac * opts.sigclip;
    for _ in 0..opts.niter {
        im.update(&dirty, &mut s, |r| im.s_region(&img, r));
        im.update(&dirty, &mut sp, |r| {
            let med = sepmed_region(&s, width, height, 7, r);
            r.pixels(width).zip(med).map(|(p, m)| s[p] - m).collect()
        });
        // Candidates in the recomputed blocks.
        let candidates: Vec<usize> = dirty
            .par_iter()
            .flat_map_iter(|&b| im.block_pixels(b))
            .filter(|&p| {
                if mask[p] || sp[p] <= opts.sigclip {
                    return false;
                }
                let (x, y) = (p % width, p / width);
                let f = im.fine_structure(&img, x, y) / im.noise_at(&img, x, y);
                sp[p] / f.max(0.01) > opts.objlim
            })
            .collect();
        // Growth: 3×3 neighbours above sigclip, then their neighbours above sigfrac·sigclip.
        let grow = |from: &[usize], level: f32| -> Vec<usize> {
            let mut out: Vec<usize> = from
                .iter()
                .flat_map(|&p| im.neighbours3(p))
                .filter(|&q| !mask[q] && sp[q] > level)
                .collect();
            out.sort_unstable();
            out.dedup();
            out
        };
        let first = grow(&candidates, opts.sigclip);
        let found = grow(&first, low);
        let new: Vec<usize> = found.into_iter().filter(|&p| !crmask[p]).collect();
        if new.is_empty() {
            break;
        }
        for &p in &new {
            crmask[p] = true;
        }
        hits.extend(&new);
        // Clean every hit (a new hit changes the mean around older ones) and note what moved.
        let values: Vec<(usize, f32)> = hits
            .par_iter()
            .filter_map(|&p| {
                let (x, y) = (p % width, p / width);
                if x < 2 || y < 2 || x + 2 >= width || y + 2 >= height {
                    return None;
                }
                let (mut sum, mut k) = (0f64, 0u32);
                for yy in y - 2..=y + 2 {
                    for xx in x - 2..=x + 2 {
                        let q = yy * width + xx;
                        if !crmask[q] && !mask[q] {
                            sum += img[q] as f64;
                            k += 1;
                        }
                    }
                }
                Some((
                    p,
                    if k > 0 {
                        (sum / k as f64) as f32
                    } else {
                        f32::NAN
                    },
                ))
            })
            .collect();
        let mut changed = vec![false; nbx * nby];
        for (p, v) in values {
            let v = if v.is_nan() {
                *fallback.get_or_insert_with(|| good_median(&img, &mask))
            } else {
                v
            };
            if img[p] != v {
                img[p] = v;
                im.mark_reach(p, nbx, nby, &mut changed);
            }
        }
        dirty = (0..nbx * nby).filter(|&b| changed[b]).collect();
        if dirty.is_empty() {
            break;
        }
    }
    for &p in &hits {
        pixels[p] = img[p] / gain;
    }
    crmask
}

/// Geometry shared by the stages.
struct Frame {
    w: usize,
    h: usize,
    rn2: f32,
}

impl Frame {
    /// Recomputes `out` over the given blocks with `f(region) -> values` (row-major), in
    /// parallel: by bands of whole rows when every block is due, block by block otherwise.
    fn update(&self, blocks: &[usize], out: &mut [f32], f: impl Fn(Region) -> Vec<f32> + Sync) {
        let nbx = self.w.div_ceil(BLOCK);
        if blocks.len() == nbx * self.h.div_ceil(BLOCK) {
            out.par_chunks_mut(self.w * BLOCK)
                .enumerate()
                .for_each(|(i, band)| {
                    let y0 = i * BLOCK;
                    let r = Region {
                        x0: 0,
                        x1: self.w,
                        y0,
                        y1: y0 + band.len() / self.w,
                    };
                    band.copy_from_slice(&f(r));
                });
            return;
        }
        let parts: Vec<(Region, Vec<f32>)> = blocks
            .par_iter()
            .map(|&b| {
                let r = self.block(b);
                (r, f(r))
            })
            .collect();
        for (r, values) in parts {
            for (p, v) in r.pixels(self.w).zip(values) {
                out[p] = v;
            }
        }
    }

    /// The rectangle of block `b`.
    fn block(&self, b: usize) -> Region {
        let nbx = self.w.div_ceil(BLOCK);
        let (x0, y0) = ((b % nbx) * BLOCK, (b / nbx) * BLOCK);
        Region {
            x0,
            x1: (x0 + BLOCK).min(self.w),
            y0,
            y1: (y0 + BLOCK).min(self.h),
        }
    }

    /// `S = L⁺ / 2N` over a region.
    fn s_region(&self, img: &[f32], r: Region) -> Vec<f32> {
        let m7 = sepmed_region(img, self.w, self.h, 7, r);
        r.pixels(self.w)
            .zip(m7)
            .map(|(p, m)| {
                let noise = (m + self.rn2).max(1e-5).sqrt();
                self.laplace_plus(img, p % self.w, p / self.w) / (2.0 * noise)
            })
            .collect()
    }

    /// Pixel indices of block `b`, row-major.
    fn block_pixels(&self, b: usize) -> impl Iterator<Item = usize> + '_ {
        self.block(b).pixels(self.w)
    }

    /// Marks the blocks within [`REACH`] of pixel `p`.
    fn mark_reach(&self, p: usize, nbx: usize, nby: usize, marks: &mut [bool]) {
        let (x, y) = (p % self.w, p / self.w);
        let bx0 = x.saturating_sub(REACH) / BLOCK;
        let bx1 = ((x + REACH).min(self.w - 1) / BLOCK).min(nbx - 1);
        let by0 = y.saturating_sub(REACH) / BLOCK;
        let by1 = ((y + REACH).min(self.h - 1) / BLOCK).min(nby - 1);
        for by in by0..=by1 {
            for bx in bx0..=bx1 {
                marks[by * nbx + bx] = true;
            }
        }
    }

    /// The 3×3 neighbourhood of `p` (itself included), clipped to the frame.
    fn neighbours3(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        let (x, y) = ((p % self.w) as i64, (p / self.w) as i64);
        (-1..=1i64).flat_map(move |dy| {
            (-1..=1i64).filter_map(move |dx| {
                let (xx, yy) = (x + dx, y + dy);
                (xx >= 0 && yy >= 0 && xx < self.w as i64 && yy < self.h as i64)
                    .then(|| yy as usize * self.w + xx as usize)
            })
        })
    }

    /// `N = √(max(med₇(I) + RN², 10⁻⁵))` at (x, y).
    fn noise_at(&self, img: &[f32], x: usize, y: usize) -> f32 {
        let m = sepmed_at(&|x, y| img[y * self.w + x], self.w, self.h, 7, x, y) + self.rn2;
        m.max(1e-5).sqrt()
    }

    /// `L⁺` at (x, y): the mean of the four clipped Laplacians of the 2× subsampled image
    /// over the pixel's four sub-pixels (pixels beyond the frame count as 0).
    fn laplace_plus(&self, img: &[f32], x: usize, y: usize) -> f32 {
        let w = self.w;
        let v = img[y * w + x];
        let at = |xx: i64, yy: i64| {
            if xx < 0 || yy < 0 || xx >= w as i64 || yy >= self.h as i64 {
                0.0
            } else {
                img[yy as usize * w + xx as usize]
            }
        };
        let (xi, yi) = (x as i64, y as i64);
        let (l, r, u, d) = (
            at(xi - 1, yi),
            at(xi + 1, yi),
            at(xi, yi - 1),
            at(xi, yi + 1),
        );
        let two = 2.0 * v;
        ((two - l - u).max(0.0)
            + (two - r - u).max(0.0)
            + (two - l - d).max(0.0)
            + (two - r - d).max(0.0))
            / 4.0
    }

    /// `med₅(I) − med₉(med₅(I))` at (x, y), sharing the row medians of the 13 × 9 window
    /// it needs (198 small medians instead of 486).
    fn fine_structure(&self, img: &[f32], x: usize, y: usize) -> f32 {
        let (w, h) = (self.w, self.h);
        if x < 4 || y < 4 || x + 4 >= w || y + 4 >= h {
            return 0.0; // med₉ keeps its input on its border: F = med₅ − med₅
        }
        // Row medians of 5 at columns x−4..=x+4 of rows y−6..=y+6 (within the frame).
        let mut rowmed = [[0f32; 9]; 13];
        let (r0, r1) = (y.saturating_sub(6), (y + 6).min(h - 1));
        for yy in r0..=r1 {
            let row = &img[yy * w..(yy + 1) * w];
            for (k, m) in rowmed[yy + 6 - y].iter_mut().enumerate() {
                let xx = x + k - 4;
                *m = if xx < 2 || xx + 2 >= w {
                    row[xx]
                } else {
                    median_of([row[xx - 2], row[xx - 1], row[xx], row[xx + 1], row[xx + 2]])
                };
            }
        }
        // med₅ at the 9 × 9 points, then med₉ along rows and down the middle column.
        let m5 = |k: usize, yy: usize| -> f32 {
            let xx = x + k - 4;
            if xx < 2 || yy < 2 || xx + 2 >= w || yy + 2 >= h {
                return img[yy * w + xx];
            }
            let c = |d: usize| rowmed[yy + d + 4 - y][k];
            median_of([c(0), c(1), c(2), c(3), c(4)])
        };
        let mut col = [0f32; 9];
        for (j, c) in col.iter_mut().enumerate() {
            let yy = y + j - 4;
            *c = median_of(std::array::from_fn::<f32, 9, _>(|k| m5(k, yy)));
        }
        m5(4, y) - median_of(col)
    }
}

/// Median of a few values (insertion sort; the values are finite).
fn median_of<const N: usize>(mut a: [f32; N]) -> f32 {
    for i in 1..N {
        let v = a[i];
        let mut j = i;
        while j > 0 && a[j - 1] > v {
            a[j] = a[j - 1];
            j -= 1;
        }
        a[j] = v;
    }
    a[N / 2]
}

/// A rectangle `[x0, x1) × [y0, y1)` of the frame.
#[derive(Debug, Clone, Copy)]
struct Region {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
}

impl Region {
    fn pixels(self, w: usize) -> impl Iterator<Item = usize> {
        (self.y0..self.y1).flat_map(move |y| (self.x0..self.x1).map(move |x| y * w + x))
    }
}

/// astroscrappy's separable 7-point median over a region (row-major values): row medians
/// over the region's rows ± 3, then column medians of those, both with a median network run
/// across whole rows (vectorised); the 3-pixel frame border keeps its input values.
fn sepmed_region(src: &[f32], w: usize, h: usize, k: usize, r: Region) -> Vec<f32> {
    debug_assert_eq!(k, 7);
    let hw = k / 2;
    let rw = r.x1 - r.x0;
    let ry0 = r.y0.saturating_sub(hw);
    let ry1 = (r.y1 + hw).min(h);
    // Interior columns of the region (where the row median is defined).
    let ix0 = r.x0.max(hw);
    let ix1 = r.x1.min(w.saturating_sub(hw)).max(ix0);
    let mut rowmed = vec![0f32; (ry1 - ry0) * rw];
    for (j, out) in rowmed.chunks_exact_mut(rw).enumerate() {
        let row = &src[(ry0 + j) * w..(ry0 + j + 1) * w];
        out.copy_from_slice(&row[r.x0..r.x1]);
        if ix1 > ix0 {
            let n = ix1 - ix0;
            let lanes: [&[f32]; 7] = std::array::from_fn(|i| &row[ix0 + i - hw..ix0 + i - hw + n]);
            median7_lanes(lanes, &mut out[ix0 - r.x0..ix1 - r.x0]);
        }
    }
    let mut out = vec![0f32; (r.y1 - r.y0) * rw];
    for (j, o) in out.chunks_exact_mut(rw).enumerate() {
        let y = r.y0 + j;
        o.copy_from_slice(&src[y * w + r.x0..y * w + r.x1]);
        if y < hw || y + hw >= h || ix1 <= ix0 {
            continue;
        }
        let n = ix1 - ix0;
        let lanes: [&[f32]; 7] = std::array::from_fn(|i| {
            let rr = y + i - hw - ry0;
            &rowmed[rr * rw + ix0 - r.x0..rr * rw + ix0 - r.x0 + n]
        });
        median7_lanes(lanes, &mut o[ix0 - r.x0..ix1 - r.x0]);
    }
    out
}

/// Element-wise median of seven equally long slices (a 16-comparator sorting network; the
/// loop has no branches, so it vectorises).
fn median7_lanes(v: [&[f32]; 7], out: &mut [f32]) {
    let n = out.len();
    let v: [&[f32]; 7] = std::array::from_fn(|i| &v[i][..n]);
    #[inline(always)]
    fn cs(a: &mut [f32; 7], i: usize, j: usize) {
        let (x, y) = (a[i], a[j]);
        a[i] = if x < y { x } else { y };
        a[j] = if x < y { y } else { x };
    }
    for (k, o) in out.iter_mut().enumerate() {
        let mut a = [
            v[0][k], v[1][k], v[2][k], v[3][k], v[4][k], v[5][k], v[6][k],
        ];
        for &(i, j) in &NETWORK7 {
            cs(&mut a, i, j);
        }
        *o = a[3];
    }
}

/// A sorting network for seven values (Knuth, TAOCP 5.3.4).
const NETWORK7: [(usize, usize); 16] = [
    (0, 6),
    (2, 3),
    (4, 5),
    (0, 2),
    (1, 4),
    (3, 6),
    (0, 1),
    (2, 5),
    (3, 4),
    (1, 2),
    (4, 6),
    (2, 3),
    (4, 5),
    (1, 2),
    (3, 4),
    (5, 6),
];

/// astroscrappy's separable median of odd size `k` at (x, y): the median over rows y ± k/2 of
/// the row medians over x ± k/2; pixels within k/2 of the border keep their own value.
pub fn sepmed_at(
    src: &dyn Fn(usize, usize) -> f32,
    w: usize,
    h: usize,
    k: usize,
    x: usize,
    y: usize,
) -> f32 {
    let hw = k / 2;
    if x < hw || y < hw || x + hw >= w || y + hw >= h {
        return src(x, y);
    }
    let mut cols = [0f32; 9];
    let mut row = [0f32; 9];
    for (j, c) in cols.iter_mut().take(k).enumerate() {
        let yy = y + j - hw;
        for (i, r) in row.iter_mut().take(k).enumerate() {
            *r = src(x + i - hw, yy);
        }
        *c = median_small(&mut row[..k]);
    }
    median_small(&mut cols[..k])
}

/// Median of an odd-length small slice (reorders it).
fn median_small(v: &mut [f32]) -> f32 {
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

/// The pixels that are never hits: `bad`, non-finite pixels (set to the median of the rest so
/// they do not ring in the Laplacian), the 3×3 growth of those, and saturated stars
/// (astroscrappy: pixels at or above `satlevel` whose med₇ exceeds `satlevel`/10, grown by two
/// 5×5 dilations).
fn bad_mask(img: &mut [f32], w: usize, h: usize, bad: Option<&[bool]>, satlevel: f32) -> Vec<bool> {
    let n = w * h;
    let mut seed: Vec<bool> = (0..n)
        .map(|p| !img[p].is_finite() || bad.is_some_and(|b| b[p]))
        .collect();
    if seed.iter().any(|&b| b) {
        let finite: Vec<f32> = img.iter().copied().filter(|v| v.is_finite()).collect();
        let fill = if finite.is_empty() {
            0.0
        } else {
            crate::image::background::median(&mut finite.clone())
        };
        for v in img.iter_mut() {
            if !v.is_finite() {
                *v = fill;
            }
        }
    }
    let mut mask = dilate(&seed, w, h, 1);
    let sat: Vec<usize> = (0..n)
        .filter(|&p| {
            img[p] >= satlevel
                && sepmed_at(&|x, y| img[y * w + x], w, h, 7, p % w, p / w) > satlevel / 10.0
        })
        .collect();
    if !sat.is_empty() {
        seed.fill(false);
        for p in sat {
            seed[p] = true;
        }
        let grown = dilate(&dilate(&seed, w, h, 2), w, h, 2);
        for (m, g) in mask.iter_mut().zip(grown) {
            *m |= g;
        }
    }
    mask
}

/// Square dilation of radius `r`.
fn dilate(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let mut out = vec![false; m.len()];
    for (p, _) in m.iter().enumerate().filter(|(_, b)| **b) {
        let (x, y) = (p % w, p / w);
        for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
            for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                out[yy * w + xx] = true;
            }
        }
    }
    out
}

/// Median of the good pixels (the cleaning value when a hit has no good neighbour).
fn good_median(img: &[f32], mask: &[bool]) -> f32 {
    let mut v: Vec<f32> = img
        .iter()
        .zip(mask)
        .filter(|(_, m)| !**m)
        .map(|(v, _)| *v)
        .collect();
    crate::image::background::median(&mut v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_sorts_every_zero_one_input() {
        for bits in 0u32..128 {
            let mut a: [f32; 7] = std::array::from_fn(|i| ((bits >> i) & 1) as f32);
            for &(i, j) in &NETWORK7 {
                let (x, y) = (a[i], a[j]);
                a[i] = x.min(y);
                a[j] = x.max(y);
            }
            assert!(a.windows(2).all(|p| p[0] <= p[1]), "{bits:07b}: {a:?}");
        }
    }

    #[test]
    fn fine_structure_equals_the_nested_separable_medians() {
        let (w, h) = (40, 30);
        let img: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 101) as f32).collect();
        let f = Frame { w, h, rn2: 0.0 };
        let m5 = |x: usize, y: usize| sepmed_at(&|x, y| img[y * w + x], w, h, 5, x, y);
        for (x, y) in [(4, 4), (10, 5), (20, 15), (35, 25), (2, 2), (39, 29)] {
            let want = m5(x, y) - sepmed_at(&m5, w, h, 9, x, y);
            assert_eq!(f.fine_structure(&img, x, y), want, "({x}, {y})");
        }
    }

    #[test]
    fn region_medians_equal_pointwise_medians() {
        let (w, h) = (50, 40);
        let img: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 101) as f32).collect();
        for r in [
            Region {
                x0: 0,
                x1: w,
                y0: 0,
                y1: h,
            },
            Region {
                x0: 5,
                x1: 23,
                y0: 30,
                y1: 40,
            },
            Region {
                x0: 45,
                x1: 50,
                y0: 0,
                y1: 4,
            },
        ] {
            let got = sepmed_region(&img, w, h, 7, r);
            for (p, v) in r.pixels(w).zip(got) {
                let want = sepmed_at(&|x, y| img[y * w + x], w, h, 7, p % w, p / w);
                assert_eq!(v, want, "pixel {p}");
            }
        }
    }

    /// A flat sky with noise, a few stars and a few hits.
    fn frame() -> (Vec<f32>, usize, usize, Vec<usize>) {
        let (w, h) = (96, 80);
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut img: Vec<f32> = (0..w * h)
            .map(|_| {
                let (u1, u2) = (next(), next());
                (1000.0 + 10.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
                    as f32
            })
            .collect();
        for &(cx, cy) in &[(20.3, 30.6), (60.5, 50.2), (75.1, 20.9)] {
            for y in 0..h {
                for x in 0..w {
                    let r2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    img[y * w + x] += (3000.0 * (-0.5 * r2 / 2.25).exp()) as f32;
                }
            }
        }
        let hits = vec![
            10 * w + 40,
            11 * w + 41,
            60 * w + 12,
            70 * w + 80,
            70 * w + 81,
        ];
        for &p in &hits {
            img[p] += 2000.0;
        }
        (img, w, h, hits)
    }

    #[test]
    fn hits_are_found_and_cleaned_and_stars_are_not_hits() {
        let (mut img, w, h, hits) = frame();
        let opts = CosmicOptions {
            readnoise: 10.0,
            ..Default::default()
        };
        let mask = clean(&mut img, w, h, None, &opts);
        for &p in &hits {
            assert!(mask[p], "hit at {p} missed");
            assert!(
                (img[p] - 1000.0).abs() < 40.0,
                "hit at {p} cleaned to {}",
                img[p]
            );
        }
        for &(cx, cy) in &[(20usize, 31usize), (60, 50), (75, 21)] {
            assert!(
                !mask[cy * w + cx],
                "star core at ({cx}, {cy}) taken for a hit"
            );
        }
        let extra = mask.iter().filter(|&&m| m).count() - hits.len();
        assert!(extra <= 6, "{extra} pixels flagged beyond the hits");
    }
}
