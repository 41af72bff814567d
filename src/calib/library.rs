//! `ingest --calib DIR`: the masters in a directory, the choice of those that fit a science
//! frame (same instrument and binning, same filter for flats, nearest date), and their
//! application: overscan and trim as the frame's header says, − bias, − dark rate × EXPTIME,
//! ÷ flat; pixels in the flat's bad-pixel mask become NaN (so sources on them are flagged).

use super::CalibError;
use super::frames::{Frame, FrameInfo, prepare};
use crate::fits::keywords::Keywords;
use crate::fits::{FitsFile, Header};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A master frame found in the directory (pixels read on first use).
#[derive(Debug)]
pub struct Master {
    pub kind: String,
    pub path: PathBuf,
    pub info: FrameInfo,
    /// The pixels, or why they could not be read (kept: the next frame gets the same answer).
    pixels: OnceLock<Result<Loaded, CalibError>>,
}

#[derive(Debug)]
struct Loaded {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
    bpm: Option<Vec<bool>>,
}

/// All masters of a directory.
#[derive(Debug, Default)]
pub struct Library {
    pub dir: PathBuf,
    pub masters: Vec<Master>,
}

/// The masters chosen for one frame.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    pub bias: Option<String>,
    pub dark: Option<String>,
    pub flat: Option<String>,
    /// Why a kind of master was not applied.
    pub warnings: Vec<String>,
    /// Origin of the kept pixels in the raw frame (the trim offset).
    pub origin: (usize, usize),
}

impl Library {
    /// Reads the headers of the `*.fits` masters (those with a MASTER keyword) in `dir`.
    pub fn load(dir: &Path) -> Result<Library, CalibError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CalibError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let mut masters = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "fits") {
                continue;
            }
            let Ok((hdus, _)) = crate::fits::file::open_headers(&path) else {
                continue;
            };
            let Some(h) = hdus.first() else { continue };
            let Some(kind) = h.header.str("MASTER").map(|s| s.to_ascii_lowercase()) else {
                continue;
            };
            let kw = Keywords {
                hdu: &h.header,
                primary: None,
            };
            masters.push(Master {
                kind,
                info: FrameInfo::from_keywords(&kw),
                path,
                pixels: OnceLock::new(),
            });
        }
        masters.sort_by(|a, b| a.path.cmp(&b.path));
        if masters.is_empty() {
            return Err(CalibError::NoMasters {
                path: dir.display().to_string(),
            });
        }
        Ok(Library {
            dir: dir.to_path_buf(),
            masters,
        })
    }

    /// The master of `kind` for a frame: same instrument and binning (and filter for flats),
    /// nearest in date.
    pub fn select(&self, kind: &str, info: &FrameInfo) -> Option<&Master> {
        self.masters
            .iter()
            .filter(|m| {
                m.kind == kind
                    && m.info.instrument == info.instrument
                    && m.info.binning == info.binning
                    && (kind != "flat" || m.info.filter == info.filter)
            })
            .min_by(|a, b| {
                let d = |m: &Master| match (m.info.mjd, info.mjd) {
                    (Some(x), Some(y)) => (x - y).abs(),
                    _ => f64::INFINITY,
                };
                d(a).total_cmp(&d(b))
            })
    }

    /// Calibrates `frame` (raw pixels of an HDU with `header`) in place.
    pub fn apply(&self, frame: &mut Frame, header: &Header) -> Result<Applied, CalibError> {
        prepare(frame, header)?;
        let mut applied = Applied {
            origin: frame.origin,
            ..Default::default()
        };
        let name = |m: &Master| {
            m.path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let info = frame.info.clone();
        for kind in ["bias", "dark", "flat"] {
            let Some(m) = self.select(kind, &info) else {
                applied.warnings.push(format!(
                    "no {kind} master for instrument '{}', binning {}{}",
                    info.instrument,
                    info.binning,
                    if kind == "flat" {
                        format!(", filter '{}'", info.filter)
                    } else {
                        String::new()
                    }
                ));
                continue;
            };
            let loaded = match m.load() {
                Ok(l) => l,
                Err(e) => {
                    applied.warnings.push(e.to_string());
                    continue;
                }
            };
            if (loaded.width, loaded.height) != (frame.width, frame.height) {
                applied.warnings.push(format!(
                    "{} is {}x{}, the frame {}x{}: not applied",
                    name(m),
                    loaded.width,
                    loaded.height,
                    frame.width,
                    frame.height
                ));
                continue;
            }
            match kind {
                "bias" => {
                    sub(&mut frame.pixels, &loaded.pixels, 1.0);
                    applied.bias = Some(name(m));
                }
                "dark" => match info.exptime {
                    Some(t) => {
                        sub(&mut frame.pixels, &loaded.pixels, t as f32);
                        applied.dark = Some(name(m));
                    }
                    None => applied
                        .warnings
                        .push("no EXPTIME: the dark was not applied".into()),
                },
                _ => {
                    for (i, (v, f)) in frame.pixels.iter_mut().zip(&loaded.pixels).enumerate() {
                        let bad = loaded.bpm.as_ref().is_some_and(|b| b[i]);
                        *v = if bad || !(f.is_finite() && *f > 0.0) {
                            f32::NAN
                        } else {
                            *v / f
                        };
                    }
                    applied.flat = Some(name(m));
                }
            }
        }
        Ok(applied)
    }
}

fn sub(px: &mut [f32], master: &[f32], scale: f32) {
    px.iter_mut().zip(master).for_each(|(v, m)| *v -= m * scale);
}

impl Master {
    fn load(&self) -> &Result<Loaded, CalibError> {
        self.pixels.get_or_init(|| {
            let read = || -> Result<Loaded, crate::fits::FitsError> {
                let f = FitsFile::open(&self.path)?;
                let img = f.read_plane::<f32>(f.hdu(0)?, 0)?;
                let bpm = f
                    .hdus
                    .iter()
                    .find(|h| h.header.str("EXTNAME") == Some("BPM"))
                    .map(|h| f.read_plane::<f32>(h, 0))
                    .transpose()?
                    .map(|b| b.pixels.iter().map(|v| *v != 0.0).collect());
                Ok(Loaded {
                    width: img.width,
                    height: img.height,
                    pixels: img.pixels,
                    bpm,
                })
            };
            read().map_err(|e| CalibError::Master {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })
        })
    }
}
