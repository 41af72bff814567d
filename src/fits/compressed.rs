//! Tile-compressed images (the FITS tiled image convention; FITS 4.0 §10): a BINTABLE with
//! ZIMAGE = T holds one row per tile. This module reads the Z keywords, decodes each tile
//! with our codecs ([`super::codecs`]) in parallel, undoes quantization exactly as cfitsio
//! does (NO_DITHER, SUBTRACTIVE_DITHER_1 and _2 with its random sequence and ZDITHER0, ZBLANK,
//! per-tile ZSCALE/ZZERO), and assembles the full image, partial edge tiles included.
//!
//! A tile's pixels come from COMPRESSED_DATA, or, when the writer could not compress or
//! quantize it, from GZIP_COMPRESSED_DATA (gzipped raw values) or UNCOMPRESSED_DATA.

use super::bintable::{Column, Table};
use super::codecs::{gzip, hcompress, plio, rice};
use super::file::{FitsFile, Hdu};
use super::image::{Bitpix, Sample};
use super::{FitsError, Header, Result};
use rayon::prelude::*;
use std::sync::LazyLock;

/// Compression algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Rice,
    Gzip1,
    Gzip2,
    Hcompress,
    Plio,
    None,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Rice => "RICE_1",
            Codec::Gzip1 => "GZIP_1",
            Codec::Gzip2 => "GZIP_2",
            Codec::Hcompress => "HCOMPRESS_1",
            Codec::Plio => "PLIO_1",
            Codec::None => "NOCOMPRESS",
        }
    }
}

/// How quantized floats were dithered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    None,
    Subtractive1,
    Subtractive2,
}

/// The image a compressed HDU holds, read from its Z keywords.
#[derive(Debug, Clone)]
pub struct CompressedLayout {
    pub bitpix: Bitpix,
    pub axes: Vec<usize>,
    pub tile: Vec<usize>,
    pub codec: Codec,
    pub blocksize: usize,
    pub bytepix: usize,
    pub smooth: bool,
    pub dither: Dither,
    pub dither0: i64,
    pub bscale: f64,
    pub bzero: f64,
    /// BLANK of integer images.
    pub blank: Option<i64>,
    /// ZBLANK keyword (quantized floats and integer images).
    pub zblank: Option<i64>,
    pub zscale: Option<f64>,
    pub zzero: Option<f64>,
}

