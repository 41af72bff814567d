//! `astropipe preview`: a picture to check the pipeline by eye. The raw image, sky-subtracted
//! and asinh-stretched (Lupton et al. 2004) from −1σ to its 99.9th percentile, in grey;
//! detections circled in green (radius 2.5 × the semi-major axis, at least 4 px, SExtractor's
//! AUTO scale), blended ones in yellow, saturated or truncated ones in orange; cosmic-ray hits
//! painted red. Images larger than `max_size` are binned down by an integer factor first.

use super::{Extraction, flags};

/// An 8-bit RGB picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    /// The picture as a PNG file (8-bit RGB, encoded by the `png` crate).
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        // Writing into a Vec fails only on a buffer that does not match the header, which
        // `render` never makes.
        let mut w = enc.write_header().expect("PNG header into a Vec");
        w.write_image_data(&self.rgb)
            .expect("RGB rows match the header");
        w.finish().expect("PNG into a Vec");
        out
    }
}

const GREEN: [u8; 3] = [40, 220, 60];
const YELLOW: [u8; 3] = [240, 220, 40];
const ORANGE: [u8; 3] = [255, 140, 0];
const RED: [u8; 3] = [255, 30, 30];

/// Renders `raw` (physical values, before cleaning) with the extraction's sources and the
/// cosmic-ray mask drawn on it.
pub fn render(
    raw: &[f32],
    width: usize,
    height: usize,
    ex: &Extraction,
    cosmic: Option<&[bool]>,
    max_size: usize,
) -> Picture {
    let bin = width.max(height).div_ceil(max_size.max(16)).max(1);
    let (pw, ph) = (width.div_ceil(bin), height.div_ceil(bin));
    // Bin by averaging the finite pixels.
    let mut img = vec![f32::NAN; pw * ph];
    for (py, row) in img.chunks_mut(pw).enumerate() {
        for (px, out) in row.iter_mut().enumerate() {
            let (mut s, mut n) = (0f64, 0u32);
            for y in py * bin..((py + 1) * bin).min(height) {
                for x in px * bin..((px + 1) * bin).min(width) {
                    let v = raw[y * width + x];
                    if v.is_finite() {
                        s += v as f64;
                        n += 1;
                    }
                }
            }
            if n > 0 {
                *out = (s / n as f64) as f32;
            }
        }
    }
    // Noise per binned pixel falls as 1/bin for uncorrelated noise.
    let sigma = (ex.global_rms / bin as f32).max(f32::MIN_POSITIVE);
    let sky = ex.global_back;
    let mut finite: Vec<f32> = img.iter().copied().filter(|v| v.is_finite()).collect();
    let top = if finite.is_empty() {
        sky + 10.0 * sigma
    } else {
        let k = ((finite.len() as f64 * 0.999) as usize).min(finite.len() - 1);
        *finite.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
    };
    let beta = 3.0 * sigma;
    let lo = -sigma;
    let hi = (top - sky).max(10.0 * sigma);
    let stretch = |v: f32| -> u8 {
        if !v.is_finite() {
            return 0;
        }
        let x = (v - sky).clamp(lo, hi);
        let t = ((x - lo) / beta).asinh() / ((hi - lo) / beta).asinh();
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    let mut rgb: Vec<u8> = img
        .iter()
        .flat_map(|&v| {
            let g = stretch(v);
            [g, g, g]
        })
        .collect();
    if let Some(mask) = cosmic {
        for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
            let (x, y) = ((i % width) / bin, (i / width) / bin);
            rgb[(y * pw + x) * 3..(y * pw + x) * 3 + 3].copy_from_slice(&RED);
        }
    }
    for s in &ex.sources {
        let m = &s.m;
        let colour = if m.flags & (flags::SATURATED | flags::TRUNCATED) != 0 {
            ORANGE
        } else if m.flags & flags::BLENDED != 0 {
            YELLOW
        } else {
            GREEN
        };
        let r = (2.5 * m.a).max(4.0) / bin as f64;
        circle(
            &mut rgb,
            pw,
            ph,
            (m.x + 0.5) / bin as f64 - 0.5,
            (m.y + 0.5) / bin as f64 - 0.5,
            r.max(2.0),
            colour,
        );
    }
    // FITS rows go up; pictures go down.
    let mut flipped = Vec::with_capacity(rgb.len());
    for row in rgb.chunks_exact(3 * pw).rev() {
        flipped.extend_from_slice(row);
    }
    Picture {
        width: pw,
        height: ph,
        rgb: flipped,
    }
}

/// Draws a one-pixel circle outline (before the flip: image coordinates).
fn circle(rgb: &mut [u8], w: usize, h: usize, cx: f64, cy: f64, r: f64, c: [u8; 3]) {
    let steps = ((2.0 * std::f64::consts::PI * r * 1.5).ceil() as usize).max(16);
    for k in 0..steps {
        let t = 2.0 * std::f64::consts::PI * k as f64 / steps as f64;
        let (x, y) = ((cx + r * t.cos()).round(), (cy + r * t.sin()).round());
        if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 {
            continue;
        }
        let i = (y as usize * w + x as usize) * 3;
        rgb[i..i + 3].copy_from_slice(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::Picture;

    #[test]
    fn png_round_trips_through_a_decoder() {
        let (width, height) = (7, 5);
        let rgb: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let png = Picture {
            width,
            height,
            rgb: rgb.clone(),
        }
        .to_png();
        let mut r = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut out = vec![0; r.output_buffer_size()];
        let frame = r.next_frame(&mut out).unwrap();
        assert_eq!((frame.width, frame.height), (7, 5));
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        assert_eq!(&out[..frame.buffer_size()], &rgb[..]);
    }
}
