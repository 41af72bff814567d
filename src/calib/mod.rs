//! Calibration: master frames and their application.
//!
//! - [`combine`]: pixel-by-pixel median / mean / σ-clipped combination of frame stacks;
//! - [`frames`]: reading a raw frame, overscan (BIASSEC) and trim (TRIMSEC/DATASEC), and the
//!   header facts masters are matched on;
//! - [`masters`]: `astropipe calib build` (bias, dark rate, per-filter flats with a bad-pixel
//!   mask, provenance keywords);
//! - [`library`]: `ingest --calib DIR` (choosing and applying the masters).

pub mod combine;
pub mod frames;
pub mod library;
pub mod masters;

pub use library::{Applied, Library};

/// What can go wrong building or applying calibration masters; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error(transparent)]
    Fits(#[from] crate::fits::FitsError),
    #[error("{path}: no image HDU")]
    NoImage { path: String },
    #[error("{path}: {key} = '{value}' is not a section of the {width}x{height} image")]
    Section {
        path: String,
        key: String,
        value: String,
        width: usize,
        height: usize,
    },
    #[error("calibration directory {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no master frames (MASTER keyword) in {path}")]
    NoMasters { path: String },
    #[error("master {path} cannot be read: {reason}")]
    Master { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
