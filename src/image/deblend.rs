//! Multi-threshold deblending (Bertin & Arnouts 1996, §3.3; SExtractor's DEBLEND_NTHRESH and
//! DEBLEND_MINCONT).
//!
//! An object found at the detection threshold is re-thresholded at `nthresh` levels spaced
//! exponentially between that threshold and its peak (in units of the local RMS, on the
//! filtered image). Walking up the levels, a component whose pixels above the next level fall
//! into two or more connected branches, each holding at least `min_area` pixels and more than
//! `contrast` of the whole object's flux, splits into those branches; each branch is refined
//! further at the higher levels. The pixels that end up in no branch (the wings) go to the
//! branch most likely to have produced them: each branch is modelled as a bivariate Gaussian
//! with its own flux, centroid and second moments, and a pixel joins the branch whose model is
//! brightest there.
//!
//! Everything is sized by the object itself: no pixel stack or sub-object limit to overflow.

use super::detect::{Object, Run};
use super::measure::Moments;

/// Settings of the deblender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeblendOptions {
    /// Number of levels (SExtractor's default 32; below 2 disables deblending).
    pub nthresh: usize,
    /// Minimum fraction of the object's flux a branch needs to count (default 0.005).
    pub contrast: f64,
}

impl Default for DeblendOptions {
    fn default() -> Self {
        DeblendOptions {
            nthresh: 32,
            contrast: 0.005,
        }
    }
}

/// Splits `obj` into its components (itself alone when it is not blended). `det` is the
/// detection image (filtered when a kernel is used), `rms` the background RMS map, `thresh`
/// the detection threshold in RMS units.
pub fn deblend(
    obj: &Object,
    det: &[f32],
    rms: &[f32],
    width: usize,
    thresh: f32,
    min_area: usize,
    opts: &DeblendOptions,
) -> Vec<Object> {
    if opts.nthresh < 2 || obj.npix < 2 * min_area.max(1) {
        return vec![obj.clone()];
    }
    let grid = Grid::new(obj, det, rms, width);
    let total: f64 = grid.pix.iter().map(|p| p.flux.max(0.0)).sum();
    let peak = grid
        .pix
        .iter()
        .map(|p| p.snr)
        .fold(f32::NEG_INFINITY, f32::max);
    if !(peak > thresh && thresh > 0.0 && total > 0.0) {
        return vec![obj.clone()];
    }
    // Two branches need two local maxima: an object with one cannot split.
    if grid.local_maxima(thresh) < 2 {
        return vec![obj.clone()];
    }
    let min_flux = opts.contrast * total;
    let mut scratch = Scratch::new(grid.w * grid.h);
    let mut active: Vec<Vec<u32>> = vec![(0..grid.pix.len() as u32).collect()];
    let mut done: Vec<Vec<u32>> = Vec::new();
    let ratio = (peak / thresh) as f64;
    for k in 1..opts.nthresh {
        let level = thresh as f64 * ratio.powf(k as f64 / opts.nthresh as f64);
        let mut next = Vec::with_capacity(active.len());
        for comp in active {
            let branches: Vec<Vec<u32>> = grid
                .components(&comp, level as f32, &mut scratch)
                .into_iter()
                .filter(|b| b.len() >= min_area && grid.flux(b) > min_flux)
                .collect();
            match branches.len() {
                0 => done.push(comp),
                1 => next.push(comp),
                _ => next.extend(branches),
            }
        }
        active = next;
        if active.is_empty() {
            break;
        }
    }
    done.extend(active);
    if done.len() < 2 {
        return vec![obj.clone()];
    }
    grid.assign(&done)
}

/// One object pixel: position, filtered value and S/N.
struct Pix {
    x: u32,
    y: u32,
    flux: f64,
    snr: f32,
}

/// An object's pixels with a bounding-box index for neighbour lookups.
struct Grid {
    pix: Vec<Pix>,
    x0: u32,
    y0: u32,
    w: usize,
    h: usize,
    /// Local bbox cell → pixel index (u32::MAX outside the object).
    index: Vec<u32>,
}

/// Reusable marks for the per-level labelling (stamped, so never cleared).
struct Scratch {
    member: Vec<u32>,
    seen: Vec<u32>,
    stamp: u32,
    stack: Vec<u32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            member: vec![0; n],
            seen: vec![0; n],
            stamp: 0,
            stack: Vec::new(),
        }
    }
}

