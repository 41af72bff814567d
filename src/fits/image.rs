//! Image data units: the layout a header declares, and decoding of the raw big-endian pixels
//! into physical values `raw * BSCALE + BZERO` (FITS 4.0 §5.3), with BLANK → NaN for integer
//! data and the unsigned conventions (BZERO = 2^15, 2^31, 2^63; BITPIX 8 with BZERO = -128
//! for signed bytes) computed exactly.

use super::file::{FitsFile, Hdu, HduKind};
use super::{FitsError, Result};

/// The BITPIX values of FITS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bitpix {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Bitpix {
    pub fn from_value(v: i64) -> Option<Bitpix> {
        Some(match v {
            8 => Bitpix::U8,
            16 => Bitpix::I16,
            32 => Bitpix::I32,
            64 => Bitpix::I64,
            -32 => Bitpix::F32,
            -64 => Bitpix::F64,
            _ => return None,
        })
    }

    pub fn value(self) -> i64 {
        match self {
            Bitpix::U8 => 8,
            Bitpix::I16 => 16,
            Bitpix::I32 => 32,
            Bitpix::I64 => 64,
            Bitpix::F32 => -32,
            Bitpix::F64 => -64,
        }
    }

    pub fn bytes(self) -> usize {
        (self.value().unsigned_abs() / 8) as usize
    }

    pub fn is_float(self) -> bool {
        matches!(self, Bitpix::F32 | Bitpix::F64)
    }
}

/// How an image HDU's data unit is laid out and scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLayout {
    pub bitpix: Bitpix,
    /// NAXIS1, NAXIS2, ... (NAXIS1 varies fastest).
    pub axes: Vec<usize>,
    pub bscale: f64,
    pub bzero: f64,
    /// BLANK, for integer data only.
    pub blank: Option<i64>,
}

impl ImageLayout {
    /// Reads the layout of an image HDU (primary or IMAGE extension).
    pub fn from_hdu(path: &str, hdu: &Hdu) -> Result<Self> {
        let bad = |message: String| FitsError::Header {
            path: path.to_string(),
            hdu: hdu.index,
            message,
        };
        match hdu.kind {
            HduKind::Primary | HduKind::Image => {}
            _ => {
                return Err(FitsError::NotImage {
                    path: path.to_string(),
                    hdu: hdu.index,
                });
            }
        }
        let h = &hdu.header;
        let bp = h.i64("BITPIX").ok_or_else(|| bad("no BITPIX".into()))?;
        let bitpix = Bitpix::from_value(bp).ok_or_else(|| bad(format!("BITPIX = {bp}")))?;
        let naxis = h.i64("NAXIS").ok_or_else(|| bad("no NAXIS".into()))?;
        if !(0..=999).contains(&naxis) {
            return Err(bad(format!("NAXIS = {naxis}")));
        }
        let mut axes = Vec::with_capacity(naxis as usize);
        for i in 1..=naxis {
            let key = format!("NAXIS{i}");
            let n = h.i64(&key).ok_or_else(|| bad(format!("no {key}")))?;
            if n < 0 {
                return Err(bad(format!("{key} = {n}")));
            }
            axes.push(n as usize);
        }
        let bscale = h.f64("BSCALE").unwrap_or(1.0);
        let bzero = h.f64("BZERO").unwrap_or(0.0);
        if !bscale.is_finite() || !bzero.is_finite() || bscale == 0.0 {
            return Err(bad(format!("BSCALE = {bscale}, BZERO = {bzero}")));
        }
        let blank = if bitpix.is_float() {
            None
        } else {
            h.i64("BLANK")
        };
        Ok(ImageLayout {
            bitpix,
            axes,
            bscale,
            bzero,
            blank,
        })
    }

    /// Number of pixels (0 for NAXIS = 0), or `None` on overflow.
    pub fn n_pixels(&self) -> Option<usize> {
        if self.axes.is_empty() {
            return Some(0);
        }
        self.axes
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
    }