impl CompressedLayout {
    pub fn from_header(path: &str, hdu: usize, h: &Header) -> Result<Self> {
        let bad = |message: String| FitsError::Header {
            path: path.to_string(),
            hdu,
            message,
        };
        let zb = h
            .i64("ZBITPIX")
            .ok_or_else(|| bad("compressed image without ZBITPIX".into()))?;
        let bitpix = Bitpix::from_value(zb).ok_or_else(|| bad(format!("ZBITPIX = {zb}")))?;
        let naxis = h
            .i64("ZNAXIS")
            .filter(|n| (0..=999).contains(n))
            .ok_or_else(|| bad("bad ZNAXIS".into()))?;
        let mut axes = Vec::new();
        let mut tile = Vec::new();
        for i in 1..=naxis {
            let n = h
                .i64(&format!("ZNAXIS{i}"))
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad(format!("bad ZNAXIS{i}")))? as usize;
            // Default tiles: whole rows.
            let t = h
                .i64(&format!("ZTILE{i}"))
                .unwrap_or(if i == 1 { n as i64 } else { 1 });
            if t <= 0 {
                return Err(bad(format!("ZTILE{i} = {t}")));
            }
            axes.push(n);
            tile.push(t as usize);
        }
        let cmp = h.str("ZCMPTYPE").unwrap_or("").trim().to_ascii_uppercase();
        let codec = match cmp.as_str() {
            "RICE_1" | "RICE_ONE" => Codec::Rice,
            "GZIP_1" => Codec::Gzip1,
            "GZIP_2" => Codec::Gzip2,
            "HCOMPRESS_1" => Codec::Hcompress,
            "PLIO_1" => Codec::Plio,
            "NOCOMPRESS" => Codec::None,
            other => {
                return Err(FitsError::Unsupported {
                    path: path.to_string(),
                    hdu,
                    what: format!("compression type {other:?}"),
                });
            }
        };
        let mut blocksize = 32usize;
        // The convention's default; writers that store 1- or 2-byte Rice values say so.
        let mut bytepix = 4usize;
        let mut smooth = false;
        for i in 1..=99 {
            let Some(name) = h.str(&format!("ZNAME{i}")) else {
                break;
            };
            let key = format!("ZVAL{i}");
            match name.trim().to_ascii_uppercase().as_str() {
                "BLOCKSIZE" => {
                    blocksize = h
                        .i64(&key)
                        .filter(|v| *v > 0)
                        .ok_or_else(|| bad("bad BLOCKSIZE".into()))?
                        as usize
                }
                "BYTEPIX" => {
                    bytepix = h
                        .i64(&key)
                        .filter(|v| [1, 2, 4, 8].contains(v))
                        .ok_or_else(|| bad("bad BYTEPIX".into()))?
                        as usize
                }
                "SMOOTH" => smooth = h.bool(&key).unwrap_or(false) || h.i64(&key).unwrap_or(0) != 0,
                _ => {}
            }
        }
        let dither = match h.str("ZQUANTIZ").map(|s| s.trim().to_ascii_uppercase()) {
            Some(s) if s == "SUBTRACTIVE_DITHER_1" => Dither::Subtractive1,
            Some(s) if s == "SUBTRACTIVE_DITHER_2" => Dither::Subtractive2,
            _ => Dither::None,
        };
        Ok(CompressedLayout {
            bitpix,
            axes,
            tile,
            codec,
            blocksize,
            bytepix,
            smooth,
            dither,
            dither0: h.i64("ZDITHER0").unwrap_or(1),
            bscale: h.f64("BSCALE").unwrap_or(1.0),
            bzero: h.f64("BZERO").unwrap_or(0.0),
            blank: h.i64("BLANK"),
            zblank: h.i64("ZBLANK"),
            zscale: h.f64("ZSCALE"),
            zzero: h.f64("ZZERO"),
        })
    }

    /// Tiles along each axis.
    pub fn tiles_per_axis(&self) -> Vec<usize> {
        self.axes
            .iter()
            .zip(&self.tile)
            .map(|(n, t)| n.div_ceil(*t))
            .collect()
    }

    pub fn n_pixels(&self) -> Option<usize> {
        if self.axes.is_empty() {
            return Some(0);
        }
        self.axes.iter().try_fold(1usize, |a, &n| a.checked_mul(n))
    }
}

/// cfitsio's table of 10 000 pseudo-random dither offsets (Park–Miller minimal standard
/// generator, seed 1), as `float`s.
static RANDOMS: LazyLock<Vec<f32>> = LazyLock::new(|| {
    let (a, m) = (16807.0f64, 2147483647.0f64);
    let mut seed = 1.0f64;
    (0..10_000)
        .map(|_| {
            let t = a * seed;
            seed = t - m * ((t / m) as i64 as f64);
            (seed / m) as f32
        })
        .collect()
});

/// Null and zero markers of quantized integers (cfitsio's NULL_VALUE and ZERO_VALUE).
const ZERO_VALUE: i64 = -2_147_483_646;

