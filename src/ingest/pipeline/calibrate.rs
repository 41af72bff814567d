//! Stage 1 of a plane: calibration with the masters of `ingest --calib` (overscan, trim,
//! − bias, − dark × EXPTIME, ÷ flat). Saturation is judged on the raw pixels, before the
//! masters change the levels; the trim offset is kept to map positions back to the raw
//! frame's pixel grid (and so its WCS).

use crate::calib::frames::{Frame, FrameInfo};
use crate::calib::{Applied, CalibError, Library};
use crate::fits::Hdu;
use crate::fits::keywords::Keywords;
use crate::image::{self, ExtractOptions};

/// A plane ready for extraction.
pub struct Calibrated {
    pub pixels: Vec<f32>,
    pub width: usize,
    pub height: usize,
    /// Saturated pixels of the (trimmed) plane, judged before calibration.
    pub saturated: Option<Vec<bool>>,
    /// The masters applied, the trim offset and the warnings.
    pub applied: Applied,
}

/// Calibrates one plane (`pixels`, `width`×`height`) of `hdu`, when there is a library.
#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &str,
    hdu: &Hdu,
    kw: &Keywords,
    pixels: Vec<f32>,
    width: usize,
    height: usize,
    opts: &ExtractOptions,
    library: Option<&Library>,
) -> Result<Calibrated, CalibError> {
    let saturated = opts
        .saturation
        .map(|level| image::saturation_mask(&pixels, level));
    let Some(lib) = library else {
        return Ok(Calibrated {
            pixels,
            width,
            height,
            saturated,
            applied: Applied::default(),
        });
    };
    let raw_width = width;
    let mut frame = Frame {
        path: path.to_string(),
        width,
        height,
        pixels,
        info: FrameInfo::from_keywords(kw),
        origin: (0, 0),
        steps: Vec::new(),
    };
    let applied = lib.apply(&mut frame, &hdu.header)?;
    let (ox, oy) = frame.origin;
    let (w, h) = (frame.width, frame.height);
    let saturated = saturated.map(|m| {
        (oy..oy + h)
            .flat_map(|y| m[y * raw_width + ox..y * raw_width + ox + w].to_vec())
            .collect()
    });
    Ok(Calibrated {
        pixels: frame.pixels,
        width: w,
        height: h,
        saturated,
        applied,
    })
}
