//! Detection: matched filtering, thresholding in units of the local background RMS,
//! 8-connected labelling into objects (Bertin & Arnouts 1996, §3.2; Lutz 1980 for the
//! one-pass idea), then [`deblend`](super::deblend). Objects are stored as horizontal runs, so
//! there is no fixed pixel buffer: memory grows with what is detected, never fails on crowded
//! fields.

use super::deblend::{DeblendOptions, deblend};
use rayon::prelude::*;

/// Settings of the detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOptions {
    /// Detection threshold in units of the background RMS (SEP's `thresh` with `err` = RMS).
    pub thresh_sigma: f32,
    /// Minimum number of pixels above the threshold.
    pub min_area: usize,
    /// Filter kernel (odd width, row-major), normalised before use; `None` disables filtering.
    pub kernel: Option<Kernel>,
    /// Multi-threshold deblending.
    pub deblend: DeblendOptions,
}

/// A small convolution kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub size: usize,
    pub weights: Vec<f32>,
}

impl Kernel {
    /// SExtractor's default 3×3 pyramidal kernel (`default.conv`), also SEP's default.
    pub fn sextractor_default() -> Self {
        Kernel {
            size: 3,
            weights: vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0],
        }
    }

    /// A Gaussian of the given FWHM (pixels), truncated at a size of about 2 × FWHM (odd).
    pub fn gaussian(fwhm: f32) -> Self {
        let sigma = fwhm / 2.354_82;
        let half = ((fwhm).ceil() as usize).max(1);
        let size = 2 * half + 1;
        let mut weights = Vec::with_capacity(size * size);
        for j in 0..size {
            for i in 0..size {
                let dx = i as f32 - half as f32;
                let dy = j as f32 - half as f32;
                weights.push((-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp());
            }
        }
        Kernel { size, weights }
    }
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            thresh_sigma: 1.5,
            min_area: 5,
            kernel: Some(Kernel::sextractor_default()),
            deblend: DeblendOptions::default(),
        }
    }
}

/// A horizontal run of pixels `x0..x1` on row `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub y: u32,
    pub x0: u32,
    pub x1: u32,
}

/// One detected object: its runs (sorted by row, then x).
#[derive(Debug, Clone)]
pub struct Object {
    pub runs: Vec<Run>,
    pub npix: usize,
    /// Split off a blend by the deblender.
    pub blended: bool,
}

impl Object {
    pub fn pixels(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.runs
            .iter()
            .flat_map(|r| (r.x0..r.x1).map(move |x| (x as usize, r.y as usize)))
    }

    /// Bounding box (xmin, xmax, ymin, ymax), inclusive.
    pub fn bbox(&self) -> (usize, usize, usize, usize) {
        let xmin = self.runs.iter().map(|r| r.x0).min().unwrap_or(0) as usize;
        let xmax = self.runs.iter().map(|r| r.x1).max().unwrap_or(1) as usize - 1;
        let ymin = self.runs.first().map(|r| r.y).unwrap_or(0) as usize;
        let ymax = self.runs.last().map(|r| r.y).unwrap_or(0) as usize;
        (xmin, xmax, ymin, ymax)
    }
}

/// Convolves `img` with the normalised `kernel` (pixels beyond the edge and NaN pixels do not
/// contribute; the kernel is renormalised over the pixels that do).
pub fn convolve(img: &[f32], width: usize, height: usize, kernel: &Kernel) -> Vec<f32> {
    let sum: f32 = kernel.weights.iter().sum();
    let k: Vec<f32> = kernel.weights.iter().map(|w| w / sum).collect();
    let half = kernel.size / 2;
    let mut out = vec![0f32; img.len()];
    let finite_rows: Vec<bool> = img
        .par_chunks(width)
        .map(|r| r.iter().all(|v| v.is_finite()))
        .collect();
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        let interior_y = y >= half && y + half < height;
        // Rows whose neighbourhood has no NaN: a plain weighted sum over shifted rows (the
        // kernel sums to 1), which vectorises; the edges and NaN rows take the general path.
        if interior_y && width > 2 * half && finite_rows[y - half..=y + half].iter().all(|f| *f) {
            let n = width - 2 * half;
            let acc = &mut row[half..half + n];
            acc.fill(0.0);
            for j in 0..kernel.size {
                let src = &img[(y + j - half) * width..(y + j - half + 1) * width];
                for i in 0..kernel.size {
                    let kv = k[j * kernel.size + i];
                    if kv == 0.0 {
                        continue;
                    }
                    for (o, v) in acc.iter_mut().zip(&src[i..i + n]) {
                        *o += kv * v;
                    }
                }
            }
            for x in (0..half).chain(width - half..width) {
                row[x] = convolve_at(img, width, height, &k, kernel.size, x, y);
            }
            return;
        }
        for (x, o) in row.iter_mut().enumerate() {
            *o = convolve_at(img, width, height, &k, kernel.size, x, y);
        }
    });
    out
}

/// The kernel-weighted mean of the finite pixels around (x, y) (renormalised over them).
fn convolve_at(
    img: &[f32],
    width: usize,
    height: usize,
    k: &[f32],
    size: usize,
    x: usize,
    y: usize,
) -> f32 {
    let half = size / 2;
    let (mut acc, mut wsum) = (0f32, 0f32);
    for j in 0..size {
        let yy = y as i64 + j as i64 - half as i64;
        if yy < 0 || yy >= height as i64 {
            continue;
        }
        for i in 0..size {
            let xx = x as i64 + i as i64 - half as i64;
            if xx < 0 || xx >= width as i64 {
                continue;
            }
            let v = img[yy as usize * width + xx as usize];
            if v.is_finite() {
                acc += k[j * size + i] * v;
                wsum += k[j * size + i];
            }
        }
    }
    if wsum > 0.0 { acc / wsum } else { f32::NAN }
}