impl Grid {
    fn new(obj: &Object, det: &[f32], rms: &[f32], width: usize) -> Self {
        let (xmin, xmax, ymin, ymax) = obj.bbox();
        let (w, h) = (xmax - xmin + 1, ymax - ymin + 1);
        let mut index = vec![u32::MAX; w * h];
        let mut pix = Vec::with_capacity(obj.npix);
        for (x, y) in obj.pixels() {
            let d = det[y * width + x];
            let r = rms[y * width + x];
            let snr = if r > 0.0 && d.is_finite() {
                d / r
            } else {
                f32::NEG_INFINITY
            };
            index[(y - ymin) * w + (x - xmin)] = pix.len() as u32;
            pix.push(Pix {
                x: x as u32,
                y: y as u32,
                flux: if d.is_finite() { d as f64 } else { 0.0 },
                snr,
            });
        }
        Grid {
            pix,
            x0: xmin as u32,
            y0: ymin as u32,
            w,
            h,
            index,
        }
    }

    fn cell(&self, p: &Pix) -> usize {
        (p.y - self.y0) as usize * self.w + (p.x - self.x0) as usize
    }

    /// Pixels above `level` at least as high as each of their neighbours in the object
    /// (stopping at 2).
    fn local_maxima(&self, level: f32) -> usize {
        let mut n = 0;
        for p in &self.pix {
            if p.snr <= level {
                continue;
            }
            let (cx, cy) = ((p.x - self.x0) as i64, (p.y - self.y0) as i64);
            let mut top = true;
            'around: for dy in -1..=1i64 {
                for dx in -1..=1i64 {
                    let (nx, ny) = (cx + dx, cy + dy);
                    if (dx, dy) == (0, 0)
                        || nx < 0
                        || ny < 0
                        || nx >= self.w as i64
                        || ny >= self.h as i64
                    {
                        continue;
                    }
                    let q = self.index[ny as usize * self.w + nx as usize];
                    if q != u32::MAX && self.pix[q as usize].snr > p.snr {
                        top = false;
                        break 'around;
                    }
                }
            }
            if top {
                n += 1;
                if n >= 2 {
                    break;
                }
            }
        }
        n
    }

    fn flux(&self, comp: &[u32]) -> f64 {
        comp.iter().map(|&i| self.pix[i as usize].flux).sum()
    }

    /// 8-connected components of the pixels of `comp` above `level`.
    fn components(&self, comp: &[u32], level: f32, s: &mut Scratch) -> Vec<Vec<u32>> {
        s.stamp = s.stamp.wrapping_add(1);
        if s.stamp == 0 {
            s.member.fill(0);
            s.seen.fill(0);
            s.stamp = 1;
        }
        let stamp = s.stamp;
        for &i in comp {
            let p = &self.pix[i as usize];
            if p.snr > level {
                s.member[self.cell(p)] = stamp;
            }
        }
        let mut out = Vec::new();
        for &i in comp {
            let p = &self.pix[i as usize];
            let c = self.cell(p);
            if s.member[c] != stamp || s.seen[c] == stamp {
                continue;
            }
            s.seen[c] = stamp;
            s.stack.clear();
            s.stack.push(c as u32);
            let mut branch = Vec::new();
            while let Some(c) = s.stack.pop() {
                let c = c as usize;
                branch.push(self.index[c]);
                let (cx, cy) = ((c % self.w) as i64, (c / self.w) as i64);
                for dy in -1..=1i64 {
                    for dx in -1..=1i64 {
                        let (nx, ny) = (cx + dx, cy + dy);
                        if nx < 0 || ny < 0 || nx >= self.w as i64 || ny >= self.h as i64 {
                            continue;
                        }
                        let n = ny as usize * self.w + nx as usize;
                        if s.member[n] == stamp && s.seen[n] != stamp {
                            s.seen[n] = stamp;
                            s.stack.push(n as u32);
                        }
                    }
                }
            }
            out.push(branch);
        }
        out
    }

    /// Gives every pixel to a branch (its own, or the most probable) and returns the
    /// resulting objects, each marked as blended.
    fn assign(&self, branches: &[Vec<u32>]) -> Vec<Object> {
        let models: Vec<Gauss> = branches.iter().map(|b| Gauss::of(self, b)).collect();
        let mut owner = vec![u32::MAX; self.pix.len()];
        for (k, b) in branches.iter().enumerate() {
            for &i in b {
                owner[i as usize] = k as u32;
            }
        }
        for (i, o) in owner.iter_mut().enumerate() {
            if *o != u32::MAX {
                continue;
            }
            let p = &self.pix[i];
            let (x, y) = (p.x as f64, p.y as f64);
            let best = models
                .iter()
                .enumerate()
                .map(|(k, g)| (k, g.log_density(x, y)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k)
                .unwrap_or(0);
            *o = best as u32;
        }
        let mut pixels: Vec<Vec<(u32, u32)>> = vec![Vec::new(); branches.len()];
        for (i, &o) in owner.iter().enumerate() {
            pixels[o as usize].push((self.pix[i].y, self.pix[i].x));
        }
        let mut out: Vec<Object> = pixels
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|mut p| {
                p.sort_unstable();
                let mut runs: Vec<Run> = Vec::new();
                for (y, x) in p.iter().copied() {
                    match runs.last_mut() {
                        Some(r) if r.y == y && r.x1 == x => r.x1 += 1,
                        _ => runs.push(Run {
                            y,
                            x0: x,
                            x1: x + 1,
                        }),
                    }
                }
                Object {
                    npix: p.len(),
                    runs,
                    blended: true,
                }
            })
            .collect();
        out.sort_by_key(|o| (o.runs[0].y, o.runs[0].x0));
        out
    }
}