    /// Width and height of the celestial plane, and the number of planes along the further
    /// axes (1 when they are all degenerate).
    pub fn plane_shape(&self) -> Option<(usize, usize, usize)> {
        if self.axes.len() < 2 {
            return None;
        }
        let planes = self.axes[2..]
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))?;
        Some((self.axes[0], self.axes[1], planes))
    }
}

/// A decoded 2-D image plane in physical units, row-major (`height` rows of `width`).
#[derive(Debug, Clone)]
pub struct ImageData<T> {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<T>,
}

/// Pixel types images decode into.
pub trait Sample: Copy + Send + Sync + 'static {
    fn from_f64(v: f64) -> Self;
    fn from_f32(v: f32) -> Self;
    const NAN: Self;
}

impl Sample for f32 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    const NAN: Self = f32::NAN;
}

impl Sample for f64 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    const NAN: Self = f64::NAN;
}

/// The shape of the image an HDU holds, plain or tile-compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDims {
    pub bitpix: Bitpix,
    /// NAXIS1, NAXIS2, ... of the image (ZNAXISn for compressed images).
    pub axes: Vec<usize>,
    /// The compression algorithm, for tile-compressed images.
    pub compression: Option<&'static str>,
}

impl ImageDims {
    pub fn n_pixels(&self) -> Option<usize> {
        if self.axes.is_empty() {
            return Some(0);
        }
        self.axes
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
    }

    /// Width, height and number of planes (product of the axes beyond the second).
    pub fn plane_shape(&self) -> Option<(usize, usize, usize)> {
        if self.axes.len() < 2 {
            return None;
        }
        let planes = self.axes[2..]
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))?;
        Some((self.axes[0], self.axes[1], planes))
    }
}

impl FitsFile {
    /// The image of an HDU: `Ok(None)` for tables and HDUs without data.
    pub fn image_dims(&self, hdu: &Hdu) -> Result<Option<ImageDims>> {
        match hdu.kind {
            HduKind::Primary | HduKind::Image => {
                let l = ImageLayout::from_hdu(&self.path, hdu)?;
                Ok(Some(ImageDims {
                    bitpix: l.bitpix,
                    axes: l.axes,
                    compression: None,
                }))
            }
            HduKind::CompressedImage => {
                let l = super::compressed::CompressedLayout::from_header(
                    &self.path,
                    hdu.index,
                    &hdu.header,
                )?;
                Ok(Some(ImageDims {
                    bitpix: l.bitpix,
                    axes: l.axes,
                    compression: Some(l.codec.name()),
                }))
            }
            HduKind::BinTable | HduKind::AsciiTable => Ok(None),
        }
    }

    /// Decodes plane `plane` (0 for a 2-D image) of an image HDU, plain or tile-compressed,
    /// into physical values.
    pub fn read_plane<T: Sample>(&self, hdu: &Hdu, plane: usize) -> Result<ImageData<T>> {
        if hdu.kind == HduKind::CompressedImage {
            return self.read_compressed_plane(hdu, plane);
        }
        let layout = ImageLayout::from_hdu(&self.path, hdu)?;
        let (width, height, planes) = layout.plane_shape().ok_or_else(|| FitsError::Header {
            path: self.path.clone(),
            hdu: hdu.index,
            message: format!("not a 2-D image (NAXIS = {})", layout.axes.len()),
        })?;
        let too_big = || FitsError::Header {
            path: self.path.clone(),
            hdu: hdu.index,
            message: format!("image dimensions {:?} overflow", layout.axes),
        };
        if plane >= planes {
            return Err(FitsError::Header {
                path: self.path.clone(),
                hdu: hdu.index,
                message: format!("plane {plane} requested, the image has {planes}"),
            });
        }
        let n = width.checked_mul(height).ok_or_else(too_big)?;
        self.check_pixels(hdu, n as u64)?;
        let nbytes = n.checked_mul(layout.bitpix.bytes()).ok_or_else(too_big)?;
        let start = (hdu.data_offset as usize)
            .checked_add(plane.checked_mul(nbytes).ok_or_else(too_big)?)
            .ok_or_else(too_big)?;
        let end = start.checked_add(nbytes).ok_or_else(too_big)?;
        if end > self.bytes.len() {
            return Err(FitsError::Truncated {
                path: self.path.clone(),
                hdu: hdu.index,
                offset: start as u64,
                needed: nbytes as u64,
                available: self.bytes.len().saturating_sub(start) as u64,
            });
        }
        let mut pixels: Vec<T> = Vec::with_capacity(n);
        advise_huge_pages(pixels.spare_capacity_mut());
        pixels.resize(n, T::NAN);
        decode_parallel(&self.bytes[start..end], &layout, &mut pixels);
        Ok(ImageData {
            width,
            height,
            pixels,
        })
    }
}

