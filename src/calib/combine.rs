//! Pixel-by-pixel combination of a stack of frames: median, mean, or either after iterative
//! σ-clipping around the median (astropy's `sigma_clip` defaults: 3σ, σ the standard
//! deviation of the surviving values).
//!
//! The values of each pixel are sorted with a Batcher odd–even merge network run across 64
//! pixels at a time, so every compare-exchange is a vector min/max; NaN values (bad pixels)
//! sort last and are left out.

use rayon::prelude::*;

/// How a stack is reduced to one value per pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Median,
    Mean,
    /// Median of the values within `sigma` standard deviations of the median, iterated.
    ClippedMedian {
        sigma: f32,
    },
    /// Mean of the same values.
    ClippedMean {
        sigma: f32,
    },
}

impl Method {
    pub fn name(&self) -> String {
        match self {
            Method::Median => "median".into(),
            Method::Mean => "mean".into(),
            Method::ClippedMedian { sigma } => format!("{sigma}-sigma-clipped median"),
            Method::ClippedMean { sigma } => format!("{sigma}-sigma-clipped mean"),
        }
    }
}

const LANES: usize = 64;

/// Combines equally sized frames pixel by pixel. Pixels with no valid value are NaN.
pub fn combine(frames: &[&[f32]], method: Method) -> Vec<f32> {
    let Some(first) = frames.first() else {
        return Vec::new();
    };
    let npix = first.len();
    assert!(
        frames.iter().all(|f| f.len() == npix),
        "frames differ in size"
    );
    let n = frames.len();
    let network = batcher_network(n);
    let mut out = vec![0f32; npix];
    out.par_chunks_mut(LANES * 64).enumerate().for_each_init(
        || (vec![0f32; n * LANES], vec![0f32; n]),
        |(buf, one), (c, chunk)| {
            let base = c * LANES * 64;
            for (l, lanes) in chunk.chunks_mut(LANES).enumerate() {
                let p0 = base + l * LANES;
                let m = lanes.len();
                for (k, f) in frames.iter().enumerate() {
                    let row = &mut buf[k * LANES..k * LANES + m];
                    for (b, v) in row.iter_mut().zip(&f[p0..p0 + m]) {
                        *b = if v.is_nan() { f32::INFINITY } else { *v };
                    }
                }
                for &(i, j) in &network {
                    let (lo, hi) = buf.split_at_mut(j * LANES);
                    let a = &mut lo[i * LANES..i * LANES + m];
                    let b = &mut hi[..m];
                    // min/max, not a conditional swap: LLVM turns the latter into masked
                    // per-lane stores. The values hold no NaN (those became +∞).
                    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                        let (p, q) = (*x, *y);
                        *x = p.min(q);
                        *y = p.max(q);
                    }
                }
                reduce_lanes(buf, n, m, method, one, lanes);
            }
        },
    );
    out
}

/// Reduces the sorted lanes (`buf` holds row k of the sorted values at k × LANES). Lanes
/// whose values are all finite and, when clipping, all within the clip limits are reduced
/// row-wise (vectorised); the rest one by one.
fn reduce_lanes(buf: &[f32], n: usize, m: usize, method: Method, one: &mut [f32], out: &mut [f32]) {
    let row = |k: usize| &buf[k * LANES..k * LANES + m];
    let last = row(n - 1);
    let mut simple = [true; LANES];
    for (s, v) in simple.iter_mut().zip(last) {
        *s = v.is_finite();
    }
    let sigma = match method {
        Method::ClippedMedian { sigma } | Method::ClippedMean { sigma } => Some(sigma),
        _ => None,
    };
    let mut mean = [0f32; LANES];
    let mut var = [0f32; LANES];
    if !matches!(method, Method::Median) {
        for k in 0..n {
            for (s, v) in mean.iter_mut().zip(row(k)) {
                *s += v;
            }
        }
        mean.iter_mut().for_each(|s| *s /= n as f32);
        for k in 0..n {
            for ((q, s), v) in var.iter_mut().zip(&mean).zip(row(k)) {
                *q += (v - s) * (v - s);
            }
        }
        var.iter_mut().for_each(|q| *q /= n as f32);
    }
    let median = |lane: usize| {
        if n % 2 == 1 {
            buf[(n / 2) * LANES + lane]
        } else {
            0.5 * (buf[(n / 2 - 1) * LANES + lane] + buf[(n / 2) * LANES + lane])
        }
    };
    match method {
        Method::Median | Method::ClippedMedian { .. } => {
            for (lane, o) in out[..m].iter_mut().enumerate() {
                *o = median(lane);
            }
        }
        Method::Mean | Method::ClippedMean { .. } => out[..m].copy_from_slice(&mean[..m]),
    }
    if let Some(k) = sigma {
        // Nothing to clip when the extremes are within the limits around the median.
        for lane in 0..m {
            let (med, cut) = (median(lane), k * var[lane].sqrt());
            simple[lane] &= row(0)[lane] >= med - cut && last[lane] <= med + cut;
        }
    }
    for lane in 0..m {
        if simple[lane] {
            continue;
        }
        for (k, v) in one.iter_mut().enumerate() {
            *v = buf[k * LANES + lane];
        }
        // Infinite values stand for NaN inputs (a real ±inf pixel is no use in a master
        // frame either).
        let valid = one.iter().take_while(|v| v.is_finite()).count();
        out[lane] = reduce(&one[..valid], method);
    }
}

