//! The per-image pipeline: FITS bytes → image planes → catalog rows, one rayon task per image
//! HDU. Each plane goes through one stage per file:
//!
//! 1. [`calibrate`]: the masters of `--calib` (and the saturation mask of the raw pixels);
//! 2. extraction ([`crate::image::extract_with_mask`]: cosmic rays, background, detection,
//!    deblending, measurement);
//! 3. [`astrometry`]: pixel → sky with the header's WCS;
//! 4. [`rows`]: the `sources` and `exposures` rows.

pub mod astrometry;
pub mod calibrate;
pub mod rows;

use crate::calib::{CalibError, Library};
use crate::catalog::schema::{ExposureRow, SourceRow};
use crate::fits::keywords::Keywords;
use crate::fits::{FitsError, FitsFile, Hdu};
use crate::image::{self, ExtractOptions};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Why a file or an HDU was not ingested, as a bounded label (metrics, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The file could not be read.
    Io,
    /// Not FITS, or a malformed header or table.
    BadFits,
    /// A data unit shorter than its header says.
    Truncated,
    /// A FITS feature not supported (a compression type, a dimensionality).
    Unsupported,
    /// A claim beyond the configured limits (pixels, header cards, size).
    Refused,
    /// The calibration masters could not be applied.
    Calibration,
    /// A file without image data, or without an HDU that could be processed.
    NoImage,
    /// Stopped before it was processed (a job timed out).
    Stopped,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Io => "io",
            FailureKind::BadFits => "bad_fits",
            FailureKind::Truncated => "truncated",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Refused => "refused",
            FailureKind::Calibration => "calibration",
            FailureKind::NoImage => "no_image",
            FailureKind::Stopped => "stopped",
        }
    }

    /// The kind of a FITS reading error.
    pub fn of_fits(e: &FitsError) -> Self {
        match e {
            FitsError::Io { .. } => FailureKind::Io,
            FitsError::Truncated { .. } => FailureKind::Truncated,
            FitsError::Unsupported { .. } => FailureKind::Unsupported,
            FitsError::TooLarge { .. } | FitsError::Limit { .. } => FailureKind::Refused,
            FitsError::Gzip { .. }
            | FitsError::NotFits { .. }
            | FitsError::Header { .. }
            | FitsError::NotImage { .. }
            | FitsError::NoSuchHdu { .. } => FailureKind::BadFits,
        }
    }
}

/// A failure with its kind and what to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<FitsError> for Failure {
    fn from(e: FitsError) -> Self {
        Failure::new(FailureKind::of_fits(&e), e.to_string())
    }
}

impl From<CalibError> for Failure {
    fn from(e: CalibError) -> Self {
        match e {
            CalibError::Fits(f) => f.into(),
            other => Failure::new(FailureKind::Calibration, other.to_string()),
        }
    }
}

/// Why an HDU was not processed.
#[derive(Debug, Clone, PartialEq)]
pub struct HduProblem {
    pub hdu: usize,
    pub kind: FailureKind,
    pub reason: String,
}

/// What one input file produced.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub exposures: Vec<ExposureRow>,
    pub sources: Vec<SourceRow>,
    /// Image HDUs that could not be processed.
    pub failed: Vec<HduProblem>,
    /// Problems that did not stop the file (e.g. a damaged HDU after good ones).
    pub warnings: Vec<String>,
    /// HDUs whose CHECKSUM or DATASUM does not verify (warnings, or failures with --strict).
    pub checksum_mismatches: Vec<HduProblem>,
}

/// Hex SHA-256 of a file's bytes: the identity of an input.
pub fn content_hash(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stable exposure id: 63 bits of SHA-256 over the file hash, the HDU index and, for the
/// planes of a data cube, the plane index.
pub fn exposure_id(file_sha256: &str, hdu: usize, plane: Option<usize>) -> i64 {
    let key = match plane {
        None => format!("{file_sha256}:{hdu}"),
        Some(p) => format!("{file_sha256}:{hdu}:{p}"),
    };
    let d = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 1) as i64
}

/// The rows of one plane: its exposure, its sources, and warnings.
type PlaneRows = (ExposureRow, Vec<SourceRow>, Vec<String>);

/// What every plane of a file is processed with.
struct Run<'a> {
    file: &'a FitsFile,
    file_uri: &'a str,
    file_sha256: &'a str,
    opts: &'a ExtractOptions,
    calib: Option<&'a Library>,
    primary: Option<&'a crate::fits::Header>,
}