/// Decodes `raw` into `out` (same number of pixels), in parallel blocks for large images.
pub fn decode_parallel<T: Sample>(raw: &[u8], layout: &ImageLayout, out: &mut [T]) {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 18;
    let w = layout.bitpix.bytes();
    if out.len() <= BLOCK {
        decode_into(raw, layout, out);
        return;
    }
    out.par_chunks_mut(BLOCK)
        .zip(raw.par_chunks(BLOCK * w))
        .for_each(|(o, r)| decode_into(r, layout, o));
}

/// Decodes `raw` (big-endian pixels of `layout.bitpix`) into the physical values `out`.
pub fn decode_into<T: Sample>(raw: &[u8], layout: &ImageLayout, out: &mut [T]) {
    let (bscale, bzero) = (layout.bscale, layout.bzero);
    let identity = bscale == 1.0 && bzero == 0.0;
    let blank = layout.blank;
    macro_rules! ints {
        ($w:expr, $ty:ty) => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact($w)) {
                let v = <$ty>::from_be_bytes(c.try_into().unwrap_or([0; $w]));
                *o = if blank == Some(v as i64) {
                    T::NAN
                } else {
                    T::from_f64(v as f64 * bscale + bzero)
                };
            }
        };
    }
    match layout.bitpix {
        Bitpix::U8 => {
            for (o, &b) in out.iter_mut().zip(raw) {
                *o = if blank == Some(b as i64) {
                    T::NAN
                } else {
                    T::from_f64(b as f64 * bscale + bzero)
                };
            }
        }
        Bitpix::I16 => ints!(2, i16),
        Bitpix::I32 => ints!(4, i32),
        Bitpix::I64 => {
            // Unsigned 64-bit convention: BZERO = 2^63 exactly, BSCALE = 1: flip the sign bit
            // in integer arithmetic (v + 2^63 is not exact in f64).
            let unsigned = bscale == 1.0 && bzero == 9_223_372_036_854_775_808.0;
            for (o, c) in out.iter_mut().zip(raw.chunks_exact(8)) {
                let v = i64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
                *o = if blank == Some(v) {
                    T::NAN
                } else if unsigned {
                    T::from_f64(((v as u64) ^ (1u64 << 63)) as f64)
                } else {
                    T::from_f64(v as f64 * bscale + bzero)
                };
            }
        }
        Bitpix::F32 => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact(4)) {
                let v = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                *o = if identity {
                    T::from_f32(v)
                } else {
                    T::from_f64(v as f64 * bscale + bzero)
                };
            }
        }
        Bitpix::F64 => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact(8)) {
                let v = f64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
                *o = T::from_f64(if identity { v } else { v * bscale + bzero });
            }
        }
    }
}

