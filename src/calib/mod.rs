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

/// A loaded calibration library shared by the ingest's workers (compared by identity).
#[derive(Debug, Clone)]
pub struct CalibRef(pub std::sync::Arc<Library>);

impl PartialEq for CalibRef {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}
