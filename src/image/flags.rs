//! Source flags: SExtractor's bits (Bertin & Arnouts 1996; SExtractor manual §10) plus
//! astropipe's own from bit 8 up. Stored in the `flags` column (Int32).

/// Object biased by neighbouring sources or bad pixels in its aperture.
pub const NEIGHBOURS: i32 = 1;
/// Object was originally blended with another and deblended.
pub const BLENDED: i32 = 2;
/// At least one pixel of the object is saturated (or very close).
pub const SATURATED: i32 = 4;
/// Object touches the image boundary.
pub const TRUNCATED: i32 = 8;
/// An aperture (circular or AUTO) runs off the image or over invalid pixels.
pub const APER_INCOMPLETE: i32 = 16;
/// Isophotal data incomplete or corrupted.
pub const ISO_INCOMPLETE: i32 = 32;
/// The image HDU has no usable WCS: `ra`/`dec` are null.
pub const NO_WCS: i32 = 256;
/// A pixel of the object was flagged as a cosmic-ray hit.
pub const COSMIC_RAY: i32 = 512;
/// A pixel of the object is bad (NaN/BLANK or in the bad-pixel mask).
pub const BAD_PIXELS: i32 = 1024;
