//! One raw calibration or science frame: its pixels after overscan subtraction and trimming,
//! and the header facts masters are matched on (instrument, filter, binning, date, exposure).

use super::CalibError;
use crate::fits::keywords::Keywords;
use crate::fits::{FitsFile, Header};
use std::path::Path;

/// A `[x1:x2,y1:y2]` FITS section, 1-based inclusive, normalised to 0-based half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl Section {
    /// Parses `[x1:x2,y1:y2]` (either order along each axis).
    pub fn parse(s: &str) -> Option<Section> {
        let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
        let (xs, ys) = inner.split_once(',')?;
        let range = |r: &str| -> Option<(usize, usize)> {
            let (a, b) = r.split_once(':')?;
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a >= 1 && b >= 1).then(|| (a.min(b) - 1, a.max(b)))
        };
        let (x0, x1) = range(xs)?;
        let (y0, y1) = range(ys)?;
        Some(Section { x0, x1, y0, y1 })
    }

    fn fits(&self, w: usize, h: usize) -> bool {
        self.x1 <= w && self.y1 <= h && self.x0 < self.x1 && self.y0 < self.y1
    }
}

/// What a frame is matched on.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub instrument: String,
    pub filter: String,
    /// Binning as "XxY" (CCDSUM, or XBINNING/YBINNING; "1x1" when absent).
    pub binning: String,
    pub mjd: Option<f64>,
    pub exptime: Option<f64>,
}

impl FrameInfo {
    pub fn from_keywords(kw: &Keywords) -> FrameInfo {
        let binning = kw
            .string(&["CCDSUM"])
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join("x"))
            .or_else(|| {
                let x = kw.number(&["XBINNING", "BINX"])?;
                let y = kw.number(&["YBINNING", "BINY"]).unwrap_or(x);
                Some(format!("{}x{}", x as i64, y as i64))
            })
            .unwrap_or_else(|| "1x1".into());
        FrameInfo {
            instrument: kw.instrument().unwrap_or_default(),
            filter: kw.filter().unwrap_or_default(),
            binning,
            mjd: kw.mjd_obs(),
            exptime: kw.exptime(),
        }
    }
}

/// A frame ready to combine or calibrate.
#[derive(Debug, Clone)]
pub struct Frame {
    pub path: String,
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
    pub info: FrameInfo,
    /// Offset of the kept pixels in the raw frame (the trim section's origin), so positions
    /// map back to the raw frame's WCS.
    pub origin: (usize, usize),
    /// What was done: "overscan [..]", "trim [..]".
    pub steps: Vec<String>,
}

/// Reads the first image HDU of `path`, subtracts the overscan (BIASSEC) and trims to
/// TRIMSEC or DATASEC.
pub fn read_frame(path: &Path) -> Result<Frame, CalibError> {
    let file = FitsFile::open(path)?;
    let hdu = file
        .hdus
        .iter()
        .find(|h| matches!(file.image_dims(h), Ok(Some(d)) if d.n_pixels().unwrap_or(0) > 0))
        .ok_or_else(|| CalibError::NoImage {
            path: path.display().to_string(),
        })?;
    let data = file.read_plane::<f32>(hdu, 0)?;
    let primary = file.hdus.first().map(|h| &h.header);
    let kw = Keywords {
        hdu: &hdu.header,
        primary: if hdu.index == 0 { None } else { primary },
    };
    let mut frame = Frame {
        path: path.display().to_string(),
        width: data.width,
        height: data.height,
        pixels: data.pixels,
        info: FrameInfo::from_keywords(&kw),
        origin: (0, 0),
        steps: Vec::new(),
    };
    prepare(&mut frame, &hdu.header)?;
    Ok(frame)
}

/// Overscan subtraction and trimming, in place, as the header asks.
pub fn prepare(frame: &mut Frame, header: &Header) -> Result<(), CalibError> {
    let (path, width, height) = (frame.path.clone(), frame.width, frame.height);
    let section = |key: &str| -> Result<Option<Section>, CalibError> {
        match header.str(key) {
            None => Ok(None),
            Some(s) => {
                let sec = Section::parse(s)
                    .filter(|sec| sec.fits(width, height))
                    .ok_or_else(|| CalibError::Section {
                        path: path.clone(),
                        key: key.to_string(),
                        value: s.to_string(),
                        width,
                        height,
                    })?;
                Ok(Some(sec))
            }
        }
    };
    if let Some(os) = section("BIASSEC")? {
        subtract_overscan(frame, os);
        frame
            .steps
            .push(format!("overscan {}", header.str("BIASSEC").unwrap_or("")));
    }
    let trim = match section("TRIMSEC")? {
        Some(t) => Some((t, "TRIMSEC")),
        None => section("DATASEC")?.map(|t| (t, "DATASEC")),
    };
    if let Some((t, key)) = trim
        && (t.x1 - t.x0, t.y1 - t.y0) != (frame.width, frame.height)
    {
        let w = t.x1 - t.x0;
        let mut out = Vec::with_capacity(w * (t.y1 - t.y0));
        for y in t.y0..t.y1 {
            out.extend_from_slice(&frame.pixels[y * frame.width + t.x0..y * frame.width + t.x1]);
        }
        frame.pixels = out;
        frame.width = w;
        frame.height = t.y1 - t.y0;
        frame.origin = (t.x0, t.y0);
        frame
            .steps
            .push(format!("trim {key} {}", header.str(key).unwrap_or("")));
    }
    Ok(())
}

/// Subtracts the overscan level: per row (the median of the row's overscan pixels) when the
/// overscan is a strip of columns, per column when it is a strip of rows.
fn subtract_overscan(frame: &mut Frame, os: Section) {
    let w = frame.width;
    let median = |mut v: Vec<f32>| crate::image::background::median(&mut v);
    if os.x1 - os.x0 <= os.y1 - os.y0 {
        let levels: Vec<f32> = (0..frame.height)
            .map(|y| {
                let yy = y.clamp(os.y0, os.y1 - 1);
                median(frame.pixels[yy * w + os.x0..yy * w + os.x1].to_vec())
            })
            .collect();
        for (row, level) in frame.pixels.chunks_mut(w).zip(levels) {
            row.iter_mut().for_each(|v| *v -= level);
        }
    } else {
        let levels: Vec<f32> = (0..w)
            .map(|x| {
                let xx = x.clamp(os.x0, os.x1 - 1);
                median((os.y0..os.y1).map(|y| frame.pixels[y * w + xx]).collect())
            })
            .collect();
        for row in frame.pixels.chunks_mut(w) {
            row.iter_mut().zip(&levels).for_each(|(v, l)| *v -= l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_in_either_order() {
        assert_eq!(
            Section::parse("[1:100, 5:20]"),
            Some(Section {
                x0: 0,
                x1: 100,
                y0: 4,
                y1: 20
            })
        );
        assert_eq!(
            Section::parse("[100:1,20:5]"),
            Section::parse("[1:100,5:20]")
        );
        assert_eq!(Section::parse("[0:10,1:2]"), None);
        assert_eq!(Section::parse("1:10,1:2"), None);
    }
}