/// Processes every image HDU of a parsed file (calibrating with `calib` when given).
pub fn process_file(
    file: &FitsFile,
    file_uri: &str,
    file_sha256: &str,
    opts: &ExtractOptions,
    calib: Option<&Library>,
) -> FileOutcome {
    let mut out = FileOutcome::default();
    if let Some(e) = &file.trailing_error {
        out.warnings.push(e.to_string());
    }
    for hdu in &file.hdus {
        let status = file.verify_checksum(hdu);
        if status.is_mismatch() {
            out.checksum_mismatches.push(HduProblem {
                hdu: hdu.index,
                kind: FailureKind::BadFits,
                reason: format!(
                    "{}: the file is damaged or was modified after it was written",
                    status.as_str()
                ),
            });
        }
    }
    let run = Run {
        file,
        file_uri,
        file_sha256,
        opts,
        calib,
        primary: file.hdus.first().map(|h| &h.header),
    };
    let results: Vec<(usize, Result<Vec<PlaneRows>, Failure>)> = file
        .hdus
        .par_iter()
        .map(|hdu| (hdu.index, run.hdu(hdu)))
        .collect();
    for (hdu, r) in results {
        match r {
            Ok(rows) => {
                for (e, s, w) in rows {
                    out.exposures.push(e);
                    out.sources.extend(s);
                    out.warnings.extend(w);
                }
            }
            Err(f) => out.failed.push(HduProblem {
                hdu,
                kind: f.kind,
                reason: f.message,
            }),
        }
    }
    out
}

impl Run<'_> {
    /// Every plane of one HDU; nothing for HDUs that hold no image (tables, NAXIS = 0).
    fn hdu(&self, hdu: &Hdu) -> Result<Vec<PlaneRows>, Failure> {
        let Some(dims) = self.file.image_dims(hdu)? else {
            return Ok(Vec::new());
        };
        if dims.n_pixels() == Some(0) {
            return Ok(Vec::new());
        }
        let (_, _, planes) = dims.plane_shape().ok_or_else(|| FitsError::Unsupported {
            path: self.file.path.clone(),
            hdu: hdu.index,
            what: format!("a {}-dimensional image", dims.axes.len()),
        })?;
        (0..planes)
            .map(|plane| self.plane(hdu, (planes > 1).then_some(plane)))
            .collect()
    }

    /// One image plane (`plane` is `None` for a plain 2-D image), stage by stage.
    fn plane(&self, hdu: &Hdu, plane: Option<usize>) -> Result<PlaneRows, Failure> {
        let data = self.file.read_plane::<f32>(hdu, plane.unwrap_or(0))?;
        let kw = Keywords {
            hdu: &hdu.header,
            primary: if hdu.index == 0 { None } else { self.primary },
        };
        let opts = options_for(self.opts, &kw);
        let cal = calibrate::run(
            &self.file.path,
            hdu,
            &kw,
            data.pixels,
            data.width,
            data.height,
            &opts,
            self.calib,
        )?;
        let (width, height) = (cal.width, cal.height);
        let mut extraction =
            image::extract_with_mask(cal.pixels, width, height, &opts, cal.saturated);
        // Positions on the raw frame's pixel grid (its WCS's).
        let (ox, oy) = (cal.applied.origin.0 as f64, cal.applied.origin.1 as f64);
        for s in &mut extraction.sources {
            s.m.x += ox;
            s.m.y += oy;
            s.m.x_win += ox;
            s.m.y_win += oy;
        }
        let sky = astrometry::Sky::from_header(&hdu.header);
        let id = exposure_id(self.file_sha256, hdu.index, plane);
        let sources = rows::sources(&extraction, &sky, &kw, id);
        let p = rows::Plane {
            hdu,
            plane,
            exposure_id: id,
            file_uri: self.file_uri,
            file_sha256: self.file_sha256,
            width,
            height,
            aperture_radii: &opts.measure.aperture_radii,
        };
        let exposure = rows::exposure(&p, &kw, &extraction, sources.len(), &sky, &cal.applied);
        let warnings = cal
            .applied
            .warnings
            .into_iter()
            .map(|w| format!("HDU {}: calibration: {w}", hdu.index))
            .collect();
        Ok((exposure, sources, warnings))
    }
}

/// The extraction settings for one HDU: the configured ones, with the detector's saturation,
/// gain and read noise from the header where the configuration leaves them open.
pub fn options_for(opts: &ExtractOptions, kw: &Keywords) -> ExtractOptions {
    let mut ex_opts = opts.clone();
    if ex_opts.saturation.is_none() {
        ex_opts.saturation = kw.saturation();
    }
    if ex_opts.measure.gain.is_none() {
        ex_opts.measure.gain = kw.gain();
    }
    if let (Some(c), false) = (ex_opts.cosmic.as_mut(), ex_opts.readnoise_set)
        && let Some(rn) = kw.readnoise()
    {
        c.readnoise = rn as f32;
    }
    ex_opts
}