/// Reduces sorted values.
fn reduce(sorted: &[f32], method: Method) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    let (mut lo, mut hi) = (0, sorted.len());
    if let Method::ClippedMedian { sigma } | Method::ClippedMean { sigma } = method {
        for _ in 0..10 {
            let s = &sorted[lo..hi];
            let m = median_sorted(s) as f64;
            let mean = s.iter().map(|v| *v as f64).sum::<f64>() / s.len() as f64;
            let var = s.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64;
            let cut = sigma as f64 * var.sqrt();
            let nlo = lo + s.iter().take_while(|v| (**v as f64) < m - cut).count();
            let nhi = hi
                - s.iter()
                    .rev()
                    .take_while(|v| (**v as f64) > m + cut)
                    .count();
            if (nlo, nhi) == (lo, hi) || nhi <= nlo {
                break;
            }
            (lo, hi) = (nlo, nhi);
        }
    }
    let s = &sorted[lo..hi];
    match method {
        Method::Median | Method::ClippedMedian { .. } => median_sorted(s),
        Method::Mean | Method::ClippedMean { .. } => {
            (s.iter().map(|v| *v as f64).sum::<f64>() / s.len() as f64) as f32
        }
    }
}

fn median_sorted(s: &[f32]) -> f32 {
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Compare-exchange pairs (i < j) of Batcher's odd–even merge sort for `n` values: the
/// network for the next power of two, without the comparators that touch the padding (which
/// would hold +∞ and never move).
fn batcher_network(n: usize) -> Vec<(usize, usize)> {
    let size = n.next_power_of_two();
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                for i in 0..k.min(size - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && b < n {
                        pairs.push((a, b));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_sorts_every_zero_one_input() {
        for n in 1..=12usize {
            let net = batcher_network(n);
            for bits in 0u32..(1 << n) {
                let mut a: Vec<u8> = (0..n).map(|i| ((bits >> i) & 1) as u8).collect();
                for &(i, j) in &net {
                    if a[i] > a[j] {
                        a.swap(i, j);
                    }
                }
                assert!(a.windows(2).all(|p| p[0] <= p[1]), "n={n} {bits:b}");
            }
        }
    }

    #[test]
    fn median_mean_and_clipping_per_pixel() {
        // Three pixels, five frames; pixel 1 has an outlier, pixel 2 a NaN.
        let frames: Vec<Vec<f32>> = vec![
            vec![1.0, 10.0, 5.0],
            vec![2.0, 11.0, f32::NAN],
            vec![3.0, 9.0, 7.0],
            vec![4.0, 1000.0, 6.0],
            vec![5.0, 10.0, 8.0],
        ];
        let refs: Vec<&[f32]> = frames.iter().map(|f| f.as_slice()).collect();
        assert_eq!(combine(&refs, Method::Median), vec![3.0, 10.0, 6.5]);
        let mean = combine(&refs, Method::Mean);
        assert!((mean[1] - 208.0).abs() < 1e-3 && (mean[2] - 6.5).abs() < 1e-6);
        let clipped = combine(&refs, Method::ClippedMean { sigma: 1.5 });
        assert!((clipped[1] - 10.0).abs() < 1e-6, "{clipped:?}");
        assert_eq!(combine(&refs, Method::ClippedMedian { sigma: 3.0 })[0], 3.0);
        let all_nan: Vec<&[f32]> = vec![&[f32::NAN], &[f32::NAN]];
        assert!(combine(&all_nan, Method::Median)[0].is_nan());
    }

    #[test]
    fn large_stacks_match_a_plain_sort() {
        let n = 11;
        let npix = 5000;
        let frames: Vec<Vec<f32>> = (0..n)
            .map(|k| (0..npix).map(|p| ((p * 31 + k * 17) % 97) as f32).collect())
            .collect();
        let refs: Vec<&[f32]> = frames.iter().map(|f| f.as_slice()).collect();
        let got = combine(&refs, Method::Median);
        for p in 0..npix {
            let mut v: Vec<f32> = frames.iter().map(|f| f[p]).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            assert_eq!(got[p], v[n / 2]);
        }
    }
}
