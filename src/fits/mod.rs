//! FITS reading (Pence et al. 2010, FITS Standard 4.0).
//!
//! Division of labour with `fitsrs` 0.4:
//! - **fitsrs**: header card parsing (including CONTINUE and HIERARCH) and HDU iteration
//!   (data offsets and sizes), in [`file`].
//! - **ours**: whole-file gzip ([`file`]), the typed header view ([`header`]), pixel decoding
//!   with BZERO/BSCALE/BLANK and the unsigned-integer conventions, and the truncation check
//!   that fitsrs does not make ([`image`]); a small writer for tests, demo frames and
//!   calibration masters ([`writer`]). fitsrs applies no scaling and silently returns fewer
//!   pixels for a short file, so image data is decoded here straight from the raw bytes.
//!
//! - **ours, tile compression**: fitsrs decodes only 32-bit RICE/GZIP tiles correctly and has
//!   no HCOMPRESS or PLIO, so every tile-compressed image is decoded here: [`compressed`]
//!   (table layout, quantization, dithering, assembly), [`codecs`] (RICE_1, GZIP_1/2,
//!   HCOMPRESS_1, PLIO_1), [`bintable`] (the table cells and heap descriptors).

/// Malformed content found while decoding — a header card, a table cell, a tile's bytes. The
/// caller wraps it in a [`FitsError`] naming the file, the HDU (and the tile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

impl From<&str> for Malformed {
    fn from(s: &str) -> Self {
        Malformed(s.to_string())
    }
}

impl From<String> for Malformed {
    fn from(s: String) -> Self {
        Malformed(s)
    }
}

/// `format!` into a [`Malformed`].
macro_rules! malformed {
    ($($arg:tt)*) => {
        $crate::fits::Malformed(format!($($arg)*))
    };
}
pub(crate) use malformed;

pub mod bintable;
pub mod checksum;
pub mod codecs;
pub mod compressed;
pub mod file;
pub mod header;
pub mod image;
pub mod keywords;
pub mod limits;
pub mod writer;

pub use file::{FitsFile, Hdu, HduKind};
pub use header::{Card, Header, HeaderValue};
pub use image::{Bitpix, ImageData, ImageDims, ImageLayout};
pub use limits::FitsLimits;

/// Everything that can go wrong reading a FITS file. Each variant names the file (and the HDU
/// where it applies) so that an ingest report can say exactly what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum FitsError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid gzip stream: {source}")]
    Gzip {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: decompressed size exceeds the limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: HDU {hdu}: refused: {what}")]
    Limit {
        path: String,
        hdu: usize,
        what: String,
    },
    #[error("{path}: not a FITS file (does not start with SIMPLE  =)")]
    NotFits { path: String },
    #[error("{path}: HDU {hdu}: bad header: {message}")]
    Header {
        path: String,
        hdu: usize,
        message: String,
    },
    #[error(
        "{path}: HDU {hdu}: truncated: the data unit needs {needed} bytes at offset {offset}, the file has {available}"
    )]
    Truncated {
        path: String,
        hdu: usize,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("{path}: HDU {hdu}: {what} is not supported yet")]
    Unsupported {
        path: String,
        hdu: usize,
        what: String,
    },
    #[error("{path}: HDU {hdu}: not an image HDU")]
    NotImage { path: String, hdu: usize },
    #[error("{path}: no HDU {hdu} (the file has {count})")]
    NoSuchHdu {
        path: String,
        hdu: usize,
        count: usize,
    },
}

pub type Result<T, E = FitsError> = std::result::Result<T, E>;