enum TilePixels {
    Ints(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

struct Columns<'a> {
    compressed: Option<&'a Column>,
    gzip: Option<&'a Column>,
    uncompressed: Option<&'a Column>,
    zscale: Option<&'a Column>,
    zzero: Option<&'a Column>,
    zblank: Option<&'a Column>,
}

impl FitsFile {
    /// Decodes plane `plane` of a tile-compressed image HDU into physical values.
    pub fn read_compressed_plane<T: Sample>(
        &self,
        hdu: &Hdu,
        plane: usize,
    ) -> Result<super::ImageData<T>> {
        let err = |message: String| FitsError::Header {
            path: self.path.clone(),
            hdu: hdu.index,
            message,
        };
        let layout = CompressedLayout::from_header(&self.path, hdu.index, &hdu.header)?;
        if layout.axes.len() < 2 {
            return Err(err(format!(
                "compressed image with ZNAXIS = {}",
                layout.axes.len()
            )));
        }
        let (w, h) = (layout.axes[0], layout.axes[1]);
        let planes = layout.axes[2..]
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .ok_or_else(|| err("image too large".into()))?;
        if plane >= planes {
            return Err(err(format!(
                "plane {plane} requested, the image has {planes}"
            )));
        }
        let image = self.decompress::<T>(hdu, &layout)?;
        let n = w * h;
        let pixels = image[plane * n..(plane + 1) * n].to_vec();
        Ok(super::ImageData {
            width: w,
            height: h,
            pixels,
        })
    }

