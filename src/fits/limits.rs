//! What a FITS file may claim before anything is allocated for it: pixels per image, header
//! cards per HDU, and bytes after decompression (whole-file gzip, tiles). A hostile file — a
//! few kilobytes whose header claims a 30 000² image, or a gzip bomb — is refused with a
//! clear error while the memory used stays near the size of the file.

use super::compressed::{Codec, CompressedLayout};

/// Caps on what one file may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitsLimits {
    /// Pixels of one image plane set (the product of the image axes), plain or compressed.
    pub max_pixels: u64,
    /// Cards in one header.
    pub max_header_cards: usize,
    /// Bytes of a file once decompressed (whole-file gzip).
    pub max_bytes: u64,
}

/// Default pixel cap (`--max-image-pixels`): 2^28, a 16384² image, 1 GiB as f32.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 28;
/// Default header cap (`--max-header-cards`).
pub const DEFAULT_MAX_HEADER_CARDS: usize = 100_000;
/// Default decompressed size cap (`--max-decompressed-mb`): 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

impl Default for FitsLimits {
    fn default() -> Self {
        FitsLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_header_cards: DEFAULT_MAX_HEADER_CARDS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The most pixels one byte of a tile-compressed table can stand for, or None when the codec
/// has no such bound (HCOMPRESS codes an all-zero tile in a few bytes whatever its size).
///
/// - RICE_1: a block of `blocksize` pixels costs at least its `fsbits`-bit code (3, 4 or 5
///   bits for 1-, 2-, 4-byte values);
/// - GZIP_1/2: deflate expands at most 1032:1, and a pixel is at least one byte;
/// - PLIO_1: one 16-bit instruction covers at most 4095 pixels;
/// - NOCOMPRESS: a pixel is at least one byte.
///
/// A table with a GZIP_COMPRESSED_DATA column may hold any tile that way: the larger bound.
pub fn max_pixels_per_byte(layout: &CompressedLayout, has_gzip_column: bool) -> Option<u64> {
    let fsbits = match layout.bytepix {
        1 => 3,
        2 => 4,
        _ => 5,
    };
    let codec = match layout.codec {
        Codec::Rice => Some((layout.blocksize as u64 * 8).div_ceil(fsbits)),
        Codec::Gzip1 | Codec::Gzip2 => Some(1032),
        Codec::Plio => Some(2048),
        Codec::None => Some(1),
        Codec::Hcompress => None,
    };
    match (codec, has_gzip_column) {
        (Some(r), true) => Some(r.max(1032)),
        (r, _) => r,
    }
}