/// Reads one plane of an uncompressed image straight from disk into the output array (no
/// copy of the file in memory): one read into the array's own bytes and an in-place byte
/// swap for native-width float data, a raw read and a parallel decode otherwise.
pub fn read_plane_from_file<T: Sample>(
    path: &std::path::Path,
    hdu: &Hdu,
    plane: usize,
) -> Result<ImageData<T>> {
    use std::io::{Read, Seek, SeekFrom};
    let name = path.display().to_string();
    let layout = ImageLayout::from_hdu(&name, hdu)?;
    let (width, height, planes) = layout.plane_shape().ok_or_else(|| FitsError::Header {
        path: name.clone(),
        hdu: hdu.index,
        message: "not a 2-D image".into(),
    })?;
    if plane >= planes {
        return Err(FitsError::Header {
            path: name,
            hdu: hdu.index,
            message: format!("no plane {plane}"),
        });
    }
    let n = width.checked_mul(height).ok_or_else(|| FitsError::Header {
        path: name.clone(),
        hdu: hdu.index,
        message: "image too large".into(),
    })?;
    let nbytes = (n * layout.bitpix.bytes()) as u64;
    let io = |source| FitsError::Io {
        path: name.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let start = hdu.data_offset + plane as u64 * nbytes;
    let len = f.metadata().map_err(io)?.len();
    if start + nbytes > len {
        return Err(FitsError::Truncated {
            path: name.clone(),
            hdu: hdu.index,
            offset: start,
            needed: nbytes,
            available: len.saturating_sub(start),
        });
    }
    let native_f32 = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && layout.bitpix == Bitpix::F32
        && layout.bscale == 1.0
        && layout.bzero == 0.0;
    if native_f32 {
        use rayon::prelude::*;
        use std::os::unix::fs::FileExt;
        // Each thread reads its own slice of the file straight into its slice of the output
        // (positioned reads) and byte-swaps it there: the copy out of the page cache, the
        // page faults of the fresh buffer and the swap all run in parallel, in one pass.
        const CHUNK: usize = 1 << 18;
        let mut words = vec![0u32; n];
        advise_huge_pages(&mut words);
        words
            .par_chunks_mut(CHUNK)
            .enumerate()
            .try_for_each(|(i, c)| {
                // SAFETY: u32 has no invalid bit patterns and the byte view covers exactly
                // this chunk of the vector.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(c.as_mut_ptr() as *mut u8, c.len() * 4)
                };
                f.read_exact_at(bytes, start + (i * CHUNK * 4) as u64)?;
                for w in c.iter_mut() {
                    *w = u32::from_be(*w);
                }
                Ok::<(), std::io::Error>(())
            })
            .map_err(io)?;
        // Same size and alignment: collected in place, no second buffer.
        let pixels: Vec<T> = words
            .into_iter()
            .map(|w| T::from_f32(f32::from_bits(w)))
            .collect();
        return Ok(ImageData {
            width,
            height,
            pixels,
        });
    }
    f.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut raw = vec![0u8; nbytes as usize];
    advise_huge_pages(&mut raw);
    f.read_exact(&mut raw).map_err(io)?;
    let mut pixels = vec![T::NAN; n];
    decode_parallel(&raw, &layout, &mut pixels);
    Ok(ImageData {
        width,
        height,
        pixels,
    })
}

/// Asks the kernel to back a large, not yet touched buffer with transparent huge pages (as
/// numpy does for its arrays): writing it then takes a few hundred page faults instead of
/// tens of thousands. Only a hint; without THP (or off Linux) nothing changes.
pub fn advise_huge_pages<T>(buf: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = std::mem::size_of_val(buf);
        if bytes < (4 << 20) {
            return;
        }
        let start = buf.as_mut_ptr() as usize;
        let aligned = (start + PAGE - 1) & !(PAGE - 1);
        let len = (start + bytes - aligned) & !(PAGE - 1);
        // SAFETY: the range lies inside the buffer we own; MADV_HUGEPAGE changes no contents.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Reads a whole file into a buffer backed by huge pages when it is large (see
/// [`advise_huge_pages`]).
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut buf: Vec<u8> = Vec::with_capacity(len + 1);
    advise_huge_pages(buf.spare_capacity_mut());
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Appends the physical values of `raw` (big-endian pixels of `layout.bitpix`) to `out`.
pub fn decode<T: Sample>(raw: &[u8], layout: &ImageLayout, out: &mut Vec<T>) {
    let n = raw.len() / layout.bitpix.bytes();
    let at = out.len();
    out.resize(at + n, T::NAN);
    decode_into(raw, layout, &mut out[at..]);
}