    /// Decodes the whole compressed image (all planes) into physical values.
    pub fn decompress<T: Sample>(&self, hdu: &Hdu, layout: &CompressedLayout) -> Result<Vec<T>> {
        let err = |message: String| FitsError::Header {
            path: self.path.clone(),
            hdu: hdu.index,
            message,
        };
        let data = self.data(hdu);
        let table = Table::from_header(&hdu.header, data.len()).map_err(|m| err(m.0))?;
        let cols = Columns {
            compressed: table.column("COMPRESSED_DATA"),
            gzip: table.column("GZIP_COMPRESSED_DATA"),
            uncompressed: table.column("UNCOMPRESSED_DATA"),
            zscale: table.column("ZSCALE"),
            zzero: table.column("ZZERO"),
            zblank: table.column("ZBLANK"),
        };
        if cols.compressed.is_none() && cols.uncompressed.is_none() {
            return Err(err("compressed image table without COMPRESSED_DATA".into()));
        }
        let n = layout
            .n_pixels()
            .ok_or_else(|| err("image too large".into()))?;
        // Refuse, before allocating, what the caps forbid and what the file cannot hold:
        // each codec codes at most so many pixels per byte (see fits::limits).
        self.check_pixels(hdu, n as u64)?;
        if let Some(ratio) = super::limits::max_pixels_per_byte(layout, cols.gzip.is_some())
            && n as u64 > (data.len() as u64 + 16).saturating_mul(ratio)
        {
            return Err(FitsError::Limit {
                path: self.path.clone(),
                hdu: hdu.index,
                what: format!(
                    "the header claims {n} pixels, but {} bytes of {} data hold at most {} pixels",
                    data.len(),
                    layout.codec.name(),
                    (data.len() as u64 + 16).saturating_mul(ratio)
                ),
            });
        }
        let ntiles = layout.tiles_per_axis();
        let total_tiles: usize = ntiles.iter().product();
        if total_tiles > table.rows {
            return Err(err(format!(
                "{total_tiles} tiles expected, the table has {} rows",
                table.rows
            )));
        }
        // Tiles of whole rows (fpack's default) are contiguous runs of the output, in order:
        // each thread decodes its tiles straight into their place.
        let row_tiles =
            layout.tile[0] >= layout.axes[0] && layout.tile.iter().skip(2).all(|&k| k == 1);
        if row_tiles {
            let mut out: Vec<T> = Vec::with_capacity(n);
            crate::fits::image::advise_huge_pages(out.spare_capacity_mut());
            out.resize(n, T::NAN);
            let mut slots: Vec<(usize, &mut [T])> = Vec::with_capacity(total_tiles);
            let mut rest: &mut [T] = &mut out;
            for t in 0..total_tiles {
                let len: usize = tile_shape(layout, &ntiles, t).iter().product();
                let len = len.min(rest.len());
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                slots.push((t, head));
                rest = tail;
            }
            slots.into_par_iter().try_for_each(|(t, slot)| {
                let px = self.decode_tile::<T>(hdu, layout, &table, &cols, data, t, &ntiles)?;
                let k = px.len().min(slot.len());
                slot[..k].copy_from_slice(&px[..k]);
                Ok::<(), FitsError>(())
            })?;
            return Ok(out);
        }
        let tiles: Vec<Result<(usize, Vec<T>)>> = (0..total_tiles)
            .into_par_iter()
            .map(|t| {
                let px = self.decode_tile::<T>(hdu, layout, &table, &cols, data, t, &ntiles)?;
                Ok((t, px))
            })
            .collect();
        let mut out = vec![T::NAN; n];
        for r in tiles {
            let (t, px) = r?;
            scatter(layout, &ntiles, t, &px, &mut out);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_tile<T: Sample>(
        &self,
        hdu: &Hdu,
        layout: &CompressedLayout,
        table: &Table,
        cols: &Columns,
        data: &[u8],
        t: usize,
        ntiles: &[usize],
    ) -> Result<Vec<T>> {
        let err = |message: String| FitsError::Header {
            path: self.path.clone(),
            hdu: hdu.index,
            message: format!("tile {}: {message}", t + 1),
        };
        let shape = tile_shape(layout, ntiles, t);
        let npix: usize = shape.iter().product();
        let scale = match cols.zscale {
            Some(c) => Some(table.scalar(data, t, c).map_err(|m| err(m.0))?),
            None => layout.zscale,
        };
        let zero = match cols.zzero {
            Some(c) => Some(table.scalar(data, t, c).map_err(|m| err(m.0))?),
            None => layout.zzero,
        };
        let null = match cols.zblank {
            Some(c) => Some(table.int(data, t, c).map_err(|m| err(m.0))?),
            None => layout.zblank.or(layout.blank),
        };
        let bytes = match cols.compressed {
            Some(c) => table.heap_bytes(data, t, c).map_err(|m| err(m.0))?,
            None => &[],
        };
        let pixels = if !bytes.is_empty() {
            decode_codec(layout, bytes, npix, &shape, scale.is_some()).map_err(|m| err(m.0))?
        } else if let Some(g) = cols
            .gzip
            .map(|c| table.heap_bytes(data, t, c))
            .transpose()
            .map_err(|m| err(m.0))?
            .filter(|b| !b.is_empty())
        {
            raw_values(
                layout,
                &gzip::inflate(g, npix * layout.bitpix.bytes()).map_err(|m| err(m.0))?,
            )
        } else if let Some(u) = cols
            .uncompressed
            .map(|c| table.heap_bytes(data, t, c))
            .transpose()
            .map_err(|m| err(m.0))?
        {
            if u.len() != npix * layout.bitpix.bytes() {
                return Err(err(format!(
                    "UNCOMPRESSED_DATA holds {} bytes, expected {}",
                    u.len(),
                    npix * layout.bitpix.bytes()
                )));
            }
            raw_values(layout, u)
        } else {
            return Err(err("no data for this tile".into()));
        };
        Ok(physical(layout, pixels, scale, zero, null, t, npix))
    }
}

/// Shape (extent along each axis) of tile `t`, edge tiles being partial.
fn tile_shape(layout: &CompressedLayout, ntiles: &[usize], t: usize) -> Vec<usize> {
    let mut rest = t;
    let mut shape = Vec::with_capacity(ntiles.len());
    for (k, &nt) in ntiles.iter().enumerate() {
        let idx = rest % nt;
        rest /= nt;
        let start = idx * layout.tile[k];
        shape.push(layout.tile[k].min(layout.axes[k] - start));
    }
    shape
}

/// Copies tile `t`'s pixels (row-major in the tile) to their place in the image.
fn scatter<T: Sample>(
    layout: &CompressedLayout,
    ntiles: &[usize],
    t: usize,
    px: &[T],
    out: &mut [T],
) {
    let shape = tile_shape(layout, ntiles, t);
    let mut origin = Vec::with_capacity(ntiles.len());
    let mut rest = t;
    for (k, &nt) in ntiles.iter().enumerate() {
        origin.push((rest % nt) * layout.tile[k]);
        rest /= nt;
    }
    let row = shape[0];
    let nrows = px.len() / row.max(1);
    // Iterate over the rows of the tile (all axes but the first).
    for r in 0..nrows {
        let mut rr = r;
        let mut offset = origin[0];
        let mut stride = layout.axes[0];
        for k in 1..shape.len() {
            let i = rr % shape[k];
            rr /= shape[k];
            offset += (origin[k] + i) * stride;
            stride *= layout.axes[k];
        }
        out[offset..offset + row].copy_from_slice(&px[r * row..(r + 1) * row]);
    }
}

fn decode_codec(
    layout: &CompressedLayout,
    bytes: &[u8],
    npix: usize,
    shape: &[usize],
    quantized: bool,
) -> Result<TilePixels, crate::fits::Malformed> {
    // Width of the integers the codec carries: quantized floats travel as 32-bit integers.
    let width = if layout.bitpix.is_float() {
        if quantized { 4 } else { layout.bitpix.bytes() }
    } else {
        layout.bitpix.bytes()
    };
    match layout.codec {
        Codec::Rice => {
            let mut v = Vec::with_capacity(npix);
            rice::decode(bytes, npix, layout.bytepix, layout.blocksize, &mut v)?;
            Ok(TilePixels::Ints(v))
        }
        Codec::Gzip1 | Codec::Gzip2 => {
            // Integers are stored at the image's width, except by old writers that used 4
            // bytes for every integer type: the inflated size tells which.
            let raw = gzip::inflate_at_most(bytes, npix * 8)?;
            let width = if npix > 0 && raw.len() == npix * width {
                width
            } else if npix > 0
                && raw.len() % npix == 0
                && [1, 2, 4, 8].contains(&(raw.len() / npix))
                && (!layout.bitpix.is_float() || quantized)
            {
                raw.len() / npix
            } else {
                return Err(crate::fits::malformed!(
                    "gzip tile holds {} bytes for {npix} pixels of {width} bytes",
                    raw.len()
                ));
            };
            let raw = if layout.codec == Codec::Gzip2 {
                gzip::unshuffle(&raw, width)
            } else {
                raw
            };
            if layout.bitpix.is_float() && !quantized {
                Ok(raw_values(layout, &raw))
            } else {
                Ok(TilePixels::Ints(be_ints(&raw, width)))
            }
        }
        Codec::Hcompress => {
            if shape.len() < 2 {
                return Err("HCOMPRESS_1 needs 2-D tiles".into());
            }
            let rows: usize = shape[1..].iter().product();
            let (_, _, v) = hcompress::decode(bytes, layout.smooth, (rows, shape[0]))?;
            Ok(TilePixels::Ints(v))
        }
        Codec::Plio => Ok(TilePixels::Ints(
            plio::decode(bytes, npix)?
                .into_iter()
                .map(|x| x as i64)
                .collect(),
        )),
        Codec::None => {
            if bytes.len() != npix * width {
                return Err(crate::fits::malformed!(
                    "NOCOMPRESS tile holds {} bytes, expected {}",
                    bytes.len(),
                    npix * width
                ));
            }
            if layout.bitpix.is_float() && !quantized {
                Ok(raw_values(layout, bytes))
            } else {
                Ok(TilePixels::Ints(be_ints(bytes, width)))
            }
        }
    }
}

/// Big-endian integers of `width` bytes (1 byte unsigned, others signed).
fn be_ints(raw: &[u8], width: usize) -> Vec<i64> {
    match width {
        1 => raw.iter().map(|&b| b as i64).collect(),
        2 => raw
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as i64)
            .collect(),
        4 => raw
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        _ => raw
            .chunks_exact(8)
            .map(|c| i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    }
}

/// Raw (uncompressed, unquantized) values of the image's BITPIX.
fn raw_values(layout: &CompressedLayout, raw: &[u8]) -> TilePixels {
    match layout.bitpix {
        Bitpix::F32 => TilePixels::F32(
            raw.chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Bitpix::F64 => TilePixels::F64(
            raw.chunks_exact(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        b => TilePixels::Ints(be_ints(raw, b.bytes())),
    }
}

/// Physical values of a decoded tile: dequantized floats, or scaled integers.
fn physical<T: Sample>(
    layout: &CompressedLayout,
    pixels: TilePixels,
    scale: Option<f64>,
    zero: Option<f64>,
    null: Option<i64>,
    tile: usize,
    npix: usize,
) -> Vec<T> {
    let (bscale, bzero) = (layout.bscale, layout.bzero);
    let identity = bscale == 1.0 && bzero == 0.0;
    let mut out: Vec<T> = Vec::with_capacity(npix);
    match pixels {
        TilePixels::F32(v) => out.extend(v.into_iter().map(|x| {
            if identity {
                T::from_f32(x)
            } else {
                T::from_f64(x as f64 * bscale + bzero)
            }
        })),
        TilePixels::F64(v) => out.extend(
            v.into_iter()
                .map(|x| T::from_f64(if identity { x } else { x * bscale + bzero })),
        ),
        TilePixels::Ints(v) if layout.bitpix.is_float() => {
            let (s, z) = (scale.unwrap_or(1.0), zero.unwrap_or(0.0));
            // Quantized floats are computed in double and stored in the image's own type.
            let store = |x: f64| -> T {
                if layout.bitpix == Bitpix::F32 {
                    T::from_f32(x as f32)
                } else {
                    T::from_f64(x)
                }
            };
            match layout.dither {
                Dither::None => out.extend(v.into_iter().map(|q| {
                    if Some(q) == null {
                        T::NAN
                    } else {
                        store(q as f64 * s + z)
                    }
                })),
                Dither::Subtractive1 | Dither::Subtractive2 => {
                    let r = &*RANDOMS;
                    let mut iseed =
                        ((tile as i64 + layout.dither0 - 1).rem_euclid(10_000)) as usize;
                    let mut next = (r[iseed] * 500.0) as usize;
                    let zero_is_zero = layout.dither == Dither::Subtractive2;
                    // Runs along the random sequence up to its wrap point, so the inner loop
                    // is a plain zip.
                    let mut rest = &v[..];
                    while !rest.is_empty() {
                        let len = (10_000 - next).min(rest.len());
                        let (run, tail) = rest.split_at(len);
                        out.extend(run.iter().zip(&r[next..next + len]).map(|(&q, &rv)| {
                            if Some(q) == null {
                                T::NAN
                            } else if zero_is_zero && q == ZERO_VALUE {
                                store(0.0)
                            } else {
                                store((q as f64 - rv as f64 + 0.5) * s + z)
                            }
                        }));
                        rest = tail;
                        next += len;
                        if next == 10_000 {
                            iseed = (iseed + 1) % 10_000;
                            next = (r[iseed] * 500.0) as usize;
                        }
                    }
                }
            }
        }
        TilePixels::Ints(v) => {
            let unsigned64 = layout.bitpix == Bitpix::I64
                && bscale == 1.0
                && bzero == 9_223_372_036_854_775_808.0;
            out.extend(v.into_iter().map(|q| {
                if Some(q) == null {
                    T::NAN
                } else if unsigned64 {
                    T::from_f64(((q as u64) ^ (1u64 << 63)) as f64)
                } else {
                    T::from_f64(q as f64 * bscale + bzero)
                }
            }))
        }
    }
    out.resize(npix, T::NAN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sequence_matches_cfitsio() {
        // cfitsio checks its own table: the 10000th seed is 1043618065.
        let r = &*RANDOMS;
        assert_eq!(r.len(), 10_000);
        assert!((r[9999] as f64 - 1043618065.0 / 2147483647.0).abs() < 1e-7);
        assert!((r[0] as f64 - 16807.0 / 2147483647.0).abs() < 1e-12);
    }
}