/// A branch modelled as a bivariate Gaussian: log of flux × normalised density.
struct Gauss {
    log_norm: f64,
    mx: f64,
    my: f64,
    /// Inverse covariance (cxx, cyy, cxy).
    ixx: f64,
    iyy: f64,
    ixy: f64,
}

impl Gauss {
    fn of(grid: &Grid, branch: &[u32]) -> Gauss {
        let mut mom = Moments::default();
        for &i in branch {
            let p = &grid.pix[i as usize];
            mom.add(p.x as f64, p.y as f64, p.flux.max(0.0));
        }
        mom.s = mom.s.max(f64::MIN_POSITIVE);
        let s = mom.s;
        let (mx, my, xx, yy, mut xy) = mom.central();
        // A branch sees only the top of its profile: its moments underestimate the wings, so
        // they are floored at the variance of a uniform pixel.
        let xx = xx.max(0.0) + 1.0 / 12.0;
        let yy = yy.max(0.0) + 1.0 / 12.0;
        let lim = 0.99 * (xx * yy).sqrt();
        xy = xy.clamp(-lim, lim);
        let det = xx * yy - xy * xy;
        Gauss {
            log_norm: s.ln() - (2.0 * std::f64::consts::PI * det.sqrt()).ln(),
            mx,
            my,
            ixx: yy / det,
            iyy: xx / det,
            ixy: -xy / det,
        }
    }

    fn log_density(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.mx, y - self.my);
        self.log_norm - 0.5 * (self.ixx * dx * dx + self.iyy * dy * dy + 2.0 * self.ixy * dx * dy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::detect::{DetectOptions, detect};

    fn two_stars(sep: f64, ratio: f64) -> (Vec<f32>, usize, usize) {
        let (w, h) = (64, 48);
        let mut img = vec![0f32; w * h];
        for (cx, cy, f) in [
            (30.0 - sep / 2.0, 24.0, 1000.0),
            (30.0 + sep / 2.0, 24.3, 1000.0 * ratio),
        ] {
            for y in 0..h {
                for x in 0..w {
                    let r2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    img[y * w + x] += (f * (-0.5 * r2 / 2.25).exp()) as f32;
                }
            }
        }
        (img, w, h)
    }

    fn run(img: &[f32], w: usize, h: usize, nthresh: usize) -> Vec<Object> {
        let rms = vec![1.0f32; w * h];
        detect(
            img,
            &rms,
            w,
            h,
            &DetectOptions {
                kernel: None,
                thresh_sigma: 3.0,
                deblend: DeblendOptions {
                    nthresh,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    #[test]
    fn close_pair_is_split_and_every_pixel_kept() {
        let (img, w, h) = two_stars(6.0, 0.5);
        let whole = run(&img, w, h, 1);
        assert_eq!(
            whole.len(),
            1,
            "the pair is one object at the detection threshold"
        );
        let parts = run(&img, w, h, 32);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|o| o.blended));
        assert_eq!(parts.iter().map(|o| o.npix).sum::<usize>(), whole[0].npix);
        // Each part holds its own peak.
        let has =
            |o: &Object, x: u32, y: u32| o.runs.iter().any(|r| r.y == y && r.x0 <= x && x < r.x1);
        let (a, b) = (&parts[0], &parts[1]);
        assert!((has(a, 27, 24) && has(b, 33, 24)) || (has(a, 33, 24) && has(b, 27, 24)));
    }

    #[test]
    fn faint_bump_below_the_contrast_stays_part_of_the_star() {
        let (img, w, h) = two_stars(7.0, 0.004);
        assert_eq!(run(&img, w, h, 32).len(), 1);
    }

    #[test]
    fn single_star_is_not_split() {
        let (img, w, h) = two_stars(0.0, 1.0);
        let objs = run(&img, w, h, 32);
        assert_eq!(objs.len(), 1);
        assert!(!objs[0].blended);
    }
}