/// Finds the objects of `img` (background-subtracted) whose pixels exceed
/// `thresh_sigma × rms` in the filtered image.
pub fn detect(
    img: &[f32],
    rms: &[f32],
    width: usize,
    height: usize,
    opts: &DetectOptions,
) -> Vec<Object> {
    let filtered;
    let det: &[f32] = match &opts.kernel {
        Some(k) => {
            filtered = convolve(img, width, height, k);
            &filtered
        }
        None => img,
    };
    let t = opts.thresh_sigma;
    // Runs above threshold, row by row in parallel: a branch-free mask of the row first, then
    // its transitions, skipping eight all-below pixels at a time (most of the sky).
    let rows: Vec<Vec<Run>> = (0..height)
        .into_par_iter()
        .map_init(
            || vec![0u8; width.next_multiple_of(8)],
            |above, y| {
                let row = &det[y * width..(y + 1) * width];
                let rrow = &rms[y * width..(y + 1) * width];
                for ((a, v), r) in above.iter_mut().zip(row).zip(rrow) {
                    *a = u8::from(*v > t * *r);
                }
                runs_of_row(above, width, y as u32)
            },
        )
        .collect();
    let objects = label(rows, opts.min_area);
    if opts.deblend.nthresh < 2 {
        return objects;
    }
    objects
        .par_iter()
        .flat_map_iter(|o| deblend(o, det, rms, width, t, opts.min_area, &opts.deblend))
        .collect()
}

/// The runs of ones in `above[..width]` (zero-padded to a multiple of 8).
fn runs_of_row(above: &[u8], width: usize, y: u32) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    let mut x = 0;
    while x < width {
        if start.is_none() && x + 8 <= above.len() {
            let word = u64::from_ne_bytes(above[x..x + 8].try_into().expect("eight bytes"));
            if word == 0 {
                x += 8;
                continue;
            }
        }
        match (above[x] != 0, start) {
            (true, None) => start = Some(x),
            (false, Some(s)) => {
                runs.push(Run {
                    y,
                    x0: s as u32,
                    x1: x as u32,
                });
                start = None;
            }
            _ => {}
        }
        x += 1;
    }
    if let Some(s) = start {
        runs.push(Run {
            y,
            x0: s as u32,
            x1: width as u32,
        });
    }
    runs
}

/// Groups runs into 8-connected components (union–find over runs of adjacent rows).
fn label(rows: Vec<Vec<Run>>, min_area: usize) -> Vec<Object> {
    let runs: Vec<Run> = rows.iter().flatten().copied().collect();
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut offset_prev = 0usize;
    let mut offset = 0usize;
    for (y, row) in rows.iter().enumerate() {
        if y > 0 {
            let prev = &rows[y - 1];
            let mut j = 0usize;
            for (i, r) in row.iter().enumerate() {
                // 8-connectivity: runs touch when they overlap after widening by one pixel.
                while j < prev.len() && prev[j].x1 < r.x0 {
                    j += 1;
                }
                let mut k = j;
                while k < prev.len() && prev[k].x0 <= r.x1 {
                    let a = find(&mut parent, offset + i);
                    let b = find(&mut parent, offset_prev + k);
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                    k += 1;
                }
            }
        }
        offset_prev = offset;
        offset += row.len();
    }
    let mut groups: std::collections::HashMap<usize, Vec<Run>> = std::collections::HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(*run);
    }
    let mut objects: Vec<Object> = groups
        .into_values()
        .filter_map(|runs| {
            let npix: usize = runs.iter().map(|r| (r.x1 - r.x0) as usize).sum();
            (npix >= min_area).then_some(Object {
                runs,
                npix,
                blended: false,
            })
        })
        .collect();
    // Deterministic order: by first row, then first column.
    objects.sort_by_key(|o| (o.runs[0].y, o.runs[0].x0));
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(mask: &[&str]) -> Vec<Object> {
        let h = mask.len();
        let w = mask[0].len();
        let img: Vec<f32> = mask
            .iter()
            .flat_map(|r| r.bytes().map(|b| if b == b'#' { 10.0 } else { 0.0 }))
            .collect();
        let rms = vec![1.0; w * h];
        detect(
            &img,
            &rms,
            w,
            h,
            &DetectOptions {
                thresh_sigma: 5.0,
                min_area: 1,
                kernel: None,
                deblend: DeblendOptions::default(),
            },
        )
    }

    #[test]
    fn eight_connectivity_joins_diagonals() {
        let objs = runs_of(&["#....", ".#...", "..#..", ".....", "...##"]);
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].npix, 3);
        assert_eq!(objs[1].npix, 2);
    }

    #[test]
    fn u_shape_merges_into_one_object() {
        let objs = runs_of(&["#...#", "#...#", "#####"]);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].npix, 9);
    }

    #[test]
    fn min_area_drops_small_objects() {
        let img = vec![0.0, 10.0, 0.0, 0.0];
        let objs = detect(
            &img,
            &[1.0; 4],
            4,
            1,
            &DetectOptions {
                thresh_sigma: 5.0,
                min_area: 2,
                kernel: None,
                deblend: DeblendOptions::default(),
            },
        );
        assert!(objs.is_empty());
    }
}
